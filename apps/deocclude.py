"""De-occlusion tab: find what covers the face (sunglasses, a mask, a hand...), let the user correct that mask with
a brush, and inpaint it (Yin 2022, ch. 5).

    python -m apps.deocclude
"""
from __future__ import annotations

import os
import tempfile

import cv2
import gradio as gr
import numpy as np

from apps.common import (MaskEditor, example_photos, face_number, gpu, image_output, load_models, mask_input,
                         model_status, photo_input, require_image, serve, standalone, user_errors)
from core.errors import FaceLabError
from core.imageio import load_image
from core.pipelines import deocclude as D
from core.pipelines.parse import load_parser

TRAIN = "segmentation-guided inpainting, Yin ch. 5; trainer: python -m train.deocclusion"
# The editor is a square canvas of EDITOR px holding the photo letterboxed (scaled to fit, centred). Gradio's
# ImageEditor places a layer centred on its canvas_size and the background at the canvas origin, so a layer
# only lines up with a background of exactly the canvas size (checked in chromium: a 512 px photo in the
# default 800 px canvas shows its layer 144 px off, and canvas_size cannot be changed after the fact).
EDITOR = 768
PAD = (40, 40, 40)                  # the letterbox colour
MASK_RGBA = (255, 0, 64, 150)       # how the mask looks in the editor's layer (and the brush)
BRUSH = ("#ff0040", 0.6)


# ------------------------------------------------------------------------------------------- editor <-> mask

def letterbox(h: int, w: int) -> tuple[int, int, int, int]:
    """Where a photo of h x w sits in the EDITOR canvas: (x0, y0, width, height)."""
    k = EDITOR / max(h, w)
    nw, nh = max(1, min(EDITOR, round(w * k))), max(1, min(EDITOR, round(h * k)))
    return (EDITOR - nw) // 2, (EDITOR - nh) // 2, nw, nh


def editor_value(image: np.ndarray, mask: np.ndarray) -> dict:
    """Photo + photo-sized bool mask -> the editor's value: the letterboxed photo, the mask as a red layer."""
    h, w = image.shape[:2]
    x0, y0, nw, nh = letterbox(h, w)
    bg = np.empty((EDITOR, EDITOR, 3), np.uint8)
    bg[:] = PAD
    bg[y0:y0 + nh, x0:x0 + nw] = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if nw < w else
                                            cv2.INTER_LINEAR)
    layer = np.zeros((EDITOR, EDITOR, 4), np.uint8)
    m = cv2.resize(mask.astype(np.uint8), (nw, nh), interpolation=cv2.INTER_NEAREST_EXACT) > 0
    layer[y0:y0 + nh, x0:x0 + nw][m] = MASK_RGBA
    a = layer[..., 3:4].astype(np.float32) / 255
    composite = (bg * (1 - a) + layer[..., :3] * a + 0.5).astype(np.uint8)
    return {"background": bg, "layers": [layer], "composite": composite}


def editor_mask(editor, image_hw: tuple[int, int]) -> np.ndarray | None:
    """The editor's value -> photo-sized bool mask (painted = remove), or None when it holds no photo."""
    if not isinstance(editor, dict) or editor.get("background") is None:
        return None
    bg = np.asarray(editor["background"])
    painted = np.zeros(bg.shape[:2], bool)
    for layer in editor.get("layers") or []:
        layer = np.asarray(layer)
        if layer.ndim == 3 and layer.shape[2] == 4:
            p = layer[..., 3] >= 32
        else:
            p = layer.reshape(layer.shape[0], layer.shape[1], -1).max(-1) > 0
        if p.shape != painted.shape:
            p = cv2.resize(p.astype(np.uint8), painted.shape[::-1], interpolation=cv2.INTER_NEAREST_EXACT) > 0
        painted |= p
    if painted.shape != (EDITOR, EDITOR):  # not our canvas: stretch it over the photo
        painted = cv2.resize(painted.astype(np.uint8), (EDITOR, EDITOR), interpolation=cv2.INTER_NEAREST_EXACT) > 0
    h, w = image_hw
    x0, y0, nw, nh = letterbox(h, w)
    inner = painted[y0:y0 + nh, x0:x0 + nw].astype(np.uint8)
    return cv2.resize(inner, (w, h), interpolation=cv2.INTER_NEAREST_EXACT) > 0


def mask_png(mask: np.ndarray) -> np.ndarray:
    return mask.astype(np.uint8) * 255


