"""Fit attribute sliders for the 128 px StyleGAN2: InterFaceGAN directions in W (Shen et al., CVPR 2020).

    python -m train.directions --generator out/stylegan/stylegan-ema --attributes out/attributes/attributes \
        --out out/directions --device cuda [--samples 100000] [--truncation 1.0]
    python -m train.directions --smoke --device cpu --attributes /tmp/attr_out/attributes --out /tmp/dir_out

1. Sample z, w = mapping(z, truncation) (one w per sample), image = synthesis(w broadcast to every layer,
   noise 'const'), label it with the AttributeNet (bf16, batched).
2. One unit normal n per slider (InterFaceGAN sec. 2.2): binary heads -> class-balanced logistic regression
   (L-BFGS, small L2) of the top (prevalence, clipped to [--min-positive, --fraction]) against the bottom
   `--fraction` of the head's logit (sec. 3.1 keeps the extremes; a rare attribute's top is its prevalence);
   regression heads -> ridge least squares of the (standardised) value on w - w_avg. n = normalised weights.
   `--gradient` sliders (default: age, bangs, eyeglasses) take instead the mean gradient of the head's raw
   output with respect to the slider's w+ layers over `--grad-samples` fresh samples (the labeller's local
   direction). Why: the age boundary predicts age across samples (held-out R^2 0.38) yet moving along it
   changed the labelled age by 0.45 years per unit (a correlate, not a cause); the mean gradient moves it
   4.3 years per unit, bangs 0.48 instead of 0.15 std, eyeglasses 0.43 instead of 0.10 std (held-out
   samples, session 6). Every slider so (`all`) made gender and pitch entangled (gender moved beard 0.46 std
   per unit), so the others keep their boundaries. The boundary's held-out quality is still reported.
   `--condition-gradients` sliders (default: eyeglasses) are also made orthogonal to the mean gradients of the
   heads they are conditioned on: the eyeglasses gradient projected off the boundaries alone still moved
   pitch 0.44 std and gender 0.21 std per unit (an inverted face turned male and hatted); off the gradients too,
   the others move < 0.05 std and glasses appear from ~+4 units on the same face.
3. Conditional manipulation (sec. 2.3): each slider's n is projected orthogonal to the span of the raw normals
   of the attributes it should leave alone (CONDITION below), then renormalised.
4. Unit: std of <w - w_avg, n> over the samples; layer range per slider (LAYERS); both stored.
5. Held-out check: for `--eval` fresh samples, edit +-2 units on the slider's layers, relabel, report
   d(attribute)/d(unit) for every head (the entanglement matrix) and the accuracy of each boundary.
Out: --out/directions/ (directions.safetensors + directions.json), --out/directions_metrics.json,
--out/directions_grid.png (one row per slider: -3 ... +3 units on 4 held-out samples).
"""
from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import numpy as np
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from core.models.attributes import AttributeNet
from core.models.directions import apply_edits, load_directions
from core.models.stylegan import StyleGAN2Generator
from core.pipelines.gan import WEAK_SLIDER_Z  # below this held-out change (std / unit) a slider is weak

# slider -> heads whose (raw) directions it is made orthogonal to. Pose and expression are kept out of the
# identity-ish sliders and vice versa; gender is not conditioned on age (and age not on beard) to keep the
# two main sliders strong; eyeglasses is kept away from age and gender (InterFaceGAN Fig. 5's example).
CONDITION = {
    "age": ["gender", "eyeglasses", "yaw", "smile", "beard"],
    "gender": ["eyeglasses", "yaw", "smile"],
    "smile": ["yaw", "pitch", "gender", "age"],
    "eyeglasses": ["age", "gender", "yaw", "pitch", "hat", "beard"],
    "yaw": ["smile", "pitch", "mouth_open"],
    "pitch": ["yaw", "smile"],
    "bangs": ["gender", "age", "yaw", "hat"],
    "hat": ["gender", "age", "yaw", "bangs"],
    "beard": ["age", "yaw", "smile"],
    "mouth_open": ["yaw", "pitch", "smile"],
    "blond_hair": ["gender", "age", "black_hair"],
    "black_hair": ["gender", "age", "blond_hair"],
}
# w+ layers [first, last] each slider edits (12 layers at 128 px, see core/models/stylegan.py: 0-5 = 4-16 px
# shape and pose, 6-11 = 32-128 px texture and colour); age is face shape and skin / hair texture, not pose
LAYERS = {"yaw": (0, 3), "pitch": (0, 3), "age": (2, 11), "gender": (0, 7), "eyeglasses": (0, 7),
          "smile": (2, 5), "mouth_open": (2, 5), "bangs": (2, 7), "hat": (0, 7), "beard": (2, 7),
          "blond_hair": (6, 11), "black_hair": (6, 11)}
