"""Bad input, property-based: every endpoint function, in process, on random files, odd sizes and modes.

Each call must either return a valid result or raise `gr.Error` (a message for the user), never any
other exception, and must return in bounded time. Inputs: random bytes, truncated images, headers
claiming huge dimensions, 1x1 / 1xN / Nx1 images, the modes L, LA, P, I;16, CMYK, RGBA, RGB (also
the astronaut converted to each, so the valid path is exercised too), missing files and None, and odd
face indices / seeds / model names. Bounded: 25 examples per endpoint, no deadline per example.
"""
from __future__ import annotations

import io
import itertools
import struct
import time
import zlib

import gradio as gr
import numpy as np
import pytest
from PIL import Image

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, event, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

EXAMPLES = 25
MAX_SECONDS = 180  # one call; a hang would be far longer
MODES = ["L", "LA", "P", "I;16", "CMYK", "RGBA", "RGB"]
FORMATS = {"L": ["PNG", "JPEG", "TIFF", "BMP", "WEBP"], "LA": ["PNG", "TIFF", "WEBP"], "P": ["PNG", "GIF", "BMP"],
           "I;16": ["PNG", "TIFF"], "CMYK": ["JPEG", "TIFF"], "RGBA": ["PNG", "TIFF", "WEBP"],
           "RGB": ["PNG", "JPEG", "TIFF", "BMP", "GIF", "WEBP"]}
SIZES = [(1, 1), (1, 64), (64, 1), (1, 300), (31, 31), (32, 32), (33, 200), (257, 129)]
SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_names = itertools.count()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


