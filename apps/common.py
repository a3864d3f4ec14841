"""What every tab shares: GPU decorator, error translation, model-status notes, image widgets, the
"send to another tab" row (TabLinks), first-load progress, and the served settings.

Tabs are thin: convert inputs, call a `core` pipeline, return arrays. Domain
errors (`core.errors.FaceLabError`, `hub.ModelNotAvailable`) become `gr.Error`
here, in one place, so the server survives every bad input.

A tab module's `build()` lays the tab out inside the current Blocks and returns `(photo_input, result_image)`
(either may be None): the photo input other tabs can send an image to, and the image it can send on.
"""
from __future__ import annotations

import base64
import binascii
import ctypes
import functools
import hashlib
import logging
import math
import os
import re
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Callable

import gradio as gr
import numpy as np

from core.errors import FaceLabError, InvalidImage
from core.imageio import MAX_MASK_PIXELS, MAX_PIXELS, check_pixels, image_size

log = logging.getLogger("facelab")

try:  # a no-op off Hugging Face Spaces; on ZeroGPU it attaches a GPU for `duration` seconds
    import spaces

    def gpu(duration: int):
        return spaces.GPU(duration=duration)
except ImportError:  # pragma: no cover - spaces is in requirements.txt
    def gpu(duration: int):
        return lambda fn: fn

MAX_UPLOAD = "40MB"


def cpu_count() -> int:
    """CPUs this process may run on (the container's share, not the host's)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# One concurrency budget for the whole app, fitted to the hardware: CONCURRENCY requests run at once, over all
# events together (one shared concurrency_id; Gradio's per-event default would let each of the ~20 events run
# its own), each with TORCH_THREADS intra-op threads, so that requests x threads = the CPUs. 2 cores: one request
# at a time on 2 threads. FACELAB_CONCURRENCY overrides it. Beyond that, at most QUEUE["max_size"] requests wait;
# more are refused with "queue full".
CONCURRENCY = max(1, int(os.environ.get("FACELAB_CONCURRENCY", 0)) or cpu_count() // 2)
TORCH_THREADS = max(1, cpu_count() // CONCURRENCY)
CONCURRENCY_ID = "facelab"
QUEUE = {"max_size": 32, "default_concurrency_limit": CONCURRENCY}

# Gradio's cache (uploads and results): files older than DELETE_CACHE[1] s are deleted every DELETE_CACHE[0] s,
# and beyond CACHE_MAX_BYTES the oldest files go first (prune_cache), so disk use is bounded whatever the traffic.
DELETE_CACHE = (300, 3600)
CACHE_MAX_BYTES = int(os.environ.get("FACELAB_CACHE_MAX_MB", "1024")) * 2 ** 20
CACHE_MIN_AGE = float(os.environ.get("FACELAB_CACHE_MIN_AGE", "120"))  # s: younger files are never pruned
CACHE_PRUNE_EVERY = float(os.environ.get("FACELAB_CACHE_PRUNE_S", "60"))  # s between two prune_cache runs

# A JSON request body (queue/join, run, call) carries values and file references, never files: bodies over this
# are refused before they are read, and so are larger data: URLs in them (files go through /upload, which has
# max_file_size). Gradio decodes a data: URL image at full size before anything of ours runs.
MAX_JSON_BODY = 2 * 2 ** 20
MAX_EDITOR_LAYERS = 4


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
    """Serve Blocks with the project's queue, concurrency budget, upload and body limits, cache bounds and CSS
    (default 127.0.0.1:7860, or GRADIO_SERVER_*)."""
    import torch

    limit_malloc_arenas()
    torch.set_num_threads(TORCH_THREADS)
    setup_logging()
    harden(blocks)
    kwargs.setdefault("css", CSS)
    app_kwargs = dict(kwargs.pop("app_kwargs", None) or {})
    app_kwargs.setdefault("middleware", []).append(_body_limit_middleware())
    start_cache_pruner(blocks)
    return blocks.queue(**QUEUE).launch(
        server_name=host or os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"),
        server_port=port or int(os.environ.get("GRADIO_SERVER_PORT", "7860")),
        max_file_size="40mb", app_kwargs=app_kwargs, **kwargs)


def harden(blocks: gr.Blocks) -> gr.Blocks:
    """What serve() does to the Blocks before launch: one concurrency budget (share_concurrency), every input
    guarded (guard_inputs), Gradio's cache cleaned (delete_cache). Returns `blocks`."""
    share_concurrency(blocks)
    guard_inputs(blocks)
    blocks.delete_cache = blocks.delete_cache or DELETE_CACHE
    if not getattr(blocks, "_facelab_hardened", False):
        blocks.preprocess_data = _checked_preprocess_data(blocks.preprocess_data)
        blocks._facelab_hardened = True
    return blocks


