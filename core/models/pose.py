"""Face pose editing by pixel sampling + inpainting (Yin 2022, ch. 3; Yin et al., IJCB 2020).

The pose of a face is given by its 68 3D landmarks (dlib/iBUG indexing). Three stages:

 1. Preprocessing (`preprocess`, thesis §3.3.1): the side of the face best exposed in both the
    input and the target (largest product of the two half-face landmark bounding boxes) is aligned
    to the target's landmarks by a least-squares similarity -> I_tf. Deviation: the fit leaves out the
    jaw contour (a silhouette that slides with yaw; with it, faces get rescaled by up to +-25% and the
    alignment is worse than none on our already aligned crops) -- see `_SIDE_L`.
 2. `PixelAttentionSampler` (PAS, §3.3.2): an embedder of convolutions with conditional instance
    norm (CIN) on the target 3D landmarks and SAGAN self-attention predicts, for every output pixel,
    the input coordinate to sample (a dense sampling grid, as a spatial transformer's but free-form).
    Differences from the thesis (say so in reports): the grid is decoded by a small conv decoder at
    1/2 resolution and upsampled (the thesis's fully connected sampler from a 512-d vector would need
    512 x 128 x 128 x 2 = 16.8M weights for the last layer alone), it is predicted as an offset from
    the identity grid of I_tf (starts as "no change"), the network also sees the landmark segmentation
    maps of I_tf and of the target, and it predicts a validity / attention mask (which warped pixels
    are trustworthy; out-of-image samples are always 0). The warp is composed with the preprocessing
    similarity, so the input is resampled once.
 3. `PoseInpainter` (§3.3.3): U-Net (gated-conv encoder from `deocclusion`, decoder with CIN on the
    target 3D landmarks and an identity feature vector, self-attention at 16 x 16) that fills holes and
    removes sampling artefacts. The thesis conditions on a pre-trained LightCNN's features; we cannot
    ship a face-recognition net, so the identity vector comes from a small encoder of the input photo
    that is part of this model (trained end to end, optionally distilled towards the training-only
    MobileFaceNet descriptor through `distill_head`).
 `ProjectionDiscriminator` (Miyato & Koyama 2018; training only): spectral-norm conv net whose score is
 psi(phi(x)) + <embed(landmarks), phi(x)>, plus a patch head.

Geometry (pure torch, runs without dlib/OpenCV): `fit_template` lifts 2D landmarks + head pose to 3D
with OpenFace's mean face (the template `core.face` uses for solvePnP; weak perspective: rotation from
the known yaw/pitch, in-plane rotation + scale + translation by least squares), `rotate_landmarks`
turns 3D landmarks from one pose to another about the head centre, `canonical_align` re-frames
landmarks like `core.face.align_matrix` (FFHQ recipe). 3D landmarks use `core.face`'s `landmarks3d`
convention: [x, y] image pixels, z = depth towards the viewer in the same pixel units (relative).
Pose: (yaw, pitch, roll) degrees in `core.face`'s convention (yaw > 0 = face turned to image right,
pitch > 0 = looking up, roll > 0 = counter-clockwise tilt in the image).

Images are float [N, 3, S, S] in [0, 1]; landmarks are pixel-index coordinates of the S px crop.
"""
from __future__ import annotations

import functools
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import ConfigModule
from .deocclusion import GatedConv, SelfAttention

# core.face's canonical frame (CENTER_X, CENTER_Y, SCALE); duplicated here because core.face imports
# OpenCV and the GPU machine has neither it nor dlib. tests/core/models/test_pose_model.py checks they agree.
CENTER_X, CENTER_Y, SCALE = -0.0012, 0.0062, 0.4948

# Mirror permutation of the 68 dlib landmarks (index i of a flipped face = FLIP68[i] of the original).
FLIP68 = (list(range(16, -1, -1)) + list(range(26, 16, -1)) + [27, 28, 29, 30] + [35, 34, 33, 32, 31]
          + [45, 44, 43, 42, 47, 46] + [39, 38, 37, 36, 41, 40]
          + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55] + [64, 63, 62, 61, 60, 67, 66, 65])

# Half faces, "l" = the image's left side (the subject's right: brow 17-21, eye 36-41, nose wing, mouth half).
# Used to fit the preprocessing similarity. The jaw contour (0-7) is left out: it is a silhouette whose points
# slide with yaw, and with it the fit rescales faces by up to +-25% (val pairs: landmark NME 0.211 with the jaw,
# 0.201 without, 0.191 for the unaligned canonical crops; landmark-map Dice 0.358 / 0.414 / 0.405).
_SIDE_L = list(range(17, 22)) + list(range(36, 42)) + [31, 32, 48, 49, 50, 58, 59, 60, 61, 67]
_MIDLINE = [27, 28, 29, 30, 33, 51, 57, 62, 66]
_SIDE_BOX_L = list(range(0, 8)) + _SIDE_L          # the exposed-side test uses the whole half, jaw included
_SIDE_R = [FLIP68[i] for i in _SIDE_L]
_SIDE_BOX_R = [FLIP68[i] for i in _SIDE_BOX_L]

# Landmark segmentation map classes (channels); background is 1 - sum. "_l" = image left.
REGIONS = ("face", "nose", "brow_l", "brow_r", "eye_l", "eye_r", "lips", "mouth")
NUM_REGIONS = len(REGIONS)


