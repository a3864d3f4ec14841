"""Train the masked VAE (seed 000) or the multi-stage VAE (seed 004) on CelebAMask-HQ shards.

    python -m train.vae --model masked-vae --variant h9 --shards DIR --ckpt DIR --out DIR --minutes M
    python -m train.vae --model multistage-vae --shards DIR --ckpt DIR --out DIR --minutes M
    (add --smoke for a few CPU steps on whatever tiny data exists)

Data: source `celebamask` at 256 px, loaded into device memory once, resized there (antialiased for
images, nearest for labels) to 144 (masked) / 128 (multi-stage); face mask = core.labels.VAE_FACE.
Train split 0, val split 1; augmentation is a horizontal flip only (the binary mask is flip-symmetric).

Masked VAE losses (Toledo & Antonelo §3.3 and the authors' code): the decoder face is composited on the
input background with the ground-truth mask, then SSIM (window 9) x1, l1 x4, l2 x100 as the hypothesis
asks, mask BCE + Dice, KL (mean over latent dims, as their code) x1e-3; Adam with each gradient tensor
clipped to norm 1e-3 (Keras `clipnorm`). Hypotheses H1..H10 of Table 1 are all available; the issue's
names: h9 (mask + SSIM + l2), mask-l1 (= H3), nomask-ssim-l2 (= H10).
Multi-stage VAE (Cai et al. Eq. 12-15): l2 on the coarse image + KL + l1 on the refined image, per image
summed and divided by the pixel count (= a Gaussian ELBO with unit KL weight), Adam 2e-4.

Deliberate differences: lr 2e-4 for both (paper 1e-4 for seed 000) because a run lasts minutes; an EMA
of the weights is what gets evaluated, and the EMA with the best val objective is what gets exported
(the authors kept the best val_loss checkpoint as well); only 4.5k faces exist, so runs are many epochs.

Outputs: --out/<name>/ (save_pretrained folder + metrics.json), --out/<name>_grid.png; resumable
state in --ckpt/<name>.safetensors + --ckpt/<name>.json. <name> is `masked-vae` for H9 (the shipped
variant), `masked-vae-<variant>` for the others, `multistage-vae`.
"""
from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from core.models.masked_vae import MaskedVAE
from core.models.multistage_vae import MultiStageVAE
from core.metrics import ssim
from train.eval_vae import MODEL_SIZE, dice_loss, evaluate, format_table, load_faces, to_unit


@dataclass(frozen=True)
class Hypothesis:
    """One row of seed 000's Table 1: face mask on/off and loss weights (authors' code weights)."""
    mask: bool
    ssim: float = 0.0
    l1: float = 0.0
    l2: float = 0.0


HYPOTHESES = {
    "h1": Hypothesis(True, ssim=1, l1=4), "h2": Hypothesis(False, ssim=1, l1=4),
    "h3": Hypothesis(True, l1=4), "h4": Hypothesis(False, l1=4),
    "h5": Hypothesis(True, ssim=1), "h6": Hypothesis(False, ssim=1),
    "h7": Hypothesis(True, l2=100), "h8": Hypothesis(False, l2=100),
    "h9": Hypothesis(True, ssim=1, l2=100), "h10": Hypothesis(False, ssim=1, l2=100),
}
ALIASES = {"mask-l1": "h3", "nomask-ssim-l2": "h10", "mask-ssim-l2": "h9"}


def run_name(model: str, variant: str) -> str:
    """Output / checkpoint name: H9 is the shipped masked VAE, other hypotheses keep the name given."""
    if model == "multistage-vae":
        return "multistage-vae"
    return "masked-vae" if ALIASES.get(variant, variant) == "h9" else f"masked-vae-{variant}"


# ------------------------------------------------------------------------------------------ losses
def kl_terms(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z|x) || N(0, I)) per latent dim: [N, D]."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())


