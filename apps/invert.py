"""Invert & edit tab: a photo (or a random face) into the StyleGAN2's latent space, attribute sliders on it, the
edit pasted back into the photo (issue 5).

    python -m apps.invert

The latent code travels as a .npz file (a gr.File the user can download and upload again, and that the /edit
API takes), rather than as a gr.State that API clients cannot send.
"""
from __future__ import annotations

import functools
import os

import gradio as gr
import numpy as np

from apps.common import (cached_file, example_photos, face_number, gpu, image_output, load_models, model_status,
                         number, photo_input, require_image, send_row, serve, standalone, user_errors)
from core.errors import FaceLabError
from core.imageio import load_image
from core.pipelines import gan as GAN

TRAIN = ("StyleGAN2 + MTV-TSA encoder + InterFaceGAN directions; trainers: python -m train.stylegan, "
         "train.encoder, train.directions")
CAPABILITY = "Invert & edit"
SLIDER_RANGE = 8.0      # +-3 units spans the generator's faces; the weaker directions (gender, smile, beard) need more
RANGES = {"yaw": 4.0,   # 1 unit turns the face ~8-11 deg (train.eval_gan), +-4 is about what the generator draws
          "pitch": 4.0,
          "age": 5.0,   # ~4.6 years per unit on inverted photos (train.eval_gan): +-5 is +-23 years
          "bangs": 5.0}  # a fringe from ~+2; beyond +5 the face breaks up (eyeglasses: from ~+4, the default range)
MAX_STEPS = 100         # refinement steps offered in the tab (the CLI allows more)
DEFAULT_STEPS = 50      # the encoder alone gives a look-alike (dlib: same person in 0-3% of held-out faces),
                        # 50 steps the person in 83% (train.eval_gan); ~9 s on a 2-core CPU, <1 s on a GPU


def slider_range(name: str) -> float:
    """The +- range of a slider in the tab (units of its direction)."""
    return RANGES.get(name, SLIDER_RANGE)


def load(progress) -> None:
    """Load the generator and the encoder, with a progress note in the browser the first time (apps.common)."""
    load_models(progress, {GAN.GENERATOR: lambda: GAN.load_models(encoder=False, directions=False),
                           GAN.ENCODER: lambda: GAN.load_models(encoder=True, directions=False)})


def code_file(code: GAN.LatentCode) -> str:
    """The code as a .npz in Gradio's cache, cleaned with it (download; the input of the edit events)."""
    return cached_file(GAN.dump_code(code), "latent_code.npz")


def quality_text(q: GAN.Quality, steps: int) -> str:
    how = f"encoder + {steps} refinement steps" if steps else "encoder only"
    note = "" if q.face_found else " (dlib found no face in the reconstruction: it was read at the input's landmarks)"
    return (f"**Reconstruction** ({how}), on the 128 px aligned crop: PSNR **{q.psnr:.2f} dB**, SSIM "
            f"**{q.ssim:.3f}**, dlib identity distance **{q.identity_distance:.3f}** (same person below 0.6), "
            f"cosine {q.identity_similarity:.3f}{note}.")


@functools.lru_cache(maxsize=2)
def _photo(path: str, mtime: float) -> np.ndarray:
    return load_image(path)  # decoded once per photo: every slider move pastes into it


def photo_array(photo) -> np.ndarray | None:
    if not isinstance(photo, str) or not os.path.exists(photo):
        return None
    return _photo(photo, os.path.getmtime(photo))


@gpu(duration=60)
@user_errors
def invert(photo: str, face_index=0, refine=0, progress=gr.Progress()):
    """Photo -> (aligned crop, reconstruction, reconstruction pasted back, quality text, code .npz)."""
    image = load_image(require_image(photo))
    load(progress)
    steps = int(number(refine, "Refinement steps", 0, GAN.MAX_REFINE, default=0))
    if not 0 <= steps <= GAN.MAX_REFINE:
        raise FaceLabError(f"Refinement steps must be between 0 and {GAN.MAX_REFINE}.")

    def report(step, total, loss):
        progress((step, total), desc=f"Refining the code (loss {loss:.3f})", unit="steps")

    res = GAN.invert_photo(image, refine=steps, progress=report, face=face_number(face_index))
    return res.crop, res.reconstruction, res.pasted, quality_text(res.quality, steps), code_file(res.code)


@gpu(duration=10)
@user_errors
def gan_sample(seed=0, truncation=0.7, progress=gr.Progress()):
    """Seed, truncation -> (None, the face, None, a note, code .npz): the same outputs as `invert`, no photo."""
    if seed is None:
        raise FaceLabError("Enter a seed (a whole number).")
    load_models(progress, {GAN.GENERATOR: lambda: GAN.load_models(encoder=False, directions=False)})
    res = GAN.sample(seed, number(truncation, "Truncation", 0, 1, default=0.7))
    note = f"**Random face**, seed {int(seed)}, truncation {res.code.meta['truncation']:g}: nothing to paste back."
    return None, res.image, None, note, code_file(res.code)