def canvas_mask(editor) -> np.ndarray | None:
    """What is painted on the editor's layers, bool [EDITOR, EDITOR] (None: no photo in the editor)."""
    if not isinstance(editor, dict) or editor.get("background") is None:
        return None
    return editor_mask(editor, (EDITOR, EDITOR))  # the full canvas: a square "photo" fills it exactly


def pack(photo: str, mask: np.ndarray, value: dict) -> dict:
    """What the tab remembers about the detection shown in the editor (mask bit-packed: photos can be large)."""
    return {"photo": photo, "shape": mask.shape, "mask": np.packbits(mask), "canvas": canvas_mask(value)}


def edited_mask(state: dict, editor) -> np.ndarray:
    """The detected full-resolution mask with the user's edits (strokes added, parts erased) applied.

    Untouched parts keep the detection's own resolution; only what was painted or erased comes from the
    EDITOR-px canvas."""
    h, w = state["shape"]
    detected = np.unpackbits(state["mask"], count=h * w).reshape(h, w).astype(bool)
    now = canvas_mask(editor)
    added, erased = now & ~state["canvas"], state["canvas"] & ~now
    erased = cv2.dilate(erased.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)  # no slivers left over
    to_photo = lambda m: editor_mask({"background": m, "layers": [m.astype(np.uint8)]}, (h, w))  # noqa: E731
    return (detected | to_photo(added)) & ~to_photo(erased)


# ------------------------------------------------------------------------------------------- events

def load(progress) -> None:
    load_models(progress, {"parser": load_parser, "deocclusion": D.load_model})


def find_occlusion(image: np.ndarray, face_index, hair, keep_glasses, progress) -> np.ndarray:
    """Photo array -> photo-sized bool occlusion mask (parser + landmark face region)."""
    load_models(progress, {"parser": load_parser})
    occ = D.detect_occlusion(image, face_number(face_index), hair=bool(hair), glasses=not keep_glasses)
    if not occ.photo_mask.any():
        gr.Info("No occlusion found on this face. Paint over what to remove, then run.")
    return occ.photo_mask


@gpu(duration=20)
@user_errors
def detect(photo: str, face_index=0, hair: bool = False, keep_glasses: bool = False, progress=gr.Progress()):
    """Photo -> (editor holding the photo and its detected occlusion mask, the mask over the photo, state)."""
    if photo is None:
        return None, None, None
    image = load_image(require_image(photo))
    found = find_occlusion(image, face_index, hair, keep_glasses, progress)
    value = editor_value(image, found)
    return value, D.overlay_mask(image, found), pack(photo, found, value)


@gpu(duration=20)
@user_errors
def prepare(photo: str, editor, state=None, face_index=0, hair: bool = False, keep_glasses: bool = False,
            progress=gr.Progress()):
    """Run button, step 1: the mask to remove -> (editor, mask PNG for step 2, state).

    The detection shown in the editor with the user's edits; detected afresh when the editor holds nothing
    for this photo."""
    image = load_image(require_image(photo))
    if state is None or state.get("photo") != photo or canvas_mask(editor) is None:
        found = find_occlusion(image, face_index, hair, keep_glasses, progress)
        value = editor_value(image, found)
        return value, mask_png(found), pack(photo, found, value)
    return gr.skip(), mask_png(edited_mask(state, editor)), gr.skip()


@gpu(duration=30)
@user_errors
def deocclude(photo: str, mask=None, face_index=0, hair: bool = False, keep_glasses: bool = False,
              progress=gr.Progress()):
    """Photo (+ optional mask image, white = remove, the photo's size) -> (before/after pair, result photo,
    removed region over the photo, aligned crop: input | mask | filled).

    Without a mask, the occlusion is detected automatically (parser + landmark face region)."""
    image = load_image(require_image(photo))
    load(progress)
    user = None
    if isinstance(mask, str) and mask and not os.path.exists(mask):
        raise FaceLabError("The mask image could not be opened: upload it again (white = remove, the photo's size).")
    if mask is not None and not (isinstance(mask, str) and not mask):
        user = D.read_mask(mask, image.shape[:2])
    res = D.deocclude_photo(image, face_number(face_index), mask=user, hair=bool(hair), glasses=not keep_glasses)
    used = D.mask_to_photo(res.mask, res.matrix, image.shape[:2]) if user is None else user
    if not res.mask.any():
        gr.Warning("Nothing to remove: the mask is empty on this face. Paint over what to remove, then run.")
    crops = np.concatenate([res.crop, D.overlay_mask(res.crop, res.mask), res.inpainted], axis=1)
    return (image, res.result), res.result, D.overlay_mask(image, used), crops


