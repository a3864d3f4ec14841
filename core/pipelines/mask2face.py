"""Mask-to-face (issue 4): a semantic mask -> a 256 px portrait; mask edits and part transfer on real photos.

Model: `core/models/mask2face.py` (SEAN-style Mask2Face, seed 001; 19 classes, the parser's `occluder` = 19
is drawn as background). Masks use the label scheme and colour palette of `core/labels.py`.

- `generate(labels, ...)`: a face for any mask. Styles (one vector per class) come from a style photo
  (`encode_styles` under that photo's own parsed mask) or, without one, from the model's fitted style
  prior drawn with `seed`. `components` copies the style rows of chosen parts (COMPONENTS) from photo B.
- `edit_photo(photo, new_labels, ...)`: detect -> align (256) -> parse -> regenerate the crop with the
  photo's own styles under the edited mask -> paste back into the photo (core.face.paste_back). By
  default only the changed regions (dilated and feathered) are pasted: everything else, including the
  background, stays the photo's own pixels.

Determinism: every random draw (seed styles, then the per-pixel noise maps) comes from one CPU
`torch.Generator` seeded with `seed`, so a seed gives the same face on any device; with a style photo the
seed only moves the noise (stochastic detail such as hair strands).
Sizes: the model works at its `image_size` (256). A mask of another size is resized (nearest) to it and
the face is resized back to the mask's size. Mask editing on photos happens in the aligned-crop frame of
`mask_from_photo` (256 px, as the parser sees it).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch

from .. import face as F
from ..errors import FaceLabError, InvalidImage
from ..imageio import MAX_MASK_PIXELS, check_pixels, load_image
from ..labels import CLASSES, ID, NUM_CLASSES, OCCLUDER, PALETTE
from .parse import PARSE_SIZE, parse_photo

# Parts that component transfer copies from photo B, as the label classes whose style rows move. The five
# local components of seed 001 (eyes, mouth, skin, hair, + nose here) and the rest. Brows go with the eyes
# (the thesis's eye crops hold them); ears and neck with the skin, so the skin tone stays one colour.
COMPONENTS: dict[str, tuple[int, ...]] = {
    "eyes": tuple(ID[n] for n in ("left_eye", "right_eye", "left_brow", "right_brow")),
    "nose": (ID["nose"],),
    "mouth": tuple(ID[n] for n in ("mouth", "upper_lip", "lower_lip")),
    "skin": tuple(ID[n] for n in ("skin", "left_ear", "right_ear", "neck")),
    "hair": (ID["hair"],),
    "accessories": tuple(ID[n] for n in ("eyeglasses", "hat", "earring", "necklace")),
    "clothes": (ID["cloth"],),
    "background": (ID["background"],),
}
REGIONS = ("changed", "face")     # what edit_photo pastes back: the edited parts only, or the whole new face
MIN_PIXELS = 16                   # a class of photo B smaller than this (one style-encoder pixel) is not copied
ANCHOR_TOL = 12.0                 # RGB distance within which a pixel *is* a palette colour (pairs are >= 37 apart)
NEIGHBOURHOOD = 3                 # px: an off-palette pixel takes a class found within this radius
MIN_PALETTE_SHARE = 0.5           # read_mask: a colour image with fewer palette-coloured pixels is not a mask


# --------------------------------------------------------------------------- results

@dataclass
class PhotoMask:
    """A photo's face in the model's frame (mask_from_photo)."""
    image: np.ndarray         # [H, W, 3] uint8 the photo
    crop: np.ndarray          # [256, 256, 3] uint8 aligned crop
    labels: np.ndarray        # [256, 256] uint8 parsed labels of the crop (0..19)
    face: F.Face
    matrix: np.ndarray        # [2, 3] photo -> crop


@dataclass
class FaceResult:
    image: np.ndarray         # [H, W, 3] uint8 at the mask's size
    labels: np.ndarray        # [H, W] uint8 the mask as used
    seed: int
    styles_from: str          # "seed" or "photo"
    transferred: tuple[str, ...] = ()  # classes whose styles were copied from photo B


@dataclass
class EditResult:
    pasted: np.ndarray        # [H, W, 3] uint8 the photo with the regenerated parts pasted in
    generated: np.ndarray     # [256, 256, 3] uint8 the whole regenerated crop
    crop: np.ndarray          # [256, 256, 3] uint8 aligned input crop
    labels: np.ndarray        # [256, 256] uint8 the photo's parsed labels
    new_labels: np.ndarray    # [256, 256] uint8 the mask it was regenerated under
    paste_mask: np.ndarray    # [256, 256] float32 in [0, 1]: where `generated` replaced the photo
    face: F.Face
    matrix: np.ndarray        # [2, 3] photo -> crop
    transferred: tuple[str, ...] = field(default=())


# --------------------------------------------------------------------------- model

def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_model():
    """The bundled Mask2Face in eval mode, built once per process and shared (load_model caches it)."""
    from ..loading import load_model

    return load_model("mask2face", device=device())


# --------------------------------------------------------------------------- masks (pure numpy)

def labels_from_color(rgb: np.ndarray) -> np.ndarray:
    """Colour mask in the app palette [H, W, 3] (or RGBA, composited on black) -> labels [H, W] uint8.

    Every pixel gets the class of the nearest palette colour, so the result holds palette classes only.
    Pixels that are a palette colour (within ANCHOR_TOL) keep it; other pixels (anti-aliased brush edges,
    lossy compression) choose the nearest colour among the classes found within NEIGHBOURHOOD px, and the
    nearest of all only when none is. Why not the plain nearest colour: the blend of two neighbouring
    classes is often nearest to a third (skin/hair half-way is nearest to right_brow), which would draw
    one-pixel brow lines along every hairline.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] not in (3, 4):
        raise InvalidImage(f"A colour mask must be an RGB image, got an array of shape {rgb.shape}.")
    if rgb.shape[2] == 4:
        alpha = rgb[..., 3:4].astype(np.float32) / 255.0
        rgb = rgb[..., :3].astype(np.float32) * alpha
    rgb = np.clip(np.asarray(rgb, np.float32), 0, 255)
    h, w = rgb.shape[:2]
    # distances of the distinct colours only (a painted mask has few)
    packed = (rgb.round().astype(np.int64) * np.array([65536, 256, 1])).sum(-1).ravel()
    colours, inverse = np.unique(packed, return_inverse=True)
    cvals = np.stack([colours // 65536, colours // 256 % 256, colours % 256], -1).astype(np.float32)
    dist = np.sqrt(((cvals[:, None, :] - PALETTE[None].astype(np.float32)) ** 2).sum(-1))  # [K, 20]
    nearest = dist.argmin(1)
    exact = dist[np.arange(len(colours)), nearest] <= ANCHOR_TOL
    labels = nearest[inverse].reshape(h, w).astype(np.uint8)
    anchor = exact[inverse].reshape(h, w)
    if anchor.all() or not anchor.any():
        return labels
    # off-palette pixels: nearest colour among the classes anchored in their neighbourhood
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * NEIGHBOURHOOD + 1,) * 2)
    colour_index = inverse.reshape(h, w)
    off = ~anchor
    best = np.full((h, w), np.inf, np.float32)
    choice = labels.copy()
    for c in np.unique(labels[anchor]):
        near = cv2.dilate(((labels == c) & anchor).astype(np.uint8), kernel) > 0
        d = np.where(near & off, dist[colour_index, c], np.inf)              # [H, W]
        better = d < best
        best[better] = d[better]
        choice[better] = c
    return choice


