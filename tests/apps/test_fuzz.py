"""Bad input, property-based: every endpoint function, in process, on random files, odd sizes and modes.

Each call must either return a valid result or raise `gr.Error` (a message for the user), never any
other exception, and must return in bounded time. Inputs: random bytes, truncated images, headers
claiming huge dimensions, 1x1 / 1xN / Nx1 images, the modes L, LA, P, I;16, CMYK, RGBA, RGB (also
the astronaut converted to each, so the valid path is exercised too), missing files and None, and odd
face indices / seeds / model names. Bounded: 25 examples per endpoint, no deadline per example.

Mask-to-face (`/mask2face`, `/mask2face_photo`): the same uploads as masks, plus label PNGs (L, P, I;16, I;
values in and out of 0-19) and colour masks (RGB, RGBA with random alpha, lossy JPEG/WEBP) at odd sizes,
given to the tab's functions as the editor hands them over (an RGBA array) or as a file path, with odd seeds,
part names and paste regions. Then the same through the served app (gradio_client, tests/served_app.py):
every request answers, as a result or an error, in bounded time, and the server still serves a valid mask.
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
from hypothesis import HealthCheck, event, example, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

pytestmark = pytest.mark.slow  # property-based: dozens of examples per endpoint

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


def as_file(folder, data: bytes | None, missing: bool = False, suffix: str = ".bin") -> str | None:
    if data is None:
        return str(folder / "does_not_exist.png") if missing else None
    path = folder / f"upload_{next(_names)}{suffix}"
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


def test_pose_any_upload(astronaut, folder):
    """/pose (the Turn button) on any photo, angles (empty, in range, beyond ±60°, nan, inf), guide photo and face
    index; and the upload / guide events that set the sliders (a note or gr.Error, never a crash)."""
    import hub

    from apps.pose import MODELS, guide_changed, photo_pose, pose

    if not all(hub.available(m) for m in MODELS):
        pytest.skip("the pose models are not bundled")
    angles = st.one_of(st.none(), st.integers(-90, 90), st.floats(-60, 60),
                       st.sampled_from([61.0, -1e9, float("nan"), float("inf"), -float("inf")]))
    face_png = encode(Image.fromarray(astronaut), "PNG")

    @SETTINGS
    @given(photo_bytes(astronaut), st.booleans(), angles, angles,
           st.one_of(st.none(), st.none(), photo_bytes(astronaut)), face_indices)
    @example(face_png, False, 20, 0, None, 0)                # the valid paths always run too
    @example(face_png, False, None, None, face_png, None)
    def prop(data, missing, yaw, pitch, guide, face_index):
        path, guide_path = as_file(folder, data, missing), as_file(folder, guide)
        out = check(pose, path, yaw, pitch, guide_path, face_index)
        valid = (data == face_png and not missing and guide in (None, face_png) and face_index in (0, None)
                 and all(a is None or abs(a) <= 60 for a in (yaw, pitch)))
        assert out is not None or not valid, "the astronaut at valid angles is a result, not an error"
        if out is not None:
            result, crop, warped, mask, lm_in, lm_out, measured = out
            assert result.ndim == 3 and result.dtype == np.uint8 and crop.shape == warped.shape == (128, 128, 3)
            assert mask.shape == (128, 128) and isinstance(measured, str) and "Target yaw" in measured
            if data == face_png:
                assert result.shape == astronaut.shape, "the photo's size"
        *sliders, note = check(photo_pose, path, face_index, guide_path)
        assert isinstance(note, str) and note.strip()
        check(guide_changed, guide_path)
    prop()


def test_invert_and_edit_any_input(astronaut, folder):
    """/invert on any photo, face index and refinement count (empty, negative, beyond the limit); /edit on any code
    file (random bytes, missing, a real code) and slider values (empty, nan, inf, huge): a result or gr.Error."""
    import hub

    from apps.invert import edit, invert

    if not all(hub.available(m) for m in ("stylegan", "mtv-encoder", "directions")):
        pytest.skip("the GAN models are not bundled")
    face_png = encode(Image.fromarray(astronaut), "PNG")
    steps = st.one_of(st.none(), st.sampled_from([0, 0, 1, -1, 10 ** 6]))
    values = st.one_of(st.none(), st.floats(-8, 8), st.sampled_from([float("nan"), float("inf"), 1e9]))
    code_path = None

    @SETTINGS
    @given(photo_bytes(astronaut), st.booleans(), face_indices, steps)
    @example(face_png, False, 0, 0)
    def prop_invert(data, missing, face_index, refine):
        nonlocal code_path
        out = check(invert, as_file(folder, data, missing), face_index, refine)
        if data == face_png and not missing and face_index in (0, None) and refine in (0, None):
            assert out is not None, "the astronaut inverts"
        if out is not None:
            crop, recon, pasted, quality, code = out
            assert crop.shape == recon.shape == (128, 128, 3) and "PSNR" in quality
            code_path = code
    prop_invert()

    @SETTINGS
    @given(st.one_of(st.none(), st.just("real"), st.binary(max_size=200)), st.lists(values, max_size=14))
    @example("real", [2.0])
    def prop_edit(code, vals):
        path = code_path if code == "real" else (as_file(folder, code) if code is not None else None)
        out = check(edit, path, None, *vals)
        if out is not None:
            assert out[0].shape == (128, 128, 3) and out[0].dtype == np.uint8
    prop_edit()


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


# --------------------------------------------------------------------------- Mask-to-face

MASK_SIZES = st.one_of(st.sampled_from([*SIZES, (8, 8)]),                       # half odd, half usable
                       st.sampled_from([(256, 256), (300, 300), (320, 240), (64, 48)]))
LABEL_FORMATS = {"L": ["PNG", "TIFF", "BMP"], "P": ["PNG", "GIF"], "I;16": ["PNG", "TIFF"], "I": ["TIFF"]}
COLOUR_FORMATS = {"RGB": ["PNG", "JPEG", "WEBP", "BMP", "TIFF"], "RGBA": ["PNG", "WEBP", "TIFF"],
                  "P": ["PNG", "GIF"]}


@st.composite
def mask_bytes(draw, astronaut: np.ndarray) -> bytes | None:
    """A mask file: a label PNG (values 0-19, or out of range), a colour mask in the palette (lossy formats blur
    its colours; RGBA with random alpha), or anything photo_bytes makes (photos, random bytes, ...)."""
    from core.labels import NUM_CLASSES, PALETTE
    from tests.masks import face_mask

    kind = draw(st.sampled_from(["labels", "colour", "colour", "other"]))
    if kind == "other":
        return draw(photo_bytes(astronaut))
    w, h = draw(MASK_SIZES)
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 16)))
    labels = face_mask(w, h) if draw(st.booleans()) else rng.integers(0, NUM_CLASSES, (h, w)).astype(np.uint8)
    if kind == "labels":
        mode = draw(st.sampled_from(sorted(LABEL_FORMATS)))
        values = labels.astype(np.int32) + draw(st.sampled_from([0, 0, 0, 1, 20, 236]))   # > 19: not a label
        if mode in ("L", "P"):
            im = Image.fromarray(np.clip(values, 0, 255).astype(np.uint8), mode="L")
            if mode == "P":
                im = im.convert("P")
        else:
            im = Image.fromarray(values.astype(np.uint16 if mode == "I;16" else np.int32))
        return encode(im, draw(st.sampled_from(LABEL_FORMATS[mode])))
    mode = draw(st.sampled_from(sorted(COLOUR_FORMATS)))
    im = Image.fromarray(PALETTE[labels])
    if mode == "RGBA":
        alpha = draw(st.sampled_from(["opaque", "clear", "random"]))
        a = {"opaque": np.full((h, w), 255, np.uint8), "clear": np.zeros((h, w), np.uint8),
             "random": rng.integers(0, 256, (h, w)).astype(np.uint8)}[alpha]
        im = Image.fromarray(np.dstack([PALETTE[labels], a]))
    elif mode == "P":
        im = im.convert("P", palette=Image.Palette.ADAPTIVE, colors=NUM_CLASSES)
    return encode(im, draw(st.sampled_from(COLOUR_FORMATS[mode])))


def editor_value(path: str | None, how: str):
    """What the tab's functions get from the Mask editor: `how` = "array": the RGBA array Gradio decodes the
    file to (the path itself when it cannot), "path": the file path (apps.mask2face.mask_of reads it), "empty":
    an editor with nothing in it, "none": None."""
    if how == "none":
        return None
    if how == "empty" or path is None:
        return {"background": None, "layers": [], "composite": None}
    if how == "path":
        return path
    try:
        with Image.open(path) as im:
            arr = np.asarray(im.convert("RGBA"))
    except Exception:  # noqa: BLE001 - not decodable: hand over the file, as a standalone call would
        return {"background": path, "layers": [], "composite": path}
    return {"background": arr, "layers": [], "composite": arr}


EDITOR_FORMS = st.sampled_from(["array", "array", "array", "array", "path", "empty", "none"])
good_seeds = st.one_of(st.none(), st.integers(0, 2 ** 32))
bad_seeds = st.one_of(st.integers(-(2 ** 70), -1), st.integers(2 ** 63, 2 ** 70),
                      st.sampled_from([1.0, 2.5, "3", "x"]), st.floats(allow_nan=True, allow_infinity=True))
mask_seeds = st.one_of(good_seeds, good_seeds, good_seeds, bad_seeds)  # mostly valid: the masks are fuzzed here
part_lists = st.one_of(st.none(), st.just([]), st.just([]), st.lists(st.sampled_from(
    ["eyes", "hair", "mouth", "background", "EYES", "", "wings"]), max_size=3))


def valid_mask(kind: str = "colour", width: int = 300, height: int = 300) -> bytes:
    """The drawn face mask (tests/masks.py) as PNG bytes: a colour mask or a label PNG."""
    from core.labels import PALETTE
    from tests.masks import face_mask

    labels = face_mask(width, height)
    return encode(Image.fromarray(PALETTE[labels]) if kind == "colour" else Image.fromarray(labels, mode="L"), "PNG")


def check_face_result(out, editor) -> None:
    """A result of make_face: the face at the mask's size, the mask in colours, its label PNG (0-19)."""
    face, shown, labels_png = out
    labels = np.asarray(Image.open(labels_png))
    assert face.dtype == np.uint8 and face.ndim == 3 and face.shape[2] == 3
    assert face.shape[:2] == labels.shape == shown.shape[:2] and labels.max() <= 19
    if isinstance(editor, dict) and isinstance(editor.get("composite"), np.ndarray):
        assert labels.shape == editor["composite"].shape[:2], "the face has the mask's size"


