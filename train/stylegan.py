"""Train the 128 px StyleGAN2-like generator (core/models/stylegan.py) on genuine aligned face crops.

    python -m train.stylegan --shards .cache/shards --ckpt .cache/ckpt/stylegan --out out --minutes 22 --device cuda
    python -m train.stylegan ... --export      # only rewrite --out from the checkpoint (CPU is fine)
    python -m torch.distributed.run --nproc_per_node 3 -m train.stylegan ...   # data-parallel over 3 GPUs

Data: `celebamask`, `celeba_id`, `utkface` shards at 128 px, train split (split == 0) and crops with
padded fraction < 0.05, all kept on the GPU as uint8, random horizontal flips. Loss: non-saturating
logistic (StyleGAN2), lazy R1 on reals every 16 D steps (Adam hyper-parameters corrected for the interval as
in StyleGAN2 appendix B), style mixing 0.9, EMA of G with half-life `--ema-kimg` and ramp-up, DiffAugment
(Zhao et al. 2020: colour, translation 1/8, cutout 1/2) on every image D sees. No path-length regularisation
(speed). bf16 autocast on CUDA; the R1 pass runs in fp32 (TF32) by default.

Several GPUs (torchrun): one process per GPU, each draws its own `--batch` reals and fakes, gradients are
averaged by hand after every backward (no DDP wrapper: D and G steps alternate and R1 runs every 16th step),
so the global batch is `--batch` x GPUs; rank 0 logs, checkpoints and exports.

Checkpoint (`--ckpt`, every `--ckpt-minutes` and at the end), no pickles:
    state.json                      kimg, step, configs, args, history, file lists
    state-s{step}-{k}.safetensors   G, G_ema, D (fp16 by default) sharded under 15 MiB
    optim-s{step}-{k}.safetensors   Adam second moments (bf16; beta1 = 0 so the first moment is not needed)
The optim files may be left behind when carrying the checkpoint between machines: resuming without them
re-creates Adam and ramps the learning rate up over `--warmup` steps.
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from core.models.stylegan import StyleGAN2Discriminator, StyleGAN2Generator, get_blur_impl, sample_z, set_blur_impl
from core.models.common import split_by_size
from train.shards import ATTR_NAMES, load_source

SOURCES = ("celebamask", "celeba_id", "utkface")
RESOLUTION = 128
MAX_FILE_BYTES = 15 * 1024 * 1024
GRID_SEEDS = list(range(32))


# ----------------------------------------------------------------------------------------------- data
def has_eyeglasses(d: dict) -> np.ndarray:
    """bool [N] per shard crop: CelebAMask-HQ eyeglasses-class (3) pixels > 0.4 % of the crop, else CelebA's
    `Eyeglasses` attribute (the attribute net's label rule, train/attributes.py); False where neither is known."""
    n = len(d["split"])
    if "labels" in d:
        return (d["labels"] == 3).reshape(n, -1).mean(1) > 0.004
    if "attrs" in d:
        return d["attrs"][:, ATTR_NAMES.index("Eyeglasses")] > 0
    return np.zeros(n, bool)


def load_faces(shards: str, sources=SOURCES, max_padded: float = 0.05,
               eyeglasses_repeat: int = 1) -> tuple[np.ndarray, dict]:
    """uint8 [N, 128, 128, 3] of genuine training crops from every available source, and counts per source.
    `eyeglasses_repeat` K > 1 shows each crop with eyeglasses K times as often (they are ~2 % of the crops, too few
    for the generator to draw them, or for an eyeglasses slider to exist)."""
    images, counts = [], {}
    for src in sources:
        try:
            d = load_source(src, RESOLUTION, root=shards)
        except FileNotFoundError as e:
            try:  # only the 256 px crops travelled: area-downsample them (same canonical frame)
                import cv2
                d = load_source(src, 2 * RESOLUTION, root=shards)
                d["images"] = np.stack([cv2.resize(im, (RESOLUTION, RESOLUTION), interpolation=cv2.INTER_AREA)
                                        for im in d["images"]])
            except FileNotFoundError:
                print(f"WARNING: {e}; training without {src}", flush=True)
                continue
        keep = d["split"] == 0
        if "padded" in d:
            keep &= d["padded"] < max_padded
        kept = d["images"][keep]
        images.append(kept)
        counts[src] = int(keep.sum())
        if eyeglasses_repeat > 1:
            glasses = has_eyeglasses(d)[keep]
            images += [kept[glasses]] * (eyeglasses_repeat - 1)
            counts[f"{src}_eyeglasses_x{eyeglasses_repeat}"] = int(glasses.sum())
        print(f"data {src}: {counts[src]} of {len(keep)} crops kept (train split, padded < {max_padded})", flush=True)
    if not images or sum(counts.values()) == 0:
        raise FileNotFoundError(f"no usable {RESOLUTION}px shards of {sources} under {shards}")
    return np.concatenate(images), counts


def real_batch(images: torch.Tensor, batch: int) -> torch.Tensor:
    """images uint8 [N, S, S, 3] on device -> float [B, 3, S, S] in [-1, 1], random h-flips, channels_last."""
    idx = torch.randint(len(images), (batch,), device=images.device)
    x = images[idx].permute(0, 3, 1, 2).float().div_(127.5).sub_(1.0)
    flip = torch.rand(batch, 1, 1, 1, device=x.device) < 0.5
    x = torch.where(flip, x.flip(3), x)
    return x.contiguous(memory_format=torch.channels_last)


# ------------------------------------------------------------------------------------ DiffAugment
def diff_augment(x: torch.Tensor, policy: str = "color,translation,cutout") -> torch.Tensor:
    """Differentiable augmentation (Zhao et al., NeurIPS 2020), the same for reals and fakes. x [N, C, H, W]."""
    if not policy:
        return x
    n = x.shape[0]
    for p in policy.split(","):
        if p == "color":
            x = x + (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) - 0.5)
            m = x.mean(1, keepdim=True)
            x = (x - m) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) * 2) + m
            m = x.mean([1, 2, 3], keepdim=True)
            x = (x - m) * (torch.rand(n, 1, 1, 1, device=x.device, dtype=x.dtype) + 0.5) + m
        elif p == "translation":
            x = _translate(x, 0.125)
        elif p == "cutout":
            x = _cutout(x, 0.5)
        else:
            raise ValueError(f"unknown DiffAugment op {p!r}")
    return x


