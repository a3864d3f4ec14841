"""What every tab shares: GPU decorator, error translation, model-status notes, image widgets, the
"send to another tab" row (TabLinks), first-load progress, and the served settings.

Tabs are thin: convert inputs, call a `core` pipeline, return arrays. Domain
errors (`core.errors.FaceLabError`, `hub.ModelNotAvailable`) become `gr.Error`
here, in one place, so the server survives every bad input.

A tab module's `build()` lays the tab out inside the current Blocks and returns `(photo_input, result_image)`
(either may be None): the photo input other tabs can send an image to, and the image it can send on.
"""
from __future__ import annotations

import ctypes
import functools
import os
import re
import tempfile
from dataclasses import dataclass
from typing import Callable

import gradio as gr
import numpy as np

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


M_ARENA_MAX = -8  # glibc's mallopt() parameter number (malloc.h)
MALLOC_ARENAS = 2


def limit_malloc_arenas(arenas: int = MALLOC_ARENAS) -> bool:
    """Cap glibc's malloc arenas, as MALLOC_ARENA_MAX=2 in the environment would; True if it was applied.

    Gradio runs each request on one of its worker threads, and glibc gives threads their own arenas (up to
    8 per core), each keeping the high-water mark of the image buffers freed in it. Measured on a 2-core CPU
    (python -m benchmarks.memory, 16 concurrent /analyze per round): RSS 531, 558, 610, 643, 688, 688 MiB
    over six rounds without a cap, 524-536 MiB flat with it, at the same speed. It must run before the
    worker threads allocate (serve() calls it); an explicit MALLOC_ARENA_MAX is left as it is. A no-op off
    glibc (macOS, musl).
    """
    if os.environ.get("MALLOC_ARENA_MAX"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(M_ARENA_MAX, int(arenas)))
    except (OSError, AttributeError):
        return False


# Send rows line their buttons up with the dropdown's box; on a phone the title is not four lines tall.
CSS = """
.facelab-send { align-items: flex-end; }
@media (max-width: 640px) { .prose h1 { font-size: 1.5rem !important; line-height: 1.25 !important; } }
"""


def serve(blocks: gr.Blocks, host: str | None = None, port: int | None = None, **kwargs):
    """Serve Blocks with the project's queue, upload limits and CSS (default 127.0.0.1:7860, or GRADIO_SERVER_*)."""
    limit_malloc_arenas()
    kwargs.setdefault("css", CSS)
    return blocks.queue(**QUEUE).launch(
        server_name=host or os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=port or int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        max_file_size="40mb", **kwargs)


def standalone(build, title: str) -> gr.Blocks:
    """One tab's `build()` as its own app (`python -m apps.<tab>`); its (photo, result) pair is unused."""
    with gr.Blocks(title=title) as blocks:
        build()
    for row in _send_rows(blocks):  # no other tab to send to
        row.visible = False
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


def cached_png(value, cache_dir: str):
    """A uint8 image array -> the path of its PNG in Gradio's cache, written once and atomically; else `value`.

    Gradio 6.31 names a result PNG by its content and rewrites it in place (truncate, then write) each time the
    same image comes out again, so a download of that image from an earlier identical request can be cut short:
    "peer closed connection without sending complete message body" in clients, a broken image in browsers
    (70 of 2350 downloads while two clients repeated one /analyze request). Same name as Gradio gives it; an
    existing copy is kept, a new one is written to a staging file and renamed into place.
    """
    if not (isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim in (2, 3)):
        return value
    try:
        from gradio.processing_utils import encode_pil_to_bytes, hash_bytes
    except ImportError:  # pragma: no cover - another Gradio: its own path
        return value
    from PIL import Image

    data = encode_pil_to_bytes(Image.fromarray(value), "png")
    folder = os.path.join(cache_dir, hash_bytes(data))
    path = os.path.abspath(os.path.join(folder, "image.png"))
    if not os.path.exists(path):
        os.makedirs(folder, exist_ok=True)
        fd, staging = tempfile.mkstemp(dir=folder, prefix=".image.png.")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(staging, path)
        except BaseException:
            if os.path.exists(staging):
                os.unlink(staging)
            raise
    return path


