"""hub/: resolution order, sha256 checks, downloads from a local fake Hub (tests/hub_server.py), CLI.

Everything runs offline against 127.0.0.1 with a temporary Hugging Face cache.
"""
from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest
import torch
from huggingface_hub import try_to_load_from_cache
from torch import nn

import hub
from core import loading
from core.loading import load_model
from core.models import common
from core.models.common import ConfigModule
from hub import registry, store
from hub.__main__ import main as hub_cli
from tests.hub_server import FakeHub

REPO_ID = "facelab/tiny"
RETRAIN = "python -m train.tiny --out checkpoints/tiny"


class TinyNet(ConfigModule):
    """A two-layer ConfigModule, small enough to be served in milliseconds."""

    def __init__(self, channels: int = 4, hidden: int = 64):
        super().__init__(channels=channels, hidden=hidden)
        self.conv = nn.Conv2d(3, channels, 3, padding=1)
        self.head = nn.Linear(channels, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, 3, H, W] -> [N, hidden]
        return self.head(self.conv(x).mean(dim=(2, 3)))


def _tinynet():
    return TinyNet


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """A fresh fake Hub, HF cache, bundled root and process caches for every test."""
    with FakeHub() as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
        monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        monkeypatch.delenv(store.ENV_VAR, raising=False)
        monkeypatch.setattr(store, "BUNDLED_ROOT", tmp_path / "bundled")
        loading.clear_cache()
        yield server
        loading.clear_cache()


def _publish(server: FakeHub, folder: Path, monkeypatch, name: str = "tiny", repo_id: str = REPO_ID,
             revision: str | None = None, extra_files: dict | None = None) -> registry.ModelEntry:
    """Serve `folder` from the fake Hub and register it as model `name`."""
    commit = server.add_repo(REPO_ID, folder)
    files = dict(hub.hash_folder(folder), **(extra_files or {}))
    monkeypatch.setitem(loading.MODEL_CLASSES, name, _tinynet())
    entry = registry.ModelEntry(name=name, files=files,
                                licence="cc-by-nc-4.0", data_terms="CelebAMask-HQ: non-commercial research only",
                                retrain=RETRAIN, repo_id=repo_id, revision=revision or commit)
    monkeypatch.setitem(registry.MODELS, name, entry)
    return entry


@pytest.fixture
def saved(tmp_path) -> tuple[TinyNet, Path]:
    torch.manual_seed(0)
    model = TinyNet()
    folder = tmp_path / "trained" / "tiny"
    model.save_pretrained(str(folder), card="# tiny\nTest model.\n")
    return model, folder


def _fp16_reference(model: TinyNet) -> TinyNet:
    reference = TinyNet(**model.config)
    reference.load_state_dict({k: v.half().float() for k, v in model.state_dict().items()})
    return reference.eval()


def _weight_gets(server: FakeHub) -> list[str]:
    return [path for method, path in server.requests if method == "GET" and path.startswith("/cdn/")]


@pytest.mark.parametrize("shards", [1, 3])
def test_download_then_load_equals_fp16_weights(fake_hub, tmp_path, monkeypatch, shards):
    if shards > 1:  # 300-byte shards: conv (224 B), head.weight (512 B), head.bias (128 B)
        monkeypatch.setattr(common, "MAX_SHARD_BYTES", 300)
    torch.manual_seed(0)
    model = TinyNet()
    folder = tmp_path / "trained"
    model.save_pretrained(str(folder), card="# tiny\n")
    entry = _publish(fake_hub, folder, monkeypatch)
    weights = [f for f in entry.files if f.endswith(".safetensors")]
    assert len(weights) == shards
    assert not hub.available("tiny")

    loaded = load_model("tiny")

    x = torch.randn(2, 3, 8, 8)
    assert isinstance(loaded, TinyNet) and not loaded.training
    assert torch.equal(loaded(x), _fp16_reference(model)(x))
    assert len(_weight_gets(fake_hub)) == len(weights)  # each weight file fetched once
    assert hub.resolve("tiny").parent.name == "snapshots"
    assert hub.available("tiny")


