"""The face front-end every capability starts and ends with.

detect -> 68 landmarks -> head pose + 3D landmarks -> canonical aligned crop
-> (a capability edits the crop) -> feathered paste-back into the photo.

Pieces and where they come from:
- detection: dlib's HOG detector first, dlib's CNN (MMOD) detector as fallback;
- landmarks: dlib's 68-point shape predictor (iBUG 300-W indexing);
- head pose: OpenCV `solvePnP` of the 68 landmarks against OpenFace's mean 3D
  face (`assets/face3d_68.txt`); no learned pose model;
- identity: dlib's ResNet face descriptor (128-d). It is the project's
  independent identity judge (metrics, UI) and never a training loss;
- alignment: the FFHQ recipe (eye/mouth frame) with its centre and scale
  calibrated so that CelebAMask-HQ images map almost onto themselves, i.e. an
  aligned crop here is framed like the training data.

Pose sign convention (degrees): yaw > 0 when the face turns towards the image's
right (the subject's left), pitch > 0 when the face looks up, roll > 0 when the
head tilts counter-clockwise in the image. A mirrored photo gives -yaw, -roll.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

import cv2
import numpy as np

from .errors import FaceIndexError, NoFace

# Canonical frame (calibrated on 300 CelebAMask-HQ images with
# `python -m train.calibrate_alignment`): the FFHQ centre c lands at
# (0.5 + CENTER_X, 0.5 + CENTER_Y) * size and |x| (FFHQ's half-width) at SCALE * size.
CENTER_X, CENTER_Y, SCALE = -0.0012, 0.0062, 0.4948


@dataclass
class Face:
    """One detected face, in the coordinates of the photo it was found in."""
    bbox: tuple[int, int, int, int]           # x0, y0, x1, y1
    score: float                              # detector confidence (HOG or MMOD score)
    landmarks: np.ndarray                     # [68, 2] float32, iBUG order
    detector: str                             # "learned" (ours), or dlib's "hog" / "cnn" (fallback)
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0
    landmarks3d: np.ndarray = field(default=None, repr=False)  # [68, 3]: x, y in px, z towards viewer in px
    visibility: np.ndarray | None = field(default=None, repr=False)  # [68] in [0, 1] ("learned" only): the point is
    # on visible skin, not under a mask/glasses/hand or on the far side of a turned head; None from dlib

    @property
    def area(self) -> int:
        x0, y0, x1, y1 = self.bbox
        return max(0, x1 - x0) * max(0, y1 - y0)


@dataclass
class AlignedFace:
    image: np.ndarray     # [S, S, 3] uint8 RGB crop
    matrix: np.ndarray    # [2, 3] affine: photo pixel -> crop pixel
    size: int
    padded: float         # fraction of the crop that lay outside the photo


# --------------------------------------------------------------------------- models

def _model_path(name: str) -> str:
    import face_recognition_models as frm
    return getattr(frm, name)()


@functools.lru_cache(maxsize=None)
def _hog():
    import dlib
    return dlib.get_frontal_face_detector()


@functools.lru_cache(maxsize=None)
def _cnn():
    import dlib
    return dlib.cnn_face_detection_model_v1(_model_path("cnn_face_detector_model_location"))


@functools.lru_cache(maxsize=None)
def _shape68():
    import dlib
    return dlib.shape_predictor(_model_path("pose_predictor_model_location"))


@functools.lru_cache(maxsize=None)
def _descriptor():
    import dlib
    return dlib.face_recognition_model_v1(_model_path("face_recognition_model_location"))


@functools.lru_cache(maxsize=None)
def mean_face_3d() -> np.ndarray:
    """[68, 3] OpenFace mean face in camera axes (x right, y down, z away from the viewer)."""
    pts = np.loadtxt(os.path.join(os.path.dirname(__file__), "assets", "face3d_68.txt"), dtype=np.float64)
    return pts * np.array([1.0, 1.0, -1.0])  # the file's z points towards the viewer


# --------------------------------------------------------------------------- detection

DETECT_MAX_SIDE = 1024  # photos are downscaled to this for the detectors


def detect_faces(image: np.ndarray, cnn_fallback: bool = True, learned: bool = True) -> list[Face]:
    """All faces in an RGB photo, largest first, with landmarks and pose.

    Our detector and landmark network (`core.face_models`) first; dlib (HOG, then its CNN) when they find
    nothing, are not bundled, or `learned=False`."""
    if learned:
        from . import face_models

        found = face_models.find_faces(image)
        if found:
            faces = []
            for box, lm, vis in found:
                x0, y0, x1, y1 = (int(round(v)) for v in box[:4])
                face = Face(bbox=(x0, y0, x1, y1), score=float(box[4]), landmarks=lm, detector="learned",
                            visibility=vis)
                face.yaw, face.pitch, face.roll, face.landmarks3d = head_pose(lm, image.shape[:2])
                faces.append(face)
            faces.sort(key=lambda f: f.area, reverse=True)
            return faces
    return detect_faces_dlib(image, cnn_fallback)


def detect_faces_dlib(image: np.ndarray, cnn_fallback: bool = True) -> list[Face]:
    """dlib's HOG detector (weak hits confirmed by its CNN; the CNN alone when HOG finds nothing) + 68 points."""
    import dlib

    h, w = image.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
    small = cv2.resize(image, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA) if scale < 1 else image
    upsample = 1 if max(small.shape[:2]) < 640 else 0
    rects, scores, _ = _hog().run(small, upsample, 0.0)
    found = [(r, s, "hog") for r, s in zip(rects, scores)]
    # weak HOG hits are often false (a badge, a patterned shirt), alone or beside a clear face: keep those the
    # CNN confirms; when none is left, the CNN below searches the whole photo
    found = [d for d in found if d[1] >= WEAK_HOG_SCORE or _cnn_confirms(small, d[0])]
    if not found and cnn_fallback:
        cscale = min(1.0, 640 / max(small.shape[:2]))
        tiny = cv2.resize(small, None, fx=cscale, fy=cscale, interpolation=cv2.INTER_AREA) if cscale < 1 else small
        for d in _cnn()(tiny, 1 if max(tiny.shape[:2]) < 400 else 0):
            r = d.rect
            found.append((dlib.rectangle(round(r.left() / cscale), round(r.top() / cscale),
                                         round(r.right() / cscale), round(r.bottom() / cscale)), d.confidence, "cnn"))
    faces = []
    for r, s, kind in found:
        rect = dlib.rectangle(round(r.left() / scale), round(r.top() / scale),
                              round(r.right() / scale), round(r.bottom() / scale))
        shape = _shape68()(image, rect)
        lm = np.array([(p.x, p.y) for p in shape.parts()], dtype=np.float32)
        face = Face(bbox=(rect.left(), rect.top(), rect.right(), rect.bottom()), score=float(s), landmarks=lm,
                    detector=kind)
        face.yaw, face.pitch, face.roll, face.landmarks3d = head_pose(lm, image.shape[:2])
        faces.append(face)
    faces.sort(key=lambda f: f.area, reverse=True)
    return faces


