"""Train the face parser (core/models/parser.py) on CelebAMask-HQ with synthetic occluders.

    python -m train.parser --shards .cache/shards --ckpt .cache/ckpt/parser --out out/parser_run \
        --minutes 22 --device cuda
    python -m train.parser --shards DIR --ckpt DIR --out DIR --minutes 0.5 --device cpu --smoke
    python -m train.parser --shards DIR --ckpt DIR --out DIR --preview batch.png   # augmented batch, then exit

All data (celebamask 256 px, split 0 = train; split 1 = val, never trained on;
`masked` 256 px for mask occluders) sits on the device as uint8, and every
augmentation runs batched on the device: horizontal flip with the left/right
label swap (core.labels.FLIP_PERM), synthetic occluders (train/occluders.py,
~60% of samples), scale/rotation/translation (labels nearest), colour jitter,
blur / noise / down-up-sampling / JPEG-like DCT quantisation. Loss: class
weighted cross-entropy + soft Dice (helps the small classes: eyes, brows,
lips). AdamW, warmup + cosine over the session's wall-clock budget, bf16
autocast, channels_last, EMA of the weights (the EMA is what gets exported).
Resumable state (model, EMA, optimiser, step) lives in --ckpt/parser_state.pt
(tensors and numbers only; loaded with weights_only=True); a resumed session
is a warm restart at half the peak LR.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import time
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from core.labels import FLIP_PERM, NUM_CLASSES, OCCLUDER, PALETTE
from core.models.parser import FaceParser
from train.eval_parser import evaluate, format_table, occluded_copy
from train.occluders import OccluderBank, apply_occluders, uniform

STATE_FILE = "parser_state.pt"
SIZE = 256


@dataclass
class Data:
    train_img: torch.Tensor   # uint8 [N, 3, S, S] on device
    train_lab: torch.Tensor   # uint8 [N, S, S]
    val_img: torch.Tensor
    val_lab: torch.Tensor
    bank: OccluderBank
    class_weights: torch.Tensor  # float [NUM_CLASSES]


# ----------------------------------------------------------------------------------------------- setup

def parse_args(argv=None):
    ap = argparse.ArgumentParser(description="train the FaceParser")
    ap.add_argument("--shards", default=".cache/shards")
    ap.add_argument("--ckpt", default=".cache/ckpt/parser")
    ap.add_argument("--out", default="out/parser_run")
    ap.add_argument("--minutes", type=float, default=22.0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--smoke", action="store_true", help="a few tiny steps on CPU-sized data")
    ap.add_argument("--batch", type=int, default=48)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--wd", type=float, default=0.05)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--occ-p", type=float, default=0.6, help="fraction of samples with synthetic occluders")
    ap.add_argument("--compile", action="store_true", help="torch.compile the training model (off by default)")
    ap.add_argument("--preview", default=None, help="write a PNG of one augmented batch and exit")
    return ap.parse_args(argv)


def class_weights(labels: torch.Tensor) -> torch.Tensor:
    """Inverse-sqrt-frequency weights, clamped to [0.25, 4]; occluder gets 1 (it is not in the raw data)."""
    sub = labels[:: max(1, len(labels) // 512)].long()
    freq = torch.bincount(sub.flatten(), minlength=NUM_CLASSES).float()
    freq = freq / freq.sum()
    w = ((0.02 / (freq + 1e-5)) ** 0.5).clamp(0.25, 4.0)
    w[OCCLUDER] = 1.0
    return w


def load_data(shards: str, device: torch.device, smoke: bool) -> Data:
    from train.shards import load_source

    d = load_source("celebamask", SIZE, shards)
    imgs = torch.from_numpy(d["images"]).permute(0, 3, 1, 2).contiguous()
    labs = torch.from_numpy(d["labels"])
    split = torch.from_numpy(d["split"].astype(np.int64))
    tr, va = torch.nonzero(split == 0)[:, 0], torch.nonzero(split == 1)[:, 0]
    if smoke:
        va = va[:8]
    train_img, train_lab = imgs[tr].to(device), labs[tr].to(device)
    masked = lm = None
    try:
        m = load_source("masked", SIZE, shards)
        masked = torch.from_numpy(m["images"]).permute(0, 3, 1, 2).contiguous().to(device)
        lm = torch.from_numpy(m["landmarks"]).to(device)
    except FileNotFoundError:
        print("no `masked` shards: mask occluders (b) are left out", flush=True)
    bank = OccluderBank.build(train_img, train_lab, masked, lm)
    print(f"data: {len(tr)} train, {len(va)} val, region donors "
          f"{ {k: len(v) for k, v in bank.pools.items()} }, masked donors "
          f"{0 if bank.masked is None else len(bank.masked)}", flush=True)
    return Data(train_img, train_lab, imgs[va].to(device), labs[va].to(device), bank,
                class_weights(train_lab).to(device))


# ----------------------------------------------------------------------------------------- augmentation

def flip(img: torch.Tensor, lab: torch.Tensor, p: float = 0.5):
    """Mirror half the batch, swapping left/right classes."""
    perm = torch.as_tensor(FLIP_PERM, device=lab.device)
    on = torch.rand(img.shape[0], device=img.device) < p
    img = torch.where(on[:, None, None, None], img.flip(-1), img)
    lab = torch.where(on[:, None, None], perm[lab.flip(-1)], lab)
    return img, lab


def geometric(img: torch.Tensor, lab: torch.Tensor, p: float = 0.85):
    """Random scale 0.85..1.2, rotation +-15 deg, shift +-6%; image bilinear, labels nearest; border replicate."""
    b, dev = img.shape[0], img.device
    on = (torch.rand(b, device=dev) < p).float()
    s = 1 / (1 + on * uniform(b, -0.15, 0.2, None, dev))
    a = on * uniform(b, -1, 1, None, dev) * math.radians(15)
    t = on[:, None] * uniform((b, 2), -0.06, 0.06, None, dev) * 2
    theta = torch.stack([torch.stack([s * torch.cos(a), -s * torch.sin(a), t[:, 0]], 1),
                         torch.stack([s * torch.sin(a), s * torch.cos(a), t[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(img.shape), align_corners=False)
    img = F.grid_sample(img, grid, mode="bilinear", padding_mode="border", align_corners=False)
    lab = F.grid_sample(lab[:, None].float(), grid, mode="nearest", padding_mode="border", align_corners=False)
    return img, lab[:, 0].long()


def photometric(img: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast, saturation, hue rotation (YIQ), gamma, occasional greyscale."""
    b, dev = img.shape[0], img.device
    u = lambda lo, hi: uniform((b, 1, 1, 1), lo, hi, None, dev)  # noqa: E731
    grey = (img * torch.tensor([0.299, 0.587, 0.114], device=dev)[None, :, None, None]).sum(1, keepdim=True)
    img = img * u(0.7, 1.3)
    img = (img - grey.mean((2, 3), keepdim=True)) * u(0.7, 1.3) + grey.mean((2, 3), keepdim=True)
    grey = (img * torch.tensor([0.299, 0.587, 0.114], device=dev)[None, :, None, None]).sum(1, keepdim=True)
    img = grey + (img - grey) * u(0.6, 1.4)
    to_yiq = torch.tensor([[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], device=dev)
    yiq = torch.einsum("ij,bjhw->bihw", to_yiq, img)
    h = uniform(b, -0.2, 0.2, None, dev)
    c, s = torch.cos(h)[:, None, None], torch.sin(h)[:, None, None]
    i, q = yiq[:, 1], yiq[:, 2]
    yiq = torch.stack([yiq[:, 0], c * i - s * q, s * i + c * q], 1)
    img = torch.einsum("ij,bjhw->bihw", torch.linalg.inv(to_yiq), yiq).clamp(0, 1)
    img = img ** u(0.75, 1.35)
    gs = torch.rand(b, device=dev) < 0.05
    grey = (img * torch.tensor([0.299, 0.587, 0.114], device=dev)[None, :, None, None]).sum(1, keepdim=True)
    return torch.where(gs[:, None, None, None], grey.expand_as(img), img)


def gaussian_blur(img: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Per-sample separable Gaussian blur, sigma [B] in pixels (9-tap)."""
    b, c, h, w = img.shape
    x = torch.arange(-4, 5, device=img.device, dtype=img.dtype)
    k = torch.exp(-(x[None] ** 2) / (2 * sigma[:, None] ** 2))
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)       # [B*C, 9]
    y = img.reshape(1, b * c, h, w)
    y = F.conv2d(F.pad(y, (4, 4, 0, 0), mode="reflect"), k[:, None, None, :], groups=b * c)
    y = F.conv2d(F.pad(y, (0, 0, 4, 4), mode="reflect"), k[:, None, :, None], groups=b * c)
    return y.reshape(b, c, h, w)


_LUMA_Q = [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
           14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
           49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
_CHROMA_Q = [17, 18, 24, 47] + [99] * 4 + [18, 21, 26, 66] + [99] * 4 + [24, 26, 56] + [99] * 5 + [47, 66] + \
            [99] * 6 + [99] * 32


def jpeg_like(img: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """JPEG-style 8x8 DCT quantisation in YCbCr (no chroma subsampling), quality [B] in 1..100."""
    b, _, h, w = img.shape
    dev = img.device
    m = torch.tensor([[0.299, 0.587, 0.114], [-0.168736, -0.331264, 0.5], [0.5, -0.418688, -0.081312]], device=dev)
    ycc = torch.einsum("ij,bjhw->bihw", m, img * 255) - torch.tensor([128, 0, 0], device=dev)[None, :, None, None]
    n = torch.arange(8, device=dev, dtype=torch.float32)
    dct = torch.cos((2 * n[None] + 1) * n[:, None] * math.pi / 16) * math.sqrt(2 / 8)
    dct[0] /= math.sqrt(2)
    blocks = ycc.reshape(b, 3, h // 8, 8, w // 8, 8).permute(0, 1, 2, 4, 3, 5)    # [B, 3, h8, w8, 8, 8]
    coef = dct @ blocks @ dct.T
    scale = torch.where(quality < 50, 5000 / quality, 200 - 2 * quality)[:, None, None, None, None, None]
    q = torch.stack([torch.tensor(_LUMA_Q, device=dev), torch.tensor(_CHROMA_Q, device=dev),
                     torch.tensor(_CHROMA_Q, device=dev)]).float().view(1, 3, 1, 1, 8, 8)
    q = ((q * scale + 50) / 100).floor().clamp(min=1)
    blocks = dct.T @ (torch.round(coef / q) * q) @ dct
    offset = torch.tensor([128, 0, 0], device=dev)[None, :, None, None]
    ycc = blocks.permute(0, 1, 2, 4, 3, 5).reshape(b, 3, h, w) + offset
    return (torch.einsum("ij,bjhw->bihw", torch.linalg.inv(m), ycc) / 255).clamp(0, 1)


def degrade(img: torch.Tensor) -> torch.Tensor:
    """Blur (30%), down-up-sampling (20%), noise (30%), JPEG-like (30%), each per sample."""
    b, _, h, w = img.shape
    dev = img.device
    pick = lambda p: (torch.rand(b, device=dev) < p)[:, None, None, None]  # noqa: E731
    img = torch.where(pick(0.3), gaussian_blur(img, uniform(b, 0.4, 1.6, None, dev)), img)
    f = float(uniform(1, 0.35, 0.8, None, "cpu"))
    small = F.interpolate(img, scale_factor=f, mode="bilinear", align_corners=False, antialias=True)
    img = torch.where(pick(0.2), F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False), img)
    noise = torch.randn_like(img) * uniform((b, 1, 1, 1), 0.005, 0.04, None, dev)
    img = torch.where(pick(0.3), (img + noise).clamp(0, 1), img)
    img = torch.where(pick(0.3), jpeg_like(img, uniform(b, 15, 85, None, dev)), img)
    return img


def augment(img_u8: torch.Tensor, lab_u8: torch.Tensor, bank: OccluderBank, occ_p: float):
    """uint8 batch -> (float [B, 3, S, S] in [0, 1], int64 [B, S, S]) with all training augmentation."""
    img, lab = img_u8.float() / 255, lab_u8.long()
    img, lab = flip(img, lab)
    img, lab = apply_occluders(img, lab, bank, p=occ_p)    # canonical frame, before the geometric jitter
    img, lab = geometric(img, lab)
    img = degrade(photometric(img))
    return img, lab


# ---------------------------------------------------------------------------------------------- training

def loss_fn(logits: torch.Tensor, lab: torch.Tensor, weights: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted CE and soft Dice (mean over classes present in the batch); logits [B, C, H, W] float."""
    ce = F.cross_entropy(logits, lab, weight=weights)
    prob = logits.softmax(1)
    onehot = F.one_hot(lab, NUM_CLASSES).permute(0, 3, 1, 2).to(prob.dtype)
    inter = (prob * onehot).sum((0, 2, 3))
    denom = prob.sum((0, 2, 3)) + onehot.sum((0, 2, 3))
    present = onehot.sum((0, 2, 3)) > 0
    dice = 1 - ((2 * inter + 1) / (denom + 1))[present].mean()
    return ce, dice


def make_optimizer(model: torch.nn.Module, lr: float, wd: float) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.ndim == 4]
    rest = [p for n, p in model.named_parameters() if p.ndim != 4]
    return torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": rest, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.99))


def lr_at(progress: float, peak: float, warmup: float = 0.03) -> float:
    if progress < warmup:
        return peak * (0.05 + 0.95 * progress / warmup)
    t = min(1.0, (progress - warmup) / (1 - warmup))
    return peak * (0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * t)))


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for pe, pm in zip(ema.parameters(), model.parameters()):
        pe.lerp_(pm.detach(), 1 - decay)
    for be, bm in zip(ema.buffers(), model.buffers()):
        be.copy_(bm)


