"""Analyze: every face in a photo with landmarks, pose, identity descriptor and aligned crop."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import face as F
from ..imageio import load_image


@dataclass
class AnalyzeResult:
    image: np.ndarray                 # [H, W, 3] uint8, the photo as read (EXIF-rotated)
    faces: list[F.Face]               # largest first
    embeddings: list[np.ndarray]      # [128] per face, empty when not asked for

    def to_json(self) -> dict:
        h, w = self.image.shape[:2]
        faces = []
        for i, f in enumerate(self.faces):
            d = {"bbox": [int(v) for v in f.bbox], "score": round(float(f.score), 4), "detector": f.detector,
                 "landmarks68": [[round(float(x), 2), round(float(y), 2)] for x, y in f.landmarks],
                 "yaw": round(f.yaw, 2), "pitch": round(f.pitch, 2), "roll": round(f.roll, 2)}
            if f.visibility is not None:   # our landmark net: probability that each point is on visible skin
                d["visibility68"] = [round(float(v), 3) for v in f.visibility]
            if self.embeddings:
                d["embedding"] = [round(float(v), 6) for v in self.embeddings[i]]
            faces.append(d)
        return {"width": w, "height": h, "faces": faces}


def analyze_photo(source, embeddings: bool = False) -> AnalyzeResult:
    """Read any photo and find its faces; `source` is a path, bytes, PIL image or array."""
    image = load_image(source)
    faces = F.detect_faces(image)
    embs = [F.face_descriptor(image, f) for f in faces] if embeddings else []
    return AnalyzeResult(image=image, faces=faces, embeddings=embs)


def draw_faces(image: np.ndarray, faces: list[F.Face], selected: int | None = None) -> np.ndarray:
    """Photo with each face's box, index and 68 landmarks drawn on it (points the landmark net calls hidden,
    under a mask/glasses/hand or on the far side of the head, in red)."""
    import cv2

    out = image.copy()
    t = max(1, round(max(image.shape[:2]) / 400))
    for i, f in enumerate(faces):
        color = (255, 80, 80) if i == selected else (80, 220, 80)
        x0, y0, x1, y1 = f.bbox
        cv2.rectangle(out, (x0, y0), (x1, y1), color, t)
        cv2.putText(out, str(i), (x0, max(0, y0 - 4 * t)), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * t, color, t)
        vis = f.visibility if f.visibility is not None else np.ones(len(f.landmarks))
        for (x, y), v in zip(f.landmarks, vis):
            cv2.circle(out, (int(round(x)), int(round(y))), t, (255, 255, 0) if v >= 0.5 else (255, 40, 40), -1)
    return out
