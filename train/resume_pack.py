"""Bring a GAN's resumable state home in pieces that a device call can return, and put it back together.

    python -m train.resume_pack pack STATE.safetensors OUTDIR [--prefix mask2face]
    python -m train.resume_pack unpack OUTDIR/mask2face.part*.safetensors --out STATE.safetensors
    python -m train.resume_pack snapshot CKPT_DIR OUT_DIR   # sharded checkpoints (state.json + state-s*): a copy
                                                            # of the current state, optimiser files left behind

`pack` drops the optimiser moments (keys starting with `opt`), stores float tensors as fp16 and
splits them into safetensors parts under 15 MiB (a device call returns at most 16 MiB per file);
`unpack` joins the parts back into one fp32 state file. Resuming from it re-creates the optimiser
(Adam moments start from zero); the trainers tolerate that (a short warm restart).
"""
from __future__ import annotations

import argparse
import os

import torch
from safetensors.torch import load_file, save_file

from core.models.common import split_by_size


# Adam moments flattened into safetensors keys "<prefix>.<param index>.<name>" (what the GAN trainers save)
def opt_tensors(opt: torch.optim.Optimizer, prefix: str) -> dict[str, torch.Tensor]:
    out = {}
    for i, st in opt.state_dict()["state"].items():
        for k, v in st.items():
            out[f"{prefix}.{i}.{k}"] = (v if torch.is_tensor(v) else torch.tensor(float(v))).detach().cpu().contiguous()
    return out


def load_opt(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], prefix: str) -> None:
    sd = opt.state_dict()
    state: dict[int, dict] = {}
    for key, v in tensors.items():
        if key.startswith(prefix + "."):
            _, i, k = key.split(".", 2)
            state.setdefault(int(i), {})[k] = v
    if not state:
        return  # e.g. a state brought home by `pack` (moments dropped): Adam restarts
    sd["state"] = state
    opt.load_state_dict(sd)


def pack(state: str, outdir: str, prefix: str) -> list[str]:
    t = load_file(state)
    t = {k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in t.items() if not k.startswith("opt")}
    os.makedirs(outdir, exist_ok=True)
    parts = split_by_size(t)
    names = []
    for i, part in enumerate(parts):
        names.append(os.path.join(outdir, f"{prefix}.part{i:02d}.safetensors"))
        save_file(part, names[-1])
    return names


def unpack(parts: list[str], out: str) -> None:
    t = {}
    for p in sorted(parts):
        t.update({k: (v.float() if v.is_floating_point() else v) for k, v in load_file(p).items()})
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    save_file(t, out)


def snapshot(ckpt: str, out: str) -> dict:
    """Copy the model shards a sharded checkpoint's state.json names (train/stylegan.py, train/encoder.py) into
    `out` with a state.json that names no optimiser files (resuming from it re-creates Adam). -> that json."""
    import json
    import shutil

    with open(os.path.join(ckpt, "state.json")) as f:
        state = json.load(f)
    os.makedirs(out, exist_ok=True)
    for name in state["files"]:
        shutil.copy(os.path.join(ckpt, name), out)
    state["optim_files"] = []
    with open(os.path.join(out, "state.json"), "w") as f:
        json.dump(state, f)
    return state


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack")
    p.add_argument("state")
    p.add_argument("outdir")
    p.add_argument("--prefix", default="state")
    u = sub.add_parser("unpack")
    u.add_argument("parts", nargs="+")
    u.add_argument("--out", required=True)
    c = sub.add_parser("snapshot")
    c.add_argument("ckpt")
    c.add_argument("out")
    a = ap.parse_args(argv)
    if a.cmd == "pack":
        print("\n".join(pack(a.state, a.outdir, a.prefix)))
    elif a.cmd == "snapshot":
        print(f"snapshot of {a.ckpt} at step {snapshot(a.ckpt, a.out).get('step')} -> {a.out}")
    else:
        unpack(a.parts, a.out)


if __name__ == "__main__":
    main()
