"""Evaluate the two VAEs on the CelebAMask-HQ val split (seed 000's protocol), plus the shared pieces.

    python -m train.eval_vae --model masked-vae|multistage-vae [--checkpoint FOLDER] [--shards DIR] [--json OUT]

Protocol of Toledo & Antonelo §4: only face pixels count. The background of every prediction is replaced
by the input background through the ground-truth face mask (core.labels.VAE_FACE), also for models
without a mask decoder; then 1-SSIM, 1-MS-SSIM, 1-VIF, l1 and l2 are computed on the whole composite. l1 / l2
"measured in the 0-255 range, then scaled by 10/255" = mean |diff| x 10 and RMSE x 10 on [0, 1] images
(RMSE, not MSE, is the reading consistent with their table, where l2 > l1 in every row and l2 ~ 0.7; the MSE
of 0-255 images x 10/255 would be ~10-20 here). VIF is the pixel-domain VIF (VIFp, Sheikh & Bovik 2006,
`vifp_mscale.m`) on the BT.601 grayscale image in 0-255. LPIPS needs ImageNet weights this project does not
ship: not computed. Added: PSNR on the face pixels only, the inference-path scores (background through
the *predicted* mask), mask IoU / Dice, and for the multi-stage VAE the same scores for its coarse and refined outputs.

This file also holds what the trainer (`train.vae`) shares with it: GPU data loading / resizing and the
SSIM family in pure torch (no scikit-image on the GPU machine).
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np
import torch
import torch.nn.functional as F

from core.labels import VAE_FACE
from core.metrics import gaussian_window, ms_ssim, ssim

MODEL_SIZE = {"masked-vae": 144, "multistage-vae": 128}
DEFAULT_CKPT = {"masked-vae": os.path.join("checkpoints", "masked-vae"),
                "multistage-vae": os.path.join("checkpoints", "multistage-vae")}
SOURCE, SOURCE_SIZE = "celebamask", 256


# ----------------------------------------------------------------------------------------------- data
def load_faces(shards: str, size: int, device: torch.device, split: int | None = None,
               limit: int | None = None) -> dict[str, torch.Tensor]:
    """CelebAMask-HQ shards at 256 px -> device tensors at `size`.

    Returns images uint8 [N, 3, size, size] (antialiased bilinear resize), masks uint8 [N, 1, size, size]
    (VAE_FACE region of the nearest-resized labels) and split uint8 [N].
    """
    from train.shards import load_source

    data = load_source(SOURCE, SOURCE_SIZE, root=shards)
    keep = np.arange(len(data["split"])) if split is None else np.flatnonzero(data["split"] == split)
    if limit:
        keep = keep[:limit]
    lut = torch.zeros(256, dtype=torch.uint8, device=device)
    lut[list(VAE_FACE)] = 1
    images, masks = [], []
    for i in range(0, len(keep), 256):  # chunks keep the float copy small
        idx = keep[i:i + 256]
        x = torch.from_numpy(data["images"][idx]).to(device).permute(0, 3, 1, 2).float()  # [n, 3, 256, 256]
        x = F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)
        images.append(x.round_().clamp_(0, 255).to(torch.uint8))
        lab = torch.from_numpy(data["labels"][idx]).to(device)[:, None].float()  # [n, 1, 256, 256]
        lab = F.interpolate(lab, size=(size, size), mode="nearest").long()
        masks.append(lut[lab])
    return {"images": torch.cat(images), "masks": torch.cat(masks),
            "split": torch.from_numpy(data["split"][keep]).to(device)}


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, C, H, W] -> float [N, C, H, W] in [0, 1]."""
    return images.float().div_(255.0)


# -------------------------------------------------------------------------------------------- metrics
# SSIM / MS-SSIM / PSNR live in core/metrics.py; VIF and the mask scores are this evaluation's own.

def _gray255(x: torch.Tensor) -> torch.Tensor:
    """[N, 3, H, W] RGB in [0, 1] -> [N, 1, H, W] float64 BT.601 luma in 0-255 (as MATLAB rgb2gray)."""
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=torch.float64).view(1, 3, 1, 1)
    return (x.double() * w).sum(dim=1, keepdim=True) * 255.0


