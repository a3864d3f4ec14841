"""Mask-to-face tab: paint a face mask in the class colours and get a face; edit a real photo through its mask;
take parts (eyes, mouth, hair, skin...) from a second photo.

    python -m apps.mask2face
"""
from __future__ import annotations

import io

import gradio as gr
import numpy as np
from PIL import Image

from apps.common import (MaskEditor, cached_file, example_photos, face_number, gpu, image_output, load_models,
                         model_status, photo_input, require_image, send_row, serve, standalone, user_errors)
from apps.parse import legend_html
from core.errors import FaceLabError
from core.labels import ID, PALETTE, colorize
from core.models.mask2face import MODEL_CLASSES
from core.pipelines import mask2face as M
from core.pipelines.parse import load_parser

TRAIN = "mask-guided portrait editing; trainer: python -m train.mask2face"
BRUSH = [f"#{r:02x}{g:02x}{b:02x}" for r, g, b in PALETTE[:MODEL_CLASSES].tolist()]  # one colour per class


def editor_value(labels: np.ndarray) -> dict:
    """Labels -> the editor's value: the colour mask as the (opaque) background, nothing painted yet."""
    colour = colorize(labels)
    return {"background": colour, "layers": [], "composite": colour}


def mask_of(editor) -> np.ndarray:
    """The editor's value (dict with the flattened `composite`), or a plain image / path -> labels [H, W] uint8."""
    image = editor
    if isinstance(editor, dict):
        image = editor.get("composite")
        if image is None:
            image = editor.get("background")
    if image is None:
        raise FaceLabError("Draw a mask first: load the example mask, upload a photo or a label PNG, or paint one.")
    return M.read_mask(image)


def load(progress, parser: bool = False) -> None:
    """Load the models a request needs, with a progress note in the browser the first time (apps.common)."""
    loaders = {"mask2face": M.load_model}
    if parser:
        loaders["parser"] = load_parser
    load_models(progress, loaders)


def label_png(labels: np.ndarray) -> str:
    """The mask as a single-channel label PNG (values 0-19) in Gradio's cache (cleaned with it), for download."""
    buf = io.BytesIO()
    Image.fromarray(labels, mode="L").save(buf, format="PNG")
    return cached_file(buf.getvalue(), "mask.png")


@gpu(duration=20)
@user_errors
def start_from_photo(photo: str, face_index=0, progress=gr.Progress()) -> dict:
    """Photo -> the parsed mask of its aligned face (256 px) in the editor."""
    require_image(photo)
    load_models(progress, {"parser": load_parser})
    return editor_value(M.mask_from_photo(require_image(photo), face_number(face_index)).labels)


def example_mask(progress=gr.Progress()) -> dict:
    """The bundled example photo, parsed into a mask (made at run time, nothing from the datasets is shipped)."""
    photos = example_photos()
    if not photos:
        raise gr.Error("No example photo is bundled (apps/examples).")
    return start_from_photo(photos[0], 0, progress)


@user_errors
def load_mask_file(path: str | None) -> dict:
    """An uploaded label PNG (0-19) or colour mask -> the editor, in colours."""
    if not path:
        raise FaceLabError("Upload a label PNG (values 0-19) or a colour mask.")
    return editor_value(M.read_mask(path))


def transfer_args(components, photo_b) -> dict:
    if components and photo_b is None:
        raise FaceLabError("Upload photo B to take the ticked parts from (or untick them).")
    return dict(components=list(components or []), from_image=photo_b if components else None)


@gpu(duration=30)
@user_errors
def make_face(editor, style_photo=None, seed=0, components=None, photo_b=None, progress=gr.Progress()):
    """Mask (+ style photo, seed, parts of photo B) -> (face at the mask's size, mask in colours, label PNG)."""
    labels = mask_of(editor)
    load(progress, parser=style_photo is not None or bool(components))
    res = M.generate(labels, style_image=style_photo, seed=0 if seed is None else seed,
                     **transfer_args(components, photo_b))
    return res.image, colorize(res.labels), label_png(res.labels)


