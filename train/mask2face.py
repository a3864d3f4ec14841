"""Train Mask2Face (core/models/mask2face.py) on CelebAMask-HQ shards; resumable across sessions.

    python -m train.mask2face --shards .cache/shards --ckpt .cache/ckpt/mask2face --out out \
        --minutes 20 --device cuda [--parser out/parser] [--smoke]

Losses (seed 001, Eq. 3.9: {local, global, GD, GP} = {10, 1, 1, 1}):
 - paired step (x^s = x^t: photo from its own mask + styles):
   10 * L1 on eye / mouth crops (the thesis's local component reconstruction, crops centred on
   the mask's components, 32x48 eyes and 48x80 mouth at 256 px)
   + 1 * global L1 + 10 * discriminator feature matching (the VGG-free perceptual term; pix2pixHD
   lambda_feat = 10, seed 001's external opt) + 1 * hinge adversarial + 1 * parsing CE.
 - unpaired step (styles of photo A, mask of photo B; no pixel target, Eq. 3.10):
   1 * hinge adversarial + 1 * parsing CE + 1 * local component style loss: the generated image,
   re-encoded by the EMA style encoder under mask B, must give A's (EMA) style vectors for the
   component classes present in both (eyes, brows, lips/mouth, nose, skin, hair).
   Every `--unpaired-every`-th step (default 4, i.e. 1 in 4 steps) is unpaired.
D: two-scale conditional PatchGAN (image + one-hot mask) with spectral norm, hinge loss,
DiffAugment (translation of image+mask, colour of image) with the same draw applied to real and
fake, optional lazy R1 (`--r1`). Adam TTUR G 1e-4 / D 4e-4, betas (0, 0.999), bf16 autocast, EMA G.
Seed path: at the end, the EMA model's styles of all training photos are fitted with a rank-64
Gaussian (`Mask2Face.fit_style_prior`), which `sample_styles` draws from.
Resumable state (safetensors + json, optimiser moments flattened into safetensors) lives in --ckpt;
the model config is read back from it, so a resumed run always rebuilds the same architecture.
Out (3 entries): --out/mask2face/ (EMA model, fp16 shards, config.json, README.md card, metrics.json),
--out/mask2face_grid.png (one val face per row: mask | real | reconstruction | style of the next
row's photo | seed sample). Metrics: val reconstruction L1 ([0, 1] scale), PSNR, SSIM (pure torch),
plus parser mIoU of reconstructions and seed samples against the input mask when --parser is given.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from train.resume_pack import load_opt, opt_tensors

from core.labels import FLIP_PERM, ID, PALETTE
from core.metrics import psnr_from_mse, ssim
from core.models.mask2face import MODEL_CLASSES, Mask2Face, MultiscaleDiscriminator, one_hot
from train.shards import load_source

SMOKE_CONFIG = dict(channels=(64, 64, 32, 32, 16, 16), style_dim=16, encoder_width=8, mask_feat=8, style_rank=8)
STYLE_LOSS_CLASSES = [ID[n] for n in ("skin", "nose", "left_eye", "right_eye", "left_brow", "right_brow",
                                      "mouth", "upper_lip", "lower_lip", "hair")]
# local component crops (h, w at 256 px) and the label classes that define their centre
CROPS = (((32, 48), (ID["left_eye"],)), ((32, 48), (ID["right_eye"],)),
         ((48, 80), (ID["mouth"], ID["upper_lip"], ID["lower_lip"])))


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shards", default=".cache/shards")
    p.add_argument("--ckpt", default=".cache/ckpt/mask2face")
    p.add_argument("--out", default="out")
    p.add_argument("--minutes", type=float, default=20.0)
    p.add_argument("--device", default="cuda")
    p.add_argument("--smoke", action="store_true", help="tiny model, few steps (CPU check)")
    p.add_argument("--batch", type=int, default=24)
    p.add_argument("--lr-g", type=float, default=1e-4)
    p.add_argument("--lr-d", type=float, default=4e-4)
    p.add_argument("--unpaired-every", type=int, default=4, help="every N-th step is unpaired (0 = never)")
    p.add_argument("--w-local", type=float, default=10.0)
    p.add_argument("--w-global", type=float, default=1.0)
    p.add_argument("--w-fm", type=float, default=10.0)
    p.add_argument("--w-adv", type=float, default=1.0)
    p.add_argument("--w-parse", type=float, default=1.0)
    p.add_argument("--w-style", type=float, default=1.0)
    p.add_argument("--r1", type=float, default=0.0, help="R1 gamma (0 = off), applied lazily every 16 steps")
    p.add_argument("--ema-kimg", type=float, default=10.0, help="EMA half-life in thousands of images")
    p.add_argument("--parser", default=None, help="folder of a trained FaceParser (save_pretrained) for L_GP")
    p.add_argument("--ckpt-every", type=float, default=4.0, help="minutes between checkpoints")
    return p.parse_args(argv)


# ---------------------------------------------------------------------------------------------------
# data (all on the device; augmentation on the device)
# ---------------------------------------------------------------------------------------------------
class GpuData:
    """All celebamask 256 px images [N, 256, 256, 3] uint8 and labels [N, 256, 256] uint8 on the device."""

    def __init__(self, root: str, device: torch.device):
        d = load_source("celebamask", 256, root)
        split = torch.from_numpy(d["split"].astype(np.int64))
        self.images = torch.from_numpy(d["images"]).to(device)
        labels = d["labels"].copy()
        labels[labels >= MODEL_CLASSES] = 0                                   # occluder -> background
        self.labels = torch.from_numpy(labels).to(device)
        self.train_idx = torch.nonzero(split == 0).flatten().to(device)
        self.val_idx = torch.nonzero(split == 1).flatten().to(device)
        if len(self.val_idx) == 0:                                            # tiny smoke shards
            self.val_idx = self.train_idx[-max(1, len(self.train_idx) // 4):]
        self.flip_perm = torch.from_numpy(FLIP_PERM[:MODEL_CLASSES].copy()).to(device)
        self.device = device

    def get(self, idx: torch.Tensor, flip: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """-> image [B, 3, 256, 256] float in [-1, 1], labels [B, 256, 256] long (random mirror if flip)."""
        img = self.images[idx].permute(0, 3, 1, 2).float().div(127.5).sub(1)
        lab = self.labels[idx].long()
        if flip:
            f = torch.rand(len(idx), device=self.device) < 0.5
            img = torch.where(f.view(-1, 1, 1, 1), img.flip(-1), img)
            lab = torch.where(f.view(-1, 1, 1), self.flip_perm[lab.flip(-1)], lab)
        return img.contiguous(memory_format=torch.channels_last), lab

    def sample(self, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        idx = self.train_idx[torch.randint(len(self.train_idx), (batch,), device=self.device)]
        return self.get(idx, flip=True)


def draw_augment(n: int, device) -> dict:
    """One DiffAugment draw (Zhao et al. 2020: colour + translation 1/8), shared by real and fake."""
    return dict(bright=torch.rand(n, 1, 1, 1, device=device) - 0.5,
                sat=torch.rand(n, 1, 1, 1, device=device) * 2,
                contrast=torch.rand(n, 1, 1, 1, device=device) + 0.5,
                shift=(torch.rand(n, 2, device=device) * 2 - 1) * 0.25)        # fraction of half-size = 1/8


def diff_augment(img: torch.Tensor, mask: torch.Tensor, a: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """img [N, 3, H, W] in [-1, 1], mask [N, C, H, W] -> augmented (colour on image, same shift on both)."""
    x = img + a["bright"] * 2
    m = x.mean(1, keepdim=True)
    x = (x - m) * a["sat"] + m
    m = x.mean((1, 2, 3), keepdim=True)
    x = (x - m) * a["contrast"] + m
    n = img.shape[0]
    theta = torch.zeros(n, 2, 3, device=img.device)
    theta[:, 0, 0] = 1
    theta[:, 1, 1] = 1
    theta[:, :, 2] = a["shift"]
    both = torch.cat([x, mask.to(x.dtype)], 1)
    grid = F.affine_grid(theta, list(both.shape), align_corners=False)
    both = F.grid_sample(both, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return both[:, :3], both[:, 3:]


# ---------------------------------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------------------------------
def crop_boxes(labels: torch.Tensor, classes: tuple, hw: tuple[int, int]) -> tuple[torch.Tensor, ...]:
    """Crop windows of size hw centred on `classes` -> (batch index, ys [N,h,1], xs [N,1,w], present [N])."""
    n, H, W = labels.shape
    m = torch.zeros_like(labels, dtype=torch.float32)
    for c in classes:
        m = m + (labels == c).float()
    area = m.sum((1, 2))
    ys = torch.arange(H, device=labels.device, dtype=torch.float32)
    xs = torch.arange(W, device=labels.device, dtype=torch.float32)
    cy = (m.sum(2) * ys).sum(1) / area.clamp_min(1)
    cx = (m.sum(1) * xs).sum(1) / area.clamp_min(1)
    h, w = hw
    y0 = (cy - h / 2).round().clamp(0, H - h).long()
    x0 = (cx - w / 2).round().clamp(0, W - w).long()
    yy = y0.view(n, 1, 1) + torch.arange(h, device=labels.device).view(1, h, 1)
    xx = x0.view(n, 1, 1) + torch.arange(w, device=labels.device).view(1, 1, w)
    return torch.arange(n, device=labels.device).view(n, 1, 1), yy, xx, area > 4


def local_loss(fake: torch.Tensor, real: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean L1 over eye / mouth crops (only where the component exists)."""
    scale = labels.shape[-1] / 256
    total, fk, rl = 0.0, fake.permute(0, 2, 3, 1), real.permute(0, 2, 3, 1)
    for (h, w), classes in CROPS:
        b, yy, xx, present = crop_boxes(labels, classes, (max(4, int(h * scale)), max(4, int(w * scale))))
        err = (fk[b, yy, xx] - rl[b, yy, xx]).abs().mean((1, 2, 3))      # [N]
        total = total + (err * present).sum() / present.sum().clamp_min(1)
    return total / len(CROPS)