def train_step(model, opt, data: Data, args, lr: float) -> dict:
    idx = torch.randint(0, len(data.train_img), (args.batch,), device=data.train_img.device)
    with torch.no_grad():
        img, lab = augment(data.train_img[idx], data.train_lab[idx], data.bank, args.occ_p)
    cuda = img.device.type == "cuda"
    if cuda:
        img = img.contiguous(memory_format=torch.channels_last)
    for g in opt.param_groups:
        g["lr"] = lr
    with torch.autocast(img.device.type, dtype=torch.bfloat16, enabled=cuda):
        logits = model(img)
    ce, dice = loss_fn(logits.float(), lab, data.class_weights)
    loss = ce + dice
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
    opt.step()
    return {"ce": ce.detach(), "dice": dice.detach()}


# -------------------------------------------------------------------------------------------- checkpoint

def save_state(path: str, model, ema, opt, step: int, seen: int) -> None:
    os.makedirs(path, exist_ok=True)
    tmp = os.path.join(path, STATE_FILE + ".tmp")
    torch.save({"model": model.state_dict(), "ema": ema.state_dict(), "opt": opt.state_dict(),
                "step": step, "seen": seen, "config": json.dumps(ema.config)}, tmp)
    os.replace(tmp, os.path.join(path, STATE_FILE))


