"""Latency per image (batch 1) of the two VAEs: masked VAE (144 px, reconstruct incl. mask decoder and
compositing) and multi-stage VAE (128 px, encoder + coarse decoder + refinement).

    python -m benchmarks.vae [--threads 2] [--repeats 30] [--device cpu|cuda]

Loads checkpoints/masked-vae and checkpoints/multistage-vae (save_pretrained folders), warms up, then prints
the median wall time of `repeats` calls of `model.reconstruct(x)` under torch.no_grad, fp32, and the machine.
"""
import argparse
import os
import platform
import time

import numpy as np
import torch


def _time(fn, repeats: int, device: torch.device) -> list[float]:
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t)
    return times


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--warmup", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--masked", default=os.path.join("checkpoints", "masked-vae"))
    ap.add_argument("--multistage", default=os.path.join("checkpoints", "multistage-vae"))
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    from train.eval_vae import load_model

    if device.type == "cuda":
        where = torch.cuda.get_device_name(device)
    else:
        where = f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {args.threads} torch threads"
    print(f"device: {device} ({where}); torch {torch.__version__}; batch 1, fp32, median of {args.repeats} "
          f"after {args.warmup} warm-up calls")
    for kind, folder, what in (("masked-vae", args.masked, "reconstruct (encoder + image and mask decoders + compose)"),
                               ("multistage-vae", args.multistage, "reconstruct (encoder + coarse decoder + refiner)")):
        model = load_model(kind, folder, device).eval()
        size = model.config["image_size"]
        x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(0)).to(device)
        with torch.no_grad():
            for _ in range(args.warmup):
                model.reconstruct(x)
            times = _time(lambda: model.reconstruct(x), args.repeats, device)
        n = sum(p.numel() for p in model.parameters())
        print(f"{kind:<15} {size}x{size} px, {n / 1e6:.2f} M params, {what}: median {1000 * np.median(times):.1f} ms "
              f"(min {1000 * min(times):.1f}, max {1000 * max(times):.1f})")


if __name__ == "__main__":
    main()
