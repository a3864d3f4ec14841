"""Issue 18, hardening for a public Space: each attack class of the issue is refused before it costs memory or
time, with a clear message, no server path and no traceback; concurrency, queue and cache are bounded.

Fast and in process (small inputs; bombs are checked by refusal before allocation, under tracemalloc), except
the request-body test, which uses the shared served app (tests/served_app.py). `python -m benchmarks.hardening`
measures the same cases against the served app (time, peak RSS).
"""
from __future__ import annotations

import io
import json
import logging
import os
import struct
import threading
import time
import tracemalloc
import warnings
import zipfile
import zlib

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from core.errors import FaceLabError, InvalidImage

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

FUZZ = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
MB = 2 ** 20


def png_claiming(width: int, height: int, mode_bytes: bytes = b"\x08\x00") -> bytes:
    """A PNG whose header claims width x height (valid CRC) but holds almost no data (grey, 8-bit by default)."""
    buf = io.BytesIO()
    Image.new("L", (1, 1)).save(buf, "PNG")
    small = bytearray(buf.getvalue())
    ihdr = struct.pack(">II", width, height) + mode_bytes + b"\x00\x00\x00"
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return bytes(small[:16]) + ihdr + crc + bytes(small[33:])


def peak_mb(fn, *args) -> tuple[object, float]:
    """(result or the exception raised, peak traced allocation in MiB) of fn(*args)."""
    tracemalloc.start()
    try:
        try:
            out = fn(*args)
        except Exception as e:  # noqa: BLE001
            out = e
        return out, tracemalloc.get_traced_memory()[1] / MB
    finally:
        tracemalloc.stop()


# ------------------------------------------------------------------------------------ 1. mask pixel limit

def test_mask_array_is_size_checked_before_use():
    from core.pipelines import mask2face as M

    huge = np.broadcast_to(np.zeros(1, np.uint8), (9000, 9000))   # 81 MP, no memory behind it
    t0 = time.monotonic()
    with pytest.raises(InvalidImage, match="too large"):
        M.read_mask(huge)
    assert time.monotonic() - t0 < 0.5
    colour = np.broadcast_to(np.zeros(4, np.uint8), (12000, 12000, 4))
    with pytest.raises(InvalidImage, match="too large"):
        M.read_mask(colour)
    assert M.read_mask(np.zeros((512, 512), np.uint8)).shape == (512, 512)   # a CelebAMask-HQ label map


def test_mask_file_is_size_checked_from_its_header(tmp_path):
    from core.pipelines import mask2face as M

    path = tmp_path / "mask.png"
    path.write_bytes(png_claiming(9000, 9000))
    with pytest.raises(InvalidImage, match="too large"):
        M.read_mask(str(path))


def test_mask_editor_refuses_a_huge_background_before_decoding(tmp_path):
    from gradio.components.image_editor import EditorData
    from gradio.data_classes import FileData

    from apps.common import MaskEditor

    path = tmp_path / "bg.png"
    path.write_bytes(png_claiming(9000, 9000))   # undecodable body: only the header can say "too large"
    editor = MaskEditor(type="numpy", image_mode="RGBA")
    payload = EditorData(background=FileData(path=str(path), orig_name="bg.png"), layers=[], composite=None)
    with pytest.raises(gr.Error, match="too large"):
        editor.preprocess(payload)
    many = EditorData(background=None, composite=None,
                      layers=[FileData(path=str(path), orig_name="l.png")] * 10)
    with pytest.raises(gr.Error, match="layers"):
        editor.preprocess(many)


# ------------------------------------------------------------------------------------ 2. npz bombs

