"""Shards for the learned face front-end (issue 17): aligned crops + 68 landmarks + per-point visibility.

    python -m train.frontend_data [--data ../shared/data] [--out .cache/fe_shards] [--sources ...] [--workers 2]

Labels come from dlib on the clean photo (HOG without upsampling first: these photos are face-centric; then with
one upsampling) and, for CFP's full profiles, where dlib has no reach, from the hand-marked fiducials:

* CFP profile fiducials (30 points: 0-8 contour ear -> chin, 9-11 brow outer -> inner, 12-17 eye, 18-24 nose,
  25-29 lips) are matched to the mean 3D face's 68 points (contour, brow ends, eye centre, nose tip), the head pose
  is fitted by PnP (started at +-90 degrees yaw, the side told by where the nose points), and the 68 points are the
  mean face projected at that pose, as 3D-landmark datasets (300W-LP, AFLW2000-3D) place them. Points on the far
  side of the head are marked not visible. Only images whose fiducials lie inside the image are used: the others
  were downscaled after marking and their fiducials no longer match.
* Everything else: dlib's 68 points, all visible (occluders are pasted at training time, and their pixels tell
  visibility then).

Output `{source}_{size}_{part}.npz` in the `train/shards.py` format, plus `visible` uint8 [N, 68] and
`weight` float32 [N, 68] (the loss weight of each point) and `view` uint8 [N] (0 frontal-ish, 1 CFP profile). Split: the project's (train.data.assign_split, by identity where
there is one; CFP by person).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
from concurrent.futures import ProcessPoolExecutor

import cv2
import numpy as np

from train.data import MAX_PADDED, assign_split, list_source, read_labels
from train.shards import encode_jpeg, write_shard

OUT_DIR = os.path.join(".cache", "fe_shards")
SIZES = {"celebamask": 256, "masked": 256, "cfp": 256, "celeba_id": 128, "utkface": 128}
PART = {256: 1500, 128: 6000}

# CFP profile fiducial -> mean-face point(s) for a face looking towards the image's right (turned to the subject's
# left, so the subject's right side, dlib's jaw 0..8, faces the camera); mirrored for the other side. Contour 0..8
# (ear -> chin) runs along dlib's jaw 0..8.
CFP_TO_68_RIGHT = {**{i: [i] for i in range(9)}, 9: [17], 11: [21], "eye": [36, 37, 38, 39, 40, 41]}
MIRROR_68 = np.array(list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
                     + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40] + [54, 53, 52, 51, 50, 49, 48]
                     + [59, 58, 57, 56, 55] + [64, 63, 62, 61, 60] + [67, 66, 65])


def list_cfp(data: str) -> list[dict]:
    items = []
    for p in sorted(glob.glob(os.path.join(data, "cfp", "images", "*", "*", "*.jpg"))):
        person, view, name = p.split(os.sep)[-3:]
        fid = os.path.join(data, "cfp", "fiducials", person, view, name[:-4] + ".txt")
        items.append(dict(key=f"{person}/{view}/{name}", path=p, group=person, view=view, fiducials=fid))
    return items


def list_items(data: str, source: str) -> list[dict]:
    items = list_cfp(data) if source == "cfp" else list_source(data, source)
    assign_split(items)
    return items


def dlib_landmarks(img: np.ndarray) -> np.ndarray | None:
    from core import face as F

    for up in (0, 1):
        rects, scores, _ = F._hog().run(img, up, 0.0)
        if len(rects):
            r = max(zip(rects, scores), key=lambda t: t[0].area())[0]
            shape = F._shape68()(img, r)
            return np.array([(q.x, q.y) for q in shape.parts()], np.float32)
    return None


def profile_landmarks(fid: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """68 points, their visibility and their loss weight from CFP profile fiducials.

    The hand-marked points that have a 68-point counterpart are kept as they are (weight 1; the eye's six points
    are shifted so that their centre is the fiducials' eye centre, weight 0.5); the others are the mean 3D face
    projected at the best full-profile pose (weight 0.2: a rigid mean face, not this person's)."""
    from core import face as F

    right = fid[21, 0] > fid[0, 0]   # nose tip right of the ear: the face looks towards the image's right
    pick = (lambda idx: np.asarray(idx)) if right else (lambda idx: MIRROR_68[np.asarray(idx)])
    nose = fid[18:25]
    tip = nose[np.argmax(nose[:, 0] if right else -nose[:, 0])]
    pairs = [(pick([i]), fid[i]) for i in range(9)] + [(pick([17]), fid[9]), (pick([21]), fid[11]),
                                                        (pick([30]), tip), (pick(range(36, 42)), fid[12:18].mean(0))]
    mean = F.mean_face_3d()
    model3d = np.array([mean[idx].mean(0) for idx, _ in pairs], np.float64)
    img2d = np.array([p for _, p in pairs], np.float64)
    best = None
    for yaw in range(65, 96, 5):    # CFP profiles are full profiles; orthographic projection, 2D similarity
        for pitch in range(-25, 26, 5):
            R = F.rotation_matrix(yaw if right else -yaw, pitch)
            sim, err = fit_similarity((model3d @ R.T)[:, :2], img2d)
            if best is None or err < best[0]:
                best = (err, R, sim)
    _, R, sim = best
    lm = apply_similarity(sim, (mean @ R.T)[:, :2]).astype(np.float32)
    weight = np.full(68, 0.2, np.float32)
    for idx, p in pairs:
        if len(idx) == 1:
            lm[idx[0]], weight[idx[0]] = p, 1.0
        else:
            lm[idx] += p - lm[idx].mean(0)
            weight[idx] = 0.5
    vis = np.ones(68, np.uint8)
    far = np.array(list(range(9, 17)) + list(range(22, 27)) + list(range(42, 48)) + [34, 35, 53, 54, 55, 63, 64, 65])
    vis[pick(far)] = 0
    return lm, vis, weight


def fit_similarity(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, float]:
    """Least-squares 2D similarity src -> dst (Umeyama): ([2, 3] matrix, RMS error)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    U, S, Vt = np.linalg.svd(b.T @ a)
    D = np.diag([1.0, np.sign(np.linalg.det(U @ Vt))])
    Rm = U @ D @ Vt
    s = np.trace(np.diag(S) @ D) / (a ** 2).sum()
    M = np.concatenate([s * Rm, (mu_d - s * Rm @ mu_s)[:, None]], axis=1)
    return M, float(np.sqrt(((apply_similarity(M, src) - dst) ** 2).sum(1).mean()))


def box_matrix(lm: np.ndarray, size: int) -> np.ndarray:
    """[2, 3] upright crop around the landmarks' box, the box's longer side half the crop (profiles)."""
    lo, hi = lm.min(0), lm.max(0)
    s = 0.5 * size / max(hi - lo)
    c = (lo + hi) / 2
    return np.array([[s, 0, size / 2 - s * c[0]], [0, s, size / 2 - s * c[1]]], np.float64)


def apply_similarity(M: np.ndarray, pts: np.ndarray) -> np.ndarray:
    return pts @ M[:, :2].T + M[:, 2]


def process(item: dict, source: str) -> dict:
    from core import face as F
    from core.errors import FaceLabError
    from core.imageio import load_image

    try:
        img = load_image(item["path"])
    except FaceLabError as e:
        return {"drop": f"unreadable: {e}"}
    view = 0
    if source == "cfp" and item["view"] == "profile":
        fid = np.loadtxt(item["fiducials"], delimiter=",").reshape(-1, 2)
        if len(fid) != 30 or fid[:, 0].max() >= img.shape[1] or fid[:, 1].max() >= img.shape[0]:
            return {"drop": "fiducials off the image"}
        lm, vis, weight = profile_landmarks(fid)
        view = 1
    else:
        lm = dlib_landmarks(img)
        if lm is None:
            return {"drop": "no face"}
        vis, weight = np.ones(68, np.uint8), np.ones(68, np.float32)
    yaw, pitch, roll, _ = F.head_pose(lm, img.shape[:2])
    size = SIZES[source]
    # the canonical crop, black beyond the photo (not mirrored as in the app: mirrored faces would be unlabelled
    # faces for the detector)
    M = F.align_matrix(lm, size) if view == 0 else box_matrix(lm, size)
    crop = cv2.warpAffine(img, M, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_CONSTANT)
    padded = 1.0 - cv2.warpAffine(np.ones(img.shape[:2], np.uint8), M, (size, size), flags=cv2.INTER_NEAREST).mean()
    if padded > MAX_PADDED:
        return {"drop": "crop outside photo"}
    rec = dict(key=item["key"], pose=(yaw, pitch, roll), jpeg=encode_jpeg(crop, quality=88), padded=padded,
               landmarks=(lm @ M[:, :2].T + M[:, 2]).astype(np.float32), visible=vis, weight=weight, view=view)
    if "label_path" in item:
        labels = read_labels(item["label_path"])
        if labels.shape != img.shape[:2]:
            labels = cv2.resize(labels, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_NEAREST)
        rec["labels"] = F.warp_labels(labels, M, size)
    return rec


def _star(args):
    return process(*args)


def build(data: str, out: str, source: str, workers: int) -> dict:
    items = list_items(data, source)
    with ProcessPoolExecutor(workers) as pool:
        recs = list(pool.map(_star, [(it, source) for it in items], chunksize=16))
    kept = [(it, r) for it, r in zip(items, recs) if "drop" not in r]
    drops: dict[str, int] = {}
    for r in recs:
        if "drop" in r:
            drops[r["drop"]] = drops.get(r["drop"], 0) + 1
    size = SIZES[source]
    for old in glob.glob(os.path.join(out, f"{source}_{size}_*.npz")):
        os.remove(old)
    for part, start in enumerate(range(0, len(kept), PART[size])):
        chunk = kept[start:start + PART[size]]
        meta = {
            "key": np.array([r["key"] for _, r in chunk]),
            "split": np.array([it["split"] for it, _ in chunk], np.uint8),
            "landmarks": np.stack([r["landmarks"] for _, r in chunk]),
            "visible": np.stack([r["visible"] for _, r in chunk]),
            "weight": np.stack([r["weight"] for _, r in chunk]),
            "view": np.array([r["view"] for _, r in chunk], np.uint8),
            "pose": np.array([r["pose"] for _, r in chunk], np.float32),
            "padded": np.array([r["padded"] for _, r in chunk], np.float32),
            "race": np.array([it.get("race", -1) for it, _ in chunk], np.int8),
        }
        labels = np.stack([r["labels"] for _, r in chunk]) if "labels" in chunk[0][1] else None
        write_shard(os.path.join(out, f"{source}_{size}_{part:02d}.npz"), [r["jpeg"] for _, r in chunk], meta, labels)
    return {"listed": len(items), "kept": len(kept), "val": int(sum(it["split"] for it, _ in kept)), "dropped": drops}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join("..", "shared", "data"))
    ap.add_argument("--out", default=OUT_DIR)
    ap.add_argument("--sources", default="cfp,celebamask,masked,celeba_id,utkface")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "report.json")
    report = json.load(open(path)) if os.path.exists(path) else {}
    for source in args.sources.split(","):
        report[source] = build(args.data, args.out, source, args.workers)
        print(source, json.dumps(report[source]), flush=True)
        with open(path, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
