"""The CelebAMask-HQ label scheme (see `../shared/data/README.md`) plus `occluder`.

One place for class names, the colour palette used by every mask PNG the
project writes, the left/right swap a horizontal flip needs, and the class
groups that other capabilities ask for (visible face, masked-VAE face region).
"""
from __future__ import annotations

import numpy as np

CLASSES = (
    "background", "skin", "nose", "eyeglasses", "left_eye", "right_eye", "left_brow", "right_brow",
    "left_ear", "right_ear", "mouth", "upper_lip", "lower_lip", "hair", "hat", "earring", "necklace",
    "neck", "cloth", "occluder",
)
NUM_CLASSES = len(CLASSES)  # 20: 19 CelebAMask-HQ classes + occluder
OCCLUDER = 19
ID = {name: i for i, name in enumerate(CLASSES)}

# Fixed palette (RGB), index = label value. Documented in the README.
PALETTE = np.array([
    (0, 0, 0), (204, 160, 130), (230, 120, 60), (120, 120, 220), (0, 200, 255), (0, 120, 255),
    (120, 70, 30), (170, 100, 40), (255, 200, 0), (200, 170, 0), (150, 0, 60), (240, 40, 90),
    (190, 20, 60), (90, 50, 20), (0, 150, 90), (255, 255, 120), (180, 255, 180), (230, 200, 170),
    (60, 90, 160), (255, 0, 255),
], dtype=np.uint8)

# Label permutation for a horizontal flip: left/right eye, brow, ear swap.
FLIP_PERM = np.arange(NUM_CLASSES)
for a, b in (("left_eye", "right_eye"), ("left_brow", "right_brow"), ("left_ear", "right_ear")):
    FLIP_PERM[ID[a]], FLIP_PERM[ID[b]] = ID[b], ID[a]

# The 11 "face" classes the parser issue scores: skin, nose, eyes, brows, lips, mouth, hair.
FACE_CLASSES = tuple(ID[n] for n in (
    "skin", "nose", "left_eye", "right_eye", "left_brow", "right_brow", "mouth", "upper_lip", "lower_lip", "hair"))
# Visible face: skin, nose, eyes, brows, lips, mouth (no hair), minus occluders.
VISIBLE_FACE = tuple(ID[n] for n in (
    "skin", "nose", "left_eye", "right_eye", "left_brow", "right_brow", "mouth", "upper_lip", "lower_lip"))
# Masked-VAE face region (Toledo & Antonelo's code): face with hair; ears, earrings, neck, necklace, cloth excluded.
VAE_FACE = VISIBLE_FACE + (ID["eyeglasses"], ID["hair"], ID["hat"])


def colorize(labels: np.ndarray) -> np.ndarray:
    """[H, W] label image -> [H, W, 3] uint8 RGB in the fixed palette."""
    return PALETTE[np.clip(labels, 0, NUM_CLASSES - 1)]


def flip_labels(labels: np.ndarray) -> np.ndarray:
    """Mirror a label image left-right, swapping left/right classes."""
    return FLIP_PERM[labels[..., ::-1]]


def region(labels: np.ndarray, classes: tuple[int, ...]) -> np.ndarray:
    """Boolean mask of the pixels whose label is in `classes`."""
    return np.isin(labels, classes)
