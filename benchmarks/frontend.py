"""CPU time of the face front-end: analyze (detect + landmarks + pose + descriptor) + align, 1-megapixel photo.

    python -m benchmarks.frontend [--repeats 20] [--threads 2]

Prints the median wall time of repeated runs (after one warm-up) and the machine.
"""
import argparse
import os
import platform
import time

import cv2
import numpy as np


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    cv2.setNumThreads(args.threads)
    from skimage import data

    from core import face as F

    photo = cv2.resize(data.astronaut(), (1000, 1000), interpolation=cv2.INTER_CUBIC)  # 1.0 MP
    def once():
        faces = F.detect_faces(photo)
        F.face_descriptor(photo, faces[0])
        F.align_face(photo, faces[0], 256)
    once()
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        once()
        times.append(time.perf_counter() - t)
    print(f"analyze+align, 1000x1000 photo, 1 face: median {1000 * np.median(times):.0f} ms "
          f"(min {1000 * min(times):.0f}, max {1000 * max(times):.0f}, n={args.repeats}) on "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, OpenCV threads {args.threads}")


if __name__ == "__main__":
    main()