def palette_share(rgb: np.ndarray) -> float:
    """Fraction of the pixels of an RGB(A) image that are a palette colour (within ANCHOR_TOL)."""
    rgb = np.asarray(rgb)
    if rgb.shape[-1] == 4:
        rgb = rgb[..., :3].astype(np.float32) * (rgb[..., 3:4].astype(np.float32) / 255.0)
    step = max(1, int(np.sqrt(rgb.shape[0] * rgb.shape[1] / 65536)))      # about 256x256 samples suffice
    sample = np.asarray(rgb[::step, ::step], np.float32).reshape(-1, 1, 3)
    dist = np.sqrt(((sample - PALETTE[None].astype(np.float32)) ** 2).sum(-1)).min(1)
    return float((dist <= ANCHOR_TOL).mean())


def read_mask(source) -> np.ndarray:
    """A label image (values 0..19: L/P/I PNG, or a grey RGB copy of one) or a colour mask -> [H, W] uint8.

    `source`: path, bytes or array ([H, W] labels, [H, W, 3] colour or grey, [H, W, 4] colour with alpha).
    A palette ("P") PNG is read as its indices, as CelebAMask-HQ's label files are.
    """
    if isinstance(source, np.ndarray):
        arr = source
        if arr.ndim >= 2:
            check_pixels((arr.shape[1], arr.shape[0]), MAX_MASK_PIXELS, "Mask", min_side=1)
    else:
        arr = _open_mask(source)
    if arr.ndim == 3 and arr.shape[2] >= 3 and arr.shape[2] <= 4:
        grey = arr[..., :3]
        if (arr.shape[2] == 3 or (arr[..., 3] == 255).all()) and grey.max() < NUM_CLASSES \
                and (grey == grey[..., :1]).all():
            return grey[..., 0].astype(np.uint8)                              # a label image saved as RGB
        share = palette_share(arr)
        if share < MIN_PALETTE_SHARE:
            raise InvalidImage(f"This image does not look like a colour mask: only {share:.0%} of its pixels have a "
                               "class colour of the palette (core/labels.py). Photos go in the photo inputs.")
        return labels_from_color(arr)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim != 2:
        raise InvalidImage(f"A mask must be a label image or a colour image, got an array of shape {arr.shape}.")
    if arr.size and (arr.min() < 0 or arr.max() >= NUM_CLASSES):
        raise InvalidImage(f"A label mask holds the class numbers 0-{NUM_CLASSES - 1} (core/labels.py), but this "
                           f"one has values up to {arr.max()}. Use a label PNG or a colour mask in the app's palette.")
    if min(arr.shape) < 8:
        raise InvalidImage(f"The mask is too small ({arr.shape[1]}x{arr.shape[0]} pixels).")
    return arr.astype(np.uint8)


