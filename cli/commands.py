"""Capability subcommands of `python -m cli`, registered in `cli/main.py`.

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

    from core.labels import colorize
    from core.pipelines.parse import parse_photo
    from .main import expand_inputs, save_image

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

    import numpy as np
    from PIL import Image

    from core.errors import FaceLabError
    from core.pipelines.vae import reconstruct_photo
    from .main import run_batch, save_image

    if args.mask_out and args.model != "masked-vae":
        raise FaceLabError(f"{args.model} predicts no face mask; --mask-out needs --model masked-vae.")
    def work(path, where):
        res = reconstruct_photo(path, args.model, args.face)
        save_image(where(args.out), res.reconstruction)
        if args.aligned_out:
            save_image(where(args.aligned_out), res.crop)
        if args.mask_out:
            out = where(args.mask_out)
            os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
            Image.fromarray((res.mask * 255.0 + 0.5).astype(np.uint8), mode="L").save(out)

    return run_batch(args.image, work)


def register_sample(sub) -> None:
    p = sub.add_parser("sample", help="a random face from the StyleGAN2 or a VAE prior (deterministic per seed)")
    p.add_argument("--model", choices=["stylegan", "masked-vae", "multistage-vae"], default="stylegan")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--truncation", type=float, default=None, metavar="T",
                   help="stylegan only: w = w_avg + T (w - w_avg); 1 = none (default), 0 = the mean face")
    p.add_argument("--latent", default=None, metavar="CODE",
                   help="stylegan only: also write the sample's latent code (.npz) for `edit`")
    p.add_argument("--out", required=True, help="PNG at the model's resolution")
    p.set_defaults(func=_cmd_sample)


def _cmd_sample(args) -> int:
    from core.errors import FaceLabError
    from .main import save_image

    if args.model != "stylegan":
        if args.truncation is not None or args.latent:
            raise FaceLabError("--truncation and --latent are for --model stylegan.")
        from core.pipelines.vae import sample

        save_image(args.out, sample(args.model, args.seed, 1)[0])
        return 0
    from core.pipelines import gan

    res = gan.sample(args.seed, 1.0 if args.truncation is None else args.truncation)
    save_image(args.out, res.image)
    if args.latent:
        _write_bytes(args.latent, gan.dump_code(res.code))
    return 0


def _write_bytes(path: str, data: bytes) -> None:
    import os

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def register_invert(sub) -> None:
    p = sub.add_parser("invert", help="StyleGAN2 inversion (MTV encoder): latent code + 128 px reconstruction")
    p.add_argument("image", help="image file")
    p.add_argument("--out", required=True, metavar="RECON", help="reconstruction PNG, 128 px (same crop as ALIGNED)")
    p.add_argument("--latent", required=True, metavar="CODE", help="the latent code (.npz) for `edit`")
    p.add_argument("--refine", type=int, default=0, metavar="N",
                   help="Adam steps on w+ after the encoder (MSE + 1 - SSIM); 0 = the encoder's code")
    p.add_argument("--aligned", default=None, metavar="ALIGNED", help="the aligned 128 px input crop")
    p.add_argument("--pasted", default=None, metavar="PASTED", help="the photo with the reconstruction pasted back")
    p.add_argument("--face", type=int, default=0, help="face index, 0 = largest")
    p.set_defaults(func=_cmd_invert)


def _cmd_invert(args) -> int:
    import json
    import sys

    from core.pipelines import gan
    from .main import save_image

    def progress(step, steps, loss):
        print(f"refine {step}/{steps}: loss {loss:.4f}", file=sys.stderr, flush=True)

    res = gan.invert_photo(args.image, refine=args.refine, progress=progress, face=args.face)
    save_image(args.out, res.reconstruction)
    _write_bytes(args.latent, gan.dump_code(res.code))
    if args.aligned:
        save_image(args.aligned, res.crop)
    if args.pasted:
        save_image(args.pasted, res.pasted)
    print(json.dumps(res.quality.to_json()), flush=True)
    return 0


def register_edit(sub) -> None:
    p = sub.add_parser("edit", help="attribute sliders on a latent code (from `invert` or `sample --latent`)")
    p.add_argument("code", nargs="?", help="latent code .npz")
    p.add_argument("--set", action="append", default=[], metavar="NAME=VALUE,...",
                   help="slider values, e.g. age=2,smile=-1,yaw=1.5. Unit: one standard deviation of the "
                        "generator's faces along the slider's direction (+-3 spans the data); 0 = no change. "
                        "`edit --list` prints the sliders")
    p.add_argument("--out", default=None, help="the edited face, PNG at the generator's resolution")
    p.add_argument("--latent-out", default=None, metavar="CODE", help="also write the edited code (.npz)")
    p.add_argument("--photo", default=None, help="the photo the code was inverted from (for --pasted)")
    p.add_argument("--pasted", default=None, metavar="PASTED", help="the edit pasted back into --photo")
    p.add_argument("--list", action="store_true", help="print the sliders (name, w+ layers, effect) and exit")
    p.set_defaults(func=_cmd_edit)


def _cmd_edit(args) -> int:
    from core.errors import FaceLabError
    from core.pipelines import gan
    from .main import save_image

    if args.list:
        for s in gan.sliders():
            print(f"{s.name}: {s.info}", flush=True)
        return 0
    if not args.code or not args.out:
        raise FaceLabError("edit needs CODE and --out (or --list).")
    if bool(args.photo) != bool(args.pasted):
        raise FaceLabError("--photo and --pasted go together (the photo, and where to write the edit pasted in it).")
    code = gan.edit_code(gan.load_code(args.code), gan.parse_edits(args.set))
    image = gan.decode(code)
    save_image(args.out, image)
    if args.latent_out:
        _write_bytes(args.latent_out, gan.dump_code(code))
    if args.pasted:
        save_image(args.pasted, gan.paste(args.photo, image, code))
    return 0


def register_mask2face(sub) -> None:
    p = sub.add_parser("mask2face", help="a face for a semantic mask (label PNG 0-19 or colour mask in the palette)")
    p.add_argument("--mask", required=True, help="label PNG (values 0-19) or colour mask (core/labels.py palette)")
    p.add_argument("--style", default=None, metavar="PHOTO",
                   help="photo whose per-region styles dress the mask (default: styles drawn from --seed)")
    p.add_argument("--seed", type=int, default=0, help="seed of the style draw and of the per-pixel noise")
    p.add_argument("--temperature", type=float, default=1.0, help="spread of the seed's style draw (< 1: tamer)")
    p.add_argument("--components", default=None, metavar="LIST",
                   help="comma-separated parts whose styles come from --from: eyes, nose, mouth, skin, hair, "
                        "accessories, clothes, background")
    p.add_argument("--from", dest="from_photo", default=None, metavar="PHOTO_B", help="photo B for --components")
    p.add_argument("--out", required=True, help="PNG with the mask's size")
    p.set_defaults(func=_cmd_mask2face)


def _cmd_mask2face(args) -> int:
    from core.errors import FaceLabError
    from core.pipelines.mask2face import generate
    from .main import save_image

    if bool(args.components) != bool(args.from_photo):
        raise FaceLabError("--components and --from go together (the parts, and the photo to take them from).")
    res = generate(args.mask, style_image=args.style, seed=args.seed, components=args.components,
                   from_image=args.from_photo, temperature=args.temperature)
    save_image(args.out, res.image)
    return 0


def register_deocclude(sub) -> None:
    p = sub.add_parser("deocclude", help="remove what covers the face (sunglasses, masks, hands...) and inpaint it")
    p.add_argument("image", help="image file, or a folder (then --out/--mask/--mask-out are folders)")
    p.add_argument("--out", required=True, help="the photo with the occlusion removed, same size as the input")
    p.add_argument("--mask", default=None, metavar="MASK",
                   help="what to remove, white = remove, the input's size; skips the automatic detection "
                        "(with a folder input: a folder of masks named like the images, .png)")
    p.add_argument("--mask-out", default=None, metavar="PRED_MASK",
                   help="the detected occlusion mask (white = occluded), grey PNG at the input's size")
    p.add_argument("--hair", action="store_true", help="also count hair over the eyes, nose and mouth as occlusion")
    p.add_argument("--keep-glasses", action="store_true", help="do not count eyeglasses as occlusion")
    p.add_argument("--face", type=int, default=0, help="face index, 0 = largest")
    p.set_defaults(func=_cmd_deocclude)


def _cmd_deocclude(args) -> int:
    import os

    import numpy as np
    from PIL import Image

    from core.errors import FaceLabError
    from core.pipelines.deocclude import deocclude_photo
    from .main import run_batch, save_image

    if args.mask and args.mask_out:
        raise FaceLabError("--mask-out writes the detected mask, and --mask skips the detection: give one of them.")
    if args.mask and os.path.isdir(args.image) != os.path.isdir(args.mask):
        raise FaceLabError("--mask must be a folder when IMAGE is a folder, and a file when IMAGE is a file.")

    def work(path, where):
        mask = None
        if args.mask:
            mask = where(args.mask)
            if not os.path.exists(mask):
                raise FaceLabError(f"No mask for {path}: {mask} does not exist.")
        res = deocclude_photo(path, args.face, mask=mask, hair=args.hair, glasses=not args.keep_glasses)
        save_image(where(args.out), res.result)
        if args.mask_out:
            out = where(args.mask_out)
            os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
            Image.fromarray(res.photo_mask.astype(np.uint8) * 255, mode="L").save(out)

    return run_batch(args.image, work)


def register_pose(sub) -> None:
    p = sub.add_parser("pose", help="turn a face to a new yaw / pitch, or to the pose of a guide photo")
    p.add_argument("image", help="image file, or a folder (then --out/--aligned-out are folders)")
    p.add_argument("--yaw", type=float, default=None, metavar="DEG",
                   help="absolute target yaw, degrees (> 0 = face turned to the image's right); "
                        "default: the face's own")
    p.add_argument("--pitch", type=float, default=None, metavar="DEG",
                   help="absolute target pitch, degrees (> 0 = looking up); default: the face's own")
    p.add_argument("--guide", default=None, metavar="PHOTO",
                   help="take the target yaw / pitch from this photo's largest face (instead of --yaw/--pitch)")
    p.add_argument("--out", required=True, help="the photo with the turned face pasted back, same size as the input")
    p.add_argument("--aligned-out", default=None, metavar="CROP", help="the edited aligned face crop (128 px)")
    p.add_argument("--measure", action="store_true",
                   help="also print the yaw / pitch the front-end measures on the output crop (slower)")
    p.add_argument("--face", type=int, default=0, help="face index, 0 = largest")
    p.set_defaults(func=_cmd_pose)


def _cmd_pose(args) -> int:
    from core.errors import FaceLabError
    from core.pipelines.pose import check_angles, edit_photo, face_pose, guide_pose, measure_crop
    from .main import run_batch, save_image

    if args.guide and (args.yaw is not None or args.pitch is not None):
        raise FaceLabError("--guide sets the target pose: give either --guide or --yaw/--pitch, not both.")
    if not args.guide and args.yaw is None and args.pitch is None:
        raise FaceLabError("Give the target pose: --yaw and/or --pitch (degrees), or --guide PHOTO.")
    yaw, pitch = guide_pose(args.guide) if args.guide else (args.yaw, args.pitch)
    check_angles(0 if yaw is None else yaw, 0 if pitch is None else pitch)  # fail once, before any photo
    def work(path, where):
        res = edit_photo(path, yaw, pitch, face=args.face)
        save_image(where(args.out), res.result)
        if args.aligned_out:
            save_image(where(args.aligned_out), res.output)
        (sy, sp), (ty, tp) = res.source_pose, res.target_pose
        line = f"{path}: yaw {sy:+.1f} -> {ty:+.1f}, pitch {sp:+.1f} -> {tp:+.1f}"
        if args.measure:
            found = measure_crop(res.output)
            line += "; measured: no face found" if found is None else \
                "; measured: yaw {:+.1f}, pitch {:+.1f}".format(*face_pose(found))
        print(line, flush=True)

    return run_batch(args.image, work)


REGISTER: list = [register_parse, register_reconstruct, register_sample, register_mask2face, register_deocclude,
                  register_pose, register_invert, register_edit]