def _checked_preprocess_data(preprocess_data):
    """Gradio's own input handling (a file path outside its cache, a malformed payload) raises plain exceptions
    that reach the browser as a bare "Error": here they become a message, without the server path."""
    @functools.wraps(preprocess_data)
    async def checked(*args, **kwargs):
        try:
            return await preprocess_data(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as e:  # noqa: BLE001 - the request's input, not our code
            raise user_error(f"This request's input cannot be used: {e}", "InvalidInput") from e
    return checked


def share_concurrency(blocks: gr.Blocks, limit: int | None = None) -> None:
    """Every event of `blocks` into one concurrency group of `limit` (CONCURRENCY): a global budget, not one
    per event. Gradio creates the group's queue on the first request, so this runs before launch."""
    limit = CONCURRENCY if limit is None else limit
    for fn in blocks.fns.values():
        fn.concurrency_id = CONCURRENCY_ID
        fn.concurrency_limit = limit


def guard_inputs(blocks: gr.Blocks) -> None:
    """Every input component of `blocks` answers a malformed API value with a message, not a bare "Error":
    its data model's validation (text where a file belongs) and its preprocess (None or text in a slider or a
    number box, anything Gradio itself chokes on) become user_error()s. Runs before launch (serve)."""
    inputs = {id(block): block for fn in blocks.fns.values() for block in fn.inputs}
    for block in inputs.values():
        if not isinstance(block, gr.components.Component) or getattr(block, "_facelab_guarded", False):
            continue
        if getattr(block, "data_model", None) is not None:
            block.data_model = checked_model(block.data_model)
        block.preprocess = _guarded_preprocess(block, block.preprocess)
        block._facelab_guarded = True


def _finite_number(x) -> bool:
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return False
    try:
        return math.isfinite(float(x))
    except OverflowError:  # an int beyond float range
        return False


def _guarded_preprocess(block, preprocess):
    label = str(getattr(block, "label", None) or type(block).__name__)
    numeric = isinstance(block, (gr.Slider, gr.Number))

    @functools.wraps(preprocess)
    def checked(payload):
        if numeric and payload is not None and not _finite_number(payload):
            raise user_error(f"{label}: expected a number, got {str(payload)[:40]!r}.", "InvalidInput")
        if numeric and payload is None:
            return None  # empty: the event function decides (the pose tab keeps the face's own angle)
        try:
            return preprocess(payload)
        except gr.Error as e:
            if getattr(e, "print_exception", False):  # Gradio's own (a value out of range...): one line, no traceback
                log.info("user error %s: %s", label, str(e)[:300])
                e.print_exception = False
            raise
        except (FaceLabError, InvalidImage) as e:
            raise user_error(str(e), type(e).__name__) from e
        except Exception as e:  # noqa: BLE001 - a value Gradio cannot take is the sender's to fix
            raise user_error(f"{label}: this value cannot be used ({type(e).__name__}).", "InvalidInput") from e
    return checked


def setup_logging() -> None:
    """One INFO line per user error on stderr (logger "facelab"); set up once, only if nothing else did."""
    if not log.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def _body_limit_middleware():
    from starlette.middleware import Middleware

    return Middleware(BodyLimit, max_bytes=MAX_JSON_BODY)


class BodyLimit:
    """ASGI middleware: a request body that is not a multipart upload may be at most `max_bytes` (413 otherwise).

    Uploads (multipart/form-data: /upload, the image editor's blobs) keep Gradio's own max_file_size. Checked on
    Content-Length before the body is read, and on the bytes as they arrive when there is none (chunked)."""

    def __init__(self, app, max_bytes: int = MAX_JSON_BODY):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope.get("method") not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        if headers.get(b"content-type", b"").lower().startswith(b"multipart/form-data"):
            return await self.app(scope, receive, send)
        try:
            declared = int(headers.get(b"content-length", b"-1"))
        except ValueError:
            declared = self.max_bytes + 1
        if declared > self.max_bytes:
            return await self._refuse(send, declared)
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            if message.get("type") == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise ValueError(f"request body over {self.max_bytes} bytes")
            return message

        return await self.app(scope, limited, send)

    async def _refuse(self, send, size: int) -> None:
        import json

        log.info("refused a request body of %d bytes (limit %d)", size, self.max_bytes)
        body = json.dumps({"error": f"Request too large ({size} bytes; limit {self.max_bytes}). Send images as file "
                                    "uploads, not data: URLs.", "detail": "Request too large"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def cache_size(folder: str) -> tuple[int, list[tuple[float, int, str]]]:
    """(total bytes, [(mtime, bytes, path)]) of the files under `folder`."""
    files, total = [], 0
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            files.append((st.st_mtime, st.st_size, path))
            total += st.st_size
    return total, files


def prune_cache(folder: str, max_bytes: int = CACHE_MAX_BYTES, min_age: float = CACHE_MIN_AGE) -> int:
    """Delete the oldest files of `folder` (and folders left empty) until it holds at most `max_bytes`; files
    younger than `min_age` s are kept. Returns the bytes freed."""
    total, files = cache_size(folder)
    freed, now = 0, time.time()
    for mtime, size, path in sorted(files):
        if total - freed <= max_bytes or now - mtime < min_age:
            break
        try:
            os.remove(path)
            freed += size
            os.rmdir(os.path.dirname(path))  # content-addressed folders hold one file
        except OSError:
            pass
    if freed:
        log.info("pruned %d MiB from the cache (limit %d MiB)", freed >> 20, max_bytes >> 20)
    return freed


def start_cache_pruner(blocks: gr.Blocks, every: float = CACHE_PRUNE_EVERY) -> None:
    """A daemon thread: prune_cache(Gradio's cache) every `every` s."""
    folder = blocks.GRADIO_CACHE

    def loop():
        while True:
            time.sleep(every)
            try:
                prune_cache(folder)
            except Exception:  # noqa: BLE001 - the pruner must never die
                log.exception("cache pruning failed")

    threading.Thread(target=loop, name="facelab-cache-pruner", daemon=True).start()


def standalone(build, title: str) -> gr.Blocks:
    """One tab's `build()` as its own app (`python -m apps.<tab>`); its (photo, result) pair is unused."""
    with gr.Blocks(title=title, delete_cache=DELETE_CACHE) as blocks:
        build()
    for row in _send_rows(blocks):  # no other tab to send to
        row.visible = False
    return blocks


# An absolute path (POSIX or Windows) in a message: only its last part reaches the browser.
_ABS_PATH = re.compile(r"(?<![\w.:/\\])(?:[A-Za-z]:)?[/\\](?:[^\s/\\'\"`:,;()<>]+[/\\])+([^\s/\\'\"`:,;()<>]*)")


def public_message(text: str) -> str:
    """A message for the browser: absolute server paths cut down to their file name."""
    return _ABS_PATH.sub(lambda m: m.group(1) or "…", str(text))


def user_error(message: str, title: str = "Error") -> gr.Error:
    """The gr.Error for a user's mistake: one log line, no traceback, no server path in the message."""
    message = public_message(message)
    log.info("user error %s: %s", title, " ".join(message.split())[:300])
    return gr.Error(message, title=title, print_exception=False)


def user_errors(fn):
    """Turn FaceLab's domain errors into a message in the browser (gr.Error, one log line, no traceback).

    Anything else is a bug of ours: its traceback is logged and the browser gets a plain sentence (not
    Gradio's bare "Error")."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        import hub

        try:
            return fn(*args, **kwargs)
        except (FaceLabError, hub.ModelNotAvailable) as e:
            raise user_error(str(e), type(e).__name__) from e
        except gr.Error:
            raise
        except Exception as e:
            log.exception("unexpected error in %s", getattr(fn, "__name__", fn))
            raise gr.Error("Something went wrong on the server while doing this (it was logged). Try another "
                           "input, or try again.", title="ServerError", print_exception=False) from e
    return wrapper


def number(value, name: str, lo: float | None = None, hi: float | None = None, default: float | None = None) -> float:
    """A numeric argument from the browser or the API: a finite number within [lo, hi], or `default` for None."""
    if value is None or value == "":
        if default is not None:
            return float(default)
        raise FaceLabError(f"{name} is missing: give a number.")
    try:
        x = float(value)
    except (TypeError, ValueError, OverflowError) as e:
        raise FaceLabError(f"{name} must be a number, got {str(value)[:40]!r}.") from e
    if isinstance(value, bool) or not np.isfinite(x):
        raise FaceLabError(f"{name} must be a finite number, got {str(value)[:40]!r}.")
    if (lo is not None and x < lo) or (hi is not None and x > hi):
        raise FaceLabError(f"{name} must be between {lo:g} and {hi:g}, got {x:g}.")
    return x


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


def readable_upload(preprocess, payload):
    """Run a component's preprocess (Gradio opens the upload with Pillow there) and turn a file it cannot read
    into a gr.Error with our message, instead of Gradio's bare "Error" badge."""
    from PIL import Image, UnidentifiedImageError

    try:
        return preprocess(payload)
    except InvalidImage as e:
        raise user_error(str(e), "InvalidImage") from e
    except (UnidentifiedImageError, Image.DecompressionBombError) as e:
        raise user_error("Not an image (or a format we cannot read), or too large.", "InvalidImage") from e
    except (OSError, ValueError, SyntaxError) as e:
        raise user_error(f"The image file is damaged or truncated: {e}", "InvalidImage") from e


def check_upload(file, max_pixels: int = MAX_PIXELS, what: str = "Image", min_side: int = 1) -> None:
    """The pixel guard on an upload before Gradio decodes it: a FileData (its header read from disk) or the
    bytes of an editor blob; a data: URL is refused beyond MAX_JSON_BODY. InvalidImage when refused."""
    if file is None:
        return
    if isinstance(file, (bytes, bytearray)):
        check_pixels(image_size(bytes(file)), max_pixels, what, min_side)
        return
    url = getattr(file, "url", None) or ""
    if url.startswith("data:"):
        if len(url) > MAX_JSON_BODY:
            raise InvalidImage(f"{what} sent as a data: URL of {len(url)} characters (limit {MAX_JSON_BODY}); "
                               "upload the file instead.")
        try:
            data = base64.b64decode(url.split(",", 1)[-1], validate=False)
        except (binascii.Error, ValueError) as e:
            raise InvalidImage("The data: URL holds no valid base64 image.") from e
        check_pixels(image_size(data), max_pixels, what, min_side)
        return
    path = getattr(file, "path", None)
    if path:
        check_pixels(image_size(path), max_pixels, what, min_side)


_checked_models: dict[type, type] = {}


def checked_model(model: type | None) -> type | None:
    """A component's data model whose validation failure (text where a file belongs, a malformed dict sent to
    the API) is a user message instead of Gradio's bare "Error". Same name and schema as `model`."""
    if model is None:
        return None
    if model not in _checked_models:
        import pydantic

        def model_validate(cls, obj, *args, **kwargs):
            try:
                return super(checked, cls).model_validate(obj, *args, **kwargs)
            except pydantic.ValidationError as e:
                raise user_error(f"This input takes a file (a FileData object through the API), got "
                                 f"{type(obj).__name__} {str(obj)[:40]!r}.", "InvalidInput") from e

        checked = type(model.__name__, (model,), {"model_validate": classmethod(model_validate),
                                                  "__module__": model.__module__, "__doc__": model.__doc__})
        _checked_models[model] = checked
    return _checked_models[model]


def cached_file(data: bytes, name: str) -> str:
    """Bytes -> a file in Gradio's cache named by content (a download: label PNG, latent code), written once and
    atomically. Gradio's delete_cache and prune_cache remove it like any result; no temp folder is left behind."""
    from gradio.utils import get_upload_folder

    folder = os.path.join(get_upload_folder(), hashlib.sha256(data).hexdigest()[:40])
    path = os.path.abspath(os.path.join(folder, name))
    if not os.path.exists(path):
        os.makedirs(folder, exist_ok=True)
        fd, staging = tempfile.mkstemp(dir=folder, prefix=f".{name}.")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(staging, path)
        except BaseException:
            if os.path.exists(staging):
                os.unlink(staging)
            raise
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
    """gr.Image for results: PNGs written once and atomically into the cache (cached_png). As an input (the
    send buttons) it gets the pixel guard before Gradio decodes anything."""

    is_template = True  # rendered by the frontend's own Image component (gradio's template mechanism)

    def postprocess(self, value):
        return super().postprocess(cached_png(value, self.GRADIO_CACHE) if self.format == "png" else value)

    def preprocess(self, payload):
        return readable_upload(lambda p: (check_upload(p), super(ResultImage, self).preprocess(p))[1], payload)


class PhotoInput(gr.Image):
    """gr.Image that hands our own reader (core.imageio) the uploaded file untouched, and answers an unreadable
    or oversized upload with our message.

    type="filepath" with image_mode=None: Gradio only reads the header and passes the path on, so decoding,
    the pixel guard, EXIF, 16-bit and mode conversion all happen in core.imageio.load_image (with image_mode="RGB"
    Gradio would decode and convert the whole image first: +600 MB for a 12000^2 grey PNG, 16-bit grey clipped
    to white). check_upload refuses too many pixels, or a large data: URL, before Gradio opens anything. An image
    sent here from another tab is stored like a result (cached_png)."""

    is_template = True  # rendered by the frontend's own Image component (gradio's template mechanism)

    # no __init__ override: Gradio reads a component's props from its constructor's signature, and a
    # (*args, **kwargs) one left the browser without them ("sources" undefined: the tab never rendered).
    # photo_input() / mask_input() pass type="filepath", image_mode=None.

    def postprocess(self, value):
        return super().postprocess(cached_png(value, self.GRADIO_CACHE) if self.format == "png" else value)

    def preprocess(self, payload):
        return readable_upload(lambda p: (check_upload(p, what="Image"), super(PhotoInput, self).preprocess(p))[1],
                               payload)


class MaskEditor(gr.ImageEditor):
    """gr.ImageEditor with the pixel guard (MAX_MASK_PIXELS, at most MAX_EDITOR_LAYERS layers) on the background,
    layers and composite before Gradio decodes them, and our message for an unreadable file."""

    is_template = True  # rendered by the frontend's own ImageEditor component
    max_pixels = MAX_MASK_PIXELS

    def preprocess(self, payload):
        return readable_upload(lambda p: (self.check(p), super(MaskEditor, self).preprocess(p))[1], payload)

    def check(self, payload) -> None:
        if payload is None:
            return
        parts = payload
        if getattr(payload, "id", None) is not None:
            parts = self.blob_storage.get(payload.id)
            if parts is None:
                return
        layers = list(getattr(parts, "layers", None) or [])
        if len(layers) > MAX_EDITOR_LAYERS:
            raise InvalidImage(f"The editor sent {len(layers)} layers (at most {MAX_EDITOR_LAYERS}).")
        for part in (parts.background, parts.composite, *layers):
            check_upload(part, self.max_pixels, "Mask image", min_side=1)


def photo_input(label: str = "Photo") -> gr.Image:
    """Upload widget: we read the file ourselves (core.imageio) for EXIF, size and mode checks.

    format="png": an image sent here from another tab (a numpy array) is stored losslessly."""
    return PhotoInput(label=label, type="filepath", image_mode=None, format="png",
                      sources=["upload", "clipboard", "webcam"], height=360)


def mask_input(label: str, visible: bool = False) -> gr.Image:
    """A mask image handed over as a file path (guarded like a photo; read by the pipeline's own reader)."""
    return PhotoInput(label=label, type="filepath", image_mode=None, format="png", visible=visible)


def image_output(label: str, height: int = 360) -> gr.Image:
    """Lossless PNG output with a download button."""
    return ResultImage(label=label, type="numpy", format="png", interactive=False,
                       buttons=["download", "fullscreen"], height=height)


def model_status(names: list[str], capability: str, train_issue: str) -> tuple[bool, str]:
    """(ready, markdown) for a tab: says plainly when its model is not trained yet."""
    import hub

    from hub import store

    failed = [n for n in names if store.verification_error(n)]
    if failed:
        return False, (f"**{capability} is not available:** the weights of {', '.join(failed)} failed their sha256 "
                       "check (the files on the server are not the ones hub/registry.py pins), so they are not "
                       "used. Nothing in this tab runs until they are restored (`python -m hub verify`).")
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
    """Whether model `name` is already built in this process (core.loading's cache), on any device."""
    from core.loading import is_loaded as loaded

    return loaded(name)


def load_models(progress, loaders: dict[str, Callable[[], object]]) -> None:
    """Load the models a request needs, saying so in the browser (gr.Progress) when one is loaded for the first
    time (the first request after a start: seconds on a CPU); models already loaded cost nothing.

    `loaders`: model name -> function that loads it (core.loading.load_model through the pipeline, cached per process)."""
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
        raise user_error("Choose the tab to send the image to.", "NoTarget")
    if image is None or (isinstance(image, str) and not os.path.exists(image)):
        raise user_error("Nothing to send yet: upload a photo or run this tab first.", "NothingToSend")
    return {inputs[target]: image, tabs: gr.Tabs(selected=target)}
