"""Evaluate Mask2Face (issue 4) on the CelebAMask-HQ val split through the product pipeline (core.pipelines.mask2face).

    python -m train.eval_mask2face [--n 450] [--device cpu] [--checkpoint FOLDER] [--json OUT] [--grid PNG]

Per val face (256 px aligned crop + its ground-truth mask from the shards, split 1):
 - mask consistency: the project's parser (`core.loading.load_model("parser")`, test-time flip as in the app) labels each
   generated face; IoU against the input mask for every class present in the input mask, averaged per image,
   then over images (`miou`); also the dataset-level mIoU (intersections and unions summed over images, per
   class; `miou_dataset`). Occluder counts as background on both sides (the model draws it so). Measured for
   the seed outputs (mask + styles from the prior, `--seeds` per mask) and for the reconstructions, and for
   the real photos as the parser's own ceiling: the generator cannot score above what the parser gets on
   real faces.
 - reconstruction from the photo's own mask + styles: SSIM (Gaussian 11x11, core.metrics.ssim) and PSNR
   on the whole 256 crop.
 - identity kept under style-from-self: dlib's descriptors (core.face) of the reconstruction and of the real
   crop, both at the real crop's landmarks (the mask fixes the geometry): cosine similarity, distance, and
   the share under dlib's same-person distance 0.6; `other_person_distance` (consecutive val faces, mostly
   different people) is the baseline the reconstruction distance should be far below.
 - diversity: mean pairwise L1 ([0, 1] scale) between the `--seeds` outputs of one mask.
 - face found: share of generated crops (seed outputs; reconstructions separately) where core.face's
   detector (HOG, CNN fallback; `--hog-only` skips the slow CNN) finds a face.
 - latency: median wall time per image of `generate` (batch 1, mask -> face from a seed) and of the
   style path (encode a crop + generate), after warm-up, on --device.
Goals (issue 4): seed-output mIoU >= 0.75, face found >= 98%.
Without dlib (the GPU machine) the two dlib metrics are skipped and say so.
`--grid PNG` writes rows of: mask | output (seed) | reference (another val face) | style transfer (the row's
mask in the reference's styles), for the README.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
import torch

from core.labels import OCCLUDER, colorize
from core.metrics import SAME_PERSON, psnr, ssim_uint8
from core.models.mask2face import MODEL_CLASSES

GOALS = {"seed_miou": 0.75, "seed_face_found": 0.98}


def load_val(shards: str, n: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Val crops [N, 256, 256, 3] uint8 and labels [N, 256, 256] uint8 (split 1 of the celebamask shards)."""
    from train.shards import decode_jpeg, read_shard, shard_paths

    paths = shard_paths("celebamask", 256, shards)
    if not paths:
        raise SystemExit(f"no celebamask 256 px shards under {shards}; run `python -m train.data`")
    images, labels = [], []
    for path in paths:                                   # decode the val JPEGs only
        part = read_shard(path, decode=False)
        jpeg, off = part["jpeg"], part["offsets"]
        for i in np.flatnonzero(part["split"] == 1):
            if n is not None and len(images) >= n:
                break
            images.append(decode_jpeg(jpeg[off[i]:off[i + 1]]))
            labels.append(part["labels"][i])
    return np.stack(images), np.stack(labels)


def load_model(checkpoint: str | None, device: str):
    if checkpoint:
        from core.models.mask2face import Mask2Face

        return Mask2Face.from_pretrained(checkpoint, device=device)
    from core.loading import load_model as load_registered

    return load_registered("mask2face", device=device)


def as_model_labels(labels: np.ndarray) -> np.ndarray:
    return np.where(labels == OCCLUDER, 0, labels)


