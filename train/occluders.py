"""Synthetic occluders for face-parser training, batched in pure torch (GPU or CPU).

CelebAMask-HQ has no occluder class (it even labels hands and microphones as
skin), so occlusion is synthesised on clean aligned 256 px crops and every
pasted pixel is labelled `occluder` (core.labels.OCCLUDER = 19):
 (a) `paste_regions`: eyeglasses / hat / hair / cloth regions cut with their
     labels from other training images (hair and cloth as random chunks),
     placed at a random face pixel with random scale and rotation;
 (b) `paste_masks`: the lower face (jaw points 2..14 + nose point 29 of the
     68 dlib landmarks) of an aligned photo of someone wearing a face mask,
     pasted at the same canonical location with a small jitter;
 (c) `random_shapes`: ellipses, rectangles, star polygons and hand-like blobs
     (palm ellipse + 4-5 finger capsules) filled with patches of other images,
     solid colours, noise or skin-like colours, so colour alone cannot tell
     an occluder from skin.
`apply_occluders` mixes them. Images are float [B, 3, H, W] in [0, 1], labels
int64 [B, H, W]. All random numbers come from `rand`/`randn` below: with a
CPU `torch.Generator` the result is the same on any device (deterministic
evaluation); with `None` the device's own RNG is used (fast training).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from core.labels import ID, OCCLUDER, VISIBLE_FACE

REGION_CLASSES = (ID["eyeglasses"], ID["hat"], ID["hair"], ID["cloth"])
REGION_PROBS = (0.3, 0.2, 0.3, 0.2)
MASK_POLYGON = tuple(range(2, 15)) + (29,)  # dlib jaw 2..14, then the nose bridge


def rand(shape, g: torch.Generator | None, device) -> torch.Tensor:
    if g is None:
        return torch.rand(shape, device=device)
    return torch.rand(shape, generator=g).to(device)


def randn(shape, g: torch.Generator | None, device) -> torch.Tensor:
    if g is None:
        return torch.randn(shape, device=device)
    return torch.randn(shape, generator=g).to(device)


def uniform(shape, lo: float, hi: float, g, device) -> torch.Tensor:
    return lo + (hi - lo) * rand(shape, g, device)


def pixel_grid(h: int, w: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates x [1, H, W], y [1, H, W]."""
    ys, xs = torch.meshgrid(torch.arange(h, device=device, dtype=torch.float32),
                            torch.arange(w, device=device, dtype=torch.float32), indexing="ij")
    return xs[None], ys[None]


