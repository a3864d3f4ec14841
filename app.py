"""FaceLab: the Hugging Face Space entry point, one tab per capability.

    pip install -r requirements.txt && python app.py     # http://127.0.0.1:7860

Each tab lives in apps/<capability>.py and can run alone (`python -m apps.analyze`).
"""
import spaces  # noqa: F401  (first: on ZeroGPU Spaces it must come before anything touches CUDA)

import os

import gradio as gr

from apps import analyze, parse, pending, vae

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


# A bounded queue: at most 32 waiting requests, each event runs one at a time (the Spaces GPU is one device).
QUEUE = {"max_size": 32, "default_concurrency_limit": 1}


def launch(host: str | None = None, port: int | None = None, **kwargs):
    """Serve the app with its queue settings; `python app.py` serves on 127.0.0.1:7860.

    Tests and benchmarks call this with a free port and `prevent_thread_lock=True`.
    """
    return build_app().queue(**QUEUE).launch(
        server_name=host or os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=port or int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        max_file_size="40mb", **kwargs)


if __name__ == "__main__":
    launch()
