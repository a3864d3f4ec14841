"""Train the learned face front-end (issue 17): the detector or the landmark network, on one GPU.

    python -m train.frontend --model landmarks --shards .cache/fe_shards --ckpt .cache/ckpt/frontend \
        --out out/frontend --minutes 20 --device cuda
    python -m train.frontend --model detector  ...   (same arguments)
    python -m train.frontend --model landmarks --shards DIR --out DIR --preview   # one augmented batch, then exit

Data (`python -m train.frontend_data`): aligned crops of CelebAMask-HQ, CelebA identities, UTKFace, real masked
photos and CFP (frontal + full profile) with 68 points, per-point visibility and loss weights. Everything sits
on the GPU as uint8 and is augmented there, per batch:
* occluders (train/occluders.py: glasses/hat/hair/cloth cut from CelebAMask-HQ, face masks cut from the real
  masked photos, hand-like and random shapes with real textures) on 70% of faces; the points keep their clean
  positions and a point under an occluder is labelled not visible;
* landmarks: a crop around the (jittered) landmark box, rotated +-30 degrees (10%: +-70), scaled, flipped with
  the left/right point swap, colour/blur/noise/greyscale;
* detector: 320 px canvases of 1, 4 or 9 cells, one face per cell at a random scale (box 10..330 px) and rotation,
  over real backgrounds (corners of CelebAMask-HQ photos labelled background: walls, posters, text), as a mosaic
  at their own sharpness or enlarged.
Loss: landmarks, L1 on the points (weighted: CFP profiles' projected points count less) + BCE on visibility;
detector, CenterNet's focal loss on the centre heatmap + L1 on log box size and centre offset.
AdamW, warm-up + cosine over the wall-clock budget, bf16 autocast, EMA (exported). Resumable state (model, EMA,
optimiser, step) in --ckpt/{model}_state.pt; a resumed run warms up again at the same peak LR.
"""
from __future__ import annotations

import argparse
import copy
import glob
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F

from core.labels import OCCLUDER
from core.models.face_detector import STRIDE, FaceDetector, decode
from core.models.landmarks import CROP_SCALE, LandmarkNet
from train.frontend_data import MIRROR_68
from train.occluders import OccluderBank, apply_occluders
from train.shards import read_shard

CANVAS = 320
LM_SIZE = 128
HULL = list(range(17)) + [26, 25, 24, 23, 22, 21, 20, 19, 18, 17]   # jaw then brows: the face region


# --------------------------------------------------------------------------- data

class Faces:
    """All shards of one resolution on the device: images uint8 [N, 3, S, S], points, visibility, weights."""

    def __init__(self, paths: list[str], device):
        parts = [read_shard(p) for p in paths]
        cat = lambda k: np.concatenate([p[k] for p in parts])  # noqa: E731
        self.img = torch.from_numpy(cat("images")).permute(0, 3, 1, 2).contiguous().to(device)
        self.pts = torch.from_numpy(cat("landmarks")).float().to(device)
        self.vis = torch.from_numpy(cat("visible")).bool().to(device)
        self.weight = torch.from_numpy(cat("weight")).float().to(device)
        self.split = torch.from_numpy(cat("split")).to(device)
        self.view = torch.from_numpy(cat("view")).to(device)
        self.source = np.concatenate([[os.path.basename(path).split("_")[0]] * len(part["split"])
                                      for path, part in zip(paths, parts)])
        self.labels = torch.from_numpy(cat("labels")).to(device) if all("labels" in p for p in parts) else None

    def __len__(self):
        return len(self.img)


