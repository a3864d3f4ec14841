"""core/pipelines/gan.py, the `invert` / `edit` / `sample --model stylegan` subcommands and the Invert & edit tab.

Behaviour is checked with tiny random models (StyleGAN2 at 128 px with 32 channels, a matching MTV encoder, three
random unit directions), passed in directly or served by the hub under the real names (temporary registry
entries). The trained models are checked only when hub.available says they are there.
"""
from __future__ import annotations

import json

import gradio as gr
import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

import hub
from cli import main as cli
from core import face as F
from core import loading
from core.errors import FaceLabError
from core.models.directions import load_directions
from core.models.encoder import MTVEncoder
from core.models.stylegan import StyleGAN2Generator
from core.pipelines import gan as GAN
from hub import registry
from tests.conftest import build_without_models, serve_models

LAYERS = {"age": (0, 7), "smile": (2, 5), "blond_hair": (6, 11)}


def write_directions(folder, w_dim: int, seed: int = 0) -> None:
    """A directions folder like train/directions.py writes, with random unit normals."""
    folder.mkdir(parents=True, exist_ok=True)
    g = torch.Generator().manual_seed(seed)
    vecs = {name: (lambda v: v / v.norm())(torch.randn(w_dim, generator=g)) for name in LAYERS}
    save_file(vecs, str(folder / "directions.safetensors"))
    meta = {"sliders": {name: {"std": 1.5, "layers": list(layers), "kind": "regression" if name == "age" else "binary"}
                        for name, layers in LAYERS.items()},
            "generator_config": {"z_dim": 512, "w_dim": w_dim, "img_resolution": 128},
            "unit": "1 = one std of <w - w_avg, n> over the samples",
            "metrics_summary": {"age": {"own_per_unit": 2.5}}}
    (folder / "directions.json").write_text(json.dumps(meta))


@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory):
    """$FACELAB_CHECKPOINTS-style folder with tiny stylegan/, mtv-encoder/ and directions/."""
    root = tmp_path_factory.mktemp("gan_ckpt")
    torch.manual_seed(0)
    G = StyleGAN2Generator(channel_base=256, channel_max=32, mapping_layers=2)
    with torch.no_grad():  # a w_avg that is not zero, as after training
        G.w_avg.copy_(G.mapping_network(torch.randn(256, G.z_dim)).mean(0))
    E = MTVEncoder(channel_base=256, channel_max=32, head_hidden=64)
    E.set_generator_stats(G)
    G.save_pretrained(str(root / "stylegan"), card="# tiny\n")
    E.save_pretrained(str(root / "mtv-encoder"), card="# tiny\n")
    write_directions(root / "directions", G.w_dim)
    return root


@pytest.fixture(scope="session")
def models(tiny_root) -> GAN.GANModels:
    """The tiny models in memory, as the pipeline functions take them (models=...)."""
    G = StyleGAN2Generator.from_pretrained(str(tiny_root / "stylegan")).requires_grad_(False)
    E = MTVEncoder.from_pretrained(str(tiny_root / "mtv-encoder"))
    dirs, meta = GAN.read_directions(str(tiny_root / "directions"))
    return GAN.GANModels(G=G, E=E, directions=dirs, directions_meta=meta)


@pytest.fixture
def tiny_hub(tiny_root, monkeypatch):
    """The hub serves the tiny models under the registry names the pipeline loads."""
    yield from serve_models(monkeypatch, tiny_root, {"stylegan": lambda: StyleGAN2Generator,
                                                     "mtv-encoder": lambda: MTVEncoder, "directions": lambda: None})


@pytest.fixture(scope="module")
def inverted(models, astronaut) -> GAN.Inversion:
    return GAN.invert_photo(astronaut, models=models)


# ------------------------------------------------------------------------------------------------ pipeline

def test_invert_photo_shapes(inverted, models, astronaut):
    res = inverted
    assert res.crop.shape == res.reconstruction.shape == (128, 128, 3) and res.reconstruction.dtype == np.uint8
    assert res.pasted.shape == astronaut.shape
    np.testing.assert_array_equal(res.crop, F.align_face(astronaut, res.face, 128).image)  # the canonical crop
    assert res.code.ws.shape == (models.G.num_ws, models.G.w_dim) and res.code.ws.dtype == np.float32
    assert res.code.source_size == (512, 512) and res.code.matrix.shape == (2, 3) and res.losses == []
    np.testing.assert_array_equal(GAN.decode(res.code, models), res.reconstruction)
    q = res.quality
    assert 0 < q.psnr < 60 and -1 <= q.ssim <= 1 and q.identity_distance >= 0 and -1 <= q.identity_similarity <= 1
    # the measure itself: a crop against itself is perfect
    same = GAN.measure(res.crop, res.crop, res.face, res.matrix)
    assert same.psnr == float("inf") and same.ssim == pytest.approx(1.0, abs=1e-5)
    assert same.identity_distance < 1e-4 and same.identity_similarity == pytest.approx(1.0, abs=1e-5)


