"""Parse tab: the face parser's colour mask over the photo, a legend, opacity, and the label PNG to download.

    python -m apps.parse
"""
from __future__ import annotations

import io

import gradio as gr
import numpy as np
from PIL import Image

from apps.common import (cached_file, example_photos, face_number, gpu, image_output, load_models, model_status,
                         number, photo_input, require_image, serve, standalone, user_errors)
from core.imageio import load_image
from core.labels import CLASSES, PALETTE
from core.pipelines.parse import load_parser, overlay, parse_photo


def legend_html() -> str:
    items = "".join(
        f'<span style="display:inline-flex;align-items:center;margin:2px 8px 2px 0">'
        f'<span style="width:14px;height:14px;background:rgb{tuple(int(c) for c in PALETTE[i])};'
        f'border:1px solid #888;margin-right:4px"></span>{i} {name}</span>'
        for i, name in enumerate(CLASSES))
    return f'<div aria-label="Label colours">{items}</div>'


@gpu(duration=20)
@user_errors
def parse(photo: str, face_index: int = 0, opacity: float = 0.5, progress=gr.Progress()):
    """Photo -> (colour overlay, label PNG path, labels array kept for re-blending)."""
    image = load_image(require_image(photo))
    load_models(progress, {"parser": load_parser})
    opacity = number(opacity, "Opacity", 0, 1, default=0.5)
    res = parse_photo(image, face_number(face_index))
    buf = io.BytesIO()
    Image.fromarray(res.labels, mode="L").save(buf, format="PNG")
    path = cached_file(buf.getvalue(), "labels.png")  # Gradio's cache, cleaned with it (no temp folder left)
    return overlay(image, res.labels, opacity), path, (image, res.labels)


@user_errors
def reblend(state, opacity: float):
    if state is None:
        return None
    image, labels = state
    return overlay(image, labels, number(opacity, "Opacity", 0, 1, default=0.5))


def build() -> tuple[gr.Image | None, gr.Image | None]:
    """Lay out the tab; (photo input, parsed overlay) for sending between tabs, (None, None) without a model."""
    ready, note = model_status(["parser"], "Face parsing", "python -m train.parser")
    if not ready:
        gr.Markdown(note)
        return None, None
    gr.Markdown("Per-pixel face parts (the 19 CelebAMask-HQ classes) and `occluder` for anything covering the "
                "face. The label PNG holds one value per pixel (0-19), same size as the photo.")
    state = gr.State(None)
    with gr.Row():
        with gr.Column():
            photo = photo_input()
            face_index = gr.Number(value=0, precision=0, minimum=0, label="Face index (0 = largest)")
            opacity = gr.Slider(0, 1, value=0.5, step=0.05, label="Mask opacity")
            run = gr.Button("Parse", variant="primary")
        with gr.Column():
            shown = image_output("Parsed face")
            labels_file = gr.File(label="Label PNG (values 0-19)")
    gr.HTML(legend_html())
    run.click(parse, [photo, face_index, opacity], [shown, labels_file, state], api_name="parse")
    opacity.change(reblend, [state, opacity], shown, api_name=False)
    if example_photos():
        gr.Examples(example_photos(), inputs=[photo], outputs=[shown, labels_file, state],
                    fn=lambda p: parse(p, 0, 0.5), cache_examples=False, run_on_click=True, label="Example photos")
    return photo, shown


def demo() -> gr.Blocks:
    return standalone(build, "FaceLab: Parse")


if __name__ == "__main__":
    serve(demo())