def test_mask2face_any_mask(astronaut, folder):
    from apps.mask2face import load_mask_file, make_face

    maybe_photo = st.one_of(st.none(), st.none(), photo_bytes(astronaut))

    @SETTINGS
    @given(mask_bytes(astronaut), EDITOR_FORMS, maybe_photo, mask_seeds, part_lists, maybe_photo, st.booleans())
    @example(valid_mask("colour"), "array", None, 0, [], None, False)       # the valid paths always run too
    @example(valid_mask("labels", 320, 240), "path", None, 3, None, None, False)
    def prop(data, how, style, seed, parts, photo_b, missing):
        path = as_file(folder, data, missing, ".png")
        editor = editor_value(path, how)
        out = check(make_face, editor, as_file(folder, style), seed, parts, as_file(folder, photo_b))
        if out is not None:
            check_face_result(out, editor)
        loaded = check(load_mask_file, path)      # the "label PNG / colour mask" upload next to the editor
        if loaded is not None:
            assert loaded["background"].ndim == 3 and loaded["background"].shape[2] == 3
    prop()


def test_mask2face_photo_any_upload(astronaut, folder):
    from apps.mask2face import edit_photo

    regions = st.sampled_from(["changed", "changed", "face", "face", "", "everything", None])

    face_png = encode(Image.fromarray(astronaut), "PNG")
    photos = st.one_of(st.just(face_png), photo_bytes(astronaut))  # half of them: a face

    @settings(SETTINGS, max_examples=20)
    @given(photos, st.booleans(), mask_bytes(astronaut), EDITOR_FORMS, face_indices, mask_seeds,
           part_lists, st.one_of(st.none(), photo_bytes(astronaut)), regions)
    @example(face_png, False, None, "empty", 0, 0, [], None, "face")           # the valid paths always run too
    @example(face_png, False, valid_mask("colour", 256, 256), "array", None, 1, None, None, "changed")
    def prop(photo, missing, mask, how, face_index, seed, parts, photo_b, region):
        editor = editor_value(as_file(folder, mask, suffix=".png"), how)
        out = check(edit_photo, as_file(folder, photo, missing), editor, face_index, seed, parts,
                    as_file(folder, photo_b), region)
        if out is not None:
            pasted, generated, shown, labels_png = out
            assert pasted.ndim == 3 and pasted.dtype == np.uint8 and generated.shape == (256, 256, 3)
            assert np.asarray(Image.open(labels_png)).shape == shown.shape[:2] == (256, 256)
    prop()


