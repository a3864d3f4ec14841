"""FaceParser: a small U-Net with a ResNet-style encoder for 20-class face parsing.

What: per-pixel labels of the canonical 256 px aligned crop in the 19
CelebAMask-HQ classes plus `occluder` (core/labels.py). Why this shape:
 - encoder = ResNet basic blocks (He et al. 2016, Fig. 2) at strides 4..32,
   trained from scratch (no ImageNet weights on these machines), plain 3x3
   convs because they are the fastest per FLOP both in oneDNN on 2 CPU cores and
   in cuDNN bf16 on the training GPU (depthwise convs are not);
 - a global-average "context" vector added to the stride-32 features, as
   BiSeNet's context path does (Yu et al. 2018, §3.2 attention refinement /
   global pooling) so that left/right and face/hair decisions see the whole crop;
 - a U-Net decoder (Ronneberger et al. 2015) with skips down to stride 2 for
   crisp part boundaries (eyes and brows are a few pixels tall at 256 px);
 - logits at stride 2, bilinearly upsampled to the input size.
Deliberately different from BiSeNet: no spatial path and no auxiliary heads;
the stride-2 skip plays the spatial path's role at a fraction of the cost.
Input is RGB in [0, 1]; normalisation happens inside the model.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from core.labels import NUM_CLASSES
from core.models.common import ConfigModule


def conv_bn(cin: int, cout: int, k: int = 3, stride: int = 1, act: bool = True) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(cin, cout, k, stride, k // 2, bias=False), nn.BatchNorm2d(cout)]
    if act:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


class BasicBlock(nn.Module):
    """ResNet basic block (He et al. 2016): two 3x3 convs + identity / strided 1x1 shortcut."""

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = conv_bn(cin, cout, 3, stride)
        self.conv2 = conv_bn(cout, cout, 3, 1, act=False)
        self.short = None if stride == 1 and cin == cout else conv_bn(cin, cout, 1, stride, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x if self.short is None else self.short(x)
        return F.relu(self.conv2(self.conv1(x)) + s, inplace=True)


class UpBlock(nn.Module):
    """U-Net decoder step: upsample x2 (bilinear), concat the skip, 1x1 fuse, 3x3 conv."""

    def __init__(self, cin: int, cskip: int, cout: int):
        super().__init__()
        self.fuse = conv_bn(cin + cskip, cout, 1)
        self.conv = conv_bn(cout, cout, 3)

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(self.fuse(torch.cat([x, skip], 1)))


class FaceParser(ConfigModule):
    """Aligned face crop [N, 3, H, W] in [0, 1] -> logits [N, num_classes, H, W]."""

    def __init__(self,
                 num_classes: int = NUM_CLASSES,          # output classes (20 = CelebAMask-HQ 19 + occluder)
                 widths: tuple = (32, 64, 128, 192, 256),  # channels at strides 2, 4, 8, 16, 32
                 depths: tuple = (2, 2, 2, 1),             # basic blocks at strides 4, 8, 16, 32
                 dec_widths: tuple = (128, 96, 64, 32)):   # decoder channels at strides 16, 8, 4, 2
        super().__init__(num_classes=num_classes, widths=list(widths), depths=list(depths),
                         dec_widths=list(dec_widths))
        assert len(widths) == 5 and len(depths) == 4 and len(dec_widths) == 4
        self.register_buffer("mean", torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1), persistent=False)
        self.stem = nn.Sequential(conv_bn(3, widths[0] // 2, 3, 2), conv_bn(widths[0] // 2, widths[0], 3))
        stages = []
        for i, d in enumerate(depths):
            blocks = [BasicBlock(widths[i], widths[i + 1], 2)] + [BasicBlock(widths[i + 1], widths[i + 1])
                                                                 for _ in range(d - 1)]
            stages.append(nn.Sequential(*blocks))
        self.stages = nn.ModuleList(stages)
        self.context = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(widths[4], widths[4], 1), nn.ReLU(True))
        ups, cin = [], widths[4]
        for skip, cout in zip(reversed(widths[:4]), dec_widths):
            ups.append(UpBlock(cin, skip, cout))
            cin = cout
        self.ups = nn.ModuleList(ups)
        self.head = nn.Conv2d(dec_widths[-1], num_classes, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        x = (x - self.mean) / self.std                  # [N, 3, H, W] normalised
        feats = [self.stem(x)]                          # stride 2
        for stage in self.stages:
            feats.append(stage(feats[-1]))              # strides 4, 8, 16, 32
        y = feats[-1] + self.context(feats[-1])         # [N, C4, H/32, W/32] + global context
        for up, skip in zip(self.ups, reversed(feats[:-1])):
            y = up(y, skip)                             # up to [N, dec[-1], H/2, W/2]
        logits = self.head(y)                           # [N, num_classes, H/2, W/2]
        return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)

    def forward_flip(self, x: torch.Tensor) -> torch.Tensor:
        """Test-time flip: log of the mean of the softmax of x and of its mirror (left/right classes swapped back)."""
        from core.labels import FLIP_PERM

        perm = torch.as_tensor(FLIP_PERM, device=x.device)
        probs = self(x).float().softmax(1) + self(x.flip(-1)).float().flip(-1)[:, perm].softmax(1)
        return (probs / 2).log()

    @torch.no_grad()
    def predict(self, x: torch.Tensor, flip: bool = False) -> torch.Tensor:
        """[N, 3, H, W] RGB in [0, 1] -> labels [N, H, W] int64 (argmax; `flip` averages with the mirror)."""
        return (self.forward_flip(x) if flip else self(x)).argmax(1)
