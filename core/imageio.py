"""Reading user photos safely: any format Pillow reads, any size within limits, any mode.

Returns RGB uint8 arrays with EXIF orientation applied. Everything that can go
wrong becomes an `InvalidImage` with a message a person understands.
"""
from __future__ import annotations

import io
import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InvalidImage

MAX_PIXELS = 40_000_000  # decompression-bomb guard: 40 MP (e.g. 8000x5000)
MIN_SIDE = 32            # smaller than this cannot hold a detectable face


def load_image(source: str | os.PathLike | bytes | np.ndarray | Image.Image) -> np.ndarray:
    """Path, bytes, PIL image or array -> [H, W, 3] uint8 RGB (EXIF orientation honoured)."""
    if isinstance(source, np.ndarray):
        return to_rgb_array(source)
    if isinstance(source, Image.Image):
        return _pil_to_rgb(source)
    data = source if isinstance(source, bytes) else None
    name = "the upload" if data is not None else os.fspath(source)
    try:
        fp = io.BytesIO(data) if data is not None else open(source, "rb")
    except OSError as e:
        raise InvalidImage(f"Cannot open {name}: {e.strerror or e}") from e
    with fp:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                im = Image.open(fp)
                _check_size(im.size)
                im.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
            raise InvalidImage(f"Image too large: over {MAX_PIXELS // 1_000_000} megapixels.") from e
        except UnidentifiedImageError as e:
            raise InvalidImage(f"Not an image (or a format we cannot read): {os.path.basename(name)}") from e
        except (OSError, SyntaxError, ValueError) as e:
            raise InvalidImage(f"The image file is damaged or truncated: {e}") from e
        return _pil_to_rgb(im)


def _check_size(size: tuple[int, int]) -> None:
    w, h = size
    if w * h > MAX_PIXELS:
        raise InvalidImage(f"Image too large: {w}x{h} pixels (limit {MAX_PIXELS // 1_000_000} megapixels).")
    if min(w, h) < MIN_SIDE:
        raise InvalidImage(f"Image too small: {w}x{h} pixels (need at least {MIN_SIDE} px on each side).")


def _pil_to_rgb(im: Image.Image) -> np.ndarray:
    _check_size(im.size)
    im = ImageOps.exif_transpose(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        im = Image.fromarray(np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8))
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        rgba = im.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(white, rgba)
    return np.ascontiguousarray(np.asarray(im.convert("RGB"), dtype=np.uint8))


def to_rgb_array(a: np.ndarray) -> np.ndarray:
    """Arrays from Gradio/numpy: gray, RGBA, 16-bit or float -> [H, W, 3] uint8."""
    a = np.asarray(a)
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (1, 3, 4)):
        raise InvalidImage(f"Not an image array: shape {a.shape}.")
    _check_size((a.shape[1], a.shape[0]))
    if a.dtype == np.uint16:
        a = (a.astype(np.float64) / 257.0).round()
    elif np.issubdtype(a.dtype, np.floating):
        a = a * 255.0 if a.max() <= 1.0 else a
    a = np.clip(a, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = a[:, :, None]
    if a.shape[2] == 1:
        a = np.repeat(a, 3, axis=2)
    elif a.shape[2] == 4:
        alpha = a[:, :, 3:4].astype(np.float32) / 255.0
        a = (a[:, :, :3] * alpha + 255.0 * (1 - alpha) + 0.5).astype(np.uint8)
    return np.ascontiguousarray(a)
