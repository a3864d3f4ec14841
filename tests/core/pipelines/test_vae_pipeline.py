"""core/pipelines/vae.py, the `reconstruct` / `sample` subcommands and the VAE tab.

Behaviour of the pipeline is checked with tiny untrained models (a tiny config, save_pretrained into a temp
folder, registered with temporary hub entries). The real masked VAE is checked only when its bundled
checkpoint is available.
"""
from __future__ import annotations

import os

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

import hub
from cli import main as cli
from core import face as F
from core import loading
from core.imageio import load_image
from core.labels import VAE_FACE
from core.models.masked_vae import MaskedVAE
from core.models.multistage_vae import MultiStageVAE
from core.pipelines import vae as V
from tests.conftest import build_without_models, serve_models

SIZE = V.MODEL_SIZE


def _masked():
    return MaskedVAE


def _multistage():
    return MultiStageVAE


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    """$FACELAB_CHECKPOINTS-style folder with tiny masked-vae/ and multistage-vae/ models."""
    root = tmp_path_factory.mktemp("vae_ckpt")
    torch.manual_seed(0)
    models = {"masked-vae": MaskedVAE(latent_dim=16, width_mult=0.125),
              "multistage-vae": MultiStageVAE(latent_dim=16, widths=(8, 8, 8, 8), refine_ch=8, n_res=1)}
    for name, model in models.items():
        for module in model.modules():  # He init: PyTorch's default fades z out of a deep untrained decoder
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        model.save_pretrained(str(root / name), card="# tiny\n")
    return root


@pytest.fixture
def tiny_models(tiny_root, monkeypatch):
    """The hub serves the tiny models under the real names (temporary registry entries)."""
    yield from serve_models(monkeypatch, tiny_root, {"masked-vae": _masked, "multistage-vae": _multistage})


@pytest.fixture(scope="session")
def canvas_photo(celebamask) -> np.ndarray:
    """A CelebAMask-HQ face (256 px) inside a 576 px textured canvas: plenty of photo far from the face."""
    rng = np.random.default_rng(0)
    canvas = rng.integers(0, 256, (576, 576, 3), dtype=np.uint8)
    canvas[40:296, 40:296] = load_image(celebamask(5)[0])
    return canvas


@pytest.mark.parametrize("model", ["masked-vae", "multistage-vae"])
def test_reconstruct_photo_shapes(tiny_models, celebamask, model):
    path = celebamask(5)[0]
    res = V.reconstruct_photo(path, model)
    s = SIZE[model]
    image = load_image(path)
    assert res.crop.shape == res.reconstruction.shape == (s, s, 3) and res.reconstruction.dtype == np.uint8
    assert res.pasted.shape == image.shape and res.pasted.dtype == np.uint8
    np.testing.assert_array_equal(res.crop, F.align_face(image, res.face, s).image)  # the documented crop
    if model == "masked-vae":
        assert res.mask.shape == (s, s) and 0 <= res.mask.min() and res.mask.max() <= 1
        assert res.coarse is None and res.refined is None
        # the paper's inference path: decoder face on the input background through the predicted mask
        composite = res.mask[..., None] * res.raw + (1 - res.mask[..., None]) * res.crop
        assert np.abs(composite - res.reconstruction).max() <= 1.0
    else:
        assert res.mask is None and res.coarse.shape == res.refined.shape == (s, s, 3)
        np.testing.assert_array_equal(res.refined, res.reconstruction)
        assert not np.array_equal(res.coarse, res.refined)


@pytest.mark.parametrize("model", ["masked-vae", "multistage-vae"])
def test_paste_back_keeps_pixels_far_from_the_face(tiny_models, canvas_photo, model):
    res = V.reconstruct_photo(canvas_photo, model)
    changed = np.any(res.pasted != canvas_photo, axis=-1)
    assert changed[40:296, 40:296].mean() > 0.05  # the face was replaced
    footprint = F.warp_mask_to_photo(np.ones((SIZE[model],) * 2), res.matrix, canvas_photo.shape[:2]) > 0
    assert footprint[330:, :].sum() == 0 and footprint[:, 330:].sum() == 0  # the crop stays near the face
    assert not changed[330:, :].any() and not changed[:, 330:].any()


