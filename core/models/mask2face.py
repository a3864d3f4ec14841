"""Mask2Face: semantic mask + per-region style codes -> portrait (seed 001, mask-guided portrait editing).

Seed 001 (Panday's thesis, re-implementing Gu et al. CVPR 2019, §3.1) builds a face from a
target mask m^t and per-component embeddings of a source photo x^s (five local auto-encoders
for eyes, mouth, skin, hair, a mask encoder E_m, a generator G_m and a background fusing
net). This file keeps the thesis's interface and losses (see train/mask2face.py) but swaps the
embedding/generator for the SEAN design (Zhu et al. CVPR 2020, "SEAN: Image Synthesis with
Semantic Region-Adaptive Normalization", §3.1-3.2), which does the same job with one small
network:

 - `StyleEncoder` (SEAN's "style encoder", Fig. 3): photo + its mask -> one style vector per
   class by region-average pooling of encoder features. This *is* the thesis's per-component
   embedding, for all 19 classes instead of 5 (left eye, right eye, mouth, skin, hair), so
   component transfer = copying rows of the [N, C, S] style tensor.
 - `Generator`: SPADE/SEAN residual blocks (Park et al. 2019, Fig. 2-4) from 8x8 to 256x256;
   each normalisation is modulated by (a) the per-region styles broadcast onto the mask
   regions (SEAN's gamma^s/beta^s) and (b) a conv of the one-hot mask (SPADE's gamma^o/beta^o).
 - a seed path: `sample_styles` draws style tensors from a low-rank Gaussian fitted to the
   style codes of the training photos at the end of training (PCA over the flattened
   [C*S] codes, so hair/skin/lip colours stay correlated as in real faces), held in buffers.

Deliberate differences from SEAN, with reasons:
 - normalisation is per-pixel (positional normalisation, Li et al. 2019, "PONO": mean/std
   over channels at each pixel) instead of instance/batch norm. Instance statistics are
   image-global, so editing one region's style would shift every other region; per-pixel
   statistics keep a component edit local up to the conv receptive field, which is what the
   component-transfer feature needs. No batch dependence either: batch-1 inference = training.
 - the per-region style modulation is a per-class linear map of the style vector broadcast by
   the (area-downsampled, hence soft at region borders) one-hot mask, i.e. SEAN's 1x1 case;
   the spatial SPADE term reads a mask feature map shared by all norms of one resolution.
   This keeps a 256 px face at ~8 GMAC, cheap enough for 2 CPU cores.
 - StyleGAN-style per-pixel noise inputs (Karras et al. 2019, §3.2) give stochastic detail
   (hair strands, skin texture); noise=None gives a deterministic image.
 - the occluder label (19) of core/labels.py is mapped to background: the model has 19 classes.
 - no separate background fusing network: background is one more region with a style code;
   the app keeps a photo's own background by pasting (see core/pipelines).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from core.labels import NUM_CLASSES, OCCLUDER
from core.models.common import ConfigModule

MODEL_CLASSES = NUM_CLASSES - 1  # 19 CelebAMask-HQ classes; occluder (19) -> background (0)


def one_hot(labels: torch.Tensor, num_classes: int = MODEL_CLASSES, dtype: torch.dtype = torch.float32
            ) -> torch.Tensor:
    """labels [N, H, W] int -> one-hot [N, C, H, W]; occluder and out-of-range values -> background."""
    labels = labels.long()
    labels = torch.where((labels >= num_classes) | (labels < 0) | (labels == OCCLUDER),
                         torch.zeros_like(labels), labels)
    return F.one_hot(labels, num_classes).permute(0, 3, 1, 2).to(dtype)


def resize_mask(onehot: torch.Tensor, size: int) -> torch.Tensor:
    """[N, C, H, W] one-hot -> [N, C, size, size] class fractions (area pooling; sums to 1 per pixel)."""
    if onehot.shape[-1] == size:
        return onehot
    return F.adaptive_avg_pool2d(onehot, size)


def broadcast(per_class: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """per_class [N, C, K] values, mask [N, C, H, W] (soft) one-hot -> [N, K, H, W] (paint each region)."""
    n, c, h, w = mask.shape
    out = torch.bmm(per_class.transpose(1, 2), mask.reshape(n, c, h * w))  # [N, K, H*W]
    return out.view(n, -1, h, w)


def region_pool(feats: torch.Tensor, mask: torch.Tensor, eps: float = 1e-4) -> tuple[torch.Tensor, torch.Tensor]:
    """feats [N, S, H, W], mask [N, C, H, W] -> (mean feature per region [N, C, S], area [N, C] in pixels)."""
    n, s, h, w = feats.shape
    m = mask.reshape(n, mask.shape[1], h * w)
    area = m.sum(-1)                                                        # [N, C]
    pooled = torch.bmm(m, feats.reshape(n, s, h * w).transpose(1, 2))       # [N, C, S]
    return pooled / area.unsqueeze(-1).clamp_min(eps), area


class RegionModNorm(nn.Module):
    """SEAN-style normalisation: pixel_norm(x) * gamma + beta, gamma/beta from region styles + mask features.

    Per pixel, [gamma, beta] = sum_c mask_c * (A s_c + b_c) + W mfeat: the first term paints each
    region with an affine map of its style vector (SEAN's gamma^s), the second is SPADE's mask
    term. Both are one batched matmul against `cond` = [mask, mfeat] in channels-last layout.
    """

    def __init__(self, channels: int, style_dim: int, mask_feat: int, num_classes: int):
        super().__init__()
        self.channels = channels
        self.style_affine = nn.Linear(style_dim, 2 * channels, bias=False)      # shared over classes
        self.class_affine = nn.Parameter(torch.cat([torch.ones(num_classes, channels),   # gamma = 1
                                                    torch.zeros(num_classes, channels)], 1))  # beta = 0
        self.spatial = nn.Parameter(torch.zeros(mask_feat, 2 * channels))       # SPADE term from mask feats
        nn.init.normal_(self.style_affine.weight, std=0.5 / math.sqrt(style_dim))

    def forward(self, x: torch.Tensor, cond: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
        # x [N, ch, H, W] (channels_last); cond [N, H*W, C+M]; styles [N, C, S]
        n, ch, h, w = x.shape
        per_class = self.style_affine(styles) + self.class_affine              # [N, C, 2ch]
        weight = torch.cat([per_class, self.spatial.expand(n, -1, -1)], 1)      # [N, C+M, 2ch]
        gb = torch.bmm(cond, weight.to(cond.dtype)).view(n, h, w, 2 * ch)       # [N, H, W, 2ch]
        xn = F.layer_norm(x.permute(0, 2, 3, 1), (ch,))                         # pixel norm, [N, H, W, ch]
        out = torch.addcmul(gb[..., ch:], xn, gb[..., :ch])                     # xn * gamma + beta
        return out.permute(0, 3, 1, 2)                                         # [N, ch, H, W] channels_last


class NoiseInput(nn.Module):
    """x + w_c * noise with a learned per-channel strength (StyleGAN); noise None -> identity."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        return x if noise is None else torch.addcmul(x, self.weight, noise)


class ResBlock(nn.Module):
    """SPADE/SEAN residual block: [norm -> lrelu -> conv3x3 (+noise)] x 2, + (learned) shortcut."""

    def __init__(self, cin: int, cout: int, style_dim: int, mask_feat: int, num_classes: int):
        super().__init__()
        mid = min(cin, cout)
        self.norm1 = RegionModNorm(cin, style_dim, mask_feat, num_classes)
        self.conv1 = nn.Conv2d(cin, mid, 3, padding=1)
        self.noise1 = NoiseInput(mid)
        self.norm2 = RegionModNorm(mid, style_dim, mask_feat, num_classes)
        self.conv2 = nn.Conv2d(mid, cout, 3, padding=1)
        self.noise2 = NoiseInput(cout)
        self.short = None if cin == cout else nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x, cond, styles, noise=None):
        s = x if self.short is None else self.short(x)
        h = self.conv1(F.leaky_relu(self.norm1(x, cond, styles), 0.2, inplace=True))
        h = self.noise1(h, None if noise is None else noise[0])
        h = self.conv2(F.leaky_relu(self.norm2(h, cond, styles), 0.2, inplace=True))
        h = self.noise2(h, None if noise is None else noise[1])
        return s + h


