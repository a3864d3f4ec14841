"""Analyze tab: detected faces with landmarks, head pose, identity descriptor and the aligned crop.

    python -m apps.analyze      # this tab alone on 127.0.0.1:7860
"""
from __future__ import annotations

import gradio as gr
import numpy as np

from apps.common import (example_photos, face_number, image_output, photo_input, require_image, serve, standalone,
                         user_errors)
from core import face as F
from core.pipelines.analyze import analyze_photo, draw_faces


@user_errors
def analyze(photo: str, face_index: int = 0) -> tuple[np.ndarray, np.ndarray, list[list]]:
    """Photo -> (annotated photo, aligned 256 px crop of the chosen face, one table row per face)."""
    res = analyze_photo(require_image(photo))
    face = F.pick_face(res.faces, face_number(face_index))
    crop = F.align_face(res.image, face, 256).image
    rows = [[i, f"{f.bbox}", round(f.score, 2), f.detector, round(f.yaw, 1), round(f.pitch, 1), round(f.roll, 1),
             visible_points(f)] for i, f in enumerate(res.faces)]
    return draw_faces(res.image, res.faces, selected=face_number(face_index)), crop, rows


def visible_points(face: F.Face) -> str:
    """'61/68' points the landmark net calls visible (mean confidence), or '-' for dlib's points."""
    if face.visibility is None:
        return "-"
    return f"{int((face.visibility >= 0.5).sum())}/68 (conf. {float(face.visibility.mean()):.2f})"


def build() -> tuple[gr.Image, gr.Image]:
    """Lay out the tab inside the current Blocks; (photo input, aligned crop) for sending between tabs."""
    gr.Markdown("Upload a photo: every face is detected (our detector and 68-point landmark network, trained here "
                "to see through masks, glasses and hands and to reach full profiles; dlib when they find nothing), "
                "with its 68 landmarks (red: hidden under something or on the far side of the head), head pose "
                "(yaw > 0 = turned to the image's right, pitch > 0 = looking up, roll > 0 = tilted "
                "counter-clockwise) and the canonical 256 px crop every other tab works on.")
    with gr.Row():
        with gr.Column():
            photo = photo_input()
            face_index = gr.Number(value=0, precision=0, minimum=0, label="Face index (0 = largest)")
            run = gr.Button("Analyze", variant="primary")
        with gr.Column():
            annotated = image_output("Detected faces")
            crop = image_output("Aligned crop (256 px)")
    table = gr.Dataframe(headers=["face", "bbox", "score", "detector", "yaw", "pitch", "roll", "visible points"],
                         label="Faces",
                         interactive=False)
    run.click(analyze, [photo, face_index], [annotated, crop, table], api_name="analyze")
    if example_photos():
        gr.Examples(example_photos(), inputs=[photo], outputs=[annotated, crop, table],
                    fn=lambda p: analyze(p, 0), cache_examples=False, run_on_click=True, label="Example photos")
    return photo, crop


def demo() -> gr.Blocks:
    return standalone(build, "FaceLab: Analyze")


if __name__ == "__main__":
    serve(demo())
