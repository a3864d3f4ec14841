"""Dataset builder: `../shared/data` -> aligned training shards in `.cache/shards/`.

    python -m train.data [--data ../shared/data] [--out .cache/shards] [--sources celebamask,masked,celeba_id,utkface]
                         [--workers 2] [--limit N]

Every photo goes through the product's own front-end (`core.face`): dlib
detection, 68 landmarks, pose, canonical alignment. Each source becomes
`{source}_{size}_{part}.npz` shards (format: `train/shards.py`):

| source | sizes | labels / metadata | split (val) |
| --- | --- | --- | --- |
| celebamask | 256, 128 | CelebAMask-HQ labels warped (nearest) | 10% of images by hash |
| masked | 256, 128 | none (faces wearing masks: occluder material) | 10% by hash |
| celeba_id | 128 | CelebA identity, 40 attributes where listed | 10% of identities |
| utkface | 128 | age, gender, race from the file name | 10% by hash |

Dropped: no face detected, or more than MAX_PADDED of the crop outside the
photo. A report (`report.json` beside the shards) counts both per source.
"""
from __future__ import annotations

import argparse
import glob
import json
import math
import os
import zlib
from concurrent.futures import ProcessPoolExecutor

import cv2
import numpy as np

from train.shards import SHARD_DIR, encode_jpeg, write_shard

MAX_PADDED = 0.75      # UTKFace's tight crops pad ~60% of an FFHQ-framed crop; worse than this is dropped
VAL_FRACTION = 0.10
JPEG_QUALITY = 85     # 4:2:0; ~15 kB per 256 px crop, so the 256 px CelebAMask-HQ shards (~75 MB) travel in two device calls
PART_SIZE = {256: 1200, 128: 6000}   # images per shard file (keeps each file well under 16 MiB... and carries small)
SIZES = {"celebamask": (256, 128), "masked": (256, 128), "celeba_id": (128,), "utkface": (128,)}


# --------------------------------------------------------------------------- listing

def list_source(data: str, source: str) -> list[dict]:
    """Items {key, path, group, extra...} of one source, in a fixed order."""
    items = []
    if source == "celebamask":
        for p in sorted(glob.glob(os.path.join(data, "celebamask_hq", "images", "*.jpg"))):
            key = os.path.basename(p)
            items.append(dict(key=key, path=p, group=key,
                              label_path=os.path.join(data, "celebamask_hq", "labels", key[:-4] + ".png")))
    elif source == "masked":
        for p in sorted(glob.glob(os.path.join(data, "masked_faces", "*", "**", "*.jpg"), recursive=True)):
            rel = os.path.relpath(p, os.path.join(data, "masked_faces"))
            items.append(dict(key=rel, path=p, group=os.path.dirname(rel) if rel.startswith("rwmfd") else rel))
    elif source == "celeba_id":
        attrs = read_celeba_attributes(os.path.join(data, "celeba_attributes", "list_attr_celeba_first20k.txt"))
        for p in sorted(glob.glob(os.path.join(data, "celeba_identities", "celeb_*", "*.jpg"))):
            folder = os.path.basename(os.path.dirname(p))
            key = os.path.join(folder, os.path.basename(p))
            items.append(dict(key=key, path=p, group=folder, identity=int(folder.split("_")[1]),
                              attrs=attrs.get(os.path.basename(p))))
    elif source == "utkface":
        for p in sorted(glob.glob(os.path.join(data, "utkface", "*.jpg"))):
            key = os.path.basename(p)
            age, gender, race = parse_utk_name(key)
            items.append(dict(key=key, path=p, group=key, age=age, gender=gender, race=race))
    else:
        raise ValueError(f"unknown source {source!r}")
    return items


def parse_utk_name(name: str) -> tuple[int, int, int]:
    """AGE_GENDER_RACE_DATE.jpg.chip.jpg -> (age, gender, race); -1 for malformed fields."""
    parts = name.split("_")
    vals = []
    for i, hi in ((0, 120), (1, 1), (2, 4)):
        try:
            v = int(parts[i])
            vals.append(v if 0 <= v <= hi else -1)
        except (IndexError, ValueError):
            vals.append(-1)
    return tuple(vals)


def read_celeba_attributes(path: str) -> dict[str, np.ndarray]:
    out = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        lines = f.read().split("\n")
    for line in lines[2:]:
        parts = line.split()
        if len(parts) == 41:
            out[parts[0]] = np.array([int(v) for v in parts[1:]], dtype=np.int8)
    return out


def assign_split(items: list[dict]) -> None:
    """Deterministic: groups in crc32 order of their name go to val until it holds >= 10% of the items."""
    sizes: dict[str, int] = {}
    for it in items:
        sizes[it["group"]] = sizes.get(it["group"], 0) + 1
    groups = sorted(sizes, key=lambda g: (zlib.crc32(g.encode()), g))
    val, n_val, need = set(), 0, math.ceil(VAL_FRACTION * len(items))
    for g in groups:  # whole groups (identities) until at least 10% of the items are val
        if n_val >= need:
            break
        val.add(g)
        n_val += sizes[g]
    for it in items:
        it["split"] = 1 if it["group"] in val else 0


