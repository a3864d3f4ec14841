"""Attribute sliders: linear directions in StyleGAN2's W space (InterFaceGAN, Shen et al. CVPR 2020).

A slider is a unit normal n [w_dim] of a linear boundary in W (InterFaceGAN sec. 2.2, eq. 2-3), a unit
`std` (the standard deviation of <w - w_avg, n> over generator samples, so +-3 spans the data) and the
w+ layers [first, last] (inclusive) it edits. Editing is InterFaceGAN's w_edit = w + alpha n (eq. 4)
restricted to those layers, alpha = value * std. `train/directions.py` fits and writes the folder:

    directions.safetensors   {name: [w_dim] float32 unit vector}
    directions.json          {"sliders": {name: {"std", "layers", ...}}, "generator": ..., ...}
"""
from __future__ import annotations

import json
import os

import torch
from safetensors.torch import load_file


def load_directions(folder: str, device: str | torch.device = "cpu") -> dict[str, dict]:
    """-> {name: {"n": [w_dim] float32 unit vector, "std": float, "layers": (first, last), ...json fields}}."""
    with open(os.path.join(folder, "directions.json")) as f:
        meta = json.load(f)
    vecs = load_file(os.path.join(folder, "directions.safetensors"))
    out = {}
    for name, info in meta["sliders"].items():
        out[name] = dict(info, n=vecs[name].float().to(device), std=float(info["std"]),
                         layers=tuple(int(i) for i in info["layers"]))
    return out


def apply_edits(ws: torch.Tensor, directions: dict[str, dict], values: dict[str, float]) -> torch.Tensor:
    """ws [N, num_ws, w_dim] -> edited copy: ws[:, a:b+1] += value * std * n for each named slider.

    Values are in slider units (1 = one standard deviation of the generator's samples along n);
    unknown names raise KeyError, zero values are skipped.
    """
    out = ws.clone()
    for name, value in values.items():
        d = directions[name]
        if not value:
            continue
        a, b = d["layers"]
        out[:, a:b + 1] += (float(value) * d["std"]) * d["n"].to(device=ws.device, dtype=ws.dtype)
    return out


class Directions:
    """Registry class of a directions folder: core.loading.load_model("directions") -> load_directions(folder) (a dict, not a
    network; `dtype` is ignored, the normals stay float32)."""

    @staticmethod
    def from_pretrained(folder: str, device: str | torch.device = "cpu", dtype: torch.dtype | None = None) -> dict:
        return load_directions(folder, device=device)
