"""What every tab shares: GPU decorator, error translation, model-status notes, image widgets.

Tabs are thin: convert inputs, call a `core` pipeline, return arrays. Domain
errors (`core.errors.FaceLabError`, `hub.ModelNotAvailable`) become `gr.Error`
here, in one place, so the server survives every bad input.
"""
from __future__ import annotations

import functools
import os

import gradio as gr

from core.errors import FaceLabError

try:  # a no-op off Hugging Face Spaces; on ZeroGPU it attaches a GPU for `duration` seconds
    import spaces

    def gpu(duration: int):
        return spaces.GPU(duration=duration)
except ImportError:  # pragma: no cover - spaces is in requirements.txt
    def gpu(duration: int):
        return lambda fn: fn

MAX_UPLOAD = "40MB"


# A bounded queue: at most 32 waiting requests, each event runs one at a time (the Spaces GPU is one device).
QUEUE = {"max_size": 32, "default_concurrency_limit": 1}


def serve(blocks: gr.Blocks, host: str | None = None, port: int | None = None, **kwargs):
    """Serve Blocks with the project's queue and upload limits (default 127.0.0.1:7860, or GRADIO_SERVER_*)."""
    return blocks.queue(**QUEUE).launch(
        server_name=host or os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=port or int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        max_file_size="40mb", **kwargs)


def standalone(build, title: str) -> gr.Blocks:
    """One tab's `build()` as its own app (`python -m apps.<tab>`)."""
    with gr.Blocks(title=title) as blocks:
        build()
    return blocks


def user_errors(fn):
    """Turn FaceLab's domain errors into a message in the browser (gr.Error)."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import hub

        try:
            return fn(*args, **kwargs)
        except (FaceLabError, hub.ModelNotAvailable) as e:
            raise gr.Error(str(e), title=type(e).__name__) from e
    return wrapper


def face_number(value) -> int:
    """The face-index box: empty means the largest face (0); anything else must be a whole number >= 0."""
    if value is None or value == "":
        return 0
    try:
        index = int(value)
    except (TypeError, ValueError, OverflowError) as e:
        raise FaceLabError(f"Face index must be a whole number (0 = largest face), got {value!r}.") from e
    if index != value and not isinstance(value, str):
        raise FaceLabError(f"Face index must be a whole number (0 = largest face), got {value!r}.")
    return index


def require_image(path):
    if path is None or (isinstance(path, str) and not os.path.exists(path)):
        raise FaceLabError("Upload a photo first.")
    return path


class PhotoInput(gr.Image):
    """gr.Image that answers an unreadable upload with our message.

    Gradio opens uploads with Pillow before the event function runs, so a broken file would otherwise
    surface as a bare "Error" badge; here it becomes a gr.Error with a readable message."""

    is_template = True  # rendered by the frontend's own Image component (gradio's template mechanism)

    def preprocess(self, payload):
        from PIL import Image, UnidentifiedImageError

        try:
            return super().preprocess(payload)
        except (UnidentifiedImageError, Image.DecompressionBombError) as e:
            raise gr.Error("Not an image (or a format we cannot read), or too large.", title="InvalidImage") from e
        except (OSError, ValueError, SyntaxError) as e:
            raise gr.Error(f"The image file is damaged or truncated: {e}", title="InvalidImage") from e


def photo_input(label: str = "Photo") -> gr.Image:
    """Upload widget: we read the file ourselves (core.imageio) for EXIF, size and mode checks."""
    return PhotoInput(label=label, type="filepath", sources=["upload", "clipboard", "webcam"], height=360)


def image_output(label: str) -> gr.Image:
    """Lossless PNG output with a download button."""
    return gr.Image(label=label, type="numpy", format="png", interactive=False, buttons=["download", "fullscreen"],
                    height=360)


def model_status(names: list[str], capability: str, train_issue: str) -> tuple[bool, str]:
    """(ready, markdown) for a tab: says plainly when its model is not trained yet."""
    import hub

    missing = [n for n in names if not hub.available(n)]
    if not missing:
        return True, ""
    return False, (f"**{capability} is not available yet:** its model ({', '.join(missing)}) has not been trained and "
                   f"bundled. Nothing in this tab runs until it is. ({train_issue})")


def example_photos() -> list[str]:
    """Bundled example photos (apps/examples), for galleries that run on click."""
    folder = os.path.join(os.path.dirname(__file__), "examples")
    if not os.path.isdir(folder):
        return []
    return sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith((".jpg", ".png")))