def test_served_mask2face_endpoints_answer_bad_uploads_and_survive(astronaut, folder, tmp_path_factory):
    """Through the served app, Gradio's own upload handling included (it decodes the editor's files before
    make_face runs): each request ends as a result or an error (gradio_client's AppError) within MAX_SECONDS,
    the server stays up, and afterwards it still draws a face for a valid mask. An unreadable file in the editor
    ends as our "Not an image" message (apps.common.MaskEditor; tests/apps/test_api.py checks the message)."""
    pytest.importorskip("gradio_client")
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    from tests.masks import editor, face_mask, save_mask
    from tests.served_app import shared_server

    server = shared_server()
    client = Client(server.url, verbose=False, download_files=str(tmp_path_factory.mktemp("fuzz_downloads")))

    def ask(*args, api_name):
        t0 = time.monotonic()
        try:
            out = client.submit(*args, api_name=api_name).result(timeout=MAX_SECONDS)
            event(f"{api_name}: result")
            with Image.open(out[0]) as im:                    # the face / the edited photo: a real image
                assert min(im.size) >= 1
        except AppError as e:
            event(f"{api_name}: error{' with a message' if 'verbose error reporting' not in str(e) else ''}")
            out = None
        assert time.monotonic() - t0 < MAX_SECONDS
        assert server.alive(), f"the server died on {api_name}:\n{server.log()}"
        return out

    face_png = encode(Image.fromarray(astronaut), "PNG")

    @settings(SETTINGS, max_examples=14)
    @given(st.sampled_from(["/mask2face", "/mask2face_photo"]), mask_bytes(astronaut),
           st.one_of(st.just(face_png), photo_bytes(astronaut)), st.integers(0, 2 ** 32))
    @example("/mask2face_photo", valid_mask("colour", 256, 256), face_png, 0)
    def prop(api_name, mask, photo, seed):
        path = as_file(folder, mask, suffix=".png")
        if api_name == "/mask2face":
            ask(editor(path), None, seed, [], None, api_name=api_name)
        else:
            photo_path = as_file(folder, photo, suffix=".png")
            ask(handle_file(photo_path) if photo_path else None, editor(path), 0, seed, [], None, "changed",
                api_name=api_name)
    prop()
    good = save_mask(face_mask(300), tmp_path_factory.mktemp("fuzz_good_mask"), "colour")
    face = client.submit(editor(good), None, 0, [], None, api_name="/mask2face").result(timeout=MAX_SECONDS)[0]
    assert np.asarray(Image.open(face)).shape == (300, 300, 3), "the server still draws faces afterwards"
