"""A small anchor-free face detector (CenterNet, Zhou et al. 2019, "Objects as Points"), trained here.

Why this design: one face = one peak in a stride-4 heatmap plus the box size and a sub-pixel offset at that peak.
No anchors to tune, no NMS beyond a 3x3 max-pool, and the whole network is a plain conv stack that runs in a
few milliseconds on a CPU at 320 px. The box it predicts is the box of the face's 68 landmarks (brows to chin,
ear to ear), for frontal faces and full profiles alike, so the landmark network's crop comes straight from it.

Input: RGB float [B, 3, H, W] in [0, 1], H and W multiples of 32. Output at stride 4: `heat` [B, 1, H/4, W/4]
(logits), `size` [B, 2, H/4, W/4] (log of box width/height in input pixels), `offset` [B, 2, H/4, W/4] (sub-cell
centre position in cells).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .common import ConfigModule

STRIDE = 4


def conv_bn(cin: int, cout: int, stride: int = 1, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class Block(nn.Module):
    """Two 3x3 convs with a residual connection (the first may downsample)."""

    def __init__(self, cin: int, cout: int, stride: int):
        super().__init__()
        self.a = conv_bn(cin, cout, stride)
        self.b = nn.Sequential(nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.skip = None if stride == 1 and cin == cout else nn.Sequential(
            nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        return F.relu(self.b(self.a(x)) + (x if self.skip is None else self.skip(x)))


class FaceDetector(ConfigModule):
    def __init__(self, widths: tuple = (16, 24, 48, 80, 128), neck: int = 32):
        super().__init__(widths=list(widths), neck=neck)
        w = widths
        self.stem = conv_bn(3, w[0], 2)                                # /2
        self.stages = nn.ModuleList([Block(w[i - 1], w[i], 2) for i in range(1, len(w))])  # /4 /8 /16 /32
        self.lateral = nn.ModuleList([nn.Conv2d(c, neck, 1) for c in w[1:]])
        self.smooth = conv_bn(neck, neck)
        self.heat = nn.Sequential(conv_bn(neck, neck), nn.Conv2d(neck, 1, 1))
        self.box = nn.Sequential(conv_bn(neck, neck), nn.Conv2d(neck, 4, 1))
        nn.init.constant_(self.heat[-1].bias, -4.6)   # prior ~1% face cells: stable focal loss at the start

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        feats, h = [], self.stem(x)
        for stage in self.stages:
            h = stage(h)
            feats.append(h)
        y = self.lateral[-1](feats[-1])
        for lat, f in zip(reversed(self.lateral[:-1]), reversed(feats[:-1])):   # top-down to stride 4
            y = F.interpolate(y, size=f.shape[-2:], mode="nearest") + lat(f)
        y = self.smooth(y)
        box = self.box(y)
        return {"heat": self.heat(y), "size": box[:, :2], "offset": box[:, 2:]}


@torch.no_grad()
def decode(out: dict[str, torch.Tensor], threshold: float = 0.35, top_k: int = 50) -> list[torch.Tensor]:
    """Per image: [K, 5] (x0, y0, x1, y1, score) in input pixels, best first, overlapping duplicates removed."""
    heat = torch.sigmoid(out["heat"].float())
    peaks = heat * (F.max_pool2d(heat, 3, 1, 1) == heat)
    b, _, h, w = heat.shape
    scores, idx = peaks.view(b, -1).topk(min(top_k, h * w))
    results = []
    for i in range(b):
        keep = scores[i] >= threshold
        s, j = scores[i][keep], idx[i][keep]
        ys, xs = (j // w).float(), (j % w).float()
        off = out["offset"][i].float().view(2, -1)[:, j]
        size = out["size"][i].float().view(2, -1)[:, j].exp()
        cx, cy = (xs + off[0]) * STRIDE, (ys + off[1]) * STRIDE
        boxes = torch.stack([cx - size[0] / 2, cy - size[1] / 2, cx + size[0] / 2, cy + size[1] / 2, s], 1)
        results.append(suppress(boxes))
    return results


def suppress(boxes: torch.Tensor, iou: float = 0.4) -> torch.Tensor:
    """Greedy removal of boxes overlapping a better one (peaks of one big face can split)."""
    keep = []
    for k in range(len(boxes)):
        if all(box_iou(boxes[k, :4], boxes[j, :4]) < iou for j in keep):
            keep.append(k)
    return boxes[keep]


def box_iou(a: torch.Tensor, b: torch.Tensor) -> float:
    iw = (torch.minimum(a[2], b[2]) - torch.maximum(a[0], b[0])).clamp(min=0)
    ih = (torch.minimum(a[3], b[3]) - torch.maximum(a[1], b[1])).clamp(min=0)
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union.clamp(min=1e-6))