def test_code_round_trip(inverted, models, tmp_path):
    code = GAN.edit_code(inverted.code, {"age": 1.0}, models)
    back = GAN.load_code(GAN.dump_code(code))
    np.testing.assert_array_equal(back.ws, code.ws)
    np.testing.assert_array_equal(back.matrix, code.matrix)
    assert back.source_size == code.source_size and back.const is None
    assert back.generator == "stylegan" and back.fingerprint == GAN.generator_fingerprint(models.G)
    assert back.meta == {"from": "photo", "face": 0, "refine_steps": 0, "edits": {"age": 1.0}}
    path = tmp_path / "code.npz"
    path.write_bytes(GAN.dump_code(code))
    np.testing.assert_array_equal(GAN.load_code(str(path)).ws, code.ws)

    (tmp_path / "bad.npz").write_bytes(b"not a zip")
    with pytest.raises(FaceLabError, match="not a FaceLab latent code"):
        GAN.load_code(str(tmp_path / "bad.npz"))
    wrong = GAN.LatentCode(ws=np.zeros((5, 512), np.float32))
    with pytest.raises(FaceLabError, match="generator needs"):
        GAN.decode(wrong, models)
    other = GAN.LatentCode(ws=code.ws, fingerprint="0123456789abcdef")
    with pytest.raises(FaceLabError, match="another version"):
        GAN.decode(other, models)


def test_zero_edit_is_the_reconstruction(inverted, models):
    zero = {s.name: 0.0 for s in GAN.sliders(models)}
    np.testing.assert_array_equal(GAN.edit(inverted.code, zero, models), inverted.reconstruction)
    np.testing.assert_array_equal(GAN.edit(inverted.code, {}, models), inverted.reconstruction)


def test_edit_changes_only_its_layers(inverted, models):
    for name, (a, b) in LAYERS.items():
        edited = GAN.edit_code(inverted.code, {name: 2.0}, models)
        moved = np.abs(edited.ws - inverted.code.ws).max(1) > 0  # per w+ layer
        assert moved.tolist() == [a <= i <= b for i in range(models.G.num_ws)]
        delta = (edited.ws - inverted.code.ws)[a]
        np.testing.assert_allclose(delta, 2.0 * 1.5 * models.directions[name]["n"].numpy(), atol=1e-5)
    image = GAN.edit(inverted.code, {"age": 3.0}, models)
    assert np.abs(image.astype(int) - inverted.reconstruction).mean() > 0.5


def test_edit_rejects_bad_values(inverted, models):
    with pytest.raises(FaceLabError, match="Unknown slider.*age, smile, blond_hair"):
        GAN.edit(inverted.code, {"wings": 1.0}, models)
    for bad in (float("nan"), 11.0):
        with pytest.raises(FaceLabError, match="not a number within"):
            GAN.edit(inverted.code, {"age": bad}, models)
    assert GAN.parse_edits(["age=2, smile=-1", "blond_hair=1.5"]) == {"age": 2.0, "smile": -1.0, "blond_hair": 1.5}
    with pytest.raises(FaceLabError, match="NAME=VALUE"):
        GAN.parse_edits("age:2")


def test_sliders_from_directions_json(models):
    s = {x.name: x for x in GAN.sliders(models)}
    assert list(s) == list(LAYERS)
    assert s["age"].layers == (0, 7) and s["age"].per_unit == 2.5 and "years" in s["age"].info
    assert s["smile"].per_unit is None and s["smile"].info == "w+ layers 2-5"


def test_sample_is_deterministic_per_seed(models):
    a, b, c = GAN.sample(3, 0.7, models), GAN.sample(3, 0.7, models), GAN.sample(4, 0.7, models)
    assert a.image.shape == (128, 128, 3) and a.image.dtype == np.uint8
    np.testing.assert_array_equal(a.image, b.image)
    assert np.abs(a.image.astype(int) - c.image).max() > 0
    np.testing.assert_array_equal(GAN.decode(a.code, models), a.image)  # the code is the face
    assert a.code.meta == {"from": "sample", "seed": 3, "truncation": 0.7} and a.code.matrix is None
    # truncation 0 is the mean face, whatever the seed
    np.testing.assert_array_equal(GAN.sample(1, 0.0, models).image, GAN.sample(2, 0.0, models).image)
    with pytest.raises(FaceLabError, match="Truncation"):
        GAN.sample(1, 3.0, models)
    with pytest.raises(FaceLabError, match="nothing to paste"):
        GAN.paste(np.zeros((64, 64, 3), np.uint8), a.image, a.code)


