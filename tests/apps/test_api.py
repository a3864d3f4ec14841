"""The served app through `gradio_client`: every working endpoint by its stable api_name, and bad input.

One app subprocess per test session (tests/served_app.py), on 127.0.0.1 with a free port.
"""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

from core.labels import ID  # noqa: E402
from tests.masks import editor, face_mask, save_mask  # noqa: E402
from tests.served_app import shared_server  # noqa: E402

pytestmark = pytest.mark.slow  # one served app subprocess, every endpoint through gradio_client

# every tab's endpoints (a tab whose models are not bundled has none)
ENDPOINTS = ["/analyze", "/parse", "/mask2face", "/mask2face_photo", "/deocclude", "/reconstruct", "/sample",
             "/interpolate", "/pose", "/invert", "/edit", "/gan_sample"]
TIMEOUT = 240  # s per request: first model load on a loaded 2-core CPU


@pytest.fixture(scope="module")
def server():
    return shared_server()


@pytest.fixture(scope="module")
def client(server, tmp_path_factory):
    return Client(server.url, verbose=False, download_files=str(tmp_path_factory.mktemp("client_downloads")))


@pytest.fixture(scope="module")
def photo(astronaut, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("api_photos") / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    return str(path)


def call(client: Client, *args, api_name: str):
    """predict with a timeout: a hung request fails the test instead of hanging the suite."""
    return client.submit(*args, api_name=api_name).result(timeout=TIMEOUT)


def read(path: str) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_stable_api_names(client):
    names = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert set(ENDPOINTS) <= set(names), sorted(names)


def test_analyze(client, photo, astronaut):
    annotated, crop, table = call(client, handle_file(photo), 0, api_name="/analyze")
    assert read(annotated).shape == astronaut.shape
    assert read(crop).shape == (256, 256, 3)
    rows = table["data"]
    assert len(rows) == 1, rows  # the astronaut has one face
    face, bbox, score, detector, yaw, pitch, roll, visible = rows[0]
    assert face == 0 and score > 0 and abs(float(yaw)) < 30
    assert detector == "learned" and visible.startswith(("66/68", "67/68", "68/68")), rows  # an unoccluded face


def test_parse_label_png(client, photo, astronaut):
    shown, labels_png = call(client, handle_file(photo), 0, 0.5, api_name="/parse")
    labels = read(labels_png)
    assert labels.shape == astronaut.shape[:2], "the label PNG has the photo's size, one value per pixel"
    assert labels.dtype == np.uint8 and labels.max() <= 19
    counts = np.bincount(labels.ravel(), minlength=20)
    assert counts[1] > 0.02 * labels.size, "skin is present"
    assert counts[1] > counts[2] > 0, "more skin than nose, and a nose"
    assert read(shown).shape == astronaut.shape


def test_reconstruct(client, photo, astronaut):
    crop, masked, mask, coarse, refined, pasted = call(client, handle_file(photo), 0, api_name="/reconstruct")
    assert read(pasted).shape == astronaut.shape
    shapes = {name: read(p).shape for name, p in
              dict(crop=crop, masked=masked, mask=mask, coarse=coarse, refined=refined).items() if p}
    assert shapes, "at least one VAE is bundled"
    for name, shape in shapes.items():
        assert shape[0] == shape[1] and shape[0] >= 64 and shape[2] == 3, (name, shape)
    if masked:
        assert shapes["masked"][:2] == shapes["mask"][:2] == (144, 144)
    if coarse:
        assert shapes["coarse"][:2] == (128, 128)


@pytest.mark.parametrize("model", ["masked-vae", "multistage-vae"])
def test_sample_is_deterministic_per_seed(client, model):
    choices = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/sample"]["parameters"]
    a, b, c = (read(call(client, seed, model, api_name="/sample")) for seed in (7, 7, 8))
    assert a.ndim == 3 and a.shape[2] == 3 and a.shape[0] >= 64, (choices, a.shape)
    assert np.array_equal(a, b), "same seed, same face"
    assert not np.array_equal(a, c), "another seed, another face"


def test_interpolate(client, photo, astronaut, tmp_path):
    flipped = tmp_path / "flipped.png"
    Image.fromarray(np.ascontiguousarray(astronaut[:, ::-1])).save(flipped)
    out = call(client, handle_file(photo), handle_file(str(flipped)), 0.5, "masked-vae", api_name="/interpolate")
    out = out[0] if isinstance(out, (tuple, list)) else out
    assert read(out).ndim == 3


def test_pose_turns_the_face_only(client, photo, astronaut):
    """/pose (photo, yaw, pitch, guide, face index) on the astronaut (her own yaw ~ -1°) to yaw +20°, pitch 0: the
    photo comes back at its size, changed on the face and bit-identical away from it (the crop is pasted back with
    a feathered border), the 128 px crops, and the measured line names the target."""
    from core import face as F

    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]["/pose"]
    assert [p["parameter_name"] for p in named["parameters"]] == ["photo", "yaw", "pitch", "guide", "face_index"]
    result, crop, warped, mask, lm_in, lm_out, measured = call(client, handle_file(photo), 20, 0, None, 0,
                                                               api_name="/pose")
    out = read(result)
    assert out.shape == astronaut.shape, "the photo's size"
    assert read(crop).shape == read(warped).shape == (128, 128, 3) and read(mask).shape[:2] == (128, 128)
    assert read(lm_in).shape[:2] == read(lm_out).shape[:2]
    assert "Target yaw **+20.0°**, pitch **+0.0°**" in measured, measured
    changed = np.abs(out.astype(int) - astronaut).max(-1) > 0
    x0, y0, x1, y1 = F.detect_faces(astronaut)[0].bbox
    w, h = x1 - x0, y1 - y0
    near = np.zeros_like(changed)
    near[max(0, y0 - h):y1 + h, max(0, x0 - w):x1 + w] = True       # the face box grown by its size each side
    face_box = changed[y0:y1, x0:x1]
    assert face_box.mean() > 0.5, f"only {face_box.mean():.0%} of the face box changed"
    assert np.abs(out[y0:y1, x0:x1].astype(int) - astronaut[y0:y1, x0:x1]).mean() > 5, "a visible change"
    assert not changed[~near].any(), f"{changed[~near].sum()} pixels changed far from the face"


