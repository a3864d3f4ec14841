"""The learned face front-end (issue 17): our detector and 68-point landmark network, run on one photo.

`core.face.detect_faces` calls `find_faces` first and falls back to dlib when it finds nothing or when the
models are not bundled. Steps:
1. the photo is shrunk so its longer side is `DETECT_SIDE` px (padded to a multiple of 32), and a second time
   `ZOOM_OUT` times smaller in the middle of the same canvas, for the detector (core/models/face_detector.py): one
   box per face, the box of its 68 landmarks;
2. each box becomes a 128 px crop (`CROP_SCALE` times the box, upright) for the landmark network
   (core/models/landmarks.py), which returns 68 points and a visibility probability per point;
3. a face whose eyes are tilted by more than `ROLL_REFINE` degrees is cropped again, rotated upright, and its
   points read again (the network saw +-30 degrees of roll in training, most of it near 0).
Everything runs under `torch.inference_mode` on the device `core.face.device()` picks.
"""
from __future__ import annotations

import functools

import cv2
import numpy as np
import torch

DETECT_SIDE = 384      # longer side of the detector's input (a 1000 px photo: faces from ~30 px are found)
SCORE_THRESHOLD = 0.4  # detector centre-heatmap score; see train/eval_frontend.py for the trade-off
ZOOM_OUT = 2.5         # the second view of the photo, for faces larger than those the detector was trained on
ROLL_REFINE = 20.0


@functools.lru_cache(maxsize=None)
def models(device: str = "cpu"):
    """(detector, landmark net) in eval mode, or None when they are not available: then dlib serves, and a copy
    that fails its sha256 check is logged as such (a loud warning, not a silent change of front-end)."""
    import logging

    from core.loading import available, load_model, verification_error

    if not (available("face-detector") and available("face-landmarks")):
        for name in ("face-detector", "face-landmarks"):
            if verification_error(name):
                logging.getLogger(__name__).warning("learned front-end off, dlib serves: %s", verification_error(name))
        return None
    return load_model("face-detector", device=device), load_model("face-landmarks", device=device)


