"""MTV encoder E: aligned face crop -> w+ (and optionally z_c) of our 128 px StyleGAN2 generator.

Follows seed 002, Yu & Wang, "Adaptable GAN Encoders for Image Reconstruction via
Multi-type Latent Vectors with Two-scale Attentions" (MTV-TSA), Table I (StyleGAN
encoders): E mirrors the synthesis network of G (core/models/stylegan.py). A 1x1
from-RGB conv, then one block per resolution 128 -> 64 -> ... -> 4 of two
`CONV 3x3, IN, L-ReLU` layers with a residual bypass and average pooling between
blocks; equalised learning rate. The instance-norm statistics (mean, std) of every
layer go through a small FC head that emits one w' slice, so the 2 (log2 R - 1)
layers of E give exactly G's num_ws = 2 log2 R - 2 slices (12 at 128 px). Fine
layers come first in E and carry the last ws (colour, texture); the 4 px block
emits ws 0-1 (pose, shape), mirroring G's `ws_index` table:

    E block (px)   128    64    32    16    8    4
    ws emitted     11,10  9,8   7,6   5,4   3,2  1,0

Deliberate differences from the seed:
- ws are predicted as an offset from G's tracked mean w (`w_avg`, a buffer copied
  from G when training starts), so an untrained E already decodes to the mean face
  and inference needs only E + G;
- each head is FC(2C -> hidden) + L-ReLU + FC(hidden -> 512) rather than one FC;
- in blocks at or below `spatial_res` px the heads also see the normalised feature
  map itself (flattened): mean/std over a 4x4 map discard *where* things are, and
  the 4 px block is the one that sets pose;
- the layer-level noise weights z_n are not predicted (G runs with constant noise);
  the constant input z_c is an optional head (`predict_const`, off by default: a
  per-image z_c lets E explain images outside G's W space, which hurts editing
  with ws; see train/encoder.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from core.models.common import ConfigModule
from core.models.stylegan import EqualConv2d, EqualLinear

SQRT2 = math.sqrt(2.0)


@dataclass
class EncoderOutput:
    ws: torch.Tensor                   # [N, num_ws, w_dim], G's w+ (absolute, w_avg already added)
    const: torch.Tensor | None = None  # [N, C4, 4, 4] replacement for G's constant input, or None


class EncoderLayer(nn.Module):
    """CONV 3x3 -> IN -> L-ReLU; the IN statistics (and small maps) -> head -> one w' slice (Table I row)."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, hidden: int, spatial: int):
        super().__init__()
        self.conv = EqualConv2d(in_ch, out_ch, 3, activation=False)
        self.spatial = spatial  # side of the flattened map the head also sees; 0 = statistics only
        feat = 2 * out_ch + out_ch * spatial * spatial
        self.head = nn.Sequential(EqualLinear(feat, hidden, activation=True), EqualLinear(hidden, w_dim))
        with torch.no_grad():  # start close to w_avg: small initial offsets
            self.head[1].weight.mul_(0.1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.conv(x)                                   # [N, C, R, R]
        hf = h.float()                                     # statistics in fp32 even under autocast
        mean = hf.mean((2, 3))                             # [N, C]
        std = (hf.var((2, 3), unbiased=False) + 1e-5).sqrt()
        hn = (hf - mean[..., None, None]) / std[..., None, None]
        feats = [mean, std]
        if self.spatial:
            feats.append(F.adaptive_avg_pool2d(hn, self.spatial).flatten(1))  # [N, C * s * s]
        w = self.head(torch.cat(feats, 1).to(h.dtype))    # [N, w_dim]
        return F.leaky_relu(hn.to(h.dtype), 0.2) * SQRT2, w


class EncoderBlock(nn.Module):
    """Two EncoderLayers at one resolution with a residual bypass, then 2x average pooling (not at 4 px)."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, hidden: int, resolution: int, spatial_res: int):
        super().__init__()
        spatial = min(resolution, 4) if resolution <= spatial_res else 0
        self.layers = nn.ModuleList([EncoderLayer(in_ch, in_ch, w_dim, hidden, spatial),
                                     EncoderLayer(in_ch, out_ch, w_dim, hidden, spatial)])
        self.skip = EqualConv2d(in_ch, out_ch, 1, bias=False, activation=False) if in_ch != out_ch else None
        self.down = resolution > 4

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        # x [N, I, R, R] -> [N, O, R/2, R/2] (R at 4 px), two w' slices [N, w_dim] (first = finer)
        h, ws = x, []
        for layer in self.layers:
            h, w = layer(h)
            ws.append(w)
        s = x if self.skip is None else self.skip(x)
        h = (h + s) / SQRT2
        return (F.avg_pool2d(h, 2) if self.down else h), ws


class MTVEncoder(ConfigModule):
    """E: image [N, 3, R, R] in [-1, 1] -> EncoderOutput(ws [N, num_ws, w_dim], const [N, C4, 4, 4] | None).

    `w_avg` (and `const_avg` when `predict_const`) are buffers holding G's values; copy them in with
    `set_generator_stats(G)` before training so the saved encoder is self-contained.
    """

    def __init__(self,
                 img_resolution: int = 128,   # input side, px (power of two); must equal G's
                 w_dim: int = 512,            # G's w dimension
                 channel_base: int = 16384,   # E channels at resolution r = min(channel_base // r, channel_max)
                 channel_max: int = 256,
                 head_hidden: int = 512,      # width of each w' head's hidden FC layer
                 spatial_res: int = 4,        # heads of blocks at <= this px also see the 4x4-pooled map; 0 = off
                 predict_const: bool = False,  # also predict G's constant input z_c as an offset (seed's MTV)
                 const_channels: int = 256):  # G's channels at 4 px (only used when predict_const)
        super().__init__(img_resolution=img_resolution, w_dim=w_dim, channel_base=channel_base,
                         channel_max=channel_max, head_hidden=head_hidden, spatial_res=spatial_res,
                         predict_const=predict_const, const_channels=const_channels)
        log2 = int(math.log2(img_resolution))
        assert img_resolution == 2 ** log2 and img_resolution >= 8
        self.num_ws = 2 * log2 - 2  # G's num_ws: one w' per encoder layer
        self.resolutions = [2 ** i for i in range(log2, 1, -1)]  # R, R/2, ..., 4
        ch = {r: min(channel_base // r, channel_max) for r in self.resolutions}
        self.from_rgb = EqualConv2d(3, ch[img_resolution], 1)  # with lrelu
        self.blocks = nn.ModuleList([EncoderBlock(ch[r], ch[max(r // 2, 4)], w_dim, head_hidden, r, spatial_res)
                                     for r in self.resolutions])
        self.register_buffer("w_avg", torch.zeros(w_dim))
        self.predict_const = predict_const
        if predict_const:
            self.const_head = EqualConv2d(ch[4], const_channels, 3, activation=False)
            with torch.no_grad():
                self.const_head.weight.zero_()  # starts at G's constant
            self.register_buffer("const_avg", torch.zeros(const_channels, 4, 4))

    @torch.no_grad()
    def set_generator_stats(self, G, w_avg: torch.Tensor | None = None):
        """Copy G's mean w (or a given [w_dim] estimate) and learned constant into the buffers."""
        assert G.num_ws == self.num_ws and G.img_resolution == self.config["img_resolution"], \
            f"encoder for {self.config['img_resolution']} px / {self.num_ws} ws does not fit G"
        self.w_avg.copy_(G.w_avg if w_avg is None else w_avg)
        if self.predict_const:
            self.const_avg.copy_(G.synthesis_network.blocks[0].const)

    def forward(self, img: torch.Tensor) -> EncoderOutput:
        x = self.from_rgb(img)                       # [N, C_R, R, R]
        slices: list[torch.Tensor] = []              # fine to coarse
        for block in self.blocks:
            x, ws = block(x)
            slices += ws
        delta = torch.stack(slices[::-1], 1)         # [N, num_ws, w_dim], coarse (ws 0) first
        ws = self.w_avg.to(delta.dtype) + delta
        const = None
        if self.predict_const:
            const = self.const_avg.to(x.dtype) + self.const_head(x)  # [N, C4, 4, 4]
        return EncoderOutput(ws=ws, const=const)

    def reconstruct(self, G, img: torch.Tensor) -> torch.Tensor:
        """x' = G(E(x)): [N, 3, R, R] in [-1, 1] -> [N, 3, R, R] (constant noise)."""
        out = self(img)
        return G.synthesis(out.ws, noise_mode="const", const=out.const)