class StyleEncoder(nn.Module):
    """SEAN style encoder: image [N, 3, R, R] in [-1, 1] + one-hot mask -> styles [N, C, S].

    A small down/up conv net (stride 8 bottleneck, skip at stride 4) gives features at R/4 with
    context; each class's style is the average of the features over that class's region.
    """

    def __init__(self, style_dim: int, width: int):
        super().__init__()
        w = width
        act = lambda: nn.LeakyReLU(0.2, inplace=True)  # noqa: E731
        self.down1 = nn.Sequential(nn.Conv2d(3, w, 3, 2, 1), act(), nn.Conv2d(w, 2 * w, 3, 2, 1), act())  # R/4
        self.down2 = nn.Sequential(nn.Conv2d(2 * w, 4 * w, 3, 2, 1), act(), nn.Conv2d(4 * w, 4 * w, 3, 1, 1), act(),
                                   nn.Conv2d(4 * w, 8 * w, 3, 2, 1), act())                            # R/16
        self.up = nn.Sequential(nn.Conv2d(8 * w, 4 * w, 3, 1, 1), act())
        self.fuse = nn.Sequential(nn.Conv2d(4 * w + 2 * w, 4 * w, 1), act(), nn.Conv2d(4 * w, style_dim, 1))

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f4 = self.down1(image)                                               # [N, 2w, R/4, R/4]
        f16 = self.up(self.down2(f4))                                        # [N, 4w, R/16, R/16]
        f16 = F.interpolate(f16, size=f4.shape[-2:], mode="bilinear", align_corners=False)
        feats = self.fuse(torch.cat([f16, f4], 1))                           # [N, S, R/4, R/4]
        return region_pool(feats.float(), resize_mask(mask, feats.shape[-1]).float())


