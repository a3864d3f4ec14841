"""StyleGAN2-like generator and residual discriminator at 128 px, in plain PyTorch.

Follows Karras et al., "Analyzing and Improving the Image Quality of StyleGAN"
(StyleGAN2, CVPR 2020): mapping network z -> w (sec. 2 / Fig. 2 of StyleGAN1),
learned 4x4 constant, modulated convolutions with weight demodulation (sec. 2.2,
eq. 1-3), per-layer noise inputs, skip generator with toRGB at every resolution
and residual discriminator with minibatch standard deviation (sec. 4, Fig. 7).
It is the generator that the MTV-TSA seed (Yu & Wang, seed 002) inverts: the
encoder predicts w+ ([N, num_ws, 512]), the constant input z_c ([N, C, 4, 4])
and layer-level noise weights z_n, so `synthesis` accepts all three.

Deliberate differences from the official code (no custom CUDA ops here):
- modulation is applied to the activations (x * s, shared conv, output * d),
  which is mathematically the weight modulation/demodulation of eq. 1-3 but
  runs as one ordinary batched conv; the grouped-conv form is kept
  (`fused_modconv=True`) for batch-1 inference and as a reference in tests;
- up/down-sampling uses a [1,3,3,1] binomial filter as a depthwise conv
  (transposed conv + blur in G, blur + strided conv in D), skip images are
  upsampled bilinearly (the same filter);
- noise strengths are per channel (StyleGAN1 style, zero-initialised) rather
  than one scalar per layer, so they match the seed's z_n of size
  [N, n_layers, n_channels];
- no fp16 clamping: train in bf16 autocast or fp32.

w+ layer index per resolution (img_resolution 128, num_ws = 12); conv0
upsamples, toRGB shares its w with the next block's conv0 (as in StyleGAN2):

    res    conv0  conv1  toRGB
    4      -      0      1
    8      1      2      3
    16     3      4      5
    32     5      6      7
    64     7      8      9
    128    9      10     11

Generally res 2^k (k >= 3) uses w[2k-5], w[2k-4] and toRGB w[2k-3];
`SynthesisNetwork.ws_index` holds this table. Edits of pose and shape belong
to ws 0-5 (4-16 px), colour and texture to ws 6-11.
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from core.models.common import ConfigModule

SQRT2 = math.sqrt(2.0)


def _lrelu(x: torch.Tensor) -> torch.Tensor:
    """Leaky ReLU(0.2) with StyleGAN's sqrt(2) gain that keeps activations at unit variance."""
    return F.leaky_relu(x, 0.2) * SQRT2


# How the [1,3,3,1] blur runs: "conv" = one depthwise 4x4 conv (cuDNN), "pool" = three 2x2 box filters
# (avg_pool2d, since [1,3,3,1]/8 = [1,1]/2 * [1,1]/2 * [1,1]/2); the same numbers either way.
# `set_blur_impl` switches it (the trainer times both on the GPU and keeps the faster).
_BLUR_IMPL = {"impl": "conv"}


def set_blur_impl(impl: str) -> None:
    if impl not in ("conv", "pool"):
        raise ValueError(f"blur impl must be 'conv' or 'pool', not {impl!r}")
    _BLUR_IMPL["impl"] = impl


def get_blur_impl() -> str:
    return _BLUR_IMPL["impl"]


def _binomial_filter() -> torch.Tensor:
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    f = f[:, None] * f[None, :]
    return f / f.sum()  # [4, 4], sums to 1


def _blur(x: torch.Tensor, f: torch.Tensor, pad: int, stride: int = 1) -> torch.Tensor:
    """Binomial FIR filter `f` [4, 4] (`_binomial_filter`) on x [N, C, H, W], zero padding `pad`, then `stride`.

    [N, C, H, W] -> [N, C, (H + 2 pad - 4) // stride + 1, ...]; any gain is folded into the neighbouring conv weight.
    """
    if _BLUR_IMPL["impl"] == "pool":  # three 2x2 box filters, the stride on the last one
        x = F.avg_pool2d(x, 2, 1, padding=1) if pad == 1 else F.avg_pool2d(F.pad(x, [pad] * 4) if pad else x, 2, 1)
        return F.avg_pool2d(F.avg_pool2d(x, 2, 1), 2, stride)
    c = x.shape[1]
    w = f.to(x.dtype)[None, None].expand(c, 1, 4, 4)
    return F.conv2d(x, w, stride=stride, padding=pad, groups=c)


