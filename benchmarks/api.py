"""Per-endpoint latency through the API (gradio_client), one request at a time, on this machine.

    python -m benchmarks.api [--n 20] [--url http://127.0.0.1:7860/]

Without --url it launches the app on a free port (tests/served_app.py) and stops it afterwards.
Prints median and p95 per endpoint (after one warm-up call each) and the machine.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import numpy as np


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=20, help="timed requests per endpoint")
    ap.add_argument("--url", default=None, help="a running app (default: launch one)")
    args = ap.parse_args()
    from gradio_client import Client, handle_file
    from PIL import Image
    from skimage import data

    server = None
    if args.url is None:
        from tests.served_app import ServedApp

        server = ServedApp()
        print(f"launched the app at {server.url} in {server.start_seconds:.1f} s")
    url = args.url or server.url
    folder = tempfile.mkdtemp(prefix="facelab_bench_")
    photo = os.path.join(folder, "astronaut.png")
    Image.fromarray(data.astronaut()).save(photo)  # 512x512, one face
    other = os.path.join(folder, "flipped.png")
    Image.fromarray(np.ascontiguousarray(data.astronaut()[:, ::-1])).save(other)
    client = Client(url, verbose=False, download_files=folder)
    calls = {
        "/analyze": lambda: (handle_file(photo), 0),
        "/parse": lambda: (handle_file(photo), 0, 0.5),
        "/reconstruct": lambda: (handle_file(photo), 0),
        "/sample": lambda: (int(np.random.randint(0, 10 ** 6)), "masked-vae"),
        "/interpolate": lambda: (handle_file(photo), handle_file(other), 0.5, "masked-vae"),
        "/deocclude": lambda: (handle_file(photo), None, 0, False, False),
        "/pose": lambda: (handle_file(photo), 20.0, 0.0, None, 0),
        "/invert": lambda: (handle_file(photo), 0, 0),                        # encoder only
        "/edit": lambda: (handle_file(code()), handle_file(photo), *edit_values()),  # one slider move
        "/gan_sample": lambda: (int(np.random.randint(0, 10 ** 6)), 0.7),
    }
    state = {}

    def code() -> str:  # a latent code of the photo, made once by /invert
        if "code" not in state:
            state["code"] = client.predict(handle_file(photo), 0, 0, api_name="/invert")[4]
        return state["code"]

    def edit_values() -> list[float]:  # yaw at a random value, the other sliders at 0
        from core.pipelines import gan as GAN

        names = state.setdefault("sliders", [s.name for s in GAN.sliders()])
        return [float(np.random.uniform(-3, 3)) if n == "yaw" else 0.0 for n in names]
    ap_only = os.environ.get("BENCH_ONLY")  # e.g. BENCH_ONLY=/pose,/deocclude
    if ap_only:
        calls = {k: v for k, v in calls.items() if k in ap_only.split(",")}
    try:
        print(f"{'endpoint':<14} {'median ms':>10} {'p95 ms':>8} {'n':>4}")
        for name, make in calls.items():
            client.predict(*make(), api_name=name)  # warm-up: first model load
            times = []
            for _ in range(args.n):
                t = time.perf_counter()
                client.predict(*make(), api_name=name)
                times.append(1000 * (time.perf_counter() - t))
            print(f"{name:<14} {np.median(times):>10.0f} {np.percentile(times, 95):>8.0f} {args.n:>4}", flush=True)
    finally:
        if server is not None:
            server.stop()
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"512x512 photo with one face, requests one at a time through gradio_client on 127.0.0.1")


if __name__ == "__main__":
    main()