# No @gpu: a slider move is one synthesis pass on the CPU (core.pipelines.gan.device); attaching a ZeroGPU
# device per move would only add its queueing.
@user_errors
def edit(code: str | None, photo: str | None, *values):
    """Code .npz, photo, slider values (the sliders' order) -> (edited face, edit pasted into the photo or None).

    The photo is pasted into only when it is the one the code was inverted from (same size)."""
    if not code or not os.path.exists(code):
        raise FaceLabError("Invert a photo or sample a face first (or upload a latent code .npz).")
    latent = GAN.load_code(code)
    names = [s.name for s in GAN.sliders()]
    if len(values) > len(names):
        raise FaceLabError(f"{len(values)} slider values for {len(names)} sliders ({', '.join(names)}).")
    image = GAN.edit(latent, {n: number(v, f"Slider {n}", -GAN.MAX_UNITS, GAN.MAX_UNITS, default=0.0)
                              for n, v in zip(names, values)})
    image_in = photo_array(photo)
    if latent.matrix is None or image_in is None or tuple(image_in.shape[:2]) != tuple(latent.source_size or ()):
        return image, None
    return image, GAN.paste(image_in, image, latent)


def example_run(photo: str, progress=gr.Progress()):
    """Example gallery: invert the photo, sliders back to 0."""
    outputs = invert(photo, 0, DEFAULT_STEPS, progress)
    return (*outputs, outputs[1], *[0.0] * len(ready_sliders()))


def ready_sliders() -> list[GAN.Slider]:
    import hub

    return GAN.sliders() if hub.available(GAN.DIRECTIONS) else []


def build() -> tuple[gr.Image | None, gr.Image | None]:
    """Lay out the tab; (photo input, edit pasted into the photo) for sending between tabs."""
    ready, note = model_status([GAN.GENERATOR, GAN.ENCODER], CAPABILITY, TRAIN)
    if not ready:
        gr.Markdown(note)
        return None, None
    specs = ready_sliders()
    gr.Markdown(
        "The photo's aligned face is encoded into the latent space of a **StyleGAN2** (128 px) by the **MTV-TSA "
        "encoder** (Yu & Wang); **refinement** optimises that code further for the photo (slower, closer, a "
        "little less editable). **Sliders** move the code along attribute directions (InterFaceGAN): 1 unit = "
        "one standard deviation of the generator's faces along the direction, 0 = no change. Or **sample** a "
        "random face and edit that.")
    if not specs:
        gr.Markdown(model_status([GAN.DIRECTIONS], "Attribute editing", "python -m train.directions")[1])
    with gr.Row():
        with gr.Column(scale=1, min_width=260):
            photo = photo_input()
            face_index = gr.Number(value=0, precision=0, minimum=0, label="Face index (0 = largest)")
            refine = gr.Slider(0, MAX_STEPS, value=DEFAULT_STEPS, step=5, label="Refinement steps (0 = encoder only)",
                               info="Adam on the code; about 0.2 s a step on an idle 2-core CPU, milliseconds on a GPU")
            run = gr.Button("Invert", variant="primary")
        with gr.Column(scale=2):
            pasted = image_output("Edit pasted into the photo")
            quality = gr.Markdown()
    with gr.Row():  # 128 px images: small boxes
        crop = image_output("Aligned input (128 px)", height=240)
        recon = image_output("Reconstruction", height=240)
        edited = image_output("Edited face", height=240)
    with gr.Row():
        with gr.Column(scale=2):
            sliders = [gr.Slider(-slider_range(s.name), slider_range(s.name), value=0, step=0.1, label=s.name,
                                 info=s.info)
                       for s in specs]
            reset = gr.Button("Reset sliders", size="sm") if specs else None
        with gr.Column(scale=1):
            code = gr.File(label="Latent code (.npz): download, or upload one to edit it", file_types=[".npz"],
                           type="filepath")
            seed = gr.Number(value=0, precision=0, minimum=0, label="Seed")
            truncation = gr.Slider(0, 1, value=0.7, step=0.05, label="Truncation (1 = none, 0 = the mean face)")
            sample_run = gr.Button("Sample a random face")
    send_row()  # sends the edit pasted into the photo (or the photo) to another tab

    shown = [crop, recon, pasted, quality, code]
    edit_args = dict(fn=edit, inputs=[code, photo, *sliders], outputs=[edited, pasted])
    inverted = run.click(invert, [photo, face_index, refine], shown, api_name="invert")
    sampled = sample_run.click(gan_sample, [seed, truncation], shown, api_name="gan_sample")
    if specs:
        for event in (inverted, sampled):
            event.success(**edit_args, api_name=False, show_progress="hidden")
        gr.on([s.input for s in sliders] + [code.upload], **edit_args, api_name="edit", trigger_mode="always_last",
              show_progress="hidden")
        reset.click(lambda: [0.0] * len(sliders), None, sliders, api_name=False).then(**edit_args, api_name=False)
    else:
        for event in (inverted, sampled):
            event.success(lambda image: image, recon, edited, api_name=False)
    if example_photos():
        gr.Examples(example_photos(), inputs=[photo], outputs=[*shown, edited, *sliders], fn=example_run,
                    cache_examples=False, run_on_click=True, label="Example photos")
    return photo, pasted


def demo() -> gr.Blocks:
    return standalone(build, "FaceLab: Invert & edit")


if __name__ == "__main__":
    serve(demo())