class ResultImage(gr.Image):
    """gr.Image for results: PNGs written once and atomically into the cache (cached_png)."""

    is_template = True  # rendered by the frontend's own Image component (gradio's template mechanism)

    def postprocess(self, value):
        return super().postprocess(cached_png(value, self.GRADIO_CACHE) if self.format == "png" else value)


def readable_upload(preprocess, payload):
    """Run a component's preprocess (Gradio opens the upload with Pillow there) and turn a file it cannot read
    into a gr.Error with our message, instead of Gradio's bare "Error" badge."""
    from PIL import Image, UnidentifiedImageError

    try:
        return preprocess(payload)
    except (UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise gr.Error("Not an image (or a format we cannot read), or too large.", title="InvalidImage") from e
    except (OSError, ValueError, SyntaxError) as e:
        raise gr.Error(f"The image file is damaged or truncated: {e}", title="InvalidImage") from e


class PhotoInput(gr.Image):
    """gr.Image that answers an unreadable upload with our message.

    Gradio opens uploads with Pillow before the event function runs, so a broken file would otherwise
    surface as a bare "Error" badge; here it becomes a gr.Error with a readable message. An image sent here
    from another tab is stored like a result (cached_png)."""

    is_template = True  # rendered by the frontend's own Image component (gradio's template mechanism)

    def postprocess(self, value):
        return super().postprocess(cached_png(value, self.GRADIO_CACHE) if self.format == "png" else value)

    def preprocess(self, payload):
        return readable_upload(super().preprocess, payload)


class MaskEditor(gr.ImageEditor):
    """gr.ImageEditor that answers an unreadable file with our message (as PhotoInput does for gr.Image)."""

    is_template = True  # rendered by the frontend's own ImageEditor component

    def preprocess(self, payload):
        return readable_upload(super().preprocess, payload)


def photo_input(label: str = "Photo") -> gr.Image:
    """Upload widget: we read the file ourselves (core.imageio) for EXIF, size and mode checks.

    format="png": an image sent here from another tab (a numpy array) is stored losslessly."""
    return PhotoInput(label=label, type="filepath", format="png", sources=["upload", "clipboard", "webcam"],
                      height=360)


def image_output(label: str, height: int = 360) -> gr.Image:
    """Lossless PNG output with a download button."""
    return ResultImage(label=label, type="numpy", format="png", interactive=False,
                       buttons=["download", "fullscreen"], height=height)


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


def is_loaded(name: str) -> bool:
    """Whether model `name` is already built in this process (hub.load's cache), on any device.

    Reads hub/store.py's private cache; hub has no public call for it yet."""
    from hub import store

    with store._lock:
        return any(key[0] == name for key in store._loaded)


def load_models(progress, loaders: dict[str, Callable[[], object]]) -> None:
    """Load the models a request needs, saying so in the browser (gr.Progress) when one is loaded for the first
    time (the first request after a start: seconds on a CPU); models already loaded cost nothing.

    `loaders`: model name -> function that loads it (hub.load through the pipeline, cached per process)."""
    cold = [name for name in loaders if not is_loaded(name)]
    for i, name in enumerate(cold):
        progress((i, len(cold)), desc=f"Loading the {name} model (first request only)", unit="models")
        loaders[name]()
    if cold:
        progress(None)  # models in; the queue's own timer shows while the request runs


def tab_id(label: str) -> str:
    """A tab's id from its label: "Invert & edit" -> "invert-edit"."""
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


@dataclass
class LinkedTab:
    """One tab as TabLinks sees it, and the send row laid out in it."""
    tab_id: str
    label: str
    photo: gr.Image | None
    result: gr.Image | None
    row: gr.Row | None = None
    target: gr.Dropdown | None = None
    send_result: gr.Button | None = None
    send_photo: gr.Button | None = None


def send_row() -> gr.Row:
    """Lay out the "Send to [tab] [Send result] [Send photo]" row here, inside a tab's build().

    Optional: a tab that does not call it gets the row at its end (TabLinks.add). TabLinks fills in the
    targets and the buttons' text, and hides what the tab has no use for."""
    with gr.Row(elem_classes=["facelab-send"]) as row:
        target = gr.Dropdown([], label="Send to tab", interactive=True, scale=2, min_width=240)
        send_result = gr.Button("Send result", size="md", scale=1, min_width=110)
        send_photo = gr.Button("Send photo", size="md", scale=1, min_width=110)
    row.facelab_send = (target, send_result, send_photo)
    return row


def _send_rows(block) -> list[gr.Row]:
    """The send rows laid out inside `block` (depth first)."""
    found = []
    for child in getattr(block, "children", []):
        if hasattr(child, "facelab_send"):
            found.append(child)
        found.extend(_send_rows(child))
    return found


class TabLinks:
    """One photo flows between tabs: a "Send to [tab] [Send result] [Send photo]" row in each tab.

        links = TabLinks()
        with gr.Tabs() as tabs:
            with gr.Tab("Parse", id="parse"):
                links.add("parse", "Parse", parse.build())   # build() -> (photo_input, result_image) or None
            ...
        links.wire(tabs)   # once every tab is built: fills in the targets, hooks up the buttons

    A button copies the tab's result image (or its photo) into the chosen tab's photo input and switches to that
    tab. Targets are the other tabs with a photo input, in tab order. A tab without a photo input and without a
    result (a pending capability) gets no row; a new tab only has to return its pair from build(), and may call
    send_row() to place the row (else it ends the tab).
    """

    def __init__(self):
        self.tabs: dict[str, LinkedTab] = {}

    def add(self, tab_id: str, label: str, pair: tuple[gr.Image | None, gr.Image | None] | None) -> LinkedTab:
        """Register the tab being built: call it inside its gr.Tab, with what its build() returned."""
        from gradio.context import get_render_context

        photo, result = pair if pair is not None else (None, None)
        tab = LinkedTab(tab_id, label, photo, result)
        if tab_id in self.tabs:
            raise ValueError(f"two tabs with the id {tab_id!r}")
        self.tabs[tab_id] = tab
        rows = _send_rows(get_render_context())
        if photo is None and result is None:
            for row in rows:
                row.visible = False
            return tab
        tab.row = rows[0] if rows else send_row()
        tab.target, tab.send_result, tab.send_photo = tab.row.facelab_send
        # made before the later tabs existed: the components' config is read at launch, so it is set here
        if result is None:
            tab.send_result.visible, tab.send_result = False, None
        else:
            tab.send_result.value = send_label(result.label)
        if photo is None:
            tab.send_photo.visible, tab.send_photo = False, None
        return tab

    def targets(self, source: str) -> list[LinkedTab]:
        return [t for t in self.tabs.values() if t.photo is not None and t.tab_id != source]

    def wire(self, tabs: gr.Tabs) -> None:
        """Fill in every row's targets and hook up its buttons (after the last tab is built)."""
        inputs = {t.tab_id: t.photo for t in self.tabs.values() if t.photo is not None}
        outputs = [*inputs.values(), tabs]
        send = functools.partial(send_image, inputs=inputs, tabs=tabs)
        for tab in self.tabs.values():
            if tab.row is None:
                continue
            choices = [(t.label, t.tab_id) for t in self.targets(tab.tab_id)]
            if not choices:  # nowhere to send to (a one-tab app)
                tab.row.visible = False
                continue
            tab.target.choices, tab.target.value = choices, choices[0][1]
            for button, source in ((tab.send_result, tab.result), (tab.send_photo, tab.photo)):
                if button is not None:
                    button.click(send, [source, tab.target], outputs, api_visibility="private",
                                 concurrency_limit=None, show_progress="hidden")


def send_label(label, longest: int = 24) -> str:
    """The text of a result's send button: "Send aligned crop" for "Aligned crop (256 px)", or "Send result"."""
    text = str(label or "").split(" (")[0].strip()
    text = f"Send {text[:1].lower()}{text[1:]}"
    return text if 5 < len(text) <= longest else "Send result"


def send_image(image, target: str | None, *, inputs: dict[str, gr.Image], tabs: gr.Tabs) -> dict:
    """A button of TabLinks: the image (numpy result or photo path) into tab `target`'s photo input; open it."""
    if target not in inputs:
        raise gr.Error("Choose the tab to send the image to.", title="NoTarget")
    if image is None or (isinstance(image, str) and not os.path.exists(image)):
        raise gr.Error("Nothing to send yet: upload a photo or run this tab first.", title="NothingToSend")
    return {inputs[target]: image, tabs: gr.Tabs(selected=target)}