def load_data(shards: str, device) -> dict:
    """{'faces256', 'faces128', 'bank'}: the occluder bank takes CelebAMask-HQ train crops and masked photos."""
    p256 = sorted(glob.glob(os.path.join(shards, "*_256_*.npz")))
    p128 = sorted(glob.glob(os.path.join(shards, "*_128_*.npz")))
    f256, f128 = Faces(p256, device), Faces(p128, device)
    cm = [os.path.join(shards, os.path.basename(p)) for p in p256 if os.path.basename(p).startswith("celebamask")]
    donors = Faces(cm, device)
    keep = donors.split == 0
    masked = torch.from_numpy(f256.source == "masked").to(device) & (f256.split == 0)
    bank = OccluderBank.build(donors.img[keep], donors.labels[keep], f256.img[masked], f256.pts[masked])
    return {"faces256": f256, "faces128": f128, "bank": bank,
            "backgrounds": background_patches(donors.img[keep], donors.labels[keep])}


def background_patches(img: torch.Tensor, labels: torch.Tensor, size: int = 80) -> torch.Tensor:
    """uint8 [M, 3, size, size]: the corners of CelebAMask-HQ photos that are (>= 95%) labelled background:
    real walls, posters, text and foliage at their own sharpness, with no face in them."""
    patches = []
    for ys, xs in ((slice(0, size), slice(0, size)), (slice(0, size), slice(-size, None))):
        bgfrac = (labels[:, ys, xs] == 0).float().flatten(1).mean(1)
        patches.append(img[bgfrac >= 0.95][:, :, ys, xs])
    return torch.cat(patches)


def hull_labels(pts: torch.Tensor, size: int) -> torch.Tensor:
    """int64 [B, S, S]: 1 (skin) inside the jaw+brow polygon, 0 outside: where occluders may be placed."""
    from train.occluders import point_in_polygon

    return point_in_polygon(pts[:, HULL], size, size).long()


def sample_faces(data: dict, b: int, split: int, g=None, masked: bool = True) -> tuple[torch.Tensor, ...]:
    """A batch of 256 px crops (128 px sources upsampled), their points, visibility and weights; 60% from 256.
    masked=False leaves out the real masked photos (their lower-face points are dlib's guesses on the mask)."""
    out = []
    n256 = int(round(b * 0.6))
    for faces, n in ((data["faces256"], n256), (data["faces128"], b - n256)):
        ok = faces.split == split
        if not masked:
            ok &= torch.from_numpy(faces.source != "masked").to(ok.device)
        pool = torch.nonzero(ok)[:, 0]
        idx = pool[torch.randint(len(pool), (n,), device=pool.device, generator=g)]
        img = faces.img[idx].float() / 255
        k = 256 / img.shape[-1]
        if k != 1:
            img = F.interpolate(img, size=256, mode="bilinear", align_corners=False, antialias=False)
        out.append((img, faces.pts[idx] * k, faces.vis[idx], faces.weight[idx]))
    return tuple(torch.cat(t) for t in zip(*out))


def occlude(img, pts, vis, bank, p: float = 0.7):
    """Paste occluders; a point whose pixel is now occluder (or which lies outside the crop) is not visible."""
    lab = hull_labels(pts, img.shape[-1])
    img, lab = apply_occluders(img, lab, bank, p=p)
    s = img.shape[-1]
    xi, yi = pts[..., 0].round().long().clamp(0, s - 1), pts[..., 1].round().long().clamp(0, s - 1)
    covered = lab[torch.arange(len(img), device=img.device)[:, None], yi, xi] == OCCLUDER
    inside = (pts >= 0).all(-1) & (pts < s).all(-1)
    return img, vis & ~covered & inside


def colour(img: torch.Tensor) -> torch.Tensor:
    """Brightness/contrast/saturation jitter, greyscale 10%, blur 20%, noise."""
    b, dev = len(img), img.device
    r = lambda *s: torch.rand(*s, device=dev)  # noqa: E731
    grey = img.mean(1, keepdim=True)
    sat = 0.6 + 0.8 * r(b, 1, 1, 1)
    sat = torch.where(r(b, 1, 1, 1) < 0.1, torch.zeros_like(sat), sat)
    img = grey + (img - grey) * sat
    img = (img - 0.5) * (0.7 + 0.6 * r(b, 1, 1, 1)) + 0.5 + 0.2 * (r(b, 1, 1, 1) - 0.5)
    blur = F.avg_pool2d(img, 3, 1, 1)
    img = torch.where(r(b, 1, 1, 1) < 0.2, blur, img)
    img = img + torch.randn_like(img) * 0.03 * r(b, 1, 1, 1)
    return img.clamp(0, 1)