def d_hinge(out_real, out_fake) -> torch.Tensor:
    return sum(F.relu(1 - r[0].float()).mean() + F.relu(1 + f[0].float()).mean()
               for r, f in zip(out_real, out_fake)) / len(out_real)


def g_hinge(out_fake) -> torch.Tensor:
    return sum(-f[0].float().mean() for f in out_fake) / len(out_fake)


def feature_matching(out_fake, out_real) -> torch.Tensor:
    total, count = 0.0, 0
    for (_, ff), (_, fr) in zip(out_fake, out_real):
        for a, b in zip(ff, fr):
            total = total + (a.float() - b.detach().float()).abs().mean()
            count += 1
    return total / count


# ---------------------------------------------------------------------------------------------------
# checkpoint (safetensors + json; optimiser moments flattened)
# ---------------------------------------------------------------------------------------------------
def state_path(ckpt: str, name: str) -> str:
    return os.path.join(ckpt, name)


def save_checkpoint(ckpt: str, run: "Run") -> None:
    os.makedirs(ckpt, exist_ok=True)
    tensors = {}
    for name, mod in (("g", run.model), ("ema", run.ema), ("d", run.disc)):
        tensors.update({f"{name}/{k}": v.detach().cpu().contiguous() for k, v in mod.state_dict().items()})
    tensors.update(opt_tensors(run.opt_g, "opt_g"))
    tensors.update(opt_tensors(run.opt_d, "opt_d"))
    tmp = state_path(ckpt, "state.safetensors.tmp")
    save_file(tensors, tmp)
    os.replace(tmp, state_path(ckpt, "state.safetensors"))
    meta = dict(step=run.step, nimg=run.nimg, train_seconds=run.train_seconds, sessions=run.sessions,
                model_config=run.model.config, args=vars(run.args))
    with open(state_path(ckpt, "state.json.tmp"), "w") as f:
        json.dump(meta, f, indent=2)
    os.replace(state_path(ckpt, "state.json.tmp"), state_path(ckpt, "state.json"))