def encode(im: Image.Image, fmt: str) -> bytes:
    buf = io.BytesIO()
    if fmt in ("JPEG", "WEBP", "GIF", "BMP") and im.mode == "I;16":
        im = im.convert("L")
    im.save(buf, format=fmt)
    return buf.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width x height (valid CRC) but holds almost no data."""
    small = bytearray(encode(Image.new("RGB", (1, 1)), "PNG"))
    ihdr = struct.pack(">II", width, height) + bytes(small[24:29])
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(small[:16]) + ihdr + crc + bytes(small[33:])


@st.composite
def photo_bytes(draw, astronaut: np.ndarray) -> bytes | None:
    kind = draw(st.sampled_from(["random", "synthetic", "face", "truncated", "huge_header", "empty", "none"]))
    if kind == "none":
        return None
    if kind == "empty":
        return b""
    if kind == "random":
        head = draw(st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a", b"BM", b"II*\x00"]))
        return head + draw(st.binary(min_size=0, max_size=2048))
    if kind == "huge_header":
        w, h = draw(st.sampled_from([(100_000, 100_000), (2 ** 31 - 1, 1), (1, 60_000), (7000, 5000), (40, 40)]))
        return png_claiming(w, h)
    mode = draw(st.sampled_from(MODES))
    fmt = draw(st.sampled_from(FORMATS[mode]))
    if kind == "synthetic":
        w, h = draw(st.sampled_from(SIZES))
        rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
        im = Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8))
    else:
        im = Image.fromarray(astronaut)
    if mode == "I;16":
        im = Image.fromarray(np.asarray(im.convert("L"), np.uint16) * 257)
    else:
        im = im.convert(mode)
    data = encode(im, fmt)
    if kind == "truncated":
        data = data[: draw(st.integers(1, max(1, len(data) - 1)))]
    return data


def as_file(folder, data: bytes | None, missing: bool = False) -> str | None:
    if data is None:
        return str(folder / "does_not_exist.png") if missing else None
    path = folder / f"upload_{next(_names)}.bin"
    path.write_bytes(data)
    return str(path)


face_indices = st.one_of(st.integers(-3, 4), st.just(0), st.sampled_from([0.0, 1.0, 2 ** 40]))


def check(fn, *args):
    """Call an endpoint function: a result, or gr.Error; anything else fails the property."""
    t0 = time.monotonic()
    try:
        out = fn(*args)
    except gr.Error as e:
        assert str(e.message).strip(), "gr.Error without a message"
        event(f"{fn.__name__}: gr.Error {e.title or ''}".strip())
        out = None
    except Exception as e:  # noqa: BLE001 - the property under test
        pytest.fail(f"{fn.__name__}{tuple(a if not isinstance(a, str) else '<path>' for a in args)} raised "
                    f"{type(e).__name__}: {e} (should be a result or gr.Error)")
    assert time.monotonic() - t0 < MAX_SECONDS, f"{fn.__name__} took {time.monotonic() - t0:.0f} s"
    if out is not None:
        event(f"{fn.__name__}: result")
    return out


def test_analyze_any_upload(astronaut, folder):
    from apps.analyze import analyze

    @SETTINGS
    @given(photo_bytes(astronaut), face_indices, st.booleans())
    def prop(data, face_index, missing):
        out = check(analyze, as_file(folder, data, missing), face_index)
        if out is not None:
            annotated, crop, rows = out
            assert annotated.ndim == 3 and annotated.dtype == np.uint8 and crop.shape == (256, 256, 3) and rows
    prop()


def test_parse_any_upload(astronaut, folder):
    from apps.parse import parse, reblend

    @SETTINGS
    @given(photo_bytes(astronaut), face_indices, st.floats(-1, 2), st.booleans())
    def prop(data, face_index, opacity, missing):
        out = check(parse, as_file(folder, data, missing), face_index, opacity)
        if out is not None:
            shown, labels_path, state = out
            labels = np.asarray(Image.open(labels_path))
            assert labels.shape == shown.shape[:2] and labels.max() <= 19
            assert check(reblend, state, opacity).shape == shown.shape
    prop()


def test_reconstruct_any_upload(astronaut, folder):
    from apps.vae import reconstruct

    @SETTINGS
    @given(photo_bytes(astronaut), face_indices, st.booleans())
    def prop(data, face_index, missing):
        out = check(reconstruct, as_file(folder, data, missing), face_index)
        if out is not None:
            assert len(out) == 6 and out[-1].ndim == 3
    prop()


def test_interpolate_any_uploads(astronaut, folder):
    from apps.vae import interpolate

    models = st.sampled_from(["masked-vae", "multistage-vae", "", "no-such-model", None])

    @settings(SETTINGS, max_examples=15)
    @given(photo_bytes(astronaut), photo_bytes(astronaut), st.floats(-1, 2), models)
    def prop(a, b, t, model):
        out = check(interpolate, as_file(folder, a), as_file(folder, b), t, model, None)
        if out is not None:
            assert out[0].ndim == 3
    prop()


def test_face_index_empty_means_largest_and_junk_is_a_user_message(astronaut, folder):
    import gradio as gr

    from apps.analyze import analyze

    path = as_file(folder, encode(Image.fromarray(astronaut), "PNG"))
    _, crop, rows = analyze(path, None)          # a cleared number box: the largest face
    assert crop.shape == (256, 256, 3) and len(rows) == 1
    for junk in (float("nan"), 1.5, "two"):
        with pytest.raises(gr.Error, match="Face index"):
            analyze(path, junk)


def test_sample_any_seed_and_model():
    from apps.vae import sample

    seeds = st.one_of(st.none(), st.integers(-(2 ** 40), 2 ** 40), st.floats(allow_nan=False, allow_infinity=False,
                                                                               min_value=-1e12, max_value=1e12))
    models = st.one_of(st.sampled_from(["masked-vae", "multistage-vae"]), st.text(max_size=20), st.none())

    @SETTINGS
    @given(seeds, models)
    def prop(seed, model):
        out = check(sample, seed, model)
        if out is not None:
            assert out.ndim == 3 and out.dtype == np.uint8
    prop()