def load_state(path: str, model, ema, opt, device) -> tuple[int, int]:
    f = os.path.join(path, STATE_FILE)
    if not os.path.exists(f):
        return 0, 0
    st = torch.load(f, map_location=device, weights_only=True)
    model.load_state_dict(st["model"])
    ema.load_state_dict(st["ema"])
    opt.load_state_dict(st["opt"])
    print(f"resumed from {f} at step {st['step']}", flush=True)
    return int(st["step"]), int(st["seen"])


# ------------------------------------------------------------------------------------------------ output

def colour(lab: torch.Tensor) -> torch.Tensor:
    """int labels [..., H, W] -> uint8 [..., H, W, 3] in the project palette."""
    return torch.as_tensor(PALETTE, device=lab.device)[lab.long().clamp(0, NUM_CLASSES - 1)]


def write_grid(path: str, rows: list[list[torch.Tensor]]) -> None:
    """rows of uint8 [H, W, 3] tiles -> one PNG."""
    from PIL import Image

    grid = torch.cat([torch.cat(r, 1) for r in rows], 0).cpu().numpy()
    Image.fromarray(grid).save(path)


@torch.no_grad()
def sample_grid(path: str, model, data: Data) -> None:
    """8 val rows (4 clean, 4 with occluders): image | ground truth | prediction."""
    n = min(4, len(data.val_img))
    occ_i, occ_l = occluded_copy(data.val_img[-n:], data.val_lab[-n:], data.bank, seed=7)
    imgs = torch.cat([data.val_img[:n], occ_i])
    labs = torch.cat([data.val_lab[:n], occ_l])
    model.eval()
    pred = model(imgs.float() / 255).argmax(1)
    write_grid(path, [[imgs[i].permute(1, 2, 0), colour(labs[i]), colour(pred[i])] for i in range(len(imgs))])