WEAK_HOG_SCORE = 0.3


def _cnn_confirms(image: np.ndarray, rect) -> bool:
    """Whether the CNN detector also finds a face in (a padded crop around) this HOG box."""
    x0, y0, x1, y1 = rect.left(), rect.top(), rect.right(), rect.bottom()
    pad = (x1 - x0) // 2
    h, w = image.shape[:2]
    crop = image[max(0, y0 - pad):min(h, y1 + pad), max(0, x0 - pad):min(w, x1 + pad)]
    k = 200 / max(1, max(crop.shape[:2]))
    crop = cv2.resize(crop, None, fx=k, fy=k, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
    return len(_cnn()(np.ascontiguousarray(crop), 0)) > 0  # the box is half the crop: ~100 px, no upsampling needed


def pick_face(faces: list[Face], index: int = 0) -> Face:
    """Face `index` (0 = largest) with a clear message when there is none."""
    if not faces:
        raise NoFace("No face found in the photo. Try a larger, frontal, well-lit face.")
    if not 0 <= index < len(faces):
        raise FaceIndexError(f"Face {index} does not exist: the photo has {len(faces)} face(s), numbered 0..{len(faces) - 1} "
                             "from the largest.")
    return faces[index]


# --------------------------------------------------------------------------- pose

def head_pose(landmarks: np.ndarray, image_hw: tuple[int, int]) -> tuple[float, float, float, np.ndarray]:
    """(yaw, pitch, roll) in degrees and [68, 3] landmarks from a PnP fit to the mean 3D face."""
    h, w = image_hw
    f = float(max(h, w))
    cam = np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], dtype=np.float64)
    model = mean_face_3d()
    ok, rvec, tvec = cv2.solvePnP(model, landmarks.astype(np.float64), cam, None, flags=cv2.SOLVEPNP_EPNP)
    ok, rvec, tvec = cv2.solvePnP(model, landmarks.astype(np.float64), cam, None, rvec, tvec,
                                  useExtrinsicGuess=True, flags=cv2.SOLVEPNP_ITERATIVE)
    R, _ = cv2.Rodrigues(rvec)
    yaw, pitch, roll = euler_from_matrix(R)
    depth = (model @ R.T)[:, 2] * (f / float(tvec[2, 0]))  # model units -> pixels at the face's distance
    lm3d = np.concatenate([landmarks, -depth[:, None]], axis=1).astype(np.float32)
    return yaw, pitch, roll, lm3d