@gpu(duration=40)
@user_errors
def edit_photo(photo, editor, face_index=0, seed=0, components=None, photo_b=None, region="changed",
               progress=gr.Progress()):
    """Photo + its edited mask (+ parts of photo B) -> (edited photo, regenerated crop, mask in colours, label PNG).

    The photo keeps its own styles; only the changed / transferred parts are pasted back (region "changed")."""
    image = require_image(photo)
    empty = editor is None or (isinstance(editor, dict) and editor.get("composite") is None
                               and editor.get("background") is None)
    labels = None if empty else mask_of(editor)                    # empty editor: the photo's own mask
    load(progress, parser=True)
    res = M.edit_photo(image, labels, face_number(face_index), 0 if seed is None else seed,
                       region=region, **transfer_args(components, photo_b))
    return res.pasted, res.generated, colorize(res.new_labels), label_png(res.new_labels)


def example_run(photo: str, progress=gr.Progress()):
    """Example gallery: parse the photo into the editor and draw a face for that mask (seed 0)."""
    value = start_from_photo(photo, 0, progress)
    return (value,) + make_face(value, None, 0, [], None, progress)


def build() -> tuple[gr.Image | None, gr.Image | None]:
    """Lay out the tab; (photo input, generated face) for sending between tabs, (None, None) without the model."""
    ready, note = model_status(["mask2face"], "Mask-to-face", TRAIN)
    if not ready:
        gr.Markdown(note)
        return None, None
    gr.Markdown(
        "Paint a face mask, one colour per part, and get a face drawn to it (SEAN-style generator, 256 px). "
        "Start from the **example mask**, a **photo** (parsed automatically) or an uploaded **label PNG**. "
        "Styles come from a **style photo**, or, without one, from the **seed** (same seed, same face). "
        "Tick parts to take them from **photo B**. **Edit the photo** regenerates the photo's own face under "
        "the edited mask and pastes the changed parts back into it.")
    with gr.Row():
        with gr.Column(scale=1, min_width=240):
            photo = photo_input("Photo (its parsed mask goes to the editor)")
            face_index = gr.Number(value=0, precision=0, minimum=0, label="Face index (0 = largest)")
            mask_file = gr.File(label="Or a label PNG (0-19) / colour mask", file_types=["image"], type="filepath")
            example = gr.Button("Load the example mask")
        with gr.Column(scale=2):
            editor = MaskEditor(
                label="Mask (paint with the class colours)", type="numpy", image_mode="RGBA", format="png",
                sources=["upload", "clipboard"], canvas_size=(256, 256), transforms=(), layers=False, height=460,
                brush=gr.Brush(colors=BRUSH, default_color=BRUSH[ID["skin"]], color_mode="fixed", default_size=8))
            gr.HTML(legend_html())
            gr.Markdown("Unpainted (transparent) canvas and `occluder` count as background.")
        with gr.Column(scale=2):
            face = image_output("Generated face")
            edited = image_output("Edited photo")
    with gr.Row():
        style = photo_input("Style photo (optional; empty = styles from the seed)")
        with gr.Column():
            seed = gr.Number(value=0, precision=0, minimum=0, label="Seed")
            parts = gr.CheckboxGroup(list(M.COMPONENTS), label="Take these parts from photo B")
            region = gr.Radio(list(M.REGIONS), value="changed", label="Edit the photo: paste back",
                              info="changed = only the edited / transferred parts; face = the whole new face")
            run = gr.Button("Generate face", variant="primary")
            run_photo = gr.Button("Edit the photo")
        photo_b = photo_input("Photo B (parts)")
    with gr.Row():
        mask_shown = image_output("Mask used (colours)", height=300)
        mask_png = gr.File(label="Mask used: label PNG (values 0-19)")
    send_row()  # sends the generated face (or the photo) to another tab

    photo.upload(start_from_photo, [photo, face_index], editor, api_name=False)
    mask_file.upload(load_mask_file, mask_file, editor, api_name=False)
    example.click(example_mask, None, editor, api_name=False)
    run.click(make_face, [editor, style, seed, parts, photo_b], [face, mask_shown, mask_png], api_name="mask2face")
    run_photo.click(edit_photo, [photo, editor, face_index, seed, parts, photo_b, region],
                    [edited, face, mask_shown, mask_png], api_name="mask2face_photo")
    if example_photos():
        gr.Examples(example_photos(), inputs=[photo], outputs=[editor, face, mask_shown, mask_png], fn=example_run,
                    cache_examples=False, run_on_click=True, label="Example photo: click to parse it and draw a face")
    return photo, face


def demo() -> gr.Blocks:
    return standalone(build, "FaceLab: Mask to face")


if __name__ == "__main__":
    serve(demo())
