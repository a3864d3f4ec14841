"""Face de-occlusion inpainter (Yin 2022, ch. 5: segmentation-guided face inpainting).

The thesis fills the occluded part M_o of an aligned face with an encoder-decoder of gated
convolutions (Yu et al. 2019, "Free-Form Image Inpainting with Gated Convolution") with a
self-attention block at the bottleneck, given the image with M_o replaced by noise, the mask,
and a face prior (a rendered 3D face there). Here:

 - `Inpainter`: gated-conv U-Net at 256 px (256 -> 32 px, four dilated gated convs and one
   SAGAN self-attention block at 32 x 32, decoder with additive skip connections). Input
   channels: noisy masked image (3), mask (1), prior (3, optional: `use_prior=False` is the
   thesis's ablation without the face prior). Output: the full image; `inpaint` composites it,
   so pixels outside the mask are returned unchanged, bit for bit.
 - `face_prior`: the face's own mirror image about its vertical symmetry axis (a line through
   the nose bridge and chin from the 68 landmarks), taken where the mirrored pixel is visible,
   and a push-pull fill (masked mip-map average) where both sides are occluded. It plays the
   rendered 3D face's role: a pixel-aligned guess of what is beneath, made from this face.

Images are float [N, 3, H, W] in [0, 1]; masks float [N, 1, H, W], 1 = occluded (to fill).
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .common import ConfigModule

# dlib 68-point indices on the face's vertical symmetry axis: nose bridge 27..30, chin 8
AXIS_POINTS = (27, 28, 29, 30, 8)


# ------------------------------------------------------------------------------------------- the prior

def fill_holes(image: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Push-pull fill: invalid pixels take the mask-weighted average of ever coarser mip levels.

    image [N, C, H, W], valid [N, 1, H, W] in {0, 1} -> image with the invalid pixels filled smoothly."""
    levels = [(image * valid, valid)]
    while min(levels[-1][0].shape[-2:]) > 1:
        s, w = levels[-1]
        levels.append((F.avg_pool2d(s, 2, ceil_mode=True), F.avg_pool2d(w, 2, ceil_mode=True)))
    s, w = levels[-1]
    filled = s / w.clamp(min=1e-6)
    for s, w in reversed(levels[:-1]):
        up = F.interpolate(filled, size=s.shape[-2:], mode="bilinear", align_corners=False)
        mean = s / w.clamp(min=1e-6)
        filled = torch.where(w > 0.999, mean, up * (1 - w) + s)  # blend partially covered pixels
    return torch.where(valid > 0.5, image, filled)


def symmetry_axis(landmarks: torch.Tensor) -> torch.Tensor:
    """68 landmarks [N, 68, 2] (pixels) -> [N, 3] line a*x + b*y + c = 0 (unit normal) of the face's midline."""
    pts = landmarks[:, list(AXIS_POINTS)].float()
    mean = pts.mean(1, keepdim=True)
    d = pts - mean
    # principal direction of the midline points; the normal is perpendicular to it
    cov = d.transpose(1, 2) @ d
    _, vecs = torch.linalg.eigh(cov)
    direction = vecs[..., -1]                                    # [N, 2]
    normal = torch.stack([direction[:, 1], -direction[:, 0]], 1)
    c = -(normal * mean[:, 0]).sum(1)
    return torch.cat([normal, c[:, None]], 1)


def mirror(image: torch.Tensor, axis: torch.Tensor | None) -> torch.Tensor:
    """Reflect image [N, C, H, W] about the line axis [N, 3] (pixel coordinates); None = the centre column."""
    n, _, h, w = image.shape
    if axis is None:
        return image.flip(-1)
    ys, xs = torch.meshgrid(torch.arange(h, device=image.device, dtype=torch.float32) + 0.5,
                            torch.arange(w, device=image.device, dtype=torch.float32) + 0.5, indexing="ij")
    a, b, c = (axis[:, i, None, None].float() for i in range(3))
    dist = a * xs + b * ys + c                                     # signed distance (unit normal)
    mx, my = xs - 2 * dist * a, ys - 2 * dist * b
    grid = torch.stack([mx / w * 2 - 1, my / h * 2 - 1], -1)
    return F.grid_sample(image, grid.to(image.dtype), mode="bilinear", padding_mode="border", align_corners=False)


