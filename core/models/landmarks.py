"""A 68-point face landmark network with per-point visibility, trained here (FAN family, one hourglass).

Bulat & Tzimiropoulos's FAN (ICCV 2017, the landmark model of Yin's thesis) stacks hourglasses that output one
heatmap per point. This is one small hourglass (stride 4 heatmaps, 32x32 for a 128 px crop) read out with a
soft-argmax (integral regression, Sun et al. 2018), so the points are sub-pixel and the loss is on coordinates.
A second head says, per point, whether it is visible (not under a mask, glasses, a hand, hair, and not on the far
side of a turned head): pipelines use it to tell a point on a mask from a point on skin.

Points follow iBUG 300-W's 68-point order (dlib's). On a full profile the far-side points are placed where the
head's 3D shape puts them (as 3D-landmark sets do) and marked not visible.

Input: RGB float [B, 3, 128, 128] in [0, 1], the face box's centre at the centre, the box's longer side
`CROP_SCALE` times smaller than the crop. Output: `points` [B, 68, 2] in crop pixels, `visible` [B, 68] logits.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import ConfigModule
from .face_detector import Block, conv_bn

CROP_SCALE = 1.45   # crop side / face box side (the box of the 68 landmarks)


class Hourglass(nn.Module):
    def __init__(self, widths: list[int]):
        super().__init__()
        self.down = nn.ModuleList([Block(widths[i], widths[i + 1], 2) for i in range(len(widths) - 1)])
        self.skip = nn.ModuleList([Block(widths[i], widths[i], 1) for i in range(len(widths) - 1)])
        self.up = nn.ModuleList([conv_bn(widths[i + 1], widths[i], k=1) for i in range(len(widths) - 1)])
        self.mid = Block(widths[-1], widths[-1], 1)

    def forward(self, x):
        skips = []
        for down, skip in zip(self.down, self.skip):
            skips.append(skip(x))
            x = down(x)
        x = self.mid(x)
        for up, s in zip(reversed(self.up), reversed(skips)):
            x = F.interpolate(up(x), size=s.shape[-2:], mode="bilinear", align_corners=False) + s
        return x


class LandmarkNet(ConfigModule):
    def __init__(self, points: int = 68, input_size: int = 128, widths: tuple = (48, 64, 96, 128)):
        super().__init__(points=points, input_size=input_size, widths=list(widths))
        self.stem = nn.Sequential(conv_bn(3, 32, 2), Block(32, widths[0], 2))   # /4
        self.hourglass = Hourglass(list(widths))
        self.head = nn.Sequential(Block(widths[0], widths[0], 1), nn.Conv2d(widths[0], points, 1))
        self.vis = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(widths[0] * 16, 256),
                                 nn.ReLU(inplace=True), nn.Linear(256, points))
        self.beta = nn.Parameter(torch.tensor(4.0))   # soft-argmax sharpness (log scale), learned

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        f = self.hourglass(self.stem(x))
        heat = self.head(f)
        b, k, h, w = heat.shape
        prob = torch.softmax(heat.float().view(b, k, -1) * self.beta.exp(), -1).view(b, k, h, w)
        stride = x.shape[-1] / w
        xs = (torch.arange(w, device=x.device, dtype=torch.float32) + 0.5) * stride
        ys = (torch.arange(h, device=x.device, dtype=torch.float32) + 0.5) * stride
        px = (prob.sum(2) * xs).sum(-1)
        py = (prob.sum(3) * ys).sum(-1)
        return {"points": torch.stack([px, py], -1), "visible": self.vis(f).float(), "heat": heat}
