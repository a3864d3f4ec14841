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

from tests.served_app import shared_server  # noqa: E402

ENDPOINTS = ["/analyze", "/parse", "/reconstruct", "/sample", "/interpolate"]
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
    face, bbox, score, detector, yaw, pitch, roll = rows[0]
    assert face == 0 and score > 0 and abs(float(yaw)) < 30


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


def test_non_image_upload_is_a_clean_error_and_server_survives(client, server, tmp_path, photo):
    bad = tmp_path / "not_a_photo.png"
    bad.write_bytes(b"this is not an image" * 10)
    for api_name, args in [("/analyze", (0,)), ("/parse", (0, 0.5)), ("/reconstruct", (0,))]:
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


def test_face_index_out_of_range_is_a_user_message(client, photo):
    with pytest.raises(AppError, match="(?i)face"):
        call(client, handle_file(photo), 5, api_name="/analyze")