# ============================================================================================ geometry

@functools.lru_cache(maxsize=None)
def _template_np() -> np.ndarray:
    path = os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets", "face3d_68.txt")
    return np.loadtxt(path, dtype=np.float64) * np.array([1.0, 1.0, -1.0])  # camera axes: z away from viewer


def mean_face_3d(device=None, dtype=torch.float32) -> torch.Tensor:
    """[68, 3] OpenFace mean face in camera axes (x right, y down, z away from the viewer), as core.face."""
    return torch.tensor(_template_np(), device=device, dtype=dtype)


def rotation_matrix(yaw: torch.Tensor, pitch: torch.Tensor, roll: torch.Tensor | None = None) -> torch.Tensor:
    """Batched `core.face.rotation_matrix`: degrees [N] -> [N, 3, 3] camera-axes rotation (model -> camera)."""
    yaw = torch.as_tensor(yaw, dtype=torch.float32)
    pitch = torch.as_tensor(pitch, dtype=torch.float32, device=yaw.device)
    roll = torch.zeros_like(yaw) if roll is None else torch.as_tensor(roll, dtype=torch.float32, device=yaw.device)
    y, p, r = (torch.deg2rad(-a) for a in (yaw, pitch, roll))
    one, zero = torch.ones_like(y), torch.zeros_like(y)
    rx = torch.stack([one, zero, zero, zero, p.cos(), -p.sin(), zero, p.sin(), p.cos()], -1).reshape(*y.shape, 3, 3)
    ry = torch.stack([y.cos(), zero, y.sin(), zero, one, zero, -y.sin(), zero, y.cos()], -1).reshape(*y.shape, 3, 3)
    rz = torch.stack([r.cos(), -r.sin(), zero, r.sin(), r.cos(), zero, zero, zero, one], -1).reshape(*y.shape, 3, 3)
    return rz @ ry @ rx


