"""README figures from public images only (skimage's astronaut, public domain) and our own outputs.

    python -m docs.figures mask2face     # docs/mask2face_astronaut.png
    python -m docs.figures deocclusion   # docs/deocclusion_astronaut.png
    python -m docs.figures pose          # docs/pose_astronaut.png
    python -m docs.figures gan           # docs/gan_samples.png, docs/gan_astronaut.png

No dataset photo is copied into the repository: every input here is the astronaut or a face our models made.
"""
from __future__ import annotations

import sys

import cv2
import numpy as np
from PIL import Image

from core.labels import ID, colorize


def tile(images: list[np.ndarray], size: int = 256) -> np.ndarray:
    return np.concatenate([cv2.resize(im, (size, size), interpolation=cv2.INTER_AREA) for im in images], 1)


def mask2face() -> None:
    from skimage import data

    from core.pipelines import mask2face as M

    photo = data.astronaut()
    pm = M.mask_from_photo(photo)
    labels = pm.labels
    recon = M.generate(labels, style_image=pm.crop, style_labels=labels, seed=0).image
    seeds = [M.generate(labels, seed=s).image for s in (1, 2)]
    # an edit by painting: a wider open mouth and longer hair on the parsed mask
    edited = labels.copy()
    ys, xs = np.nonzero(np.isin(labels, (ID["mouth"], ID["upper_lip"], ID["lower_lip"])))
    cy, cx = int(ys.mean()), int(xs.mean())
    cv2.ellipse(edited, (cx, cy), (int((xs.max() - xs.min()) * 0.55), 13), 0, 0, 360, ID["mouth"], -1)
    face_edit = M.generate(edited, style_image=pm.crop, style_labels=labels, seed=0).image
    # style of a generated (seed 2) face on the astronaut's mask: the reference is our own output
    ref = seeds[1]
    ref_labels = labels
    styled = M.generate(labels, style_image=ref, style_labels=ref_labels, seed=0).image
    rows = [tile([colorize(labels), pm.crop, recon, seeds[0], seeds[1]]),
            tile([colorize(edited), face_edit, ref, styled, np.full_like(ref, 255)])]
    Image.fromarray(np.concatenate(rows, 0)).save("docs/mask2face_astronaut.png")
    print("docs/mask2face_astronaut.png: row 1 mask | photo crop | from own styles | seed 1 | seed 2; "
          "row 2 painted mask (open mouth) | regenerated | reference (seed 2) | mask with its styles")


def deocclusion() -> None:
    from skimage import data

    from core.pipelines import deocclude as D

    photo = data.astronaut()
    rows = []
    for draw in (D.draw_sunglasses, D.draw_face_mask, D.draw_eyeglasses, D.draw_hair_lock):
        occluded = draw(photo)
        r = D.deocclude_photo(occluded)
        shown = D.overlay_mask(r.crop, r.mask)
        rows.append(tile([r.crop, shown, r.inpainted, D.align(photo)[1].image]))
    Image.fromarray(np.concatenate(rows, 0)).save("docs/deocclusion_astronaut.png")
    print("docs/deocclusion_astronaut.png: drawn occlusion | detected mask | restored | the photo before drawing")


def pose() -> None:
    from skimage import data

    from core.pipelines import pose as P

    photo = data.astronaut()
    outs = [P.edit_photo(photo, yaw=y) for y in (-30, -15, 15, 30)]
    crop = outs[0].crop
    Image.fromarray(tile([crop] + [o.output for o in outs])).save("docs/pose_astronaut.png")
    print("docs/pose_astronaut.png: input crop | yaw -30 | -15 | +15 | +30 (absolute, pitch kept)")


def gan() -> None:
    from skimage import data

    from core.pipelines import gan as GAN

    samples = [GAN.sample(seed, 0.7).image for seed in range(16)]
    Image.fromarray(np.concatenate([tile(samples[:8], 128), tile(samples[8:], 128)], 0)).save("docs/gan_samples.png")
    print("docs/gan_samples.png: seeds 0-15, truncation 0.7")
    photo = data.astronaut()
    enc = GAN.invert_photo(photo)
    ref = GAN.invert_photo(photo, refine=100)
    moves = [{"yaw": -2}, {"yaw": 2}, {"smile": -3}, {"gender": -6}, {"age": 3}, {"eyeglasses": 6}, {"bangs": 3}]
    edits = [GAN.edit(ref.code, v) for v in moves]
    Image.fromarray(tile([ref.crop, enc.reconstruction, ref.reconstruction] + edits, 160)).save("docs/gan_astronaut.png")
    print(f"docs/gan_astronaut.png: aligned crop | encoder (PSNR {enc.quality.psnr:.2f}, dlib distance "
          f"{enc.quality.identity_distance:.3f}) | refined 100 steps (PSNR {ref.quality.psnr:.2f}, dlib distance "
          f"{ref.quality.identity_distance:.3f}) | refined + " + " | ".join(f"{k} {v:+g}" for m in moves for k, v in m.items()))


if __name__ == "__main__":
    {"mask2face": mask2face, "deocclusion": deocclusion, "pose": pose, "gan": gan}[sys.argv[1]]()
