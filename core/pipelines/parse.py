"""Face parsing of a photo: detect -> align (256) -> FaceParser -> labels back in photo coordinates.

Labels follow core/labels.py (CelebAMask-HQ's 19 classes + `occluder` = 19).
Pixels of the photo outside the aligned crop are 0 (background).
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from .. import face as F
from ..imageio import load_image
from ..labels import OCCLUDER, PALETTE, VISIBLE_FACE, colorize

PARSE_SIZE = 256


@dataclass
class ParseResult:
    labels: np.ndarray        # [H, W] uint8, photo coordinates
    crop: np.ndarray          # [256, 256, 3] uint8 aligned crop
    crop_labels: np.ndarray   # [256, 256] uint8 labels of the crop
    face: F.Face
    matrix: np.ndarray        # [2, 3] photo -> crop


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def load_parser():
    from ..loading import load_model

    return load_model("parser", device=device())


@torch.no_grad()
def parse_crops(crops: np.ndarray, flip: bool = True) -> np.ndarray:
    """[N, 256, 256, 3] (or one [256, 256, 3]) uint8 aligned crops -> [N, 256, 256] uint8 labels.

    `flip` averages with the mirrored crop (test-time flip, as measured in the README)."""
    single = crops.ndim == 3
    batch = crops[None] if single else crops
    x = torch.from_numpy(np.ascontiguousarray(batch)).to(device()).permute(0, 3, 1, 2).float() / 255.0
    labels = load_parser().predict(x, flip=flip).to(torch.uint8).cpu().numpy()
    return labels[0] if single else labels


def parse_photo(source, face_index: int = 0) -> ParseResult:
    """Any photo -> labels of face `face_index` (0 = largest) in photo coordinates."""
    image = load_image(source)
    face = F.pick_face(F.detect_faces(image), face_index)
    al = F.align_face(image, face, PARSE_SIZE)
    crop_labels = parse_crops(al.image)
    h, w = image.shape[:2]
    labels = cv2.warpAffine(crop_labels, cv2.invertAffineTransform(al.matrix), (w, h), flags=cv2.INTER_NEAREST,
                            borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return ParseResult(labels=labels, crop=al.image, crop_labels=crop_labels, face=face, matrix=al.matrix)


def visible_face(labels: np.ndarray) -> np.ndarray:
    """Boolean mask of visible face: skin, nose, eyes, brows, lips, mouth (occluder pixels are never in it)."""
    return np.isin(labels, VISIBLE_FACE) & (labels != OCCLUDER)


def overlay(image: np.ndarray, labels: np.ndarray, opacity: float = 0.5) -> np.ndarray:
    """Colour mask blended over the photo (background pixels left as they are)."""
    color = colorize(labels).astype(np.float32)
    a = np.where(labels[..., None] > 0, float(opacity), 0.0)
    return (image.astype(np.float32) * (1 - a) + color * a + 0.5).astype(np.uint8)


__all__ = ["PALETTE", "ParseResult", "parse_crops", "parse_photo", "visible_face", "overlay", "colorize"]
