"""Face-parser evaluation on the CelebAMask-HQ val split, clean and with synthetic occluders.

    python -m train.eval_parser [--checkpoint checkpoints/parser] [--shards .cache/shards] [--json OUT]

Prints per-class F1 / IoU, mean F1 over core.labels.FACE_CLASSES, mIoU (over
classes present in the ground truth) and the IoU of the visible face
(VISIBLE_FACE, occluder excluded on both sides: a pasted occluder pixel is not
visible face). Scores are pooled over all val pixels (one confusion matrix),
the usual CelebAMask-HQ protocol; `visible_iou_img` is the per-image mean.
The occluded set is built once with a fixed seed in fixed chunks, so it is the
same on CPU and GPU and for any model batch size. The metric code here is also
what `train.parser` runs at the end of training.
"""
from __future__ import annotations

import argparse
import json

import numpy as np
import torch

from core.labels import CLASSES, FACE_CLASSES, NUM_CLASSES, VISIBLE_FACE
from train.occluders import OccluderBank, apply_occluders

OCCLUDED_SEED = 1234
OCCLUDED_CHUNK = 16  # occluders are drawn per chunk of this many images, independent of the model batch


def occluded_copy(images: torch.Tensor, labels: torch.Tensor, bank: OccluderBank,
                  seed: int = OCCLUDED_SEED) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 [N, 3, S, S] / uint8 [N, S, S] -> the same with occluders on every image (deterministic)."""
    g = torch.Generator().manual_seed(seed)
    out_i, out_l = [], []
    for i in range(0, len(images), OCCLUDED_CHUNK):
        img = images[i:i + OCCLUDED_CHUNK].float() / 255
        img, lab = apply_occluders(img, labels[i:i + OCCLUDED_CHUNK].long(), bank, p=1.0, g=g)
        out_i.append((img * 255).round().to(torch.uint8))
        out_l.append(lab.to(torch.uint8))
    return torch.cat(out_i), torch.cat(out_l)


class Scores:
    """Accumulates a confusion matrix and per-image visible-face IoU."""

    def __init__(self, device):
        self.conf = torch.zeros(NUM_CLASSES * NUM_CLASSES, dtype=torch.int64, device=device)
        self.vis = torch.tensor(VISIBLE_FACE, device=device)
        self.img_iou: list[torch.Tensor] = []

    def update(self, pred: torch.Tensor, gt: torch.Tensor) -> None:
        """pred, gt int64 [N, H, W]."""
        self.conf += torch.bincount((gt * NUM_CLASSES + pred).flatten(), minlength=NUM_CLASSES ** 2)
        pv, gv = torch.isin(pred, self.vis), torch.isin(gt, self.vis)
        inter = (pv & gv).flatten(1).sum(1).float()
        union = (pv | gv).flatten(1).sum(1).float()
        self.img_iou.append(torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(union)))

    def summary(self) -> dict:
        conf = self.conf.view(NUM_CLASSES, NUM_CLASSES).double().cpu().numpy()  # [gt, pred]
        tp = np.diag(conf)
        gt_n, pred_n = conf.sum(1), conf.sum(0)
        iou = tp / np.maximum(gt_n + pred_n - tp, 1)
        f1 = 2 * tp / np.maximum(gt_n + pred_n, 1)
        present = gt_n > 0
        v = list(VISIBLE_FACE)
        v_tp = conf[np.ix_(v, v)].sum()
        v_union = conf[v].sum() + conf[:, v].sum() - v_tp
        return {
            "per_class": {CLASSES[c]: {"f1": float(f1[c]), "iou": float(iou[c]), "gt_pixels": int(gt_n[c])}
                          for c in range(NUM_CLASSES) if present[c] or pred_n[c] > 0},
            "mean_f1_face": float(np.mean(f1[list(FACE_CLASSES)])),
            "miou": float(np.mean(iou[present])),
            "visible_iou": float(v_tp / max(v_union, 1)),
            "visible_iou_img": float(torch.cat(self.img_iou).mean()) if self.img_iou else 0.0,
            "pixel_acc": float(tp.sum() / max(conf.sum(), 1)),
        }


@torch.no_grad()
def score(model, images: torch.Tensor, labels: torch.Tensor, batch: int = 32) -> dict:
    """Run model on uint8 images [N, 3, S, S] (on the model's device) and score against labels [N, S, S]."""
    dev = images.device
    scores = Scores(dev)
    for i in range(0, len(images), batch):
        x = (images[i:i + batch].float() / 255).contiguous(memory_format=torch.channels_last)
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=dev.type == "cuda"):
            pred = model(x).float().argmax(1)
        scores.update(pred, labels[i:i + batch].long())
    return scores.summary()


