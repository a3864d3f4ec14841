"""Capability subcommands of `python -m core`, registered in `core/cli.py`.

Each capability adds a `register_<name>(subparsers)` here and lists it in REGISTER.
"""
from __future__ import annotations


def register_parse(sub) -> None:
    p = sub.add_parser("parse", help="face parsing: label PNG (CelebAMask-HQ classes + occluder=19)")
    p.add_argument("image", help="image file, or a folder (then --out/--color are folders)")
    p.add_argument("--out", required=True, help="single-channel label PNG, same size as the input")
    p.add_argument("--color", default=None, help="the labels in the fixed palette (core/labels.py)")
    p.add_argument("--face", type=int, default=0, help="face index, 0 = largest")
    p.set_defaults(func=_cmd_parse)


def _cmd_parse(args) -> int:
    import os

    from PIL import Image

    from .cli import expand_inputs, save_image
    from .labels import colorize
    from .pipelines.parse import parse_photo

    inputs = expand_inputs([args.image])
    batch = os.path.isdir(args.image)
    for path in inputs:
        res = parse_photo(path, args.face)
        stem = os.path.splitext(os.path.basename(path))[0] + ".png"
        out = os.path.join(args.out, stem) if batch else args.out
        os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
        Image.fromarray(res.labels, mode="L").save(out)
        if args.color:
            save_image(os.path.join(args.color, stem) if batch else args.color, colorize(res.labels))
    return 0


REGISTER: list = [register_parse]
