"""`python -m cli SUBCOMMAND ...`: the one command-line dispatcher of FaceLab.

Each capability adds a subcommand here (`analyze`, `align`, `parse`, ...): a
`_cmd_<name>(args)` function plus its arguments in `build_parser`. Commands
take a file or a folder of files (batch), print JSON or write images, and turn
`FaceLabError`s into one clear line on stderr.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from core.errors import FaceLabError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif")


def expand_inputs(paths: list[str]) -> list[str]:
    """Files as given; folders expanded to their image files (sorted)."""
    out = []
    for p in paths:
        if os.path.isdir(p):
            out += sorted(os.path.join(p, f) for f in os.listdir(p) if f.lower().endswith(IMAGE_EXTS))
        else:
            out.append(p)
    return out


def run_batch(image: str, work) -> int:
    """Call work(path, where) for IMAGE (a file) or for each image file of a folder; `where(target)` is the
    output path: `target` itself for a file, `target/<stem>.png` for a folder. A FaceLabError ends a single-file
    run; in a folder it is reported on stderr and counted. -> exit status (1 when any image failed)."""
    batch = os.path.isdir(image)
    failed = 0
    for path in expand_inputs([image]):
        stem = os.path.splitext(os.path.basename(path))[0] + ".png"
        where = (lambda target, stem=stem: os.path.join(target, stem)) if batch else (lambda target: target)
        try:
            work(path, where)
        except FaceLabError as e:
            if not batch:
                raise
            print(f"{path}: error: {e}", file=sys.stderr, flush=True)
            failed += 1
    return 1 if failed else 0


def save_image(path: str, rgb: np.ndarray) -> None:
    from PIL import Image

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(rgb).save(path)


# --------------------------------------------------------------------------- analyze / align

def _cmd_analyze(args) -> int:
    from core.pipelines.analyze import analyze_photo

    n_read = 0
    for path in expand_inputs(args.images):
        try:
            res = analyze_photo(path, embeddings=True)
            obj = {"path": path, **res.to_json()}
            n_read += 1
        except FaceLabError as e:
            obj = {"path": path, "error": str(e)}
        print(json.dumps(obj) if args.json else _human(obj), flush=True)
    return 0 if n_read else 1


def _human(obj: dict) -> str:
    if "error" in obj:
        return f"{obj['path']}: error: {obj['error']}"
    lines = [f"{obj['path']}: {obj['width']}x{obj['height']}, {len(obj['faces'])} face(s)"]
    for i, f in enumerate(obj["faces"]):
        lines.append(f"  face {i}: bbox {f['bbox']} score {f['score']:.2f} yaw {f['yaw']:.1f} pitch {f['pitch']:.1f} "
                     f"roll {f['roll']:.1f}")
    return "\n".join(lines)


def _cmd_align(args) -> int:
    from core import face as F
    from core.imageio import load_image

    inputs = expand_inputs([args.image])
    batch = len(inputs) > 1 or os.path.isdir(args.image)
    for path in inputs:
        img = load_image(path)
        face = F.pick_face(F.detect_faces(img), args.face)
        crop = F.align_face(img, face, args.size).image
        out = os.path.join(args.out, os.path.splitext(os.path.basename(path))[0] + ".png") if batch else args.out
        save_image(out, crop)
    return 0


# --------------------------------------------------------------------------- dispatcher

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m cli", description="FaceLab command line.")
    sub = p.add_subparsers(dest="command", required=True)

    a = sub.add_parser("analyze", help="detect faces: bbox, landmarks, pose, identity descriptor")
    a.add_argument("images", nargs="+", help="image files or folders")
    a.add_argument("--json", action="store_true", help="one JSON object per image")
    a.set_defaults(func=_cmd_analyze)

    a = sub.add_parser("align", help="write the canonical aligned crop of one face")
    a.add_argument("image", help="image file (or a folder: --out is then a folder)")
    a.add_argument("--out", required=True)
    a.add_argument("--size", type=int, default=256)
    a.add_argument("--face", type=int, default=0, help="face index, 0 = largest")
    a.set_defaults(func=_cmd_align)

    for register in _capability_commands():
        register(sub)
    return p


def _capability_commands():
    """Subcommands of the capabilities (each module has `register(subparsers)`)."""
    from . import commands
    return commands.REGISTER


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except FaceLabError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