def preview(path: str, data: Data, occ_p: float, n: int = 16) -> None:
    """One augmented training batch: image | label colours, 4 pairs a row."""
    torch.manual_seed(0)
    idx = torch.arange(n, device=data.train_img.device) % len(data.train_img)
    img, lab = augment(data.train_img[idx], data.train_lab[idx], data.bank, occ_p)
    tiles = [t for i in range(n) for t in ((img[i] * 255).round().byte().permute(1, 2, 0), colour(lab[i]))]
    write_grid(path, [tiles[r:r + 8] for r in range(0, len(tiles), 8)])
    print(f"wrote {path}", flush=True)


def model_card(metrics: dict, step: int, seen: int, minutes: float, n_train: int, params: int, n_masked: int) -> str:
    c, o = metrics["clean"], metrics["occluded"]
    masks = (f"lower-face regions of {n_masked} aligned photos of people wearing face masks (Real-World Masked Face "
             "Dataset, Face-Mask-Detection photos), " if n_masked else "(no face-mask photos in this run), ")
    return f"""---
license: other
license_name: non-commercial-research
tags: [face-parsing, segmentation, celebamask-hq]
---
# FaceLab face parser (FaceParser, {params / 1e6:.2f}M parameters)

Per-pixel labels for the canonical 256 px aligned face crop: the 19 CelebAMask-HQ classes plus
`occluder` (19), palette and names in `core/labels.py`. A small U-Net with a ResNet basic-block encoder
and a global context vector (`core/models/parser.py`), trained from scratch. Input RGB in [0, 1], logits
[N, 20, H, W]; `predict` gives labels.

## Data
CelebAMask-HQ 256 px ({n_train} training images, split 0 of the FaceLab shards; the val split is held out)
with synthetic occluders pasted on ~60% of the samples and labelled `occluder`: eyeglasses/hat/hair/cloth
regions cut from other training images, {masks}and random textured shapes and hand-like blobs.
CelebAMask-HQ labels hands and microphones as skin; the synthetic occluders are what teach the difference,
so real hands may still come out partly as skin.

## Terms
Non-commercial research use only, inherited from CelebAMask-HQ / CelebA and the masked-face photo sets.

## Metrics (val split, {metrics['val_images']} images; pooled over pixels)
| set | mean F1 face classes | mIoU | visible-face IoU |
| --- | --- | --- | --- |
| clean | {c['mean_f1_face']:.4f} | {c['miou']:.4f} | {c['visible_iou']:.4f} |
| synthetic occluders (seed 1234) | {o['mean_f1_face']:.4f} | {o['miou']:.4f} | {o['visible_iou']:.4f} |

Training: {step} steps, {seen} images seen, {minutes:.1f} min budget (EMA weights exported, fp16).

## Retrain / evaluate
    python -m train.data                      # builds .cache/shards
    python -m train.parser --shards .cache/shards --ckpt .cache/ckpt/parser --out out/parser_run \\
        --minutes 22 --device cuda
    python -m train.eval_parser --checkpoint out/parser_run/parser --shards .cache/shards
"""


