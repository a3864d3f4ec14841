"""Train the de-occlusion inpainter (core/models/deocclusion.py) on clean faces with synthetic occluders.

    python -m train.deocclusion --shards .cache/shards --ckpt .cache/ckpt/deocclusion --out out/deocc \
        --minutes 20 --device cuda [--no-prior] [--arcface PATH]
    python -m train.deocclusion --shards .cache/shards --ckpt /tmp/ck --out /tmp/o --device cpu --smoke

Training pairs are made on the device from clean CelebAMask-HQ 256 px crops (split 0): the
parser's synthetic occluders (train/occluders.py: eyeglasses / hat / hair / cloth regions of
other photos, lower faces of face-mask photos, textured shapes and hand-like blobs), plus
free-form brush strokes (like a user's mask) on 20% of samples. The hole is the pasted region
dilated by 3 px (so the occluders' soft edges are inside it); the target is the clean photo.

Losses (Yin 2022, ch. 5; weights as the thesis):
   10   * L1 inside the hole ("pixel loss on the face")
    5   * (1 - SSIM) to the face prior, where the prior is a real mirrored pixel (the thesis
          compares with its Poisson-blended 3D-face prior; our prior is the mirror image)
    5   * L1 outside the hole of the raw output ("background unchanged")
    0.2 * identity: 1 - cosine of MobileFaceNet embeddings (training-only net in ../shared/weights,
          train/mobilefacenet.py), composite vs clean; skipped when the net is not found
    0.1 * total variation of the composite over the (dilated) hole
    0.01 * hinge adversarial (SN-PatchGAN on image + mask), plus 1 * discriminator feature
          matching (our addition: the thesis's perceptual term needs ImageNet weights we lack)
Adam G 2e-4 / D 4e-4, betas (0.5, 0.999), bf16 autocast, EMA of G (exported, fp16).
Resumable state (G, D, EMA, step; no optimiser moments) in --ckpt as safetensors + json.
Out: --out/<name>/ (Hub-layout folder with card), --out/<name>_metrics.json, --out/<name>_grid.png.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from core.labels import FLIP_PERM, OCCLUDER
from core.metrics import ssim_map_box as ssim_map  # 7x7 box-window SSIM loss
from core.models.deocclusion import Inpainter, PatchDiscriminator, face_prior, mirror, symmetry_axis
from train.occluders import OccluderBank, apply_occluders

SIZE = 256


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="train the de-occlusion inpainter")
    p.add_argument("--shards", default=".cache/shards")
    p.add_argument("--ckpt", default=".cache/ckpt/deocclusion")
    p.add_argument("--out", default="out/deocc")
    p.add_argument("--name", default=None, help="output folder name (default deocclusion / deocclusion-noprior)")
    p.add_argument("--minutes", type=float, default=20.0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--smoke", action="store_true", help="tiny data, 3 steps (CPU check)")
    p.add_argument("--no-prior", action="store_true", help="ablation: no face prior input")
    p.add_argument("--prior", default="face", choices=("face", "mirror"),
                   help="face: the app's prior (core.pipelines.deocclude.face_only_prior: mirrored pixels from the "
                        "landmark face region only); mirror: the unrestricted mirror prior (models up to session 4)")
    p.add_argument("--init", default="", help="exported Inpainter folder to start G and its EMA from (D starts fresh)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--lr-g", type=float, default=2e-4)
    p.add_argument("--lr-d", type=float, default=4e-4)
    p.add_argument("--w-hole", type=float, default=10.0)
    p.add_argument("--w-prior", type=float, default=5.0)
    p.add_argument("--w-bg", type=float, default=5.0)
    p.add_argument("--w-id", type=float, default=0.2)
    p.add_argument("--w-tv", type=float, default=0.1)
    p.add_argument("--w-adv", type=float, default=0.01)
    p.add_argument("--w-fm", type=float, default=1.0)
    p.add_argument("--ema", type=float, default=0.999)
    p.add_argument("--arcface", default=None, help="MobileFaceNet safetensors for the identity loss")
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------------------ data

class Data:
    """Clean 256 px crops, labels, landmarks and landmark face regions M_m on the device (train and val), and the
    occluder bank."""

    def __init__(self, shards: str, dev: torch.device, smoke: bool):
        from train.shards import load_source

        d = load_source("celebamask", SIZE, shards)
        split = torch.from_numpy(d["split"].astype(np.int64))
        tr, va = torch.nonzero(split == 0)[:, 0], torch.nonzero(split == 1)[:, 0]
        if smoke:
            tr, va = tr[:64], va[:8]
        imgs = torch.from_numpy(d["images"]).permute(0, 3, 1, 2)
        labs, lms = torch.from_numpy(d["labels"]), torch.from_numpy(d["landmarks"]).float()
        self.img, self.lab, self.lm = imgs[tr].contiguous().to(dev), labs[tr].to(dev), lms[tr].to(dev)
        self.val_img, self.val_lab, self.val_lm = imgs[va].contiguous().to(dev), labs[va].to(dev), lms[va].to(dev)
        # M_m for the face-region prior, once here rather than per step (cv2 on the CPU)
        self.region, self.val_region = face_regions(self.lm), face_regions(self.val_lm)
        masked = mlm = None
        try:
            m = load_source("masked", SIZE, shards)
            masked = torch.from_numpy(m["images"]).permute(0, 3, 1, 2).contiguous().to(dev)
            mlm = torch.from_numpy(m["landmarks"]).to(dev)
        except FileNotFoundError:
            print("no `masked` shards: face-mask occluders are left out", flush=True)
        self.bank = OccluderBank.build(self.img, self.lab, masked, mlm)
        print(f"data: {len(self.img)} train, {len(self.val_img)} val, masked donors "
              f"{0 if self.bank.masked is None else len(self.bank.masked)}", flush=True)


def strokes(b: int, dev, p: float = 0.2) -> torch.Tensor:
    """Free-form brush strokes (3-6 thick segments) on a fraction p of the batch -> bool [B, S, S]."""
    ys, xs = torch.meshgrid(torch.arange(SIZE, device=dev, dtype=torch.float32),
                            torch.arange(SIZE, device=dev, dtype=torch.float32), indexing="ij")
    out = torch.zeros(b, SIZE, SIZE, dtype=torch.bool, device=dev)
    pts = 64 + 128 * torch.rand(b, 7, 2, device=dev)
    width = 6 + 14 * torch.rand(b, 1, 1, device=dev)
    n_seg = torch.randint(3, 7, (b,), device=dev)
    for i in range(6):
        a, c = pts[:, i], pts[:, i + 1]
        d = c - a
        t = (((xs[None] - a[:, 0, None, None]) * d[:, 0, None, None] + (ys[None] - a[:, 1, None, None])
              * d[:, 1, None, None]) / (d * d).sum(1).clamp(min=1e-3)[:, None, None]).clamp(0, 1)
        dist2 = (xs[None] - a[:, 0, None, None] - t * d[:, 0, None, None]) ** 2 + \
                (ys[None] - a[:, 1, None, None] - t * d[:, 1, None, None]) ** 2
        out |= (dist2 <= width ** 2) & (n_seg > i)[:, None, None]
    return out & (torch.rand(b, 1, 1, device=dev) < p)


def dilate(mask: torch.Tensor, px: int) -> torch.Tensor:
    return F.max_pool2d(mask, 2 * px + 1, 1, px) if px > 0 else mask


def face_regions(lm: torch.Tensor) -> torch.Tensor:
    """Landmarks [N, 68, 2] -> bool [N, S, S] full-face regions M_m (core.pipelines.deocclude.face_region), same device."""
    from core.pipelines.deocclude import face_region

    return torch.from_numpy(np.stack([face_region(p, SIZE) for p in lm.float().cpu().numpy()])).to(lm.device)


def make_batch(img_u8, lab_u8, lm, bank, region, g: torch.Generator | None = None, flip: bool = True):
    """uint8 crops, landmarks, bool face regions [B,S,S] -> (clean, occluded, hole [B,1,S,S] float, landmarks,
    region [B,1,S,S] float) with synthetic occluders on every sample."""
    clean, lab, lm = img_u8.float() / 255, lab_u8.long(), lm.clone()
    region = region[:, None].float()
    if flip:  # mirror half the batch (labels swap sides; midline landmarks only need x mirrored)
        on = torch.rand(len(clean), device=clean.device) < 0.5
        perm = torch.as_tensor(FLIP_PERM, device=lab.device)
        clean = torch.where(on[:, None, None, None], clean.flip(-1), clean)
        region = torch.where(on[:, None, None, None], region.flip(-1), region)
        lab = torch.where(on[:, None, None], perm[lab.flip(-1)], lab)
        lm[..., 0] = torch.where(on[:, None], SIZE - lm[..., 0], lm[..., 0])
    occ, occ_lab = apply_occluders(clean, lab, bank, p=1.0, g=g)
    hole = (occ_lab == OCCLUDER)
    if g is None:
        hole |= strokes(len(clean), clean.device)
    hole = dilate(hole[:, None].float(), 3)
    return clean, occ, hole, lm, region


# ---------------------------------------------------------------------------------------------- losses

def masked_mean(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return (x * m).sum() / (m.sum() * x.shape[1] / m.shape[1]).clamp(min=1.0)


def tv(x: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs() * m[..., :, 1:]
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs() * m[..., 1:, :]
    return (dx.sum() + dy.sum()) / (m.sum() * 3).clamp(min=1.0)


def load_identity(path: str | None, dev):
    try:
        from train.mobilefacenet import IdentityLoss, load_mobilefacenet
    except ImportError as e:
        print(f"identity loss off: {e}", flush=True)
        return None
    try:
        net = load_mobilefacenet(path, device=dev)
    except (FileNotFoundError, OSError) as e:
        print(f"identity loss off: {e}", flush=True)
        return None
    loss = IdentityLoss(net) if _takes_net(IdentityLoss) else IdentityLoss()
    return loss.to(dev)


def _takes_net(cls) -> bool:
    import inspect

    return len(inspect.signature(cls.__init__).parameters) > 1


# ------------------------------------------------------------------------------------------------ training

def make_prior(occ: torch.Tensor, hole: torch.Tensor, lm: torch.Tensor, region: torch.Tensor, kind: str
               ) -> torch.Tensor:
    """The prior the model is trained with: "face" = the app's `face_only_prior` (mirror sources restricted to the
    face region M_m, [B, 1, S, S]), "mirror" = `face_prior` (any mirrored pixel)."""
    if kind == "mirror":
        return face_prior(occ, hole, lm)
    from core.pipelines.deocclude import face_only_prior

    return face_only_prior(occ, hole, lm, region)


def fill(G: Inpainter, occ: torch.Tensor, hole: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
    """G's composite (pixels outside the hole unchanged); the prior is ignored by a model without one."""
    return occ * (1 - hole) + G(occ, hole, prior if G.use_prior else None).float() * hole


