"""Calibrate the canonical crop on CelebAMask-HQ: where FFHQ's frame sits in its images.

    python -m train.calibrate_alignment [--n 300]

Prints CENTER_X, CENTER_Y, SCALE for `core/face.py`: the median position of the
FFHQ centre and half-width in CelebAMask-HQ's own 256 px frame, so that aligning
one of its images is close to the identity transform.
"""
import argparse
import os

import numpy as np

from core import face as F
from core.imageio import load_image

DATA = os.path.join("..", "shared", "data", "celebamask_hq", "images")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=300)
    ap.add_argument("--data", default=DATA)
    args = ap.parse_args()
    names = sorted(os.listdir(args.data))[:: max(1, 4500 // args.n)][: args.n]
    cs, xs, angles = [], [], []
    for name in names:
        img = load_image(os.path.join(args.data, name))
        faces = F.detect_faces(img, cnn_fallback=False)
        if not faces:
            continue
        c, x = F.ffhq_frame(faces[0].landmarks)
        size = img.shape[0]
        cs.append(c / size - 0.5)
        xs.append(np.hypot(*x) / size)
        angles.append(np.degrees(np.arctan2(x[1], x[0])))
    cs = np.array(cs)
    print(f"faces: {len(xs)}/{len(names)}")
    print(f"CENTER_X, CENTER_Y, SCALE = {np.median(cs[:, 0]):.4f}, {np.median(cs[:, 1]):.4f}, {np.median(xs):.4f}")
    print(f"spread (std): cx {cs[:, 0].std():.4f} cy {cs[:, 1].std():.4f} scale {np.std(xs):.4f} angle {np.std(angles):.2f} deg")


if __name__ == "__main__":
    main()
