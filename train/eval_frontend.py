"""Evaluate the face front-end (issue 17): ours (learned, dlib fallback) against dlib alone, on held-out photos.

    python -m train.eval_frontend [--shards .cache/fe_shards] [--data ../shared/data] [--n 100] [--grid out/fe.png]

Three sets, none trained on (the val split of train.frontend_data / train.data.assign_split, by person):
1. synthetic occluders on held-out faces (CelebAMask-HQ, CelebA identities, UTKFace; `--n` of each): a face mask
   cut from a real masked photo, eyeglasses/sunglasses cut from CelebAMask-HQ, hand-like and other shapes, and
   none. Found = a face whose 68-point box overlaps the clean labels' box by IoU >= 0.5. NME = mean point error
   over the inter-ocular distance (outer eye corners) against dlib's points on the same clean face.
2. held-out real masked photos (whole scenes, RWMFD + with_mask): found = at least one face (the grid written by
   --grid shows each found box; it stays in out/, the photos' terms forbid copying them into the repository).
3. held-out CFP people: profile and frontal photos, found = at least one face; the yaw the landmarks give.
Also: yaw/pitch of ours against dlib's on the clean frontal faces of set 1.
"""
from __future__ import annotations

import argparse
import glob
import json
import os

import numpy as np
import torch

from train.frontend_data import list_items

OCCLUDERS = ("none", "mask", "glasses", "hand/shapes")


def landmark_box(p: np.ndarray) -> np.ndarray:
    return np.concatenate([p.min(0), p.max(0)])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    lt, rb = np.maximum(a[:2], b[:2]), np.minimum(a[2:], b[2:])
    inter = float(np.prod(np.clip(rb - lt, 0, None)))
    area = lambda x: float(np.prod(np.clip(x[2:] - x[:2], 0, None)))  # noqa: E731
    return inter / max(1e-6, area(a) + area(b) - inter)


def best_match(faces, gt: np.ndarray):
    """The detected face whose landmark box overlaps the ground truth's most, if IoU >= 0.5."""
    best, best_iou = None, 0.5
    g = landmark_box(gt)
    for f in faces:
        v = iou(landmark_box(f.landmarks), g)
        if v >= best_iou:
            best, best_iou = f, v
    return best


def nme(pred: np.ndarray, gt: np.ndarray) -> float:
    return float(np.linalg.norm(pred - gt, axis=1).mean() / max(1.0, np.linalg.norm(gt[36] - gt[45])) * 100)


