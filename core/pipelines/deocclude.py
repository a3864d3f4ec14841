"""Face de-occlusion of a photo (Yin 2022, ch. 5): find what covers the face, then inpaint it.

detect -> align (256, FFHQ framing) -> parser labels (core.pipelines.parse) -> occlusion mask M_o
-> Inpainter (core/models/deocclusion.py, registry name "deocclusion"; its face prior drawn from the face
region only, see `face_only_prior`) -> filled region pasted back.

The thesis computes M_o = M_m - M_m * M_f (Eq. 5.1): M_f the visible face from its segmentation
network, M_m the full (amodal) face region, there the silhouette of a rendered 3DMM fit. Here:
 - M_m (`face_region`): the polygon of the 68 landmarks' jaw contour (points 0..16) closed above by a
   forehead estimate: the jaw reflected about the brow line (a line fitted through brow points
   17..26) and scaled by FOREHEAD = 0.6. Measured on the 450 CelebAMask-HQ val faces against their
   label maps: it holds 98.7 % of the visible face (98.6 % of the visible forehead) with 1.6 % of its
   area on background / neck / ears / cloth; 0.5 holds 96.2 % of the forehead, 0.7-1.0 add little
   forehead and more overshoot; an ellipse through the same points overshoots 2-3x more.
 - occluding pixels: the parser's `occluder`, `eyeglasses` and `hat` classes (not "everything that is
   not visible face": our landmark M_m is coarser than a 3DMM render, and its 1-2 % overshoot onto
   background / neck / ears would be taken for occlusion; `rule="literal"` is the thesis's rule).
   Eyeglasses count by default (sunglasses are labelled `eyeglasses` in CelebAMask-HQ; `glasses=False`
   keeps clear spectacles). Hair counts only when asked (`hair=True`) and only inside the inner face
   (hull of the brow, eye, nose and mouth landmarks): bangs over the eyes, not the hair framing the
   forehead and cheeks (`hair="all"`: all hair inside M_m).
 - occluder components that touch M_o are kept whole within M_m grown by EXTEND px (a face mask
   reaching below the jaw is removed as one piece), then cleaned: opening (radius 2), closing
   (radius 3), components under 60 px dropped, dilation by 1 px.
Auto-mask IoU vs pasted occluders, 100 val faces (python -m train.eval_deocclusion --n 100, parser of
17:08), sunglasses / face masks: this default 0.876 / 0.937; hair=True 0.871 / 0.929; hair="all" 0.498 /
0.619 (it marks the hair framing most faces); glasses=False 0.844 / 0.947; rule="literal" 0.834 / 0.902
(+ all hair 0.483 / 0.604). Dilated 2 px instead of 1: 0.838 / 0.913; 3 px: 0.788 / 0.882.

A user mask (photo-sized, white = remove) replaces the detection; it is warped into the crop.
Only the filled pixels change: the inpainted crop is pasted back through a feathered copy of the mask,
so every photo pixel away from the mask stays bit-identical.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .. import face as F
from ..errors import FaceLabError
from ..imageio import load_image
from ..labels import ID, OCCLUDER

CROP = 256           # the inpainter's and the parser's crop size
FOREHEAD = 0.6       # forehead height above the brow line, as a fraction of the brow-to-jaw distance
EXTEND = 20          # px (at 256): how far beyond M_m an occluder touching the face is kept
OPEN_R, CLOSE_R, MIN_AREA, DILATE = 2, 3, 60, 1
OCCLUDING = (OCCLUDER, ID["eyeglasses"], ID["hat"])
BROWS = tuple(range(17, 27))
JAW = tuple(range(0, 17))
INNER = tuple(range(17, 68))   # brows, nose, eyes, mouth


@dataclass
class Occlusion:
    """What `detect_occlusion` found for one face."""
    crop: np.ndarray         # [256, 256, 3] uint8 aligned crop
    labels: np.ndarray       # [256, 256] uint8 parser labels of the crop
    landmarks: np.ndarray    # [68, 2] float32 landmarks in crop pixels
    region: np.ndarray       # [256, 256] bool M_m, the full-face region
    mask: np.ndarray         # [256, 256] bool M_o, the occlusion mask (crop)
    photo_mask: np.ndarray   # [H, W] bool M_o in photo coordinates
    face: F.Face
    matrix: np.ndarray       # [2, 3] photo -> crop


@dataclass
class DeoccludeResult:
    crop: np.ndarray                 # [256, 256, 3] uint8 aligned input
    auto_mask: np.ndarray | None     # [256, 256] bool detected M_o (None when a user mask was given)
    mask: np.ndarray                 # [256, 256] bool mask that was filled (detected or the user's)
    inpainted: np.ndarray            # [256, 256, 3] uint8 crop with the mask filled (same as crop elsewhere)
    result: np.ndarray               # [H, W, 3] uint8 the photo with the filled region pasted back
    photo_mask: np.ndarray | None    # [H, W] bool detected M_o in photo coordinates (None with a user mask)
    landmarks: np.ndarray            # [68, 2] float32 in crop pixels
    face: F.Face
    matrix: np.ndarray               # [2, 3] photo -> crop


# ----------------------------------------------------------------------------------------- the mask

def disk(r: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))


def brow_line(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(point on the line, unit normal pointing towards the chin) of the line fitted to brow points 17..26."""
    pts = landmarks[list(BROWS)].astype(np.float64)
    mean = pts.mean(0)
    _, _, vt = np.linalg.svd(pts - mean)
    normal = np.array([vt[0, 1], -vt[0, 0]])
    if (landmarks[8] - mean) @ normal < 0:
        normal = -normal
    return mean, normal