def _translate(x: torch.Tensor, ratio: float) -> torch.Tensor:
    """Integer shift per sample, zero fill. Two gathers (rows, then columns) rather than one advanced index:
    the same result, but the backward is a plain scatter-add instead of a sorting index_put."""
    n, c, h, w = x.shape
    sh, sw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    ty = torch.randint(-sh, sh + 1, (n, 1, 1), device=x.device)
    tx = torch.randint(-sw, sw + 1, (n, 1, 1), device=x.device)
    gy = (torch.arange(h, device=x.device)[None, :, None] + ty + 1).clamp(0, h + 1)  # [N, H, 1]
    gx = (torch.arange(w, device=x.device)[None, None, :] + tx + 1).clamp(0, w + 1)  # [N, 1, W]
    xp = F.pad(x, [1, 1, 1, 1])  # zero border: [N, C, H+2, W+2]
    xp = xp.gather(2, gy[:, None].expand(n, c, h, w + 2))  # rows: [N, C, H, W+2]
    xp = xp.gather(3, gx[:, None].expand(n, c, h, w))  # columns: [N, C, H, W]
    return xp.contiguous(memory_format=torch.channels_last)


def _cutout(x: torch.Tensor, ratio: float) -> torch.Tensor:
    n, _, h, w = x.shape
    ch, cw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - ch % 2), (n, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - cw % 2), (n, 1, 1), device=x.device)
    yy = torch.arange(h, device=x.device)[None, :, None] - cy + ch // 2  # in [0, ch) inside the hole
    xx = torch.arange(w, device=x.device)[None, None, :] - cx + cw // 2
    hole = (yy >= 0) & (yy < ch) & (xx >= 0) & (xx < cw)  # [N, H, W]
    return x * (~hole)[:, None].to(x.dtype)