class IoU:
    """Per-image mIoU over the classes of the target, and dataset-level sums per class."""

    def __init__(self):
        self.per_image: list[float] = []
        self.inter = np.zeros(MODEL_CLASSES)
        self.union = np.zeros(MODEL_CLASSES)

    def add(self, pred: np.ndarray, target: np.ndarray) -> None:
        pred, target = as_model_labels(pred), as_model_labels(target)
        ious = []
        for c in np.unique(target):
            p, t = pred == c, target == c
            i, u = np.logical_and(p, t).sum(), np.logical_or(p, t).sum()
            ious.append(i / u)
        for c in range(MODEL_CLASSES):
            p, t = pred == c, target == c
            self.inter[c] += np.logical_and(p, t).sum()
            self.union[c] += np.logical_or(p, t).sum()
        self.per_image.append(float(np.mean(ious)))

    def result(self, prefix: str) -> dict[str, float]:
        valid = self.union > 0
        return {f"{prefix}_miou": float(np.mean(self.per_image)),
                f"{prefix}_miou_dataset": float(np.mean(self.inter[valid] / self.union[valid]))}


def have_dlib() -> bool:
    try:
        import dlib  # noqa: F401
        return True
    except ImportError:
        return False


@torch.no_grad()
def evaluate(model, images: np.ndarray, labels: np.ndarray, seeds: int, use_dlib: bool, cnn: bool = True) -> dict:
    from core import face as F
    from core.pipelines import mask2face as M
    from core.pipelines.parse import parse_crops

    seed_iou, rec_iou, real_iou = IoU(), IoU(), IoU()
    ssims, psnrs, diversity, similarity, distance, other = [], [], [], [], [], []
    previous = None
    found_seed, found_rec, no_real_face = [], [], 0
    t0 = last = time.time()
    for i, (crop, mask) in enumerate(zip(images, labels)):
        outs = [M.generate(mask, seed=s, model=model).image for s in range(seeds)]
        rec = M.generate(mask, style_image=crop, style_labels=mask, seed=0, model=model).image
        parsed = parse_crops(np.stack(outs + [rec, crop]))                   # [seeds + 2, 256, 256]
        for p in parsed[:seeds]:
            seed_iou.add(p, mask)
        rec_iou.add(parsed[seeds], mask)
        real_iou.add(parsed[seeds + 1], mask)
        ssims.append(ssim_uint8(rec, crop))
        psnrs.append(psnr(rec, crop))
        x = np.stack(outs).astype(np.float32) / 255.0
        diversity.append(float(np.mean([np.abs(x[a] - x[b]).mean() for a in range(seeds) for b in range(a + 1, seeds)]))
                         if seeds > 1 else 0.0)
        if use_dlib:
            found_seed += [len(F.detect_faces(o, cnn_fallback=cnn)) > 0 for o in outs]
            found_rec.append(len(F.detect_faces(rec, cnn_fallback=cnn)) > 0)
            real_faces = F.detect_faces(crop, cnn_fallback=cnn)
            if real_faces:
                d_real = F.face_descriptor(crop, real_faces[0])
                d_rec = F.face_descriptor(rec, real_faces[0])
                similarity.append(F.identity_similarity(d_real, d_rec))
                distance.append(F.identity_distance(d_real, d_rec))
                if previous is not None:                         # two different val people: the baseline
                    other.append(F.identity_distance(d_real, previous))
                previous = d_real
            else:
                no_real_face += 1
        if time.time() - last >= 30 or i + 1 == len(images):
            last = time.time()
            print(f"{i + 1}/{len(images)} faces, {(last - t0) / (i + 1):.2f} s/face; seed mIoU so far "
                  f"{np.mean(seed_iou.per_image):.3f}, recon SSIM {np.mean(ssims):.3f}", flush=True)
    m = dict(images=len(images), seeds_per_mask=seeds)
    m.update(seed_iou.result("seed"))
    m.update(rec_iou.result("recon"))
    m.update(real_iou.result("real_photo"))
    m.update(recon_ssim=float(np.mean(ssims)), recon_psnr=float(np.mean(psnrs)),
             seed_diversity_l1=float(np.mean(diversity)))
    if use_dlib:
        m.update(seed_face_found=float(np.mean(found_seed)), recon_face_found=float(np.mean(found_rec)),
                 recon_identity_similarity=float(np.mean(similarity)) if similarity else None,
                 recon_identity_distance=float(np.mean(distance)) if distance else None,
                 recon_same_person=float(np.mean(np.array(distance) < SAME_PERSON)) if distance else None,
                 other_person_distance=float(np.mean(other)) if other else None,
                 real_crops_without_face=no_real_face, detector="hog+cnn" if cnn else "hog")
    else:
        m["dlib"] = "not installed: face-found and identity metrics skipped"
    return m


