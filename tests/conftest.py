"""Shared fixtures: real photos from ../shared/data (skipped with a reason when absent) and skimage's astronaut."""
from __future__ import annotations

import os

import numpy as np
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.environ.get("FACELAB_DATA", os.path.join(ROOT, "..", "shared", "data"))


@pytest.fixture(scope="session")
def data_dir() -> str:
    if not os.path.isdir(os.path.join(DATA, "celebamask_hq")):
        pytest.skip(f"face data not found at {DATA} (set FACELAB_DATA to the shared data folder)")
    return DATA


@pytest.fixture(scope="session")
def celebamask(data_dir):
    """Function (index) -> (path of image, path of label PNG) of a CelebAMask-HQ pair."""
    def get(i: int) -> tuple[str, str]:
        return (os.path.join(data_dir, "celebamask_hq", "images", f"{i:04d}.jpg"),
                os.path.join(data_dir, "celebamask_hq", "labels", f"{i:04d}.png"))
    return get


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    from skimage import data
    return data.astronaut()  # [512, 512, 3] uint8, one face


@pytest.fixture(scope="session")
def identities(data_dir) -> dict[str, list[str]]:
    root = os.path.join(data_dir, "celeba_identities")
    return {d: sorted(os.path.join(root, d, f) for f in os.listdir(os.path.join(root, d)))
            for d in sorted(os.listdir(root))}


def serve_models(monkeypatch, root, classes: dict):
    """Generator for fixtures (`yield from serve_models(...)`): the hub serves root/<name>/ as model `name` for
    each name -> lazy class of `classes` (temporary registry entries, every file hashed, and core.loading's
    MODEL_CLASSES), then clears the caches."""
    from core import loading
    from hub import registry, store

    for name, cls in classes.items():
        files = {f.name: store.sha256_file(f) for f in (root / name).iterdir()}
        monkeypatch.setitem(registry.MODELS, name, registry.ModelEntry(
            name=name, files=files, licence="test", data_terms="test", retrain="test"))
        monkeypatch.setitem(loading.MODEL_CLASSES, name, cls())
    monkeypatch.setenv(store.ENV_VAR, str(root))
    loading.clear_cache()
    yield root
    loading.clear_cache()


def build_without_models(monkeypatch, tab, names) -> list:
    """The blocks of `tab.build()` (an apps/ module) with models `names` unregistered and no checkpoint folder
    override: what a tab shows when its models are not there. Asserts build() hands back no inputs."""
    import gradio as gr

    from core import loading
    from hub import registry, store

    for name in names:
        monkeypatch.delitem(registry.MODELS, name, raising=False)
    monkeypatch.delenv(store.ENV_VAR, raising=False)
    loading.clear_cache()
    with gr.Blocks() as blocks:
        assert tab.build() == (None, None)
    return list(blocks.blocks.values())


def pytest_collection_modifyitems(config, items):
    """Tests marked `gpu` run where CUDA is; elsewhere (CI: a 2-core CPU) they are skipped with a reason."""
    marked = [item for item in items if item.get_closest_marker("gpu")]
    if not marked:
        return
    import torch

    if torch.cuda.is_available():
        return
    for item in marked:
        item.add_marker(pytest.mark.skip(reason="needs a CUDA device (marked gpu)"))