# ----------------------------------------------------------------------------------------- state
class Trainer:
    """Setup, one G/D iteration, EMA, checkpoint and export; `run` is the wall-clock loop."""

    def __init__(self, args, rank: int = 0, world: int = 1):
        self.args = args
        self.rank, self.world = rank, world
        self.dev = torch.device(args.device)
        self.amp = self.dev.type == "cuda" and not args.fp32
        gcfg = dict(channel_base=args.channel_base, channel_max=args.channel_max, mapping_layers=args.mapping_layers)
        dcfg = dict(channel_base=args.channel_base, channel_max=args.channel_max)
        self.meta = {"kimg": 0.0, "nimg": 0, "step": 0, "train_seconds": 0.0, "sessions": [], "G_config": None}
        saved = read_json(os.path.join(args.ckpt, "state.json"))
        if saved:  # the checkpoint's architecture wins over the command line
            self.meta.update(saved)
            gcfg = {k: v for k, v in saved["G_config"].items()}
            dcfg = {k: v for k, v in saved["D_config"].items()}
        self.G = StyleGAN2Generator(**gcfg).to(self.dev)
        self.D = StyleGAN2Discriminator(**dcfg).to(self.dev)
        self.G_ema = StyleGAN2Generator(**gcfg).to(self.dev).eval().requires_grad_(False)
        self.G_ema.load_state_dict(self.G.state_dict())
        for m in (self.G, self.D, self.G_ema):
            m.to(memory_format=torch.channels_last)
        # lazy R1: D's Adam runs every step but its lr/betas are corrected for the reg interval (StyleGAN2 app. B)
        c = args.r1_interval / (args.r1_interval + 1)
        fused = {"fused": True} if self.dev.type == "cuda" else {}  # one multi-tensor kernel, no per-param .item()
        self.opt_G = torch.optim.Adam(self.G.parameters(), lr=args.lr, betas=(0.0, 0.99), eps=1e-8, **fused)
        self.opt_D = torch.optim.Adam(self.D.parameters(), lr=args.lr * c, betas=(0.0, 0.99 ** c), eps=1e-8, **fused)
        self.base_lr = [args.lr, args.lr * c]
        self.warmup_from = None  # step at which a fresh optimiser started after a resume
        if saved:
            self._load(saved)
        if world > 1:  # every rank starts from rank 0's weights (fresh inits differ by seed)
            for m in (self.G, self.D, self.G_ema):
                for t in list(m.parameters()) + list(m.buffers()):
                    dist.broadcast(t.data, 0)
        # EMA copies only the buffers that change in training (w_avg); noise_const / blur_f are constants
        self.ema_buffers = ([self.G_ema.mapping_network.w_avg], [self.G.mapping_network.w_avg])
        self.set_compile(args.compile)
        self.stats = torch.zeros(6, device=self.dev)  # sums of loss_G, loss_D, r1, D(real), D(fake), count
        self.r1_count = 0

    def set_compile(self, on: bool):
        self.compiled = on
        self.G_syn = torch.compile(self.G.synthesis_network, dynamic=False) if on else self.G.synthesis_network
        self.D_main = torch.compile(self.D, dynamic=False) if on else self.D  # R1's double backward stays eager

    def pick_blur(self, images: torch.Tensor) -> dict:
        """Time G+D forward/backward at the training batch with each blur implementation; keep the faster.

        Both compute the same filter (checkpoints are unaffected); which one cuDNN runs faster depends on the
        GPU, dtype and memory format, so measure it here (a few seconds, once per run)."""
        B, times = self.args.batch, {}
        with torch.no_grad():
            ws = self.G.mapping(torch.randn(B, self.G.z_dim, device=self.dev))
        for impl in ("conv", "pool"):
            set_blur_impl(impl)
            for i in range(6):
                if i == 3:
                    torch.cuda.synchronize()
                    t = time.perf_counter()
                with self.autocast():
                    img = self.G.synthesis_network(ws, noise_mode="random")
                    loss = self.D(diff_augment(img.float(), self.args.augment)).float().sum()
                    loss = loss + self.D(diff_augment(real_batch(images, B), self.args.augment)).float().sum()
                loss.backward()
            torch.cuda.synchronize()
            times[impl] = (time.perf_counter() - t) / 3
        self.G.zero_grad(set_to_none=True)
        self.D.zero_grad(set_to_none=True)
        set_blur_impl(min(times, key=times.get))
        return times
    # ---------------------------------------------------------------------------------- step
    def autocast(self, enabled: bool = True):
        return torch.autocast(device_type=self.dev.type, dtype=torch.bfloat16, enabled=self.amp and enabled)

    def fake_ws(self, n: int, update_w_avg: bool) -> torch.Tensor:
        z = torch.randn(2 * n, self.G.z_dim, device=self.dev)
        with self.autocast(enabled=False):  # the mapping MLP (lr_mul 0.01) is tiny: keep it in fp32
            ws = self.G.mapping(z, update_w_avg=update_w_avg)  # [2N, num_ws, w_dim]
        return self.G.mix_styles(ws[:n], ws[n:], self.args.style_mixing)

    def step(self, images: torch.Tensor):
        a, B = self.args, self.args.batch
        self._set_lr()
        # --- D: logistic loss on fakes and reals, lazy R1 on reals
        self.D.requires_grad_(True)
        with torch.no_grad(), self.autocast():
            fake = self.G_syn(self.fake_ws(B, False), noise_mode="random")
        real = real_batch(images, B)
        do_r1 = a.r1_gamma > 0 and self.meta["step"] % a.r1_interval == 0
        with self.autocast():
            logit_f = self.D_main(diff_augment(fake.float(), a.augment)).float()
        if do_r1:
            real.requires_grad_(True)
            with self.autocast(enabled=not a.r1_fp32):
                logit_r = self.D(diff_augment(real, a.augment)).float()
            (grad,) = torch.autograd.grad(logit_r.sum(), real, create_graph=True)
            r1 = grad.float().square().sum([1, 2, 3]).mean()
        else:
            with self.autocast():
                logit_r = self.D_main(diff_augment(real, a.augment)).float()
            r1 = torch.zeros((), device=self.dev)
        loss_D = F.softplus(logit_f).mean() + F.softplus(-logit_r).mean()
        self.opt_D.zero_grad(set_to_none=True)
        (loss_D + r1 * (a.r1_gamma / 2 * a.r1_interval)).backward()
        self._average_grads(self.D)
        self.opt_D.step()
        # --- G: non-saturating logistic loss, style mixing, w_avg tracking
        self.D.requires_grad_(False)
        with self.autocast():
            img = self.G_syn(self.fake_ws(B, True), noise_mode="random")
            logit_g = self.D_main(diff_augment(img.float(), a.augment)).float()
        loss_G = F.softplus(-logit_g).mean()
        self.opt_G.zero_grad(set_to_none=True)
        loss_G.backward()
        self._average_grads(self.G)
        self.opt_G.step()
        self.meta["step"] += 1
        self.meta["nimg"] += B * self.world
        self.meta["kimg"] = self.meta["nimg"] / 1000
        self._update_ema()
        with torch.no_grad():
            self.stats += torch.stack([loss_G.detach(), loss_D.detach(), r1.detach() * do_r1,
                                       logit_r.detach().mean(), logit_f.detach().mean(),
                                       torch.ones((), device=self.dev)])
        self.r1_count += int(do_r1)

    def _average_grads(self, model: torch.nn.Module):
        """Mean of the gradients over the ranks, as one flat all-reduce (every rank runs the same graph, so the
        set of parameters with a gradient is the same everywhere)."""
        if self.world == 1:
            return
        from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

        grads = [p.grad for p in model.parameters() if p.grad is not None]
        flat = _flatten_dense_tensors([g.contiguous() for g in grads])
        dist.all_reduce(flat)
        flat.div_(self.world)
        for g, avg in zip(grads, _unflatten_dense_tensors(flat, grads)):
            g.copy_(avg)

    def should_stop(self, local: bool) -> bool:
        """True on every rank once any rank's clock says stop (one tiny all-reduce; call it at the same steps)."""
        if self.world == 1:
            return local
        flag = torch.tensor([float(local)], device=self.dev)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def _set_lr(self):
        if self.warmup_from is None:
            return
        frac = min(1.0, (self.meta["step"] - self.warmup_from + 1) / max(1, self.args.warmup))
        for opt, lr in zip((self.opt_G, self.opt_D), self.base_lr):
            for g in opt.param_groups:
                g["lr"] = lr * frac
        if frac >= 1.0:
            self.warmup_from = None

    @torch.no_grad()
    def _update_ema(self):
        a = self.args
        ema_nimg = a.ema_kimg * 1000
        if a.ema_rampup > 0:
            ema_nimg = min(ema_nimg, self.meta["nimg"] * a.ema_rampup)
        beta = 0.5 ** (a.batch * self.world / max(ema_nimg, 1e-8))
        torch._foreach_lerp_(list(self.G_ema.parameters()), list(self.G.parameters()), 1.0 - beta)
        torch._foreach_copy_(*self.ema_buffers)

    def pop_stats(self) -> dict:
        s = self.stats.tolist()
        n = max(s[5], 1.0)
        self.stats.zero_()
        out = {"loss_G": s[0] / n, "loss_D": s[1] / n, "r1": s[2] / max(self.r1_count, 1),
               "D_real": s[3] / n, "D_fake": s[4] / n}
        self.r1_count = 0
        return out

    # ---------------------------------------------------------------------------- checkpoint
    def save(self, session: dict):
        a = self.args
        dt = torch.float32 if a.ckpt_fp32 else torch.float16
        tensors = {}
        for name, m in (("G", self.G), ("G_ema", self.G_ema), ("D", self.D)):
            for k, v in m.state_dict().items():
                tensors[f"{name}/{k}"] = (v.to(dt) if v.is_floating_point() else v).detach().cpu().contiguous()
        optim = {**adam_sq_tensors(self.opt_G, "opt_G"), **adam_sq_tensors(self.opt_D, "opt_D")}
        meta = dict(self.meta, G_config=self.G.config, D_config=self.D.config, args=vars(a),
                    sessions=self.meta["sessions"] + [session])
        write_state(a.ckpt, self.meta["step"], tensors, optim, meta)

    def _load(self, saved: dict):
        ck = self.args.ckpt
        tensors, optim = read_state(ck, saved)
        for name, m in (("G", self.G), ("G_ema", self.G_ema), ("D", self.D)):
            m.load_state_dict({k[len(name) + 1:]: v for k, v in tensors.items() if k.startswith(name + "/")})
        if optim is not None:
            load_adam_sq(self.opt_G, optim, "opt_G")
            load_adam_sq(self.opt_D, optim, "opt_D")
            print(f"resumed optimiser state from {saved['optim_files']}", flush=True)
        else:
            self.warmup_from = saved["step"]
            print(f"no optimiser state in {ck}: fresh Adam, lr warm-up over {self.args.warmup} steps", flush=True)
        print(f"resumed from {ck}: step {saved['step']}, {saved['kimg']:.3f} kimg", flush=True)

    # -------------------------------------------------------------------------------- export
    @torch.no_grad()
    def export(self, data_counts: dict, metrics: dict):
        a = self.args
        folder = os.path.join(a.out, "stylegan")
        os.makedirs(folder, exist_ok=True)
        G = self.G_ema.float().eval()
        z = sample_z(GRID_SEEDS, G.z_dim).to(self.dev)
        rows = []
        for psi in (1.0, 0.7):
            for chunk in z.split(8):
                rows.append(G.synthesis(G.mapping(chunk, truncation_psi=psi), noise_mode="const"))
        grid = torch.cat(rows)  # [64, 3, R, R]: rows 0-3 psi 1.0, rows 4-7 psi 0.7, same seeds
        grid = (grid.clamp(-1, 1) + 1) * 127.5
        r = grid.shape[-1]
        grid = grid.round().byte().reshape(8, 8, 3, r, r).permute(0, 3, 1, 4, 2).reshape(8 * r, 8 * r, 3).cpu().numpy()
        from PIL import Image

        Image.fromarray(grid).save(os.path.join(a.out, "stylegan_grid.png"))
        training = {"kimg": round(self.meta["kimg"], 2), "step": self.meta["step"], "data": data_counts,
                    "augment": a.augment, "r1_gamma": a.r1_gamma, "ema_kimg": a.ema_kimg, "batch": a.batch,
                    "gpus": self.world}
        G.save_pretrained(folder, card=model_card(G, training, metrics, a), extra_config={"training": training})
        write_json(os.path.join(folder, "metrics.json"), metrics)
        print(f"wrote {folder} and {os.path.join(a.out, 'stylegan_grid.png')}", flush=True)


