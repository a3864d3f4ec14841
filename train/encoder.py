"""Train the MTV encoder (core/models/encoder.py) that inverts our 128 px StyleGAN2 generator (seed 002, MTV-TSA).

    python -m train.encoder --generator out/stylegan --shards .cache/shards --ckpt .cache/ckpt/encoder --out out \
        --minutes 20 --device cuda --arcface /root/weights/mobilefacenet_casia/model.safetensors
    python -m train.encoder --smoke --device cpu --shards .cache/shards --ckpt /tmp/enc_ck --out /tmp/enc_out \
        --arcface .cache/weights/mobilefacenet_casia/model.safetensors

G is frozen (eval, no parameter gradients; gradients flow through it to E). Two phases, by cumulative
training time (monotone: once in phase 2, a resumed run stays there):
- Phase 1 (first `--phase1-frac` of the planned time), self-supervised as the seed (Algorithm 1): z ~ N(0, I),
  w = mapping(z), style mixing on half the batch so E also sees w+ codes, x = G.synthesis(ws) (constant noise,
  so x is exactly reproducible from ws), x' = G(E(x)).
  L = nu1 * L_MTV(ws, ws') + L_TSA(x, x'), L_MTV = MSE + (1 - cos) + softmax-KL (Eq. 3-5, per w slice),
  L_TSA = sum over the full image and the two centre crops (1 : 0.75 : 0.6875, resized to full size, Fig. 2) with
  mu1 = mu2 = 1 (case 1) of  w_mse * MSE + w_ssim * (1 - SSIM) + w_feat * MobileFaceNet feature loss,
  plus w_id * (1 - cos) of MobileFaceNet embeddings on the full image only (the identity net's fixed alignment
  warp expects our canonical crop; the zoomed crops only feed its feature maps).
- Phase 2 (rest): half of each batch real train faces (celebamask, celeba_id, utkface at 128 px, split 0,
  padded < 0.05, random flips; `train.stylegan.load_faces`), half synthetic as in phase 1 (keeps the latent
  loss anchoring the codes in W). Real images get image losses only plus `w_reg` * hinge(mean ||ws - w_avg||^2 /
  sigma_W^2 - 1): zero for codes as far from the mean as typical G samples, a pull back for codes beyond.

Differences from the seed, and why: the seed's VGG16 "LPIPS" is replaced by MobileFaceNet features (the only
pretrained net on the GPU machine); feature maps at three depths are compared by MSE normalised by the target's
mean square, so each depth weighs ~1 at chance level. No image cos/KL terms (the latent side keeps them).
The seed's Adam lr 0.0015, betas (0, 0.99) is kept as the optimiser but with a lower default lr (8e-4) and a
linear warm-up (500 steps) because our batch is 4x theirs and nothing could be tuned on the GPU before this ran;
lr decays linearly to 0.25x over phase 2.

Checkpoint (`--ckpt`, every `--ckpt-minutes` and at the end), no pickles: state.json (step, phase, seconds, args,
w statistics, history) + state-s{step}-{k}.safetensors (E in fp16 unless --ckpt-fp32) + optim-s{step}-{k}
(Adam second moments in bf16; beta1 = 0 so the first moment is not needed).
Out (3 items): out/encoder/ (save_pretrained + model card), out/encoder_metrics.json, out/encoder_grid.png.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F

from core.models.encoder import MTVEncoder
from core.models.stylegan import StyleGAN2Generator
from core.metrics import psnr_from_mse, ssim
from train.shards import load_source
from train.stylegan import (RESOLUTION, SOURCES, adam_sq_tensors, load_adam_sq, load_faces, read_json, read_state,
                            real_batch, write_json, write_state)

CROPS = (1.0, 0.75, 0.6875)  # TSA: full image, AT1, AT2 (aligned faces, Fig. 2)
FEAT_DEPTHS = (4, 11)        # MobileFaceNet blocks whose outputs (28x24, 14x12) feed the feature loss (+ dw_conv1)
EVAL_SEED = 10_000           # z seeds of the synthetic evaluation set
N_EVAL_SYN, N_EVAL_REAL = 256, 500


# ----------------------------------------------------------------------------------------------- losses
def latent_loss(w: torch.Tensor, w_hat: torch.Tensor) -> torch.Tensor:
    """L_MTV (Eq. 3-5) between target and predicted w+ [N, L, D]: MSE + (1 - cos) + KL(S(w') || S(w))."""
    w, w_hat = w.float(), w_hat.float()
    mse = F.mse_loss(w_hat, w)
    cos = 1 - F.cosine_similarity(w_hat, w, dim=-1).mean()
    lp, lq = F.log_softmax(w, -1), F.log_softmax(w_hat, -1)
    kl = (lq.exp() * (lq - lp)).sum(-1).mean()
    return mse + cos + kl


def centre_crop(x: torch.Tensor, ratio: float) -> torch.Tensor:
    """[N, C, S, S] -> centre crop of side ratio * S resized back to S (bilinear)."""
    if ratio == 1.0:
        return x
    s = x.shape[-1]
    c = int(round(s * ratio))
    o = (s - c) // 2
    return F.interpolate(x[..., o:o + c, o:o + c], size=(s, s), mode="bilinear", align_corners=False)


class FaceFeatures:
    """Frozen MobileFaceNet (train/mobilefacenet.py) as feature extractor: features at 3 depths + embedding."""

    def __init__(self, path: str, device):
        from train.mobilefacenet import IdentityLoss, load_mobilefacenet

        self.idl = IdentityLoss(load_mobilefacenet(path, device), device)

    def __call__(self, x: torch.Tensor, embed: bool) -> tuple[list[torch.Tensor], torch.Tensor | None]:
        """x [N, 3, S, S] in [-1, 1] -> feature maps, and [N, 128] unit embedding (single view) if `embed`."""
        net = self.idl.net
        h = net.dw_conv1(net.conv1(self.idl.warp((x + 1) / 2)))  # [N, 64, 56, 48]
        feats = [h]
        for i, blk in enumerate(net.blocks):
            h = blk(h)
            if i in FEAT_DEPTHS:
                feats.append(h)
            if i == FEAT_DEPTHS[-1] and not embed:
                return feats, None
        e = net.linear1(net.linear7(net.conv2(h))).flatten(1)
        return feats, F.normalize(e.float(), dim=1)

    @torch.no_grad()
    def descriptor(self, x: torch.Tensor) -> torch.Tensor:
        """[N, 3, S, S] in [-1, 1] -> [N, 256] image + mirror descriptor (the evaluation metric)."""
        return self.idl.embed((x.float() + 1) / 2)


def image_loss(x: torch.Tensor, x_hat: torch.Tensor, a, net: FaceFeatures | None) -> dict[str, torch.Tensor]:
    """L_TSA summed over the three attention scales; x, x_hat [N, 3, S, S] in [-1, 1] -> named loss terms."""
    terms = {"mse": 0.0, "ssim": 0.0, "feat": 0.0, "id": 0.0}
    for k, ratio in enumerate(CROPS):
        mu = 1.0  # case 1 of Algorithm 1: mu1 = mu2 = 1
        xc, yc = centre_crop(x, ratio), centre_crop(x_hat, ratio)
        terms["mse"] = terms["mse"] + mu * F.mse_loss(yc.float(), xc.float())
        terms["ssim"] = terms["ssim"] + mu * (1 - ssim((yc + 1) / 2, (xc + 1) / 2).mean())
        if net is not None:
            with torch.no_grad():
                ft, et = net(xc, embed=k == 0)
            fp, ep = net(yc, embed=k == 0)
            for a_, b_ in zip(fp, ft):
                a_, b_ = a_.float(), b_.float()
                terms["feat"] = terms["feat"] + mu * F.mse_loss(a_, b_) / (b_.square().mean() + 1e-6)
            if k == 0:
                terms["id"] = 1 - (ep * et).sum(1).mean()
    return {k: torch.as_tensor(v, device=x.device, dtype=torch.float32) for k, v in terms.items()}


# ----------------------------------------------------------------------------------------------- trainer
class Trainer:
    def __init__(self, args, G: StyleGAN2Generator):
        self.args, a = args, args
        self.dev = torch.device(a.device)
        self.amp = self.dev.type == "cuda" and not a.fp32
        self.G = G.to(self.dev).eval().requires_grad_(False)
        self.meta = {"step": 0, "nimg": 0, "phase": 1, "train_seconds": 0.0, "sessions": []}
        saved = read_json(os.path.join(a.ckpt, "state.json"))
        if saved is not None:
            enc_cfg = saved["E_config"]
            self.w_stats = saved["w_stats"]
        else:
            enc_cfg = dict(img_resolution=G.img_resolution, w_dim=G.w_dim, channel_base=a.channel_base,
                           channel_max=a.channel_max, head_hidden=a.head_hidden, spatial_res=a.spatial_res,
                           predict_const=a.predict_const,
                           const_channels=G.synthesis_network.channels[4])
            self.w_stats = self.estimate_w_stats()
        self.E = MTVEncoder(**enc_cfg).to(self.dev)
        if saved is None and a.init:  # warm start from an exported encoder (e.g. one fitted to an earlier G)
            # tensors whose shapes differ (a slimmer --channel-base changes the fine blocks) keep their fresh init
            own = self.E.state_dict()
            init = MTVEncoder.from_pretrained(a.init).state_dict()
            same = {k: v for k, v in init.items() if k in own and own[k].shape == v.shape}
            missing, unexpected = self.E.load_state_dict(same, strict=False)
            print(f"initialised from {a.init} ({len(same)} tensors; fresh {len(missing)}, "
                  f"unused {len(init) - len(same)})", flush=True)
        self.E.set_generator_stats(self.G, torch.tensor(self.w_stats["w_avg"], device=self.dev))
        self.E = self.E.to(memory_format=torch.channels_last)
        self.opt = torch.optim.Adam(self.E.parameters(), lr=a.lr, betas=(0.0, 0.99), eps=1e-8)
        self.net = None
        if a.arcface and os.path.isfile(a.arcface):
            self.net = FaceFeatures(a.arcface, self.dev)
        elif not a.smoke:
            raise FileNotFoundError(f"--arcface {a.arcface} not found (only --smoke may run without it)")
        else:
            print(f"smoke: no MobileFaceNet at {a.arcface}; feature/identity losses off", flush=True)
        if saved is not None:
            self._load(saved)
        self.stats: dict[str, list[torch.Tensor]] = {}

    # -------------------------------------------------------------------------------- setup
    @torch.no_grad()
    def estimate_w_stats(self, n: int = 10_000) -> dict:
        """G's mean w (its tracked w_avg when trained, else estimated) and sigma_W^2 = E||w - w_avg||^2 / D."""
        gen = torch.Generator(device="cpu").manual_seed(123)
        z = torch.randn(n, self.G.z_dim, generator=gen).to(self.dev)
        w = torch.cat([self.G.mapping_network(c) for c in z.split(1000)]).float()  # [n, D]
        w_avg = self.G.w_avg.float() if self.G.w_avg.abs().sum() > 0 else w.mean(0)
        var = (w - w_avg).square().mean().item()
        return {"w_avg": w_avg.cpu().tolist(), "w_var": var}

    def autocast(self):
        return torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self.amp)

    @torch.no_grad()
    def synthetic_batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """-> ws [n, L, D] (style-mixed in half the batch) and x = G.synthesis(ws) [n, 3, S, S]."""
        ws = self.G.mapping(torch.randn(n, self.G.z_dim, device=self.dev))
        ws2 = self.G.mapping(torch.randn(n, self.G.z_dim, device=self.dev))
        mixed = self.G.mix_styles(ws, ws2, prob=1.0)
        half = torch.arange(n, device=self.dev)[:, None, None] < n // 2
        ws = torch.where(half, mixed, ws).float()
        with self.autocast():
            x = self.G.synthesis(ws, noise_mode="const").float().clamp(-1, 1)
        return ws, x.contiguous(memory_format=torch.channels_last)

    # -------------------------------------------------------------------------------- step
    def lr(self) -> float:
        a, m = self.args, self.meta
        lr = a.lr * min(1.0, (m["step"] - m.get("warmup_from", 0) + 1) / a.warmup)
        if m["phase"] == 2 and m.get("phase2_planned"):
            done = (m["train_seconds_now"] - m["phase2_start"]) / max(m["phase2_planned"], 1.0)
            lr *= 1.0 - 0.75 * min(max(done, 0.0), 1.0)
        return lr

    def step(self, images: torch.Tensor | None):
        a = self.args
        for g in self.opt.param_groups:
            g["lr"] = self.lr()
        n_syn = a.batch if (self.meta["phase"] == 1 or images is None) else a.batch // 2
        ws, x_syn = self.synthetic_batch(n_syn)
        x = x_syn
        if n_syn < a.batch:
            x = torch.cat([x_syn, real_batch(images, a.batch - n_syn)])
        with self.autocast():
            out = self.E(x)
            x_hat = self.G.synthesis(out.ws, noise_mode="const", const=out.const)
        terms = image_loss(x, x_hat, a, self.net)
        terms["mtv"] = latent_loss(ws, out.ws[:n_syn])
        if self.meta["phase"] == 2 and n_syn < a.batch:
            d2 = (out.ws[n_syn:].float() - self.E.w_avg).square().mean((1, 2)) / self.w_stats["w_var"]
            terms["reg"] = F.relu(d2 - 1).mean()
        else:
            terms["reg"] = torch.zeros((), device=self.dev)
        loss = (a.w_mse * terms["mse"] + a.w_ssim * terms["ssim"] + a.w_feat * terms["feat"] + a.w_id * terms["id"]
                + a.nu1 * terms["mtv"] + a.w_reg * terms["reg"])
        if not torch.isfinite(loss):
            print(f"WARNING: non-finite loss at step {self.meta['step']}; step skipped", flush=True)
            self.opt.zero_grad(set_to_none=True)
            return
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        self.meta["step"] += 1
        self.meta["nimg"] += a.batch
        for k, v in dict(terms, loss=loss).items():  # kept on the device: no host sync per step
            self.stats.setdefault(k, []).append(v.detach().float())

    def pop_stats(self) -> dict:
        out = {k: float(torch.stack(v).mean()) for k, v in self.stats.items() if v}
        self.stats = {}
        return out

    # -------------------------------------------------------------------------------- checkpoint
    def save(self, session: dict):
        a = self.args
        dt = torch.float32 if a.ckpt_fp32 else torch.float16
        tensors = {k: (v.to(dt) if v.is_floating_point() else v).detach().cpu().contiguous()
                   for k, v in self.E.state_dict().items()}
        meta = dict(self.meta, E_config=self.E.config, G_config=self.G.config, w_stats=self.w_stats, args=vars(a),
                    sessions=self.meta["sessions"] + [session])
        write_state(a.ckpt, self.meta["step"], tensors, adam_sq_tensors(self.opt, "opt"), meta)

    def _load(self, saved: dict):
        ck = self.args.ckpt
        tensors, optim = read_state(ck, saved)
        self.E.load_state_dict(tensors)
        for k in ("step", "nimg", "phase", "train_seconds", "sessions", "warmup_from", "phase2_start", "phase2_planned"):
            if k in saved:
                self.meta[k] = saved[k]
        if optim is not None:
            load_adam_sq(self.opt, optim, "opt")
        else:
            self.meta["warmup_from"] = saved["step"]
            print(f"no optimiser state in {ck}: fresh Adam, lr warm-up over {self.args.warmup} steps", flush=True)
        print(f"resumed from {ck}: step {saved['step']}, phase {saved['phase']}, "
              f"{saved['train_seconds']:.0f}s trained", flush=True)

    # -------------------------------------------------------------------------------- evaluate / export
    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        with self.autocast():
            return self.E.reconstruct(self.G, x.contiguous(memory_format=torch.channels_last)).float().clamp(-1, 1)

    @torch.no_grad()
    def evaluate(self, val: torch.Tensor | None, n_syn: int) -> tuple[dict, torch.Tensor]:
        """PSNR / SSIM / MobileFaceNet cosine of G(E(x)) on fresh G samples and real val faces; grid rows."""
        self.E.eval()
        gen = torch.Generator(device="cpu").manual_seed(EVAL_SEED)
        z = torch.randn(n_syn, self.G.z_dim, generator=gen).to(self.dev)
        metrics, grid = {}, []
        sets = {"synthetic": None}
        if val is not None and len(val):
            sets["real_val"] = val
        for name, data in sets.items():
            acc = {"psnr": [], "ssim": [], "id_cos": [], "w_mse": []}
            for i in range(0, n_syn if data is None else len(data), 32):
                if data is None:
                    ws = self.G.mapping(z[i:i + 32])
                    with self.autocast():
                        x = self.G.synthesis(ws, noise_mode="const").float().clamp(-1, 1)
                    with self.autocast():
                        acc["w_mse"].append(F.mse_loss(self.E(x).ws.float(), ws.float(), reduction="none")
                                            .mean((1, 2)).cpu())
                else:
                    x = data[i:i + 32].permute(0, 3, 1, 2).float().div(127.5).sub(1)
                y = self.reconstruct(x)
                a01, b01 = (x + 1) / 2, (y + 1) / 2
                mse = (a01 - b01).square().mean((1, 2, 3)).clamp_min(1e-10)
                acc["psnr"].append(psnr_from_mse(mse).cpu())
                acc["ssim"].append(ssim(b01, a01).cpu())
                if self.net is not None:
                    acc["id_cos"].append((self.net.descriptor(x) * self.net.descriptor(y)).sum(1).cpu())
                if i == 0:
                    grid += [x[:8], y[:8]]
            metrics[name] = {k: round(float(torch.cat(v).mean()), 4) for k, v in acc.items() if v}
            metrics[name]["n"] = n_syn if data is None else len(data)
        self.E.train()
        return metrics, torch.cat(grid[2:] + grid[:2])  # real rows first when present

    def export(self, metrics: dict, grid: torch.Tensor, counts: dict, generator_info: dict):
        a = self.args
        folder = os.path.join(a.out, "encoder")
        if os.path.isdir(folder):
            shutil.rmtree(folder)
        training = {"step": self.meta["step"], "nimg": self.meta["nimg"], "phase": self.meta["phase"],
                    "train_seconds": round(self.meta["train_seconds"], 1), "data": counts, "batch": a.batch,
                    "lr": a.lr, "generator": generator_info,
                    "loss_weights": {k: getattr(a, k) for k in ("nu1", "w_mse", "w_ssim", "w_feat", "w_id", "w_reg")}}
        E = self.E.float().eval()
        E.save_pretrained(folder, card=model_card(E, training, metrics, a),
                          extra_config={"training": training, "metrics": metrics})
        write_json(os.path.join(a.out, "encoder_metrics.json"), dict(metrics, training=training))
        save_grid(grid, os.path.join(a.out, "encoder_grid.png"))
        print(f"wrote {folder}, encoder_metrics.json, encoder_grid.png under {a.out}", flush=True)


def save_grid(rows: torch.Tensor, path: str, cols: int = 8):
    """[rows * cols, 3, S, S] in [-1, 1] -> PNG (rows: input, reconstruction, ...)."""
    from PIL import Image

    n, _, s, _ = rows.shape
    r = n // cols
    img = ((rows[:r * cols].clamp(-1, 1) + 1) * 127.5).round().byte().cpu()
    img = img.reshape(r, cols, 3, s, s).permute(0, 3, 1, 4, 2).reshape(r * s, cols * s, 3).numpy()
    Image.fromarray(img).save(path)


def load_val_faces(shards: str, sources, n_max: int, max_padded: float = 0.05) -> np.ndarray | None:
    """Up to n_max val-split (split == 1) crops spread evenly over the sources, uint8 [N, 128, 128, 3]."""
    per = []
    for src in sources:
        try:
            d = load_source(src, RESOLUTION, root=shards)
        except FileNotFoundError:
            continue
        keep = d["split"] == 1
        if "padded" in d:
            keep &= d["padded"] < max_padded
        per.append(d["images"][keep])
    if not per:
        return None
    k = max(1, n_max // len(per))
    return np.concatenate([p[np.linspace(0, len(p) - 1, min(k, len(p))).astype(int)] for p in per if len(p)])


def generator_fingerprint(G: StyleGAN2Generator, folder: str) -> dict:
    h = hashlib.sha256()
    for k, v in sorted(G.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().to(torch.float16).cpu().numpy().tobytes())
    return {"folder": os.path.abspath(folder), "sha256_fp16_state": h.hexdigest()[:16], "config": G.config}


def model_card(E: MTVEncoder, training: dict, metrics: dict, a) -> str:
    n = sum(p.numel() for p in E.parameters())
    gen = training["generator"]
    data = ", ".join(f"{k} {v}" for k, v in training["data"].items()) or "synthetic G samples only"
    return f"""# FaceLab MTV encoder for the 128 px StyleGAN2 generator (fp16)

GAN-inversion encoder after seed 002 (Yu & Wang, MTV-TSA, Table I), `core/models/encoder.py`:
image [N, 3, 128, 128] in [-1, 1] -> w+ [N, {E.num_ws}, 512] (offset from the generator's mean w)
{'and the constant input z_c ' if E.predict_const else ''}for ONE generator: {gen['folder']}
(state fingerprint `{gen['sha256_fp16_state']}`, config in config.json under training.generator).
{n / 1e6:.2f} M parameters. It is meaningless with any other generator.

    from core.models.encoder import MTVEncoder
    from core.models.stylegan import StyleGAN2Generator
    G = StyleGAN2Generator.from_pretrained("checkpoints/stylegan")
    E = MTVEncoder.from_pretrained("checkpoints/mtv-encoder")
    out = E(img)                                   # out.ws [N, {E.num_ws}, 512], out.const
    rec = G.synthesis(out.ws, noise_mode="const", const=out.const)

## Training
- Phase 1 (self-supervised, seed Algorithm 1): G samples with style mixing in half the batch; then phase 2:
  half real aligned crops (train split, < 5 % padding: {data}), half G samples.
- Loss: nu1 {a.nu1} * (MSE + cos + softmax-KL) on w+; on the full image and two centre crops (1 : 0.75 :
  0.6875): {a.w_mse} MSE + {a.w_ssim} (1 - SSIM) + {a.w_feat} MobileFaceNet feature-map loss; {a.w_id} (1 - cos)
  of MobileFaceNet embeddings on the full image; on real images {a.w_reg} * hinge on ||w+ - w_avg||^2.
  MobileFaceNet (CASIA-WebFace, no licence) is a training loss only and is not shipped.
- {training['step']} steps of batch {training['batch']} ({training['nimg']} images), Adam lr {a.lr} betas (0, 0.99),
  bf16 autocast, {training['train_seconds']:.0f} s.

## Metrics (G(E(x)) vs x; PSNR/SSIM on [0, 1]; id_cos = MobileFaceNet image+mirror descriptor cosine)
{json_block(metrics)}

## Retrain / resume
    python -m train.encoder --generator checkpoints/stylegan --shards .cache/shards --ckpt .cache/ckpt/encoder \\
        --out out --minutes 20 --device cuda --arcface /root/weights/mobilefacenet_casia/model.safetensors
Resumes from `--ckpt` when `state.json` is there. Retrain whenever the generator changes.

## Terms
Non-commercial research only. Trained on images of its generator (itself trained on CelebA / CelebAMask-HQ)
and on crops of CelebA and CelebAMask-HQ (CelebA terms: non-commercial research purposes only).
Reconstructions may resemble real people.
"""


def json_block(d: dict) -> str:
    import json

    return "```\n" + json.dumps(d, indent=2, sort_keys=True) + "\n```"


# ---------------------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--generator", default="out/stylegan", help="StyleGAN2Generator.from_pretrained folder")
    p.add_argument("--shards", default=".cache/shards")
    p.add_argument("--ckpt", default=".cache/ckpt/encoder")
    p.add_argument("--out", default="out")
    p.add_argument("--minutes", type=float, default=20.0, help="wall-clock budget including data load and export")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--arcface", default="/root/weights/mobilefacenet_casia/model.safetensors",
                   help="MobileFaceNet model.safetensors (feature/identity losses and id metric)")
    p.add_argument("--smoke", action="store_true", help="tiny random G + tiny E, a few CPU steps")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--lr", type=float, default=8e-4, help="seed: 0.0015")
    p.add_argument("--warmup", type=int, default=500, help="linear lr warm-up steps (also after optim-less resume)")
    p.add_argument("--phase1-frac", type=float, default=0.65, help="fraction of planned time on G samples only")
    p.add_argument("--nu1", type=float, default=0.01, help="L_MTV weight (Algorithm 1)")
    p.add_argument("--w-mse", type=float, default=1.0)
    p.add_argument("--w-ssim", type=float, default=1.0)
    p.add_argument("--w-feat", type=float, default=0.5)
    p.add_argument("--w-id", type=float, default=0.5)
    p.add_argument("--w-reg", type=float, default=0.01, help="hinge on ||w+ - w_avg||^2 / sigma_W^2 (real images)")
    p.add_argument("--channel-base", type=int, default=16384)
    p.add_argument("--channel-max", type=int, default=256)
    p.add_argument("--head-hidden", type=int, default=512)
    p.add_argument("--spatial-res", type=int, default=4)
    p.add_argument("--predict-const", action="store_true", help="also predict z_c (seed's MTV); off by default")
    p.add_argument("--ckpt-minutes", type=float, default=4.0)
    p.add_argument("--ckpt-fp32", action="store_true")
    p.add_argument("--log-seconds", type=float, default=30.0)
    p.add_argument("--fp32", action="store_true", help="no bf16 autocast on CUDA")
    p.add_argument("--seed", type=int, default=-1)
    p.add_argument("--init", default="", help="exported encoder folder to start from when --ckpt holds no state")
    a = p.parse_args(argv)
    if a.smoke:
        a.batch, a.channel_base, a.channel_max, a.head_hidden = 4, 256, 32, 64
        a.warmup, a.log_seconds = 2, 0.0
    return a


def smoke_generator() -> tuple[StyleGAN2Generator, str]:
    """A tiny random G saved to (and reloaded from) a temp folder, as the real run loads its generator."""
    torch.manual_seed(0)
    G = StyleGAN2Generator(channel_base=256, channel_max=32, mapping_layers=2)
    folder = os.path.join(tempfile.gettempdir(), "facelab_smoke_generator")
    G.save_pretrained(folder)
    return StyleGAN2Generator.from_pretrained(folder), folder


SMOKE_STEPS = 4  # per smoke session; phase 2 from cumulative step 2


def main(argv=None):
    a = parse_args(argv)
    t0 = time.time()
    torch.manual_seed(a.seed if a.seed >= 0 else int(t0 * 1000) % 2 ** 31)
    if a.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if a.smoke:
        torch.set_num_threads(1)
        G, a.generator = smoke_generator()
    else:
        G = StyleGAN2Generator.from_pretrained(a.generator)
    sources = ("celebamask",) if a.smoke else SOURCES
    try:
        images_np, counts = load_faces(a.shards, sources)
    except FileNotFoundError as e:
        if not a.smoke:
            raise
        print(f"smoke: {e}; G samples only", flush=True)
        images_np, counts = None, {}
    val_np = load_val_faces(a.shards, sources, 16 if a.smoke else N_EVAL_REAL)
    tr = Trainer(a, G)
    dev = tr.dev
    images = None if images_np is None else torch.from_numpy(images_np).to(dev)  # uint8 [N, 128, 128, 3]
    val = None if val_np is None else torch.from_numpy(val_np).to(dev)
    del images_np, val_np
    n_e = sum(p.numel() for p in tr.E.parameters())
    print(f"{0 if images is None else len(images)} train faces, {0 if val is None else len(val)} val faces on {dev}; "
          f"E {n_e / 1e6:.2f} M params, G num_ws {G.num_ws}, bf16 {tr.amp}, identity net {tr.net is not None}; "
          f"start at step {tr.meta['step']} phase {tr.meta['phase']}", flush=True)

    total = a.minutes * 60
    reserve = min(90.0, 0.15 * total)  # final checkpoint + evaluation + export
    budget = total - reserve - (time.time() - t0)
    planned = tr.meta["train_seconds"] + budget
    start_step, start_nimg, start_sec = tr.meta["step"], tr.meta["nimg"], tr.meta["train_seconds"]
    t_train = t_log = t_ckpt = time.time()
    nimg_log, losses = tr.meta["nimg"], {}

    def session() -> dict:
        return {"steps": tr.meta["step"] - start_step, "images": tr.meta["nimg"] - start_nimg,
                "train_seconds": round(time.time() - t_train, 1), "losses": losses, "data": counts}

    while True:
        now = time.time()
        tr.meta["train_seconds_now"] = start_sec + (now - t_train)
        if (a.smoke and tr.meta["step"] - start_step >= SMOKE_STEPS) or (not a.smoke and now - t_train >= budget):
            break
        switch = (tr.meta["step"] >= SMOKE_STEPS // 2) if a.smoke else \
            (tr.meta["train_seconds_now"] >= a.phase1_frac * planned)
        if tr.meta["phase"] == 1 and switch and images is not None:
            tr.meta.update(phase=2, phase2_start=tr.meta["train_seconds_now"],
                           phase2_planned=planned - tr.meta["train_seconds_now"])
            print(f"phase 2 (real + synthetic) from step {tr.meta['step']}", flush=True)
        tr.step(images)
        now = time.time()
        if now - t_log >= a.log_seconds:
            losses = tr.pop_stats()
            ips = (tr.meta["nimg"] - nimg_log) / max(now - t_log, 1e-9)
            print(f"step {tr.meta['step']} phase {tr.meta['phase']} lr {tr.lr():.2e} "
                  + " ".join(f"{k} {v:.4f}" for k, v in losses.items())
                  + f" img/s {ips:.1f} it/s {ips / a.batch:.2f} elapsed {now - t0:.0f}s", flush=True)
            t_log, nimg_log = now, tr.meta["nimg"]
        if now - t_ckpt >= a.ckpt_minutes * 60:
            tr.save(session())
            t_ckpt = time.time()
            print(f"checkpoint at step {tr.meta['step']} -> {a.ckpt}", flush=True)
    if tr.stats:
        losses = tr.pop_stats()
    sess = session()
    tr.meta["train_seconds"] = start_sec + sess["train_seconds"]
    tr.meta.pop("train_seconds_now", None)
    tr.save(sess)
    metrics, grid = tr.evaluate(val, 16 if a.smoke else N_EVAL_SYN)
    metrics.update(step=tr.meta["step"], losses=losses)
    print("eval " + " ".join(f"{k}: {v}" for k, v in metrics.items()), flush=True)
    tr.export(metrics, grid, counts, generator_fingerprint(G, a.generator))
    print(f"done: step {tr.meta['step']}, wall {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