@torch.no_grad()
def latency(model, crop: np.ndarray, mask: np.ndarray, runs: int, device: str) -> dict:
    from core.pipelines import mask2face as M

    def timed(fn) -> float:
        for k in range(3):                                                     # warm-up
            fn(k)
        times = []
        for k in range(runs):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            t = time.perf_counter()
            fn(k)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t)
        return statistics.median(times) * 1000

    seed_ms = timed(lambda k: M.generate(mask, seed=k, model=model))
    style_ms = timed(lambda k: M.generate(mask, style_image=crop, style_labels=mask, seed=k, model=model))
    return {"latency_device": device, "latency_threads": torch.get_num_threads(), "latency_runs": runs,
            "latency_seed_ms": seed_ms, "latency_style_ms": style_ms}


@torch.no_grad()
def write_grid(model, images: np.ndarray, labels: np.ndarray, path: str, rows: int = 6) -> None:
    """Rows: mask | output (seed = row) | reference (next row's photo) | style transfer (mask, reference styles)."""
    import cv2
    from PIL import Image

    from core.pipelines import mask2face as M

    rows = min(rows, len(images))
    lines = []
    for r in range(rows):
        ref = (r + 1) % len(images)
        out = M.generate(labels[r], seed=r, model=model).image
        transfer = M.generate(labels[r], style_image=images[ref], style_labels=labels[ref], seed=r, model=model).image
        lines.append(np.concatenate([colorize(labels[r]), out, images[ref], transfer], 1))
    grid = np.concatenate(lines, 0)
    header = np.full((28, grid.shape[1], 3), 255, np.uint8)
    for k, title in enumerate(("mask", "output (seed)", "reference", "style transfer")):
        cv2.putText(header, title, (k * 256 + 8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1, cv2.LINE_AA)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(np.concatenate([header, grid], 0)).save(path)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=450, help="val faces to score (the split has 450)")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--checkpoint", default=None, help="a save_pretrained folder (default: hub model 'mask2face')")
    ap.add_argument("--shards", default=".cache/shards")
    ap.add_argument("--seeds", type=int, default=4, help="seed outputs per mask (diversity, mIoU, face found)")
    ap.add_argument("--latency-runs", type=int, default=20)
    ap.add_argument("--hog-only", action="store_true",
                    help="face found / identity with dlib's HOG detector only (faster; the app also tries the CNN)")
    ap.add_argument("--json", default=os.path.join(".cache", "eval_mask2face.json"))
    ap.add_argument("--grid", default=None, metavar="PNG", help="also write the README grid here")
    args = ap.parse_args(argv)
    model = load_model(args.checkpoint, args.device)
    images, labels = load_val(args.shards, args.n)
    print(f"{len(images)} val faces, model {args.checkpoint or 'hub:mask2face'} on {args.device}", flush=True)
    metrics = evaluate(model, images, labels, args.seeds, have_dlib(), cnn=not args.hog_only)
    metrics.update(latency(model, images[0], labels[0], args.latency_runs, args.device))
    metrics["goals"] = {k: {"goal": v, "met": metrics.get(k) is not None and metrics[k] >= v}
                        for k, v in GOALS.items()}
    print(json.dumps(metrics, indent=2), flush=True)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w") as f:
            json.dump(metrics, f, indent=2)
    if args.grid:
        write_grid(model, images, labels, args.grid)
        print(f"grid: {args.grid}", flush=True)


if __name__ == "__main__":
    main()
