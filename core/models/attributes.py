"""Face attribute network: a small ResNet with named heads, the labeller for attribute sliders.

InterFaceGAN (Shen et al., "Interpreting the Latent Space of GANs for Semantic Face Editing", CVPR 2020,
sec. 2.2 / 3) finds a linear boundary in W per attribute from generator samples labelled by an auxiliary
attribute predictor. This is that predictor for our 128 px StyleGAN2: a ResNet-18-like trunk
(He et al. 2016, basic blocks, fewer and thinner stages, ~2M parameters) on 128x128 canonical aligned
crops in [-1, 1] (the frame of every 128 px shard and of the generator), global average pooling and one
linear output per head (`train/attributes.py` trains it; `train/directions.py` uses it).

Differences from InterFaceGAN: one multi-head network instead of one ResNet-50 per attribute, and
regression heads (age, pose, mouth opening) next to the binary ones; those are regressed in normalised
units (`stats` holds each head's mean/std) and returned in their natural units.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.models.common import ConfigModule

# (name, kind, unit): kind "regression" returns the value in `unit`, "binary" the probability of the attribute.
ATTRIBUTES: list[tuple[str, str, str]] = [
    ("age", "regression", "years"),
    ("gender", "binary", "probability female"),
    ("smile", "binary", "probability smiling"),
    ("eyeglasses", "binary", "probability of eyeglasses"),
    ("bangs", "binary", "probability of bangs (hair over the forehead)"),
    ("hat", "binary", "probability of a hat"),
    ("beard", "binary", "probability of a beard (CelebA not No_Beard)"),
    ("blond_hair", "binary", "probability of blond hair"),
    ("black_hair", "binary", "probability of black hair"),
    ("yaw", "regression", "degrees, > 0 face turned to the image's right (core.face)"),
    ("pitch", "regression", "degrees, > 0 looking up"),
    ("mouth_open", "regression", "inner-lip gap / face height (landmarks 61-63 vs 67-65, 27 to 8)"),
]
KIND = {name: kind for name, kind, _ in ATTRIBUTES}


class BasicBlock(nn.Module):
    """Two 3x3 convs with BN and a (strided 1x1) shortcut; [N, cin, H, W] -> [N, cout, H/stride, W/stride]."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.short = (nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
                      if stride != 1 or cin != cout else nn.Identity())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(h)) + self.short(x))


class AttributeNet(ConfigModule):
    """128 px aligned face [N, 3, 128, 128] in [-1, 1] -> {head name: [N]} (values in natural units / probabilities).

    `forward_raw` gives the training outputs [N, n_heads]: logits for binary heads, normalised values
    ((y - mean) / std) for regression heads.
    """

    def __init__(self,
                 heads: list | None = None,        # [[name, kind], ...]; None = ATTRIBUTES
                 stats: dict | None = None,        # {regression head: [mean, std]} of its training labels; None = [0, 1]
                 widths: list | None = None,       # channels of the 4 stages (at 64, 32, 16, 8 px); None = [32, 48, 96, 192]
                 blocks: int = 2,                  # basic blocks per stage
                 dropout: float = 0.1):            # before the linear heads (training only)
        heads = [list(h) for h in (heads or [[n, k] for n, k, _ in ATTRIBUTES])]
        widths = list(widths or [32, 48, 96, 192])
        stats = {n: list(stats[n]) if stats and n in stats else [0.0, 1.0] for n, k in heads if k == "regression"}
        super().__init__(heads=heads, stats=stats, widths=widths, blocks=blocks, dropout=dropout)
        self.names = [n for n, _ in heads]
        self.kinds = [k for _, k in heads]
        self.stem = nn.Sequential(nn.Conv2d(3, widths[0], 3, 2, 1, bias=False), nn.BatchNorm2d(widths[0]), nn.ReLU())
        layers, cin = [], widths[0]
        for i, w in enumerate(widths):
            for b in range(blocks):
                layers.append(BasicBlock(cin, w, 2 if (b == 0 and i > 0) else 1))
                cin = w
        self.trunk = nn.Sequential(*layers)
        self.drop = nn.Dropout(dropout)
        self.head = nn.Linear(cin, len(heads))
        mean = [stats[n][0] if k == "regression" else 0.0 for n, k in heads]
        std = [stats[n][1] if k == "regression" else 1.0 for n, k in heads]
        self.register_buffer("mean", torch.tensor(mean), persistent=False)
        self.register_buffer("std", torch.tensor(std), persistent=False)
        self.register_buffer("is_binary", torch.tensor([k == "binary" for k in self.kinds]), persistent=False)

    def forward_raw(self, x: torch.Tensor) -> torch.Tensor:
        h = self.trunk(self.stem(x))                     # [N, C, 8, 8]
        return self.head(self.drop(h.mean((2, 3))))      # [N, n_heads]

    def decode(self, raw: torch.Tensor) -> dict[str, torch.Tensor]:
        """[N, n_heads] raw outputs -> {name: [N]} probabilities / natural units (float32)."""
        raw = raw.float()
        val = torch.where(self.is_binary, torch.sigmoid(raw), raw * self.std + self.mean)
        return {n: val[:, i] for i, n in enumerate(self.names)}

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.decode(self.forward_raw(x))