def vif_p(x: torch.Tensor, y: torch.Tensor, sigma_nsq: float = 2.0) -> torch.Tensor:
    """Pixel-domain VIF (Sheikh & Bovik 2006, VIFp of `vifp_mscale.m`) per image -> [N]; 1 for y == x.

    x = reference, y = distorted: [N, 3, H, W] RGB in [0, 1] (converted to gray 0-255), or [N, 1, H, W]
    grayscale already in 0-255. 4 scales with Gaussian windows of N = 17, 9, 5, 3 px, sigma N / 5, 'valid' filtering, low-pass + 2x decimation between scales; sums of
    log10 information over all scales as the reference code. Computed in float64 (variances of 0-255 values).
    """
    with torch.autocast(x.device.type, enabled=False):
        ref = _gray255(x) if x.shape[1] == 3 else x.double()
        dist = _gray255(y) if y.shape[1] == 3 else y.double()
        num = torch.zeros(len(ref), device=ref.device, dtype=torch.float64)
        den = torch.zeros_like(num)
        eps = 1e-10
        for scale in range(1, 5):
            n = 2 ** (4 - scale + 1) + 1
            g = gaussian_window(n, n / 5.0, ref.device, torch.float64)
            kh, kv = g.view(1, 1, 1, n), g.view(1, 1, n, 1)

            def filt(t):
                return F.conv2d(F.conv2d(t, kh), kv)

            if scale > 1:
                ref, dist = filt(ref)[..., ::2, ::2], filt(dist)[..., ::2, ::2]
            mu1, mu2 = filt(ref), filt(dist)
            s1 = (filt(ref * ref) - mu1 * mu1).clamp_min(0)
            s2 = (filt(dist * dist) - mu2 * mu2).clamp_min(0)
            s12 = filt(ref * dist) - mu1 * mu2
            g_ = s12 / (s1 + eps)
            sv = s2 - g_ * s12
            low1 = s1 < eps
            g_ = torch.where(low1, torch.zeros_like(g_), g_)
            sv = torch.where(low1, s2, sv)
            s1 = torch.where(low1, torch.zeros_like(s1), s1)
            low2 = s2 < eps
            g_ = torch.where(low2, torch.zeros_like(g_), g_)
            sv = torch.where(low2, torch.zeros_like(sv), sv)
            neg = g_ < 0
            sv = torch.where(neg, s2, sv)
            g_ = g_.clamp_min(0)
            sv = sv.clamp_min(eps)
            num += torch.log10(1 + g_ * g_ * s1 / (sv + sigma_nsq)).sum(dim=(1, 2, 3))
            den += torch.log10(1 + s1 / sigma_nsq).sum(dim=(1, 2, 3))
    return (num / den.clamp_min(eps)).float()


def dice_loss(prob: torch.Tensor, target: torch.Tensor, smooth: float = 1.0) -> torch.Tensor:
    """1 - Dice over the whole batch, as the authors' code (squared terms in the denominator)."""
    inter = (prob * target).sum()
    return 1 - (2 * inter + smooth) / ((prob * prob).sum() + (target * target).sum() + smooth)