def masked_vae_loss(model: MaskedVAE, x: torch.Tensor, m: torch.Tensor, hyp: Hypothesis, kl_weight: float,
                    sample: bool = True) -> dict[str, torch.Tensor]:
    """x [N, 3, 144, 144] in [0, 1], m [N, 1, 144, 144] in {0, 1}; returns named terms and 'loss'."""
    mu, logvar = model.encode(x)
    mu, logvar = mu.float(), logvar.float()
    z = model.reparameterize(mu, logvar) if sample else mu
    raw, logits = model.decode(z)
    raw = raw.float()
    out = model.compose(raw, x, m) if hyp.mask else raw  # GT mask puts the input background back
    terms: dict[str, torch.Tensor] = {}
    if hyp.ssim:
        terms["ssim"] = hyp.ssim * (1 - ssim(out, x, win=9)).mean()
    if hyp.l1:
        terms["l1"] = hyp.l1 * (out - x).abs().mean()
    if hyp.l2:
        terms["l2"] = hyp.l2 * (out - x).pow(2).mean()
    if logits is not None:
        logits = logits.float()
        terms["mask"] = F.binary_cross_entropy_with_logits(logits, m) + dice_loss(torch.sigmoid(logits), m)
    terms["kl"] = kl_weight * kl_terms(mu, logvar).mean()
    terms["loss"] = sum(terms.values())
    return terms


def multistage_vae_loss(model: MultiStageVAE, x: torch.Tensor, kl_weight: float, l1_weight: float,
                        sample: bool = True) -> dict[str, torch.Tensor]:
    """Eq. 15: l2(x, coarse) + KL + l1(x, refined), per image summed, divided by the pixel count."""
    mu, logvar = model.encode(x)
    mu, logvar = mu.float(), logvar.float()
    z = model.reparameterize(mu, logvar) if sample else mu
    coarse, refined = model.decode(z)
    coarse, refined = coarse.float(), refined.float()
    d = x[0].numel()
    terms = {"l2": (coarse - x).pow(2).mean(), "l1": l1_weight * (refined - x).abs().mean(),
             "kl": kl_weight * kl_terms(mu, logvar).sum(dim=1).mean() / d}
    terms["loss"] = sum(terms.values())
    return terms


# ------------------------------------------------------------------------------------------ setup
@dataclass
class Run:
    args: argparse.Namespace
    name: str
    device: torch.device
    model: torch.nn.Module
    ema: torch.nn.Module
    opt: torch.optim.Optimizer
    train_x: torch.Tensor   # uint8 [N, 3, S, S]
    train_m: torch.Tensor   # uint8 [N, 1, S, S]
    val_x: torch.Tensor
    val_m: torch.Tensor
    hyp: Hypothesis | None
    step: int = 0
    seen: int = 0
    best_score: float = math.inf
    best_state: dict[str, torch.Tensor] | None = None
    history: list[dict] = field(default_factory=list)


def build_model(args) -> torch.nn.Module:
    if args.model == "masked-vae":
        return MaskedVAE(with_mask=HYPOTHESES[args.hypothesis].mask, width_mult=args.width_mult)
    return MultiStageVAE(widths=[int(c * args.width_mult) for c in (32, 64, 128, 128)],
                         refine_ch=int(64 * args.width_mult))


def setup(args) -> Run:
    device = torch.device(args.device)
    torch.manual_seed(args.seed)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    data = load_faces(args.shards, MODEL_SIZE[args.model], device)
    train, val = data["split"] == 0, data["split"] == 1
    if not bool(val.any()):  # tiny smoke shards may lack a val split
        val = train
    model = build_model(args).to(device)
    if device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, fused=device.type == "cuda")
    run = Run(args, run_name(args.model, args.variant), device, model, ema, opt,
              data["images"][train], data["masks"][train], data["images"][val][:args.val_limit],
              data["masks"][val][:args.val_limit], HYPOTHESES[args.hypothesis] if args.model == "masked-vae" else None)
    n = sum(p.numel() for p in model.parameters())
    print(f"[{run.name}] {n / 1e6:.2f}M params, train {len(run.train_x)} / val {len(run.val_x)} images "
          f"at {MODEL_SIZE[args.model]}px on {device}", flush=True)
    load_checkpoint(run)
    return run