def sample_pixels(mask: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """One pixel per sample, uniform over `mask` [B, H, W] (centre if empty) -> [B, 2] (x, y)."""
    b, h, w = mask.shape
    cum = mask.reshape(b, -1).float().cumsum(1)                     # [B, HW]
    total = cum[:, -1:]
    idx = torch.searchsorted(cum, (u[:, None] * total).contiguous()).clamp_(max=h * w - 1)[:, 0]
    xy = torch.stack([(idx % w).float(), (idx // w).float()], 1)
    centre = torch.tensor([w / 2, h / 2], device=mask.device)
    return torch.where(total > 0, xy, centre)


def point_in_polygon(verts: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Even-odd rule fill of polygons verts [B, K, 2] (pixel x, y) -> bool [B, H, W]."""
    xs, ys = pixel_grid(h, w, verts.device)
    inside = torch.zeros(verts.shape[0], h, w, dtype=torch.bool, device=verts.device)
    k = verts.shape[1]
    for i in range(k):
        xi, yi = verts[:, i, 0, None, None], verts[:, i, 1, None, None]
        xj, yj = verts[:, i - 1, 0, None, None], verts[:, i - 1, 1, None, None]
        crosses = (yi > ys) != (yj > ys)
        x_at = (xj - xi) * (ys - yi) / (yj - yi + 1e-6) + xi
        inside ^= crosses & (xs < x_at)
    return inside


def lower_face_masks(landmarks: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask region of face-mask photos from 68 landmarks [N, 68, 2] -> (bool [N, S, S], valid [N]).

    Invalid: no landmarks (all zero) or a polygon too small / too large to be a mask.
    """
    polys = landmarks[:, list(MASK_POLYGON)].float()
    masks = torch.cat([point_in_polygon(polys[i:i + 64], size, size) for i in range(0, len(polys), 64)])
    area = masks.flatten(1).float().mean(1)
    valid = (landmarks.abs().flatten(1).sum(1) > 0) & (area > 0.02) & (area < 0.4)
    return masks, valid


def soft_alpha(mask: torch.Tensor) -> torch.Tensor:
    """bool [B, H, W] -> anti-aliased alpha [B, 1, H, W] (3x3 box), so pasted edges are not razor sharp."""
    return F.avg_pool2d(mask[:, None].float(), 3, 1, 1)


def composite(img, lab, src, mask, use):
    """Paste src where mask (bool [B, H, W]) for samples with use (bool [B]); label OCCLUDER."""
    mask = mask & use[:, None, None]
    a = soft_alpha(mask)
    img = img * (1 - a) + src * a
    lab = torch.where(mask, torch.full_like(lab, OCCLUDER), lab)
    return img, lab


def affine_sample(src: torch.Tensor, anchor_src, anchor_dst, scale, angle, mode="bilinear") -> torch.Tensor:
    """Warp src [B, C, H, W] so its point anchor_src [B, 2] lands on anchor_dst [B, 2], scaled and rotated."""
    b, _, h, w = src.shape
    xs, ys = pixel_grid(h, w, src.device)
    dx, dy = xs - anchor_dst[:, 0, None, None], ys - anchor_dst[:, 1, None, None]
    c, s = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    inv = (1 / scale)[:, None, None]
    qx = (c * dx + s * dy) * inv + anchor_src[:, 0, None, None]      # inverse rotation, inverse scale
    qy = (-s * dx + c * dy) * inv + anchor_src[:, 1, None, None]
    grid = torch.stack([(qx + 0.5) / w * 2 - 1, (qy + 0.5) / h * 2 - 1], -1)
    return F.grid_sample(src, grid, mode=mode, padding_mode="zeros", align_corners=False)


@dataclass
class OccluderBank:
    """Donor material on the training device.

    images uint8 [N, 3, S, S] / labels uint8 [N, S, S]: CelebAMask-HQ training images (region donors);
    pools[c]: indices of images with a usable region of class c;
    masked uint8 [M, 3, S, S] + masked_masks bool [M, S, S]: face-mask photos and their lower-face polygon.
    """
    images: torch.Tensor
    labels: torch.Tensor
    pools: dict[int, torch.Tensor]
    masked: torch.Tensor | None = None
    masked_masks: torch.Tensor | None = None

    @classmethod
    def build(cls, images, labels, masked=None, masked_landmarks=None, min_pixels: int = 400) -> "OccluderBank":
        pools = {}
        for c in REGION_CLASSES:
            counts = torch.cat([(labels[i:i + 256] == c).flatten(1).sum(1) for i in range(0, len(labels), 256)])
            pools[c] = torch.nonzero(counts >= min_pixels)[:, 0]
        mm = None
        if masked is not None and masked_landmarks is not None and len(masked):
            mm, valid = lower_face_masks(masked_landmarks.to(masked.device), masked.shape[-1])
            masked, mm = masked[valid], mm[valid]
            if not len(masked):
                masked, mm = None, None
        else:
            masked = None
        return cls(images, labels, pools, masked, mm)


def paste_regions(img, lab, bank: OccluderBank, use, g=None):
    """(a) labelled regions of other images (glasses, hat, hair chunk, cloth chunk) over the face."""
    b, _, h, w = img.shape
    dev = img.device
    u = rand((b, 8), g, dev)
    cum = torch.tensor(REGION_PROBS, device=dev).cumsum(0)
    cls_idx = torch.searchsorted(cum, u[:, 0].contiguous() * cum[-1]).clamp(max=len(REGION_CLASSES) - 1)
    donors = torch.zeros(b, dtype=torch.long, device=dev)
    classes = torch.tensor(REGION_CLASSES, device=dev)[cls_idx]
    for k, c in enumerate(REGION_CLASSES):
        pool = bank.pools[c].to(dev)
        if len(pool) == 0:  # no donor of this class: fall back to hair (always plentiful)
            classes = torch.where(cls_idx == k, torch.full_like(classes, ID["hair"]), classes)
            pool = bank.pools[ID["hair"]].to(dev)
        if len(pool) == 0:
            return img, lab
        pick = pool[(u[:, 1] * len(pool)).long().clamp(max=len(pool) - 1)]
        donors = torch.where(classes == c, pick, donors)
    d_img = bank.images[donors].float() / 255                      # [B, 3, H, W]
    region = bank.labels[donors].long() == classes[:, None, None]  # [B, H, W]
    # hair and cloth: a random elliptical chunk of the region, anchored at one of its pixels
    chunky = (classes == ID["hair"]) | (classes == ID["cloth"])
    a_pix = sample_pixels(region, u[:, 2])
    ys, xs = torch.meshgrid(torch.arange(h, device=dev), torch.arange(w, device=dev), indexing="ij")
    rx, ry = 18 + 40 * u[:, 3], 18 + 40 * u[:, 4]
    ell = ((xs[None] - a_pix[:, 0, None, None]) / rx[:, None, None]) ** 2 + \
          ((ys[None] - a_pix[:, 1, None, None]) / ry[:, None, None]) ** 2 <= 1
    region = region & (ell | ~chunky[:, None, None])
    cnt = region.flatten(1).sum(1).clamp(min=1)
    centroid = torch.stack([(region * xs).flatten(1).sum(1) / cnt, (region * ys).flatten(1).sum(1) / cnt], 1)
    anchor_src = torch.where(chunky[:, None], a_pix, centroid)
    face = torch.isin(lab, torch.tensor(VISIBLE_FACE, device=dev))
    anchor_dst = sample_pixels(face, u[:, 5])
    scale = 0.6 + 0.6 * u[:, 6]
    angle = (u[:, 7] - 0.5) * math.radians(60)
    src = affine_sample(torch.cat([d_img, region[:, None].float()], 1), anchor_src, anchor_dst, scale, angle)
    return composite(img, lab, src[:, :3], src[:, 3] > 0.5, use & (region.flatten(1).any(1)))


def paste_masks(img, lab, bank: OccluderBank, use, g=None):
    """(b) lower-face polygon of a face-mask photo at the same canonical place, small jitter."""
    if bank.masked is None:
        return img, lab
    b, _, h, w = img.shape
    dev = img.device
    u = rand((b, 6), g, dev)
    m = len(bank.masked)
    idx = (u[:, 0] * m).long().clamp(max=m - 1).to(bank.masked.device)
    src = torch.cat([bank.masked[idx].float() / 255, bank.masked_masks[idx, None].float()], 1).to(dev)
    centre = torch.tensor([w / 2, h / 2], device=dev).expand(b, 2)
    shift = (u[:, 1:3] - 0.5) * 12
    scale = 0.95 + 0.1 * u[:, 3]
    angle = (u[:, 4] - 0.5) * math.radians(10)
    src = affine_sample(src, centre, centre + shift, scale, angle)
    gain = (0.8 + 0.4 * u[:, 5])[:, None, None, None]               # lighting mismatch between photos
    return composite(img, lab, (src[:, :3] * gain).clamp(0, 1), src[:, 3] > 0.5, use)


def shape_masks(centre, r, g, b: int, h: int, w: int, dev) -> torch.Tensor:
    """Ellipse / rectangle / star polygon / hand per sample -> bool [B, H, W]."""
    u = rand((b, 8), g, dev)
    kind = (u[:, 0] * 4).long().clamp(max=3)
    angle = u[:, 1] * 2 * math.pi
    xs, ys = pixel_grid(h, w, dev)
    c, s = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    dx, dy = xs - centre[:, 0, None, None], ys - centre[:, 1, None, None]
    lx, ly = c * dx + s * dy, -s * dx + c * dy                        # shape-local coordinates
    rr = r[:, None, None]
    aspect = (0.4 + 0.6 * u[:, 2])[:, None, None]
    ellipse = (lx / rr) ** 2 + (ly / (rr * aspect)) ** 2 <= 1
    rect = (lx.abs() <= rr) & (ly.abs() <= rr * aspect)
    # star polygon: K in 3..8 vertices at sorted random angles, radius 0.4..1 r
    k = 8
    nv = (3 + u[:, 3] * 6).long().clamp(max=8)
    ang = torch.sort(rand((b, k), g, dev) * 2 * math.pi, 1).values
    rad = r[:, None] * (0.4 + 0.6 * rand((b, k), g, dev))
    verts = torch.stack([centre[:, 0, None] + rad * torch.cos(ang), centre[:, 1, None] + rad * torch.sin(ang)], -1)
    keep = torch.arange(k, device=dev)[None] < nv[:, None]            # repeat the last kept vertex
    last = verts[torch.arange(b, device=dev), nv - 1]
    verts = torch.where(keep[..., None], verts, last[:, None])
    poly = point_in_polygon(verts, h, w)
    # hand: palm ellipse + 4 or 5 finger capsules fanning out from the palm's top edge
    palm = (lx / (0.5 * rr)) ** 2 + (ly / (0.6 * rr)) ** 2 <= 1
    hand = palm.clone()
    nf = torch.where(u[:, 4] < 0.5, 4, 5)
    fu = rand((b, 5, 3), g, dev)
    for i in range(5):
        spread = (i - 1.5) * 0.35 + (fu[:, i, 0] - 0.5) * 0.2
        if i == 4:
            spread = torch.full_like(spread, -1.4) + (fu[:, i, 0] - 0.5) * 0.3   # thumb, from the side
        dir_x, dir_y = torch.sin(spread), -torch.cos(spread)
        bx, by = 0.45 * r * dir_x, 0.5 * r * dir_y                  # base on the palm rim
        length = r * (0.6 + 0.4 * fu[:, i, 1])
        width = r * (0.09 + 0.05 * fu[:, i, 2])
        px, py = lx - bx[:, None, None], ly - by[:, None, None]
        t = (px * dir_x[:, None, None] + py * dir_y[:, None, None]).clamp(min=0)
        t = torch.minimum(t, length[:, None, None])
        d2 = (px - t * dir_x[:, None, None]) ** 2 + (py - t * dir_y[:, None, None]) ** 2
        finger = d2 <= width[:, None, None] ** 2
        hand |= finger & (nf > i)[:, None, None]
    out = torch.stack([ellipse, rect, poly, hand], 1)               # [B, 4, H, W]
    return out[torch.arange(b, device=dev), kind]


def textures(img, lab, g=None) -> torch.Tensor:
    """Fill per sample: another image's patch, solid colour, noise or skin-like colour (+ shading) [B, 3, H, W]."""
    b, _, h, w = img.shape
    dev = img.device
    u = rand((b, 6), g, dev)
    kind = (u[:, 0] * 4).long().clamp(max=3)
    other = torch.roll(img, shifts=1, dims=0)
    patch = torch.roll(other, shifts=(int(h * 0.37), int(w * 0.29)), dims=(2, 3))
    patch = torch.where(u[:, 1, None, None, None] < 0.5, patch, patch.flip(-1))
    solid = rand((b, 3, 1, 1), g, dev).expand(b, 3, h, w)
    low = F.interpolate(rand((b, 3, 8, 8), g, dev), size=(h, w), mode="bilinear", align_corners=False)
    noise = (low + 0.25 * F.interpolate(randn((b, 3, h // 4, w // 4), g, dev), size=(h, w), mode="nearest"))
    skin = lab == ID["skin"]
    cnt = skin.flatten(1).sum(1).clamp(min=1)[:, None]
    skin_rgb = (img * skin[:, None]).flatten(2).sum(2) / cnt        # [B, 3] mean skin colour of each image
    skin_rgb = torch.roll(skin_rgb, shifts=2, dims=0) * (0.85 + 0.3 * u[:, 2:3])
    skin_fill = skin_rgb[:, :, None, None].expand(b, 3, h, w)
    fills = torch.stack([patch, solid, noise, skin_fill], 1)[torch.arange(b, device=dev), kind]
    xs, ys = pixel_grid(h, w, dev)
    ang = u[:, 3] * 2 * math.pi
    ramp = (torch.cos(ang)[:, None, None] * xs + torch.sin(ang)[:, None, None] * ys) / max(h, w)
    shading = 1 + (u[:, 4, None, None] - 0.5) * 0.8 * (ramp - ramp.mean((1, 2), keepdim=True))
    return (fills * shading[:, None]).clamp(0, 1)


def random_shapes(img, lab, use, g=None):
    """(c) random textured shapes centred on a face pixel, radius 15..65 px at 256."""
    b, _, h, w = img.shape
    dev = img.device
    u = rand((b, 2), g, dev)
    face = torch.isin(lab, torch.tensor(VISIBLE_FACE, device=dev))
    centre = sample_pixels(face, u[:, 0])
    r = (15 + 50 * u[:, 1]) * (h / 256)
    mask = shape_masks(centre, r, g, b, h, w, dev)
    return composite(img, lab, textures(img, lab, g), mask, use)


def apply_occluders(img: torch.Tensor, lab: torch.Tensor, bank: OccluderBank, p: float = 0.6,
                    g: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Occlude a fraction p of the batch with one (70%) or two (30%) occluders of types (a)/(b)/(c).

    img float [B, 3, H, W] in [0, 1], lab int64 [B, H, W] -> same, pasted pixels labelled OCCLUDER.
    """
    b = img.shape[0]
    dev = img.device
    u = rand((b, 4), g, dev)
    probs = torch.tensor([0.35, 0.25 if bank.masked is not None else 0.0, 0.4], device=dev)
    cum = probs.cumsum(0) / probs.sum()
    first = torch.searchsorted(cum, u[:, 1].contiguous()).clamp(max=2)
    second = torch.searchsorted(cum, u[:, 2].contiguous()).clamp(max=2)
    on = u[:, 0] < p
    two = on & (u[:, 3] < 0.3)
    want = [on & (first == t) | two & (second == t) for t in range(3)]
    # masks first (they sit under hands/hair), then regions, then shapes on top
    img, lab = paste_masks(img, lab, bank, want[1], g)
    img, lab = paste_regions(img, lab, bank, want[0], g)
    img, lab = random_shapes(img, lab, want[2], g)
    return img, lab