# --------------------------------------------------------------------------- one photo

def process(item: dict, sizes: tuple[int, ...]) -> dict:
    """Detect, align and encode one photo; returns the record or {'drop': reason}."""
    from core import face as F
    from core.errors import FaceLabError
    from core.imageio import load_image

    try:
        img = load_image(item["path"])
    except FaceLabError as e:
        return {"drop": f"unreadable: {e}"}
    faces = F.detect_faces(img)
    if not faces:
        return {"drop": "no face"}
    face = faces[0]
    rec = {"key": item["key"], "yaw": face.yaw, "pitch": face.pitch, "roll": face.roll}
    labels = read_labels(item["label_path"]) if "label_path" in item else None
    for size in sizes:
        al = F.align_face(img, face, size)
        if al.padded > MAX_PADDED:
            return {"drop": "crop outside photo"}
        rec[f"jpeg{size}"] = encode_jpeg(al.image, quality=JPEG_QUALITY)
        rec[f"padded{size}"] = al.padded
        lm = face.landmarks @ al.matrix[:, :2].T + al.matrix[:, 2]
        rec[f"landmarks{size}"] = lm.astype(np.float32)
        if labels is not None:
            if labels.shape != img.shape[:2]:
                labels = cv2.resize(labels, (img.shape[1], img.shape[0]), interpolation=cv2.INTER_NEAREST)
            rec[f"labels{size}"] = F.warp_labels(labels, al.matrix, size)
    return rec


def read_labels(path: str) -> np.ndarray:
    """CelebAMask-HQ label PNG -> [H, W] uint8 class ids. The PNGs are palette images: the class is the
    palette index (reading them as grayscale would merge skin and left ear), so go through Pillow."""
    from PIL import Image

    with Image.open(path) as im:
        if im.mode not in ("P", "L"):
            raise ValueError(f"{path}: expected a palette or grayscale label PNG, got mode {im.mode}")
        return np.asarray(im, dtype=np.uint8).copy()


def _process_star(args):
    return process(*args)


# --------------------------------------------------------------------------- one source

def build_source(data: str, out: str, source: str, workers: int, limit: int | None) -> dict:
    items = list_source(data, source)
    assign_split(items)
    if limit:
        items = items[:limit]
    sizes = SIZES[source]
    with ProcessPoolExecutor(workers) as pool:
        recs = list(pool.map(_process_star, [(it, sizes) for it in items], chunksize=16))
    kept = [(it, r) for it, r in zip(items, recs) if "drop" not in r]
    drops: dict[str, int] = {}
    for r in recs:
        if "drop" in r:
            drops[r["drop"]] = drops.get(r["drop"], 0) + 1
    for size in sizes:
        for old in glob.glob(os.path.join(out, f"{source}_{size}_*.npz")):
            os.remove(old)
        step = PART_SIZE[size]
        for part, start in enumerate(range(0, len(kept), step)):
            chunk = kept[start:start + step]
            n = len(chunk)
            meta = {
                "key": np.array([r["key"] for _, r in chunk]),
                "split": np.array([it["split"] for it, _ in chunk], np.uint8),
                "landmarks": np.stack([r[f"landmarks{size}"] for _, r in chunk]),
                "pose": np.array([[r["yaw"], r["pitch"], r["roll"]] for _, r in chunk], np.float32),
                "padded": np.array([r[f"padded{size}"] for _, r in chunk], np.float32),
                "identity": np.array([it.get("identity", -1) for it, _ in chunk], np.int32),
                "age": np.array([it.get("age", -1) for it, _ in chunk], np.int16),
                "gender": np.array([it.get("gender", -1) for it, _ in chunk], np.int8),
                "race": np.array([it.get("race", -1) for it, _ in chunk], np.int8),
                "attrs": np.stack([it["attrs"] if it.get("attrs") is not None else np.zeros(40, np.int8)
                                   for it, _ in chunk]) if n else np.zeros((0, 40), np.int8),
            }
            labels = np.stack([r[f"labels{size}"] for _, r in chunk]) if f"labels{size}" in chunk[0][1] else None
            write_shard(os.path.join(out, f"{source}_{size}_{part:02d}.npz"),
                        [r[f"jpeg{size}"] for _, r in chunk], meta, labels)
    n_val = sum(it["split"] for it, _ in kept)
    return {"listed": len(items), "kept": len(kept), "val": n_val, "dropped": drops}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", default=os.path.join("..", "shared", "data"))
    ap.add_argument("--out", default=SHARD_DIR)
    ap.add_argument("--sources", default="celebamask,masked,celeba_id,utkface")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--limit", type=int, default=None, help="first N photos per source (for a quick try)")
    args = ap.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    report_path = os.path.join(args.out, "report.json")
    report = json.load(open(report_path)) if os.path.exists(report_path) else {}
    for source in args.sources.split(","):
        stats = build_source(args.data, args.out, source, args.workers, args.limit)
        report[source] = dict(stats, max_padded=MAX_PADDED)
        print(source, json.dumps(report[source]), flush=True)
        with open(report_path, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    main()
