"""Share of StyleGAN2 samples in which the face front-end (dlib) finds a face (no FID: no Inception weights here).

    python -m train.eval_stylegan GENERATOR_FOLDER [--n 100] [--truncation 1.0 0.7]

Seeds 1000 ... 1000 + n - 1 (z from a CPU generator, so any machine draws the same faces), each sample upscaled to
256 px (dlib's HOG detector misses faces under ~80 px) and searched with the HOG detector only.
"""
from __future__ import annotations

import argparse

import cv2
import torch


def face_share(folder: str, n: int, truncation: float) -> float:
    from core import face as F
    from core.models.stylegan import StyleGAN2Generator

    G = StyleGAN2Generator.from_pretrained(folder).eval()
    found = 0
    with torch.no_grad():
        for i in range(0, n, 20):
            z = torch.randn(min(20, n - i), G.z_dim, generator=torch.Generator().manual_seed(1000 + i))
            img = ((G(z, truncation_psi=truncation).clamp(-1, 1) + 1) * 127.5).round().byte()
            for im in img.permute(0, 2, 3, 1).numpy():
                big = cv2.resize(im, (256, 256), interpolation=cv2.INTER_CUBIC)
                found += len(F.detect_faces(big, cnn_fallback=False)) > 0
    return found / n


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("generator")
    ap.add_argument("--n", type=int, default=100)
    ap.add_argument("--truncation", type=float, nargs="+", default=[1.0, 0.7])
    a = ap.parse_args(argv)
    for t in a.truncation:
        print(f"truncation {t}: dlib finds a face in {face_share(a.generator, a.n, t):.1%} of {a.n} samples", flush=True)


if __name__ == "__main__":
    main()