def crop_affine(centre, side, angle, flip, out: int, src: int):
    """Affine grids for grid_sample: output pixel -> source pixel, and the source -> output point map."""
    c, s = torch.cos(angle), torch.sin(angle)
    k = side / out                                  # source px per output px
    fx = torch.where(flip, -1.0, 1.0)
    # output (u, v) centred -> source: R(angle) @ diag(fx*k, k) @ (u, v) + centre
    A = torch.stack([torch.stack([c * k * fx, -s * k], -1), torch.stack([s * k * fx, c * k], -1)], -2)  # [B, 2, 2]
    return A, centre


def warp(img, A, centre, out: int):
    b, _, h, w = img.shape
    v, u = torch.meshgrid(torch.arange(out, device=img.device) + 0.5 - out / 2,
                          torch.arange(out, device=img.device) + 0.5 - out / 2, indexing="ij")
    uv = torch.stack([u, v], -1).float().view(1, -1, 2)
    src = uv @ A.transpose(1, 2) + centre[:, None]
    grid = torch.stack([src[..., 0] / w * 2 - 1, src[..., 1] / h * 2 - 1], -1).view(b, out, out, 2)
    return F.grid_sample(img, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def to_output(pts, A, centre, out: int):
    return (torch.linalg.solve(A, (pts - centre[:, None]).transpose(1, 2))).transpose(1, 2) + out / 2


def landmark_batch(data: dict, b: int, split: int = 0, occluded: float = 0.7, g=None):
    img, pts, vis, weight = sample_faces(data, b, split, g, masked=False)
    img, vis = occlude(img, pts, vis, data["bank"], occluded)
    dev = img.device
    lo, hi = pts.min(1).values, pts.max(1).values
    box = (hi - lo).max(1).values
    r = torch.rand(b, 5, device=dev)
    centre = (lo + hi) / 2 + (r[:, :2] - 0.5) * 0.16 * box[:, None]
    side = box * CROP_SCALE * (0.85 + 0.3 * r[:, 2])
    wide = torch.rand(b, device=dev) < 0.1
    angle = (r[:, 3] - 0.5) * torch.where(wide, 2.4, 1.05)
    flip = r[:, 4] < 0.5
    A, c = crop_affine(centre, side, angle, flip, LM_SIZE, 256)
    x = colour(warp(img, A, c, LM_SIZE))
    y = to_output(pts, A, c, LM_SIZE)
    perm = torch.as_tensor(MIRROR_68, device=dev)
    y = torch.where(flip[:, None, None], y[:, perm], y)
    vis = torch.where(flip[:, None], vis[:, perm], vis)
    weight = torch.where(flip[:, None], weight[:, perm], weight)
    vis = vis & (y >= 0).all(-1) & (y < LM_SIZE).all(-1)
    return x, y, vis, weight


def detector_batch(data: dict, b: int, split: int = 0, g=None):
    """Canvases [B, 3, 320, 320] and their boxes (list of [K, 4] x0, y0, x1, y1)."""
    dev = data["bank"].images.device
    cells = int(np.random.choice([1, 2, 3], p=[0.45, 0.35, 0.2]))
    n = b * cells * cells
    img, pts, vis, _ = sample_faces(data, n, split, g)
    img, _ = occlude(img, pts, vis, data["bank"], 0.7)
    img = colour(img)
    lo, hi = pts.min(1).values, pts.max(1).values
    box = (hi - lo).max(1).values
    cell = CANVAS / cells
    r = torch.rand(n, 5, device=dev)
    # face box size in canvas px: log-uniform 10 .. 1.05 cell (single cell: up to 330)
    target = torch.exp(math.log(10) + r[:, 0] * (math.log(1.03 * cell) - math.log(10)))
    k = target / box                                # canvas px per source px
    angle = (r[:, 1] - 0.5) * torch.where(torch.rand(n, device=dev) < 0.15, 1.6, 0.6)
    ci = torch.arange(n, device=dev) % (cells * cells)
    cx0, cy0 = (ci % cells).float() * cell, (ci // cells).float() * cell
    slack = (cell - target).clamp(min=0)
    cx = cx0 + target / 2 + r[:, 2] * slack + (target > cell) * (r[:, 2] - 0.5) * 0.4 * target
    cy = cy0 + target / 2 + r[:, 3] * slack + (target > cell) * (r[:, 3] - 0.5) * 0.4 * target
    # every face's warp onto the full canvas, then each canvas keeps its cells' pixels
    A, c = crop_affine((lo + hi) / 2, CANVAS / k, angle, r[:, 4] < 0.5, CANVAS, 256)
    shift = torch.stack([cx, cy], 1) - CANVAS / 2           # the face centre goes to (cx, cy), not the middle
    c = c - (A @ shift[:, :, None])[:, :, 0]
    layer = warp(torch.cat([img, soft_alpha_around(lo, hi)], 1), A, c, CANVAS)
    yy, xx = torch.meshgrid(torch.arange(CANVAS, device=dev), torch.arange(CANVAS, device=dev), indexing="ij")
    in_cell = ((xx[None] >= cx0[:, None, None]) & (xx[None] < cx0[:, None, None] + cell) &
               (yy[None] >= cy0[:, None, None]) & (yy[None] < cy0[:, None, None] + cell))
    alpha = (layer[:, 3:] * in_cell[:, None]).view(b, cells * cells, 1, CANVAS, CANVAS)
    rgb = layer[:, :3].view(b, cells * cells, 3, CANVAS, CANVAS)
    # cells do not overlap: each canvas is its background plus the sum of its cells
    canvas = background(data["backgrounds"], b) * (1 - alpha.sum(1)) + (rgb * alpha).sum(1)
    pts_c = to_output(pts, A, c, CANVAS)
    boxes = torch.cat([pts_c.min(1).values, pts_c.max(1).values], 1).view(b, cells * cells, 4)
    return canvas, list(boxes.unbind(0))


def soft_alpha_around(lo: torch.Tensor, hi: torch.Tensor, size: int = 256) -> torch.Tensor:
    """[N, 1, S, S] alpha of each face crop: 70% a soft-edged window 1.2..2.2 face boxes wide (no square crop
    edges or black padding for the detector to key on), 30% the whole crop."""
    n, dev = len(lo), lo.device
    ys, xs = torch.meshgrid(torch.arange(size, device=dev).float(), torch.arange(size, device=dev).float(),
                            indexing="ij")
    centre, half = (lo + hi) / 2, (hi - lo).max(1).values / 2
    d = torch.maximum((xs - centre[:, 0, None, None]).abs(), (ys - centre[:, 1, None, None]).abs()) / half[:, None, None]
    r = 1.2 + torch.rand(n, 1, 1, device=dev)
    soft = ((r - d) / (0.3 * r)).clamp(0, 1)
    whole = torch.rand(n, 1, 1, device=dev) < 0.3
    return torch.where(whole, torch.ones_like(soft), soft)[:, None]


def background(patches: torch.Tensor, b: int) -> torch.Tensor:
    """[B, 3, 320, 320]: half the canvases one real background patch enlarged x4, half a 4x4 mosaic of patches at
    their own sharpness (flipped at random), plus a little noise. No faces in them."""
    dev = patches.device
    n = CANVAS // patches.shape[-1]
    tiles = patches[torch.randint(len(patches), (b * n * n,), device=dev)].float() / 255
    tiles = torch.where(torch.rand(b * n * n, 1, 1, 1, device=dev) < 0.5, tiles.flip(-1), tiles)
    mosaic = tiles.view(b, n, n, 3, *tiles.shape[-2:]).permute(0, 3, 1, 4, 2, 5).reshape(b, 3, CANVAS, CANVAS)
    big = F.interpolate(tiles.view(b, n * n, 3, *tiles.shape[-2:])[:, 0], size=CANVAS, mode="bilinear",
                        align_corners=False)
    bg = torch.where(torch.rand(b, 1, 1, 1, device=dev) < 0.5, mosaic, big)
    return (bg + torch.randn_like(bg[:, :1]) * 0.02).clamp(0, 1)


def detector_targets(boxes: list[torch.Tensor], size: int) -> dict[str, torch.Tensor]:
    """CenterNet targets at stride 4: Gaussian heatmap (max over faces), size/offset at each centre cell."""
    h = size // STRIDE
    b = len(boxes)
    dev = boxes[0].device
    owner = torch.cat([torch.full((len(bb),), i, device=dev) for i, bb in enumerate(boxes)])
    bx = torch.cat(boxes).float()
    wh = (bx[:, 2:] - bx[:, :2]).clamp(min=1)
    c = (bx[:, :2] + bx[:, 2:]) / 2 / STRIDE
    ic = c.floor().long()
    keep = ((ic >= 0) & (ic < h)).all(1)
    owner, wh, c, ic = owner[keep], wh[keep], c[keep], ic[keep]
    sigma = (wh.min(1).values / STRIDE / 6).clamp(min=0.5)
    ys, xs = torch.meshgrid(torch.arange(h, device=dev).float(), torch.arange(h, device=dev).float(), indexing="ij")
    g = torch.exp(-((xs - ic[:, 0, None, None]) ** 2 + (ys - ic[:, 1, None, None]) ** 2)
                  / (2 * sigma[:, None, None] ** 2))
    heat = torch.zeros(b, h, h, device=dev).index_reduce_(0, owner, g, "amax")
    reg = torch.zeros(b, 4, h, h, device=dev)
    mask = torch.zeros(b, 1, h, h, device=dev)
    reg[owner, :, ic[:, 1], ic[:, 0]] = torch.cat([wh.log(), c - ic], 1)
    mask[owner, 0, ic[:, 1], ic[:, 0]] = 1
    return {"heat": heat[:, None], "reg": reg, "mask": mask}


# --------------------------------------------------------------------------- losses

def focal_loss(logits, target):
    p = torch.sigmoid(logits.float()).clamp(1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    neg = 1 - pos
    pos_l = -(torch.log(p) * (1 - p) ** 2 * pos).sum()
    neg_l = -(torch.log(1 - p) * p ** 2 * (1 - target) ** 4 * neg).sum()
    return (pos_l + neg_l) / pos.sum().clamp(min=1)


def detector_loss(model, x, boxes):
    t = detector_targets(boxes, x.shape[-1])
    out = model(x)
    reg = torch.cat([out["size"], out["offset"]], 1).float()
    l_reg = ((reg - t["reg"]).abs() * t["mask"]).sum() / t["mask"].sum().clamp(min=1)
    l_heat = focal_loss(out["heat"], t["heat"])
    return l_heat + l_reg, {"heat": l_heat.item(), "reg": l_reg.item()}


def landmark_loss(model, x, y, vis, weight):
    out = model(x)
    box = (y.max(1).values - y.min(1).values).max(1).values.clamp(min=8)
    l_pts = ((out["points"] - y).abs().sum(-1) * weight).sum(1) / weight.sum(1) / box * 100   # % of the box
    l_vis = F.binary_cross_entropy_with_logits(out["visible"], vis.float())
    return l_pts.mean() + l_vis, {"pts": l_pts.mean().item(), "vis": l_vis.item()}


# --------------------------------------------------------------------------- evaluation

@torch.no_grad()
def evaluate(model_name: str, model, data: dict, n: int = 512) -> dict:
    """Val split, fixed seed. Landmarks: NME (inter-ocular, %) clean / occluded, visibility accuracy.
    Detector: recall at IoU 0.5 on occluded val canvases, false detections per canvas."""
    was = model.training
    model.eval()
    torch.manual_seed(0)
    np.random.seed(0)
    if model_name == "landmarks":
        res = {}
        for name, occ in (("clean", 0.0), ("occluded", 1.0)):
            x, y, vis, weight = landmark_batch(data, n, split=1, occluded=occ)
            out = model(x)
            res[f"nme_{name}"] = nme(out["points"], y, weight)
            res[f"vis_acc_{name}"] = float(((out["visible"] > 0) == vis).float().mean())
    else:
        found = total = false = 0
        for _ in range(n // 32):
            x, boxes = detector_batch(data, 32, split=1)
            for det, gt in zip(decode(model(x)), boxes):
                m = match(det[:, :4], gt)
                found += int(m.sum())
                total += len(gt)
                false += len(det) - int(m.sum())
        res = {"recall": found / max(1, total), "false_per_canvas": false / max(1, n // 32 * 32)}
    model.train(was)
    return res


def nme(pred, y, weight) -> float:
    """Mean point error / inter-ocular distance (outer eye corners), in %, over points with weight 1."""
    iod = (y[:, 36] - y[:, 45]).norm(dim=-1).clamp(min=1)
    err = (pred - y).norm(dim=-1) / iod[:, None]
    w = (weight >= 1).float()
    frontal = (weight >= 1).all(1)   # profiles' inter-ocular distance is meaningless: frontal-ish faces only
    return float(((err * w).sum(1) / w.sum(1).clamp(min=1))[frontal].mean() * 100)


def match(det: torch.Tensor, gt: torch.Tensor, iou: float = 0.5) -> torch.Tensor:
    """bool [len(gt)]: a detection overlaps the ground-truth box by IoU >= iou."""
    if len(det) == 0 or len(gt) == 0:
        return torch.zeros(len(gt), dtype=torch.bool, device=gt.device)
    lt = torch.maximum(det[:, None, :2], gt[None, :, :2])
    rb = torch.minimum(det[:, None, 2:], gt[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area = lambda b: (b[:, 2:] - b[:, :2]).clamp(min=0).prod(-1)  # noqa: E731
    ious = inter / (area(det)[:, None] + area(gt)[None] - inter)
    return (ious >= iou).any(0)


# --------------------------------------------------------------------------- training loop

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", choices=["detector", "landmarks"], required=True)
    ap.add_argument("--shards", default=os.path.join(".cache", "fe_shards"))
    ap.add_argument("--ckpt", default=os.path.join(".cache", "ckpt", "frontend"))
    ap.add_argument("--out", default=os.path.join("out", "frontend"))
    ap.add_argument("--minutes", type=float, default=20)
    ap.add_argument("--batch", type=int, default=0, help="0: 128 (landmarks) / 32 canvases (detector)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--eval-n", type=int, default=512)
    ap.add_argument("--init", default=None, help="start from an exported model folder (weights only)")
    ap.add_argument("--preview", action="store_true")
    args = ap.parse_args(argv)
    dev = torch.device(args.device)
    os.makedirs(args.out, exist_ok=True)
    os.makedirs(args.ckpt, exist_ok=True)
    data = load_data(args.shards, dev)
    batch = args.batch or (128 if args.model == "landmarks" else 32)
    if args.preview:
        return preview(args.model, data, args.out)
    model = (LandmarkNet() if args.model == "landmarks" else FaceDetector()).to(dev).to(memory_format=torch.channels_last)
    ema = copy.deepcopy(model).eval()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=1e-4)
    state_path = os.path.join(args.ckpt, f"{args.model}_state.pt")
    step = 0
    if os.path.exists(state_path):
        st = torch.load(state_path, map_location=dev, weights_only=True)
        model.load_state_dict(st["model"])
        ema.load_state_dict(st["ema"])
        opt.load_state_dict(st["opt"])
        step = st["step"]
        print(f"resumed at step {step}", flush=True)
    elif args.init:
        ema = type(model).from_pretrained(args.init, device=dev)
        model.load_state_dict(ema.state_dict())
        print(f"initialised from {args.init}", flush=True)
    t0, last_save, start_step = time.time(), time.time(), step
    budget = args.minutes * 60
    log = open(os.path.join(args.out, f"{args.model}_log.jsonl"), "a")
    while time.time() - t0 < budget:
        frac = (time.time() - t0) / budget
        lr = args.lr * min(1.0, (step - start_step + 1) / 300) * (0.5 * (1 + math.cos(math.pi * frac)) * 0.95 + 0.05)
        for gr in opt.param_groups:
            gr["lr"] = lr
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            if args.model == "landmarks":
                x, y, vis, weight = landmark_batch(data, batch)
                loss, parts = landmark_loss(model, x.contiguous(memory_format=torch.channels_last), y, vis, weight)
            else:
                x, boxes = detector_batch(data, batch)
                loss, parts = detector_loss(model, x.contiguous(memory_format=torch.channels_last), boxes)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        step += 1
        with torch.no_grad():
            d = min(0.999, (step - start_step + 1) / (step - start_step + 10))
            for pe, pm in zip(ema.parameters(), model.parameters()):
                pe.lerp_(pm, 1 - d)
            for be, bm in zip(ema.buffers(), model.buffers()):
                be.copy_(bm)
        if step % 100 == 0 or step - start_step <= 3:
            rec = dict(step=step, lr=lr, loss=loss.item(), **parts, minutes=(time.time() - t0) / 60)
            print(json.dumps(rec), flush=True)
            log.write(json.dumps(rec) + "\n")
        if time.time() - last_save > 180:
            save(args, model, ema, opt, step, state_path, data)
            last_save = time.time()
    save(args, model, ema, opt, step, state_path, data, final=True)


def save(args, model, ema, opt, step, state_path, data, final: bool = False):
    torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(), "step": step},
               state_path + ".tmp")
    os.replace(state_path + ".tmp", state_path)
    folder = os.path.join(args.out, "face-detector" if args.model == "detector" else "face-landmarks")
    training = {"steps": step, "batch": args.batch or (128 if args.model == "landmarks" else 32)}
    ema.save_pretrained(folder, extra_config={"training": training})
    if final:
        training["val"] = evaluate(args.model, ema, data, n=args.eval_n)
        ema.save_pretrained(folder, extra_config={"training": training})
    print(json.dumps({"saved": folder, **training}), flush=True)


@torch.no_grad()
def preview(model_name: str, data: dict, out: str):
    from PIL import Image, ImageDraw

    if model_name == "landmarks":
        x, y, vis, _ = landmark_batch(data, 16)
        tiles = []
        for i in range(16):
            im = Image.fromarray((x[i].permute(1, 2, 0).cpu().numpy() * 255).astype(np.uint8))
            d = ImageDraw.Draw(im)
            for (px, py), v in zip(y[i].tolist(), vis[i].tolist()):
                d.ellipse((px - 1.5, py - 1.5, px + 1.5, py + 1.5), fill=(0, 255, 0) if v else (255, 0, 0))
            tiles.append(im)
        s = LM_SIZE
    else:
        x, boxes = detector_batch(data, 8)
        tiles = []
        for i in range(8):
            im = Image.fromarray((x[i].permute(1, 2, 0).cpu().numpy() * 255).astype(np.uint8))
            d = ImageDraw.Draw(im)
            for bx in boxes[i].tolist():
                d.rectangle(bx, outline=(0, 255, 0))
            tiles.append(im)
        s = CANVAS
    grid = Image.new("RGB", (s * 4, s * ((len(tiles) + 3) // 4)))
    for i, t in enumerate(tiles):
        grid.paste(t, (s * (i % 4), s * (i // 4)))
    grid.save(os.path.join(out, f"{model_name}_preview.png"))


if __name__ == "__main__":
    main()
