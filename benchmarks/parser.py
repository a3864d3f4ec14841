"""CPU time of the bundled face parser on one aligned 256 px face.

    python -m benchmarks.parser [--repeats 30] [--threads 2]
"""
import argparse
import os
import platform
import time

import numpy as np
import torch


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--flip", action="store_true", help="with test-time flip, as the app runs it")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from core.loading import load_model

    model = load_model("parser")
    run = model.forward_flip if args.flip else model
    x = torch.rand(1, 3, 256, 256)
    with torch.no_grad():
        for _ in range(3):
            run(x)
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            run(x)
            times.append(time.perf_counter() - t)
    n = sum(p.numel() for p in model.parameters())
    print(f"parser forward{' + flip' if args.flip else ''}, 1x3x256x256 fp32, {args.threads} threads: median {1000 * np.median(times):.1f} ms "
          f"(min {1000 * min(times):.1f}, n={args.repeats}); {n / 1e6:.2f} M params; "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
