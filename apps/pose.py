"""Pose tab: turn a face to a new yaw / pitch, or to the pose of a guide photo, keeping its look (Yin 2022, ch. 3).

    python -m apps.pose

The sliders are absolute angles in the front-end's frame (core.face: yaw > 0 = face turned to the image's
right, pitch > 0 = looking up), measured in the face's canonical crop (core.pipelines.pose.face_pose). An
upload sets them to the face's own pose, so a small move is a small change. After each edit the front-end
measures the output crop again and dlib compares its identity with the input's: the line under the result.
"""
from __future__ import annotations

import functools
import os

import gradio as gr
import numpy as np

from apps.common import (example_photos, face_number, gpu, image_output, load_models, model_status, photo_input,
                         require_image, send_row, serve, standalone, user_errors)
from core import face as F
from core.errors import FaceLabError
from core.imageio import load_image
from core.pipelines import pose as P

MODELS = ["pose-sampler", "pose-inpainter"]
TRAIN = "pixel attention sampling + inpainting, Yin ch. 3; trainer: python -m train.pose"
SAME_PERSON = 0.6   # dlib descriptor distance below which two faces are the same person (dlib's own threshold)
INPUT_DOTS, TARGET_DOTS = (0, 255, 128), (255, 64, 200)
STEP = 0.1           # slider step, degrees
NO_PHOTO = "Load a photo: its face's own pose shows here."


def load(progress) -> None:
    # P.load_models builds the pair (core.loading caches each), so the second loader is a cache hit
    load_models(progress, {name: P.load_models for name in MODELS})


def own_pose(photo: str, face_index: int) -> tuple[float, float]:
    """(yaw, pitch) of a face of a photo file; an upload fires two events (upload, change): detect once."""
    return _own_pose(photo, os.path.getmtime(photo), face_index)


@functools.lru_cache(maxsize=32)
def _own_pose(photo: str, mtime: float, face_index: int) -> tuple[float, float]:
    return P.face_pose(F.pick_face(F.detect_faces(load_image(photo)), face_index))


def pose_note(yaw: float, pitch: float) -> str:
    return (f"This face: yaw **{yaw:+.1f}°**, pitch **{pitch:+.1f}°**. The model is strong for changes up to "
            f"±{P.RANGE:.0f}° from it; larger changes work but lose more of the person (absolute angles: "
            f"±{P.MAX_ANGLE:.0f}° at most).")


def guide_note(yaw: float, pitch: float) -> str:
    return (f"Guide photo: yaw **{yaw:+.1f}°**, pitch **{pitch:+.1f}°**, the target (the sliders follow it; "
            "clear the guide to use them).")


def slider(value: float, interactive: bool = True) -> dict:
    # to STEP, not whole degrees: left where it starts, a slider asks for the face's own pose (no change)
    return gr.update(value=float(np.clip(round(value, 1), -P.MAX_ANGLE, P.MAX_ANGLE)), interactive=interactive)


# ------------------------------------------------------------------------------------------- events

def face_info(photo: str | None, face_index) -> tuple[tuple[float, float] | None, str]:
    """((yaw, pitch) or None, the note under the sliders). A photo without a usable face says so in the note
    (the Turn button then raises it as an error): an upload is not the moment for an error pop-up."""
    if photo is None:
        return None, NO_PHOTO
    try:
        angles = own_pose(require_image(photo), face_number(face_index))
    except FaceLabError as e:
        return None, f"**{e}**"
    return angles, pose_note(*angles)


def photo_pose(photo: str | None, face_index=0, guide: str | None = None):
    """Photo upload / face picked -> (yaw slider, pitch slider, note): the sliders start at the face's own
    pose (left alone while a guide photo sets them)."""
    angles, note = face_info(photo, face_index)
    if angles is None or guide is not None:
        return gr.skip(), gr.skip(), note
    return slider(angles[0]), slider(angles[1]), note


def photo_note(photo: str | None, face_index=0) -> str:
    """Photo changed some other way (example, sent from a tab) -> the note only; the sliders stay as they are."""
    return face_info(photo, face_index)[1]


@user_errors
def guide_changed(guide: str | None):
    """Guide photo set -> the sliders show its pose and lock; cleared -> they unlock."""
    if guide is None:
        return gr.update(interactive=True), gr.update(interactive=True), gr.skip()
    yaw, pitch = P.guide_pose(require_image(guide))
    return slider(yaw, False), slider(pitch, False), guide_note(yaw, pitch)


def frontal():
    """Frontalize button: yaw = pitch = 0, guide cleared (then the edit runs)."""
    return 0, 0, None


def measured_line(res: P.PoseResult) -> str:
    """What the front-end reads on the output crop vs what was asked, and the identity distance to the input."""
    ty, tp = res.target_pose
    sy, sp = res.source_pose
    line = f"Target yaw **{ty:+.1f}°**, pitch **{tp:+.1f}°** (input face: yaw {sy:+.1f}°, pitch {sp:+.1f}°). "
    out = P.read_crop(res.output)
    if out is None:
        return line + "Measured on the output: **no face found** by the front-end."
    line += f"Measured on the output: yaw **{out.yaw:+.1f}°**, pitch **{out.pitch:+.1f}°**. "
    inp = P.read_crop(res.crop)
    if inp is not None:
        dist = F.identity_distance(inp.descriptor, out.descriptor)
        verdict = "same person" if dist < SAME_PERSON else "not the same person"
        line += f"Identity distance to the input (dlib): **{dist:.2f}** ({verdict}; < {SAME_PERSON} = same)."
    return line


