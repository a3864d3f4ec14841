"""Reading user photos safely: any format Pillow reads, any size within limits, any mode.

Returns RGB uint8 arrays with EXIF orientation applied. Everything that can go
wrong becomes an `InvalidImage` with a message a person understands.
"""
from __future__ import annotations

import io
import logging
import os
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import InvalidImage

MAX_PIXELS = 40_000_000  # decompression-bomb guard: 40 MP (e.g. 8000x5000)
MIN_SIDE = 32            # smaller than this cannot hold a detectable face
MAX_MASK_PIXELS = 2048 * 2048  # masks (mask-to-face): drawn at 256 px, and the face comes back at the mask's size
log = logging.getLogger(__name__)

# Our own check (check_pixels, right after the header is read, before any decoding) is the bomb guard. Pillow's
# DecompressionBombWarning (89-179 MP) would only repeat it; it is silenced once, here, at import, and never with
# warnings.catch_warnings in a request (that swaps the process-wide filter list: not thread-safe). Over 179 MP
# Pillow raises DecompressionBombError from Image.open, which is caught as "too large".
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


def check_pixels(size: tuple[int, int], max_pixels: int = MAX_PIXELS, what: str = "Image",
                 min_side: int = MIN_SIDE) -> None:
    """The one pixel guard: (width, height) from a header or an array, refused before anything is decoded."""
    w, h = (int(size[0]), int(size[1]))
    if w * h > max_pixels:
        raise InvalidImage(f"{what} too large: {w}x{h} pixels (limit {_mp(max_pixels)} megapixels).")
    if min(w, h) < min_side:
        raise InvalidImage(f"{what} too small: {w}x{h} pixels (need at least {min_side} px on each side).")


def _mp(pixels: int) -> str:
    return f"{pixels / 1_000_000:.3g}"


def image_size(source: str | os.PathLike | bytes) -> tuple[int, int]:
    """(width, height) from an image file's header (nothing decoded); InvalidImage if it is not an image."""
    try:
        fp = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else open(source, "rb")
    except OSError as e:
        raise InvalidImage(f"Cannot open the image: {e.strerror or e}") from e
    with fp:
        try:
            with Image.open(fp) as im:
                return im.size
        except Image.DecompressionBombError as e:
            raise InvalidImage(f"Image too large: over {_mp(MAX_PIXELS)} megapixels.") from e
        except UnidentifiedImageError as e:
            raise InvalidImage("Not an image (or a format we cannot read).") from e
        except (OSError, SyntaxError, ValueError) as e:
            raise InvalidImage(f"The image file is damaged or truncated: {e}") from e


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
        raise InvalidImage(f"Cannot open {os.path.basename(name)}: {e.strerror or e}") from e
    with fp:
        try:
            im = Image.open(fp)
            _check_size(im.size)  # from the header: nothing decoded yet
            im.load()
        except Image.DecompressionBombError as e:
            raise InvalidImage(f"Image too large: over {_mp(MAX_PIXELS)} megapixels.") from e
        except UnidentifiedImageError as e:
            raise InvalidImage(f"Not an image (or a format we cannot read): {os.path.basename(name)}") from e
        except (OSError, SyntaxError, ValueError) as e:
            raise InvalidImage(f"The image file is damaged or truncated: {e}") from e
        return _pil_to_rgb(im)


def _check_size(size: tuple[int, int]) -> None:
    check_pixels(size)


def exif_upright(im: Image.Image) -> Image.Image:
    """EXIF orientation applied; a photo whose EXIF block is damaged is used as stored (one log line)."""
    try:
        return ImageOps.exif_transpose(im)
    except Exception as e:  # noqa: BLE001 - Pillow raises many kinds on malformed EXIF; the pixels are fine
        log.info("ignored damaged EXIF orientation: %s: %s", type(e).__name__, e)
        return im


def grey16_to_uint8(a: np.ndarray) -> np.ndarray:
    """16-bit (or 32-bit integer / float) grey -> uint8, the full 0-65535 range onto 0-255 (>> 8), nothing clipped
    to white; integer images already within 0-255 are kept as they are."""
    if np.issubdtype(a.dtype, np.floating):
        a = np.nan_to_num(a, nan=0.0, posinf=255.0, neginf=0.0)
        hi = 65535.0 if a.max(initial=0) > 255 else 255.0
        return np.clip(a * (255.0 / hi) + 0.5, 0, 255).astype(np.uint8)
    if a.dtype == np.uint16 or a.max(initial=0) > 255:
        return (np.clip(a, 0, 65535).astype(np.uint16) >> 8).astype(np.uint8)
    return np.clip(a, 0, 255).astype(np.uint8)


def _pil_to_rgb(im: Image.Image) -> np.ndarray:
    _check_size(im.size)
    im = exif_upright(im)
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im)
        if im.mode.startswith("I;16"):
            a = a.astype(np.uint16, copy=False)
        im = Image.fromarray(grey16_to_uint8(a))
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
        a = (a.astype(np.float32) / 257.0).round()
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