def finish(args, model, ema, data: Data, step: int, seen: int, train_s: float) -> None:
    os.makedirs(args.out, exist_ok=True)
    t0 = time.time()
    metrics = evaluate(ema, data.val_img, data.val_lab, data.bank)
    metrics.update(step=step, images_seen=seen, train_seconds=round(train_s, 1),
                   params=sum(p.numel() for p in ema.parameters()))
    print(format_table(metrics), flush=True)
    print(f"eval took {time.time() - t0:.1f}s", flush=True)
    with open(os.path.join(args.out, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    sample_grid(os.path.join(args.out, "parser_samples.png"), ema, data)
    card = model_card(metrics, step, seen, args.minutes, len(data.train_img), metrics["params"],
                      0 if data.bank.masked is None else len(data.bank.masked))
    slim = {k: {m: metrics[k][m] for m in ("mean_f1_face", "miou", "visible_iou")} for k in ("clean", "occluded")}
    files = ema.save_pretrained(os.path.join(args.out, "parser"), card=card,
                                extra_config={"metrics": slim, "training": {"step": step, "images_seen": seen}})
    print(f"wrote {args.out}/parser/{files}, metrics.json, parser_samples.png", flush=True)


def setup(args, dev: torch.device):
    """Model (channels_last on GPU), its EMA copy, AdamW; resumed from --ckpt when a state is there."""
    model = FaceParser().to(dev)
    if dev.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    ema = copy.deepcopy(model).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    opt = make_optimizer(model, args.lr, args.wd)
    step, seen = load_state(args.ckpt, model, ema, opt, dev)
    print(f"FaceParser {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M params, batch {args.batch}, "
          f"device {dev}", flush=True)
    return model, ema, opt, step, seen


def train_loop(args, model, ema, opt, data: Data, step: int, seen: int, train_end: float) -> tuple[int, int]:
    """Train until train_end (wall clock; 3 steps with --smoke), logging every 30 s, checkpointing every 4 min."""
    peak = args.lr * (0.5 if step > 0 else 1.0)          # a resumed session is a warm restart
    fwd = torch.compile(model) if args.compile else model
    train_start = last_log = last_ckpt = time.time()
    log_seen, log_step, sums = seen, step, {"ce": 0.0, "dice": 0.0}   # sums stay on the device (no sync)
    steps_this_run = 0
    while True:
        now = time.time()
        if (steps_this_run >= 3) if args.smoke else (now >= train_end):
            break
        lr = lr_at((now - train_start) / max(train_end - train_start, 1e-6), peak)
        out = train_step(fwd, opt, data, args, lr)
        ema_update(ema, model, min(args.ema, (1 + step) / (10 + step)))
        step, seen, steps_this_run = step + 1, seen + args.batch, steps_this_run + 1
        for k in sums:
            sums[k] = sums[k] + out[k]
        if now - last_log >= 30 or args.smoke:
            n, dt = max(step - log_step, 1), time.time() - last_log
            ce, dice = (float(sums[k]) / n for k in ("ce", "dice"))
            print(f"step {step} seen {seen} ce {ce:.4f} dice {dice:.4f} lr {lr:.2e} "
                  f"{(step - log_step) / dt:.2f} it/s {(seen - log_seen) / dt:.0f} img/s "
                  f"elapsed {time.time() - args.t_start:.0f}s", flush=True)
            last_log, log_seen, log_step, sums = time.time(), seen, step, {"ce": 0.0, "dice": 0.0}
        if time.time() - last_ckpt >= 240:
            save_state(args.ckpt, model, ema, opt, step, seen)
            last_ckpt = time.time()
    save_state(args.ckpt, model, ema, opt, step, seen)
    return step, seen


def main(argv=None) -> None:
    args = parse_args(argv)
    args.t_start = time.time()
    dev = torch.device(args.device)
    if args.smoke:
        args.batch = min(args.batch, 4)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    data = load_data(args.shards, dev, args.smoke)
    if args.preview:
        preview(args.preview, data, args.occ_p)
        return
    model, ema, opt, step, seen = setup(args, dev)
    reserve = min(max(15.0, 0.015 * args.minutes * 60), 60.0)  # final eval + export (~5 s for 700 val images on a GPU)
    train_end = args.t_start + args.minutes * 60 - reserve
    t0 = time.time()
    step, seen = train_loop(args, model, ema, opt, data, step, seen, train_end)
    finish(args, model, ema, data, step, seen, time.time() - t0)
    print(f"done in {time.time() - args.t_start:.0f}s", flush=True)


if __name__ == "__main__":
    main()