# ------------------------------------------------------------------------------------------ step
def get_batch(run: Run) -> tuple[torch.Tensor, torch.Tensor]:
    """Random train batch with random horizontal flips: x [B, 3, S, S] in [0, 1], m [B, 1, S, S]."""
    idx = torch.randint(len(run.train_x), (run.args.batch,), device=run.device)
    x, m = run.train_x[idx], run.train_m[idx]
    flip = (torch.rand(len(idx), device=run.device) < 0.5)[:, None, None, None]
    x, m = torch.where(flip, x.flip(-1), x), torch.where(flip, m.flip(-1), m)
    x = to_unit(x)
    if run.device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    return x, m.float()


def compute_loss(run: Run, model, x, m, sample: bool = True) -> dict[str, torch.Tensor]:
    with torch.autocast(run.device.type, dtype=torch.bfloat16, enabled=run.device.type == "cuda"):
        if run.hyp is not None:
            return masked_vae_loss(model, x, m, run.hyp, run.args.kl_weight, sample)
        return multistage_vae_loss(model, x, run.args.kl_weight, run.args.l1_weight, sample)


def clip_gradients(run: Run) -> None:
    grads = [p.grad for p in run.model.parameters() if p.grad is not None]
    if run.hyp is not None:  # Keras clipnorm: every gradient tensor clipped to its own norm limit
        norms = torch.stack(torch._foreach_norm(grads))
        scale = (run.args.clip / (norms + 1e-12)).clamp(max=1.0)
        torch._foreach_mul_(grads, list(scale.unbind()))
    elif run.args.clip > 0:
        torch.nn.utils.clip_grad_norm_(run.model.parameters(), run.args.clip, foreach=True)


def train_step(run: Run) -> dict[str, torch.Tensor]:
    run.model.train()
    x, m = get_batch(run)
    terms = compute_loss(run, run.model, x, m)
    run.opt.zero_grad(set_to_none=True)
    terms["loss"].backward()
    clip_gradients(run)
    run.opt.step()
    update_ema(run)
    run.step += 1
    run.seen += len(x)
    return {k: v.detach() for k, v in terms.items()}


@torch.no_grad()
def update_ema(run: Run) -> None:
    decay = min(run.args.ema, (1 + run.step) / (10 + run.step))
    e_state, m_state = run.ema.state_dict(), run.model.state_dict()
    floats = [k for k, v in e_state.items() if v.is_floating_point()]
    torch._foreach_lerp_([e_state[k] for k in floats], [m_state[k] for k in floats], 1 - decay)
    for k, v in e_state.items():
        if not v.is_floating_point():
            v.copy_(m_state[k])


@torch.no_grad()
def val_objective(run: Run) -> float:
    """The training objective on the val split with z = mu, on the EMA weights (model selection)."""
    total, n = 0.0, 0
    for i in range(0, len(run.val_x), 64):
        x = to_unit(run.val_x[i:i + 64])
        m = run.val_m[i:i + 64].float()
        terms = compute_loss(run, run.ema, x, m, sample=False)
        total += float(terms["loss"] - terms["kl"]) * len(x)
        n += len(x)
    return total / max(n, 1)


# ------------------------------------------------------------------------------------------ checkpoint
def ckpt_paths(run: Run) -> tuple[str, str]:
    base = os.path.join(run.args.ckpt, run.name)
    return base + ".safetensors", base + ".json"


def save_checkpoint(run: Run) -> None:
    """Model, EMA, best EMA, Adam state as safetensors; counters and param groups as JSON (no pickle).

    To keep the state small enough to carry between sessions, the best EMA is stored in fp16 (it is only
    ever exported in fp16) and the Adam moments in bf16 (fp32 range: the clipped grads' squares would
    underflow fp16); model and EMA stay fp32.
    """
    tensors = {f"model.{k}": v for k, v in run.model.state_dict().items()}
    tensors.update({f"ema.{k}": v for k, v in run.ema.state_dict().items()})
    if run.best_state is not None:
        tensors.update({f"best.{k}": v.half() if v.is_floating_point() else v for k, v in run.best_state.items()})
    opt_state = run.opt.state_dict()
    for idx, st in opt_state["state"].items():
        tensors.update({f"opt.{idx}.{k}": torch.as_tensor(v).bfloat16() if k.startswith("exp_avg") else
                        torch.as_tensor(v) for k, v in st.items()})
    tensors = {k: v.detach().contiguous().cpu() for k, v in tensors.items()}
    meta = {"step": run.step, "seen": run.seen, "best_score": run.best_score, "history": run.history,
            "param_groups": opt_state["param_groups"], "args": vars(run.args)}
    st_path, js_path = ckpt_paths(run)
    os.makedirs(run.args.ckpt, exist_ok=True)
    save_file(tensors, st_path + ".tmp")
    with open(js_path + ".tmp", "w") as f:
        json.dump(meta, f)
    os.replace(st_path + ".tmp", st_path)
    os.replace(js_path + ".tmp", js_path)


