"""VAE tab: masked-VAE and multi-stage-VAE reconstructions side by side, samples from the prior, interpolation.

    python -m apps.vae
"""
from __future__ import annotations

import gradio as gr
import numpy as np

from apps.common import (example_photos, face_number, gpu, image_output, load_models, model_status, photo_input,
                         require_image, send_row, serve, standalone, user_errors)
from core.errors import FaceLabError
from core.imageio import load_image
from core.pipelines import vae as V

RETRAIN = "python -m train.vae --model masked-vae|multistage-vae"
CAPABILITY = {"masked-vae": "The masked VAE", "multistage-vae": "The multi-stage VAE"}


def ready_models() -> list[str]:
    import hub

    return [m for m in V.MODELS if hub.available(m)]


def mask_image(mask: np.ndarray | None) -> np.ndarray | None:
    """[S, S] face probability -> [S, S, 3] uint8 grey image."""
    if mask is None:
        return None
    grey = (np.clip(mask, 0, 1) * 255.0 + 0.5).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=-1)


def load(progress, models) -> None:
    """Load the VAEs a request needs, with a progress note in the browser the first time (apps.common)."""
    load_models(progress, {m: (lambda m=m: V.load_model(m)) for m in models})


@gpu(duration=20)
@user_errors
def reconstruct(photo: str, face_index: int = 0, progress=gr.Progress()):
    """Photo -> (aligned input, masked recon, its mask, multistage coarse, refined, masked result pasted back).

    A model that is not available leaves its images empty.
    """
    image = load_image(require_image(photo))
    models = ready_models()
    if not models:
        raise FaceLabError("No VAE model is available yet.")
    load(progress, models)
    crop = masked = mask = coarse = refined = pasted = None
    if "masked-vae" in models:
        res = V.reconstruct_photo(image, "masked-vae", face_number(face_index))
        crop, masked, mask, pasted = res.crop, res.reconstruction, mask_image(res.mask), res.pasted
    if "multistage-vae" in models:
        res = V.reconstruct_photo(image, "multistage-vae", face_number(face_index))
        coarse, refined = res.coarse, res.refined
        if crop is None:
            crop, pasted = res.crop, res.pasted
    return crop, masked, mask, coarse, refined, pasted


@gpu(duration=10)
@user_errors
def sample(seed: float, model: str, progress=gr.Progress()) -> np.ndarray:
    """Seed, model -> one face from the prior."""
    if seed is None:
        raise FaceLabError("Enter a seed (a whole number).")
    load(progress, [V.check_model(model)])
    return V.sample(model, int(seed), 1)[0]


@gpu(duration=20)
@user_errors
def interpolate(photo_a: str, photo_b: str, t: float, model: str, cache: dict | None = None, progress=gr.Progress()):
    """Two photos, t, model -> (decoded blend of their latent means, cache of the two latents).

    The latents are kept per (photos, model), so moving the slider only decodes.
    """
    key = (require_image(photo_a), require_image(photo_b), V.check_model(model))
    load(progress, [model])
    if not cache or cache.get("key") != key:
        mus = V.encode_photo(load_image(photo_a), model), V.encode_photo(load_image(photo_b), model)
        cache = {"key": key, "mus": mus}
    return V.interpolate_latents(*cache["mus"], float(t), model), cache


def notes(ready: list[str]) -> str:
    return "\n\n".join(model_status([m], CAPABILITY[m], RETRAIN)[1] for m in V.MODELS if m not in ready)


def build() -> tuple[gr.Image | None, gr.Image | None]:
    """Lay out the tab; (photo input, reconstruction pasted into the photo) for sending between tabs."""
    ready = ready_models()
    if not ready:
        gr.Markdown(model_status(list(V.MODELS), "VAE face reconstruction", RETRAIN)[1])
        return None, None
    gr.Markdown("Variational autoencoders on the aligned face: the **masked VAE** (Toledo & Antonelo, 144 px; a "
                "second decoder predicts the face mask, through which the photo's background is kept) and the "
                "**multi-stage VAE** (Cai et al., 128 px; a coarse image, then a refined one). Reconstructions "
                "decode the posterior mean.")
    if notes(ready):
        gr.Markdown(notes(ready))
    with gr.Row():
        with gr.Column(scale=1):
            photo = photo_input()
            face_index = gr.Number(value=0, precision=0, minimum=0, label="Face index (0 = largest)")
            run = gr.Button("Reconstruct", variant="primary")
        with gr.Column(scale=2):
            pasted = image_output("Reconstruction pasted into the photo (masked VAE if available)")
    with gr.Row():  # 128-144 px images: small boxes (a phone stacks them)
        crop = image_output("Aligned input", height=240)
        masked = image_output("Masked VAE (144 px)", height=240)
        mask = image_output("Predicted face mask", height=240)
        coarse = image_output("Multi-stage: coarse (128 px)", height=240)
        refined = image_output("Multi-stage: refined", height=240)
    outputs = [crop, masked, mask, coarse, refined, pasted]
    run.click(reconstruct, [photo, face_index], outputs, api_name="reconstruct")
    if example_photos():
        gr.Examples(example_photos(), inputs=[photo], outputs=outputs, fn=lambda p: reconstruct(p, 0),
                    cache_examples=False, run_on_click=True, label="Example photos")
    send_row()  # sends the reconstruction pasted into the photo (or the photo) to another tab

    gr.Markdown("### Sample\nA face drawn from the prior z ~ N(0, I); the same seed always gives the same face.")
    with gr.Row():
        with gr.Column(scale=1):
            seed = gr.Number(value=0, precision=0, minimum=0, label="Seed")
            sample_model = gr.Radio(ready, value=ready[0], label="Model to sample from")
            sample_run = gr.Button("Sample")
        with gr.Column(scale=2):
            sampled = image_output("Sample")
    sample_run.click(sample, [seed, sample_model], sampled, api_name="sample")

    gr.Markdown("### Interpolate\nThe image decoded from (1 - t) mu_a + t mu_b, the blend of the two faces' "
                "latent means (t = 0: photo A, t = 1: photo B).")
    cache = gr.State(None)
    with gr.Row():
        photo_a = photo_input("Photo A")
        photo_b = photo_input("Photo B")
        with gr.Column():
            t = gr.Slider(0, 1, value=0.5, step=0.05, label="t (0 = photo A, 1 = photo B)")
            mix_model = gr.Radio(ready, value=ready[0], label="Model to interpolate with")
            mix_run = gr.Button("Interpolate")
            mixed = image_output("Interpolation")
    mix_run.click(interpolate, [photo_a, photo_b, t, mix_model, cache], [mixed, cache], api_name="interpolate")
    t.release(interpolate, [photo_a, photo_b, t, mix_model, cache], [mixed, cache], api_name=False)
    return photo, pasted


def demo() -> gr.Blocks:
    return standalone(build, "FaceLab: VAE")


if __name__ == "__main__":
    serve(demo())