def _open_mask(source) -> np.ndarray:
    import io

    from PIL import Image, UnidentifiedImageError

    name = "the upload" if isinstance(source, bytes) else os.fspath(source)
    try:
        im = Image.open(io.BytesIO(source) if isinstance(source, bytes) else source)
        check_pixels(im.size, MAX_MASK_PIXELS, "Mask", min_side=1)  # from the header, before decoding
        im.load()
    except FileNotFoundError as e:
        raise InvalidImage(f"Cannot open {os.path.basename(name)}: no such file.") from e
    except (UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise InvalidImage(f"Not an image (or a format we cannot read): {os.path.basename(name)}") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise InvalidImage(f"The mask file is damaged or truncated: {e}") from e
    if im.mode in ("L", "P", "I", "I;16", "I;16B", "I;16L"):
        return np.asarray(im)                                                 # label values (P: the indices)
    if "A" in im.mode or "transparency" in im.info:
        return np.asarray(im.convert("RGBA"))
    return load_image(im)


def resize_labels(labels: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Nearest-neighbour resize of a label image to `size` (side, or (width, height))."""
    w, h = (size, size) if isinstance(size, int) else size
    if labels.shape[:2] == (h, w):
        return labels
    return cv2.resize(labels, (w, h), interpolation=cv2.INTER_NEAREST)


def resize_image(image: np.ndarray, size: int | tuple[int, int]) -> np.ndarray:
    """Area filter when shrinking, bicubic when growing."""
    w, h = (size, size) if isinstance(size, int) else size
    if image.shape[:2] == (h, w):
        return image
    shrink = w * h < image.shape[0] * image.shape[1]
    return cv2.resize(image, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC)


def component_classes(components) -> tuple[int, ...]:
    """Component names (list, or 'eyes,mouth') -> their label classes, in COMPONENTS order."""
    if isinstance(components, str):
        components = [c for c in components.split(",")]
    names = [c.strip().lower() for c in components or () if c.strip()]
    unknown = [n for n in names if n not in COMPONENTS]
    if unknown:
        raise FaceLabError(f"Unknown component(s) {', '.join(map(repr, unknown))}; choose from: "
                           f"{', '.join(COMPONENTS)}.")
    return tuple(c for name in COMPONENTS if name in names for c in COMPONENTS[name])


def paste_mask(old: np.ndarray, new: np.ndarray, classes: tuple[int, ...] = (), region: str = "changed"
               ) -> np.ndarray:
    """Where edit_photo replaces the photo: [S, S] float32 in [0, 1] from the old and new crop labels.

    "changed": pixels whose label changed, plus the pixels of `classes` (transferred parts) in either mask;
    "face": also every non-background pixel of the new mask. Dilated by S/32 px, feathered, and faded out
    at the crop border (core.face.default_paste_mask) so that no seam shows there.
    """
    if region not in REGIONS:
        raise FaceLabError(f"Unknown paste region {region!r}; choose one of: {', '.join(REGIONS)}.")
    as_model = lambda lab: np.where(lab == OCCLUDER, 0, lab)  # noqa: E731  (the model draws occluders as background)
    old, new = as_model(old), as_model(new)
    region_mask = old != new
    if classes:
        region_mask |= np.isin(old, classes) | np.isin(new, classes)
    if region == "face":
        region_mask |= new != ID["background"]
    size = old.shape[0]
    if not region_mask.any():
        return np.zeros((size, size), np.float32)
    r = max(1, size // 32)
    grown = cv2.dilate(region_mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1,) * 2))
    soft = cv2.GaussianBlur(grown.astype(np.float32), (2 * r + 1,) * 2, 0)
    return (np.clip(soft, 0, 1) * F.default_paste_mask(size)).astype(np.float32)


# --------------------------------------------------------------------------- photos

def mask_from_photo(image, face: int = 0) -> PhotoMask:
    """Photo -> aligned 256 px crop of face `face` (0 = largest) + its parsed labels + the alignment."""
    image = load_image(image)
    res = parse_photo(image, face)
    return PhotoMask(image=image, crop=res.crop, labels=res.crop_labels, face=res.face, matrix=res.matrix)


def _check_seed(seed) -> int:
    try:
        value = int(seed)
    except (TypeError, ValueError, OverflowError) as e:
        raise FaceLabError(f"The seed must be a whole number, got {seed!r}.") from e
    if value != seed or not 0 <= value < 2 ** 63:
        raise FaceLabError(f"The seed must be a whole number from 0 to 2^63 - 1, got {seed!r}.")
    return value


def _face_and_labels(image, labels, size: int) -> tuple[np.ndarray, np.ndarray]:
    """A style source at the model's size: an aligned crop with its labels, or any photo (parsed here)."""
    if labels is None:
        pm = mask_from_photo(image)
        crop, lab = pm.crop, pm.labels
    else:
        crop, lab = load_image(image), read_mask(labels)
        if crop.shape[:2] != lab.shape:
            raise FaceLabError(f"The style image ({crop.shape[1]}x{crop.shape[0]}) and its labels "
                               f"({lab.shape[1]}x{lab.shape[0]}) differ in size.")
    return resize_image(crop, size), resize_labels(lab, size)


def _to_tensor(crop: np.ndarray, dev) -> torch.Tensor:
    """[S, S, 3] uint8 -> [1, 3, S, S] float in [-1, 1]."""
    return torch.from_numpy(np.ascontiguousarray(crop)).to(dev).permute(2, 0, 1)[None].float() / 127.5 - 1


def _labels_tensor(labels: np.ndarray, dev) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(labels)).to(dev).long()[None]  # [1, S, S]


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    """[1, 3, S, S] in [-1, 1] -> [S, S, 3] uint8."""
    return ((x[0].float().clamp(-1, 1) + 1) * 127.5 + 0.5).to(torch.uint8).permute(1, 2, 0).cpu().numpy()


@torch.no_grad()
def encode(model, crop: np.ndarray, labels: np.ndarray) -> torch.Tensor:
    """Aligned crop [S, S, 3] uint8 + labels [S, S] at the model's size -> styles [1, C, S_dim]."""
    dev = model.style_mean.device
    return model.encode_styles(_to_tensor(crop, dev), _labels_tensor(labels, dev))


@torch.no_grad()
def seed_styles(model, generator: torch.Generator, temperature: float = 1.0) -> torch.Tensor:
    """One style tensor [1, C, S_dim] from the fitted prior: Mask2Face.sample_styles' draw, made on the CPU."""
    r, d = model.style_basis.shape
    z = torch.randn(1, r, generator=generator)
    eps = torch.randn(1, d, generator=generator)
    dev = model.style_mean.device
    flat = z.to(dev) @ model.style_basis + eps.to(dev) * model.style_resid.reshape(1, d)  # [1, C*S]
    return model.style_mean + temperature * flat.view(1, model.num_classes, model.style_dim)


@torch.no_grad()
def render(model, labels: np.ndarray, styles: torch.Tensor, generator: torch.Generator | None) -> np.ndarray:
    """Labels [S, S] at the model's size + styles -> face [S, S, 3] uint8; noise maps from `generator`
    (CPU, then moved), none when it is None."""
    from ..models.mask2face import one_hot

    dev = model.style_mean.device
    noise = None
    if generator is not None:
        noise = [[n.to(dev) for n in pair] for pair in model.make_noise(1, "cpu", generator)]
    mask = one_hot(_labels_tensor(labels, dev), model.num_classes, styles.dtype)  # [1, C, S, S]
    return _to_uint8(model.generator(mask, styles, noise))


def _transfer(model, styles: torch.Tensor, components, from_image, from_labels) -> tuple[torch.Tensor, tuple]:
    """Copy the style rows of `components` from photo B (classes B shows); -> (styles, class names copied)."""
    classes = component_classes(components)
    if not classes:
        return styles, ()
    if from_image is None:
        raise FaceLabError("Component transfer needs photo B (the photo to take the parts from).")
    size = model.image_size
    crop_b, lab_b = _face_and_labels(from_image, from_labels, size)
    counts = np.bincount(lab_b.ravel(), minlength=NUM_CLASSES)
    present = [c for c in classes if c != OCCLUDER and counts[c] >= MIN_PIXELS]
    if not present:
        raise FaceLabError(f"Photo B shows none of the parts asked for ({', '.join(CLASSES[c] for c in classes)}).")
    styles_b = encode(model, crop_b, lab_b)
    styles = styles.clone()
    styles[:, present] = styles_b[:, present]
    return styles, tuple(CLASSES[c] for c in present)


# --------------------------------------------------------------------------- the two entry points

@torch.no_grad()
def generate(labels, style_image=None, style_labels=None, seed: int = 0, components=None, from_image=None,
             from_labels=None, temperature: float = 1.0, noise: bool = True, model=None) -> FaceResult:
    """A face for the mask `labels` ([H, W] labels 0..19, a colour mask, or a file; see read_mask).

    style_image: a photo (detected, aligned and parsed here) or, with `style_labels`, an aligned crop and its
        labels; its per-region styles dress the mask. None: styles drawn from the prior with `seed`.
    seed: drives the prior draw and the per-pixel noise; the same seed gives the same face.
    components, from_image, from_labels: parts (COMPONENTS names) whose styles come from photo B instead
        (from_image with from_labels is again an aligned crop + labels).
    temperature: spread of the prior draw (< 1: more average faces). noise: False draws no noise maps.
    model: a Mask2Face to use instead of the bundled one (evaluation of a fresh checkpoint).
    -> FaceResult with the face at the mask's size.
    """
    model = model if model is not None else load_model()
    seed = _check_seed(seed)
    lab = read_mask(labels)
    h, w = lab.shape
    size = model.image_size
    lab_model = resize_labels(lab, size)
    gen = torch.Generator().manual_seed(seed)
    if style_image is not None:
        styles = encode(model, *_face_and_labels(style_image, style_labels, size))
    else:
        styles = seed_styles(model, gen, float(temperature))
    styles, moved = _transfer(model, styles, components, from_image, from_labels)
    face = render(model, lab_model, styles, gen if noise else None)
    return FaceResult(image=resize_image(face, (w, h)), labels=lab, seed=seed,
                      styles_from="seed" if style_image is None else "photo", transferred=moved)


@torch.no_grad()
def edit_photo(photo, new_labels=None, face_index: int = 0, seed: int = 0, components=None, from_image=None,
               from_labels=None, region: str = "changed", noise: bool = True, model=None) -> EditResult:
    """Regenerate a real photo's face under an edited mask (and/or with parts of photo B), pasted back.

    new_labels: the edited mask in the frame of `mask_from_photo(photo).labels` (the 256 px aligned crop;
        another size is resized nearest); None keeps the photo's own mask (then use `components`).
    The styles are the photo's own (its crop under its parsed mask), with `components` from photo B.
    region: "changed" pastes only the edited / transferred parts (dilated, feathered); "face" the whole new
        face. Pixels outside the paste mask stay bit-identical.
    """
    model = model if model is not None else load_model()
    seed = _check_seed(seed)
    pm = mask_from_photo(photo, face_index)
    new = pm.labels if new_labels is None else resize_labels(read_mask(new_labels), PARSE_SIZE)
    size = model.image_size
    styles = encode(model, resize_image(pm.crop, size), resize_labels(pm.labels, size))
    styles, moved = _transfer(model, styles, components, from_image, from_labels)
    gen = torch.Generator().manual_seed(seed)
    generated = resize_image(render(model, resize_labels(new, size), styles, gen if noise else None), PARSE_SIZE)
    mask = paste_mask(pm.labels, new, tuple(ID[n] for n in moved), region)
    pasted = F.paste_back(pm.image, generated, pm.matrix, mask) if mask.any() else pm.image.copy()
    return EditResult(pasted=pasted, generated=generated, crop=pm.crop, labels=pm.labels, new_labels=new,
                      paste_mask=mask, face=pm.face, matrix=pm.matrix, transferred=moved)


__all__ = ["COMPONENTS", "REGIONS", "EditResult", "FaceResult", "PhotoMask", "component_classes", "edit_photo",
           "generate", "labels_from_color", "mask_from_photo", "palette_share", "paste_mask", "read_mask",
           "resize_labels"]