SLIDERS = ["age", "gender", "smile", "eyeglasses", "yaw", "bangs", "pitch", "mouth_open", "hat", "beard",
           "blond_hair", "black_hair"]
REQUIRED = ["age", "gender", "smile", "eyeglasses", "yaw", "bangs"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="fit InterFaceGAN attribute directions in W")
    p.add_argument("--generator", default=None, help="StyleGAN2Generator folder (from_pretrained)")
    p.add_argument("--attributes", required=True, help="AttributeNet folder (from_pretrained)")
    p.add_argument("--out", default="out/directions")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--samples", type=int, default=100000)
    p.add_argument("--eval", type=int, default=256, help="held-out samples for the entanglement matrix")
    p.add_argument("--truncation", type=float, default=1.0,
                   help="psi of the sampled w (1 = none: inverted photos are not truncated, and psi < 1 all but "
                        "removes rare attributes such as eyeglasses)")
    p.add_argument("--fraction", type=float, default=0.3, help="top / bottom share used for binary boundaries")
    p.add_argument("--min-positive", type=float, default=0.01,
                   help="a rare binary attribute's positives are its top max(prevalence, this) share, not --fraction")
    p.add_argument("--min-r2", type=float, default=0.1,
                   help="keep an optional slider only if its boundary explains this much (R2 or 2*AUC-1)")
    p.add_argument("--gradient", default="age,bangs,eyeglasses",
                   help="comma-separated sliders whose raw normal is the labeller's mean gradient, not the boundary "
                        "('' = none, 'all' = every slider)")
    p.add_argument("--grad-samples", type=int, default=4096, help="samples averaged for --gradient directions")
    p.add_argument("--condition-gradients", default="eyeglasses",
                   help="comma-separated --gradient sliders also made orthogonal to the mean gradients (over their "
                        "layers) of the heads they are conditioned on, not only to their boundaries ('' = none)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="tiny random generator on CPU, 256 samples")
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------------------ sampling

@torch.no_grad()
def sample(G: StyleGAN2Generator, net: AttributeNet, n: int, psi: float, batch: int, seed: int,
           dev: torch.device) -> tuple[torch.Tensor, dict[str, torch.Tensor], dict[str, torch.Tensor]]:
    """-> w [n, w_dim] float32 (CPU), probabilities / values {head: [n]}, raw outputs {head: [n]} (logits)."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    ws, raws = [], []
    for i in range(0, n, batch):
        z = torch.randn(min(batch, n - i), G.z_dim, generator=g).to(dev)
        w = G.mapping(z, truncation_psi=psi)                                  # [B, num_ws, w_dim]
        raws.append(label_raw(G, net, w))
        ws.append(w[:, 0].float().cpu())
    raw = torch.cat(raws)
    return torch.cat(ws), net.decode(raw.to(next(net.buffers()).device)), {h: raw[:, i] for i, h in enumerate(net.names)}


@torch.no_grad()
def label_raw(G: StyleGAN2Generator, net: AttributeNet, ws: torch.Tensor) -> torch.Tensor:
    """ws [B, num_ws, w_dim] -> raw AttributeNet outputs [B, H] float32 (CPU)."""
    dev = ws.device
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
        img = G.synthesis(ws, noise_mode="const").clamp(-1, 1)               # [B, 3, 128, 128]
        if img.shape[-1] != 128:
            img = F.interpolate(img.float(), size=(128, 128), mode="bilinear", antialias=True, align_corners=False)
        return net.forward_raw(img).float().cpu()


def edit_labels(G, net, w: torch.Tensor, dirs: dict, name: str, value: float, batch: int, dev) -> dict:
    out = []
    for i in range(0, len(w), batch):
        ws = w[i:i + batch].to(dev)[:, None].repeat(1, G.num_ws, 1)
        out.append(label_raw(G, net, apply_edits(ws, dirs, {name: value})))
    return net.decode(torch.cat(out).to(next(net.buffers()).device))


def mean_gradients(G: StyleGAN2Generator, net: AttributeNet, names: list[str], n: int, psi: float, batch: int,
                   seed: int, dev: torch.device) -> dict[str, torch.Tensor]:
    """-> {head: [num_ws, w_dim] float64}: the mean over n fresh samples of d(head's raw output)/d(w+) (fp32).
    A slider's direction is then the normalised sum over its layers of this mean."""
    g = torch.Generator(device="cpu").manual_seed(seed)
    idx = [net.names.index(h) for h in names]
    total = {h: torch.zeros(G.num_ws, G.w_dim, dtype=torch.float64) for h in names}
    for i in range(0, n, batch):
        z = torch.randn(min(batch, n - i), G.z_dim, generator=g).to(dev)
        with torch.no_grad():
            ws = G.mapping(z, truncation_psi=psi)
        ws.requires_grad_(True)
        img = G.synthesis(ws, noise_mode="const").clamp(-1, 1)
        if img.shape[-1] != 128:
            img = F.interpolate(img, size=(128, 128), mode="bilinear", antialias=True, align_corners=False)
        raw = net.forward_raw(img)                                             # [B, H]
        for k, (h, j) in enumerate(zip(names, idx)):
            grad, = torch.autograd.grad(raw[:, j].sum(), ws, retain_graph=k < len(names) - 1)
            total[h] += grad.sum(0).double().cpu()
    return {h: t / n for h, t in total.items()}


# ------------------------------------------------------------------------------------------------ fitting

def fit_logistic(x: torch.Tensor, y: torch.Tensor, l2: float = 1e-3) -> torch.Tensor:
    """Logistic regression (L-BFGS) of y in {0, 1} on standardised x [n, d] -> weights [d] (bias dropped); the
    positives weighted by #negatives / #positives (balanced classes)."""
    pos_weight = ((1 - y).sum() / y.sum().clamp(min=1)).detach()
    w = torch.zeros(x.shape[1] + 1, dtype=x.dtype, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(x @ w[:-1] + w[-1], y, pos_weight=pos_weight) \
            + l2 * w[:-1].square().sum()
        loss.backward()
        return loss
    opt.step(closure)
    return w.detach()[:-1]


def fit_ridge(x: torch.Tensor, y: torch.Tensor, l2: float = 1e-2) -> torch.Tensor:
    """Ridge least squares of standardised y on centred x [n, d] -> weights [d]."""
    a = x.T @ x + l2 * len(x) * torch.eye(x.shape[1], dtype=x.dtype)
    return torch.linalg.solve(a, x.T @ y)


def fit_direction(dw: torch.Tensor, raw: torch.Tensor, binary: bool, fraction: float, train: torch.Tensor,
                  test: torch.Tensor, positive: float | None = None) -> tuple[torch.Tensor, dict]:
    """dw [n, d] = w - w_avg (float64), raw [n] head output -> unit normal n [d], fit info (held-out quality).

    InterFaceGAN fits in W itself; we whiten nothing (W is roughly isotropic after the mapping's
    normalisation) but scale by the per-dimension std before fitting and map the weights back. Binary heads:
    positives are the top `positive` share of the logit (default `fraction`; a rare attribute passes its
    prevalence, so that the 'top 30 %' of eyeglasses is not 29 % faces without glasses), negatives the bottom
    `fraction`, the two classes weighted equally."""
    sd = dw[train].std(0).clamp(min=1e-6)
    x = dw / sd
    if binary:
        q = fraction if positive is None else positive
        lo, hi = torch.quantile(raw[train], fraction), torch.quantile(raw[train], 1 - q)
        sel = train[(raw[train] <= lo) | (raw[train] >= hi)]
        coef = fit_logistic(x[sel], (raw[sel] >= hi).to(x.dtype))
        s = x[test] @ coef
        t_lo, t_hi = torch.quantile(raw[test], fraction), torch.quantile(raw[test], 1 - q)
        pos, neg = raw[test] >= t_hi, raw[test] <= t_lo
        # held-out AUC of the score, positives vs negatives (threshold-free; the classes are unbalanced)
        auc = float((s[pos][:, None] > s[neg][None, :]).double().mean()) if pos.any() and neg.any() else float("nan")
        r = float(torch.corrcoef(torch.stack([s, raw[test]]))[0, 1])
        info = {"fit": f"logistic regression, top {q:.1%} vs bottom {fraction:.0%} of the head's logit",
                "heldout_auc": round(auc, 4), "heldout_r": round(r, 4), "quality": round(2 * auc - 1, 4)}
    else:
        mu, sdy = raw[train].mean(), raw[train].std().clamp(min=1e-6)
        coef = fit_ridge(x[train] - x[train].mean(0), (raw[train] - mu) / sdy)
        pred = (x[test] - x[train].mean(0)) @ coef
        yt = (raw[test] - mu) / sdy
        r2 = float(1 - ((pred - yt) ** 2).mean() / yt.var().clamp(min=1e-12))
        info = {"fit": "ridge least squares of the standardised value", "heldout_r2": round(r2, 4),
                "quality": round(r2, 4)}
    n = coef / sd  # back to W coordinates: score = <dw / sd, coef> = <dw, coef / sd>
    return n / n.norm(), info


def condition(normals: dict[str, torch.Tensor], name: str, others: list[str],
              extra: list[torch.Tensor] = ()) -> torch.Tensor:
    """InterFaceGAN sec. 2.3: remove from n_name its component in span{n_o : o in others} (Gram-Schmidt basis),
    and in the span of `extra` vectors too (the others' gradient directions, `--condition-gradients`)."""
    basis = []
    for v in [normals[o] for o in others if o != name and o in normals] + list(extra):
        v = v.clone()
        for b in basis:
            v -= (v @ b) * b
        if v.norm() > 1e-6:
            basis.append(v / v.norm())
    n = normals[name].clone()
    for b in basis:
        n -= (n @ b) * b
    return n / n.norm()


# ----------------------------------------------------------------------------------------------- metrics

def entanglement(G, net, w_eval: torch.Tensor, dirs: dict, heads: list[str], batch: int, dev, spread: dict) -> dict:
    """Per slider: d(head)/d(unit) from -2 and +2 unit edits, for every head, raw and in units of the head's
    std over the samples (`_z`), plus the share of the own change that is the largest (diagonal dominance)."""
    res = {}
    for name in dirs:
        plus = edit_labels(G, net, w_eval, dirs, name, 2.0, batch, dev)
        minus = edit_labels(G, net, w_eval, dirs, name, -2.0, batch, dev)
        per = {h: float((plus[h] - minus[h]).mean() / 4) for h in heads}
        per_z = {h: per[h] / max(spread[h], 1e-6) for h in heads}
        others = {h: abs(v) for h, v in per_z.items() if h != name}
        res[name] = {"per_unit": {h: round(v, 4) for h, v in per.items()},
                     "per_unit_z": {h: round(v, 4) for h, v in per_z.items()},
                     "own_z": round(per_z[name], 4),
                     "worst_other": max(others, key=others.get) if others else None,
                     "worst_other_z": round(max(others.values()), 4) if others else 0.0}
    return res


def grid_png(G, dirs: dict, w: torch.Tensor, path: str, dev, values=(-3, -1.5, 0, 1.5, 3)) -> None:
    """One row per slider and sample: the sample edited at each value (slider units)."""
    from PIL import Image

    rows = []
    with torch.no_grad():
        for name in dirs:
            ws = w.to(dev)[:, None].repeat(1, G.num_ws, 1)
            cols = [G.synthesis(apply_edits(ws, dirs, {name: v}), noise_mode="const").float().clamp(-1, 1)
                    for v in values]                                         # each [S, 3, R, R]
            rows.append(torch.cat(cols, 3))                                  # [S, 3, R, R * V]
    img = torch.cat([r for r in rows], 0)                                    # [S * sliders, 3, R, R * V]
    img = torch.cat(list(img), 1)                                            # [3, R * rows, R * V]
    Image.fromarray(((img.permute(1, 2, 0) + 1) * 127.5 + 0.5).clamp(0, 255).byte().cpu().numpy()).save(path)


# ------------------------------------------------------------------------------------------------- main

def smoke_generator(folder: str) -> str:
    torch.manual_seed(0)
    G = StyleGAN2Generator(channel_base=256, channel_max=32, mapping_layers=2)
    G.save_pretrained(folder)
    return folder


def main(argv=None) -> None:
    args = parse_args(argv)
    t0 = time.time()
    dev = torch.device(args.device)
    if args.smoke:
        torch.set_num_threads(1)
        args.samples, args.eval, args.batch = 256, 32, 32
        if args.generator is None:
            args.generator = smoke_generator(tempfile.mkdtemp(prefix="smoke_gen_"))
    if args.generator is None:
        raise SystemExit("--generator is required (a StyleGAN2Generator folder)")
    torch.backends.cudnn.benchmark = True
    G = StyleGAN2Generator.from_pretrained(args.generator, device=dev).eval()
    net = AttributeNet.from_pretrained(args.attributes, device=dev).eval()
    heads = list(net.names)
    print(f"generator {args.generator} ({G.img_resolution} px, {G.num_ws} ws), attribute heads {heads}", flush=True)

    w, val, raw = sample(G, net, args.samples, args.truncation, args.batch, args.seed, dev)
    print(f"labelled {len(w)} samples in {time.time() - t0:.0f}s; "
          + " ".join(f"{h} {float(val[h].mean()):.3g}+-{float(val[h].std()):.2g}" for h in heads), flush=True)
    w_avg = G.w_avg.float().cpu()
    dw = (w - w_avg).double()
    perm = torch.randperm(len(w), generator=torch.Generator().manual_seed(args.seed))
    n_test = max(len(w) // 10, 8)
    test, train = perm[:n_test], perm[n_test:]

    normals, fits = {}, {}
    for name in [s for s in SLIDERS if s in heads]:
        binary = net.kinds[heads.index(name)] == "binary"
        r = raw[name].double()
        if r.std() < 1e-6:
            print(f"{name}: constant labels on the samples; skipped", flush=True)
            continue
        positive = min(args.fraction, max(float(val[name].mean()), args.min_positive)) if binary else None
        normals[name], fits[name] = fit_direction(dw, r, binary, args.fraction, train, test, positive)
        print(f"{name}: {fits[name]}", flush=True)
    grad_cond: dict[str, list[torch.Tensor]] = {}
    cg: list[str] = []
    grad_names = [h for h in normals] if args.gradient == "all" else \
        [h for h in args.gradient.split(",") if h and h in normals]
    if grad_names:
        t1 = time.time()
        heads_needed = list(grad_names)
        cg = [g for g in args.condition_gradients.split(",") if g in grad_names]
        heads_needed += sorted({o for g in cg for o in CONDITION.get(g, []) if o in normals} - set(grad_names))
        grads = mean_gradients(G, net, heads_needed, args.grad_samples, args.truncation, min(args.batch, 64),
                               args.seed + 2, dev)
        for name in grad_names:
            a, b = LAYERS.get(name, (0, G.num_ws - 1))
            layer_dir = lambda h: F.normalize(grads[h][a:b + 1].sum(0), dim=0)  # noqa: E731 (this slider's layers)
            v = layer_dir(name)
            fits[name] = {**fits[name], "direction": f"mean gradient of the labeller over {args.grad_samples} "
                          f"samples, layers {a}-{b}", "cos_boundary_gradient": round(float(v @ normals[name]), 4)}
            normals[name] = v
            if name in cg:
                grad_cond[name] = [layer_dir(o) for o in CONDITION.get(name, []) if o in grads]
            print(f"{name}: gradient direction, cos to the boundary {fits[name]['cos_boundary_gradient']:+.3f}",
                  flush=True)
        print(f"gradient directions {grad_names} in {time.time() - t1:.0f}s", flush=True)
    kept = [s for s in normals if s in REQUIRED or fits[s]["quality"] >= args.min_r2]
    dropped = {s: fits[s]["quality"] for s in normals if s not in kept}
    if dropped:
        print(f"optional sliders dropped (boundary quality < {args.min_r2}): {dropped}", flush=True)

    sliders, vecs = {}, {}
    for name in kept:
        cond = [o for o in CONDITION.get(name, []) if o in normals]
        n = condition(normals, name, cond, grad_cond.get(name, []))
        proj = dw @ n
        sliders[name] = {"std": round(float(proj.std()), 6), "layers": list(LAYERS.get(name, (0, G.num_ws - 1))),
                         "conditioned_on": cond, "cos_to_raw": round(float(n @ normals[name]), 4),
                         "kind": net.kinds[heads.index(name)], **fits[name]}
        vecs[name] = n.float().contiguous()

    os.makedirs(os.path.join(args.out, "directions"), exist_ok=True)
    folder = os.path.join(args.out, "directions")
    save_file(vecs, os.path.join(folder, "directions.safetensors"))
    meta = {"sliders": sliders, "generator": args.generator,
            "generator_config": {k: G.config[k] for k in ("z_dim", "w_dim", "img_resolution")},
            "attributes": args.attributes, "samples": len(w), "truncation": args.truncation,
            "unit": "1 = one std of <w - w_avg, n> over the samples", "edit": "ws[:, first:last+1] += value * std * n",
            "method": "InterFaceGAN (Shen et al. 2020): linear boundaries in W, conditional projection (sec. 2.3)"
                      + (f"; {', '.join(grad_names)}: the labeller's mean gradient instead of the boundary"
                         if grad_names else "")
                      + (f"; {', '.join(cg)}: also orthogonal to the mean gradients of the heads it is conditioned on"
                         if grad_names and cg else "")}
    with open(os.path.join(folder, "directions.json"), "w") as f:
        json.dump(meta, f, indent=2)

    dirs = load_directions(folder, device=dev)
    w_eval, val_eval, _ = sample(G, net, args.eval, args.truncation, args.batch, args.seed + 1, dev)
    spread = {h: float(val[h].std()) for h in heads}
    ent = entanglement(G, net, w_eval, dirs, heads, args.batch, dev, spread)
    cos = {a: {b: round(float(vecs[a] @ vecs[b]), 3) for b in vecs} for a in vecs}
    metrics = {"samples": len(w), "eval_samples": len(w_eval), "truncation": args.truncation,
               "label_mean": {h: round(float(val[h].mean()), 4) for h in heads},
               "label_std": {h: round(spread[h], 4) for h in heads},
               "fits": fits, "dropped": dropped, "entanglement": ent, "cosine": cos}
    with open(os.path.join(args.out, "directions_metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    meta["metrics_summary"] = {s: {"quality": fits[s]["quality"], "own_per_unit": ent[s]["per_unit"][s],
                                   "own_z": ent[s]["own_z"], "worst_other": ent[s]["worst_other"],
                                   "worst_other_z": ent[s]["worst_other_z"]} for s in sliders}
    with open(os.path.join(folder, "directions.json"), "w") as f:
        json.dump(meta, f, indent=2)
    weak = drop_weak_optional(folder)
    if weak:
        print(f"optional sliders dropped (held-out change < {WEAK_SLIDER_Z} std per unit): {weak}", flush=True)
        meta = json.load(open(os.path.join(folder, "directions.json")))
        sliders = meta["sliders"]
    with open(os.path.join(folder, "README.md"), "w") as f:
        f.write(model_card(meta, args))
    with open(os.path.join(folder, "config.json"), "w") as f:  # the Hub layout's config: class and shapes
        json.dump(folder_config(meta), f, indent=2)
    grid_png(G, dirs, w_eval[:2 if args.smoke else 4], os.path.join(args.out, "directions_grid.png"), dev)
    for s in sliders:
        e = ent[s]
        print(f"{s:11s} layers {sliders[s]['layers']} std {sliders[s]['std']:.3f} quality {fits[s]['quality']:.3f} "
              f"own/unit {e['per_unit'][s]:+.4f} ({e['own_z']:+.3f} sd) worst other {e['worst_other']} "
              f"{e['worst_other_z']:.3f} sd", flush=True)
    print(f"wrote {args.out}: directions/directions.safetensors, directions/directions.json, directions_metrics.json, "
          f"directions_grid.png; done in {time.time() - t0:.0f}s", flush=True)


def drop_weak_optional(folder: str) -> dict[str, float]:
    """Remove from a directions folder the optional sliders (not in REQUIRED) whose held-out change of their own
    attribute is below WEAK_SLIDER_Z std per unit (a slider that does nothing is worse than none; e.g. hats, which
    this generator does not draw). Rewrites directions.safetensors / .json; config.json is written after.
    -> {dropped slider: its own_z}."""
    from safetensors.torch import load_file

    path = os.path.join(folder, "directions.json")
    meta = json.load(open(path))
    summary = meta.get("metrics_summary", {})
    weak = {s: summary[s]["own_z"] for s in meta["sliders"]
            if s not in REQUIRED and s in summary and abs(summary[s]["own_z"]) < WEAK_SLIDER_Z}
    if weak:
        vecs = {k: v for k, v in load_file(os.path.join(folder, "directions.safetensors")).items() if k not in weak}
        save_file(vecs, os.path.join(folder, "directions.safetensors"))
        meta["sliders"] = {k: v for k, v in meta["sliders"].items() if k not in weak}
        meta["metrics_summary"] = {k: v for k, v in summary.items() if k not in weak}
        meta["dropped_weak"] = {**meta.get("dropped_weak", {}), **weak}
        with open(path, "w") as f:
            json.dump(meta, f, indent=2)
    return weak


def folder_config(meta: dict) -> dict:
    """config.json of a directions folder (`core.models.directions.Directions` reads the other two files)."""
    return {"_class": "Directions", **meta["generator_config"], "sliders": list(meta["sliders"]),
            "files": ["directions.safetensors", "directions.json"]}


def model_card(meta: dict, args) -> str:
    rows = "\n".join(f"| {s} | {v['layers'][0]}-{v['layers'][1]} | {v['quality']:.3f} | "
                     f"{meta['metrics_summary'][s]['own_per_unit']:+.4g} | {meta['metrics_summary'][s]['own_z']:+.3f} | "
                     f"{meta['metrics_summary'][s]['worst_other']} {meta['metrics_summary'][s]['worst_other_z']:.3f} |"
                     for s, v in meta["sliders"].items())
    return f"""# FaceLab attribute directions for the 128 px StyleGAN2 (InterFaceGAN sliders)

Linear boundaries in W (Shen et al., CVPR 2020), made less entangled by conditional projection (sec. 2.3), for
ONE generator: {meta['generator']}. `directions.safetensors` holds one unit normal per slider, `directions.json`
its unit (`std`), the w+ layers it edits and the fit; `core/models/directions.py` reads and applies them.

## How they were made
{meta['samples']} generator samples (truncation {meta['truncation']}) labelled by the attribute net
(train/attributes.py: UTKFace age / gender, CelebA attributes, parser-derived hat / eyeglasses, landmark
mouth opening, front-end yaw / pitch); ridge regression (continuous labels) or class-balanced logistic regression of the top (the attribute's
prevalence, at least {args.min_positive:.0%}, at most {args.fraction:.0%}) against the bottom {args.fraction:.0%} of the
head's logit (binary labels) in W; held-out quality is R^2 or 2 AUC - 1 (of the boundary).
Method: {meta['method']}.

## Metrics (held-out samples; per unit of the slider; z = in standard deviations of the attribute)
| slider | w+ layers | fit quality | own change / unit | own z / unit | most moved other (z / unit) |
|---|---|---|---|---|---|
{rows}

A slider with own z below {WEAK_SLIDER_Z} barely changes its attribute on this generator: the app marks a required one
weak; optional ones are dropped{" (here: " + ", ".join(f"{k} {v:+.3f}" for k, v in meta["dropped_weak"].items()) + ")" if meta.get("dropped_weak") else ""}.

## Retrain
    python -m train.directions --generator checkpoints/stylegan --attributes ATTRIBUTE_NET --out out --device cuda

## Terms
Non-commercial research only (derived from a generator trained on CelebA / CelebAMask-HQ and labels from
CelebA / CelebAMask-HQ / UTKFace, all non-commercial research use).
"""


if __name__ == "__main__":
    main()
