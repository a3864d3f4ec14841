"""Train the face attribute network (core/models/attributes.py), the labeller of the attribute sliders.

    python -m train.attributes --shards .cache/shards --ckpt .cache/ckpt/attributes --out out/attributes \
        --minutes 4 --device cuda
    python -m train.attributes --smoke --device cpu --shards .cache/shards --ckpt /tmp/attr_ck --out /tmp/attr_out

Labels per head, from the 128 px shards (split 0 trains, split 1 is the val set; masked where missing):
  age         UTKFace age (years)
  gender      UTKFace gender (1 female); celeba_id: 1 - CelebA `Male`, spread to every photo of an identity
              by majority vote of its annotated photos (gender is constant per person; ties dropped)
  smile       CelebA `Smiling` (weight 1); elsewhere a soft label (weight `--w-pseudo`) from a logistic
              regression on mouth landmark ratios fitted here on the CelebA-annotated train photos
  eyeglasses  CelebA `Eyeglasses`; CelebAMask-HQ: eyeglasses-class (3) pixels > 0.4 % of the crop (none = 0)
  bangs       CelebA `Bangs`; CelebAMask-HQ: hair (13) fraction of the forehead band (a quarter face
              height above the brows, between landmarks 19 and 24) > 0.35 -> 1, < 0.1 -> 0, else unknown
  hat         CelebA `Wearing_Hat`; CelebAMask-HQ: hat-class (14) pixels > 1 % (none = 0)
  beard       CelebA not `No_Beard`; 0 for every photo known to be female
  blond_hair, black_hair  CelebA attributes only (a few hundred photos: weak)
  yaw, pitch  the shard pose (solvePnP on dlib landmarks, core.face convention), every source
  mouth_open  inner-lip gap / face height from the shard landmarks, every source
Augmentation on the GPU: horizontal flip (negates yaw), +-4 % scale / +-3 px shift, brightness / contrast /
saturation jitter. Loss: BCE (binary, soft targets allowed) + smooth L1 on normalised values (regression),
each averaged over the labelled samples of its head. AdamW, cosine decay over the budget, bf16 autocast, EMA.
Out: --out/attributes/ (Hub-layout folder with card), --out/attributes_metrics.json, --out/attributes_grid.png.
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

from core.models.attributes import ATTRIBUTES, AttributeNet
from train.resume_pack import load_opt, opt_tensors
from train.shards import ATTR_NAMES, decode_jpeg, load_source, read_shard, shard_paths

SIZE = 128
SOURCES = ("utkface", "celeba_id", "celebamask")
HEADS = [n for n, _, _ in ATTRIBUTES]
BINARY = [k == "binary" for _, k, _ in ATTRIBUTES]
SMOKE_NET = dict(widths=[8, 8, 16, 16], blocks=1)
CELEBA_HEADS = {"smile": "Smiling", "eyeglasses": "Eyeglasses", "bangs": "Bangs", "hat": "Wearing_Hat",
                "blond_hair": "Blond_Hair", "black_hair": "Black_Hair"}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description="train the face attribute network")
    p.add_argument("--shards", default=".cache/shards")
    p.add_argument("--ckpt", default=".cache/ckpt/attributes")
    p.add_argument("--out", default="out/attributes")
    p.add_argument("--minutes", type=float, default=4.0, help="wall-clock budget of this invocation")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--smoke", action="store_true", help="tiny net, a few hundred real images, 5 steps (CPU check)")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--wd", type=float, default=0.05)
    p.add_argument("--ema", type=float, default=0.998)
    p.add_argument("--w-pseudo", type=float, default=0.3, help="weight of the landmark smile pseudo-labels")
    p.add_argument("--total-steps", type=int, default=0, help="cosine schedule length (0: estimated from --minutes)")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


# ------------------------------------------------------------------------------------------------ labels

def _dist(lm: np.ndarray, i: int, j: int) -> np.ndarray:
    return np.linalg.norm(lm[:, i] - lm[:, j], axis=1)


def mouth_open(lm: np.ndarray) -> np.ndarray:
    """[N, 68, 2] dlib landmarks -> [N] mean inner-lip gap (61-67, 62-66, 63-65) / face height (27 to 8)."""
    gap = (_dist(lm, 61, 67) + _dist(lm, 62, 66) + _dist(lm, 63, 65)) / 3
    return (gap / np.maximum(_dist(lm, 27, 8), 1.0)).astype(np.float32)


def smile_features(lm: np.ndarray) -> np.ndarray:
    """[N, 68, 2] -> [N, 6]: mouth width, inner width (/ eye span), corner lift, inner and outer gap (/ face height)."""
    eyes, face = np.maximum(_dist(lm, 36, 45), 1.0), np.maximum(_dist(lm, 27, 8), 1.0)
    width = _dist(lm, 48, 54) / eyes
    lift = ((lm[:, 51, 1] + lm[:, 57, 1]) / 2 - (lm[:, 48, 1] + lm[:, 54, 1]) / 2) / face
    return np.stack([width, _dist(lm, 60, 64) / eyes, lift, mouth_open(lm), _dist(lm, 51, 57) / face,
                     width * lift], 1).astype(np.float32)


def fit_smile_from_landmarks(feats: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, dict]:
    """Logistic regression (L-BFGS) of CelebA `Smiling` on landmark features -> (predict fn params, info)."""
    mu, sd = feats.mean(0), feats.std(0) + 1e-6
    x, t = torch.tensor((feats - mu) / sd), torch.tensor(y, dtype=torch.float32)
    w = torch.zeros(x.shape[1] + 1, requires_grad=True)
    opt = torch.optim.LBFGS([w], max_iter=200)

    def closure():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(x @ w[:-1] + w[-1], t) + 1e-3 * w[:-1].square().sum()
        loss.backward()
        return loss
    opt.step(closure)
    w = w.detach().numpy()
    acc = float((((x.numpy() @ w[:-1] + w[-1]) > 0) == (y > 0.5)).mean())
    return np.concatenate([mu, sd, w]), {"train_acc": round(acc, 3), "n": int(len(y))}


def predict_smile(params: np.ndarray, feats: np.ndarray) -> np.ndarray:
    k = feats.shape[1]
    mu, sd, w = params[:k], params[k:2 * k], params[2 * k:]
    return 1 / (1 + np.exp(-(((feats - mu) / sd) @ w[:-1] + w[-1])))


def identity_gender(ids: np.ndarray, male: np.ndarray) -> np.ndarray:
    """Per-photo 1 female / 0 male / -1 unknown by majority vote of the annotated photos (male: +1/-1, 0 unknown)."""
    out = np.full(len(ids), -1, np.int8)
    for i in np.unique(ids[male != 0]):
        s = int(male[(ids == i) & (male != 0)].sum())
        if s != 0:
            out[ids == i] = 0 if s > 0 else 1
    return out


def mask_labels(lab: np.ndarray, lm: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """CelebAMask-HQ label maps [N, S, S] + landmarks -> {head: (target [N], known [N] bool)}."""
    s2 = lab.shape[1] * lab.shape[2]
    glasses, hat = (lab == 3).sum((1, 2)) / s2, (lab == 14).sum((1, 2)) / s2
    face = np.maximum(_dist(lm, 27, 8), 1.0)
    top = lm[:, 17:27, 1].min(1)
    frac = np.zeros(len(lab), np.float32)
    for i in range(len(lab)):  # hair share of the forehead band
        y1, x0, x1 = int(round(top[i])), int(round(lm[i, 19, 0])), int(round(lm[i, 24, 0]))
        y0 = max(int(round(top[i] - 0.25 * face[i])), 0)
        band = lab[i, y0:max(y1, y0 + 1), max(x0, 0):max(x1, x0 + 1)]
        frac[i] = (band == 13).mean() if band.size else 0.0
    return {"eyeglasses": ((glasses > 0.004).astype(np.float32), (glasses > 0.004) | (glasses == 0)),
            "hat": ((hat > 0.01).astype(np.float32), (hat > 0.01) | (hat == 0)),
            "bangs": ((frac > 0.35).astype(np.float32), (frac > 0.35) | (frac < 0.1))}


def build_labels(src: dict[str, dict], w_pseudo: float = 0.3) -> tuple[np.ndarray, np.ndarray, dict]:
    """Sources -> targets [N, H] float32, weights [N, H] float32 (0 = unknown), info (counts, smile model)."""
    ys, ws, info = [], [], {}
    col = {n: i for i, n in enumerate(HEADS)}
    cel = src.get("celeba_id")
    smile_params = None
    if cel is not None:
        a = cel["attrs"]
        ok = (np.abs(a).sum(1) > 0) & (cel["split"] == 0)
        if ok.sum() >= 20:
            smile_params, info["smile_from_landmarks"] = fit_smile_from_landmarks(
                smile_features(cel["landmarks"][ok]), (a[ok, ATTR_NAMES.index("Smiling")] > 0).astype(np.float32))
    for name, d in src.items():
        n = len(d["split"])
        y, w = np.zeros((n, len(HEADS)), np.float32), np.zeros((n, len(HEADS)), np.float32)

        def put(head, target, known, weight=1.0):
            y[known, col[head]] = np.asarray(target, np.float32)[known]
            w[known, col[head]] = weight

        every = np.ones(n, bool)
        put("yaw", d["pose"][:, 0], every)
        put("pitch", d["pose"][:, 1], every)
        put("mouth_open", mouth_open(d["landmarks"]), every)
        if smile_params is not None:
            put("smile", predict_smile(smile_params, smile_features(d["landmarks"])), every, w_pseudo)
        gender = d["gender"].astype(np.int8)
        if "attrs" in d and (np.abs(d["attrs"]).sum() > 0):
            a = d["attrs"]
            known = np.abs(a).sum(1) > 0
            gender = np.where(gender >= 0, gender, identity_gender(d["identity"], a[:, ATTR_NAMES.index("Male")]))
            for head, attr in CELEBA_HEADS.items():
                put(head, a[:, ATTR_NAMES.index(attr)] > 0, known)
            put("beard", a[:, ATTR_NAMES.index("No_Beard")] < 0, known)
        put("gender", gender == 1, gender >= 0)
        put("beard", np.zeros(n), (gender == 1) & (w[:, col["beard"]] == 0))
        put("age", d["age"], d["age"] >= 0)
        if "labels" in d:
            for head, (t, known) in mask_labels(d["labels"], d["landmarks"]).items():
                put(head, t, known)
        ys.append(y)
        ws.append(w)
        info[name] = {h: {"train": int(((w[:, i] > 0) & (d["split"] == 0)).sum()),
                          "val": int(((w[:, i] >= 1) & (d["split"] == 1)).sum())} for i, h in enumerate(HEADS)}
    info["smile_params"] = None if smile_params is None else smile_params.tolist()
    return np.concatenate(ys), np.concatenate(ws), info


# -------------------------------------------------------------------------------------------------- data

def load_sources(root: str, smoke: bool) -> dict[str, dict]:
    """Every 128 px source that exists; smoke: the first 160 photos of each (decoding only those)."""
    out = {}
    for s in SOURCES:
        if not shard_paths(s, SIZE, root):
            print(f"no {s}_{SIZE} shards under {root}; skipped", flush=True)
            continue
        if not smoke:
            out[s] = load_source(s, SIZE, root)
            continue
        raw = read_shard(shard_paths(s, SIZE, root)[0], decode=False)
        idx = np.concatenate([np.arange(128), np.flatnonzero(raw["split"] == 1)[:32]])
        if s == "celeba_id":  # make sure the smoke run sees CelebA attributes
            idx = np.concatenate([idx, np.flatnonzero(np.abs(raw["attrs"]).sum(1) > 0)[:64]])
        off = raw["offsets"]
        d = {k: v[idx] for k, v in raw.items() if k not in ("jpeg", "offsets") and len(v) == len(off) - 1}
        d["images"] = np.stack([decode_jpeg(raw["jpeg"][off[i]:off[i + 1]]) for i in idx])
        out[s] = d
    if not out:
        raise FileNotFoundError(f"no 128 px shards under {root}")
    return out


class Data:
    """All images (uint8, NHWC), targets and weights on the device; train / val index lists."""

    def __init__(self, root: str, dev: torch.device, smoke: bool, w_pseudo: float = 0.3):
        src = load_sources(root, smoke)
        y, w, self.info = build_labels(src, w_pseudo)
        self.dev = dev
        self.img = torch.from_numpy(np.concatenate([d["images"] for d in src.values()])).to(dev)  # [N, S, S, 3]
        self.y, self.w = torch.from_numpy(y).to(dev), torch.from_numpy(w).to(dev)
        split = torch.from_numpy(np.concatenate([d["split"] for d in src.values()]).astype(np.int64))
        self.source = np.concatenate([[s] * len(d["split"]) for s, d in src.items()])
        self.train = torch.nonzero(split == 0)[:, 0].to(dev)
        self.val = torch.nonzero(split == 1)[:, 0].to(dev)
        tr = self.train.cpu().numpy()
        self.stats = {}
        for i, (n, k, _) in enumerate(ATTRIBUTES):
            if k == "regression":
                m = w[tr, i] > 0
                v = y[tr][m, i] if m.any() else np.zeros(2, np.float32)
                self.stats[n] = [round(float(v.mean()), 4), round(float(max(v.std(), 1e-3)), 4)]

    def counts(self) -> dict:
        tr, va = self.train.cpu(), self.val.cpu()
        w = self.w.cpu()
        return {h: {"train": int((w[tr, i] > 0).sum()), "train_hard": int((w[tr, i] >= 1).sum()),
                    "val": int((w[va, i] >= 1).sum())} for i, h in enumerate(HEADS)}

    def describe(self) -> str:
        c = self.counts()
        return (f"{len(self.train)} train / {len(self.val)} val images; labelled (train/val): "
                + ", ".join(f"{h} {v['train']}/{v['val']}" for h, v in c.items()))

    def batch(self, idx: torch.Tensor, augment: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> images [B, 3, S, S] in [-1, 1], targets [B, H], weights [B, H]."""
        x = self.img[idx].permute(0, 3, 1, 2).float() / 127.5 - 1
        y, w = self.y[idx].clone(), self.w[idx]
        if augment:
            x, y = augment_batch(x, y)
        return x.contiguous(memory_format=torch.channels_last), y, w