def adam_sq_tensors(opt: torch.optim.Optimizer, prefix: str) -> dict[str, torch.Tensor]:
    """Adam state with beta1 = 0 (no first moment needed): step and bf16 second moments, keyed prefix/i/..."""
    out = {}
    for i, st in opt.state_dict()["state"].items():
        out[f"{prefix}/{i}/step"] = torch.as_tensor(st["step"], dtype=torch.float32).reshape(1).cpu()
        out[f"{prefix}/{i}/exp_avg_sq"] = st["exp_avg_sq"].to(torch.bfloat16).cpu().contiguous()
    return out


def load_adam_sq(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], prefix: str) -> None:
    """Inverse of `adam_sq_tensors` (the first moment restarts at zero, as beta1 = 0 makes it unused)."""
    sd = opt.state_dict()
    params = [p for g in opt.param_groups for p in g["params"]]
    sd["state"] = {i: {"step": tensors[f"{prefix}/{i}/step"].reshape(()).float(), "exp_avg": torch.zeros_like(p),
                       # same strides as the parameter (channels_last weights): fused Adam insists on it
                       "exp_avg_sq": torch.empty_like(p).copy_(tensors[f"{prefix}/{i}/exp_avg_sq"].reshape(p.shape))}
                   for i, p in enumerate(params) if f"{prefix}/{i}/step" in tensors}
    opt.load_state_dict(sd)