def evaluate(model, val_images, val_labels, bank: OccluderBank, batch: int = 32) -> dict:
    """{'clean': summary, 'occluded': summary} on the val split (model in eval mode, same device)."""
    was = model.training
    model.eval()
    occ_i, occ_l = occluded_copy(val_images, val_labels, bank)
    out = {"clean": score(model, val_images, val_labels, batch), "occluded": score(model, occ_i, occ_l, batch),
           "val_images": int(len(val_images))}
    model.train(was)
    return out


def format_table(metrics: dict) -> str:
    clean, occ = metrics["clean"], metrics["occluded"]
    lines = [f"{'class':<12} {'F1 clean':>9} {'IoU clean':>9} {'F1 occ':>9} {'IoU occ':>9}"]
    for name in CLASSES:
        c, o = clean["per_class"].get(name), occ["per_class"].get(name)
        if c is None and o is None:
            continue
        cells = [f"{d['f1']:9.4f} {d['iou']:9.4f}" if d else f"{'-':>9} {'-':>9}" for d in (c, o)]
        lines.append(f"{name:<12} {cells[0]} {cells[1]}")
    rows = (("mean_f1_face", "mean F1 over the face classes"), ("miou", "mIoU (classes in GT)"),
            ("visible_iou", "visible-face IoU (pooled)"), ("visible_iou_img", "visible-face IoU (per image)"),
            ("pixel_acc", "pixel accuracy"))
    for key, label in rows:
        lines.append(f"{label:<32} clean {clean[key]:.4f}   occluded {occ[key]:.4f}")
    lines.append(f"val images: {metrics['val_images']}")
    return "\n".join(lines)


def load_eval_data(shards: str, device, limit: int | None = None):
    """(val images uint8 [N, 3, S, S], val labels uint8 [N, S, S], OccluderBank from the train split)."""
    from train.shards import load_source

    d = load_source("celebamask", 256, shards)
    split = d["split"]
    imgs = torch.from_numpy(d["images"]).permute(0, 3, 1, 2).contiguous()
    labs = torch.from_numpy(d["labels"])
    val = np.nonzero(split == 1)[0][:limit]
    train = np.nonzero(split == 0)[0]
    masked = lm = None
    try:
        m = load_source("masked", 256, shards)
        masked = torch.from_numpy(m["images"]).permute(0, 3, 1, 2).contiguous().to(device)
        lm = torch.from_numpy(m["landmarks"]).to(device)
    except FileNotFoundError:
        print("no `masked` shards: mask occluders (b) are left out", flush=True)
    bank = OccluderBank.build(imgs[train].to(device), labs[train].to(device), masked, lm)
    return imgs[val].to(device), labs[val].to(device), bank


class FlipTTA(torch.nn.Module):
    """The parser with test-time flip (FaceParser.forward_flip) as its forward."""

    def __init__(self, parser):
        super().__init__()
        self.parser = parser

    def forward(self, x):
        return self.parser.forward_flip(x)


def main(argv=None) -> None:
    from core.models.parser import FaceParser

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", default="checkpoints/parser")
    ap.add_argument("--shards", default=".cache/shards")
    ap.add_argument("--json", default=None, help="also write the metrics here")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--limit", type=int, default=None, help="only the first N val images")
    ap.add_argument("--flip", action="store_true", help="test-time flip (what the app does)")
    args = ap.parse_args(argv)
    dev = torch.device(args.device)
    model = FaceParser.from_pretrained(args.checkpoint, device=dev).to(memory_format=torch.channels_last)
    if args.flip:
        model = FlipTTA(model)
    val_i, val_l, bank = load_eval_data(args.shards, dev, args.limit)
    metrics = evaluate(model, val_i, val_l, bank)
    print(format_table(metrics), flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(metrics, f, indent=2)


if __name__ == "__main__":
    main()