def augment_batch(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Flip (yaw -> -yaw), small scale/shift, colour jitter; x [B, 3, S, S] in [-1, 1]."""
    b, dev = len(x), x.device
    flip = torch.rand(b, device=dev) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    yaw = HEADS.index("yaw")
    y[:, yaw] = torch.where(flip, -y[:, yaw], y[:, yaw])
    s = 1 + (torch.rand(b, device=dev) * 2 - 1) * 0.04
    t = (torch.rand(b, 2, device=dev) * 2 - 1) * (3 * 2 / x.shape[-1])
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, 0, 0], theta[:, 1, 1], theta[:, :, 2] = s, s, t
    x = F.grid_sample(x, F.affine_grid(theta, list(x.shape), align_corners=False), padding_mode="reflection",
                      align_corners=False)
    bright = (torch.rand(b, 1, 1, 1, device=dev) * 2 - 1) * 0.1
    contrast = 1 + (torch.rand(b, 1, 1, 1, device=dev) * 2 - 1) * 0.15
    sat = 1 + (torch.rand(b, 1, 1, 1, device=dev) * 2 - 1) * 0.2
    grey = x.mean(1, keepdim=True)
    x = grey + (x - grey) * sat
    mean = x.mean((1, 2, 3), keepdim=True)
    return ((x - mean) * contrast + mean + bright).clamp(-1, 1), y


# ---------------------------------------------------------------------------------------------- training

def head_losses(raw: torch.Tensor, y: torch.Tensor, w: torch.Tensor, net: AttributeNet) -> torch.Tensor:
    """Per-head loss [H]: BCE for binary heads, smooth L1 on normalised values for regression ones."""
    raw = raw.float()
    binary = net.is_binary
    yn = torch.where(binary, y, (y - net.mean) / net.std)
    bce = F.binary_cross_entropy_with_logits(raw, yn.clamp(0, 1), reduction="none")
    reg = F.smooth_l1_loss(raw, yn, reduction="none", beta=0.5)
    per = torch.where(binary, bce, reg) * w
    return per.sum(0) / w.sum(0).clamp(min=1.0)


class Run:
    def __init__(self, args, data: Data, dev: torch.device):
        self.args, self.dev = args, dev
        meta = self.load_meta()
        cfg = meta["config"] if meta else dict(SMOKE_NET if args.smoke else {}, stats=data.stats)
        cfg = {k: v for k, v in cfg.items() if not k.startswith("_")}
        self.net = AttributeNet(**cfg).to(dev).to(memory_format=torch.channels_last)
        self.ema = copy.deepcopy(self.net).eval().requires_grad_(False)
        self.opt = torch.optim.AdamW(self.net.parameters(), args.lr, betas=(0.9, 0.99), weight_decay=args.wd)
        self.step, self.nimg, self.train_seconds, self.sessions = 0, 0, 0.0, 0
        self.total_steps = args.total_steps
        if meta:
            t = load_file(self.path(".safetensors"))
            for name, mod in (("net", self.net), ("ema", self.ema)):
                mod.load_state_dict({k[len(name) + 1:]: v for k, v in t.items() if k.startswith(name + "/")})
            load_opt(self.opt, t, "opt")
            self.step, self.nimg = meta["step"], meta["nimg"]
            self.train_seconds, self.sessions = meta["train_seconds"], meta["sessions"]
            self.total_steps = self.total_steps or meta.get("total_steps", 0)
            print(f"resumed from {self.path('.json')} at step {self.step}", flush=True)
        self.sessions += 1

    def path(self, ext: str) -> str:
        return os.path.join(self.args.ckpt, "attributes" + ext)

    def load_meta(self) -> dict | None:
        if not os.path.exists(self.path(".json")):
            return None
        with open(self.path(".json")) as f:
            return json.load(f)

    def save(self) -> None:
        os.makedirs(self.args.ckpt, exist_ok=True)
        t = {f"{n}/{k}": v.detach().cpu().contiguous() for n, m in (("net", self.net), ("ema", self.ema))
             for k, v in m.state_dict().items()}
        t.update(opt_tensors(self.opt, "opt"))
        save_file(t, self.path(".safetensors.tmp"))
        os.replace(self.path(".safetensors.tmp"), self.path(".safetensors"))
        with open(self.path(".json"), "w") as f:
            json.dump({"config": self.net.config, "step": self.step, "nimg": self.nimg, "total_steps": self.total_steps,
                       "train_seconds": self.train_seconds, "sessions": self.sessions}, f, indent=2)

    def lr(self) -> float:
        warm = min(1.0, (self.step + 1) / 200)
        if not self.total_steps:
            return self.args.lr * warm
        return self.args.lr * warm * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * min(1.0, self.step / self.total_steps))))

    def train_step(self, data: Data) -> dict[str, torch.Tensor]:
        self.net.train()
        idx = data.train[torch.randint(len(data.train), (self.args.batch,), device=self.dev)]
        x, y, w = data.batch(idx, augment=True)
        for g in self.opt.param_groups:
            g["lr"] = self.lr()
        with torch.autocast(self.dev.type, dtype=torch.bfloat16, enabled=self.dev.type == "cuda"):
            raw = self.net.forward_raw(x)
        per = head_losses(raw, y, w, self.net)
        loss = per.sum()
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.net.parameters(), 5.0)
        self.opt.step()
        with torch.no_grad():
            decay = min(self.args.ema, (1 + self.step) / (10 + self.step))
            for pe, pm in zip(self.ema.parameters(), self.net.parameters()):
                pe.lerp_(pm, 1 - decay)
            for be, bm in zip(self.ema.buffers(), self.net.buffers()):
                be.copy_(bm)
        self.step += 1
        self.nimg += len(idx)
        return {"loss": loss.detach(), **{h: per[i].detach() for i, h in enumerate(HEADS)}}


# ------------------------------------------------------------------------------------------- eval/export

def auc(score: torch.Tensor, label: torch.Tensor) -> float | None:
    """Area under the ROC curve (rank statistic, ties averaged by random order; fine at this precision)."""
    pos, neg = int(label.sum()), int((1 - label).sum())
    if pos == 0 or neg == 0:
        return None
    ranks = torch.empty_like(score)
    ranks[score.argsort()] = torch.arange(1, len(score) + 1, dtype=score.dtype, device=score.device)
    return float((ranks[label > 0].sum() - pos * (pos + 1) / 2) / (pos * neg))


@torch.no_grad()
def predict(net: AttributeNet, data: Data, idx: torch.Tensor, batch: int = 512) -> dict[str, torch.Tensor]:
    outs = []
    for i in range(0, len(idx), batch):
        x, _, _ = data.batch(idx[i:i + batch], augment=False)
        with torch.autocast(data.dev.type, dtype=torch.bfloat16, enabled=data.dev.type == "cuda"):
            outs.append(net.forward_raw(x).float())
    return net.decode(torch.cat(outs)) if outs else {}


@torch.no_grad()
def evaluate(net: AttributeNet, data: Data) -> dict:
    """Val split, hard labels only: MAE (natural units) and Pearson r for regressions, accuracy / AUC /
    positive rate for binaries; plus the flip-consistency of yaw (|yaw(x) + yaw(flip x)|, degrees)."""
    net.eval()
    idx = data.val
    pred = predict(net, data, idx)
    res: dict = {}
    for i, (h, kind, unit) in enumerate(ATTRIBUTES):
        m = data.w[idx, i] >= 1
        n = int(m.sum())
        if n == 0:
            res[h] = {"n": 0}
            continue
        p, t = pred[h][m], data.y[idx, i][m]
        if kind == "regression":
            r = float(torch.corrcoef(torch.stack([p, t]))[0, 1]) if n > 2 else float("nan")
            res[h] = {"n": n, "mae": round(float((p - t).abs().mean()), 4), "r": round(r, 4), "unit": unit,
                      "label_std": round(float(t.std()), 4) if n > 1 else 0.0}
        else:
            a = auc(p, t)
            res[h] = {"n": n, "acc": round(float(((p > 0.5) == (t > 0.5)).float().mean()), 4),
                      "auc": None if a is None else round(a, 4), "pos_rate": round(float(t.mean()), 4)}
    x, _, _ = data.batch(idx[:256], augment=False)
    if len(x):
        yaw = net(x)["yaw"] + net(x.flip(3))["yaw"]
        res["yaw_flip_consistency_deg"] = round(float(yaw.abs().mean()), 3)
    return res


def grid_png(net: AttributeNet, data: Data, path: str, n: int = 16) -> None:
    """Val faces in a 4-wide grid, each captioned with its predicted age, gender, smile, glasses, yaw."""
    from PIL import Image, ImageDraw

    idx = data.val[torch.linspace(0, len(data.val) - 1, min(n, len(data.val))).long()]
    pred = predict(net, data, idx)
    cols = 4
    rows = (len(idx) + cols - 1) // cols
    canvas = Image.new("RGB", (cols * SIZE, rows * (SIZE + 24)), "white")
    draw = ImageDraw.Draw(canvas)
    for k in range(len(idx)):
        r, c = divmod(k, cols)
        canvas.paste(Image.fromarray(data.img[idx[k]].cpu().numpy()), (c * SIZE, r * (SIZE + 24)))
        t = (f"age {pred['age'][k]:.0f} F {pred['gender'][k]:.2f} sm {pred['smile'][k]:.2f}\n"
             f"gl {pred['eyeglasses'][k]:.2f} yaw {pred['yaw'][k]:+.0f} bg {pred['bangs'][k]:.2f}")
        draw.multiline_text((c * SIZE + 2, r * (SIZE + 24) + SIZE), t, fill="black", spacing=0)
    canvas.save(path)


def model_card(run: Run, data: Data, metrics: dict, minutes: float) -> str:
    n = sum(p.numel() for p in run.ema.parameters()) / 1e6
    c = data.counts()
    lines = []
    for h, kind, unit in ATTRIBUTES:
        m = metrics.get(h, {})
        score = (f"MAE {m.get('mae')} (r {m.get('r')})" if kind == "regression"
                 else f"acc {m.get('acc')}, AUC {m.get('auc')}") if m.get("n") else "no val labels"
        lines.append(f"| {h} | {kind} ({unit}) | {c[h]['train_hard']} (+{c[h]['train'] - c[h]['train_hard']} soft) "
                     f"| {c[h]['val']} | {score} |")
    table = "\n".join(lines)
    return f"""---
license: other
license_name: non-commercial-research
tags: [face-attributes, interfacegan, celeba, utkface]
---
# FaceLab attribute network

Small ResNet ({n:.2f}M parameters) on 128x128 canonical aligned face crops in [-1, 1] (core.face alignment, the
frame of FaceLab's 128 px StyleGAN2) with one output per attribute: `AttributeNet.from_pretrained(folder)(x)` ->
{{name: [N]}} (probabilities for binary heads, natural units for regressions). Its job is to label generator
samples for InterFaceGAN attribute directions (`train/directions.py`); it is not a validated demographic
classifier and must not be used to make decisions about people. Age and gender labels are UTKFace's
(apparent, binary gender as annotated), with their biases.

## Data and labels
CelebA identities (celeba_id_128), CelebAMask-HQ (celebamask_128) and UTKFace (utkface_128), split 0 for
training, split 1 for validation. Age: UTKFace; gender: UTKFace + CelebA `Male` spread per identity; smile:
CelebA `Smiling` + soft labels from a landmark logistic regression; eyeglasses / hat / bangs: CelebA attributes +
CelebAMask-HQ label maps; beard, blond / black hair: CelebA attributes (few); yaw / pitch: solvePnP head pose of
the dlib landmarks; mouth_open: inner-lip gap / face height from the landmarks.

| head | kind | train labels | val labels | val metric |
|---|---|---|---|---|
{table}

## Terms
Non-commercial research use only: CelebA and CelebAMask-HQ (MMLab CUHK, non-commercial research and educational
purposes) and UTKFace (non-commercial research). The weights inherit these terms.

## Metrics
Val split, hard labels only; full numbers in `config.json` -> metrics and `attributes_metrics.json`.

Training: {run.step} steps ({run.nimg / 1000:.1f} kimg, {run.train_seconds / 60:.1f} min, {run.sessions} session(s)),
batch {run.args.batch}, AdamW lr {run.args.lr} wd {run.args.wd}, cosine decay, flips (yaw negated), small affine
and colour jitter, bf16, EMA {run.args.ema} weights, fp16.

## Retrain
    python -m train.attributes --shards .cache/shards --ckpt .cache/ckpt/attributes --out out/attributes \\
        --minutes {minutes:.0f} --device cuda
"""


def main(argv=None) -> None:
    args = parse_args(argv)
    t_start = time.time()
    torch.manual_seed(args.seed)
    dev = torch.device(args.device)
    if args.smoke:
        args.batch = 16
        torch.set_num_threads(1)
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    data = Data(args.shards, dev, args.smoke, args.w_pseudo)
    print(data.describe(), flush=True)
    if "smile_from_landmarks" in data.info:
        print(f"smile pseudo-labels from landmarks: {data.info['smile_from_landmarks']}", flush=True)
    run = Run(args, data, dev)
    print(f"AttributeNet {sum(p.numel() for p in run.net.parameters()) / 1e6:.2f}M params, batch {args.batch}",
          flush=True)
    end = t_start + args.minutes * 60 - (5 if args.smoke else 25)
    last_log = last_ckpt = t_loop = time.time()
    sums, n, k = {}, 0, 0
    while True:
        if (args.smoke and k >= 5) or (not args.smoke and time.time() >= end):
            break
        t0 = time.time()
        logs = run.train_step(data)
        run.train_seconds += time.time() - t0
        k += 1
        n += 1
        if not run.total_steps and k == 50:  # estimate the cosine length from the measured speed
            run.total_steps = run.step + int((end - time.time()) / ((time.time() - t_loop) / k))
            print(f"schedule: {run.total_steps} steps", flush=True)
        for key, v in logs.items():
            sums[key] = sums.get(key, 0) + v
        if time.time() - last_log > 30 or args.smoke:
            dt = time.time() - last_log
            print(f"step {run.step} kimg {run.nimg / 1000:.1f} {n / max(dt, 1e-6):.2f} it/s lr {run.lr():.2e} "
                  + " ".join(f"{key} {float(v) / n:.3f}" for key, v in sums.items()), flush=True)
            sums, n, last_log = {}, 0, time.time()
        if time.time() - last_ckpt > 240:
            run.save()
            last_ckpt = time.time()
    run.save()
    print(f"trained {k} steps this session in {time.time() - t_loop:.0f}s; evaluating", flush=True)
    metrics = evaluate(run.ema, data)
    metrics.update(step=run.step, kimg=round(run.nimg / 1000, 2), labels=data.counts(),
                   smile_from_landmarks=data.info.get("smile_from_landmarks"))
    print(json.dumps(metrics), flush=True)
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "attributes_metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    grid_png(run.ema, data, os.path.join(args.out, "attributes_grid.png"))
    summary = {h: metrics[h] for h in HEADS if h in metrics}
    files = run.ema.save_pretrained(os.path.join(args.out, "attributes"), card=model_card(run, data, metrics, args.minutes),
                                    extra_config={"metrics": summary, "training": {"step": run.step}})
    print(f"wrote {args.out}: attributes/{files}, attributes_metrics.json, attributes_grid.png; "
          f"done in {time.time() - t_start:.0f}s", flush=True)


if __name__ == "__main__":
    main()