def write_state(ck: str, step: int, tensors: dict, optim: dict, meta: dict) -> None:
    """Checkpoint folder: state-s{step}-k / optim-s{step}-k safetensors shards, then state.json naming them (written
    last, atomically: it always names a complete set), then the previous step's shards are removed."""
    os.makedirs(ck, exist_ok=True)
    files = _save_sharded(tensors, ck, f"state-s{step:08d}")
    ofiles = _save_sharded(optim, ck, f"optim-s{step:08d}") if optim else []
    write_json(os.path.join(ck, "state.json"), dict(meta, files=files, optim_files=ofiles))
    for f in glob.glob(os.path.join(ck, "state-s*.safetensors")) + glob.glob(os.path.join(ck, "optim-s*.safetensors")):
        if os.path.basename(f) not in files + ofiles:
            os.remove(f)


def read_state(ck: str, saved: dict) -> tuple[dict, dict | None]:
    """(model tensors, optimiser tensors or None when the optim files were left behind) of a state.json."""
    tensors = {}
    for f in saved["files"]:
        tensors.update(load_file(os.path.join(ck, f)))
    ofiles = saved.get("optim_files", [])
    if not (ofiles and all(os.path.exists(os.path.join(ck, f)) for f in ofiles)):
        return tensors, None
    optim = {}
    for f in ofiles:
        optim.update(load_file(os.path.join(ck, f)))
    return tensors, optim