def fill_polygon(points: np.ndarray, size: int) -> np.ndarray:
    """Convex hull of points [K, 2] (pixels) filled -> bool [size, size] (sub-pixel vertex precision)."""
    hull = cv2.convexHull(points.astype(np.float32)).reshape(-1, 2)
    m = np.zeros((size, size), np.uint8)
    cv2.fillPoly(m, [np.round(hull * 16).astype(np.int32)], 1, lineType=cv2.LINE_8, shift=4)
    return m.astype(bool)


def face_region(landmarks: np.ndarray, size: int = CROP, forehead: float = FOREHEAD) -> np.ndarray:
    """M_m: jaw contour (0..16) plus the jaw reflected about the brow line and scaled by `forehead` -> bool."""
    lm = np.asarray(landmarks, np.float64)
    mean, normal = brow_line(lm)
    jaw = lm[list(JAW)]
    below = (jaw - mean) @ normal                             # distance below the brow line (px)
    top = jaw - (1 + forehead) * below[:, None] * normal[None]  # onto the line, then `forehead` x as far above
    return fill_polygon(np.concatenate([jaw, top[::-1]]), size)


def remove_small(mask: np.ndarray, min_area: int) -> np.ndarray:
    n, cc, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    small = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < min_area)
    small = small[small > 0]
    return mask.astype(bool) & ~np.isin(cc, small)


def occlusion_mask(crop_labels: np.ndarray, landmarks_in_crop: np.ndarray, hair: bool | str = False,
                   glasses: bool = True, dilate: int = DILATE, rule: str = "classes") -> np.ndarray:
    """Occlusion mask M_o (bool [S, S]) of an aligned crop from its parser labels and 68 landmarks (crop px).

    hair: False; True = hair over the inner face (brows, eyes, nose, mouth) is occlusion; "all" = all hair
    inside M_m. glasses: eyeglasses count as occlusion. rule: "classes" = the occluding classes inside M_m
    (default); "literal" = the thesis's M_m - M_m * M_f, everything in M_m that is not visible face (hair
    excepted unless asked for). Both are then cleaned the same way."""
    from .parse import visible_face

    labels = np.asarray(crop_labels)
    size = labels.shape[0]
    lm = np.asarray(landmarks_in_crop, np.float64)
    region = face_region(lm, size)
    if rule == "literal":
        occ = ~visible_face(labels) & (labels != ID["hair"])
        if not glasses:
            occ &= labels != ID["eyeglasses"]
    elif rule == "classes":
        occ = np.isin(labels, [c for c in OCCLUDING if glasses or c != ID["eyeglasses"]])
    else:
        raise ValueError(f"rule must be 'classes' or 'literal', got {rule!r}")
    if hair == "all":
        occ |= labels == ID["hair"]
    elif hair:
        occ |= fill_polygon(lm[list(INNER)], size) & (labels == ID["hair"])
    mo = region & occ
    # occluder pieces touching the face are taken whole (within the face region grown by EXTEND px)
    near = cv2.dilate(region.astype(np.uint8), disk(EXTEND)).astype(bool)
    candidates = (near & (labels == OCCLUDER)) | mo
    _, cc = cv2.connectedComponents(candidates.astype(np.uint8), connectivity=8)
    keep = np.unique(cc[mo])
    mo = np.isin(cc, keep[keep > 0]).astype(np.uint8)
    mo = cv2.morphologyEx(mo, cv2.MORPH_OPEN, disk(OPEN_R))
    mo = cv2.morphologyEx(mo, cv2.MORPH_CLOSE, disk(CLOSE_R))
    mo = remove_small(mo, MIN_AREA).astype(np.uint8)
    if dilate:
        mo = cv2.dilate(mo, disk(dilate))
    return mo.astype(bool)


