"""FaceLab: the Hugging Face Space entry point, one tab per capability.

    pip install -r requirements.txt && python app.py     # http://127.0.0.1:7860

Each tab lives in apps/<capability>.py and can run alone (`python -m apps.analyze`). Its `build()` returns
(photo_input, result_image), either may be None; TabLinks (apps/common.py) adds, under each tab, a row that
sends the result (or the photo) to another tab's photo input. A new tab is one line in `tabs()`.
"""
import spaces  # noqa: F401  (first: on ZeroGPU Spaces it must come before anything touches CUDA)

import functools

import gradio as gr

from apps import analyze, deocclude, invert, mask2face, parse, pose, vae
from apps.common import QUEUE, TabLinks, serve, tab_id  # noqa: F401  (QUEUE: served settings, read by tests)

TITLE = "FaceLab: face synthesis and editing research, in the browser"


def tabs() -> list[tuple[str, object]]:
    """(tab label, build function) in tab order; build() lays the tab out and returns (photo_input, result)."""
    return [("Analyze", analyze.build), ("Parse", parse.build), ("Mask-to-face", mask2face.build),
            ("De-occlusion", deocclude.build), ("Pose", pose.build), ("Invert & edit", invert.build),
            ("VAE", vae.build)]


def build_app() -> gr.Blocks:
    with gr.Blocks(title="FaceLab") as demo:
        gr.Markdown(f"# {TITLE}\nModels trained from scratch on CelebAMask-HQ, CelebA and UTKFace "
                    "(non-commercial research use). Upload a photo in any tab; send a result on to another "
                    "tab with the row under it.")
        links = TabLinks()
        with gr.Tabs(overflow_behavior="wrap") as tab_bar:
            for label, build in tabs():
                with gr.Tab(label, id=tab_id(label)):
                    links.add(tab_id(label), label, build())
        links.wire(tab_bar)
    return demo


def launch(host: str | None = None, port: int | None = None, **kwargs):
    """Serve the whole app; `python app.py` serves on 127.0.0.1:7860. Tests call it with a free port."""
    return serve(build_app(), host, port, **kwargs)


if __name__ == "__main__":
    launch()