def npz_with(members: dict[str, bytes], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members.items():
            z.writestr(name, data)
    return buf.getvalue()


def npy(a: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(a), allow_pickle=False)
    return buf.getvalue()


def bomb_member(shape: tuple[int, ...], dtype="<f4") -> bytes:
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": dtype, "fortran_order": False, "shape": shape})
    return header.getvalue() + bytes(int(np.prod(shape)) * np.dtype(dtype).itemsize)


def good_members() -> dict[str, bytes]:
    meta = json.dumps({"version": 1, "generator": "stylegan", "fingerprint": "", "from": "sample", "seed": 1})
    return {"meta.npy": npy(np.array(meta)), "ws.npy": npy(np.zeros((12, 512), np.float32))}


def test_npz_zip_bomb_is_refused_before_inflating():
    from core.pipelines import gan as GAN

    bomb = npz_with({**good_members(), "ws.npy": bomb_member((20000, 512))})   # 40 MB of zeros, ~40 kB zipped
    assert len(bomb) < 100_000
    out, peak = peak_mb(GAN.load_code, bomb)
    assert isinstance(out, FaceLabError) and "bytes uncompressed" in str(out), out
    assert peak < 2, f"{peak:.1f} MiB allocated to refuse a zip bomb"


def test_npz_headers_are_checked_before_loading():
    from core.pipelines import gan as GAN

    assert GAN.load_code(npz_with(good_members())).ws.shape == (12, 512)
    cases = {
        "members": {**good_members(), **{f"x{i}.npy": npy(np.zeros(1)) for i in range(10)}},
        "unexpected member": {**good_members(), "evil.npy": npy(np.zeros(1))},
        "dtype": {**good_members(), "ws.npy": npy(np.zeros((12, 512), np.complex64))},
        "shape": {**good_members(), "ws.npy": npy(np.zeros((12, 512, 2), np.float32))},
        "missing": {"meta.npy": good_members()["meta.npy"]},
        "header says": {**good_members(), "ws.npy": npy(np.zeros((12, 512), np.float32))[:-100]},
    }
    for what, members in cases.items():
        with pytest.raises(FaceLabError, match="not a FaceLab latent code"):
            GAN.load_code(npz_with(members))
    pickled = io.BytesIO()
    np.savez(pickled, meta=np.array("{}"), ws=np.array([object()], dtype=object))
    with pytest.raises(FaceLabError, match="dtype"):
        GAN.load_code(pickled.getvalue())


@pytest.mark.parametrize("field,value,match", [
    ("ws", np.full((12, 512), np.nan, np.float32), "NaN"),
    ("ws", np.full((12, 512), 1e30, np.float32), "beyond"),
    ("const", np.zeros((4, 4), np.float32), "shape"),
    ("const", np.full((8, 4, 4), np.inf, np.float32), "NaN"),
    ("matrix", np.zeros((3, 3)), "shape"),
    ("matrix", np.array([[1, 0, np.nan], [0, 1, 0]]), "NaN"),
    ("source_size", np.array(["a", "b"]), "dtype"),
    ("source_size", np.array([0, -5]), "size of a photo"),
    ("source_size", np.array([10 ** 6, 10 ** 6]), "size of a photo"),
])
def test_npz_field_values_are_validated(field, value, match):
    from core.pipelines import gan as GAN

    members = {**good_members(), f"{field}.npy": npy(value)}
    with pytest.raises(FaceLabError, match=match):
        GAN.load_code(npz_with(members))


@pytest.mark.parametrize("meta", [[1, 2], "text", {"version": 1, "generator": 5},
                                  {"version": 1, "edits": "age"}, {"version": 1, "edits": {"age": "x"}},
                                  {"version": 1, "seed": {"nested": 1}}, {"version": 99}])
def test_npz_meta_types_are_validated(meta):
    from core.pipelines import gan as GAN

    members = {**good_members(), "meta.npy": npy(np.array(json.dumps(meta)))}
    with pytest.raises(FaceLabError, match="not a FaceLab latent code"):
        GAN.load_code(npz_with(members))


_DTYPES = ["<f4", "<f8", "<i8", "|u1", "<U8", "<c8", "|b1"]


@st.composite
def archives(draw) -> bytes:
    """Random archives around a valid code: extra, missing or renamed members, odd dtypes and shapes, NaN, huge
    values, truncated data, headers that lie about the size."""
    members = dict(good_members())
    for _ in range(draw(st.integers(0, 4))):
        name = draw(st.sampled_from(["ws", "const", "matrix", "source_size", "meta", "extra", "../x", "ws.npy"]))
        kind = draw(st.sampled_from(["array", "lying header", "truncated", "garbage"]))
        shape = tuple(draw(st.lists(st.integers(1, 600), min_size=0, max_size=3)))
        dtype = draw(st.sampled_from(_DTYPES))
        if kind == "array":
            fill = draw(st.sampled_from([0.0, 1.0, np.nan, np.inf, 1e30, -3.0]))
            a = np.full(shape, fill if np.dtype(dtype).kind in "fc" else 1, dtype=np.dtype(dtype)) \
                if np.dtype(dtype).kind != "U" else np.full(shape, "x", dtype)
            data = npy(a)
        elif kind == "lying header":
            data = bomb_member(shape or (1,), dtype if np.dtype(dtype).kind != "U" else "<f4")[:200]
        elif kind == "truncated":
            data = npy(np.zeros((12, 512), np.float32))[:draw(st.integers(0, 300))]
        else:
            data = draw(st.binary(max_size=64))
        members[f"{name}.npy"] = data
    if draw(st.booleans()):
        members.pop(draw(st.sampled_from(sorted(members))), None)
    return npz_with(members, draw(st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])))