def load_meta(ckpt: str) -> dict | None:
    path = state_path(ckpt, "state.json")
    if not (os.path.exists(path) and os.path.exists(state_path(ckpt, "state.safetensors"))):
        return None
    with open(path) as f:
        return json.load(f)


# ---------------------------------------------------------------------------------------------------
# training run
# ---------------------------------------------------------------------------------------------------
class Run:
    """Models, optimisers and counters of one training job (setup / step / evaluate / checkpoint)."""

    def __init__(self, args, device: torch.device):
        self.args, self.device = args, device
        meta = load_meta(args.ckpt)
        if meta is not None:
            cfg = meta["model_config"]
        else:
            cfg = dict(Mask2Face().config if not args.smoke else Mask2Face(**SMOKE_CONFIG).config)
        self.model = Mask2Face(**cfg).to(device)
        self.disc = MultiscaleDiscriminator(MODEL_CLASSES, width=16 if args.smoke else 64).to(device)
        self.ema = copy.deepcopy(self.model).eval().requires_grad_(False)
        if device.type == "cuda":
            for m in (self.model, self.disc, self.ema):
                m.to(memory_format=torch.channels_last)
        self.opt_g = torch.optim.Adam(self.model.parameters(), lr=args.lr_g, betas=(0.0, 0.999))
        self.opt_d = torch.optim.Adam(self.disc.parameters(), lr=args.lr_d, betas=(0.0, 0.999))
        self.step, self.nimg, self.train_seconds, self.sessions = 0, 0, 0.0, 0
        if meta is not None:
            t = load_file(state_path(args.ckpt, "state.safetensors"))             # CPU; Adam keeps `step` there
            for name, mod in (("g", self.model), ("ema", self.ema), ("d", self.disc)):
                mod.load_state_dict({k[len(name) + 1:]: v for k, v in t.items() if k.startswith(name + "/")})
            load_opt(self.opt_g, t, "opt_g")
            load_opt(self.opt_d, t, "opt_d")
            self.step, self.nimg = meta["step"], meta["nimg"]
            self.train_seconds, self.sessions = meta["train_seconds"], meta["sessions"]
            print(f"resumed from {args.ckpt}: step {self.step}, {self.nimg / 1000:.1f} kimg", flush=True)
        self.sessions += 1
        self.parser = None
        if args.parser and os.path.exists(os.path.join(args.parser, "config.json")):
            from core.models.parser import FaceParser
            self.parser = FaceParser.from_pretrained(args.parser, device=device).requires_grad_(False)
            print(f"parsing loss through {args.parser}", flush=True)
        elif args.parser:
            print(f"--parser {args.parser} not found: parsing loss off", flush=True)
        self.amp = dict(device_type=device.type, dtype=torch.bfloat16, enabled=device.type == "cuda")

    def parse_loss(self, fake: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        if self.parser is None:
            return fake.new_zeros(())
        logits = self.parser((fake + 1) / 2).float()                           # [N, 20, H, W]
        return F.cross_entropy(logits, labels)

    def train_step(self, data: GpuData) -> dict[str, torch.Tensor]:
        """One D + one G update (paired, or unpaired every `unpaired_every`-th step); losses as 0-d tensors."""
        a, b = self.args, self.args.batch
        real, lab = data.sample(b)
        unpaired = a.unpaired_every > 0 and self.step % a.unpaired_every == a.unpaired_every - 1
        mask = one_hot(lab, MODEL_CLASSES)
        aug = draw_augment(b, self.device)
        logs = {}
        with torch.autocast(**self.amp):
            if unpaired:                          # styles of A = batch rolled by one, mask and D target of B
                src = real.roll(1, 0)
                src_lab = lab.roll(1, 0)
                styles = self.model.encode_styles(src, src_lab)
            else:
                styles = self.model.encode_styles(real, lab)
            fake = self.model.generate(lab, styles, noise=True)                # [B, 3, R, R]
            # --- D step (same augmentation draw for real and fake) ---
            self.disc.requires_grad_(True)
            r_img, r_mask = diff_augment(real, mask, aug)
            f_img, f_mask = diff_augment(fake.detach(), mask, aug)
            loss_d = d_hinge(self.disc(r_img, r_mask), self.disc(f_img, f_mask))
        self.opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        if a.r1 > 0 and self.step % 16 == 0:
            r1 = self.r1_penalty(real, mask, aug)
            (r1 * a.r1 / 2 * 16).backward()
            logs["r1"] = r1.detach()
        self.opt_d.step()
        # --- G step ---
        self.disc.requires_grad_(False)
        with torch.autocast(**self.amp):
            f_img, f_mask = diff_augment(fake, mask, aug)
            out_fake = self.disc(f_img, f_mask)
            loss = a.w_adv * g_hinge(out_fake)
            lp = self.parse_loss(fake, lab)
            loss = loss + a.w_parse * lp
            if unpaired:
                with torch.no_grad():
                    target = self.ema.encode_styles(src, src_lab)             # [B, C, S]
                got, area = self.ema.encoder(fake, one_hot(lab, MODEL_CLASSES, fake.dtype))
                _, area_src = self.ema.encoder.forward(src, one_hot(src_lab, MODEL_CLASSES, fake.dtype))
                keep = ((area >= 1) & (area_src >= 1))[:, STYLE_LOSS_CLASSES].float().unsqueeze(-1)
                diff = (got[:, STYLE_LOSS_CLASSES] - target[:, STYLE_LOSS_CLASSES].float()).abs() * keep
                ls = diff.sum() / (keep.sum() * got.shape[-1]).clamp_min(1)
                loss = loss + a.w_style * ls
                logs.update(style=ls.detach())
            else:
                with torch.no_grad():
                    out_real = self.disc(r_img, r_mask)
                lg = (fake.float() - real).abs().mean()
                ll = local_loss(fake.float(), real, lab)
                lfm = feature_matching(out_fake, out_real)
                loss = loss + a.w_global * lg + a.w_local * ll + a.w_fm * lfm
                logs.update(l1=lg.detach(), local=ll.detach(), fm=lfm.detach())
        self.opt_g.zero_grad(set_to_none=True)
        loss.backward()
        self.opt_g.step()
        self.update_ema(b)
        self.update_style_mean(styles.detach(), lab)
        self.step += 1
        self.nimg += b
        logs.update(d=loss_d.detach(), g=loss.detach(), parse=lp.detach())
        return logs

    def r1_penalty(self, real, mask, aug) -> torch.Tensor:
        x = real.detach().requires_grad_(True)
        with torch.autocast(**self.amp):
            r_img, r_mask = diff_augment(x, mask, aug)
            out = self.disc(r_img, r_mask)
            s = sum(o[0].float().sum() for o in out)
        (g,) = torch.autograd.grad(s, x, create_graph=True)
        return g.float().pow(2).sum((1, 2, 3)).mean()

    @torch.no_grad()
    def update_ema(self, batch: int) -> None:
        ema_nimg = min(self.args.ema_kimg * 1000, self.nimg * 0.05 + batch)  # StyleGAN2-ADA ramp-up
        beta = 0.5 ** (batch / max(ema_nimg, 1e-8))
        for pe, p in zip(self.ema.parameters(), self.model.parameters()):
            pe.lerp_(p.detach(), 1 - beta)
        for be, b in zip(self.ema.buffers(), self.model.buffers()):
            be.copy_(b)

    @torch.no_grad()
    def update_style_mean(self, styles: torch.Tensor, labels: torch.Tensor) -> None:
        """Running per-class mean of the codes: fills classes absent from a style photo during training."""
        pres = one_hot(labels, MODEL_CLASSES).amax((2, 3)).unsqueeze(-1)       # [B, C, 1]
        cnt = pres.sum(0)
        batch_mean = (styles.float() * pres).sum(0) / cnt.clamp_min(1)
        m = self.model.style_mean
        m.copy_(torch.where(cnt > 0, m.lerp(batch_mean, 0.02), m))


# ---------------------------------------------------------------------------------------------------
# evaluation and export
# ---------------------------------------------------------------------------------------------------
@torch.no_grad()
def fit_prior(run: Run, data: GpuData, batch: int = 64) -> None:
    styles, present = [], []
    for i in range(0, len(data.train_idx), batch):
        img, lab = data.get(data.train_idx[i:i + batch])
        with torch.autocast(**run.amp):
            s, area = run.ema.encoder(img, one_hot(lab, MODEL_CLASSES, img.dtype))
        styles.append(s.float())
        present.append(area >= 1)
    run.ema.fit_style_prior(torch.cat(styles), torch.cat(present))


@torch.no_grad()
def evaluate(run: Run, data: GpuData, batch: int = 32) -> dict:
    l1, psnr, ss, miou_hits = [], [], [], []
    inter = torch.zeros(2, MODEL_CLASSES, device=run.device)
    union = torch.zeros(2, MODEL_CLASSES, device=run.device)
    gen = torch.Generator(device=run.device).manual_seed(0)
    for i in range(0, len(data.val_idx), batch):
        real, lab = data.get(data.val_idx[i:i + batch])
        with torch.autocast(**run.amp):
            rec = run.ema.generate(lab, run.ema.encode_styles(real, lab)).float()
            smp = run.ema.generate(lab, run.ema.sample_styles(len(lab), gen)).float()
        a, b = (rec + 1) / 2, (real + 1) / 2
        l1.append((a - b).abs().mean((1, 2, 3)))
        psnr.append(psnr_from_mse((a - b).pow(2).mean((1, 2, 3))))
        ss.append(ssim(a.clamp(0, 1), b))
        if run.parser is not None:
            for k, img in enumerate((rec, smp)):
                with torch.autocast(**run.amp):
                    pred = run.parser((img + 1) / 2).float().argmax(1)
                pred[pred >= MODEL_CLASSES] = 0
                for c in range(MODEL_CLASSES):
                    p, t = pred == c, lab == c
                    inter[k, c] += (p & t).sum()
                    union[k, c] += (p | t).sum()
    m = dict(val_images=len(data.val_idx), val_recon_l1=torch.cat(l1).mean().item(),
             val_recon_psnr=torch.cat(psnr).mean().item(), val_recon_ssim=torch.cat(ss).mean().item())
    if run.parser is not None:
        for k, name in enumerate(("recon", "seed")):
            valid = union[k] > 0
            m[f"val_{name}_mask_miou"] = (inter[k][valid] / union[k][valid]).mean().item()
    return m


@torch.no_grad()
def sample_grid(run: Run, data: GpuData, path: str, rows: int = 6) -> None:
    """Rows = val examples; columns: mask colour | real | recon (own mask+style) | style of next row | seed."""
    from PIL import Image

    idx = data.val_idx[:rows]
    real, lab = data.get(idx)
    gen = torch.Generator(device=run.device).manual_seed(1)
    with torch.autocast(**run.amp):
        styles = run.ema.encode_styles(real, lab)
        rec = run.ema.generate(lab, styles)
        other = run.ema.generate(lab, styles.roll(-1, 0))
        seed = run.ema.generate(lab, run.ema.sample_styles(len(idx), gen), noise=gen)
    to_np = lambda x: ((x.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu().numpy()  # noqa
    colour = PALETTE[lab.cpu().numpy()]
    cols = [colour, to_np(real), to_np(rec), to_np(other), to_np(seed)]
    grid = np.concatenate([np.concatenate([c[r] for c in cols], 1) for r in range(len(idx))], 0)
    Image.fromarray(grid).save(path)


def model_card(run: Run, metrics: dict) -> str:
    a = run.args
    return f"""---
license: other
license_name: non-commercial-research
tags: [face, mask-to-face, sean, spade, gan, facelab]
---
# Mask2Face (FaceLab)

Semantic face mask (19 CelebAMask-HQ classes) + per-region style codes -> 256x256 portrait.
SEAN-style generator (region-adaptive normalisation) with a region-pooling style encoder and a
low-rank Gaussian style prior for seed sampling; losses of seed 001 (Gu et al. CVPR 2019 via
Panday's thesis): local eye/mouth reconstruction (10), global L1 + discriminator feature matching (1),
two-scale PatchGAN hinge (1), face-parsing loss (1, {'on' if run.parser is not None else 'off in this run'}),
paired / unpaired steps (1 unpaired in {a.unpaired_every}). Code: `core/models/mask2face.py`,
`train/mask2face.py`. Weights are the EMA generator, fp16.

## Data and terms
Trained on the train split of the CelebAMask-HQ subset in `../shared/data/celebamask_hq` (4,500 faces
at 256 px, split from `train.data`). CelebAMask-HQ / CelebA are released for **non-commercial research
use only**; these weights inherit those terms. Generated faces are synthetic and must not be used to
impersonate real people.

## Training
{run.nimg / 1000:.1f} kimg ({run.step} steps, batch {a.batch}, {run.train_seconds / 60:.1f} GPU minutes over
{run.sessions} session(s)), Adam G {a.lr_g} / D {a.lr_d}, betas (0, 0.999), bf16, EMA half-life {a.ema_kimg} kimg.

## Metrics (val split, reconstruction from own mask + style)
```
{json.dumps(metrics, indent=2)}
```

## Retrain / resume
```
python -m train.mask2face --shards .cache/shards --ckpt .cache/ckpt/mask2face --out out --minutes 20 \\
    --device cuda{' --parser ' + a.parser if a.parser else ''}
```
The same command resumes from the state in `--ckpt` (safetensors + json).
"""


def export(run: Run, data: GpuData) -> dict:
    a = run.args
    fit_prior(run, data)
    metrics = evaluate(run, data)
    metrics.update(kimg=round(run.nimg / 1000, 2), steps=run.step)
    os.makedirs(a.out, exist_ok=True)
    folder = os.path.join(a.out, "mask2face")
    run.ema.save_pretrained(folder, card=model_card(run, metrics),
                            extra_config=dict(metrics=metrics, training=dict(kimg=metrics["kimg"], steps=run.step)))
    with open(os.path.join(folder, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    sample_grid(run, data, os.path.join(a.out, "mask2face_grid.png"))
    return metrics


def main(argv=None) -> None:
    args = parse_args(argv)
    t0 = time.time()
    device = torch.device(args.device if args.device != "cuda" or torch.cuda.is_available() else "cpu")
    if args.smoke:
        args.batch = min(args.batch, 2)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    data = GpuData(args.shards, device)
    run = Run(args, device)
    print(f"data: {len(data.train_idx)} train / {len(data.val_idx)} val on {device}; "
          f"G+E {sum(p.numel() for p in run.model.parameters()) / 1e6:.2f} M params", flush=True)
    deadline = t0 + args.minutes * 60
    reserve = min(90.0, 0.3 * args.minutes * 60)                 # final prior fit + eval + export
    last_log = last_ckpt = t_start = time.time()
    step0, sums, counts, base_seconds = run.step, {}, {}, run.train_seconds
    smoke_steps = 4 if args.smoke else None
    while time.time() < deadline - reserve:
        if smoke_steps is not None and run.step - step0 >= smoke_steps:
            break
        logs = run.train_step(data)
        for k, v in logs.items():                                # tensors: no GPU sync per step
            sums[k] = sums.get(k, 0.0) + v.float()
            counts[k] = counts.get(k, 0) + 1
        now = time.time()
        if now - last_log >= 30 or run.step - step0 <= 1:
            rate = (run.step - step0) / (now - t_start)
            print(f"step {run.step} kimg {run.nimg / 1000:.2f} it/s {rate:.2f} img/s {rate * args.batch:.0f} "
                  + " ".join(f"{k} {float(v) / counts[k]:.3f}" for k, v in sorted(sums.items())), flush=True)
            sums, counts = {}, {}                                 # window averages between log lines
            last_log = now
        if now - last_ckpt >= args.ckpt_every * 60:
            run.train_seconds = base_seconds + now - t_start
            save_checkpoint(args.ckpt, run)
            last_ckpt = now
    run.train_seconds = base_seconds + time.time() - t_start
    save_checkpoint(args.ckpt, run)
    metrics = export(run, data)
    print(f"done: step {run.step}, {run.nimg / 1000:.2f} kimg, {time.time() - t0:.0f} s; {json.dumps(metrics)}",
          flush=True)


if __name__ == "__main__":
    main()