@torch.inference_mode()
def detect_boxes(image: np.ndarray, detector, device: str = "cpu", threshold: float = SCORE_THRESHOLD) -> np.ndarray:
    """[K, 5] boxes (x0, y0, x1, y1, score) in photo pixels, best first.

    Two views in one batch: the photo filling a `DETECT_SIDE` canvas, and the photo at 1/`ZOOM_OUT` of it in the
    middle of the same canvas, so that a face filling a tight crop (a CFP profile, a selfie) is as large as the
    faces the detector was trained on; boxes found in both are merged."""
    from core.models.face_detector import decode, suppress

    h, w = image.shape[:2]
    k = DETECT_SIDE / max(h, w)
    nh, nw = max(1, round(h * k)), max(1, round(w * k))
    ph, pw = -(-nh // 32) * 32, -(-nw // 32) * 32
    views, placements = [], []
    for zoom in (1.0, ZOOM_OUT):
        kz = k / zoom
        sh, sw = max(1, round(h * kz)), max(1, round(w * kz))
        small = cv2.resize(image, (sw, sh), interpolation=cv2.INTER_AREA if kz < 1 else cv2.INTER_LINEAR)
        y0, x0 = (ph - sh) // 2 if zoom > 1 else 0, (pw - sw) // 2 if zoom > 1 else 0
        canvas = np.zeros((ph, pw, 3), np.uint8)
        canvas[y0:y0 + sh, x0:x0 + sw] = small
        views.append(canvas)
        placements.append((kz, x0, y0))
    x = torch.from_numpy(np.stack(views)).to(device).permute(0, 3, 1, 2).float() / 255
    found = []
    for boxes, (kz, x0, y0) in zip(decode(detector(x), threshold=threshold), placements):
        boxes = boxes.cpu()
        boxes[:, [0, 2]] = (boxes[:, [0, 2]] - x0) / kz
        boxes[:, [1, 3]] = (boxes[:, [1, 3]] - y0) / kz
        found.append(boxes)
    merged = torch.cat(found)
    return suppress(merged[merged[:, 4].argsort(descending=True)]).numpy()


def crop_matrix(centre: np.ndarray, side: float, angle: float, size: int) -> np.ndarray:
    """[2, 3] photo -> crop: `centre` to the crop's centre, `side` photo px to `size` px, rotated by -angle."""
    s = size / side
    c, si = np.cos(angle) * s, np.sin(angle) * s
    A = np.array([[c, si], [-si, c]])
    t = np.array([size / 2, size / 2]) - A @ centre
    return np.concatenate([A, t[:, None]], 1)


def warp_crop(image: np.ndarray, M: np.ndarray, size: int) -> np.ndarray:
    scale = np.sqrt(abs(np.linalg.det(M[:, :2])))
    src, Msrc = image, M
    if scale < 0.5:   # big face: shrink first so the warp does not alias
        f = 2 * scale
        src = cv2.resize(image, None, fx=f, fy=f, interpolation=cv2.INTER_AREA)
        Msrc = M @ np.diag([1 / f, 1 / f, 1.0])
    return cv2.warpAffine(src, Msrc, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)


@torch.inference_mode()
def read_landmarks(image: np.ndarray, matrices: list[np.ndarray], net, device: str = "cpu"):
    """Points [K, 68, 2] in photo pixels and visibility [K, 68] in [0, 1] for crops given by their matrices."""
    size = net.config["input_size"]
    crops = np.stack([warp_crop(image, M, size) for M in matrices])
    x = torch.from_numpy(crops).to(device).permute(0, 3, 1, 2).float() / 255
    out = net(x)
    pts = out["points"].float().cpu().numpy()
    vis = torch.sigmoid(out["visible"].float()).cpu().numpy()
    photo = [np.concatenate([p, np.ones((len(p), 1))], 1) @ np.linalg.inv(np.vstack([M, [0, 0, 1]]))[:2].T
             for p, M in zip(pts, matrices)]
    return np.stack(photo).astype(np.float32), vis.astype(np.float32)


def find_faces(image: np.ndarray, device: str = "cpu") -> list[tuple[np.ndarray, np.ndarray, np.ndarray]] | None:
    """[(box [5], landmarks [68, 2], visibility [68])] best first, or None when the models are not available."""
    from core.models.landmarks import CROP_SCALE

    pair = models(device)
    if pair is None:
        return None
    detector, net = pair
    boxes = detect_boxes(image, detector, device)
    if not len(boxes):
        return []
    size = net.config["input_size"]
    mats = [crop_matrix((b[:2] + b[2:4]) / 2, CROP_SCALE * max(b[2] - b[0], b[3] - b[1]), 0.0, size) for b in boxes]
    pts, vis = read_landmarks(image, mats, net, device)
    for i, p in enumerate(pts):   # tilted heads: once more, upright
        roll = eye_angle(p)
        if abs(np.degrees(roll)) > ROLL_REFINE:
            lo, hi = p.min(0), p.max(0)
            side = CROP_SCALE * max(hi - lo) / (abs(np.cos(roll)) + abs(np.sin(roll)))  # the tilted face's own box
            p2, v2 = read_landmarks(image, [crop_matrix((lo + hi) / 2, side, roll, size)], net, device)
            pts[i], vis[i] = p2[0], v2[0]
    keep = plausible(boxes, vis)
    return [(boxes[i], pts[i], vis[i]) for i in keep]


def plausible(boxes: np.ndarray, vis: np.ndarray) -> list[int]:
    """Indices of the detections to keep (the detector is young and fires on bodies and crowds now and then):
    * of two boxes one of which holds >= 80% of the other (a face holds no other face), the one whose points the
      landmark net finds less visible goes (a box over a whole body sees 'hidden' points everywhere);
    * a weak box (score < 0.6) goes when it scores under 0.65 of the best box in the photo."""
    n = len(boxes)
    area = np.prod(np.clip(boxes[:, 2:4] - boxes[:, :2], 0, None), 1)
    drop = set()
    for i in range(n):
        for j in range(n):
            if i == j or area[i] < area[j]:
                continue
            lt, rb = np.maximum(boxes[i, :2], boxes[j, :2]), np.minimum(boxes[i, 2:4], boxes[j, 2:4])
            inside = np.prod(np.clip(rb - lt, 0, None)) / max(area[j], 1e-6)
            if inside >= 0.8:
                drop.add(i if vis[i].mean() < vis[j].mean() else j)
    best = boxes[:, 4].max()
    return [i for i in range(n) if i not in drop and (boxes[i, 4] >= 0.6 or boxes[i, 4] >= 0.65 * best)]


def eye_angle(points: np.ndarray) -> float:
    """Angle (radians) of the line from the subject's right eye centre to the left one (0 = level)."""
    d = points[42:48].mean(0) - points[36:42].mean(0)
    return float(np.arctan2(d[1], d[0]))