def test_loaded_once_and_cache_reused_without_requests(fake_hub, saved, monkeypatch):
    model, folder = saved
    _publish(fake_hub, folder, monkeypatch)
    first = load_model("tiny")
    assert load_model("tiny") is first  # shared in-process
    assert load_model("tiny", dtype=torch.float16) is not first

    loading.clear_cache()  # as a new process would: only the disk cache is left
    fake_hub.requests.clear()
    again = load_model("tiny")
    assert again is not first
    assert fake_hub.requests == []  # pinned commit + cached files: not even a HEAD
    x = torch.randn(1, 3, 8, 8)
    assert torch.equal(again(x), first(x))


def test_offline_uses_warm_cache(fake_hub, saved, monkeypatch):
    model, folder = saved
    _publish(fake_hub, folder, monkeypatch)
    load_model("tiny")
    loading.clear_cache()
    fake_hub.requests.clear()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    x = torch.randn(1, 3, 8, 8)
    assert torch.equal(load_model("tiny")(x), _fp16_reference(model)(x))
    assert hub.available("tiny")
    assert fake_hub.requests == []


def test_offline_cold_cache_is_not_available(fake_hub, saved, monkeypatch):
    _publish(fake_hub, saved[1], monkeypatch)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    assert not hub.available("tiny")
    with pytest.raises(hub.ModelNotAvailable, match="HF_HUB_OFFLINE"):
        load_model("tiny")
    assert fake_hub.requests == []


@pytest.mark.parametrize("problem", ["RepoNotFound", "RevisionNotFound", "EntryNotFound"])
def test_not_on_hub_gives_helpful_error(fake_hub, saved, monkeypatch, problem):
    kwargs = {"RepoNotFound": {"repo_id": "facelab/nobody"},
              "RevisionNotFound": {"revision": "0" * 40},
              "EntryNotFound": {"extra_files": {"extra.json": "0" * 64}}}[problem]
    _publish(fake_hub, saved[1], monkeypatch, **kwargs)

    with pytest.raises(hub.ModelNotAvailable) as caught:
        load_model("tiny")
    message = str(caught.value)
    assert "'tiny'" in message and "404" in message
    assert "python -m hub pull tiny" in message and RETRAIN in message
    assert not isinstance(caught.value, hub.ChecksumMismatch)
    assert not hub.available("tiny")


def test_checksum_mismatch_is_refused_and_not_kept(fake_hub, saved, monkeypatch):
    entry = _publish(fake_hub, saved[1], monkeypatch)
    commit = entry.revision
    good = fake_hub.repos[REPO_ID][commit]["model.safetensors"]
    bad = bytearray(good)
    bad[-5] ^= 0xFF  # same size, one weight byte altered; the server announces the altered file's hash
    fake_hub.repos[REPO_ID][commit]["model.safetensors"] = bytes(bad)

    with pytest.raises(hub.ChecksumMismatch, match="sha256") as caught:
        load_model("tiny")
    assert entry.files["model.safetensors"] in str(caught.value)
    cache = str(Path(store.hf_options()["cache_dir"]))
    assert try_to_load_from_cache(REPO_ID, "model.safetensors", cache_dir=cache, revision=commit) is None
    assert not any(p.name == hashlib.sha256(bad).hexdigest() for p in Path(cache).rglob("*"))
    assert not hub.available("tiny")

    fake_hub.repos[REPO_ID][commit]["model.safetensors"] = good  # the mirror is fixed: downloads again
    assert isinstance(load_model("tiny"), TinyNet)


def test_resolution_order_env_then_bundled_then_hub(fake_hub, saved, monkeypatch, tmp_path):
    _publish(fake_hub, saved[1], monkeypatch)
    env_root, bundled = tmp_path / "env", store.BUNDLED_ROOT / "tiny"
    shutil.copytree(saved[1], env_root / "tiny")
    shutil.copytree(saved[1], bundled)
    monkeypatch.setenv(store.ENV_VAR, str(env_root))

    assert hub.resolve("tiny") == env_root / "tiny"
    monkeypatch.delenv(store.ENV_VAR)
    assert hub.resolve("tiny") == bundled
    assert fake_hub.requests == []
    shutil.rmtree(bundled)
    assert "snapshots" in hub.resolve("tiny").parts
    assert len(_weight_gets(fake_hub)) == 1


