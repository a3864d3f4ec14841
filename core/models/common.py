"""Shared pieces of every FaceLab network: Hub-layout save/load and small layers.

A model folder is what a Hugging Face model repo holds:
`config.json` (constructor arguments), `model.safetensors` (fp16 weights, or
`model-0000K-of-0000N.safetensors` + `model.safetensors.index.json` when one
file would pass 16 MiB) and `README.md` (model card). A model is rebuilt from
its config alone (as diffusers' `register_to_config`); nothing is unpickled.
"""
from __future__ import annotations

import json
import os
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from torch import nn

MAX_SHARD_BYTES = 15 * 1024 * 1024  # stay under the 16 MiB per-file limit


class ConfigModule(nn.Module):
    """nn.Module whose constructor keyword arguments are its config.

    Subclasses call `super().__init__(**config)` style: `self.config` must hold
    every argument needed to rebuild the module (JSON types only).
    """

    def __init__(self, **config: Any):
        super().__init__()
        self.config = dict(config)

    def save_pretrained(self, folder: str, dtype: torch.dtype = torch.float16, card: str | None = None,
                        extra_config: dict | None = None) -> list[str]:
        """Write config.json + fp16 safetensors (sharded under 16 MiB) [+ README.md]; return file names."""
        os.makedirs(folder, exist_ok=True)
        state = {k: (v.to(dtype) if v.is_floating_point() else v).detach().cpu().contiguous()
                 for k, v in self.state_dict().items()}
        cfg = dict(self.config, _class=type(self).__name__, **(extra_config or {}))
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(cfg, f, indent=2, sort_keys=True)
        files = ["config.json"] + save_state(state, folder)
        if card is not None:
            with open(os.path.join(folder, "README.md"), "w") as f:
                f.write(card)
            files.append("README.md")
        return files

    @classmethod
    def from_pretrained(cls, folder: str, device: str | torch.device = "cpu",
                        dtype: torch.dtype = torch.float32):
        with open(os.path.join(folder, "config.json")) as f:
            cfg = {k: v for k, v in json.load(f).items() if not k.startswith("_") and k not in EXTRA_KEYS}
        model = cls(**cfg)
        model.load_state_dict(load_state(folder), strict=True)
        return model.to(device=device, dtype=dtype).eval()


# config.json keys that describe the checkpoint rather than the constructor
EXTRA_KEYS = {"metrics", "training"}


def split_by_size(tensors: dict[str, torch.Tensor], max_bytes: int | None = None) -> list[dict[str, torch.Tensor]]:
    """Consecutive groups of tensors, each under `max_bytes` (default MAX_SHARD_BYTES; a larger tensor stands alone)."""
    max_bytes = max_bytes or MAX_SHARD_BYTES
    shards: list[dict[str, torch.Tensor]] = [{}]
    size = 0
    for k, v in tensors.items():
        n = v.numel() * v.element_size()
        if size + n > max_bytes and shards[-1]:
            shards.append({})
            size = 0
        shards[-1][k] = v
        size += n
    return shards


def save_state(state: dict[str, torch.Tensor], folder: str) -> list[str]:
    """Save a state dict as one or several safetensors files each under MAX_SHARD_BYTES."""
    shards = split_by_size(state)
    if len(shards) == 1:
        save_file(shards[0], os.path.join(folder, "model.safetensors"))
        return ["model.safetensors"]
    names = [f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors" for i in range(len(shards))]
    weight_map = {}
    for name, shard in zip(names, shards):
        save_file(shard, os.path.join(folder, name))
        weight_map.update({k: name for k in shard})
    with open(os.path.join(folder, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {}, "weight_map": weight_map}, f, indent=2)
    return names + ["model.safetensors.index.json"]


def load_state(folder: str) -> dict[str, torch.Tensor]:
    index = os.path.join(folder, "model.safetensors.index.json")
    if os.path.exists(index):
        with open(index) as f:
            names = sorted(set(json.load(f)["weight_map"].values()))
    else:
        names = ["model.safetensors"]
    state: dict[str, torch.Tensor] = {}
    for name in names:
        state.update(load_file(os.path.join(folder, name)))
    return state