def face_prior(image: torch.Tensor, mask: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
    """Mirrored face where the mirror is visible, push-pull fill where both sides are occluded.

    image [N, 3, H, W], mask [N, 1, H, W] (1 = occluded), landmarks [N, 68, 2] or None -> prior [N, 3, H, W]
    (equal to image outside the mask)."""
    axis = None if landmarks is None else symmetry_axis(landmarks)
    visible = (mask < 0.5).to(image.dtype)
    mirrored = mirror(torch.cat([image * visible, visible], 1), axis)
    m_img, m_vis = mirrored[:, :3], (mirrored[:, 3:] > 0.99).to(image.dtype)
    guess = torch.where(m_vis > 0.5, m_img, image)
    known = torch.maximum(visible, m_vis)
    return torch.where(visible > 0.5, image, fill_holes(guess, known))


# ----------------------------------------------------------------------------------------- the network

class GatedConv(nn.Module):
    """conv -> (features, gate); out = ELU(features) * sigmoid(gate) (Yu et al. 2019, Eq. 1)."""

    def __init__(self, cin: int, cout: int, k: int = 3, stride: int = 1, dilation: int = 1, act: bool = True):
        super().__init__()
        self.conv = nn.Conv2d(cin, 2 * cout, k, stride, padding=dilation * (k - 1) // 2, dilation=dilation)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f, g = self.conv(x).chunk(2, 1)
        return (F.elu(f) if self.act else f) * torch.sigmoid(g)


class SelfAttention(nn.Module):
    """SAGAN self-attention (Zhang et al. 2019): x + gamma * softmax(QK^T) V, gamma starts at 0."""

    def __init__(self, ch: int):
        super().__init__()
        self.q = nn.Conv2d(ch, ch // 8, 1)
        self.k = nn.Conv2d(ch, ch // 8, 1)
        self.v = nn.Conv2d(ch, ch, 1)
        self.gamma = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q = self.q(x).flatten(2).transpose(1, 2)                      # [N, HW, C/8]
        k = self.k(x).flatten(2).transpose(1, 2)
        v = self.v(x).flatten(2).transpose(1, 2)                      # [N, HW, C]
        out = F.scaled_dot_product_attention(q[:, None], k[:, None], v[:, None])[:, 0]
        return x + self.gamma * out.transpose(1, 2).reshape(n, c, h, w)


class Inpainter(ConfigModule):
    """Gated-conv U-Net: (image with noise in the hole, mask, prior) -> image [N, 3, H, W] in [0, 1]."""

    def __init__(self, widths: tuple[int, ...] = (32, 64, 128, 192), dilations: tuple[int, ...] = (2, 4, 8, 2),
                 use_prior: bool = True, image_size: int = 256):
        super().__init__(widths=list(widths), dilations=list(dilations), use_prior=use_prior, image_size=image_size)
        w = list(widths)
        cin = 3 + 1 + (3 if use_prior else 0)
        self.use_prior = use_prior
        self.stem = GatedConv(cin, w[0], k=5)
        self.down = nn.ModuleList()
        for a, b in zip(w[:-1], w[1:]):
            self.down.append(nn.Sequential(GatedConv(a, b, stride=2), GatedConv(b, b)))
        self.middle = nn.Sequential(*[GatedConv(w[-1], w[-1], dilation=d) for d in dilations])
        self.attention = SelfAttention(w[-1])
        self.post = GatedConv(w[-1], w[-1])
        self.up = nn.ModuleList()
        for a, b in zip(reversed(w[1:]), reversed(w[:-1])):
            self.up.append(nn.ModuleDict({"reduce": GatedConv(a, b), "fuse": GatedConv(b, b)}))
        self.head = nn.Conv2d(w[0], 3, 3, padding=1)

    def forward(self, image: torch.Tensor, mask: torch.Tensor, prior: torch.Tensor | None = None,
                noise: torch.Tensor | None = None) -> torch.Tensor:
        """Raw output (every pixel predicted). image/prior [N, 3, H, W] in [0, 1], mask [N, 1, H, W] (1 = fill)."""
        if noise is None:  # deterministic noise for inference: same input, same output
            gen = torch.Generator().manual_seed(0)
            noise = torch.rand(image.shape, generator=gen).to(image.device, image.dtype)
        x = image * (1 - mask) + noise * mask
        parts = [x * 2 - 1, mask * 2 - 1]
        if self.use_prior:
            parts.append(prior * 2 - 1)
        h = self.stem(torch.cat(parts, 1))
        skips = [h]
        for block in self.down:
            h = block(h)
            skips.append(h)
        h = self.post(self.attention(self.middle(h)))
        for block, skip in zip(self.up, reversed(skips[:-1])):
            h = F.interpolate(block["reduce"](h), size=skip.shape[-2:], mode="nearest")  # reduce at low res: cheap
            h = block["fuse"](h + skip)
        return (torch.tanh(self.head(h)) + 1) / 2

    @torch.no_grad()
    def inpaint(self, image: torch.Tensor, mask: torch.Tensor, landmarks: torch.Tensor | None = None) -> torch.Tensor:
        """Fill the masked pixels; pixels with mask 0 come back unchanged. Builds the prior itself."""
        prior = face_prior(image, mask, landmarks) if self.use_prior else None
        out = self(image, mask, prior)
        return image * (1 - mask) + out * mask


# ----------------------------------------------------------------------------------- training-only parts

class PatchDiscriminator(nn.Module):
    """Spectral-norm PatchGAN on (image, mask) with hinge loss (SN-PatchGAN, Yu et al. 2019). Training only."""

    def __init__(self, width: int = 64, layers: int = 5):
        super().__init__()
        sn = nn.utils.spectral_norm
        chans = [4] + [min(width * 2 ** i, 256) for i in range(layers)]
        self.blocks = nn.ModuleList(
            nn.Sequential(sn(nn.Conv2d(a, b, 5, 2, 2)), nn.LeakyReLU(0.2)) for a, b in zip(chans[:-1], chans[1:]))
        self.out = sn(nn.Conv2d(chans[-1], 1, 3, 1, 1))

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        h = torch.cat([image * 2 - 1, mask], 1)
        feats = []
        for b in self.blocks:
            h = b(h)
            feats.append(h)
        return self.out(h), feats