class EqualLinear(nn.Module):
    """Fully connected layer with equalised learning rate (weights N(0,1)/lr_mul, scaled at run time)."""

    def __init__(self, in_features: int, out_features: int, bias_init: float = 0.0, lr_mul: float = 1.0,
                 activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init) / lr_mul))
        self.w_gain = lr_mul / math.sqrt(in_features)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = SQRT2 if self.activation else 1.0  # lrelu(x) * c == lrelu(c x) for c > 0: the gain rides on w and b
        x = F.linear(x, self.weight * (self.w_gain * g), self.bias * (self.lr_mul * g))
        return F.leaky_relu(x, 0.2) if self.activation else x


class EqualConv2d(nn.Module):
    """Conv with equalised learning rate; `down` = blur then stride-2 conv (discriminator only)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int, bias: bool = True, activation: bool = True,
                 down: bool = False, gain: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        self.w_gain = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.activation, self.down, self.gain, self.kernel = activation, down, gain, kernel
        if down:
            self.register_buffer("blur_f", _binomial_filter(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # lrelu gain sqrt(2) and output gain are folded into weight and bias (lrelu(c x) == c lrelu(x), c > 0):
        # conv (bias fused) + one in-place lrelu instead of conv, lrelu, two multiplies
        g = self.gain * (SQRT2 if self.activation else 1.0)
        w = self.weight * (self.w_gain * g)
        b = None if self.bias is None else self.bias * g
        if self.down:
            if self.kernel == 1:  # blur-downsample then 1x1: [N,C,H,W] -> [N,C,H/2,W/2]
                x = F.conv2d(_blur(x, self.blur_f, pad=1, stride=2), w, b)
            else:  # blur to H+1, then k3 stride 2 valid -> H/2 (StyleGAN2 conv2d_resample)
                x = F.conv2d(_blur(x, self.blur_f, pad=2), w, b, stride=2)
        else:
            x = F.conv2d(x, w, b, padding=self.kernel // 2)
        return F.leaky_relu_(x, 0.2) if self.activation else x


class ModulatedConv2d(nn.Module):
    """Modulated convolution with optional demodulation (StyleGAN2 eq. 1-3) and optional 2x upsampling.

    forward(x [N, I, H, W], w [N, w_dim]) -> [N, O, H', W'] with H' = 2H when `up`.
    """

    def __init__(self, in_ch: int, out_ch: int, kernel: int, w_dim: int, demodulate: bool = True, up: bool = False):
        super().__init__()
        self.affine = EqualLinear(w_dim, in_ch, bias_init=1.0)  # style s, starts at 1
        self.weight = nn.Parameter(torch.randn(out_ch, in_ch, kernel, kernel))
        self.w_gain = 1.0 / math.sqrt(in_ch * kernel * kernel)
        self.demodulate, self.up, self.kernel = demodulate, up, kernel
        assert not up or kernel == 3, "upsampling conv is 3x3 (transposed conv + blur padding assumes it)"
        if up:
            self.register_buffer("blur_f", _binomial_filter(), persistent=False)

    def _conv(self, x: torch.Tensor, weight: torch.Tensor, groups: int = 1, bias: torch.Tensor | None = None
              ) -> torch.Tensor:
        if not self.up:
            return F.conv2d(x, weight, bias, padding=self.kernel // 2, groups=groups)
        # transposed conv (H -> 2H+1 for k=3) then blur with gain 4 (zero-insertion, folded into the weight) and
        # pad 1 -> 2H
        i = weight.shape[1]
        wt = (weight * 4.0).reshape(groups, -1, i, self.kernel, self.kernel).transpose(1, 2)
        wt = wt.reshape(groups * i, -1, self.kernel, self.kernel)
        x = F.conv_transpose2d(x, wt, stride=2, groups=groups)
        x = _blur(x, self.blur_f, pad=1)
        return x if bias is None else x + bias.to(x.dtype)[None, :, None, None]

    def modulated(self, x: torch.Tensor, w: torch.Tensor, bias: torch.Tensor | None = None
                  ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Un-fused path without the demodulation multiply, so callers can fuse it with what follows.

        x [N, I, H, W], w [N, w_dim] -> (conv(x * s) (+ bias) [N, O, H', W'], d [N, O] fp32 or None);
        forward() == y * d (bias only without demodulation).
        """
        s = self.affine(w)  # [N, I]
        weight = self.weight * self.w_gain  # [O, I, k, k]
        d = self._demod(s, weight) if self.demodulate else None
        assert bias is None or d is None, "bias is added after demodulation"
        return self._conv(x * s.to(x.dtype)[:, :, None, None], weight, bias=bias), d

    @staticmethod
    def _demod(s: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        """d [N, O] in fp32: 1 / sqrt(sum over I, k, k of (w * s)^2)."""
        with torch.autocast(device_type=s.device.type, enabled=False):
            return torch.rsqrt(s.float().square() @ weight.float().square().sum([2, 3]).t() + 1e-8)

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused: bool = False) -> torch.Tensor:
        if not fused:
            y, d = self.modulated(x, w)
            return y if d is None else y * d.to(y.dtype)[:, :, None, None]
        n, i, h, wd = x.shape
        s = self.affine(w)  # [N, I]
        weight = self.weight * self.w_gain  # [O, I, k, k]
        d = self._demod(s, weight) if self.demodulate else None
        wm = weight[None] * s[:, None, :, None, None].to(weight.dtype)  # [N, O, I, k, k]
        if d is not None:
            wm = wm * d[:, :, None, None, None].to(wm.dtype)
        o = wm.shape[1]
        x = self._conv(x.reshape(1, n * i, h, wd), wm.reshape(n * o, i, self.kernel, self.kernel), groups=n)
        return x.reshape(n, o, x.shape[2], x.shape[3])