class Run:
    def __init__(self, args, dev: torch.device):
        self.args, self.dev = args, dev
        cfg = dict(widths=(16, 32, 32, 48), dilations=(2, 2)) if args.smoke else {}
        self.G = Inpainter(use_prior=not args.no_prior, **cfg).to(dev)
        self.D = PatchDiscriminator(width=16 if args.smoke else 64).to(dev)
        self.G_ema = copy.deepcopy(self.G).eval().requires_grad_(False)
        self.opt_g = torch.optim.Adam(self.G.parameters(), args.lr_g, betas=(0.5, 0.999))
        self.opt_d = torch.optim.Adam(self.D.parameters(), args.lr_d, betas=(0.5, 0.999))
        self.identity = None if args.w_id <= 0 else load_identity(args.arcface, dev)
        self.step = self.seen = 0
        if args.init and not os.path.exists(self.state_file() + ".json"):
            init = Inpainter.from_pretrained(args.init, device=dev).float()
            self.G.load_state_dict(init.state_dict())
            self.G_ema.load_state_dict(init.state_dict())
            print(f"G and EMA start from {args.init}", flush=True)
        self.load()

    # resumable state ---------------------------------------------------------------------------
    def state_file(self) -> str:
        return os.path.join(self.args.ckpt, "noprior" if self.args.no_prior else "prior")

    def save(self) -> None:
        os.makedirs(self.args.ckpt, exist_ok=True)
        tensors = {**{f"G.{k}": v for k, v in self.G.state_dict().items()},
                   **{f"D.{k}": v for k, v in self.D.state_dict().items()},
                   **{f"E.{k}": v for k, v in self.G_ema.state_dict().items()}}
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, self.state_file() + ".safetensors")
        with open(self.state_file() + ".json", "w") as f:
            json.dump({"step": self.step, "seen": self.seen, "config": self.G.config}, f)

    def load(self) -> None:
        if not os.path.exists(self.state_file() + ".json"):
            return
        t = load_file(self.state_file() + ".safetensors", device=str(self.dev))
        for prefix, mod in (("G.", self.G), ("D.", self.D), ("E.", self.G_ema)):
            mod.load_state_dict({k[len(prefix):]: v for k, v in t.items() if k.startswith(prefix)})
        with open(self.state_file() + ".json") as f:
            meta = json.load(f)
        self.step, self.seen = meta["step"], meta["seen"]
        print(f"resumed at step {self.step} ({self.seen} images)", flush=True)

    # one step ----------------------------------------------------------------------------------
    def train_step(self, data: Data) -> dict:
        a, dev = self.args, self.dev
        idx = torch.randint(0, len(data.img), (a.batch,), device=dev)
        with torch.no_grad():
            clean, occ, hole, lm, region = make_batch(data.img[idx], data.lab[idx], data.lm[idx], data.bank,
                                                      data.region[idx])
            prior = make_prior(occ, hole, lm, region, a.prior)
            mirror_known = (mirror(1 - hole, symmetry_axis(lm)) > 0.99).float() * hole
        cuda = dev.type == "cuda"
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            out = self.G(occ, hole, prior if self.G.use_prior else None, noise=torch.rand_like(occ)).float()
        comp = occ * (1 - hole) + out * hole
        # D step
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            d_real, f_real = self.D(clean, hole)
            d_fake, _ = self.D(comp.detach(), hole)
        loss_d = F.relu(1 - d_real.float()).mean() + F.relu(1 + d_fake.float()).mean()
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        self.opt_d.step()
        # G step
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            g_fake, f_fake = self.D(comp, hole)
        l_hole = masked_mean((out - clean).abs(), hole)
        l_bg = masked_mean((out - clean).abs(), 1 - hole)
        l_prior = masked_mean(1 - ssim_map(comp, prior), mirror_known) if a.w_prior > 0 else out.new_zeros(())
        l_tv = tv(comp, dilate(hole, 1))
        l_adv = -g_fake.float().mean()
        l_fm = sum(F.l1_loss(ff.float(), fr.detach().float()) for ff, fr in zip(f_fake, f_real)) / len(f_fake)
        l_id = self.identity(comp, clean).mean() if self.identity is not None else out.new_zeros(())
        loss = (a.w_hole * l_hole + a.w_bg * l_bg + a.w_prior * l_prior + a.w_tv * l_tv + a.w_adv * l_adv
                + a.w_fm * l_fm + a.w_id * l_id)
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.G.parameters(), 10.0)
        self.opt_g.step()
        with torch.no_grad():
            decay = min(a.ema, (1 + self.step) / (10 + self.step))
            for pe, pm in zip(self.G_ema.parameters(), self.G.parameters()):
                pe.lerp_(pm, 1 - decay)
        self.step += 1
        self.seen += a.batch
        return {"d": loss_d.detach(), "hole": l_hole.detach(), "bg": l_bg.detach(), "prior": l_prior.detach(),
                "id": l_id.detach(), "adv": l_adv.detach(), "fm": l_fm.detach()}