@pytest.fixture(scope="module")
def masks(tmp_path_factory) -> dict[str, str]:
    """The drawn face mask (tests/masks.py) as files: a 300 px colour mask, the same as a label PNG, and a
    320 x 240 colour mask."""
    folder = tmp_path_factory.mktemp("api_masks")
    square = face_mask(300)
    return {"colour": save_mask(square, folder, "colour"), "labels": save_mask(square, folder, "labels"),
            "wide": save_mask(face_mask(320, 240), folder, "colour")}


def test_mask2face_seeds_and_mask_files(client, masks):
    """/mask2face: a face at the mask's size; the same seed twice gives the same face, another seed another face;
    a colour mask and the label PNG of the same labels give the same face; the mask used is the one sent."""
    face, shown, labels_png = call(client, editor(masks["colour"]), None, 7, [], None, api_name="/mask2face")
    a = read(face)
    assert a.shape == (300, 300, 3) and a.dtype == np.uint8
    assert a.std() > 10, "a face, not a flat image"
    np.testing.assert_array_equal(read(labels_png), face_mask(300))
    assert read(shown).shape == (300, 300, 3)
    again = read(call(client, editor(masks["colour"]), None, 7, [], None, api_name="/mask2face")[0])
    assert np.array_equal(a, again), "same seed, same face"
    other = read(call(client, editor(masks["colour"]), None, 8, [], None, api_name="/mask2face")[0])
    assert other.shape == a.shape and np.abs(other.astype(int) - a).mean() > 2, "another seed, another face"
    from_labels = read(call(client, editor(masks["labels"]), None, 7, [], None, api_name="/mask2face")[0])
    assert np.array_equal(from_labels, a), "a label PNG and its colour mask are the same mask"


def test_mask2face_keeps_a_non_square_mask_size(client, masks):
    face, _, labels_png = call(client, editor(masks["wide"]), None, 0, [], None, api_name="/mask2face")
    assert read(face).shape == (240, 320, 3)
    np.testing.assert_array_equal(read(labels_png), face_mask(320, 240))


def test_mask2face_photo_edits_the_photo_at_its_size(client, photo, astronaut, tmp_path):
    """/mask2face_photo on the astronaut: with an empty editor the photo's own mask is used and nothing changes;
    with that mask edited (the hair turned into a hat) the photo changes there, keeps its size, and pixels far
    from the face stay the photo's own."""
    pasted, generated, _, own_png = call(client, handle_file(photo), editor(None), 0, 0, [], None, "changed",
                                         api_name="/mask2face_photo")
    assert np.array_equal(read(pasted), astronaut), "no edit, nothing pasted: the photo itself"
    assert read(generated).shape == (256, 256, 3)
    own = read(own_png)
    assert own.shape == (256, 256) and own.max() <= 19
    assert (own == ID["hair"]).sum() > 500, "the astronaut's hair is in her mask"

    edited = np.where(own == ID["hair"], ID["hat"], own).astype(np.uint8)
    mask_path = save_mask(edited, tmp_path, "colour", "edited.png")
    pasted, generated, _, used_png = call(client, handle_file(photo), editor(mask_path), 0, 0, [], None,
                                          "changed", api_name="/mask2face_photo")
    out = read(pasted)
    assert out.shape == astronaut.shape, "the edited photo has the photo's size"
    np.testing.assert_array_equal(read(used_png), edited)
    changed = np.abs(out.astype(int) - astronaut).max(-1) > 0
    assert 500 < changed.sum() < 0.5 * changed.size, f"{changed.sum()} pixels changed"
    assert not changed[-64:].any() and not changed[:, -64:].any(), "far from the face (suit, right edge): unchanged"