# ------------------------------------------------------------------------------------------- examples

def example_files() -> list[str]:
    """Occluded variants of the bundled example photo, drawn at run time: sunglasses, a face mask, clear eyeglasses,
    a lock of hair over an eye."""
    photos = [p for p in example_photos() if "astronaut" in os.path.basename(p)] or example_photos()
    if not photos:
        return []
    folder = os.path.join(tempfile.gettempdir(), "facelab_deocclude_examples")
    drawings = {"sunglasses": D.draw_sunglasses, "face_mask": D.draw_face_mask, "eyeglasses": D.draw_eyeglasses,
                "hair_over_eye": D.draw_hair_lock}
    out = [os.path.join(folder, f"astronaut_{name}.png") for name in drawings]
    if all(os.path.exists(p) and os.path.getmtime(p) >= os.path.getmtime(photos[0]) for p in out):
        return out
    try:
        from PIL import Image

        from core import face as F

        image = load_image(photos[0])
        face = F.pick_face(F.detect_faces(image))
        os.makedirs(folder, exist_ok=True)
        for path, draw in zip(out, drawings.values()):
            Image.fromarray(draw(image, face)).save(path)
        return out
    except (FaceLabError, OSError):
        return []


def example_run(photo: str):
    """Example gallery: remove the occlusion of an example (the photo's change event fills the editor)."""
    return deocclude(photo, None, 0, False, False)


# ------------------------------------------------------------------------------------------- layout

def build():
    """The tab; -> (photo input, result photo) for the app to wire, or (None, None) without the models."""
    ready, note = model_status(["parser", "deocclusion"], "De-occlusion", TRAIN)
    if not ready:
        gr.Markdown(note)
        return None, None
    gr.Markdown(
        "Removes what covers a face (sunglasses, a face mask, a hand, a microphone...) and paints the face back "
        "(Yin 2022, ch. 5). The **occlusion mask** is found automatically: the parser's visible face and "
        "occluders inside the whole-face region given by the landmarks. **Correct it with the brush** (paint = "
        "remove, eraser = keep), then **Remove occlusion**. Only the masked pixels change.")
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            photo = photo_input()
            face_index = gr.Number(value=0, precision=0, minimum=0, label="Face index (0 = largest)")
            hair = gr.Checkbox(False, label="Hair over the eyes, nose and mouth is occlusion too")
            keep_glasses = gr.Checkbox(False, label="Keep clear glasses (do not remove eyeglasses)")
            with gr.Row():
                find = gr.Button("Detect occlusion")
                run = gr.Button("Remove occlusion", variant="primary")
        with gr.Column(scale=2):
            editor = MaskEditor(
                label="Occlusion mask: paint over what to remove, erase what to keep", type="numpy",
                image_mode="RGBA", format="png", sources=[], transforms=(), layers=False, height=460,
                canvas_size=(EDITOR, EDITOR), fixed_canvas=True,
                brush=gr.Brush(colors=[BRUSH], default_color=BRUSH, color_mode="fixed", default_size=12),
                eraser=gr.Eraser(default_size=12), interactive=True)
    with gr.Row():
        slider = gr.ImageSlider(label="Before / after", type="numpy", format="png",
                                buttons=["download", "fullscreen"], max_height=520)
        result = image_output("Result (the whole photo, PNG)")
    with gr.Row():
        shown = image_output("Removed region over the photo")
        crops = image_output("Aligned face: input | mask | filled (256 px)")
    mask = mask_input("Mask (white = remove)")  # a file path, read by D.read_mask (not decoded by Gradio)

    state = gr.State(None)
    options = [face_index, hair, keep_glasses]
    shown_detection = [editor, shown, state]
    photo.change(detect, [photo, *options], shown_detection, api_name=False)  # upload, example, sent from a tab
    find.click(detect, [photo, *options], shown_detection, api_name=False)
    for box in (hair, keep_glasses):
        box.input(detect, [photo, *options], shown_detection, api_name=False)
    run.click(prepare, [photo, editor, state, *options], [editor, mask, state], api_name=False).success(
        deocclude, [photo, mask, *options], [slider, result, shown, crops], api_name="deocclude")
    examples = example_files()
    if examples:
        gr.Examples(examples, inputs=[photo], outputs=[slider, result, shown, crops], fn=example_run,
                    cache_examples=False, run_on_click=True, label="Examples (occlusions drawn at run time)")
    return photo, result


def demo() -> gr.Blocks:
    return standalone(build, "FaceLab: De-occlusion")


if __name__ == "__main__":
    serve(demo())
