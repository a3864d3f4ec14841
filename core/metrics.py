"""Image and identity metrics, written once: SSIM (and MS-SSIM), PSNR, dlib identity distance / same person,
and the Frechet distance between two sets of dlib descriptors.

SSIM is Wang et al. 2004 (Gaussian 11 px window, sigma 1.5, data range 1, 'valid' borders; matches skimage's
`structural_similarity(gaussian_weights=True, use_sample_covariance=False)`), MS-SSIM Wang et al. 2003.
`ssim_map_box` is the cheaper 7x7 box-window variant the trainers use as a loss. The Frechet distance is
FID's formula (Heusel et al. 2017) on dlib's 128-d face descriptors instead of Inception features: it
compares identity distributions without an ImageNet network. Pure functions: nothing is loaded or written.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

SAME_PERSON = 0.6  # dlib's descriptor distance under which two faces read as the same person
MS_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


# ----------------------------------------------------------------------------------------------------- SSIM

def gaussian_window(size: int, sigma: float, device=None, dtype=torch.float32) -> torch.Tensor:
    """[size] normalised 1-D Gaussian, centred on the middle tap."""
    t = torch.arange(size, device=device, dtype=dtype) - (size - 1) / 2
    g = torch.exp(-(t ** 2) / (2 * sigma ** 2))
    return g / g.sum()


def ssim_maps(x: torch.Tensor, y: torch.Tensor, win: int = 11, sigma: float = 1.5) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-pixel SSIM and contrast-structure maps of x, y [N, C, H, W] in [0, 1] ('valid' Gaussian window), in fp32
    even under autocast (E[x^2] - E[x]^2 loses everything in bf16). -> ([N, C, H-win+1, W-win+1],) * 2"""
    with torch.autocast(x.device.type, enabled=False):
        x, y = x.float(), y.float()
        c1, c2 = 0.01 ** 2, 0.03 ** 2
        ch = x.shape[1]
        g = gaussian_window(win, sigma, x.device, x.dtype)
        kh = g.view(1, 1, 1, win).repeat(ch, 1, 1, 1)
        kv = g.view(1, 1, win, 1).repeat(ch, 1, 1, 1)

        def blur(t):
            return F.conv2d(F.conv2d(t, kh, groups=ch), kv, groups=ch)

        mx, my = blur(x), blur(y)
        sxx = blur(x * x) - mx * mx
        syy = blur(y * y) - my * my
        sxy = blur(x * y) - mx * my
        cs = (2 * sxy + c2) / (sxx + syy + c2)
        return (2 * mx * my + c1) / (mx * mx + my * my + c1) * cs, cs


def ssim(x: torch.Tensor, y: torch.Tensor, win: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """SSIM per image: x, y [N, C, H, W] in [0, 1] -> [N]. win=9 is the masked-VAE paper's loss."""
    s, _ = ssim_maps(x, y, win, sigma)
    return s.mean(dim=(1, 2, 3))


def ssim_map(x: torch.Tensor, y: torch.Tensor, win: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Full-size SSIM map (reflect padding), channel mean: x, y [N, C, H, W] in [0, 1] -> [N, H, W]."""
    p = win // 2
    pad = lambda t: F.pad(t.float(), (p, p, p, p), mode="reflect")  # noqa: E731
    s, _ = ssim_maps(pad(x), pad(y), win, sigma)
    return s.mean(1)


def ms_ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """MS-SSIM, 5 scales, per image -> [N]. The window shrinks to the image at the coarsest scales
    (144 / 16 = 9 px), where an 11 px window would not fit."""
    x, y = x.float(), y.float()
    vals = []
    for i, _ in enumerate(MS_WEIGHTS):
        win = min(11, x.shape[-1], x.shape[-2])
        s, cs = ssim_maps(x, y, win, 1.5)
        vals.append((s if i == len(MS_WEIGHTS) - 1 else cs).mean(dim=(1, 2, 3)).clamp_min(1e-6))
        if i < len(MS_WEIGHTS) - 1:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    w = torch.tensor(MS_WEIGHTS, device=x.device)
    return torch.exp((torch.log(torch.stack(vals, dim=1)) * w).sum(dim=1))


def ssim_map_box(a: torch.Tensor, b: torch.Tensor, size: int = 7) -> torch.Tensor:
    """Per-pixel SSIM with size x size box windows (same size), channel mean: [N, C, H, W] -> [N, 1, H, W].
    A training loss: cheaper than the Gaussian window and differentiable everywhere."""
    c1, c2 = 0.01 ** 2, 0.03 ** 2
    mu = lambda x: F.avg_pool2d(x, size, 1, size // 2, count_include_pad=False)  # noqa: E731
    ma, mb = mu(a), mu(b)
    va, vb, cov = mu(a * a) - ma ** 2, mu(b * b) - mb ** 2, mu(a * b) - ma * mb
    s = ((2 * ma * mb + c1) * (2 * cov + c2)) / ((ma ** 2 + mb ** 2 + c1) * (va + vb + c2))
    return s.mean(1, keepdim=True)


def ssim_uint8(a: np.ndarray, b: np.ndarray) -> float:
    """SSIM of two uint8 [H, W, 3] images (the Gaussian `ssim`)."""
    t = lambda x: torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)[None].float() / 255.0  # noqa: E731
    return float(ssim(t(a), t(b))[0])


# ----------------------------------------------------------------------------------------------------- PSNR

def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """PSNR in dB of two uint8 images (peak 255), over the pixels where `mask` is true (all when None);
    inf when they are equal there (or the mask is empty)."""
    diff = a.astype(np.float64) - b.astype(np.float64)
    if mask is not None:
        diff = diff[mask.astype(bool)]
    mse = float(np.mean(diff ** 2)) if diff.size else 0.0
    return float("inf") if mse == 0 else float(10.0 * np.log10(255.0 ** 2 / mse))


def psnr_from_mse(mse: torch.Tensor, peak: float = 1.0) -> torch.Tensor:
    """PSNR in dB from mean squared errors of images with values up to `peak` (MSE floored at 1e-10)."""
    return 10 * torch.log10(peak ** 2 / mse.clamp(min=1e-10))


# ------------------------------------------------------------------------------------------------- identity

def identity_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between two dlib descriptors (core.face.face_descriptor); < SAME_PERSON: same person."""
    from core.face import identity_distance as distance

    return distance(a, b)


def same_person(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether two dlib descriptors read as the same person (distance < 0.6, dlib's threshold)."""
    return identity_distance(a, b) < SAME_PERSON


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Frechet distance between Gaussians fitted to two sets of descriptors a [N, D], b [M, D] (N, M >= 2):
    |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)). 0 for identical distributions."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    s_a, s_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    # tr((S_a S_b)^(1/2)) = sum of the square roots of the eigenvalues of S_a S_b (real, >= 0 for PSD S_a, S_b)
    root_trace = np.sqrt(np.linalg.eigvals(s_a @ s_b).real.clip(min=0)).sum()
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(s_a) + np.trace(s_b) - 2 * root_trace)