@gpu(duration=30)
@user_errors
def pose(photo: str, yaw: float | None = None, pitch: float | None = None, guide: str | None = None, face_index=0,
         progress=gr.Progress()):
    """Photo + absolute target yaw / pitch (degrees; empty = the face's own), or a guide photo whose pose wins ->
    (photo with the turned face pasted back, edited aligned crop (128 px), sampled (warped) crop, validity mask,
    input landmarks on the input crop, target landmarks on the output crop, measured line)."""
    image = load_image(require_image(photo))
    guide = require_image(guide) if guide is not None else None
    load(progress)
    res = P.edit_photo(image, yaw, pitch, guide=guide, face=face_number(face_index))
    change = max(abs(res.target_pose[0] - res.source_pose[0]), abs(res.target_pose[1] - res.source_pose[1]))
    if change > P.RANGE:
        gr.Warning(f"A change of {change:.0f}° is beyond the model's strong range (±{P.RANGE:.0f}°): "
                   "expect artefacts.")
    mask = (np.clip(res.mask, 0, 1) * 255 + 0.5).astype(np.uint8)
    return (res.result, res.output, res.warped, mask,
            P.landmark_overlay(res.crop, res.landmarks, INPUT_DOTS),
            P.landmark_overlay(res.output, res.target_landmarks, TARGET_DOTS),
            measured_line(res))


def example_run(photo: str, yaw: float, pitch: float, progress=gr.Progress()):
    """Example gallery: turn the example photo's face to the example's angles."""
    return pose(photo, yaw, pitch, None, 0, progress)


# ------------------------------------------------------------------------------------------- layout

def build() -> tuple[gr.Image | None, gr.Image | None]:
    """Lay out the tab; (photo input, edited photo) for sending between tabs, (None, None) without the models."""
    ready, note = model_status(MODELS, "Pose editing", TRAIN)
    if not ready:
        gr.Markdown(note)
        return None, None
    gr.Markdown(
        "Turns a face to a new **yaw** (left / right) and **pitch** (up / down), keeping its look (Yin 2022, "
        "ch. 3): a pixel attention sampler moves the photo's own pixels to the new pose, an inpainter fills what "
        "was hidden. Angles are absolute, in degrees: yaw > 0 = face turned to the image's right, pitch > 0 = "
        f"looking up. The model is strong for **changes up to ±{P.RANGE:.0f}°** from the face's own pose; the "
        "sliders start there once a photo is loaded. Or give a **guide photo** to match its pose. Only the face "
        "changes: the rest of the photo is kept pixel for pixel.")
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            photo = photo_input()
            face_index = gr.Number(value=0, precision=0, minimum=0, label="Face index (0 = largest)")
            yaw = gr.Slider(-P.MAX_ANGLE, P.MAX_ANGLE, value=0, step=STEP,
                            label="Target yaw, degrees (> 0 = turned to the image's right)")
            pitch = gr.Slider(-P.MAX_ANGLE, P.MAX_ANGLE, value=0, step=STEP,
                              label="Target pitch, degrees (> 0 = looking up)")
            pose_info = gr.Markdown(NO_PHOTO, label="Pose of the face")
            guide = photo_input("Guide photo (optional): match the pose of its largest face")
            with gr.Row():
                frontalize = gr.Button("Frontalize")
                run = gr.Button("Turn the face", variant="primary")
        with gr.Column(scale=2):
            result = image_output("Result (the whole photo, PNG)")
            measured = gr.Markdown(label="Measured on the output")
            crop = image_output("Edited face, aligned crop (128 px)", height=260)
    with gr.Accordion("Intermediate steps: sampled face, validity mask, landmarks", open=False):
        with gr.Row():
            warped = image_output("Sampled (warped) face, before inpainting", height=240)
            mask = image_output("Validity mask (white = pixel kept from the photo)", height=240)
            lm_in = image_output("Input crop with its landmarks", height=240)
            lm_out = image_output("Output crop with the target landmarks", height=240)
    send_row()  # sends the edited photo (or the photo) to another tab

    outputs = [result, crop, warped, mask, lm_in, lm_out, measured]
    sliders = [yaw, pitch, pose_info]
    photo.upload(photo_pose, [photo, face_index, guide], sliders, api_name=False)
    face_index.input(photo_pose, [photo, face_index, guide], sliders, api_name=False)
    photo.change(photo_note, [photo, face_index], pose_info, api_name=False)  # example, sent from a tab, cleared
    guide.change(guide_changed, guide, sliders, api_name=False)
    run.click(pose, [photo, yaw, pitch, guide, face_index], outputs, api_name="pose")
    frontalize.click(frontal, None, [yaw, pitch, guide], api_name=False).then(
        pose, [photo, yaw, pitch, guide, face_index], outputs, api_name=False)
    photos = example_photos()
    if photos:
        gr.Examples([[photos[0], 30, 0], [photos[0], -30, 0], [photos[0], 0, 15]], inputs=[photo, yaw, pitch],
                    outputs=outputs, fn=example_run, cache_examples=False, run_on_click=True,
                    label="Examples: turn the face right, left, up")
    return photo, result


def demo() -> gr.Blocks:
    return standalone(build, "FaceLab: Pose")


if __name__ == "__main__":
    serve(demo())