def image_scores(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image scores of pred vs target ([N, 3, H, W] in [0, 1]; mask [N, 1, H, W] in {0, 1}).

    `pred` should already hold the target background (seed 000 compares composites).
    """
    pred, target, mask = pred.float().clamp(0, 1), target.float(), mask.float()
    diff = pred - target
    face_px = (mask.sum(dim=(1, 2, 3)) * 3).clamp_min(1)
    face_mse = (diff.pow(2) * mask).sum(dim=(1, 2, 3)) / face_px
    return {
        "1-ssim": 1 - ssim(pred, target),
        "1-msssim": 1 - ms_ssim(pred, target),
        "1-vif": 1 - vif_p(target, pred),                        # reference = input, distorted = output
        "l1": diff.abs().mean(dim=(1, 2, 3)) * 10,                 # mean |diff| in 0-255, x 10/255
        "l2": diff.pow(2).mean(dim=(1, 2, 3)).sqrt() * 10,          # RMSE in 0-255, x 10/255
        "face_psnr": 10 * torch.log10(1 / face_mse.clamp_min(1e-10)),  # PSNR on face pixels only
    }


def mask_scores(prob: torch.Tensor, target: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image IoU and Dice of the thresholded predicted mask ([N, 1, H, W])."""
    p, t = prob > 0.5, target > 0.5
    inter = (p & t).sum(dim=(1, 2, 3)).float()
    union = (p | t).sum(dim=(1, 2, 3)).float()
    total = p.sum(dim=(1, 2, 3)).float() + t.sum(dim=(1, 2, 3)).float()
    return {"mask_iou": inter / union.clamp_min(1), "mask_dice": 2 * inter / total.clamp_min(1)}


@torch.no_grad()
def evaluate(model, kind: str, images: torch.Tensor, masks: torch.Tensor, batch: int = 64) -> dict[str, float]:
    """Mean scores of `model` (eval mode) over uint8 images [N, 3, S, S] and masks [N, 1, S, S]."""
    sums: dict[str, float] = {}
    dev = next(model.parameters()).device
    for i in range(0, len(images), batch):
        x, m = to_unit(images[i:i + batch].to(dev)), masks[i:i + batch].to(dev).float()
        scores: dict[str, torch.Tensor] = {}
        if kind == "masked-vae":
            out = model.reconstruct(x)
            scores.update(image_scores(model.compose(out.raw, x, m), x, m))  # paper protocol: GT mask
            if out.mask is not None:
                scores.update({f"pred_{k}": v for k, v in image_scores(out.image, x, m).items()
                               if k in ("1-ssim", "l1", "l2")})
                scores.update(mask_scores(out.mask, m))
        else:
            coarse, refined = model.reconstruct(x)
            for name, y in (("", refined), ("coarse_", coarse)):
                face = image_scores(y * m + x * (1 - m), x, m)
                scores.update({f"{name}{k}": v for k, v in face.items()})
                full_mse = (y - x).pow(2).mean(dim=(1, 2, 3))
                scores[f"{name}full_psnr"] = 10 * torch.log10(1 / full_mse.clamp_min(1e-10))
                scores[f"{name}full_1-ssim"] = 1 - ssim(y, x)
        for k, v in scores.items():
            sums[k] = sums.get(k, 0.0) + float(v.double().sum())
    return {k: v / len(images) for k, v in sums.items()} | {"n_images": len(images)}


PAPER_H9 = {"1-ssim": 0.307, "1-msssim": 0.077, "1-vif": 0.523, "l1": 0.487, "l2": 0.682}  # seed 000 Table 2 (CelebA test)


def format_table(results: dict[str, float], title: str, paper: bool = True) -> str:
    """Plain-text table; `paper` adds seed 000's H9 numbers (CelebA test, not the same data) for scale."""
    lines = [title, f"{'metric':<22}{'value':>10}" + (f"{'paper H9':>12}" if paper else "")]
    for k, v in results.items():
        ref = PAPER_H9.get(k) if paper else None
        val = f"{v:>10.4f}" if isinstance(v, float) else f"{v:>10}"
        lines.append(f"{k:<22}{val}{(f'{ref:>12.3f}' if ref is not None else ''):>12}")
    return "\n".join(lines)


def load_model(kind: str, folder: str, device: torch.device):
    if kind == "masked-vae":
        from core.models.masked_vae import MaskedVAE
        return MaskedVAE.from_pretrained(folder, device=device)
    from core.models.multistage_vae import MultiStageVAE
    return MultiStageVAE.from_pretrained(folder, device=device)


def main(argv: list[str] | None = None) -> dict[str, float]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=sorted(MODEL_SIZE), required=True)
    ap.add_argument("--checkpoint", default=None, help="save_pretrained folder (default checkpoints/<model>)")
    ap.add_argument("--shards", default=os.path.join(".cache", "shards"))
    ap.add_argument("--json", default=None, help="also write the scores to this JSON file")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--limit", type=int, default=0, help="evaluate only the first N val images (0 = all)")
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args(argv)

    device = torch.device(args.device)
    folder = args.checkpoint or DEFAULT_CKPT[args.model]
    model = load_model(args.model, folder, device)
    size = model.config["image_size"]
    data = load_faces(args.shards, size, device, split=1, limit=args.limit or None)
    if len(data["images"]) == 0:
        raise SystemExit("no val images (split == 1) in the shards")
    results = evaluate(model, args.model, data["images"], data["masks"], args.batch)
    title = f"{args.model} {folder}: CelebAMask-HQ val, {results['n_images']} images, {size}px"
    print(format_table(results, title, paper=args.model == "masked-vae"))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
