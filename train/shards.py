"""Compact training shards: what `python -m train.data` writes and every trainer reads.

A shard is one `.npz` (no pickles) holding N aligned face crops of one source at
one resolution, small enough to travel to the GPU machine (see
`../shared/docs/DEVICE.md`). Images are stored as JPEG bytes, labels as a
zlib-compressed uint8 array, metadata as plain arrays:

    jpeg        uint8  [B]        all JPEG files concatenated
    offsets     int64  [N+1]      image i is jpeg[offsets[i]:offsets[i+1]]
    labels      uint8  [N, S, S]  CelebAMask-HQ classes (only `celebamask`)
    key         <U64   [N]        source-relative file name
    split       uint8  [N]        0 = train, 1 = val
    landmarks   float32[N, 68, 2] dlib landmarks in crop pixels
    pose        float32[N, 3]     yaw, pitch, roll in degrees (core.face convention)
    padded      float32[N]        fraction of the crop that lay outside the photo
    identity    int32  [N]        CelebA identity folder number, -1 if unknown
    age         int16  [N]        UTKFace age in years, -1 if unknown
    gender      int8   [N]        UTKFace gender 0 male / 1 female, -1 if unknown
    race        int8   [N]        UTKFace race 0..4, -1 if unknown
    attrs       int8   [N, 40]    CelebA attributes +1/-1, 0 if unknown

Files are named `{source}_{size}_{part:02d}.npz` under `.cache/shards/`.
This module needs only numpy and OpenCV or Pillow, so it imports on the GPU
machine.
"""
from __future__ import annotations

import glob
import io
import os

import numpy as np

ATTR_NAMES = (
    "5_o_Clock_Shadow Arched_Eyebrows Attractive Bags_Under_Eyes Bald Bangs Big_Lips Big_Nose "
    "Black_Hair Blond_Hair Blurry Brown_Hair Bushy_Eyebrows Chubby Double_Chin Eyeglasses Goatee "
    "Gray_Hair Heavy_Makeup High_Cheekbones Male Mouth_Slightly_Open Mustache Narrow_Eyes No_Beard "
    "Oval_Face Pale_Skin Pointy_Nose Receding_Hairline Rosy_Cheeks Sideburns Smiling Straight_Hair "
    "Wavy_Hair Wearing_Earrings Wearing_Hat Wearing_Lipstick Wearing_Necklace Wearing_Necktie Young"
).split()

SHARD_DIR = os.path.join(".cache", "shards")


def encode_jpeg(rgb: np.ndarray, quality: int = 92) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, format="JPEG", quality=quality, subsampling=0 if quality >= 90 else 2)
    return buf.getvalue()


def decode_jpeg(data: bytes | np.ndarray) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(bytes(data))) as im:
        return np.asarray(im.convert("RGB"))


def write_shard(path: str, jpegs: list[bytes], meta: dict[str, np.ndarray], labels: np.ndarray | None = None) -> None:
    sizes = np.array([len(b) for b in jpegs], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    arrays = dict(meta, jpeg=np.frombuffer(b"".join(jpegs), dtype=np.uint8), offsets=offsets)
    if labels is not None:
        arrays["labels"] = labels
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp.npz"
    np.savez_compressed(tmp, **arrays)
    os.replace(tmp, path)


def read_shard(path: str, decode: bool = True) -> dict[str, np.ndarray]:
    """Load one shard; with `decode`, adds `images` uint8 [N, S, S, 3]."""
    with np.load(path, allow_pickle=False) as z:
        out = {k: z[k] for k in z.files}
    if decode:
        jpeg, off = out["jpeg"], out["offsets"]
        out["images"] = np.stack([decode_jpeg(jpeg[off[i]:off[i + 1]]) for i in range(len(off) - 1)])
    return out


def shard_paths(source: str, size: int, root: str = SHARD_DIR) -> list[str]:
    return sorted(glob.glob(os.path.join(root, f"{source}_{size}_*.npz")))


def load_source(source: str, size: int, root: str = SHARD_DIR, decode: bool = True) -> dict[str, np.ndarray]:
    """All parts of one source at one size, concatenated (jpeg/offsets dropped when decoded)."""
    parts = [read_shard(p, decode=decode) for p in shard_paths(source, size, root)]
    if not parts:
        raise FileNotFoundError(f"no shards for {source!r} at {size}px under {root}; run `python -m train.data`")
    keys = [k for k in parts[0] if k not in ("jpeg", "offsets")] if decode else list(parts[0])
    if not decode:
        return parts[0] if len(parts) == 1 else {"parts": parts}  # type: ignore[return-value]
    return {k: np.concatenate([p[k] for p in parts]) for k in keys}