def test_refine_lowers_the_reconstruction_loss(models, astronaut, inverted):
    seen = []
    res = GAN.invert_photo(astronaut, refine=4, progress=lambda i, n, loss: seen.append((i, n)), models=models)
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)] and len(res.losses) == 5
    assert res.losses[-1] < res.losses[0]
    assert res.code.meta["refine_steps"] == 4 and not np.array_equal(res.code.ws, inverted.code.ws)
    assert res.quality.psnr > inverted.quality.psnr  # the refined code is the one returned and measured


def test_paste_back_keeps_far_pixels(inverted, models, astronaut):
    edited = GAN.edit(inverted.code, {"age": 2.0}, models)
    pasted = GAN.paste(astronaut, edited, inverted.code)
    changed = np.any(pasted != astronaut, axis=-1)
    footprint = F.warp_mask_to_photo(np.ones((128, 128)), inverted.matrix, astronaut.shape[:2]) > 0
    assert changed.any() and not changed[~footprint].any()
    assert footprint.mean() < 0.5  # the crop covers the face, not the photo
    with pytest.raises(FaceLabError, match="photo"):
        GAN.paste(astronaut[:300], edited, inverted.code)


# ------------------------------------------------------------------------------------------------ CLI

@pytest.fixture(scope="module")
def astronaut_file(astronaut, tmp_path_factory):
    path = tmp_path_factory.mktemp("photo") / "astronaut.png"
    Image.fromarray(astronaut).save(path)
    return str(path)


def test_cli_invert_edit_sample(tiny_hub, astronaut_file, tmp_path, capsys):
    recon, code, crop, pasted = (tmp_path / n for n in ("recon.png", "code.npz", "crop.png", "pasted.png"))
    assert cli(["invert", astronaut_file, "--out", str(recon), "--latent", str(code), "--aligned", str(crop),
                "--pasted", str(pasted)]) == 0
    quality = json.loads(capsys.readouterr().out)
    res = GAN.invert_photo(astronaut_file)
    np.testing.assert_array_equal(np.asarray(Image.open(recon)), res.reconstruction)
    np.testing.assert_array_equal(np.asarray(Image.open(crop)), res.crop)
    np.testing.assert_array_equal(np.asarray(Image.open(pasted)), res.pasted)
    assert quality["psnr"] == pytest.approx(res.quality.psnr, abs=1e-3)
    np.testing.assert_array_equal(GAN.load_code(str(code)).ws, res.code.ws)

    out, out_code, out_photo = tmp_path / "edit.png", tmp_path / "edit.npz", tmp_path / "edit_photo.png"
    assert cli(["edit", str(code), "--set", "age=2,smile=-1", "--set", "blond_hair=1.5", "--out", str(out),
                "--latent-out", str(out_code), "--photo", astronaut_file, "--pasted", str(out_photo)]) == 0
    values = {"age": 2.0, "smile": -1.0, "blond_hair": 1.5}
    expected = GAN.edit(res.code, values)
    np.testing.assert_array_equal(np.asarray(Image.open(out)), expected)
    np.testing.assert_array_equal(GAN.load_code(str(out_code)).ws, GAN.edit_code(res.code, values).ws)
    np.testing.assert_array_equal(np.asarray(Image.open(out_photo)), GAN.paste(astronaut_file, expected, res.code))

    assert cli(["edit", str(code), "--set", "wings=1", "--out", str(out)]) == 2
    assert "Unknown slider" in capsys.readouterr().err
    assert cli(["edit", "--list"]) == 0
    assert "age" in capsys.readouterr().out

    sample, sample_code = tmp_path / "sample.png", tmp_path / "sample.npz"
    assert cli(["sample", "--seed", "5", "--truncation", "0.5", "--out", str(sample),
                "--latent", str(sample_code)]) == 0
    np.testing.assert_array_equal(np.asarray(Image.open(sample)), GAN.sample(5, 0.5).image)
    assert GAN.load_code(str(sample_code)).meta["seed"] == 5
    assert cli(["sample", "--model", "masked-vae", "--truncation", "0.5", "--out", str(sample)]) == 2