# ------------------------------------------------------------------------------------------- eval/export

@torch.no_grad()
def evaluate(G: Inpainter, data: Data, batch: int = 32, seed: int = 1234, prior: str = "face") -> dict:
    """Val faces with deterministic synthetic occluders: L1, PSNR inside the hole (0-1 scale), SSIM (mean in hole)."""
    g = torch.Generator().manual_seed(seed)
    l1 = se = ss = n_px = 0.0
    for i in range(0, len(data.val_img), batch):
        sl = slice(i, i + batch)
        clean, occ, hole, lm, region = make_batch(data.val_img[sl], data.val_lab[sl], data.val_lm[sl], data.bank,
                                                  data.val_region[sl], g=g, flip=False)
        comp = fill(G, occ, hole, make_prior(occ, hole, lm, region, prior))
        px = hole.sum()
        l1 += float(((comp - clean).abs() * hole).sum() / 3)
        se += float((((comp - clean) ** 2) * hole).sum() / 3)
        ss += float((ssim_map(comp, clean) * hole).sum())
        n_px += float(px)
    mse = se / max(n_px, 1)
    return {"val_images": len(data.val_img), "hole_l1": l1 / max(n_px, 1), "hole_psnr": 10 * math.log10(1 / max(mse, 1e-10)),
            "hole_ssim": ss / max(n_px, 1)}


