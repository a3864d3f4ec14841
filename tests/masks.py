"""Face masks drawn in code, for the Mask-to-face tests (no dataset needed): labels and their files.

    labels = face_mask(300, 300)                  # [H, W] uint8, the label scheme of core/labels.py
    path = save_mask(labels, folder, "colour")    # colour PNG in the app's palette; "labels": L-mode PNG 0-19
    editor(path)                                  # the gr.ImageEditor value a gradio_client call sends
"""
from __future__ import annotations

import os

import numpy as np
from PIL import Image

from core.labels import ID, PALETTE


def face_mask(width: int = 256, height: int | None = None) -> np.ndarray:
    """A cartoon face filling a width x height frame: background, hair, skin, brows, eyes, nose, lips, neck,
    cloth (drawn in a 256 x 256 frame, stretched to the size asked for)."""
    height = width if height is None else height
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    yy, xx = yy * 256 / height, xx * 256 / width
    lab = np.zeros((height, width), np.uint8)

    def ellipse(cy, cx, ry, rx):
        return (yy - cy) ** 2 / ry ** 2 + (xx - cx) ** 2 / rx ** 2 < 1

    lab[ellipse(110, 128, 95, 80)] = ID["hair"]
    lab[(yy > 190) & (np.abs(xx - 128) < 35)] = ID["neck"]
    lab[yy > 235] = ID["cloth"]
    lab[ellipse(135, 128, 80, 62)] = ID["skin"]
    lab[ellipse(106, 100, 3, 14)] = ID["left_brow"]
    lab[ellipse(106, 156, 3, 14)] = ID["right_brow"]
    lab[ellipse(120, 100, 6, 12)] = ID["left_eye"]
    lab[ellipse(120, 156, 6, 12)] = ID["right_eye"]
    lab[(yy > 120) & (yy < 165) & (np.abs(xx - 128) < 10)] = ID["nose"]
    lab[ellipse(185, 128, 5, 22)] = ID["upper_lip"]
    lab[ellipse(194, 128, 5, 20)] = ID["lower_lip"]
    return lab


def save_mask(labels: np.ndarray, folder, kind: str = "colour", name: str | None = None) -> str:
    """Write `labels` as a colour mask in the palette ("colour") or a single-channel label PNG ("labels")."""
    image = Image.fromarray(PALETTE[labels]) if kind == "colour" else Image.fromarray(labels, mode="L")
    path = os.path.join(str(folder), name or f"mask_{kind}_{labels.shape[1]}x{labels.shape[0]}.png")
    image.save(path)
    return path


def editor(path: str | None) -> dict:
    """The Mask editor's value (gr.ImageEditor) for a gradio_client call: the file as background and composite,
    nothing painted; None: an empty editor."""
    from gradio_client import handle_file

    if path is None:
        return {"background": None, "layers": [], "composite": None, "id": None}
    return {"background": handle_file(path), "layers": [], "composite": handle_file(path), "id": None}