def _save_sharded(tensors: dict, folder: str, prefix: str) -> list[str]:
    shards = split_by_size(tensors, MAX_FILE_BYTES)
    names = []
    for i, shard in enumerate(shards):
        name = f"{prefix}-{i}.safetensors"
        save_file(shard, os.path.join(folder, name + ".tmp"))
        os.replace(os.path.join(folder, name + ".tmp"), os.path.join(folder, name))
        names.append(name)
    return names


def read_json(path: str) -> dict | None:
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def write_json(path: str, obj: dict):
    with open(path + ".tmp", "w") as f:
        json.dump(obj, f, indent=2, sort_keys=True)
    os.replace(path + ".tmp", path)


def model_card(G: StyleGAN2Generator, training: dict, metrics: dict, a) -> str:
    n_params = sum(p.numel() for p in G.parameters())
    data = ", ".join(f"{k} {v}" for k, v in training["data"].items() if "_eyeglasses_x" not in k) or "see config.json"
    repeat = {k: v for k, v in training["data"].items() if "_eyeglasses_x" in k}
    if repeat:  # load_faces(eyeglasses_repeat=K) in this session
        k = next(iter(repeat)).rsplit("_x", 1)[1]
        data += (f"; in this session the {sum(repeat.values())} crops with eyeglasses were shown {k}x as often "
                 "(`--eyeglasses-repeat`)")
    return f"""# FaceLab StyleGAN2-like face generator, 128 px (EMA weights, fp16)

StyleGAN2 (Karras et al., CVPR 2020) re-implemented in plain PyTorch (`core/models/stylegan.py`):
8-layer mapping z(512) -> w(512), learned 4x4 constant, modulated/demodulated convolutions, per-channel noise,
skip toRGB, {G.num_ws} style layers (w+ = [N, {G.num_ws}, 512]), {n_params / 1e6:.2f} M parameters.

    from core.models.stylegan import StyleGAN2Generator, sample_z
    G = StyleGAN2Generator.from_pretrained("checkpoints/stylegan")
    img = G(sample_z([0, 1, 2]), truncation_psi=0.7)   # [3, 3, 128, 128] in [-1, 1]

## Training
- Data: aligned 128 px face crops, train split, crops with < 5 % padding: {data}.
- Images shown: {training['kimg']} kimg ({training['step']} steps; this session: batch {training['batch']} per GPU
  x {training.get('gpus', 1)} GPU(s); earlier sessions in the checkpoint's state.json).
- Non-saturating logistic loss, lazy R1 (gamma {training['r1_gamma']}, every {a.r1_interval} D steps), style mixing
  {a.style_mixing}, DiffAugment ({training['augment']}), EMA half-life {training['ema_kimg']} kimg, Adam lr {a.lr}
  betas (0, 0.99), bf16 autocast.

## Metrics
Last-window training losses: {json.dumps({k: round(v, 4) for k, v in metrics.get('losses', {}).items()})}.
No FID: there are no Inception weights on these machines. Judge samples from the grid
(`stylegan_grid.png`: top half truncation 1.0, bottom half 0.7, seeds 0-31).

## Retrain / resume
    python -m train.stylegan --shards .cache/shards --ckpt .cache/ckpt/stylegan --out out --minutes 22 --device cuda
    python -m torch.distributed.run --standalone --nproc_per_node 3 -m train.stylegan ...   # 3 GPUs
The command resumes from `--ckpt` when `state.json` is there (kimg continues).

## Terms
Non-commercial research only. Trained on the sources listed under Data (CelebA / CelebAMask-HQ: non-commercial
research use, CelebA terms; UTKFace, when its crops pass the padding filter: non-commercial research use).
Generated faces may resemble real people in those datasets.
"""


