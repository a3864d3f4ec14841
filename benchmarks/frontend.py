"""Time of the face front-end on a 1-megapixel photo: ours (learned detector + landmarks) against dlib.

    python -m benchmarks.frontend [--repeats 20] [--threads 2] [--device cpu|cuda]

Rows: detection + 68 landmarks alone (what issue 17 targets: <= 60 ms on the 2-core CPU, <= 5 ms on a GPU),
and the full analyze + align (detection, landmarks, pose, dlib's 128-d descriptor, 256 px crop) as every tab
runs it. Median wall time of repeated runs after one warm-up; the machine is printed beside it.
"""
import argparse
import os
import platform
import time

import cv2
import numpy as np
import torch


def median_ms(fn, repeats: int, sync) -> tuple[float, float, float]:
    fn()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return 1000 * float(np.median(times)), 1000 * min(times), 1000 * max(times)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)
    from skimage import data

    from core import face as F
    from core import face_models as FM

    photo = cv2.resize(data.astronaut(), (1000, 1000), interpolation=cv2.INTER_CUBIC)  # 1.0 MP
    sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
    rows = [("ours: detect + 68 points", lambda: FM.find_faces(photo, args.device))]
    if args.device == "cpu":
        def dlib_detect():
            F.detect_faces_dlib(photo)

        def analyze(learned: bool):
            faces = F.detect_faces(photo, learned=learned)
            F.face_descriptor(photo, faces[0])
            F.align_face(photo, faces[0], 256)

        rows += [("dlib: detect + 68 points (+ pose)", dlib_detect),
                 ("ours: analyze + align", lambda: analyze(True)),
                 ("dlib: analyze + align", lambda: analyze(False))]
    where = (torch.cuda.get_device_name() if args.device == "cuda"
             else f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} threads")
    for name, fn in rows:
        med, lo, hi = median_ms(fn, args.repeats, sync)
        print(f"{name:<36} 1000x1000 photo, 1 face: median {med:.1f} ms (min {lo:.1f}, max {hi:.1f}, "
              f"n={args.repeats}) on {where}")


if __name__ == "__main__":
    main()
