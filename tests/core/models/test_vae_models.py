"""Masked VAE (seed 000) and multi-stage VAE (seed 004): shapes, save/load, compositing, metrics, trainer."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
import torch

from core.metrics import ms_ssim, ssim
from core.models.masked_vae import MaskedVAE
from core.models.multistage_vae import MultiStageVAE
from train.eval_vae import mask_scores
from train.vae import HYPOTHESES, masked_vae_loss, parse_args, train

DATA = "/work/shared/data/celebamask_hq"


@pytest.fixture(scope="module")
def tiny_masked():
    torch.manual_seed(0)
    return MaskedVAE(width_mult=0.125).eval()


@pytest.fixture(scope="module")
def tiny_multistage():
    torch.manual_seed(0)
    return MultiStageVAE(image_size=64, latent_dim=32, widths=[8, 8, 16, 16], refine_ch=8, n_res=2).eval()


def test_masked_vae_paper_size():
    model = MaskedVAE()
    n = sum(p.numel() for p in model.parameters())
    assert 9.2e6 < n < 9.4e6  # §3.1: "the NN summed 9.3M trained parameters"
    assert max(p.numel() for p in model.parameters()) * 2 < 16 * 2 ** 20  # every fp16 tensor fits a shard


def test_masked_vae_shapes(tiny_masked):
    x = torch.rand(2, 3, 144, 144)
    mu, logvar = tiny_masked.encode(x)
    assert mu.shape == logvar.shape == (2, 512)
    image, logits = tiny_masked.decode(mu)
    assert image.shape == (2, 3, 144, 144) and logits.shape == (2, 1, 144, 144)
    assert 0 <= image.min() and image.max() <= 1
    out = tiny_masked.reconstruct(x)
    assert out.image.shape == out.raw.shape == (2, 3, 144, 144) and out.mask.shape == (2, 1, 144, 144)
    samples, mask_logits = tiny_masked.sample(3, generator=torch.Generator().manual_seed(1))
    assert samples.shape == (3, 3, 144, 144) and mask_logits.shape == (3, 1, 144, 144)


def test_masked_vae_keeps_input_background(tiny_masked):
    x = torch.rand(2, 3, 144, 144)
    out = tiny_masked.reconstruct(x)
    # inference composite uses the predicted mask: out = m * raw + (1 - m) * x
    torch.testing.assert_close(out.image, out.mask * out.raw + (1 - out.mask) * x)
    m = torch.zeros(2, 1, 144, 144)
    m[..., 40:100, 40:100] = 1
    comp = MaskedVAE.compose(out.raw, x, m)
    assert torch.equal(comp[..., :40, :], x[..., :40, :])
    assert torch.equal(comp[..., 40:100, 40:100], out.raw[..., 40:100, 40:100])


def test_masked_loss_sees_only_face_pixels(tiny_masked):
    """With an all-background ground-truth mask the composite equals the input: image terms vanish."""
    x = torch.rand(2, 3, 144, 144)
    m = torch.zeros(2, 1, 144, 144)
    with torch.no_grad():
        terms = masked_vae_loss(tiny_masked, x, m, HYPOTHESES["h9"], kl_weight=1e-3, sample=False)
        nomask = masked_vae_loss(MaskedVAE(width_mult=0.125, with_mask=False).eval(), x, m, HYPOTHESES["h10"],
                                 kl_weight=1e-3, sample=False)
    assert float(terms["l2"]) == 0.0 and abs(float(terms["ssim"])) < 1e-5
    assert float(nomask["l2"]) > 0 and "mask" not in nomask


def test_no_mask_variant_has_no_mask_decoder():
    model = MaskedVAE(width_mult=0.125, with_mask=False).eval()
    out = model.reconstruct(torch.rand(1, 3, 144, 144))
    assert out.mask is None and torch.equal(out.image, out.raw)


@pytest.mark.parametrize("kind", ["masked", "multistage"])
def test_save_load_round_trip(tmp_path, tiny_masked, tiny_multistage, kind):
    model = tiny_masked if kind == "masked" else tiny_multistage
    size = model.config["image_size"]
    files = model.save_pretrained(str(tmp_path), card="# test\n")
    assert "config.json" in files and "README.md" in files
    loaded = type(model).from_pretrained(str(tmp_path))
    assert loaded.config == json.loads(json.dumps(model.config))
    x = torch.rand(2, 3, size, size)
    a, b = model.reconstruct(x), loaded.reconstruct(x)
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, atol=2e-2, rtol=0)  # fp16 weights on disk


def test_multistage_shapes(tiny_multistage):
    x = torch.rand(2, 3, 64, 64)
    mu, logvar = tiny_multistage.encode(x)
    assert mu.shape == logvar.shape == (2, 32)
    coarse, refined = tiny_multistage.decode(mu)
    assert coarse.shape == refined.shape == (2, 3, 64, 64)
    c, r = tiny_multistage.sample(2, generator=torch.Generator().manual_seed(0))
    assert c.shape == r.shape == (2, 3, 64, 64) and 0 <= r.min() and r.max() <= 1


def test_multistage_paper_config_fits_shards():
    model = MultiStageVAE()
    assert model.config["latent_dim"] == 512 and model.config["n_res"] == 5
    assert max(p.numel() for p in model.parameters()) * 2 < 16 * 2 ** 20
    coarse, refined = model.eval().decode(torch.zeros(1, 512))
    assert coarse.shape == refined.shape == (1, 3, 128, 128)


def test_ssim_matches_skimage():
    metrics = pytest.importorskip("skimage.metrics")
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 48, 48, generator=g)
    y = (x + 0.2 * torch.randn(1, 3, 48, 48, generator=g)).clamp(0, 1)
    ref = metrics.structural_similarity(x[0].permute(1, 2, 0).numpy(), y[0].permute(1, 2, 0).numpy(),
                                        data_range=1.0, channel_axis=2, gaussian_weights=True, sigma=1.5,
                                        use_sample_covariance=False)
    assert abs(float(ssim(x, y)[0]) - ref) < 1e-4
    assert abs(float(ssim(x, x)[0]) - 1) < 1e-5 and abs(float(ms_ssim(x, x)[0]) - 1) < 1e-4
    assert float(ms_ssim(x, y)[0]) < 0.99


def test_mask_scores():
    t = torch.zeros(1, 1, 4, 4)
    t[..., :2, :] = 1
    p = torch.zeros(1, 1, 4, 4)
    p[..., :1, :] = 0.9
    s = mask_scores(p, t)
    assert float(s["mask_iou"]) == pytest.approx(0.5) and float(s["mask_dice"]) == pytest.approx(2 / 3)


def _fake_shard(root: str, n: int = 6) -> str:
    from PIL import Image

    from train.shards import encode_jpeg, write_shard

    jpegs, labels = [], []
    for i in range(n):
        jpegs.append(encode_jpeg(np.asarray(Image.open(f"{DATA}/images/{i:04d}.jpg").convert("RGB"))))
        labels.append(np.asarray(Image.open(f"{DATA}/labels/{i:04d}.png")))
    split = np.array([0] * (n - 2) + [1] * 2, dtype=np.uint8)
    write_shard(os.path.join(root, "celebamask_256_00.npz"), jpegs,
                {"key": np.array([f"{i:04d}.jpg" for i in range(n)]), "split": split}, np.stack(labels))
    return root


@pytest.mark.slow  # a short training run and its resume, on real data
@pytest.mark.skipif(not os.path.isdir(DATA), reason="needs ../shared/data/celebamask_hq")
@pytest.mark.parametrize("model,variant", [("masked-vae", "h9"), ("multistage-vae", "h9")])
def test_trainer_smoke_and_resume(tmp_path, model, variant):
    shards = _fake_shard(str(tmp_path / "shards"))
    argv = ["--model", model, "--variant", variant, "--shards", shards, "--ckpt", str(tmp_path / "ckpt"),
            "--out", str(tmp_path / "out"), "--minutes", "5", "--smoke", "--width-mult", "0.25", "--max-steps", "1"]
    train(parse_args(argv))
    name = "masked-vae" if model == "masked-vae" else "multistage-vae"
    folder = tmp_path / "out" / name
    assert (folder / "config.json").exists() and (folder / "README.md").exists()
    assert (tmp_path / "out" / f"{name}_grid.png").exists()
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["training"]["steps"] == 1 and metrics["val"]["n_images"] == 2
    for f in folder.iterdir():
        assert f.stat().st_size < 16 * 2 ** 20
    # a second run resumes from --ckpt and continues counting steps
    train(parse_args(argv[:-1] + ["2"]))
    meta = json.loads((tmp_path / "ckpt" / f"{name}.json").read_text())
    assert meta["step"] == 2