def landmarks_in_crop(face: F.Face, matrix: np.ndarray) -> np.ndarray:
    """Photo landmarks [68, 2] -> crop pixels through the alignment matrix [2, 3]."""
    lm = face.landmarks.astype(np.float64)
    return (lm @ matrix[:, :2].T + matrix[:, 2]).astype(np.float32)


# ----------------------------------------------------------------------------------------- masks <-> photo

def read_mask(source, image_hw: tuple[int, int] | None = None) -> np.ndarray:
    """A mask image (path, bytes, array; white = remove) -> bool [H, W], resized to image_hw if given.

    Grey >= 128 is "remove"; transparent pixels of an image with alpha are "keep". A mask whose aspect ratio
    differs from the photo's is refused (it was drawn for another image)."""
    if isinstance(source, np.ndarray) and source.ndim == 2:
        arr = source.astype(np.float32)
        m = arr >= (128 if arr.max() > 1 else 0.5)
    else:
        from PIL import Image

        im = source if isinstance(source, Image.Image) else None
        if im is None and isinstance(source, np.ndarray):
            im = Image.fromarray(source)
        if im is None:
            import io
            import os

            from ..imageio import check_pixels  # same size limits as photos

            try:
                im = Image.open(io.BytesIO(source) if isinstance(source, bytes) else os.fspath(source))
                check_pixels(im.size)  # from the header, before decoding
                im.load()
            except FaceLabError as e:
                raise FaceLabError(f"The mask image: {e}") from e
            except Exception as e:  # noqa: BLE001 - any unreadable file is the user's to fix
                raise FaceLabError(f"Cannot read the mask image ({type(e).__name__}): upload a PNG, white = "
                                   "remove.") from e
        grey = np.asarray(im.convert("L"), np.uint8)
        m = grey >= 128
        if "A" in im.getbands() or (im.mode == "P" and "transparency" in im.info):
            m &= np.asarray(im.convert("RGBA"))[..., 3] >= 128
    if image_hw is not None and m.shape != tuple(image_hw):
        h, w = image_hw
        mh, mw = m.shape
        if abs(mh / mw - h / w) > 0.02 * (h / w):
            raise FaceLabError(f"The mask is {mw}x{mh} but the photo is {w}x{h}: draw the mask on this photo "
                               "(same size, white = remove).")
        m = cv2.resize(m.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
    return m


def mask_to_crop(mask: np.ndarray, matrix: np.ndarray, size: int = CROP) -> np.ndarray:
    """Photo-sized bool mask [H, W] -> bool [size, size] in the aligned crop (through matrix photo -> crop).

    Area-averaged first when the crop is much smaller than the photo (thin brush strokes survive); a crop
    pixel is masked when at least a quarter of it is."""
    m = mask.astype(np.float32)
    M = np.asarray(matrix, np.float64)
    scale = np.sqrt(abs(np.linalg.det(M[:, :2])))
    if scale < 0.5:
        k = min(1.0, 2 * scale)
        m = cv2.resize(m, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        M = M @ np.diag([1 / k, 1 / k, 1.0])
    warped = cv2.warpAffine(m, M, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                            borderValue=0)
    return warped >= 0.25


def mask_to_photo(mask: np.ndarray, matrix: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """Crop mask [S, S] -> bool [H, W] photo mask (0 outside the crop)."""
    return F.warp_mask_to_photo(mask.astype(np.float32), matrix, image_hw) >= 0.5


def paste_mask(mask: np.ndarray) -> np.ndarray:
    """Filled region [S, S] bool -> feathered paste alpha in [0, 1]: 1 on the region, fading over ~3 px outside.

    The inpainted crop equals the input crop outside the region, so the feather only blends the crop's
    resampled copy of unchanged pixels with the photo's own."""
    grown = cv2.dilate(mask.astype(np.uint8), disk(2)).astype(np.float32)
    soft = cv2.GaussianBlur(grown, (5, 5), 0)
    return np.maximum(soft, mask.astype(np.float32))


# ----------------------------------------------------------------------------------------- the model

def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_model():
    """The de-occlusion inpainter in eval mode, built once per process (load_model caches it)."""
    from ..loading import load_model

    return load_model("deocclusion", device=device())


def face_only_prior(image: torch.Tensor, mask: torch.Tensor, landmarks: torch.Tensor, region: torch.Tensor
                    ) -> torch.Tensor:
    """The model's face prior (core.models.deocclusion.face_prior) with the face region M_m as its only source.

    face_prior mirrors the face about its midline and push-pull fills what stays hidden. On a turned face the
    mirror of a hidden pixel can land off the face (background, hair), and the model copies that into the hole
    (black patches over an eye). Here, for hole pixels inside `region` [N, 1, H, W], pixels outside it count as
    hidden, so such a hole is filled from mirrored face pixels or, failing those, from the face's own push-pull
    average; hole pixels outside the region (hair, background) keep the unrestricted prior.
    Measured with the bundled model on 32 val faces (train.eval_deocclusion's occluders, true masks), L1 / SSIM
    / PSNR inside the hole: sunglasses 0.121 / 0.482 / 16.1 -> 0.096 / 0.522 / 17.8; masks 0.098 / 0.505 /
    17.1 -> 0.089 / 0.525 / 18.0 (OpenCV Telea: 0.107 / 0.480 / 16.4 and 0.118 / 0.485 / 15.9)."""
    from ..models.deocclusion import face_prior

    inside = face_prior(image, torch.maximum(mask, 1 - region), landmarks)
    anywhere = face_prior(image, mask, landmarks)
    return torch.where(mask > 0.5, torch.where(region > 0.5, inside, anywhere), image)


@torch.no_grad()
def inpaint_crops(crops: np.ndarray, masks: np.ndarray, landmarks: np.ndarray | None, model=None,
                  prior: str = "face") -> np.ndarray:
    """[N, S, S, 3] uint8 crops, [N, S, S] bool masks, [N, 68, 2] crop landmarks -> [N, S, S, 3] uint8 filled.

    prior: "face" = `face_only_prior` (default); "mirror" = the model's own `inpaint` (its unrestricted prior).
    Pixels outside the masks come back unchanged."""
    net = model if model is not None else load_model()
    p = next(net.parameters())
    x = torch.from_numpy(np.ascontiguousarray(crops)).to(p.device).permute(0, 3, 1, 2).to(p.dtype) / 255.0
    m = torch.from_numpy(np.ascontiguousarray(masks)).to(p.device)[:, None].to(p.dtype)
    lm = None if landmarks is None else torch.as_tensor(np.asarray(landmarks), device=p.device, dtype=torch.float32)
    if prior not in ("face", "mirror"):
        raise ValueError(f"prior must be 'face' or 'mirror', got {prior!r}")
    if prior == "face" and lm is not None and getattr(net, "use_prior", False):
        size = crops.shape[1]
        region = np.stack([face_region(lmk, size) for lmk in np.asarray(landmarks)])
        r = torch.from_numpy(region).to(p.device)[:, None].to(p.dtype)
        out = net(x, m, face_only_prior(x, m, lm, r))
        out = x * (1 - m) + out * m
    else:
        out = net.inpaint(x, m, lm)
    out = (out.float().clamp(0, 1) * 255.0 + 0.5).to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    keep = ~np.asarray(masks, bool)
    out[keep] = np.asarray(crops)[keep]  # exact: no float round trip outside the mask
    return out


# ----------------------------------------------------------------------------------------- photo level

def align(image: np.ndarray, face_index: int = 0) -> tuple[F.Face, F.AlignedFace, np.ndarray]:
    face = F.pick_face(F.detect_faces(image), face_index)
    al = F.align_face(image, face, CROP)
    return face, al, landmarks_in_crop(face, al.matrix)


def detect_occlusion(photo, face: int = 0, hair: bool = False, glasses: bool = True) -> Occlusion:
    """Any photo -> the occlusion mask of face `face` (0 = largest), in the crop and in the photo."""
    from .parse import parse_crops

    image = load_image(photo)
    f, al, lm = align(image, face)
    labels = parse_crops(al.image)
    mask = occlusion_mask(labels, lm, hair=hair, glasses=glasses)
    return Occlusion(crop=al.image, labels=labels, landmarks=lm, region=face_region(lm), mask=mask,
                     photo_mask=mask_to_photo(mask, al.matrix, image.shape[:2]), face=f, matrix=al.matrix)


def deocclude_photo(photo, face: int = 0, mask=None, hair: bool = False, glasses: bool = True,
                    model=None) -> DeoccludeResult:
    """Remove what covers face `face` (0 = largest) of any photo.

    mask: None = detect the occlusion automatically; else a photo-sized mask (bool/uint8 array, image or path;
    white = remove), which skips the detection. The result is the photo with only the filled region changed."""
    image = load_image(photo)
    if mask is None:
        occ = detect_occlusion(image, face, hair=hair, glasses=glasses)
        f, matrix, crop, lm = occ.face, occ.matrix, occ.crop, occ.landmarks
        auto, used, photo_mask = occ.mask, occ.mask, occ.photo_mask
    else:
        user = read_mask(mask, image.shape[:2])
        f, al, lm = align(image, face)
        matrix, crop = al.matrix, al.image
        auto, photo_mask = None, None
        used = mask_to_crop(user, matrix)
    if used.any():
        inpainted = inpaint_crops(crop[None], used[None], lm[None], model)[0]
        result = F.paste_back(image, inpainted, matrix, paste_mask(used))
    else:  # nothing to remove: the photo as it is
        inpainted, result = crop.copy(), image.copy()
    return DeoccludeResult(crop=crop, auto_mask=auto, mask=used, inpainted=inpainted, result=result,
                           photo_mask=photo_mask, landmarks=lm, face=f, matrix=matrix)


# ----------------------------------------------------------------------------------------- pictures

def overlay_mask(image: np.ndarray, mask: np.ndarray, color=(255, 0, 64), opacity: float = 0.55) -> np.ndarray:
    """The mask tinted over the photo, with its outline."""
    out = image.astype(np.float32)
    m = mask.astype(bool)
    out[m] = out[m] * (1 - opacity) + np.array(color, np.float32) * opacity
    edge = cv2.morphologyEx(m.astype(np.uint8), cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8)).astype(bool)
    thick = max(1, round(max(image.shape[:2]) / 512))
    if thick > 1:
        edge = cv2.dilate(edge.astype(np.uint8), disk(thick // 2)).astype(bool)
    out[edge] = color
    return (out + 0.5).clip(0, 255).astype(np.uint8)


def _eyes(image: np.ndarray, face: F.Face | None) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
    """Eye centres (left, right in the image), the vector between them, its length and angle (degrees) of face
    `face` (default: the largest face in `image`): the frame the drawn example occluders are placed in."""
    if face is None:
        face = F.pick_face(F.detect_faces(image))
    lm = face.landmarks.astype(np.float64)
    left, right = lm[36:42].mean(0), lm[42:48].mean(0)
    d = right - left
    return left, right, d, float(np.hypot(*d)), float(np.degrees(np.arctan2(d[1], d[0])))


def _line(out: np.ndarray, p0: np.ndarray, p1: np.ndarray, color, thick: int) -> None:
    cv2.line(out, tuple(np.round(p0).astype(int)), tuple(np.round(p1).astype(int)), color, thick, cv2.LINE_AA)


def _lenses(out: np.ndarray, eyes: tuple, lens: tuple[float, float], drop: float, color, rim: int) -> np.ndarray:
    """Lens ellipses into `out`: semi-axes `lens` x the eye distance, `drop` x it below the eye centres, outline
    `rim` px (-1 = filled)."""
    left, right, _, dist, angle = eyes
    axes = (round(dist * lens[0]), round(dist * lens[1]))
    for c in (left, right):
        cv2.ellipse(out, (round(c[0]), round(c[1] + dist * drop)), axes, angle, 0, 360, color, rim, cv2.LINE_AA)
    return out


def _frame(out: np.ndarray, eyes: tuple, color, thick: int, temple: tuple[float, float]) -> np.ndarray:
    """The bridge between the lenses and the temples (from `temple[0]` to `temple[1]` eye distances beyond each
    eye, towards the ears) into `out`."""
    left, right, d, _, _ = eyes
    _line(out, left + d * 0.40, right - d * 0.40, color, thick)
    for c, sign in ((left, -1), (right, 1)):
        _line(out, c + sign * d * temple[0], c + sign * d * temple[1], color, thick)
    return out


def draw_sunglasses(image: np.ndarray, face: F.Face | None = None, shade: int = 18) -> np.ndarray:
    """The photo with drawn dark sunglasses over face `face`'s eyes (example occlusions we may ship)."""
    eyes, color = _eyes(image, face), (shade, shade, shade + 6)
    out = _lenses(image.copy(), eyes, (0.42, 0.32), 0.04, color, -1)
    return _frame(out, eyes, color, max(2, round(eyes[3] * 0.06)), (0.42, 0.75))


def draw_eyeglasses(image: np.ndarray, face: F.Face | None = None, color=(25, 20, 20)) -> np.ndarray:
    """The photo with drawn clear eyeglasses (thin dark rims, see-through lenses with a faint tint) on face `face`."""
    eyes = _eyes(image, face)
    tint = _lenses(image.copy(), eyes, (0.40, 0.28), 0.03, (200, 215, 230), -1)
    out = cv2.addWeighted(image, 0.85, tint, 0.15, 0)  # the lenses: 15 % bluish glass
    thick = max(2, round(eyes[3] * 0.05))
    return _frame(_lenses(out, eyes, (0.40, 0.28), 0.03, color, thick), eyes, color, thick, (0.40, 0.78))


def draw_hair_lock(image: np.ndarray, face: F.Face | None = None, color=(70, 48, 30)) -> np.ndarray:
    """The photo with a drawn lock of hair falling from the forehead over one eye to the cheek of face `face`."""
    left, _, d, dist, _ = _eyes(image, face)
    up = np.array([d[1], -d[0]]) / max(dist, 1e-6)      # towards the forehead
    out = image.copy()
    rng = np.random.default_rng(0)
    thick = max(1, round(dist * 0.035))
    t = np.linspace(0, 1, 32)[:, None]
    for k in range(40):  # strands: from the hairline, bending over the left eye, ending on the cheek
        u = k / 39
        start = left + d * (0.25 + 0.4 * u) + up * dist * 1.4 + rng.normal(0, dist * 0.03, 2)
        mid = left + d * (0.35 + 0.3 * u) + up * dist * 0.3
        end = left + d * (-0.5 + 0.7 * u) - up * dist * (0.9 + 0.4 * rng.random())
        pts = (1 - t) ** 2 * start + 2 * (1 - t) * t * mid + t ** 2 * end
        shade = tuple(int(min(255, c * rng.uniform(0.7, 1.4))) for c in color)
        cv2.polylines(out, [np.round(pts * 16).astype(np.int32)], False, shade, thick, cv2.LINE_AA, shift=4)
    return out


def draw_face_mask(image: np.ndarray, face: F.Face | None = None, color=(150, 200, 225)) -> np.ndarray:
    """The photo with a drawn surgical face mask (with pleats) over face `face`'s mouth and chin.

    Worn below the nose: dlib's HOG detector, the front-end's first choice, misses faces whose nose is covered."""
    if face is None:
        face = F.pick_face(F.detect_faces(image))
    lm = face.landmarks.astype(np.float64)
    poly = np.concatenate([lm[1:16], lm[[33]]])  # jaw 1..15, then the base of the nose
    out = image.copy()
    pts = np.round(poly * 16).astype(np.int32)
    cv2.fillPoly(out, [pts], color, cv2.LINE_AA, shift=4)
    eye_dist = float(np.hypot(*(lm[42:48].mean(0) - lm[36:42].mean(0))))
    shade = tuple(int(c * 0.8) for c in color)
    thick = max(1, round(eye_dist * 0.03))
    top, chin = lm[33], lm[8]
    for t in (0.25, 0.5, 0.75):  # pleats across the mask
        y = top + (chin - top) * t
        half = (lm[14] - lm[2]) * 0.42
        p0, p1 = y - half, y + half
        cv2.line(out, tuple(np.round(p0).astype(int)), tuple(np.round(p1).astype(int)), shade, thick, cv2.LINE_AA)
    return out


__all__ = ["CROP", "DeoccludeResult", "Occlusion", "deocclude_photo", "detect_occlusion", "draw_eyeglasses",
           "draw_face_mask", "draw_hair_lock", "draw_sunglasses",
           "face_region", "inpaint_crops", "load_model", "mask_to_crop", "mask_to_photo", "occlusion_mask",
           "overlay_mask", "read_mask"]