@FUZZ
@given(data=archives())
def test_fuzz_npz_archives(data):
    from core.pipelines import gan as GAN

    try:
        code = GAN.load_code(data)
    except FaceLabError as e:
        assert "/" not in str(e).split(":")[0]
        return
    assert code.ws.ndim == 2 and np.isfinite(code.ws).all() and np.abs(code.ws).max() <= GAN.MAX_ABS_LATENT


# ------------------------------------------------------------------------------------ 3. Gradio's own decoding

def grey16_png(tmp_path) -> tuple[str, np.ndarray]:
    from skimage import data

    grey = np.asarray(Image.fromarray(data.astronaut()).convert("L"))
    path = tmp_path / "grey16.png"
    Image.fromarray(grey.astype(np.uint16) * 257).save(path)
    return str(path), grey


def test_photo_input_hands_over_the_file_undecoded(tmp_path):
    from gradio.data_classes import FileData

    from apps.common import photo_input
    from core.imageio import load_image

    photo = photo_input()
    assert photo.image_mode is None and photo.type == "filepath"
    path, grey = grey16_png(tmp_path)
    got = photo.preprocess(FileData(path=path, orig_name="grey16.png"))
    assert got == path                                   # not re-encoded by Gradio
    rgb = load_image(got)
    assert np.abs(rgb[..., 0].astype(int) - grey).max() <= 1 and rgb.mean() < 200   # not white


def test_photo_input_refuses_a_huge_header_before_decoding(tmp_path):
    from gradio.data_classes import FileData

    from apps.common import photo_input

    path = tmp_path / "big.png"
    path.write_bytes(png_claiming(12000, 12000, b"\x10\x00"))     # 16-bit grey, 144 MP
    out, peak = peak_mb(photo_input().preprocess, FileData(path=str(path), orig_name="big.png"))
    assert isinstance(out, gr.Error) and "too large" in str(out), out
    assert peak < 5


@pytest.mark.parametrize("mode", ["I;16", "I", "F"])
def test_16bit_grey_is_scaled_not_clipped(mode):
    from core.imageio import load_image

    a = np.linspace(0, 65535, 64 * 64).reshape(64, 64)
    im = Image.fromarray(a.astype(np.uint16)) if mode == "I;16" else Image.fromarray(a.astype(
        np.int32 if mode == "I" else np.float32), mode)
    out = load_image(im)[..., 0].astype(int)
    assert abs(out.mean() - 127.5) < 2 and out.min() == 0 and out.max() == 255


# ------------------------------------------------------------------------------------ 4. data: URLs and body size

def test_large_data_url_is_refused_before_decoding():
    from gradio.data_classes import FileData

    from apps.common import MAX_JSON_BODY, photo_input

    url = "data:image/png;base64," + "A" * (MAX_JSON_BODY + 10)
    with pytest.raises(gr.Error, match="data: URL"):
        photo_input().preprocess(FileData(url=url, path="x.png"))
    big = "data:image/png;base64," + __import__("base64").b64encode(png_claiming(12000, 12000)).decode()
    with pytest.raises(gr.Error, match="too large"):
        photo_input().preprocess(FileData(url=big, path="x.png"))