class Generator(nn.Module):
    """Mask + styles -> image. Blocks at resolutions base*2^i with channels[i]; base = R / 2^(len-1)."""

    def __init__(self, image_size: int, channels: list[int], style_dim: int, mask_feat: int, num_classes: int):
        super().__init__()
        self.resolutions = [image_size // 2 ** (len(channels) - 1 - i) for i in range(len(channels))]
        self.stem = nn.Conv2d(num_classes, channels[0], 3, padding=1)
        self.mask_convs = nn.ModuleList(nn.Conv2d(num_classes, mask_feat, 3, padding=1) for _ in channels)
        # channel changes happen by a 1x1 conv *before* each x2 upsampling (4x cheaper than after)
        self.reduce = nn.ModuleList(nn.Conv2d(ci, co, 1, bias=False) if ci != co else nn.Identity()
                                    for ci, co in zip(channels[:-1], channels[1:]))
        self.blocks = nn.ModuleList(ResBlock(c, c, style_dim, mask_feat, num_classes) for c in channels)
        self.to_rgb = nn.Conv2d(channels[-1], 3, 3, padding=1)

    def forward(self, mask: torch.Tensor, styles: torch.Tensor, noise: list | None = None) -> torch.Tensor:
        # mask [N, C, R, R] one-hot; styles [N, C, S]; noise: per block a pair of [N, 1, r, r] or None
        dtype = torch.get_autocast_dtype(mask.device.type) if torch.is_autocast_enabled(mask.device.type) \
            else styles.dtype
        mask = mask.to(dtype).contiguous(memory_format=torch.channels_last)
        x = self.stem(resize_mask(mask, self.resolutions[0]))                # [N, ch0, base, base]
        for i, (res, block, mconv) in enumerate(zip(self.resolutions, self.blocks, self.mask_convs)):
            if i > 0:
                x = F.interpolate(self.reduce[i - 1](x), scale_factor=2.0, mode="nearest")
            m = resize_mask(mask, res)                                       # [N, C, res, res]
            mfeat = F.leaky_relu(mconv(m), 0.2)                              # [N, M, res, res]
            cond = torch.cat([m.to(mfeat.dtype), mfeat], 1).permute(0, 2, 3, 1).reshape(
                m.shape[0], res * res, -1)                                   # [N, res*res, C+M]
            x = block(x, cond, styles, None if noise is None else noise[i])
        return torch.tanh(self.to_rgb(F.leaky_relu(x, 0.2)))                # [N, 3, R, R] in [-1, 1]


class Mask2Face(ConfigModule):
    """Mask-guided portrait generator (seed 001 via SEAN): `encode_styles`, `generate`, `sample_styles`."""

    def __init__(self,
                 image_size: int = 256,                                  # output side in pixels (power of 2)
                 channels: tuple = (512, 512, 256, 128, 64, 32),         # generator widths from 8 px up to 256 px
                 style_dim: int = 64,                                    # S: style vector length per class
                 encoder_width: int = 32,                                # style encoder base width
                 mask_feat: int = 32,                                    # SPADE mask-feature channels per res.
                 style_rank: int = 64,                                   # rank of the fitted style Gaussian
                 num_classes: int = MODEL_CLASSES):                      # C: mask classes (19, occluder -> bg)
        super().__init__(image_size=image_size, channels=list(channels), style_dim=style_dim,
                         encoder_width=encoder_width, mask_feat=mask_feat, style_rank=style_rank,
                         num_classes=num_classes)
        self.num_classes, self.style_dim, self.image_size = num_classes, style_dim, image_size
        self.encoder = StyleEncoder(style_dim, encoder_width)
        self.generator = Generator(image_size, list(channels), style_dim, mask_feat, num_classes)
        # Seed path: styles = mean + basis^T z + resid * eps, z ~ N(0, I_rank), eps ~ N(0, I).
        # `style_mean` also fills classes absent from a style photo. Fitted by `fit_style_prior`.
        self.register_buffer("style_mean", torch.zeros(num_classes, style_dim))            # [C, S]
        self.register_buffer("style_basis", torch.zeros(style_rank, num_classes * style_dim))  # [r, C*S]
        self.register_buffer("style_resid", torch.zeros(num_classes, style_dim))           # [C, S] std

    # -- inference API ---------------------------------------------------------------------------
    def encode_styles(self, image: torch.Tensor, labels: torch.Tensor, min_area: float = 1.0) -> torch.Tensor:
        """image [N, 3, R, R] in [-1, 1], labels [N, R, R] long -> styles [N, C, S].

        Classes covering < `min_area` encoder pixels (R/4 grid) take `style_mean` (the class's
        average style), so a mask edit that adds a class the photo lacks still renders it.
        """
        styles, area = self.encoder(image, one_hot(labels, self.num_classes, image.dtype))  # [N,C,S], [N,C]
        present = (area >= min_area).unsqueeze(-1)
        return torch.where(present, styles, self.style_mean.to(styles.dtype).expand_as(styles))

    def generate(self, labels: torch.Tensor, styles: torch.Tensor,
                 noise: torch.Generator | bool | None = None) -> torch.Tensor:
        """labels [N, R, R] long, styles [N, C, S] -> image [N, 3, R, R] in [-1, 1].

        noise: None -> no noise (deterministic); a torch.Generator -> per-pixel noise drawn from it
        (same seed, same image); True -> drawn from the global RNG (training).
        """
        mask = one_hot(labels, self.num_classes, styles.dtype)              # [N, C, R, R]
        noises = None if noise is None or noise is False else self.make_noise(
            labels.shape[0], labels.device, None if noise is True else noise)
        return self.generator(mask, styles, noises)

    def make_noise(self, n: int, device, generator: torch.Generator | None = None) -> list:
        """Per block two [N, 1, r, r] standard normal maps."""
        return [[torch.randn(n, 1, r, r, device=device, generator=generator) for _ in range(2)]
                for r in self.generator.resolutions]

    def sample_styles(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0
                      ) -> torch.Tensor:
        """Seed path: n style tensors [n, C, S] from the fitted low-rank Gaussian (temperature scales the spread)."""
        dev = self.style_mean.device
        r, d = self.style_basis.shape
        z = torch.randn(n, r, generator=generator, device=dev)
        eps = torch.randn(n, d, generator=generator, device=dev)
        flat = z @ self.style_basis + eps * self.style_resid.reshape(1, d)   # [n, C*S]
        return self.style_mean + temperature * flat.view(n, self.num_classes, self.style_dim)

    def forward(self, image: torch.Tensor, labels: torch.Tensor, target_labels: torch.Tensor | None = None
                ) -> torch.Tensor:
        """Reconstruct (or re-shape to `target_labels`) an image from its own styles: [N, 3, R, R]."""
        styles = self.encode_styles(image, labels)
        return self.generate(labels if target_labels is None else target_labels, styles)

    # -- seed-path fitting (training side) -------------------------------------------------------
    @torch.no_grad()
    def fit_style_prior(self, styles: torch.Tensor, present: torch.Tensor) -> None:
        """Fit style_mean/basis/resid from encoded styles [M, C, S] with presence [M, C] bool.

        Absent entries are imputed with the class mean (zero deviation), then PCA of the
        flattened [M, C*S] deviations keeps the top `style_rank` directions; the rest of the
        variance becomes a per-dimension residual std.
        """
        styles, present = styles.float(), present.float().unsqueeze(-1)
        count = present.sum(0).clamp_min(1)                                   # [C, 1]
        mean = (styles * present).sum(0) / count                              # [C, S]
        dev = ((styles - mean) * present).flatten(1)                          # [M, C*S]
        m = dev.shape[0]
        r = min(self.style_basis.shape[0], max(m - 1, 0))
        basis = torch.zeros_like(self.style_basis)
        explained = torch.zeros_like(dev)
        if r > 0:
            u, s, vh = torch.linalg.svd(dev, full_matrices=False)
            basis[:r] = vh[:r] * (s[:r] / math.sqrt(max(m - 1, 1))).unsqueeze(1)
            explained = (u[:, :r] * s[:r]) @ vh[:r]
        resid_var = ((dev - explained) ** 2).sum(0) / count.expand_as(mean).flatten().clamp_min(2).sub(1)
        self.style_mean.copy_(mean)
        self.style_basis.copy_(basis)
        self.style_resid.copy_(resid_var.sqrt().view_as(mean))


# --------------------------------------------------------------------------------------------------
# Training-only: multiscale PatchGAN discriminator (pix2pixHD, Wang et al. 2018 §3.2; seed 001 §3.1.4)
# --------------------------------------------------------------------------------------------------
def _sn(module: nn.Module) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(module)


class PatchDiscriminator(nn.Module):
    """Conditional PatchGAN: [image, one-hot mask] -> (patch logits, intermediate features)."""

    def __init__(self, in_ch: int, width: int = 64, layers: int = 3):
        super().__init__()
        convs, c = [], in_ch
        for i in range(layers):
            co = min(width * 2 ** i, 8 * width)
            convs.append(_sn(nn.Conv2d(c, co, 4, 2, 1)))
            c = co
        convs.append(_sn(nn.Conv2d(c, min(2 * c, 8 * width), 4, 1, 1)))
        self.convs = nn.ModuleList(convs)
        self.head = _sn(nn.Conv2d(min(2 * c, 8 * width), 1, 4, 1, 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        feats = []
        for conv in self.convs:
            x = F.leaky_relu(conv(x), 0.2)
            feats.append(x)
        return self.head(x), feats


class MultiscaleDiscriminator(nn.Module):
    """`num_d` PatchGANs on the input at full, 1/2, 1/4... scale (average pooling), seed 001's d_1, d_2."""

    def __init__(self, num_classes: int = MODEL_CLASSES, width: int = 64, num_d: int = 2, layers: int = 3):
        super().__init__()
        self.ds = nn.ModuleList(PatchDiscriminator(3 + num_classes, width, layers) for _ in range(num_d))

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> list[tuple[torch.Tensor, list[torch.Tensor]]]:
        # image [N, 3, R, R], mask [N, C, R, R] (one-hot, possibly augmented) -> per scale (logits, feats)
        x = torch.cat([image, mask.to(image.dtype)], 1)
        out = []
        for i, d in enumerate(self.ds):
            if i > 0:
                x = F.avg_pool2d(x, 3, 2, 1, count_include_pad=False)
            out.append(d(x))
        return out