def load_checkpoint(run: Run) -> None:
    st_path, js_path = ckpt_paths(run)
    if not (os.path.exists(st_path) and os.path.exists(js_path)):
        return
    tensors = load_file(st_path, device=str(run.device))
    with open(js_path) as f:
        meta = json.load(f)

    def part(prefix):
        return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}

    run.model.load_state_dict(part("model."))
    run.ema.load_state_dict(part("ema."))
    ref = run.ema.state_dict()
    run.best_state = {k: v.to(ref[k].dtype) for k, v in part("best.").items()} or None
    opt_state: dict = {"state": {}, "param_groups": meta["param_groups"]}
    for k, v in part("opt.").items():
        idx, name = k.split(".", 1)
        opt_state["state"].setdefault(int(idx), {})[name] = v
    for g in opt_state["param_groups"]:
        g["betas"] = tuple(g["betas"])
        g["lr"] = run.args.lr
    run.opt.load_state_dict(opt_state)
    for p in run.model.parameters():  # moments must share the param's strides (channels_last) for fused Adam
        st = run.opt.state.get(p, {})
        for k in ("exp_avg", "exp_avg_sq"):
            if k in st:
                st[k] = torch.empty_like(p).copy_(st[k])
    run.step, run.seen, run.best_score = meta["step"], meta["seen"], meta["best_score"]
    run.history = meta.get("history", [])
    print(f"[{run.name}] resumed from {st_path} at step {run.step} ({run.seen} images seen)", flush=True)


# ------------------------------------------------------------------------------------------ export
def export(run: Run, minutes_trained: float) -> dict:
    """Best EMA -> --out/<name>/ (save_pretrained + metrics.json), --out/<name>_grid.png."""
    model = build_model(run.args).to(run.device)
    model.load_state_dict(run.best_state if run.best_state is not None else run.ema.state_dict())
    model.eval()
    results = evaluate(model, run.args.model, run.val_x, run.val_m)
    title = f"[{run.name}] val ({results['n_images']} images), step {run.step}"
    print(format_table(results, title, paper=run.hyp is not None), flush=True)
    folder = os.path.join(run.args.out, run.name)
    training = {"variant": run.args.variant if run.hyp else None, "steps": run.step, "images_seen": run.seen,
                "batch": run.args.batch, "lr": run.args.lr, "kl_weight": run.args.kl_weight,
                "minutes_this_session": round(minutes_trained, 2), "best_val_objective": run.best_score}
    files = model.save_pretrained(folder, card=model_card(run, results, training), extra_config={"training": training})
    with open(os.path.join(folder, "metrics.json"), "w") as f:
        json.dump({"val": results, "training": training, "history": run.history[-50:]}, f, indent=2)
    sizes = {n: os.path.getsize(os.path.join(folder, n)) / 2 ** 20 for n in files}
    print(f"[{run.name}] wrote {folder}: " + ", ".join(f"{n} {s:.1f} MiB" for n, s in sizes.items()), flush=True)
    save_grid(run, model, os.path.join(run.args.out, f"{run.name}_grid.png"))
    return results