def test_body_limit_middleware():
    from starlette.applications import Starlette
    from starlette.middleware import Middleware
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from apps.common import BodyLimit

    async def echo(request):
        return PlainTextResponse(str(len(await request.body())))

    app = Starlette(routes=[Route("/x", echo, methods=["POST"])], middleware=[Middleware(BodyLimit, max_bytes=1000)])
    client = TestClient(app)
    assert client.post("/x", content=b"a" * 1000).text == "1000"
    r = client.post("/x", content=b"a" * 1001, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "data: URL" in r.json()["error"]
    files = {"files": ("a.png", b"a" * 5000, "image/png")}   # uploads keep Gradio's own max_file_size
    assert client.post("/x", files=files).status_code == 200


def test_served_app_refuses_a_large_json_body():
    pytest.importorskip("gradio_client")
    import urllib.error
    import urllib.request

    from apps.common import MAX_JSON_BODY
    from tests.served_app import shared_server

    server = shared_server()
    body = json.dumps({"data": [{"path": "x.png", "url": "data:image/png;base64," + "A" * (MAX_JSON_BODY + 10),
                                 "meta": {"_type": "gradio.FileData"}}, 0], "fn_index": 0,
                       "session_hash": "abc"}).encode()
    rss0 = server.rss()
    req = urllib.request.Request(server.url + "gradio_api/queue/join", data=body,
                                 headers={"content-type": "application/json"})
    try:
        urllib.request.urlopen(req, timeout=60)
        raise AssertionError("a JSON body over the limit was accepted")
    except urllib.error.HTTPError as e:
        assert e.code == 413
    except (urllib.error.URLError, ConnectionError):
        pass  # refused before the body was read: the server may close while the client is still sending
    assert server.alive() and server.rss() - rss0 < 50 * MB


# ------------------------------------------------------------------------------------ 5. temp folders, cache

def test_downloads_go_to_gradios_cache_not_temp_folders(monkeypatch):
    from gradio.utils import get_upload_folder

    from apps import invert, mask2face
    from core.pipelines import gan as GAN

    def no_mkdtemp(*a, **k):
        raise AssertionError("a per-request temp folder (never removed)")

    monkeypatch.setattr("tempfile.mkdtemp", no_mkdtemp)
    cache = os.path.realpath(get_upload_folder())
    png = mask2face.label_png(np.zeros((64, 64), np.uint8))
    code = invert.code_file(GAN.LatentCode(ws=np.zeros((12, 512), np.float32)))
    for path in (png, code):
        assert os.path.realpath(path).startswith(cache + os.sep) and os.path.exists(path)
    assert mask2face.label_png(np.zeros((64, 64), np.uint8)) == png   # same bytes, same file: no growth


def test_parse_writes_no_temp_folder(monkeypatch, astronaut, tmp_path):
    import hub

    if not hub.available("parser"):
        pytest.skip("parser not bundled")
    from apps import parse

    monkeypatch.setattr("tempfile.mkdtemp", lambda *a, **k: (_ for _ in ()).throw(AssertionError("mkdtemp")))
    photo = tmp_path / "a.png"
    Image.fromarray(astronaut).save(photo)
    _, labels, _ = parse.parse(str(photo), 0, 0.5, progress=lambda *a, **k: None)
    assert Image.open(labels).size == (512, 512)


def test_prune_cache_bounds_the_folder(tmp_path):
    from apps.common import cache_size, prune_cache

    old = time.time() - 3600
    for i in range(20):
        d = tmp_path / f"h{i:02d}"
        d.mkdir()
        (d / "f.bin").write_bytes(b"x" * 1000)
        os.utime(d / "f.bin", (old + i, old + i))
    (tmp_path / "new.bin").write_bytes(b"x" * 1000)          # too young to prune
    prune_cache(str(tmp_path), max_bytes=5000, min_age=60)
    total, files = cache_size(str(tmp_path))
    assert total <= 5000 and (tmp_path / "new.bin").exists() and (tmp_path / "h19" / "f.bin").exists()
    assert not (tmp_path / "h00").exists()                  # the oldest went first, folder and all


# ------------------------------------------------------------------------------------ 6. clear messages

def test_damaged_exif_does_not_break_a_photo(monkeypatch, astronaut):
    from PIL import ImageOps

    from benchmarks.hardening import broken_exif_jpeg
    from core.imageio import load_image

    real = broken_exif_jpeg(astronaut)                      # a real damaged EXIF block: Pillow raises on it
    with pytest.raises(struct.error):
        ImageOps.exif_transpose(Image.open(io.BytesIO(real)))
    assert load_image(real).shape == (512, 512, 3)

    buf = io.BytesIO()
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(astronaut).save(buf, "JPEG", exif=exif.tobytes())

    def broken(im, *a, **k):
        raise struct.error("unpack requires a buffer of 12 bytes")   # what a malformed EXIF IFD gives

    monkeypatch.setattr(ImageOps, "exif_transpose", broken)
    assert load_image(buf.getvalue()).shape == (512, 512, 3)


@pytest.fixture(scope="module")
def hardened_app():
    import app
    from apps.common import harden

    return harden(app.build_app())


def _inputs(blocks, kind):
    return {id(b): b for fn in blocks.fns.values() for b in fn.inputs if isinstance(b, kind)}.values()


def test_text_in_a_file_input_is_a_message(hardened_app):
    files = list(_inputs(hardened_app, (gr.Image, gr.File, gr.ImageEditor)))
    assert files
    for block in files:
        with pytest.raises(gr.Error, match="takes a file") as e:
            block.data_model.model_validate("some text")
        assert e.value.print_exception is False


@FUZZ
@given(value=st.one_of(st.none(), st.text(max_size=20), st.booleans(), st.floats(allow_nan=True),
                       st.integers(-10 ** 30, 10 ** 30), st.lists(st.integers(), max_size=3),
                       st.dictionaries(st.text(max_size=3), st.integers(), max_size=2)))
def test_fuzz_numeric_api_arguments(hardened_app, value):
    """None, text, NaN, huge numbers, lists... in any slider or number box: a value or a message, never a bare
    Error (yaw=None through the API used to be a TypeError in Gradio's Slider)."""
    for block in _inputs(hardened_app, (gr.Slider, gr.Number)):
        try:
            block.preprocess(value)
        except gr.Error as e:
            assert str(e) and e.print_exception is False


def test_pose_keeps_the_faces_own_angle_for_none(hardened_app):
    sliders = [b for b in _inputs(hardened_app, gr.Slider) if "yaw" in str(b.label).lower()]
    assert sliders and all(b.preprocess(None) is None for b in sliders)


def test_edit_slider_values_are_checked(tmp_path):
    from apps import invert

    code = invert.code_file(__import__("core.pipelines.gan", fromlist=["x"]).LatentCode(
        ws=np.zeros((12, 512), np.float32)))
    for bad in ("abc", float("nan"), 1e30):
        with pytest.raises(gr.Error, match="Slider"):
            invert.edit(code, None, bad)


# ------------------------------------------------------------------------------------ 7. warnings filter

def test_no_catch_warnings_in_the_image_reader(monkeypatch, astronaut):
    from core.imageio import load_image

    def unsafe(*a, **k):
        raise AssertionError("warnings.catch_warnings swaps the process-wide filters: not thread-safe")

    monkeypatch.setattr(warnings, "catch_warnings", unsafe)
    buf = io.BytesIO()
    Image.fromarray(astronaut).save(buf, "PNG")
    assert load_image(buf.getvalue()).shape == (512, 512, 3)
    with pytest.raises(InvalidImage, match="too large"):
        load_image(png_claiming(10000, 10000))               # 100 MP: Pillow's warning range
    with pytest.raises(InvalidImage, match="too large"):
        load_image(png_claiming(20000, 20000))               # 400 MP: Pillow's error range


def test_concurrent_reads_leave_the_warning_filters_alone():
    from core.imageio import load_image

    before = list(warnings.filters)
    data = [png_claiming(10000, 10000), png_claiming(7000, 7000)]

    def work():
        for _ in range(50):
            for d in data:
                with pytest.raises(InvalidImage):
                    load_image(d)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert warnings.filters == before


# ------------------------------------------------------------------------------------ 8. paths and logs

def test_messages_carry_no_server_path(caplog):
    from apps.common import public_message, user_errors

    assert public_message("Cannot open /tmp/gradio/3f2a/photo.png: gone") == "Cannot open photo.png: gone"
    assert public_message("values 0/19, https://huggingface.co/a/b") == "values 0/19, https://huggingface.co/a/b"

    @user_errors
    def fails():
        raise FaceLabError("Refusing /work/app/checkpoints/parser/model.safetensors: sha256 mismatch")

    with caplog.at_level(logging.INFO, logger="facelab"):
        with pytest.raises(gr.Error) as e:
            fails()
    assert "/work" not in str(e.value) and "model.safetensors" in str(e.value)
    assert e.value.print_exception is False                  # Gradio prints no traceback for it
    lines = [r for r in caplog.records if r.name == "facelab"]
    assert len(lines) == 1 and lines[0].exc_info is None and "\n" not in lines[0].getMessage()


def test_missing_photo_message_has_no_path():
    from core.imageio import load_image

    with pytest.raises(InvalidImage) as e:
        load_image("/definitely/not/here/photo.png")
    assert "/definitely" not in str(e.value) and "photo.png" in str(e.value)


def test_unexpected_errors_are_a_sentence_not_a_bare_error():
    from apps.common import user_errors

    @user_errors
    def bug():
        raise KeyError("x")

    with pytest.raises(gr.Error, match="went wrong"):
        bug()


# ------------------------------------------------------------------------------------ 9. concurrency budget

def test_one_global_concurrency_budget(hardened_app):
    from apps import common

    assert common.CONCURRENCY * common.TORCH_THREADS <= max(common.cpu_count(), common.CONCURRENCY)
    fns = list(hardened_app.fns.values())
    assert len(fns) > 8
    assert {fn.concurrency_id for fn in fns} == {common.CONCURRENCY_ID}
    assert {fn.concurrency_limit for fn in fns} == {common.CONCURRENCY}
    assert common.QUEUE["max_size"] and common.QUEUE["max_size"] <= 256
    assert hardened_app.delete_cache == common.DELETE_CACHE


def test_hub_load_does_not_hold_the_global_lock_while_building(monkeypatch):
    from core import loading  # builds models from the folders hub verifies

    started, release = threading.Event(), threading.Event()

    class Slow:
        @classmethod
        def from_pretrained(cls, folder, device=None, dtype=None):
            started.set()
            release.wait(10)
            return "slow model"

    monkeypatch.setitem(loading.MODEL_CLASSES, "slow-model", Slow)
    monkeypatch.setattr(loading, "resolve", lambda name: "folder")
    import torch

    ready = ("ready-model", "cpu", torch.float32)
    monkeypatch.setitem(loading._loaded, ready, "ready")
    t = threading.Thread(target=loading.load_model, args=("slow-model",))
    t.start()
    try:
        assert started.wait(10)
        t0 = time.monotonic()
        got = []
        other = threading.Thread(target=lambda: got.append(loading.load_model("ready-model")))
        other.start()
        other.join(2)
        assert got == ["ready"] and time.monotonic() - t0 < 2
    finally:
        release.set()
        t.join(10)
        loading._loaded.pop(("slow-model", "cpu", torch.float32), None)


# ------------------------------------------------------------------------------------ 10. hub

@pytest.fixture
def local_model(tmp_path, monkeypatch):
    from core import loading
    from hub import registry, store

    folder = tmp_path / "tiny"
    folder.mkdir()
    (folder / "config.json").write_text('{"a": 1}')
    entry = registry.ModelEntry(name="tiny", files={"config.json": store.sha256_file(
        folder / "config.json")}, licence="t", data_terms="t", retrain="t")
    monkeypatch.setitem(registry.MODELS, "tiny", entry)
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path))
    monkeypatch.setattr(store, "BUNDLED_ROOT", tmp_path / "none")
    loading.clear_cache()
    yield folder
    loading.clear_cache()


def test_swapped_file_is_refused_after_the_first_check(local_model):
    import hub

    assert hub.resolve("tiny") == local_model
    (local_model / "config.json").write_text('{"a": 2}')     # swapped after it was verified
    with pytest.raises(hub.ChecksumMismatch):
        hub.resolve("tiny")


def test_checksum_mismatch_is_not_called_untrained(local_model):
    from apps.common import model_status

    (local_model / "config.json").write_text('{"evil": 1}')
    ready, note = model_status(["tiny"], "Tiny", "python -m train.tiny")
    assert not ready and "sha256" in note and "not been trained" not in note
    assert str(local_model) not in note


@pytest.mark.parametrize("folder", ["../..", "..", "a/b", "/etc", "a\\b", "~root", ".hidden/../x"])
def test_registry_folder_is_one_plain_name(folder):
    from hub import registry

    with pytest.raises(ValueError, match="folder"):
        registry.ModelEntry(name="x", files={"config.json": "0" * 64}, licence="t",
                            data_terms="t", retrain="t", folder=folder)
