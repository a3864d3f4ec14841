"""FaceLab: the Hugging Face Space entry point, one tab per capability.

    pip install -r requirements.txt && python app.py     # http://127.0.0.1:7860

Each tab lives in apps/<capability>.py and can run alone (`python -m apps.analyze`).
"""
import spaces  # noqa: F401  (first: on ZeroGPU Spaces it must come before anything touches CUDA)

import gradio as gr

from apps import analyze, parse, pending, vae
from apps.common import QUEUE, serve  # noqa: F401  (QUEUE: the served settings, read by tests)

TITLE = "FaceLab: face synthesis and editing research, in the browser"


def build_app() -> gr.Blocks:
    with gr.Blocks(title="FaceLab") as demo:
        gr.Markdown(f"# {TITLE}\nModels trained from scratch on CelebAMask-HQ, CelebA and UTKFace "
                    "(non-commercial research use). Upload a photo in any tab.")
        with gr.Tab("Analyze"):
            analyze.build()
        with gr.Tab("Parse"):
            parse.build()
        for capability in pending.PENDING:
            with gr.Tab(capability):
                pending.build(capability)
        with gr.Tab("VAE"):
            vae.build()
    return demo


def launch(host: str | None = None, port: int | None = None, **kwargs):
    """Serve the whole app; `python app.py` serves on 127.0.0.1:7860. Tests call it with a free port."""
    return serve(build_app(), host, port, **kwargs)


if __name__ == "__main__":
    launch()