def occluded_faces(shards: str, n: int, seed: int = 0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{occluder: (images uint8 [M, 256, 256, 3], clean points [M, 68, 2])} for n held-out faces per source."""
    import torch.nn.functional as Fn

    from train import occluders as O
    from train.frontend import hull_labels
    from train.shards import read_shard

    imgs, pts = [], []
    for source in ("celebamask", "celeba_id", "utkface"):
        parts = [read_shard(p) for p in sorted(glob.glob(os.path.join(shards, f"{source}_*.npz")))]
        im = np.concatenate([p["images"] for p in parts])
        lm = np.concatenate([p["landmarks"] for p in parts])
        val = np.nonzero(np.concatenate([p["split"] for p in parts]) == 1)[0][:n]
        x = torch.from_numpy(im[val]).permute(0, 3, 1, 2).float() / 255
        k = 256 / x.shape[-1]
        imgs.append(Fn.interpolate(x, size=256, mode="bilinear", align_corners=False) if k != 1 else x)
        pts.append(torch.from_numpy(lm[val]).float() * k)
    img, pt = torch.cat(imgs), torch.cat(pts)
    bank = occluder_bank(shards)
    out = {}
    g = torch.Generator().manual_seed(seed)
    use = torch.ones(len(img), dtype=torch.bool)
    for name in OCCLUDERS:
        lab = hull_labels(pt, 256)
        if name == "none":
            x = img
        elif name == "mask":
            x, _ = O.paste_masks(img, lab, bank, use, g)
        elif name == "glasses":
            probs = O.REGION_PROBS
            O.REGION_PROBS = (1.0, 0.0, 0.0, 0.0)   # eyeglasses class only
            try:
                x, _ = O.paste_regions(img, lab, bank, use, g)
            finally:
                O.REGION_PROBS = probs
        else:
            x, _ = O.random_shapes(img, lab, use, g)
        out[name] = ((x.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy(), pt.numpy())
    return out


def occluder_bank(shards: str):
    from train.occluders import OccluderBank
    from train.shards import read_shard

    cm = [read_shard(p) for p in sorted(glob.glob(os.path.join(shards, "celebamask_256_*.npz")))]
    tr = np.concatenate([p["split"] for p in cm]) == 0
    images = torch.from_numpy(np.concatenate([p["images"] for p in cm])[tr]).permute(0, 3, 1, 2).contiguous()
    labels = torch.from_numpy(np.concatenate([p["labels"] for p in cm])[tr])
    mk = [read_shard(p) for p in sorted(glob.glob(os.path.join(shards, "masked_256_*.npz")))]
    mtr = np.concatenate([p["split"] for p in mk]) == 0
    masked = torch.from_numpy(np.concatenate([p["images"] for p in mk])[mtr]).permute(0, 3, 1, 2).contiguous()
    mlm = torch.from_numpy(np.concatenate([p["landmarks"] for p in mk])[mtr])
    return OccluderBank.build(images, labels, masked, mlm)


def eval_synthetic(sets: dict) -> dict:
    from core import face as F

    res = {}
    for name, (images, gts) in sets.items():
        row = {}
        for method, fn in (("ours", F.detect_faces), ("dlib", F.detect_faces_dlib)):
            found, errs, yaw_d, pitch_d = 0, [], [], []
            for img, gt in zip(images, gts):
                m = best_match(fn(np.ascontiguousarray(img)), gt)
                if m is not None:
                    found += 1
                    errs.append(nme(m.landmarks, gt))
            row[method] = {"found": found / len(images), "nme": float(np.mean(errs)) if errs else None,
                           "nme_median": float(np.median(errs)) if errs else None, "n": len(images)}
        res[name] = row
        print(name, json.dumps(row), flush=True)
    return res


def eval_pose(images: np.ndarray) -> dict:
    """Yaw/pitch of ours vs dlib on clean faces that dlib calls frontal-ish (|yaw| < 30)."""
    from core import face as F

    dy, dp = [], []
    for img in images:
        img = np.ascontiguousarray(img)
        a, b = F.detect_faces(img), F.detect_faces_dlib(img)
        if a and b and a[0].detector == "learned" and abs(b[0].yaw) < 30:
            dy.append(abs(a[0].yaw - b[0].yaw))
            dp.append(abs(a[0].pitch - b[0].pitch))
    return {"n": len(dy), "median_abs_yaw_diff": float(np.median(dy)), "median_abs_pitch_diff": float(np.median(dp))}


def eval_photos(paths: list[str]) -> dict:
    from core import face as F
    from core.imageio import load_image

    res = {}
    for method, fn in (("ours", F.detect_faces), ("dlib", F.detect_faces_dlib)):
        found, yaws, detectors = 0, [], {}
        for p in paths:
            faces = fn(load_image(p))
            if faces:
                found += 1
                yaws.append(abs(faces[0].yaw))
                detectors[faces[0].detector] = detectors.get(faces[0].detector, 0) + 1
        res[method] = {"found": found / max(1, len(paths)), "n": len(paths),
                       "median_abs_yaw": float(np.median(yaws)) if yaws else None, "detector": detectors}
        print(method, json.dumps(res[method]), flush=True)
    return res


def grid(paths: list[str], out: str, cols: int = 10, tile: int = 160) -> None:
    """Each photo with our boxes (green: learned, orange: dlib fallback) and points; for looking at, not committing."""
    from PIL import Image, ImageDraw

    from core import face as F
    from core.imageio import load_image

    rows = -(-len(paths) // cols)
    sheet = Image.new("RGB", (cols * tile, rows * tile))
    for i, p in enumerate(paths):
        img = load_image(p)
        faces = F.detect_faces(img)
        im = Image.fromarray(img)
        k = tile / max(im.size)
        im = im.resize((max(1, round(im.width * k)), max(1, round(im.height * k))))
        d = ImageDraw.Draw(im)
        for f in faces:
            col = (0, 255, 0) if f.detector == "learned" else (255, 160, 0)
            d.rectangle([v * k for v in f.bbox], outline=col, width=2)
            vis = f.visibility if f.visibility is not None else np.ones(68)
            for (x, y), v in zip(f.landmarks * k, vis):
                d.point((x, y), fill=(0, 255, 0) if v > 0.5 else (255, 0, 0))
        sheet.paste(im, ((i % cols) * tile, (i // cols) * tile))
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    sheet.save(out)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shards", default=os.path.join(".cache", "fe_shards"))
    ap.add_argument("--data", default=os.path.join("..", "shared", "data"))
    ap.add_argument("--n", type=int, default=100, help="held-out faces per source for the synthetic set")
    ap.add_argument("--grid", default=os.path.join("out", "frontend"), help="folder for the contact sheets")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    report = {}
    sets = occluded_faces(args.shards, args.n)
    report["synthetic"] = eval_synthetic(sets)
    report["pose_vs_dlib"] = eval_pose(sets["none"][0])
    masked = [it["path"] for it in list_items(args.data, "masked") if it["split"] == 1]
    report["real_masked"] = eval_photos(masked)
    cfp = [it for it in list_items(args.data, "cfp") if it["split"] == 1]
    for view in ("profile", "frontal"):
        report[f"cfp_{view}"] = eval_photos([it["path"] for it in cfp if it["view"] == view])
    if args.grid:
        grid(masked, os.path.join(args.grid, "real_masked.png"))
        grid([it["path"] for it in cfp if it["view"] == "profile"][:60], os.path.join(args.grid, "cfp_profile.png"))
    print(json.dumps(report, indent=1))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()