def test_error_message_lists_every_place(fake_hub, saved, monkeypatch, tmp_path):
    _publish(fake_hub, saved[1], monkeypatch)
    monkeypatch.setenv(store.ENV_VAR, str(tmp_path / "env"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    with pytest.raises(hub.ModelNotAvailable) as caught:
        hub.resolve("tiny")
    message = str(caught.value)
    for expected in [str(tmp_path / "env" / "tiny"), str(store.BUNDLED_ROOT / "tiny"), REPO_ID,
                     store.hf_options()["cache_dir"], "python -m hub pull tiny", store.ENV_VAR, RETRAIN]:
        assert expected in message


def test_corrupt_local_folder_is_refused(fake_hub, saved, monkeypatch):
    _publish(fake_hub, saved[1], monkeypatch)
    bundled = store.BUNDLED_ROOT / "tiny"
    shutil.copytree(saved[1], bundled)
    (bundled / "config.json").write_text('{"channels": 4, "hidden": 65}')

    with pytest.raises(hub.ChecksumMismatch, match="sha256") as caught:
        load_model("tiny")
    assert "python -m hub hash" in str(caught.value)
    assert (bundled / "config.json").exists()  # the user's files are left alone
    assert fake_hub.requests == []  # no silent fallback to the Hub
    assert not hub.available("tiny")


def test_unknown_model_is_not_available():
    assert not hub.available("not-a-model")
    with pytest.raises(hub.ModelNotAvailable, match="hub/registry.py"):
        load_model("not-a-model")


def test_registry_entry_rejects_pickles_and_floating_revisions():
    common_args = dict(name="x", licence="", data_terms="", retrain="")
    with pytest.raises(ValueError, match="safetensors"):
        registry.ModelEntry(files={"pytorch_model.bin": "0" * 64}, **common_args)
    with pytest.raises(ValueError, match="40-hex"):
        registry.ModelEntry(files={"config.json": "0" * 64}, repo_id="a/b", revision="main", **common_args)


def test_registry_snippet_from_folder(saved):
    snippet = hub.registry_entry_from_folder("tiny", saved[1], licence="cc-by-nc-4.0")
    for path in saved[1].iterdir():
        assert f"{path.name!r}: {hashlib.sha256(path.read_bytes()).hexdigest()!r}" in snippet
    assert "TinyNet" in snippet and "model_class" not in snippet  # the hub names no class; core/loading.py does
    namespace = {"ModelEntry": registry.ModelEntry}
    exec(snippet, namespace)  # valid Python that builds a valid ModelEntry


def test_cli_pull_list_verify(fake_hub, saved, monkeypatch, capsys):
    entry = _publish(fake_hub, saved[1], monkeypatch)
    assert hub_cli(["list"]) == 0
    assert "missing" in capsys.readouterr().out

    assert hub_cli(["pull", "tiny"]) == 0
    assert hub_cli(["list"]) == 0
    out = capsys.readouterr().out
    assert "hub cache" in out and "cc-by-nc-4.0" in out
    assert hub_cli(["verify"]) == 0

    cached = try_to_load_from_cache(REPO_ID, "config.json", cache_dir=store.hf_options()["cache_dir"],
                                    revision=entry.revision)
    Path(cached).resolve().write_text("{}")
    capsys.readouterr()
    assert hub_cli(["verify", "tiny"]) == 1
    assert "SHA256 MISMATCH" in capsys.readouterr().out


def test_every_registered_model_has_a_class_in_core():
    """hub lists folders, core/loading.py names the class building each: the two lists agree."""
    assert set(loading.MODEL_CLASSES) == set(registry.MODELS)
    assert not hasattr(registry.ModelEntry, "model_class") and not hasattr(hub, "load")