# ---------------------------------------------------------------------------------------- main
def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--shards", default=".cache/shards")
    p.add_argument("--ckpt", default=".cache/ckpt/stylegan")
    p.add_argument("--out", default="out")
    p.add_argument("--minutes", type=float, default=22.0, help="wall-clock budget including data load and export")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--smoke", action="store_true", help="tiny model, batch 4, frequent logs/ckpts (CPU check)")
    p.add_argument("--export", action="store_true", help="only write --out from --ckpt, no training")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--r1-gamma", type=float, default=0.2)
    p.add_argument("--r1-interval", type=int, default=16)
    p.add_argument("--r1-fp32", type=int, default=1, help="1: run the R1 pass without autocast (TF32)")
    p.add_argument("--style-mixing", type=float, default=0.9)
    p.add_argument("--ema-kimg", type=float, default=10.0)
    p.add_argument("--ema-rampup", type=float, default=0.05)
    p.add_argument("--augment", default="color,translation,cutout", help="DiffAugment policy; '' = none")
    p.add_argument("--warmup", type=int, default=300, help="lr warm-up steps when resuming without optim state")
    p.add_argument("--channel-base", type=int, default=8192)
    p.add_argument("--channel-max", type=int, default=256)
    p.add_argument("--mapping-layers", type=int, default=8)
    p.add_argument("--ckpt-minutes", type=float, default=4.0)
    p.add_argument("--eyeglasses-repeat", type=int, default=1,
                   help="show crops with eyeglasses K times as often (rare in the data; the slider needs them)")
    p.add_argument("--ckpt-fp32", action="store_true", help="store G/G_ema/D in fp32 (4x the fp16 size)")
    p.add_argument("--log-seconds", type=float, default=30.0)
    p.add_argument("--fp32", action="store_true", help="no bf16 autocast on CUDA")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile G synthesis and D (main passes); falls back to eager if the first step fails")
    p.add_argument("--blur", default="auto", choices=("auto", "conv", "pool"),
                   help="[1,3,3,1] blur as depthwise conv or 2x2 avg-pools (same result); auto: time both on CUDA")
    p.add_argument("--profile", type=int, default=0,
                   help="N > 0: run N warm-up steps, profile N steps (torch.profiler), print the top ops and exit")
    p.add_argument("--seed", type=int, default=-1, help="-1: seed from the clock (resumed runs differ anyway)")
    a = p.parse_args(argv)
    if a.smoke:
        a.batch = min(a.batch, 4)
        a.channel_base, a.channel_max, a.mapping_layers = 256, 32, 2
        a.r1_interval, a.ckpt_minutes, a.log_seconds, a.ema_kimg = 2, 0.1, 2.0, 0.1
    return a


def init_distributed(a) -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; 1 process: (0, 1). Sets a.device to this rank's GPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return 0, 1
    rank, local = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", os.environ["RANK"]))
    if a.device.startswith("cuda"):
        torch.cuda.set_device(local)
        a.device = f"cuda:{local}"
    dist.init_process_group("nccl" if a.device.startswith("cuda") else "gloo")
    return rank, world


