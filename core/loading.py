"""Build FaceLab's models from the folders hub/ verifies: the one module of `core` that asks `hub` for anything.

    from core.loading import load_model
    parser = load_model("parser", device="cpu")   # built once per (name, device, dtype), shared

`hub` finds a model's folder by name and checks every file's sha256 (hub/store.py); it knows no model
classes. `MODEL_CLASSES` below says which class builds each registered name, so a search for a class
name finds where it is built. A sha256 failure stays a `ChecksumMismatch` (never "not trained").
"""
from __future__ import annotations

import threading

import torch
from torch import nn

from core.models.deocclusion import Inpainter
from core.models.directions import Directions
from core.models.encoder import MTVEncoder
from core.models.face_detector import FaceDetector
from core.models.landmarks import LandmarkNet
from core.models.mask2face import Mask2Face
from core.models.masked_vae import MaskedVAE
from core.models.multistage_vae import MultiStageVAE
from core.models.parser import FaceParser
from core.models.pose import PixelAttentionSampler, PoseInpainter
from core.models.stylegan import StyleGAN2Generator
from hub.store import ChecksumMismatch, ModelNotAvailable, available, resolve, verification_error

__all__ = ["MODEL_CLASSES", "ChecksumMismatch", "ModelNotAvailable", "available", "clear_cache", "is_loaded",
           "load_model", "resolve", "verification_error"]

# hub/registry.py name -> the class whose `from_pretrained(folder, device, dtype)` builds it.
MODEL_CLASSES: dict[str, type] = {
    "face-detector": FaceDetector,
    "face-landmarks": LandmarkNet,
    "parser": FaceParser,
    "masked-vae": MaskedVAE,
    "multistage-vae": MultiStageVAE,
    "mask2face": Mask2Face,
    "deocclusion": Inpainter,
    "pose-sampler": PixelAttentionSampler,
    "pose-inpainter": PoseInpainter,
    "stylegan": StyleGAN2Generator,
    "mtv-encoder": MTVEncoder,
    "directions": Directions,
}

_lock = threading.Lock()          # guards the dicts below; held for lookups only, never while a model is built
_loaded: dict[tuple[str, str, torch.dtype], nn.Module] = {}
_building: dict[tuple[str, str, torch.dtype], threading.Lock] = {}  # one lock per model being built


def model_class(name: str) -> type:
    if name not in MODEL_CLASSES:
        raise ModelNotAvailable(f"Model {name!r} has no class in core/loading.py MODEL_CLASSES "
                                f"(known: {', '.join(sorted(MODEL_CLASSES))}).")
    return MODEL_CLASSES[name]


def load_model(name: str, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32) -> nn.Module:
    """Model `name` in eval mode, built once per (name, device, dtype) and shared.

    hub re-verifies its files (stat signature, sha256 if changed) before it is built. Building holds only this
    model's own lock: other models load, and loaded ones are handed out, meanwhile."""
    key = (name, str(torch.device(device)), dtype)
    with _lock:
        if key in _loaded:
            return _loaded[key]
        building = _building.setdefault(key, threading.Lock())
    with building:
        with _lock:
            if key in _loaded:
                return _loaded[key]
        folder = resolve(name)  # raises ModelNotAvailable / ChecksumMismatch
        model = model_class(name).from_pretrained(str(folder), device=device, dtype=dtype)
        with _lock:
            _loaded[key] = model
            _building.pop(key, None)
        return model


def is_loaded(name: str) -> bool:
    """Whether model `name` is already built in this process, on any device and dtype."""
    with _lock:
        return any(key[0] == name for key in _loaded)


def clear_cache() -> None:
    """Forget loaded models and hub's verified folders (tests; after replacing files on disk)."""
    import hub.store

    with _lock:
        _loaded.clear()
    hub.store.clear_cache()