def test_mask2face_bad_inputs_are_user_messages(client, server, tmp_path, photo, masks):
    bad = tmp_path / "not_a_photo.png"
    bad.write_bytes(b"this is not an image" * 10)
    with pytest.raises(AppError, match="Draw a mask first"):
        call(client, editor(None), None, 0, [], None, api_name="/mask2face")
    with pytest.raises(AppError, match="does not look like a colour mask"):
        call(client, editor(photo), None, 0, [], None, api_name="/mask2face")
    with pytest.raises(AppError, match="Not an image"):   # the style photo: a photo input
        call(client, editor(masks["colour"]), handle_file(str(bad)), 0, [], None, api_name="/mask2face")
    with pytest.raises(AppError, match="(?i)seed|minimum"):
        call(client, editor(masks["colour"]), None, -1, [], None, api_name="/mask2face")
    with pytest.raises(AppError, match="photo B"):
        call(client, editor(masks["colour"]), None, 0, ["eyes"], None, api_name="/mask2face")
    with pytest.raises(AppError, match="Not an image"):
        call(client, handle_file(str(bad)), editor(None), 0, 0, [], None, "changed", api_name="/mask2face_photo")
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((256, 256, 3), 128, np.uint8)).save(blank)
    with pytest.raises(AppError, match="(?i)face"):
        call(client, handle_file(str(blank)), editor(None), 0, 0, [], None, "changed", api_name="/mask2face_photo")
    assert server.alive()


def test_unreadable_file_in_the_mask_editor_is_a_user_message(client, server, tmp_path, masks):
    bad = tmp_path / "not_a_mask.png"
    bad.write_bytes(b"this is not an image" * 10)
    try:
        with pytest.raises(AppError, match="(?i)not an image|damaged"):
            call(client, editor(str(bad)), None, 0, [], None, api_name="/mask2face")
    finally:  # whatever the message, the server survives and still answers
        assert server.alive()
        assert read(call(client, editor(masks["colour"]), None, 0, [], None, api_name="/mask2face")[0]).shape \
            == (300, 300, 3)


def test_non_image_upload_is_a_clean_error_and_server_survives(client, server, tmp_path, photo):
    bad = tmp_path / "not_a_photo.png"
    bad.write_bytes(b"this is not an image" * 10)
    for api_name, args in [("/analyze", (0,)), ("/parse", (0, 0.5)), ("/reconstruct", (0,)),
                           ("/pose", (20, 0, None, 0))]:
        with pytest.raises(AppError) as e:
            call(client, handle_file(str(bad)), *args, api_name=api_name)
        assert "Not an image" in str(e.value), str(e.value)
    assert server.alive()
    annotated, _, table = call(client, handle_file(photo), 0, api_name="/analyze")
    assert len(table["data"]) == 1, "the server still answers correctly afterwards"


def test_no_face_is_a_user_message(client, tmp_path):
    blank = tmp_path / "blank.png"
    Image.fromarray(np.full((256, 256, 3), 128, np.uint8)).save(blank)
    with pytest.raises(AppError, match="(?i)face"):
        call(client, handle_file(str(blank)), 0, api_name="/analyze")
    with pytest.raises(AppError, match="(?i)face"):
        call(client, handle_file(str(blank)), 20, 0, None, 0, api_name="/pose")


def test_face_index_out_of_range_is_a_user_message(client, photo):
    with pytest.raises(AppError, match="(?i)face"):
        call(client, handle_file(photo), 5, api_name="/analyze")


def test_invert_then_edit(client, photo, astronaut):
    """/invert (photo, face index, refinement steps) on the astronaut: the 128 px crop and reconstruction, the
    reconstruction pasted into the photo at its size, the measured quality line and the latent code; then /edit
    (code, photo, slider values in the directions' order) with yaw +3: a different face, pasted at the photo's size."""
    from core.pipelines import gan as GAN

    named = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
    assert [p["parameter_name"] for p in named["/invert"]["parameters"]] == ["photo", "face_index", "refine"]
    crop, recon, pasted, quality, code = call(client, handle_file(photo), 0, 0, api_name="/invert")
    assert read(crop).shape == read(recon).shape == (128, 128, 3)
    assert read(pasted).shape == astronaut.shape
    assert "PSNR" in quality and "dlib identity distance" in quality, quality
    assert GAN.load_code(code).ws.shape == (12, 512)
    names = [s.name for s in GAN.sliders()]
    values = [3.0 if n == "yaw" else 0.0 for n in names]
    edited, pasted_edit = call(client, handle_file(code), handle_file(photo), *values, api_name="/edit")
    assert read(edited).shape == (128, 128, 3)
    assert np.abs(read(edited).astype(int) - read(recon)).mean() > 3, "yaw +3 changes the face"
    assert read(pasted_edit).shape == astronaut.shape


def test_gan_sample_is_seeded(client):
    """/gan_sample (seed, truncation): the same seed gives the same 128 px face, another seed another face."""
    a = read(call(client, 7, 0.7, api_name="/gan_sample")[1])
    b = read(call(client, 7, 0.7, api_name="/gan_sample")[1])
    c = read(call(client, 8, 0.7, api_name="/gan_sample")[1])
    assert a.shape == (128, 128, 3) and np.array_equal(a, b) and not np.array_equal(a, c)