@pytest.mark.parametrize("model", ["masked-vae", "multistage-vae"])
def test_sample_is_deterministic_per_seed(tiny_models, model):
    a, b, c = V.sample(model, 3), V.sample(model, 3), V.sample(model, 4)
    assert a.shape == (1, SIZE[model], SIZE[model], 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert np.abs(a.astype(int) - c).max() > 0
    assert V.sample(model, 3, n=2).shape[0] == 2


def test_interpolate_ends_are_the_two_faces(tiny_models, celebamask):
    a, b = celebamask(5)[0], celebamask(7)[0]
    mu_a, mu_b = V.encode_photo(a), V.encode_photo(b)
    assert mu_a.shape == (16,) and not np.allclose(mu_a, mu_b)
    start, end, mid = (V.interpolate_latents(mu_a, mu_b, t, "masked-vae") for t in (0.0, 1.0, 0.5))
    np.testing.assert_array_equal(start, V.decode_latent(mu_a[None], "masked-vae")[0])
    np.testing.assert_array_equal(end, V.decode_latent(mu_b[None], "masked-vae")[0])
    assert mid.shape == (144, 144, 3) and not np.array_equal(mid, start) and not np.array_equal(mid, end)
    np.testing.assert_array_equal(V.interpolate(a, b, 0.5), mid)


def test_cli_reconstruct_and_sample(tiny_models, celebamask, tmp_path):
    src = celebamask(5)[0]
    out, crop, mask = tmp_path / "out.png", tmp_path / "crop.png", tmp_path / "mask.png"
    assert cli(["reconstruct", src, "--model", "masked-vae", "--out", str(out), "--aligned-out", str(crop),
                "--mask-out", str(mask)]) == 0
    res = V.reconstruct_photo(src, "masked-vae")
    np.testing.assert_array_equal(np.asarray(Image.open(out)), res.reconstruction)
    np.testing.assert_array_equal(np.asarray(Image.open(crop)), res.crop)
    assert Image.open(mask).mode == "L" and Image.open(mask).size == (144, 144)

    folder = tmp_path / "in"
    folder.mkdir()
    for i in (5, 7):
        Image.open(celebamask(i)[0]).save(folder / f"{i}.jpg")
    (folder / "broken.jpg").write_bytes(b"not an image")
    code = cli(["reconstruct", str(folder), "--model", "multistage-vae", "--out", str(tmp_path / "recs"),
                "--aligned-out", str(tmp_path / "crops")])
    assert code == 1  # one file failed, the others were written
    assert sorted(os.listdir(tmp_path / "recs")) == sorted(os.listdir(tmp_path / "crops")) == ["5.png", "7.png"]
    assert Image.open(tmp_path / "recs" / "5.png").size == (128, 128)
    assert cli(["reconstruct", src, "--model", "multistage-vae", "--out", str(out), "--mask-out", str(mask)]) == 2

    sample = tmp_path / "sample.png"
    assert cli(["sample", "--model", "multistage-vae", "--seed", "11", "--out", str(sample)]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(sample)), V.sample("multistage-vae", 11)[0])


def test_tab_functions(tiny_models, celebamask, tmp_path):
    from apps import vae as tab

    crop, masked, mask, coarse, refined, pasted = tab.reconstruct(celebamask(5)[0], 0)
    assert crop.shape == masked.shape == mask.shape == (144, 144, 3)
    assert coarse.shape == refined.shape == (128, 128, 3) and pasted.shape == (256, 256, 3)
    assert tab.sample(2, "multistage-vae").shape == (128, 128, 3)
    image, cache = tab.interpolate(celebamask(5)[0], celebamask(7)[0], 0.25, "masked-vae", None)
    again, cache2 = tab.interpolate(celebamask(5)[0], celebamask(7)[0], 0.25, "masked-vae", cache)
    assert image.shape == (144, 144, 3) and cache2 is cache and np.array_equal(image, again)

    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    with pytest.raises(gr.Error, match="Not an image"):
        tab.reconstruct(str(bad), 0)
    with pytest.raises(gr.Error, match="Not an image"):
        tab.interpolate(str(bad), celebamask(5)[0], 0.5, "masked-vae", None)
    with pytest.raises(gr.Error, match="Upload a photo"):
        tab.reconstruct(None, 0)
    with pytest.raises(gr.Error, match="Unknown VAE model"):
        tab.sample(1, "no-such-vae")

    api = {fn.api_name for fn in tab.demo().fns.values()}
    assert {"reconstruct", "sample", "interpolate"} <= api


def test_tab_without_models_says_so(monkeypatch):
    from apps import vae as tab

    blocks = build_without_models(monkeypatch, tab, V.MODELS)
    texts = [b.value for b in blocks if isinstance(b, gr.Markdown)]
    assert len(texts) == 1 and "not available yet" in texts[0]
    assert not any(isinstance(b, (gr.Image, gr.Button)) for b in blocks)


@pytest.mark.slow
@pytest.mark.skipif(not hub.available("masked-vae"), reason="the trained masked-VAE checkpoint is not bundled "
                    "(checkpoints/masked-vae/ + hub/registry.py entry); train it: python -m train.vae")
def test_real_masked_vae_reconstructs_a_val_face(celebamask):
    loading.clear_cache()
    # 0000.jpg is in the val split (split 1 in the celebamask shards; train/data.assign_split)
    image_path, label_path = celebamask(0)
    res = V.reconstruct_photo(image_path, "masked-vae")
    labels = F.warp_labels(np.asarray(Image.open(label_path)), res.matrix, 144)
    face = np.isin(labels, VAE_FACE)
    assert face.mean() > 0.2
    psnr = V.face_psnr(res.raw, res.crop, face)  # the decoder's own pixels, on the face only
    assert psnr > 20.0, f"face-region PSNR {psnr:.1f} dB"
    assert ((res.mask > 0.5) == face).mean() > 0.9  # the predicted mask finds the face
