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


def register_reconstruct(sub) -> None:
    p = sub.add_parser("reconstruct", help="VAE reconstruction of the aligned face (masked 144 px, multi-stage 128 px)")
    p.add_argument("image", help="image file, or a folder (then --out/--aligned-out/--mask-out are folders)")
    p.add_argument("--model", choices=["masked-vae", "multistage-vae"], default="masked-vae")
    p.add_argument("--out", required=True, help="reconstruction PNG at the model's resolution (same crop as CROP)")
    p.add_argument("--aligned-out", default=None, metavar="CROP", help="the aligned input crop the model saw")
    p.add_argument("--mask-out", default=None, metavar="MASK",
                   help="masked-vae only: predicted face probability x255, grey PNG (>= 128 = face)")
    p.add_argument("--face", type=int, default=0, help="face index, 0 = largest")
    p.set_defaults(func=_cmd_reconstruct)


def _cmd_reconstruct(args) -> int:
    import os
    import sys

    import numpy as np
    from PIL import Image

    from .cli import expand_inputs, save_image
    from .errors import FaceLabError
    from .pipelines.vae import reconstruct_photo

    if args.mask_out and args.model != "masked-vae":
        raise FaceLabError(f"{args.model} predicts no face mask; --mask-out needs --model masked-vae.")
    inputs = expand_inputs([args.image])
    batch = os.path.isdir(args.image)
    failed = 0
    for path in inputs:
        stem = os.path.splitext(os.path.basename(path))[0] + ".png"
        where = (lambda target: os.path.join(target, stem)) if batch else (lambda target: target)
        try:
            res = reconstruct_photo(path, args.model, args.face)
        except FaceLabError as e:
            if not batch:
                raise
            print(f"{path}: error: {e}", file=sys.stderr, flush=True)
            failed += 1
            continue
        save_image(where(args.out), res.reconstruction)
        if args.aligned_out:
            save_image(where(args.aligned_out), res.crop)
        if args.mask_out:
            out = where(args.mask_out)
            os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
            Image.fromarray((res.mask * 255.0 + 0.5).astype(np.uint8), mode="L").save(out)
    return 1 if failed else 0


def register_sample(sub) -> None:
    p = sub.add_parser("sample", help="a random face from the VAE prior (deterministic per seed)")
    p.add_argument("--model", choices=["masked-vae", "multistage-vae"], default="masked-vae")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="PNG at the model's resolution")
    p.set_defaults(func=_cmd_sample)


def _cmd_sample(args) -> int:
    from .cli import save_image
    from .pipelines.vae import sample

    save_image(args.out, sample(args.model, args.seed, 1)[0])
    return 0


REGISTER: list = [register_parse, register_reconstruct, register_sample]