@torch.no_grad()
def grid(G: Inpainter, data: Data, path: str, rows: int = 8, prior: str = "face") -> None:
    """One val face per row: occluded | hole | prior | output | clean."""
    from PIL import Image

    g = torch.Generator().manual_seed(7)
    clean, occ, hole, lm, region = make_batch(data.val_img[:rows], data.val_lab[:rows], data.val_lm[:rows], data.bank,
                                              data.val_region[:rows], g=g, flip=False)
    prior = make_prior(occ, hole, lm, region, prior)
    comp = fill(G, occ, hole, prior)
    tiles = [occ * (1 - hole) + hole * torch.tensor([1.0, 0, 1], device=occ.device)[None, :, None, None] * 0.8,
             hole.expand(-1, 3, -1, -1), prior, comp, clean]
    img = torch.cat([torch.cat([t[r] for t in tiles], 2) for r in range(len(clean))], 1)
    Image.fromarray((img.permute(1, 2, 0).clamp(0, 1) * 255 + 0.5).byte().cpu().numpy()).save(path)


def model_card(name: str, metrics: dict, run: Run, minutes: float, n_train: int) -> str:
    a = run.args
    warm = (f"\nWarm start: G and its EMA from `{a.init}` (this run's steps and images come on top of that model's)."
            if a.init else "")
    return f"""---
license: other
license_name: non-commercial-research
tags: [face-inpainting, de-occlusion, celebamask-hq]
---
# FaceLab de-occlusion inpainter ({name}, {sum(p.numel() for p in run.G.parameters()) / 1e6:.2f}M parameters)

Gated-convolution U-Net with self-attention at 32 x 32 (`core/models/deocclusion.py`), after Yin (2022),
ch. 5. Input: 256 px aligned face with the occluded part replaced by noise, the mask, and
{("a face prior (the face mirrored about its landmark midline; push-pull fill where both sides are hidden"
  + ("; mirror sources limited to the landmark face region, as the app's face_only_prior)" if a.prior == "face" else ")"))
 if not a.no_prior else "NO face prior (the thesis's ablation)"}. Output composited: pixels outside the mask are unchanged.

## Data
CelebAMask-HQ 256 px, {n_train} training crops (FaceLab split 0) with synthetic occluders
(eyeglasses / hat / hair / cloth regions from other photos, lower faces of face-mask photos, textured
shapes and hand-like blobs) and free-form strokes; target = the clean photo.

## Terms
Non-commercial research use only (CelebAMask-HQ / CelebA; masked-face photo sets: research use).
The identity loss used a MobileFaceNet (CASIA-WebFace) at training time only; it is not part of this model.

## Metrics (val split, synthetic occluders, seed 1234, inside the hole, [0, 1] scale)
L1 {metrics['hole_l1']:.4f}, PSNR {metrics['hole_psnr']:.2f} dB, SSIM {metrics['hole_ssim']:.4f}.
The thesis's protocol (sunglasses / masks, OpenCV baselines): `python -m train.eval_deocclusion`.

Training: {run.step} steps, {run.seen / 1000:.1f} k images, {minutes:.0f} min on one GPU; losses
hole L1 x{a.w_hole}, SSIM-to-prior x{a.w_prior}, background L1 x{a.w_bg}, identity x{a.w_id}, TV x{a.w_tv},
hinge adversarial x{a.w_adv}, feature matching x{a.w_fm}; EMA weights, fp16.{warm}

## Retrain
    python -m train.data
    python -m train.deocclusion --shards .cache/shards --ckpt .cache/ckpt/deocclusion --out out/deocc \\
        --minutes 20 --device cuda{" --no-prior" if a.no_prior else f" --prior {a.prior}"}{" --init MODEL_FOLDER" if a.init else ""}
"""


