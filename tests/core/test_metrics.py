"""core/metrics.py: the one SSIM / PSNR / identity / Frechet-distance implementation."""
import numpy as np
import pytest
import torch

from core import metrics


def test_ssim_psnr_on_identical_and_noisy_images():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    noisy = np.clip(a.astype(int) + rng.integers(-40, 41, a.shape), 0, 255).astype(np.uint8)
    assert metrics.psnr(a, a) == float("inf") and metrics.ssim_uint8(a, a) == pytest.approx(1.0, abs=1e-5)
    assert 10 < metrics.psnr(a, noisy) < 30 and metrics.ssim_uint8(a, noisy) < 0.99
    mask = np.zeros((32, 32), bool)
    assert metrics.psnr(a, noisy, mask) == float("inf")  # nothing to compare: no error
    mse = torch.tensor([((a.astype(float) - noisy) ** 2).mean() / 255 ** 2])
    assert float(metrics.psnr_from_mse(mse)) == pytest.approx(metrics.psnr(a, noisy), abs=1e-4)


def test_ssim_maps_agree():
    torch.manual_seed(0)
    x, y = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    assert metrics.ssim_map(x, y).shape == (2, 24, 24) and metrics.ssim_map_box(x, y).shape == (2, 1, 24, 24)
    assert torch.allclose(metrics.ssim_map_box(x, x), torch.ones(2, 1, 24, 24), atol=1e-5)
    assert float(metrics.ssim(x, y).max()) < 0.5 < float(metrics.ssim(x, x).min())


def test_same_person_and_frechet_distance():
    rng = np.random.default_rng(1)
    a = rng.normal(size=(200, 8)) * 0.05
    assert metrics.same_person(a[0], a[0] + 0.01) and not metrics.same_person(a[0], a[0] + 1.0)
    assert abs(metrics.frechet_distance(a, a)) < 1e-8
    shifted = metrics.frechet_distance(a, a + 0.3)
    assert shifted == pytest.approx(8 * 0.3 ** 2, rel=1e-6)  # equal covariances: only the means differ
    assert metrics.frechet_distance(a, rng.normal(size=(200, 8)) * 0.05) < 0.01 < shifted