def test_cli_without_models_is_one_clear_line(monkeypatch, tmp_path, capsys):
    for name in ("stylegan", "mtv-encoder", "directions"):
        monkeypatch.delitem(registry.MODELS, name, raising=False)
    assert cli(["sample", "--model", "stylegan", "--seed", "1", "--out", str(tmp_path / "s.png")]) == 2
    assert "not in hub/registry.py" in capsys.readouterr().err


# ------------------------------------------------------------------------------------------------ tab

def test_tab_functions(tiny_hub, astronaut_file, tmp_path):
    from apps import invert as tab

    crop, recon, pasted, quality, code_file = tab.invert(astronaut_file, 0, 0)
    assert crop.shape == recon.shape == (128, 128, 3) and pasted.shape == (512, 512, 3)
    assert "PSNR" in quality and code_file.endswith(".npz")
    names = [s.name for s in GAN.sliders()]
    zero = tab.edit(code_file, astronaut_file, *[0.0] * len(names))
    np.testing.assert_array_equal(zero[0], recon)
    np.testing.assert_array_equal(zero[1], pasted)
    moved = tab.edit(code_file, astronaut_file, *[2.0] + [0.0] * (len(names) - 1))
    assert not np.array_equal(moved[0], recon)
    no_crop, image, no_photo, note, sample_code = tab.gan_sample(7, 0.7)
    np.testing.assert_array_equal(image, GAN.sample(7, 0.7).image)
    assert no_crop is None and no_photo is None and "seed 7" in note
    edited, none = tab.edit(sample_code, astronaut_file, *[0.0] * len(names))  # a sample has no photo
    np.testing.assert_array_equal(edited, image)
    assert none is None

    with pytest.raises(gr.Error, match="Upload a photo"):
        tab.invert(None, 0, 0)
    with pytest.raises(gr.Error, match="Invert a photo or sample"):
        tab.edit(None, None, *[0.0] * len(names))
    api = {fn.api_name for fn in tab.demo().fns.values()}
    assert {"invert", "edit", "gan_sample"} <= api


def test_tab_without_models_says_so(monkeypatch):
    from apps import invert as tab

    blocks = build_without_models(monkeypatch, tab, ("stylegan", "mtv-encoder", "directions"))
    texts = [b.value for b in blocks if isinstance(b, gr.Markdown)]
    assert len(texts) == 1 and "not available yet" in texts[0]
    assert not any(isinstance(b, (gr.Image, gr.Button)) for b in blocks)


# ------------------------------------------------------------------------------------------------ trained models

TRAINED = all(hub.available(n) for n in ("stylegan", "mtv-encoder"))


@pytest.mark.slow
@pytest.mark.skipif(not TRAINED, reason="the trained StyleGAN2 and MTV encoder are not bundled "
                    "(checkpoints/stylegan, checkpoints/mtv-encoder + hub/registry.py entries)")
def test_trained_inversion_of_a_val_face(celebamask):
    loading.clear_cache()
    res = GAN.invert_photo(celebamask(0)[0])  # 0000.jpg is in the val split (train/data.assign_split)
    assert res.quality.psnr > 15 and res.quality.ssim > 0.35 and res.quality.face_found
    refined = GAN.invert_photo(celebamask(0)[0], refine=10)
    assert refined.losses[-1] < refined.losses[0] and refined.quality.psnr > res.quality.psnr


@pytest.mark.slow
@pytest.mark.skipif(not (TRAINED and hub.available("directions")), reason="trained directions not bundled")
def test_trained_directions_load():
    loading.clear_cache()
    dirs = load_directions(str(hub.resolve("directions")))
    assert {"age", "smile"} <= set(dirs) and all(abs(float(d["n"].norm()) - 1) < 1e-4 for d in dirs.values())


@pytest.mark.slow
@pytest.mark.skipif(not (TRAINED and hub.available("directions")), reason="trained GAN models not bundled")
def test_eval_gan_on_two_val_faces(celebamask):
    """train.eval_gan's measurements (the README's inversion / slider table) on 2 val photos, 3 refinement steps:
    refinement does not lower PSNR, and the yaw slider turns the face the way its sign says (front-end yaw)."""
    from train import eval_gan

    out, grid = eval_gan.evaluate([celebamask(15)[0], celebamask(46)[0]], GAN.load_models(), refine=3)  # val split
    inv = out["inversion"]
    assert inv["encoder"]["n"] == inv["refined"]["n"] == 2 and len(grid) == 2
    assert inv["refined"]["psnr"] >= inv["encoder"]["psnr"] - 0.05
    assert out["sliders"]["yaw"]["own_per_unit"] > 1.0, out["sliders"]["yaw"]