@torch.no_grad()
def save_grid(run: Run, model, path: str, n: int = 8) -> None:
    """Columns = n val faces; rows: masked: input | composite (pred. mask) | raw decoder | pred. mask |
    prior samples (no-mask variants: input | raw | GT-mask composite | prior samples); multi-stage:
    input | coarse | refined | prior coarse | prior refined."""
    from PIL import Image

    x = to_unit(run.val_x[:n])
    g = torch.Generator(device=run.device).manual_seed(0)
    if run.hyp is not None:
        out = model.reconstruct(x)
        if out.mask is not None:
            rows = [x, out.image, out.raw, out.mask.expand(-1, 3, -1, -1)]
        else:  # no mask decoder: raw output, then the ground-truth-mask composite the metrics score
            rows = [x, out.raw, model.compose(out.raw, x, run.val_m[:n].float())]
        rows.append(model.sample(len(x), generator=g)[0])
    else:
        coarse, refined = model.reconstruct(x)
        prior_c, prior_r = model.sample(len(x), generator=g)
        rows = [x, coarse, refined, prior_c, prior_r]
    grid = torch.cat([torch.cat(list(r.float().clamp(0, 1)), dim=2) for r in rows], dim=1)  # [3, R*S, n*S]
    img = (grid.permute(1, 2, 0).cpu().numpy() * 255 + 0.5).astype(np.uint8)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    Image.fromarray(img).save(path)
    print(f"[{run.name}] wrote {path}", flush=True)


def model_card(run: Run, results: dict, training: dict) -> str:
    a = run.args
    if run.hyp is not None:
        what = (f"Masked VAE (Toledo & Antonelo, *Face Reconstruction with Variational Autoencoder and Face "
                f"Masks*), hypothesis {a.hypothesis.upper()} (`--variant {a.variant}`): mask={run.hyp.mask}, "
                f"SSIM x{run.hyp.ssim}, "
                f"l1 x{run.hyp.l1}, l2 x{run.hyp.l2}, KL x{a.kl_weight}. 144x144 RGB in [0, 1], 512-d latent. "
                + ("A second decoder predicts the face mask (hair included; ears, earrings, neck, necklace, "
                   "cloth excluded) and the input background is kept outside it." if run.hyp.mask else
                   "No mask decoder (the paper's no-mask hypothesis): the output is the whole decoded image."))
        usage = "MaskedVAE.from_pretrained(folder).reconstruct(x)  # x [N, 3, 144, 144] in [0, 1]"
    else:
        what = ("Multi-stage VAE (Cai, Gao & Ji, *Multi-Stage Variational Auto-Encoders for Coarse-to-Fine "
                "Image Generation*): 128x128 RGB in [0, 1], 512-d latent, coarse image (l2 + KL) refined by 5 "
                "residual blocks (l1).")
        usage = "MultiStageVAE.from_pretrained(folder).reconstruct(x)  # -> (coarse, refined)"
    table = "\n".join(f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in results.items())
    variant = f" --variant {a.variant}" if run.hyp is not None else ""
    return f"""# {run.name}

{what}

Usage: `{usage}`

## Data and terms
Trained from scratch on the CelebAMask-HQ subset in `../shared/data/celebamask_hq` (4,500 faces with
part labels; the project's train split, {len(run.train_x)} images, horizontal flips), evaluated on its val
split ({len(run.val_x)} images). CelebA / CelebAMask-HQ are released for **non-commercial research use
only**; these weights inherit those terms. Faces are of public figures; do not use for identification.

## Metrics (val split, face pixels only: background replaced by the input through the ground-truth mask;
l1 = mean |diff| x 10, l2 = RMSE x 10 on [0, 1] images, i.e. 0-255 values x 10/255; `pred_*` use the
predicted mask; the paper's H9 on CelebA test: 1-SSIM 0.307, 1-MS-SSIM 0.077, l1 0.487, l2 0.682 —
different data and resolution source, so not directly comparable)

| metric | value |
|---|---|
{table}

Training: {training['steps']} steps of batch {a.batch} ({training['images_seen']} images), lr {a.lr}.

## Retrain / evaluate
```
python -m train.data            # builds .cache/shards (celebamask at 256 px)
python -m train.vae --model {a.model}{variant} --shards .cache/shards --ckpt .cache/ckpt --out out --minutes 20 --device cuda
python -m train.eval_vae --model {a.model} --checkpoint out/{run.name}
```
"""