def main(argv=None) -> None:
    args = parse_args(argv)
    t_start = time.time()
    dev = torch.device(args.device)
    if args.smoke:
        args.batch = 2
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    data = Data(args.shards, dev, args.smoke)
    run = Run(args, dev)
    print(f"Inpainter {sum(p.numel() for p in run.G.parameters()) / 1e6:.2f}M, prior {not args.no_prior}, "
          f"identity loss {'on' if run.identity is not None else 'off'}, batch {args.batch}", flush=True)
    end = t_start + args.minutes * 60 - (10 if args.smoke else 45)
    last_log = last_ckpt = time.time()
    sums, n, k = {}, 0, 0
    while (k < 3) if args.smoke else (time.time() < end):
        out = run.train_step(data)
        k += 1
        n += 1
        for key, v in out.items():
            sums[key] = sums.get(key, 0) + v
        if time.time() - last_log > 30 or args.smoke:
            dt = time.time() - last_log
            print(f"step {run.step} kimg {run.seen / 1000:.1f} {n * args.batch / dt:.0f} img/s "
                  + " ".join(f"{key} {float(v) / n:.4f}" for key, v in sums.items()), flush=True)
            sums, n, last_log = {}, 0, time.time()
        if time.time() - last_ckpt > 240:
            run.save()
            last_ckpt = time.time()
    run.save()
    name = args.name or ("deocclusion-noprior" if args.no_prior else "deocclusion")
    metrics = evaluate(run.G_ema, data, prior=args.prior)
    metrics.update(step=run.step, kimg=round(run.seen / 1000, 2))
    print(json.dumps(metrics), flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"{name}_metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    grid(run.G_ema, data, os.path.join(args.out, f"{name}_grid.png"), prior=args.prior)
    files = run.G_ema.save_pretrained(os.path.join(args.out, name), card=model_card(name, metrics, run, args.minutes, len(data.img)),
                                      extra_config={"metrics": metrics})
    print(f"wrote {args.out}/{name}/{files}; done in {time.time() - t_start:.0f}s", flush=True)


if __name__ == "__main__":
    main()
