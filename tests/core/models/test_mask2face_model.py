"""Mask2Face (core/models/mask2face.py): shapes, locality of a style swap, save/load round trip (tiny config, CPU)."""
from __future__ import annotations

import torch

from core.labels import ID
from core.models.mask2face import MODEL_CLASSES, Mask2Face, MultiscaleDiscriminator, one_hot

TINY = dict(image_size=64, channels=(32, 32, 16, 16), style_dim=8, encoder_width=4, mask_feat=4, style_rank=4)


def tiny_model() -> Mask2Face:
    torch.manual_seed(0)
    m = Mask2Face(**TINY).eval()
    with torch.no_grad():  # random, non-trivial modulation so styles matter at init
        for p in m.parameters():
            if p.dim() == 2 and p.shape[0] == MODEL_CLASSES:
                p.normal_(0, 0.3)
            elif p.dim() == 4 and p.shape[:2] == (1, p.shape[1]) and p.shape[2:] == (1, 1):
                p.fill_(0.5)  # noise strengths
    return m


def half_mask(n: int = 2, size: int = 64) -> torch.Tensor:
    """Left half skin, right half hair: labels [n, size, size]."""
    lab = torch.full((n, size, size), ID["skin"], dtype=torch.long)
    lab[:, :, size // 2:] = ID["hair"]
    return lab


def test_shapes_and_seed_determinism():
    m = tiny_model()
    img = torch.rand(2, 3, 64, 64) * 2 - 1
    lab = half_mask()
    with torch.no_grad():
        styles = m.encode_styles(img, lab)
        assert styles.shape == (2, MODEL_CLASSES, TINY["style_dim"])
        out = m.generate(lab, styles)
        assert out.shape == (2, 3, 64, 64) and out.abs().max() <= 1
        seeded = lambda k: m.generate(lab, m.sample_styles(2, torch.Generator().manual_seed(k)),  # noqa: E731
                                      noise=torch.Generator().manual_seed(k))
        a, b, c = seeded(3), seeded(3), seeded(4)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    d = MultiscaleDiscriminator(MODEL_CLASSES, width=8)
    outs = d(out, one_hot(lab))
    assert len(outs) == 2 and outs[0][0].shape[0] == 2 and outs[1][0].shape[-1] < outs[0][0].shape[-1]


def test_absent_class_takes_mean_style():
    m = tiny_model()
    m.style_mean.normal_()
    with torch.no_grad():
        styles = m.encode_styles(torch.zeros(1, 3, 64, 64), half_mask(1))
    assert torch.equal(styles[0, ID["eyeglasses"]], m.style_mean[ID["eyeglasses"]])
    assert not torch.equal(styles[0, ID["skin"]], m.style_mean[ID["skin"]])


def test_style_swap_is_mostly_local():
    m = tiny_model()
    lab = half_mask(1)
    styles = torch.randn(1, MODEL_CLASSES, TINY["style_dim"])
    swapped = styles.clone()
    swapped[:, ID["hair"]] = torch.randn(TINY["style_dim"])
    with torch.no_grad():
        diff = (m.generate(lab, styles) - m.generate(lab, swapped)).abs().mean((0, 1))  # [64, 64]
    inside = diff[:, 40:].mean()   # hair region, away from the border
    outside = diff[:, :24].mean()  # skin region, away from the border
    assert inside > 0.01
    assert outside < 0.25 * inside, (outside.item(), inside.item())


def test_fit_prior_and_save_load_round_trip(tmp_path):
    m = tiny_model()
    codes = torch.randn(20, MODEL_CLASSES, TINY["style_dim"]) * 2 + 1
    present = torch.ones(20, MODEL_CLASSES, dtype=torch.bool)
    m.fit_style_prior(codes, present)
    assert torch.allclose(m.style_mean, codes.mean(0), atol=1e-4)
    draws = m.sample_styles(4000, torch.Generator().manual_seed(0))
    assert (draws.mean(0) - m.style_mean).abs().mean() < 0.15
    assert abs(draws.std(0).mean().item() - codes.std(0).mean().item()) < 0.3
    files = m.save_pretrained(str(tmp_path / "m"), card="# card")
    assert "config.json" in files and "README.md" in files
    m2 = Mask2Face.from_pretrained(str(tmp_path / "m"))
    lab = half_mask(1)
    img = torch.rand(1, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        a = m.generate(lab, m.encode_styles(img, lab))
        b = m2.generate(lab, m2.encode_styles(img, lab))
    assert (a - b).abs().max() < 0.05  # fp16 weights on disk
    assert torch.allclose(m2.style_basis, m.style_basis.half().float())