class SynthesisLayer(nn.Module):
    """Modulated 3x3 conv + noise (per-channel strength) + bias + lrelu."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, resolution: int, up: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, out_ch, 3, w_dim, demodulate=True, up=up)
        self.noise_strength = nn.Parameter(torch.zeros(out_ch))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.bias = nn.Parameter(torch.zeros(out_ch))
        self.resolution, self.out_ch = resolution, out_ch

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random",
                noise_strength: torch.Tensor | None = None, fused: bool = False) -> torch.Tensor:
        if noise_mode not in ("random", "const", "none"):
            raise ValueError(f"noise_mode must be 'random', 'const' or 'none', not {noise_mode!r}")
        # lrelu(y d + noise * strength + bias) * sqrt2 == lrelu(y (sqrt2 d) + noise (sqrt2 strength) + sqrt2 bias):
        # the gains ride on the small [N, O] tensors, the full-size work is addcmul, addcmul_, lrelu_
        bias = (self.bias * SQRT2)[None, :, None, None]
        if fused:
            y = self.conv(x, w, fused=True)  # [N, O, R, R], demodulated
            x = torch.addcmul(bias.to(y.dtype), y, torch.full((), SQRT2, dtype=y.dtype, device=y.device))
        else:
            y, d = self.conv.modulated(x, w)  # [N, O, R, R] before demodulation, d [N, O]
            x = torch.addcmul(bias.to(y.dtype), y, (d * SQRT2).to(y.dtype)[:, :, None, None])
        if noise_mode != "none":
            strength = self.noise_strength[None] if noise_strength is None else noise_strength  # [1|N, O]
            if noise_mode == "random":
                noise = torch.randn(x.shape[0], 1, self.resolution, self.resolution, device=x.device, dtype=x.dtype)
            else:
                noise = self.noise_const[None, None].to(x.dtype)
            x = x.addcmul_(noise, (strength * SQRT2).to(x.dtype)[:, :, None, None])
        return F.leaky_relu_(x, 0.2)


class ToRGB(nn.Module):
    """Modulated 1x1 conv to RGB, no demodulation, no activation."""

    def __init__(self, in_ch: int, img_channels: int, w_dim: int):
        super().__init__()
        self.conv = ModulatedConv2d(in_ch, img_channels, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(img_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused: bool = False) -> torch.Tensor:
        if fused:
            return self.conv(x, w, fused=True) + self.bias[None, :, None, None].to(x.dtype)
        return self.conv.modulated(x, w, bias=self.bias)[0]  # bias fused into the 1x1 conv


class SynthesisBlock(nn.Module):
    """One resolution of the skip generator: [conv0 (2x up)], conv1, toRGB; img = up(img) + toRGB(x)."""

    def __init__(self, in_ch: int, out_ch: int, w_dim: int, resolution: int, img_channels: int):
        super().__init__()
        self.resolution = resolution
        if in_ch == 0:  # first block: learned constant instead of conv0
            self.const = nn.Parameter(torch.randn(out_ch, 4, 4))
            self.convs = nn.ModuleList([SynthesisLayer(out_ch, out_ch, w_dim, resolution)])
        else:
            self.convs = nn.ModuleList([SynthesisLayer(in_ch, out_ch, w_dim, resolution, up=True),
                                        SynthesisLayer(out_ch, out_ch, w_dim, resolution)])
        self.torgb = ToRGB(out_ch, img_channels, w_dim)
        self.num_conv = len(self.convs)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, ws: torch.Tensor, noise_mode: str,
                const: torch.Tensor | None, noise_strengths: list | None, fused: bool):
        # ws [N, num_conv + 1, w_dim]; x [N, C, R/2, R/2] or None; img [N, 3, R/2, R/2] or None
        if x is None:
            x = self.const[None].expand(ws.shape[0], -1, -1, -1) if const is None else const
        for j, layer in enumerate(self.convs):
            ns = None if noise_strengths is None else noise_strengths[j]
            x = layer(x, ws[:, j], noise_mode=noise_mode, noise_strength=ns, fused=fused)
        y = self.torgb(x, ws[:, self.num_conv], fused=fused)
        if img is not None:
            y = y + F.interpolate(img.to(y.dtype), scale_factor=2, mode="bilinear", align_corners=False)
        return x, y  # [N, C, R, R], [N, 3, R, R]


class SynthesisNetwork(nn.Module):
    """g: w+ [N, num_ws, w_dim] -> image [N, img_channels, R, R]."""

    def __init__(self, w_dim: int, img_resolution: int, img_channels: int, channel_base: int, channel_max: int):
        super().__init__()
        log2 = int(math.log2(img_resolution))
        assert img_resolution == 2 ** log2 and img_resolution >= 4
        self.resolutions = [2 ** i for i in range(2, log2 + 1)]
        self.channels = {r: min(channel_base // r, channel_max) for r in self.resolutions}
        self.blocks = nn.ModuleList()
        self.ws_index: dict[int, list[int]] = {}  # res -> w+ indices of its convs then its toRGB
        self.noise_channels: list[int] = []  # per conv layer, in w order: channels of its noise strength
        w_idx = 0
        for r in self.resolutions:
            in_ch = 0 if r == 4 else self.channels[r // 2]
            block = SynthesisBlock(in_ch, self.channels[r], w_dim, r, img_channels)
            self.blocks.append(block)
            self.ws_index[r] = list(range(w_idx, w_idx + block.num_conv + 1))
            self.noise_channels += [self.channels[r]] * block.num_conv
            w_idx += block.num_conv
        self.num_ws = w_idx + 1

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", const: torch.Tensor | None = None,
                noise_strengths: list | None = None, fused_modconv: bool = False) -> torch.Tensor:
        assert ws.ndim == 3 and ws.shape[1] == self.num_ws, f"ws must be [N, {self.num_ws}, w_dim], got {ws.shape}"
        x = img = None
        layer = 0
        for r, block in zip(self.resolutions, self.blocks):
            i0 = self.ws_index[r][0]
            ns = None if noise_strengths is None else noise_strengths[layer:layer + block.num_conv]
            x, img = block(x, img, ws[:, i0:i0 + block.num_conv + 1], noise_mode,
                           const if r == 4 else None, ns, fused_modconv)
            layer += block.num_conv
        return img


class MappingNetwork(nn.Module):
    """f: z [N, z_dim] -> w [N, w_dim]; normalises z, `num_layers` FC layers with lr multiplier `lr_mul`."""

    def __init__(self, z_dim: int, w_dim: int, num_layers: int, lr_mul: float):
        super().__init__()
        dims = [z_dim] + [w_dim] * num_layers
        self.layers = nn.Sequential(*[EqualLinear(a, b, lr_mul=lr_mul, activation=True)
                                      for a, b in zip(dims[:-1], dims[1:])])
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z * torch.rsqrt(z.float().square().mean(1, keepdim=True) + 1e-8).to(z.dtype)
        return self.layers(z)


class StyleGAN2Generator(ConfigModule):
    """StyleGAN2 generator G = g(f(z)) with separate `mapping` and `synthesis` (for w+ encoders).

    Shapes: z [N, z_dim] ~ N(0, I); ws (w+) [N, num_ws, w_dim]; image [N, img_channels, R, R] in ~[-1, 1].
    num_ws = 2 * log2(R) - 2 (12 at 128 px); see the module docstring for the index of each layer.
    """

    def __init__(self,
                 z_dim: int = 512,            # latent z size
                 w_dim: int = 512,            # intermediate latent w size (one per style layer in w+)
                 img_resolution: int = 128,   # output side in pixels, power of two
                 img_channels: int = 3,       # RGB
                 channel_base: int = 16384,   # channels at resolution r = min(channel_base // r, channel_max)
                 channel_max: int = 256,      # 4..64 px: 256 channels, 128 px: 128 (default)
                 mapping_layers: int = 8,     # FC layers in the mapping network
                 mapping_lr_mul: float = 0.01,  # learning-rate multiplier of the mapping network
                 w_avg_beta: float = 0.995):  # decay of the tracked w average (for truncation)
        super().__init__(z_dim=z_dim, w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                         channel_base=channel_base, channel_max=channel_max, mapping_layers=mapping_layers,
                         mapping_lr_mul=mapping_lr_mul, w_avg_beta=w_avg_beta)
        self.z_dim, self.w_dim, self.img_resolution = z_dim, w_dim, img_resolution
        self.w_avg_beta = w_avg_beta
        self.mapping_network = MappingNetwork(z_dim, w_dim, mapping_layers, mapping_lr_mul)
        self.synthesis_network = SynthesisNetwork(w_dim, img_resolution, img_channels, channel_base, channel_max)
        self.num_ws = self.synthesis_network.num_ws

    @property
    def w_avg(self) -> torch.Tensor:
        return self.mapping_network.w_avg  # [w_dim]

    def mapping(self, z: torch.Tensor, truncation_psi: float = 1.0, truncation_cutoff: int | None = None,
                update_w_avg: bool = False) -> torch.Tensor:
        """z [N, z_dim] -> ws [N, num_ws, w_dim] (the same w broadcast to every layer).

        Truncation: w = w_avg + psi (w - w_avg) on the first `truncation_cutoff` layers (all if None).
        `update_w_avg` (training only) moves the tracked average towards this batch's mean w.
        """
        w = self.mapping_network(z)  # [N, w_dim]
        if update_w_avg:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().float().mean(0).lerp(self.w_avg, self.w_avg_beta))
        ws = w[:, None].repeat(1, self.num_ws, 1)
        if truncation_psi != 1.0:
            avg = self.w_avg.to(ws.dtype)
            cut = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws[:, :cut] = avg.lerp(ws[:, :cut], truncation_psi)
        return ws

    def synthesis(self, ws: torch.Tensor, noise_mode: str = "const", const: torch.Tensor | None = None,
                  noise_strengths: list | None = None, fused_modconv: bool = False) -> torch.Tensor:
        """ws [N, num_ws, w_dim] -> image [N, 3, R, R] in ~[-1, 1].

        noise_mode: 'const' (fixed per-layer noise maps, deterministic), 'random' (fresh N(0,1)) or 'none'.
        const: optional [N, C4, 4, 4] replacing the learned constant (the seed's z_c).
        noise_strengths: optional list of num_ws - 1 tensors [N, C_l] (C_l = synthesis_network.noise_channels[l])
          replacing the learned per-channel noise strengths (the seed's z_n).
        fused_modconv: grouped-conv weight modulation (faster for N = 1, same result).
        """
        return self.synthesis_network(ws, noise_mode=noise_mode, const=const, noise_strengths=noise_strengths,
                                      fused_modconv=fused_modconv)

    def forward(self, z: torch.Tensor, truncation_psi: float = 1.0, noise_mode: str = "const") -> torch.Tensor:
        """z [N, z_dim] -> image [N, 3, R, R]."""
        return self.synthesis(self.mapping(z, truncation_psi), noise_mode=noise_mode)

    @staticmethod
    def mix_styles(ws: torch.Tensor, ws2: torch.Tensor, prob: float = 0.9) -> torch.Tensor:
        """Style-mixing regularisation: with probability `prob` per sample, layers >= a random cutoff
        in [1, num_ws) come from ws2. ws, ws2 [N, num_ws, w_dim] -> [N, num_ws, w_dim]."""
        n, num_ws = ws.shape[:2]
        cutoff = torch.randint(1, num_ws, (n, 1), device=ws.device)
        cutoff = torch.where(torch.rand(n, 1, device=ws.device) < prob, cutoff, torch.full_like(cutoff, num_ws))
        take2 = torch.arange(num_ws, device=ws.device)[None] >= cutoff  # [N, num_ws]
        return torch.where(take2[:, :, None], ws2, ws)


class DiscriminatorBlock(nn.Module):
    """Residual D block: conv3x3, conv3x3 stride-2 (blurred); skip = blur-down 1x1; sum * sqrt(1/2)."""

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.conv0 = EqualConv2d(in_ch, in_ch, 3)
        self.conv1 = EqualConv2d(in_ch, out_ch, 3, down=True, gain=math.sqrt(0.5))
        self.skip = EqualConv2d(in_ch, out_ch, 1, bias=False, activation=False, down=True, gain=math.sqrt(0.5))

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, I, R, R] -> [N, O, R/2, R/2]
        return self.skip(x) + self.conv1(self.conv0(x))


class StyleGAN2Discriminator(ConfigModule):
    """Residual StyleGAN2 discriminator: image [N, 3, R, R] -> logits [N] (training only, never shipped)."""

    def __init__(self,
                 img_resolution: int = 128,  # input side in pixels
                 img_channels: int = 3,
                 channel_base: int = 16384,  # channels at r = min(channel_base // r, channel_max)
                 channel_max: int = 256,
                 mbstd_group: int = 4,       # minibatch-stddev group size (batch must divide by it, else 1)
                 mbstd_channels: int = 1):   # feature groups for minibatch stddev
        super().__init__(img_resolution=img_resolution, img_channels=img_channels, channel_base=channel_base,
                         channel_max=channel_max, mbstd_group=mbstd_group, mbstd_channels=mbstd_channels)
        log2 = int(math.log2(img_resolution))
        ch = {2 ** i: min(channel_base // 2 ** i, channel_max) for i in range(2, log2 + 1)}
        self.from_rgb = EqualConv2d(img_channels, ch[img_resolution], 1)
        self.blocks = nn.Sequential(*[DiscriminatorBlock(ch[2 ** i], ch[2 ** (i - 1)]) for i in range(log2, 2, -1)])
        self.mbstd_group, self.mbstd_channels = mbstd_group, mbstd_channels
        self.conv = EqualConv2d(ch[4] + mbstd_channels, ch[4], 3)
        self.fc = EqualLinear(ch[4] * 16, ch[4], activation=True)
        self.out = EqualLinear(ch[4], 1)

    def _mbstd(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = self.mbstd_group if n % self.mbstd_group == 0 else 1
        f = self.mbstd_channels
        y = x.float().reshape(g, -1, f, c // f, h, w)  # groups of g samples, strided over the batch
        y = (y - y.mean(0)).square().mean(0).add(1e-8).sqrt()  # [n/g, F, c/F, H, W]
        y = y.mean([2, 3, 4]).reshape(-1, f, 1, 1).repeat(g, 1, h, w)  # [N, F, H, W]
        return torch.cat([x, y.to(x.dtype)], 1)

    def forward(self, img: torch.Tensor) -> torch.Tensor:
        x = self.blocks(self.from_rgb(img))  # [N, C4, 4, 4]
        x = self.conv(self._mbstd(x))
        return self.out(self.fc(x.flatten(1)))[:, 0]  # [N]


def sample_z(seeds: list[int], z_dim: int = 512) -> torch.Tensor:
    """Device-independent z for integer seeds: [len(seeds), z_dim] (numpy RandomState, as StyleGAN2-ADA)."""
    return torch.from_numpy(np.stack([np.random.RandomState(s).randn(z_dim) for s in seeds])).float()