def similarity_lstsq(src: torch.Tensor, dst: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Weighted least-squares similarity (rotation, uniform scale, translation) src -> dst.

    src, dst [N, K, 2]; weight [N, K] or None -> [N, 2, 3] with [x', y'] = [[a, -b], [b, a]] [x, y] + t."""
    src, dst = src.float(), dst.float()
    w = torch.ones(src.shape[:2], device=src.device) if weight is None else weight.float()
    w = w / w.sum(1, keepdim=True).clamp(min=1e-8)
    ms, md = (src * w[..., None]).sum(1), (dst * w[..., None]).sum(1)
    p, q = src - ms[:, None], dst - md[:, None]
    norm = (w * (p * p).sum(-1)).sum(1).clamp(min=1e-8)
    a = (w * (p * q).sum(-1)).sum(1) / norm
    b = (w * (p[..., 0] * q[..., 1] - p[..., 1] * q[..., 0])).sum(1) / norm
    lin = torch.stack([torch.stack([a, -b], -1), torch.stack([b, a], -1)], -2)      # [N, 2, 2]
    t = md - (lin @ ms[..., None])[..., 0]
    return torch.cat([lin, t[..., None]], -1)


def apply_affine(m: torch.Tensor, pts: torch.Tensor) -> torch.Tensor:
    """[N, 2, 3] affine, points [N, K, 2] -> [N, K, 2]."""
    return pts @ m[:, :, :2].transpose(1, 2) + m[:, None, :, 2]


def invert_affine(m: torch.Tensor) -> torch.Tensor:
    lin = torch.linalg.inv(m[:, :, :2])
    return torch.cat([lin, -(lin @ m[:, :, 2:])], -1)


def compose_affine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a after b: x -> a(b(x))."""
    return torch.cat([a[:, :, :2] @ b[:, :, :2], a[:, :, :2] @ b[:, :, 2:] + a[:, :, 2:]], -1)


def transform_landmarks3d(lm3d: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """A 2D similarity [N, 2, 3] applied to 3D landmarks [N, 68, 3]: x, y mapped, z scaled by its scale."""
    scale = torch.linalg.det(m[:, :, :2]).abs().sqrt()
    return torch.cat([apply_affine(m, lm3d[..., :2]), lm3d[..., 2:] * scale[:, None, None]], -1)


def flip_landmarks(lm: torch.Tensor, size: int) -> torch.Tensor:
    """Landmarks [N, 68, 2 or 3] of a horizontally flipped S px image (x -> S - 1 - x, left/right re-indexed)."""
    out = lm[:, FLIP68].clone()
    out[..., 0] = size - 1 - out[..., 0]
    return out


def fit_template(lm2d: torch.Tensor, yaw: torch.Tensor, pitch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Lift 2D landmarks to 3D with the mean face seen at a known yaw/pitch (weak perspective).

    The mean face is rotated by (yaw, pitch), projected orthographically, and matched to the 2D landmarks by
    a least-squares similarity (its rotation is the crop's roll). The returned 3D landmarks keep the
    measured x, y exactly and take the template's depth (scaled), like `core.face.head_pose`'s landmarks3d.

    lm2d [N, 68, 2] pixels, yaw/pitch [N] degrees -> (lm3d [N, 68, 3], pose [N, 3] = yaw, pitch, roll in
    this image frame)."""
    lm2d = lm2d.float()
    r = rotation_matrix(yaw.to(lm2d.device), pitch.to(lm2d.device))                  # [N, 3, 3]
    pts = mean_face_3d(lm2d.device) @ r.transpose(1, 2)                              # [N, 68, 3] camera axes
    m = similarity_lstsq(pts[..., :2], lm2d)
    scale = torch.linalg.det(m[:, :, :2]).abs().sqrt()
    theta = torch.atan2(m[:, 1, 0], m[:, 0, 0])                                      # in-plane rotation
    z = -pts[..., 2] * scale[:, None]                                                # towards the viewer
    lm3d = torch.cat([lm2d, z[..., None]], -1)
    roll = -torch.rad2deg(theta)                                                     # Rz(theta) = our roll of -theta
    return lm3d, torch.stack([yaw.float().to(lm2d.device), pitch.float().to(lm2d.device), roll], -1)


HEAD_DEPTH = 60.0  # rotation centre behind the landmarks' centroid, in mean-face units (about the ears' depth)


def head_centre(lm3d: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    """Rotation centre [N, 3] in camera axes: centroid pushed HEAD_DEPTH (scaled) behind the face."""
    cam = lm3d * torch.tensor([1.0, 1.0, -1.0], device=lm3d.device)
    tmpl = mean_face_3d(lm3d.device)
    scale = (lm3d[:, 45] - lm3d[:, 36]).norm(dim=-1) / (tmpl[45] - tmpl[36]).norm()
    back = rotation_matrix(pose[:, 0], pose[:, 1], pose[:, 2])[..., 2]               # model +z in camera axes
    return cam.mean(1) + back * HEAD_DEPTH * scale[:, None]


def rotate_landmarks(lm3d: torch.Tensor, pose_from: torch.Tensor, pose_to: torch.Tensor,
                     centre: torch.Tensor | None = None) -> torch.Tensor:
    """Turn a head from pose_from to pose_to ([N, 3] yaw, pitch, roll degrees) about its centre.

    lm3d [N, 68, 3] (x, y pixels, z towards the viewer) -> rotated [N, 68, 3]; project = [..., :2].
    With pose_to == pose_from the landmarks come back unchanged."""
    lm3d = lm3d.float()
    flip_z = torch.tensor([1.0, 1.0, -1.0], device=lm3d.device)
    r_from = rotation_matrix(pose_from[:, 0], pose_from[:, 1], pose_from[:, 2]).to(lm3d.device)
    r_to = rotation_matrix(pose_to[:, 0], pose_to[:, 1], pose_to[:, 2]).to(lm3d.device)
    rel = r_to @ r_from.transpose(1, 2)
    c = head_centre(lm3d, pose_from.to(lm3d.device)) if centre is None else centre
    cam = lm3d * flip_z - c[:, None]
    return ((cam @ rel.transpose(1, 2)) + c[:, None]) * flip_z


def align_matrix(lm2d: torch.Tensor, size: int) -> torch.Tensor:
    """Batched `core.face.align_matrix` (FFHQ frame, calibrated centre/scale): [N, 68, 2] -> [N, 2, 3]."""
    lm = lm2d.double()
    eye_l, eye_r = lm[:, 36:42].mean(1), lm[:, 42:48].mean(1)
    eye_avg, eye_to_eye = (eye_l + eye_r) / 2, eye_r - eye_l
    mouth_avg = (lm[:, 48] + lm[:, 54]) / 2
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - eye_to_mouth.flip(-1) * torch.tensor([-1.0, 1.0], dtype=lm.dtype, device=lm.device)
    x = x / x.norm(dim=-1, keepdim=True)
    x = x * torch.maximum(eye_to_eye.norm(dim=-1) * 2.0, eye_to_mouth.norm(dim=-1) * 1.8)[:, None]
    c = eye_avg + eye_to_mouth * 0.1
    s = SCALE * size / x.norm(dim=-1)
    cos, sin = (x / x.norm(dim=-1, keepdim=True)).unbind(-1)
    lin = s[:, None, None] * torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)
    t = torch.tensor([(0.5 + CENTER_X) * size, (0.5 + CENTER_Y) * size], dtype=lm.dtype, device=lm.device) \
        - (lin @ c[..., None])[..., 0]
    return torch.cat([lin, t[..., None]], -1).to(lm2d.dtype if lm2d.is_floating_point() else torch.float32)


def canonical_align(lm: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Re-frame landmarks [N, 68, 2|3] into the canonical crop of `size` px -> (landmarks, matrix [N, 2, 3])."""
    m = align_matrix(lm[..., :2], size)
    out = transform_landmarks3d(lm, m) if lm.shape[-1] == 3 else apply_affine(m, lm)
    return out, m


def target_landmarks(lm3d: torch.Tensor, pose: torch.Tensor, yaw: torch.Tensor, pitch: torch.Tensor,
                     size: int, realign: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Target 3D landmarks for an absolute target yaw/pitch (degrees [N]; roll kept), re-framed in the canonical
    crop (so they look like the landmarks of an aligned photo at that pose) -> (lm3d [N, 68, 3], matrix
    [N, 2, 3] from the rotated landmarks' frame to the canonical one; identity when realign=False).

    lm3d / pose as `fit_template` returns them for the input crop (the pose must be the crop's: its roll
    differs from the photo's). The edited face comes out in the re-framed crop: with M the photo -> input crop
    matrix (`core.face.align_face`), the output crop is `compose_affine(matrix, M)` of the photo (paste-back)."""
    to = torch.stack([yaw.float().to(pose.device), pitch.float().to(pose.device), pose[:, 2].float()], -1)
    rot = rotate_landmarks(lm3d, pose, to)
    if not realign:
        eye = torch.eye(2, 3, device=lm3d.device).expand(len(lm3d), 2, 3)
        return rot, eye
    return canonical_align(rot, size)


def landmark_code(lm3d: torch.Tensor, size: int) -> torch.Tensor:
    """[N, 68, 3] pixels -> [N, 204] conditioning vector (x, y centred in [-1, 1], z / (S / 2))."""
    half = size / 2
    return torch.cat([(lm3d[..., :2] - (half - 0.5)) / half, lm3d[..., 2:] / half], -1).flatten(1)


# ============================================================================================ rasterising

def _grid(size: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    ys, xs = torch.meshgrid(torch.arange(size, device=device, dtype=torch.float32),
                            torch.arange(size, device=device, dtype=torch.float32), indexing="ij")
    return xs.reshape(1, 1, -1), ys.reshape(1, 1, -1)


def _window(verts: torch.Tensor, size: int, margin: float) -> tuple[int, int, int, int]:
    """Pixel box (x0, x1, y0, y1), end exclusive, holding every polygon of the batch plus a margin."""
    lo = (verts.detach().amin((0, 1)) - margin).floor().clamp(0, size - 1)
    hi = (verts.detach().amax((0, 1)) + margin).ceil().clamp(0, size - 1)
    x0, y0, x1, y1 = (int(v) for v in (lo[0], lo[1], hi[0], hi[1]))
    return x0, max(x1 + 1, x0 + 1), y0, max(y1 + 1, y0 + 1)


def _seg_dist(a: torch.Tensor, b: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    """Distance from pixels [1, 1, P] to segments a -> b ([N, E, 2]) -> min over segments [N, P]."""
    d = b - a
    px, py = xs - a[..., 0:1], ys - a[..., 1:2]                                       # [N, E, P]
    t = ((px * d[..., 0:1] + py * d[..., 1:2]) / (d * d).sum(-1, keepdim=True).clamp(min=1e-6)).clamp(0, 1)
    return ((px - t * d[..., 0:1]) ** 2 + (py - t * d[..., 1:2]) ** 2).min(1).values.clamp(min=0).sqrt()


def _in_window(fn, verts: torch.Tensor, size: int, margin: float) -> torch.Tensor:
    """Evaluate a signed distance fn(verts, xs, ys) -> [N, P] on the batch's bounding window only; -1e4 elsewhere."""
    x0, x1, y0, y1 = _window(verts, size, margin)
    ys, xs = torch.meshgrid(torch.arange(y0, y1, device=verts.device, dtype=torch.float32),
                            torch.arange(x0, x1, device=verts.device, dtype=torch.float32), indexing="ij")
    sd = fn(verts, xs.reshape(1, 1, -1), ys.reshape(1, 1, -1)).reshape(len(verts), y1 - y0, x1 - x0)
    out = torch.full((len(verts), size, size), -1e4, device=verts.device, dtype=sd.dtype)
    out[:, y0:y1, x0:x1] = sd
    return out


def _polygon(verts: torch.Tensor, xs: torch.Tensor, ys: torch.Tensor) -> torch.Tensor:
    a, b = verts, verts.roll(-1, 1)
    dist = _seg_dist(a, b, xs, ys)
    ya, yb, xa, xb = a[..., 1:2], b[..., 1:2], a[..., 0:1], b[..., 0:1]
    cross = ((ya > ys) != (yb > ys)) & (xs < (xb - xa) * (ys - ya) / (yb - ya + 1e-6) + xa)
    return torch.where((cross.sum(1) % 2) == 1, dist, -dist)


def polygon_sdf(verts: torch.Tensor, size: int, margin: float = 4.0) -> torch.Tensor:
    """Signed distance (px, > 0 inside) of closed polygons [N, V, 2] at pixel centres -> [N, S, S]
    (exact within `margin` px of the polygons' bounding box, -1e4 beyond)."""
    return _in_window(_polygon, verts, size, margin)


def polyline_sdf(verts: torch.Tensor, size: int, width: torch.Tensor, margin: float = 4.0) -> torch.Tensor:
    """Signed distance of thick open polylines [N, V, 2] with width [N] -> [N, S, S]."""
    def fn(v, xs, ys):
        return width[:, None] / 2 - _seg_dist(v[:, :-1], v[:, 1:], xs, ys)
    return _in_window(fn, verts, size, margin + float(width.detach().max()) / 2)


def region_maps(lm: torch.Tensor, size: int, softness: float | None = None) -> torch.Tensor:
    """Landmark segmentation maps (the thesis's I_seg / J_seg): [N, 68, 2+] -> [N, NUM_REGIONS, S, S].

    Soft, mutually exclusive (later regions of REGIONS are drawn on top; background = 1 - sum), anti-aliased
    over `softness` px (default S / 128), differentiable in the landmarks. Classes: face (jaw line closed
    over the brows raised by 40% of the eye-mouth distance, i.e. face + forehead), nose (triangle 27-31-35
    and the bridge), brows (thick polylines), eyes, lips (outer lip contour), mouth (inner contour)."""
    lm = lm[..., :2].float()
    soft = softness if softness is not None else size / 128
    margin = 8 * soft
    eye_l, eye_r = lm[:, 36:42].mean(1), lm[:, 42:48].mean(1)
    iod = (eye_r - eye_l).norm(dim=-1).clamp(min=1.0)                                # [N]
    eye_avg, mouth_avg = (eye_l + eye_r) / 2, (lm[:, 48] + lm[:, 54]) / 2
    brows_up = lm[:, list(range(26, 16, -1))] + 0.4 * (eye_avg - mouth_avg)[:, None]
    face = torch.cat([lm[:, 0:17], brows_up], 1)
    nose = torch.maximum(polygon_sdf(lm[:, [27, 31, 32, 33, 34, 35]], size, margin),
                         polyline_sdf(lm[:, 27:31], size, 0.22 * iod, margin))
    sdfs = [polygon_sdf(face, size, margin), nose,
            polyline_sdf(lm[:, 17:22], size, 0.12 * iod, margin), polyline_sdf(lm[:, 22:27], size, 0.12 * iod, margin),
            polygon_sdf(lm[:, 36:42], size, margin), polygon_sdf(lm[:, 42:48], size, margin),
            polygon_sdf(lm[:, 48:60], size, margin), polygon_sdf(lm[:, 60:68], size, margin)]
    probs = [torch.sigmoid(s / soft) for s in sdfs]
    out, rest = [None] * len(probs), torch.ones_like(probs[0])
    for k in range(len(probs) - 1, -1, -1):                                           # top region first
        out[k] = probs[k] * rest
        rest = rest * (1 - probs[k])
    return torch.stack(out, 1)


def landmark_heatmaps(lm: torch.Tensor, size: int, sigma: float | None = None) -> torch.Tensor:
    """Gaussian heat maps of the 68 points: [N, 68, 2+] -> [N, 68, S, S] (peak 1, sigma default S / 64)."""
    sigma = sigma if sigma is not None else size / 64
    xs, ys = _grid(size, lm.device)
    d2 = (xs - lm[..., 0:1].float()) ** 2 + (ys - lm[..., 1:2].float()) ** 2
    return torch.exp(-d2 / (2 * sigma ** 2)).reshape(lm.shape[0], lm.shape[1], size, size)


# ============================================================================================ warping

def pixel_to_norm(p: torch.Tensor, size: int) -> torch.Tensor:
    """Pixel-index coordinates -> grid_sample coordinates (align_corners=False)."""
    return (2 * p + 1) / size - 1


def norm_to_pixel(u: torch.Tensor, size: int) -> torch.Tensor:
    return ((u + 1) * size - 1) / 2


def identity_grid(n: int, size: int, device) -> torch.Tensor:
    """[N, S, S, 2] grid that samples every pixel where it is."""
    xs, ys = _grid(size, device)
    return pixel_to_norm(torch.stack([xs, ys], -1).reshape(1, size, size, 2), size).expand(n, -1, -1, -1)


def affine_grid_px(m_inv: torch.Tensor, size: int) -> torch.Tensor:
    """Grid [N, S, S, 2] sampling the source at m_inv(p) for every output pixel p (pixel-space affine)."""
    xs, ys = _grid(size, m_inv.device)
    p = torch.stack([xs, ys], -1).reshape(1, -1, 2).expand(len(m_inv), -1, -1)
    return pixel_to_norm(apply_affine(m_inv, p), size).reshape(len(m_inv), size, size, 2)


def sample(image: torch.Tensor, grid: torch.Tensor) -> torch.Tensor:
    return F.grid_sample(image, grid.to(image.dtype), mode="bilinear", padding_mode="zeros", align_corners=False)


def inside(grid: torch.Tensor, size: int) -> torch.Tensor:
    """1 where a grid [N, H, W, 2] samples inside the image (half a pixel of slack) -> [N, 1, H, W]."""
    lim = 1 + 0.5 / size
    return (grid.abs() <= lim).all(-1)[:, None].float()


def preprocess(image: torch.Tensor, src_lm: torch.Tensor, tgt_lm: torch.Tensor, half_face: bool = True) -> dict:
    """Thesis §3.3.1: align the side of the input face best exposed in both faces to the target landmarks.

    The exposed side is the half (image left / right) whose landmark bounding box has the largest product of
    areas in the input and the target; a least-squares similarity on that side's points (brow, eye, nose wing,
    mouth half) and the midline maps the input onto the target. half_face=False: no alignment (identity).
    image [N, 3, S, S], src_lm / tgt_lm [N, 68, 2+] -> dict(matrix [N, 2, 3] src px -> aligned px,
    aligned [N, 3, S, S] (I_tf), aligned_mask [N, 1, S, S] (inside the input), landmarks [N, 68, 2] of I_tf,
    side [N] 0 = image-left half, 1 = right)."""
    size = image.shape[-1]
    src, tgt = src_lm[..., :2].float(), tgt_lm[..., :2].float()

    def area(lm, idx):
        p = lm[:, idx]
        ext = p.max(1).values - p.min(1).values
        return ext[:, 0] * ext[:, 1]

    score_l = area(src, _SIDE_BOX_L) * area(tgt, _SIDE_BOX_L)
    score_r = area(src, _SIDE_BOX_R) * area(tgt, _SIDE_BOX_R)
    side = (score_r > score_l).long()
    if half_face:
        w = torch.zeros(len(src), 68, device=src.device)
        w[:, _MIDLINE] = 1.0
        w[:, _SIDE_L] = (side == 0).float()[:, None]
        w[:, _SIDE_R] = (side == 1).float()[:, None]
        m = similarity_lstsq(src, tgt, w)
    else:
        m = torch.eye(2, 3, device=src.device).expand(len(src), 2, 3).clone()
    grid = affine_grid_px(invert_affine(m), size)
    return dict(matrix=m, aligned=sample(image, grid), aligned_mask=inside(grid, size),
                landmarks=apply_affine(m, src), side=side)


# ============================================================================================ layers

class CondInstanceNorm(nn.Module):
    """Instance norm whose affine (1 + gamma, beta) is predicted from a condition vector (Dumoulin et al. 2017)."""

    def __init__(self, channels: int, cond_dim: int):
        super().__init__()
        self.norm = nn.InstanceNorm2d(channels, affine=False)
        self.affine = nn.Linear(cond_dim, 2 * channels)
        nn.init.zeros_(self.affine.weight)
        nn.init.zeros_(self.affine.bias)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        g, b = self.affine(cond).chunk(2, 1)
        return self.norm(x) * (1 + g[..., None, None]) + b[..., None, None]


class CINConv(nn.Module):
    """conv -> CIN -> LeakyReLU(0.2)."""

    def __init__(self, cin: int, cout: int, cond_dim: int, stride: int = 1, k: int = 3):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2)
        self.norm = CondInstanceNorm(cout, cond_dim)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(self.norm(self.conv(x), cond), 0.2)


class CINResBlock(nn.Module):
    def __init__(self, ch: int, cond_dim: int):
        super().__init__()
        self.a = CINConv(ch, ch, cond_dim)
        self.b = CINConv(ch, ch, cond_dim)

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return x + self.b(self.a(x, cond), cond)


def _mlp(cin: int, hidden: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(cin, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, cout), nn.LeakyReLU(0.2))


# ============================================================================================ PAS

class PixelAttentionSampler(ConfigModule):
    """Input face + its landmarks + target 3D landmarks -> sampling grid, warped face, validity mask.

    Embedder: conv + CIN(target landmarks) blocks 128 -> 16 px, self-attention and residual CIN blocks at
    16 px; decoder back to `flow_res` px with additive skips; head: 2 offset channels (grid_sample units,
    zero at init) + 1 mask logit. Input channels: I_tf (3), landmark maps of I_tf and of the target
    (2 x NUM_REGIONS)."""

    def __init__(self, image_size: int = 128, widths: tuple[int, ...] = (32, 64, 128, 192), blocks: int = 1,
                 cond_dim: int = 256, flow_res: int = 64, half_face: bool = True):
        super().__init__(image_size=image_size, widths=list(widths), blocks=blocks, cond_dim=cond_dim,
                         flow_res=flow_res, half_face=half_face)
        w = list(widths)
        self.half_face = half_face
        self.image_size, self.flow_res = image_size, flow_res
        self.cond = _mlp(68 * 3, cond_dim, cond_dim)
        self.stem = CINConv(3 + 2 * NUM_REGIONS, w[0], cond_dim)
        self.down = nn.ModuleList(nn.ModuleList([CINConv(a, b, cond_dim, stride=2), CINConv(b, b, cond_dim)])
                                  for a, b in zip(w[:-1], w[1:]))
        self.attn_in = SelfAttention(w[-1])
        self.res = nn.ModuleList(CINResBlock(w[-1], cond_dim) for _ in range(blocks))
        self.attn_out = SelfAttention(w[-1])
        bottom = image_size // 2 ** (len(w) - 1)                                      # bottleneck resolution
        n_up = max(0, min(len(w) - 1, int(round(math.log2(max(1, flow_res // bottom))))))
        self.up = nn.ModuleList()
        ch = w[-1]
        for i in range(n_up):
            nxt = w[-2 - i]
            self.up.append(nn.ModuleList([nn.Conv2d(ch, nxt, 3, 1, 1), CINConv(nxt, nxt, cond_dim)]))
            ch = nxt
        self.head = nn.Conv2d(ch, 3, 3, 1, 1)
        nn.init.zeros_(self.head.weight)
        with torch.no_grad():
            self.head.bias.copy_(torch.tensor([0.0, 0.0, 2.0]))                      # offsets 0, mask ~0.88

    def predict(self, aligned: torch.Tensor, src_maps: torch.Tensor, tgt_maps: torch.Tensor,
                tgt_lm3d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Network only: -> (offsets [N, 2, R, R] in grid units, mask logits [N, 1, R, R]) at flow_res."""
        cond = self.cond(landmark_code(tgt_lm3d, self.image_size).to(aligned.dtype))
        h = self.stem(torch.cat([aligned * 2 - 1, src_maps * 2 - 1, tgt_maps * 2 - 1], 1), cond)
        skips = [h]
        for conv_s2, conv in self.down:
            h = conv(conv_s2(h, cond), cond)
            skips.append(h)
        h = self.attn_in(h)
        for blk in self.res:
            h = blk(h, cond)
        h = self.attn_out(h)
        for (reduce, fuse), skip in zip(self.up, reversed(skips[:-1])):
            h = F.interpolate(reduce(h), size=skip.shape[-2:], mode="bilinear", align_corners=False)
            h = fuse(F.leaky_relu(h, 0.2) + skip, cond)
        out = self.head(h)
        return out[:, :2], out[:, 2:]

    def forward(self, image: torch.Tensor, src_lm: torch.Tensor, tgt_lm3d: torch.Tensor,
                pre: dict | None = None, with_maps: bool | None = None) -> dict:
        """image [N, 3, S, S] in [0, 1], src_lm [N, 68, 2+] (input's landmarks), tgt_lm3d [N, 68, 3] ->
        dict: warped [N, 3, S, S], mask [N, 1, S, S] (validity in [0, 1]), mask_logit, grid [N, S, S, 2]
        (grid_sample coordinates into `image`), offsets [N, 2, R, R], warped_maps (the input's landmark maps
        carried by the same grid: J_seg_fake; only with `with_maps`, default = in training mode), tgt_maps,
        and the preprocessing (aligned, aligned_mask, matrix, landmarks)."""
        size = image.shape[-1]
        n = image.shape[0]
        with torch.autocast(image.device.type, enabled=False):
            pre = preprocess(image.float(), src_lm, tgt_lm3d, self.half_face) if pre is None else pre
            src_maps_tf = region_maps(pre["landmarks"], size)
            tgt_maps = region_maps(tgt_lm3d, size)
        offsets, logit = self.predict(pre["aligned"], src_maps_tf, tgt_maps, tgt_lm3d)
        with torch.autocast(image.device.type, enabled=False):
            offsets, logit = offsets.float(), logit.float()
            if offsets.shape[-1] != size:
                off_up = F.interpolate(offsets, size=(size, size), mode="bilinear", align_corners=False)
                logit_up = F.interpolate(logit, size=(size, size), mode="bilinear", align_corners=False)
            else:
                off_up, logit_up = offsets, logit
            grid_tf = identity_grid(n, size, image.device) + off_up.permute(0, 2, 3, 1)
            # grid in I_tf -> pixels of I_tf -> pixels of the input (inverse preprocessing) -> grid units
            p_tf = norm_to_pixel(grid_tf, size).reshape(n, -1, 2)
            grid = pixel_to_norm(apply_affine(invert_affine(pre["matrix"]), p_tf), size).reshape(n, size, size, 2)
            warped = sample(image.float(), grid)
            valid = inside(grid, size)
            mask = torch.sigmoid(logit_up) * valid
            with_maps = self.training if with_maps is None else with_maps
            warped_maps = sample(region_maps(src_lm, size), grid) if with_maps else None
        return dict(warped=warped, mask=mask, mask_logit=logit_up, valid=valid, grid=grid, offsets=offsets,
                    warped_maps=warped_maps, tgt_maps=tgt_maps, **{k: pre[k] for k in
                                                                   ("aligned", "aligned_mask", "matrix", "landmarks")})


# ============================================================================================ inpainter

class IdentityEncoder(nn.Module):
    """Small conv encoder of the input photo -> identity feature vector (stands in for LightCNN features)."""

    def __init__(self, dim: int = 256, width: int = 32):
        super().__init__()
        w = [width, 2 * width, 4 * width, 8 * width, 8 * width]
        layers, cin = [], 3
        for c in w:
            layers += [nn.Conv2d(cin, c, 3, 2, 1), nn.LeakyReLU(0.2)]
            cin = c
        self.convs = nn.Sequential(*layers)
        self.fc = nn.Linear(cin, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=(96, 96), mode="bilinear", align_corners=False, antialias=True) if x.shape[-1] > 96 else x
        h = self.convs(x * 2 - 1)
        return self.fc(h.mean((2, 3)))


class PoseInpainter(ConfigModule):
    """(warped face, validity mask, target 3D landmarks, input photo) -> final face [N, 3, S, S] in [0, 1].

    Encoder: gated convolutions (the image has holes) 128 -> 8 px; CIN residual blocks at 8 px; decoder with
    CIN conditioned on [target landmark code, identity vector] and additive skips, self-attention at 16 px.
    Input channels: image (3), mask (1), target landmark maps (NUM_REGIONS)."""

    def __init__(self, image_size: int = 128, widths: tuple[int, ...] = (24, 48, 96, 192, 192), blocks: int = 2,
                 cond_dim: int = 256, id_dim: int = 256, id_width: int = 32, distill_dim: int = 256):
        super().__init__(image_size=image_size, widths=list(widths), blocks=blocks, cond_dim=cond_dim, id_dim=id_dim,
                         id_width=id_width, distill_dim=distill_dim)
        w = list(widths)
        self.image_size = image_size
        self.identity = IdentityEncoder(id_dim, id_width)
        self.distill_head = nn.Linear(id_dim, distill_dim)  # training aid: match a face-recognition descriptor
        self.cond = _mlp(68 * 3 + id_dim, cond_dim, cond_dim)
        self.stem = GatedConv(4 + NUM_REGIONS, w[0], k=3)
        self.down = nn.ModuleList(nn.Sequential(GatedConv(a, b, stride=2), GatedConv(b, b)) for a, b in zip(w[:-1], w[1:]))
        self.res = nn.ModuleList(CINResBlock(w[-1], cond_dim) for _ in range(blocks))
        self.up = nn.ModuleList()
        for a, b in zip(reversed(w[1:]), reversed(w[:-1])):
            self.up.append(nn.ModuleList([nn.Conv2d(a, b, 3, 1, 1), CINConv(b, b, cond_dim)]))
        # self-attention after the decoder level at 16 px (image_size / 2 ** (len(w) - 2 - i) == 16)
        self.attn_after = max(0, min(len(self.up) - 1, len(w) - 2 - int(round(math.log2(max(1, image_size // 16))))))
        self.attention = SelfAttention(w[-2 - self.attn_after])
        self.head = nn.Conv2d(w[0], 3, 3, 1, 1)

    def forward(self, image: torch.Tensor, mask: torch.Tensor, tgt_lm3d: torch.Tensor, source: torch.Tensor,
                tgt_maps: torch.Tensor | None = None, id_feat: torch.Tensor | None = None) -> torch.Tensor:
        """image (warped) / source (input photo, for identity) [N, 3, S, S] in [0, 1], mask [N, 1, S, S]
        (1 = trust the pixel), tgt_lm3d [N, 68, 3] -> [N, 3, S, S] in [0, 1]."""
        size = image.shape[-1]
        if tgt_maps is None:
            with torch.autocast(image.device.type, enabled=False):
                tgt_maps = region_maps(tgt_lm3d, size)
        if id_feat is None:
            id_feat = self.identity(source)
        code = landmark_code(tgt_lm3d, self.image_size).to(id_feat.dtype)
        cond = self.cond(torch.cat([code, id_feat], 1))
        h = self.stem(torch.cat([image * 2 - 1, mask * 2 - 1, tgt_maps.to(image.dtype) * 2 - 1], 1))
        skips = [h]
        for blk in self.down:
            h = blk(h)
            skips.append(h)
        for blk in self.res:
            h = blk(h, cond)
        for i, ((reduce, fuse), skip) in enumerate(zip(self.up, reversed(skips[:-1]))):
            h = F.interpolate(reduce(h), size=skip.shape[-2:], mode="nearest")
            h = fuse(F.leaky_relu(h, 0.2) + skip, cond)
            if i == self.attn_after:
                h = self.attention(h)
        return (torch.tanh(self.head(h)) + 1) / 2


# ============================================================================================ discriminator

class ProjectionDiscriminator(nn.Module):
    """Spectral-norm conv discriminator with a projection term on the target landmark code (training only).

    Returns (global score [N], patch scores [N, 1, h, w], features list): global = linear(phi) +
    <embed(code), phi> with phi = sum-pooled last features (Miyato & Koyama 2018)."""

    def __init__(self, image_size: int = 128, width: int = 64, layers: int = 5, max_width: int = 512):
        super().__init__()
        sn = nn.utils.spectral_norm
        self.image_size = image_size
        chans = [3] + [min(width * 2 ** i, max_width) for i in range(layers)]
        self.blocks = nn.ModuleList(
            nn.Sequential(sn(nn.Conv2d(a, b, 4, 2, 1)), nn.LeakyReLU(0.2), sn(nn.Conv2d(b, b, 3, 1, 1)), nn.LeakyReLU(0.2))
            for a, b in zip(chans[:-1], chans[1:]))
        self.patch_level = max(0, layers - 3)          # patch head after the 16 px level at 128 px
        self.patch = sn(nn.Conv2d(chans[self.patch_level + 1], 1, 3, 1, 1))
        self.linear = sn(nn.Linear(chans[-1], 1))
        self.embed = sn(nn.Linear(68 * 3, chans[-1]))

    def forward(self, image: torch.Tensor, tgt_lm3d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list]:
        h = image * 2 - 1
        feats, patch = [], None
        for i, blk in enumerate(self.blocks):
            h = blk(h)
            feats.append(h)
            if i == self.patch_level:
                patch = self.patch(h)
        phi = h.sum((2, 3))
        code = landmark_code(tgt_lm3d, self.image_size).to(phi.dtype)
        score = self.linear(phi)[:, 0] + (self.embed(code) * phi).sum(1)
        return score, patch, feats


# ============================================================================================ the pair

def edit_pose(sampler: PixelAttentionSampler | None, inpainter: PoseInpainter, image: torch.Tensor,
              src_lm: torch.Tensor, tgt_lm3d: torch.Tensor) -> dict:
    """Run the two stages: -> dict(output, warped, mask, aligned, grid ...). sampler=None: the thesis's ablation
    without PAS (the inpainter gets the half-face aligned input I_tf and its in-image mask)."""
    if sampler is not None:
        out = sampler(image, src_lm, tgt_lm3d)
    else:
        pre = preprocess(image, src_lm, tgt_lm3d)
        out = dict(warped=pre["aligned"], mask=pre["aligned_mask"], **pre)
        out["tgt_maps"] = region_maps(tgt_lm3d, image.shape[-1])
    out["output"] = inpainter(out["warped"], out["mask"], tgt_lm3d, image, tgt_maps=out["tgt_maps"])
    return out