def euler_from_matrix(R: np.ndarray) -> tuple[float, float, float]:
    """Rotation (model -> camera, camera x right, y down, z forward) as (yaw, pitch, roll) in our convention."""
    # R = Rz(roll') @ Ry(yaw') @ Rx(pitch') in camera axes
    yaw_c = np.degrees(np.arcsin(np.clip(-R[2, 0], -1, 1)))
    pitch_c = np.degrees(np.arctan2(R[2, 1], R[2, 2]))
    roll_c = np.degrees(np.arctan2(R[1, 0], R[0, 0]))
    # camera +y points down: turning towards image-right is a negative rotation about +y, and
    # looking up (nose tip moving up) a negative rotation about +x
    return float(-yaw_c), float(-pitch_c), float(-roll_c)


def rotation_matrix(yaw: float, pitch: float, roll: float = 0.0) -> np.ndarray:
    """Inverse of `euler_from_matrix`: our (yaw, pitch, roll) in degrees -> 3x3 camera-axes rotation."""
    y, p, r = np.radians([-yaw, -pitch, -roll])
    Rx = np.array([[1, 0, 0], [0, np.cos(p), -np.sin(p)], [0, np.sin(p), np.cos(p)]])
    Ry = np.array([[np.cos(y), 0, np.sin(y)], [0, 1, 0], [-np.sin(y), 0, np.cos(y)]])
    Rz = np.array([[np.cos(r), -np.sin(r), 0], [np.sin(r), np.cos(r), 0], [0, 0, 1]])
    return Rz @ Ry @ Rx


# --------------------------------------------------------------------------- identity

def face_descriptor(image: np.ndarray, face: Face) -> np.ndarray:
    """dlib's 128-d identity descriptor (unit-ish vector; same person when distance < 0.6)."""
    import dlib

    x0, y0, x1, y1 = face.bbox
    parts = [dlib.point(int(round(x)), int(round(y))) for x, y in face.landmarks]
    shape = dlib.full_object_detection(dlib.rectangle(x0, y0, x1, y1), parts)
    return np.asarray(_descriptor().compute_face_descriptor(image, shape), dtype=np.float32)


def identity_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Euclidean distance between descriptors; dlib's threshold for 'same person' is 0.6."""
    return float(np.linalg.norm(np.asarray(a) - np.asarray(b)))


def identity_similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two descriptors in [-1, 1] (1 = identical)."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-12))


# --------------------------------------------------------------------------- alignment