# ------------------------------------------------------------------------------------------ loop
def log_line(run: Run, sums: dict[str, torch.Tensor], count: int, dt: float, steps: int) -> bool:
    vals = {k: float(v) / max(count, 1) for k, v in sums.items()}
    parts = " ".join(f"{k} {v:.4f}" for k, v in vals.items())
    print(f"[{run.name}] step {run.step} imgs {run.seen} {parts} {steps / max(dt, 1e-9):.1f} it/s", flush=True)
    return all(math.isfinite(v) for v in vals.values())


def maybe_validate(run: Run, elapsed_min: float) -> None:
    score = val_objective(run)
    entry = {"step": run.step, "minutes": round(elapsed_min, 2), "val_objective": score}
    run.history.append(entry)
    better = score < run.best_score
    if better:
        run.best_score = score
        run.best_state = {k: v.detach().clone() for k, v in run.ema.state_dict().items()}
    print(f"[{run.name}] val objective {score:.4f}{' (best)' if better else ''}", flush=True)


def train(args) -> dict:
    t0 = time.time()
    run = setup(args)
    budget = args.minutes * 60 - args.reserve_s  # leave time for the final eval + export
    last_log = last_val = last_ckpt = time.time()
    sums: dict[str, torch.Tensor] = {}
    count = steps_since = 0
    while True:
        terms = train_step(run)
        for k, v in terms.items():
            sums[k] = sums.get(k, 0) + v
        count += 1
        steps_since += 1
        now = time.time()
        done = now - t0 > budget or (args.max_steps and run.step >= args.max_steps)
        if now - last_log > args.log_s or done:
            ok = log_line(run, sums, count, now - last_log, steps_since)
            sums, count, steps_since, last_log = {}, 0, 0, now
            if not ok:
                print(f"[{run.name}] non-finite loss, stopping; exporting the best EMA so far", flush=True)
                break
        if now - last_val > args.val_s or done:
            maybe_validate(run, (now - t0) / 60)
            last_val = time.time()
        if now - last_ckpt > args.ckpt_s or done:
            save_checkpoint(run)
            last_ckpt = time.time()
        if done:
            break
    results = export(run, (time.time() - t0) / 60)
    print(f"[{run.name}] done in {(time.time() - t0) / 60:.1f} min", flush=True)
    return results


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", choices=sorted(MODEL_SIZE), default="masked-vae")
    ap.add_argument("--variant", default="h9",
                    help="masked VAE hypothesis: h1..h10, mask-l1 (=h3), nomask-ssim-l2 (=h10)")
    ap.add_argument("--shards", default=os.path.join(".cache", "shards"))
    ap.add_argument("--ckpt", default=os.path.join(".cache", "ckpt"))
    ap.add_argument("--out", default="out")
    ap.add_argument("--minutes", type=float, default=20.0)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--smoke", action="store_true", help="a few CPU steps on tiny data")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--kl-weight", type=float, default=None, help="default 1e-3 (masked) / 1.0 (multi-stage)")
    ap.add_argument("--l1-weight", type=float, default=1.0, help="multi-stage: weight of the refined l1 term")
    ap.add_argument("--clip", type=float, default=None,
                    help="masked: per-tensor grad-norm limit (default 1e-3); multi-stage: global (default 1.0)")
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--width-mult", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=0)
    ap.add_argument("--val-limit", type=int, default=2000)
    ap.add_argument("--log-s", type=float, default=30.0)
    ap.add_argument("--val-s", type=float, default=90.0)
    ap.add_argument("--ckpt-s", type=float, default=240.0)
    ap.add_argument("--reserve-s", type=float, default=60.0)
    args = ap.parse_args(argv)
    args.hypothesis = ALIASES.get(args.variant, args.variant)
    if args.hypothesis not in HYPOTHESES:
        ap.error(f"unknown --variant {args.variant}")
    if args.kl_weight is None:
        args.kl_weight = 1e-3 if args.model == "masked-vae" else 1.0
    if args.clip is None:
        args.clip = 1e-3 if args.model == "masked-vae" else 1.0
    if args.smoke:
        args.device, args.batch, args.max_steps = "cpu", 2, args.max_steps or 2
        args.val_limit, args.reserve_s = 8, 0.0
    return args


if __name__ == "__main__":
    train(parse_args(sys.argv[1:]))
