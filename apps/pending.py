"""A tab for a capability whose model is not trained yet: it says so, and shows nothing else."""
from __future__ import annotations

import gradio as gr

from apps.common import model_status

# capability -> (models it needs, what will train them)
PENDING = {
    "Pose": (["pose-sampler", "pose-inpainter"], "pixel attention sampling + inpainting, Yin ch. 3"),
    "Invert & edit": (["stylegan", "mtv-tsa-encoder"], "StyleGAN2 + MTV-TSA encoder; trainer: python -m train.stylegan"),
}


def build(capability: str) -> None:
    models, what = PENDING[capability]
    ready, note = model_status(models, capability, what)
    gr.Markdown(note if not ready else f"{capability}: model found, but this tab's interface has not landed yet.")