def ffhq_frame(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """FFHQ's oriented crop frame from 68 landmarks: centre c and half-width vector x (photo px)."""
    lm = landmarks.astype(np.float64)
    eye_l, eye_r = lm[36:42].mean(0), lm[42:48].mean(0)
    eye_avg, eye_to_eye = (eye_l + eye_r) / 2, eye_r - eye_l
    mouth_avg = (lm[48] + lm[54]) / 2
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - np.flipud(eye_to_mouth) * [-1, 1]
    x /= np.hypot(*x)
    x *= max(np.hypot(*eye_to_eye) * 2.0, np.hypot(*eye_to_mouth) * 1.8)
    c = eye_avg + eye_to_mouth * 0.1
    return c, x


def align_matrix(landmarks: np.ndarray, size: int = 256) -> np.ndarray:
    """[2, 3] similarity transform photo -> canonical crop of `size` px."""
    c, x = ffhq_frame(landmarks)
    s = SCALE * size / np.hypot(*x)
    cos, sin = x / np.hypot(*x)
    A = s * np.array([[cos, sin], [-sin, cos]])   # rotate x onto +x, then scale
    t = np.array([(0.5 + CENTER_X) * size, (0.5 + CENTER_Y) * size]) - A @ c
    return np.concatenate([A, t[:, None]], axis=1)


def align_face(image: np.ndarray, face: Face | np.ndarray, size: int = 256) -> AlignedFace:
    """Warp the photo into the canonical crop (reflect padding beyond the photo, as FFHQ)."""
    lm = face.landmarks if isinstance(face, Face) else face
    M = align_matrix(lm, size)
    src, Msrc = image, M
    scale = np.sqrt(abs(np.linalg.det(M[:, :2])))
    if scale < 0.5:  # big photo: shrink first so the warp does not alias
        k = min(1.0, 2 * scale)
        src = cv2.resize(image, None, fx=k, fy=k, interpolation=cv2.INTER_AREA)
        Msrc = M @ np.diag([1 / k, 1 / k, 1.0])
    crop = cv2.warpAffine(src, Msrc, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101)
    inside = cv2.warpAffine(np.ones(image.shape[:2], np.uint8), M, (size, size), flags=cv2.INTER_NEAREST,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return AlignedFace(image=crop, matrix=M, size=size, padded=float(1.0 - inside.mean()))


def warp_labels(labels: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Warp a label image with the same transform (nearest neighbour, background outside)."""
    return cv2.warpAffine(labels, matrix, (size, size), flags=cv2.INTER_NEAREST,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def default_paste_mask(size: int) -> np.ndarray:
    """[S, S] float32 in [0, 1]: a soft rounded square covering the crop minus a margin."""
    m = np.zeros((size, size), np.float32)
    pad = size // 16
    cv2.rectangle(m, (pad, pad), (size - pad - 1, size - pad - 1), 1.0, thickness=-1)
    k = size // 8 * 2 + 1
    return cv2.GaussianBlur(m, (k, k), 0)


def warp_mask_to_photo(mask: np.ndarray, matrix: np.ndarray, image_hw: tuple[int, int]) -> np.ndarray:
    """[S, S] crop-space mask -> [H, W] float32 photo-space mask (0 outside the crop)."""
    h, w = image_hw
    return cv2.warpAffine(mask.astype(np.float32), cv2.invertAffineTransform(matrix), (w, h), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=0)


def paste_back(image: np.ndarray, crop: np.ndarray, matrix: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """Put a processed crop back into the photo with a feathered mask.

    `mask` [S, S] in [0, 1] says where the crop replaces the photo (default: the
    whole crop, feathered at its border). Pixels where the warped mask is 0 stay
    bit-identical.
    """
    size = crop.shape[0]
    if mask is None:
        mask = default_paste_mask(size)
    alpha = warp_mask_to_photo(mask, matrix, image.shape[:2])
    Minv = cv2.invertAffineTransform(matrix)
    ys, xs = np.nonzero(alpha > 0)
    out = image.copy()
    if len(ys) == 0:
        return out
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    # warp only the bounding box of the face region
    T = np.array([[1, 0, x0], [0, 1, y0], [0, 0, 1]], np.float64)
    Mcrop_to_box = np.linalg.inv(T) @ np.vstack([Minv, [0, 0, 1]])
    patch = cv2.warpAffine(crop, Mcrop_to_box[:2], (x1 - x0, y1 - y0), flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)
    a = alpha[y0:y1, x0:x1, None]
    region = out[y0:y1, x0:x1]
    blended = (patch.astype(np.float32) * a + region.astype(np.float32) * (1 - a) + 0.5).astype(np.uint8)
    out[y0:y1, x0:x1] = np.where(a > 0, blended, region)
    return out