def main(argv=None):
    a = parse_args(argv)
    t0 = time.time()
    rank, world = init_distributed(a)
    if world > 1 and (a.export or a.profile):
        raise SystemExit("--export / --profile run in one process (no torchrun)")
    seed = a.seed if a.seed >= 0 else int(t0 * 1000) % 2 ** 31
    torch.manual_seed(seed + 1000 * rank)  # own reals, z and noise per rank; weights come from rank 0
    if a.device.startswith("cuda"):
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    if a.export and not os.path.exists(os.path.join(a.ckpt, "state.json")):
        raise SystemExit(f"--export: no checkpoint under {a.ckpt}")
    tr = Trainer(a, rank, world)
    if a.export:
        saved = read_json(os.path.join(a.ckpt, "state.json"))
        last = (saved.get("sessions") or [{}])[-1]
        tr.export(last.get("data", {}), {"kimg": round(tr.meta["kimg"], 2), "losses": last.get("losses", {})})
        return
    images_np, counts = load_faces(a.shards, eyeglasses_repeat=a.eyeglasses_repeat)
    images = torch.from_numpy(images_np).to(tr.dev)  # uint8 [N, 128, 128, 3] on the device
    del images_np
    if a.blur == "auto" and tr.dev.type == "cuda":
        times = tr.pick_blur(images)
        print("blur timing (G+D fwd/bwd, s): " + ", ".join(f"{k} {v:.4f}" for k, v in times.items())
              + f" -> {get_blur_impl()}", flush=True)
    elif a.blur != "auto":
        set_blur_impl(a.blur)
    if a.profile > 0:
        return profile_steps(tr, images, a.profile)
    n_g = sum(p.numel() for p in tr.G.parameters())
    n_d = sum(p.numel() for p in tr.D.parameters())
    log = print if rank == 0 else (lambda *args, **kw: None)
    log(f"{len(images)} training faces on {tr.dev} x {world}; G {n_g / 1e6:.2f} M params, D {n_d / 1e6:.2f} M, "
        f"num_ws {tr.G.num_ws}, bf16 {tr.amp}, compile {a.compile}, global batch {a.batch * world}; "
        f"start at {tr.meta['kimg']:.3f} kimg", flush=True)
    total = a.minutes * 60
    reserve = min(60.0, 0.15 * total)  # time kept for the final checkpoint and export
    start_step, start_nimg = tr.meta["step"], tr.meta["nimg"]
    t_train = time.time()
    t_log = t_ckpt = t_train
    nimg_log = tr.meta["nimg"]
    losses = {}
    while True:
        if (tr.meta["step"] - start_step) % 10 == 0 and tr.should_stop(time.time() - t0 >= total - reserve):
            break
        if tr.compiled and tr.meta["step"] == start_step:
            try:  # compile problems surface at the first call: fall back to eager rather than lose the session
                tr.step(images)
            except Exception as e:  # noqa: BLE001
                print(f"WARNING: torch.compile failed ({type(e).__name__}: {str(e)[:300]}); continuing eager",
                      flush=True)
                tr.set_compile(False)
                tr.args.compile = False
                tr.step(images)
        else:
            tr.step(images)
        if rank != 0:
            continue
        now = time.time()
        if now - t_log >= a.log_seconds:
            losses = tr.pop_stats()
            ips = (tr.meta["nimg"] - nimg_log) / (now - t_log)
            log(f"step {tr.meta['step']} kimg {tr.meta['kimg']:.3f} " + " ".join(f"{k} {v:.4f}" for k, v in losses.items())
                + f" img/s {ips:.1f} it/s {ips / (a.batch * world):.2f} elapsed {now - t0:.0f}s", flush=True)
            t_log, nimg_log = now, tr.meta["nimg"]
        if now - t_ckpt >= a.ckpt_minutes * 60:
            tr.save(session_info(tr, counts, losses, t_train, start_step, start_nimg))
            t_ckpt = time.time()
            log(f"checkpoint at {tr.meta['kimg']:.3f} kimg -> {a.ckpt}", flush=True)
    if rank != 0:
        dist.destroy_process_group()
        return
    if tr.stats[5] > 0:
        losses = tr.pop_stats()
    session = session_info(tr, counts, losses, t_train, start_step, start_nimg)
    tr.meta["train_seconds"] += session["train_seconds"]
    tr.save(session)
    metrics = {"kimg": round(tr.meta["kimg"], 2), "step": tr.meta["step"], "losses": losses,
               "session": session, "total_train_seconds": round(tr.meta["train_seconds"], 1),
               "quality": "no FID (no Inception weights here); see stylegan_grid.png"}
    tr.export(counts, metrics)
    metrics["wall_seconds"] = round(time.time() - t0, 1)
    write_json(os.path.join(a.out, "stylegan", "metrics.json"), metrics)
    print(f"done: {tr.meta['kimg']:.3f} kimg, wall {time.time() - t0:.0f}s", flush=True)
    if world > 1:
        dist.destroy_process_group()


def profile_steps(tr: Trainer, images: torch.Tensor, n: int):
    """--profile: time and profile `n` steps (after `n` warm-up steps); prints op tables, writes nothing."""
    from torch.profiler import ProfilerActivity, profile

    sync = torch.cuda.synchronize if tr.dev.type == "cuda" else (lambda: None)
    for _ in range(n):
        tr.step(images)
    sync()
    t = time.time()
    for _ in range(n):
        tr.step(images)
    sync()
    dt = (time.time() - t) / n
    print(f"{dt * 1000:.1f} ms/step, {tr.args.batch / dt:.1f} img/s (batch {tr.args.batch}, blur {get_blur_impl()}, "
          f"R1 every {tr.args.r1_interval})", flush=True)
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if tr.dev.type == "cuda" else [])
    with profile(activities=acts) as prof:
        for _ in range(n):
            tr.step(images)
        sync()
    ka = prof.key_averages()
    calls = sum(e.count for e in ka if e.key.startswith("aten::")) / n
    syncs = sum(e.count for e in ka if e.key in ("aten::_local_scalar_dense", "cudaStreamSynchronize",
                                                   "cudaDeviceSynchronize")) / n
    print(f"per step: {calls:.0f} aten op calls, {syncs:.1f} host syncs/scalar reads", flush=True)
    key = "self_device_time_total" if tr.dev.type == "cuda" else "self_cpu_time_total"
    print(ka.table(sort_by=key, row_limit=30), flush=True)


def session_info(tr: Trainer, counts: dict, losses: dict, t_train: float, start_step: int, start_nimg: int) -> dict:
    secs = time.time() - t_train
    return {"started_kimg": start_nimg / 1000, "kimg": tr.meta["kimg"], "steps": tr.meta["step"] - start_step,
            "train_seconds": round(secs, 1), "img_per_s": round((tr.meta["nimg"] - start_nimg) / max(secs, 1e-6), 1),
            "device": str(tr.dev), "gpus": tr.world, "data": counts, "losses": losses, "compile": tr.args.compile}


if __name__ == "__main__":
    main()
