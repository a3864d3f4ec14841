"""Server memory under repeated concurrent load: RSS of the served app after each round of requests.

    python -m benchmarks.memory [--rounds 6] [--clients 4] [--per-client 4] [--endpoint /analyze]
    MALLOC_ARENA_MAX=8 python -m benchmarks.memory     # the environment is passed to the app

Launches the app in a subprocess (tests/served_app.py), sends one warm-up request, then `rounds`
rounds of clients x per-client concurrent requests, and prints after each round the server's RSS,
its heap/anonymous split (from /proc/PID/smaps), thread count and the number of files in Gradio's
upload cache. Growth that stops after a round or two is warm-up (allocator arenas, thread stacks);
growth that goes on every round is a leak.
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor


def smaps(pid: int) -> dict[str, int]:
    """MiB of the process's [heap], other anonymous mappings, and file-backed mappings (resident)."""
    out = {"heap": 0, "anon": 0, "file": 0}
    kind = None
    try:
        with open(f"/proc/{pid}/smaps") as f:
            for line in f:
                head = line.split()
                if head and "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
                    name = head[5] if len(head) > 5 else ""
                    kind = "heap" if name == "[heap]" else "file" if name.startswith("/") else "anon"
                elif head and head[0] == "Rss:" and kind:
                    out[kind] += int(head[1])
    except OSError:
        pass
    return {k: v // 1024 for k, v in out.items()}


def threads(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/task"))
    except OSError:
        return -1


def cache_files() -> int:
    folder = os.environ.get("GRADIO_TEMP_DIR") or os.path.join(tempfile.gettempdir(), "gradio")
    return sum(len(files) for _, _, files in os.walk(folder)) if os.path.isdir(folder) else 0


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--clients", type=int, default=4)
    ap.add_argument("--per-client", type=int, default=4)
    ap.add_argument("--endpoint", default="/analyze", choices=["/analyze", "/parse", "/reconstruct"])
    args = ap.parse_args()
    from gradio_client import Client, handle_file
    from PIL import Image
    from skimage import data

    from tests.served_app import ServedApp

    server = ServedApp()
    folder = tempfile.mkdtemp(prefix="facelab_mem_")
    photo = os.path.join(folder, "astronaut.png")
    Image.fromarray(data.astronaut()).save(photo)
    extra = {"/parse": (0, 0.5), "/analyze": (0,), "/reconstruct": (0,)}[args.endpoint]
    clients = [Client(server.url, verbose=False, download_files=os.path.join(folder, f"c{i}"))
               for i in range(args.clients)]
    env = {k: v for k, v in os.environ.items() if k.startswith(("MALLOC_", "OMP_", "FACELAB_", "GRADIO_"))}
    print(f"app {server.url} (pid {server.pid}) env {env or '{}'}")

    def report(label: str):
        m = smaps(server.pid)
        print(f"{label:<10} RSS {server.rss() / 2 ** 20:6.0f} MiB  (heap {m['heap']:4d}, anon {m['anon']:4d}, "
              f"file {m['file']:4d})  threads {threads(server.pid):3d}  cache files {cache_files()}", flush=True)

    report("started")
    try:
        clients[0].submit(handle_file(photo), *extra, api_name=args.endpoint).result(timeout=600)
        report("warm-up")
        for r in range(args.rounds):
            t0 = time.monotonic()
            with ThreadPoolExecutor(args.clients * args.per_client) as pool:
                jobs = [pool.submit(lambda c: c.submit(handle_file(photo), *extra, api_name=args.endpoint)
                                    .result(timeout=600), clients[i % args.clients])
                        for i in range(args.clients * args.per_client)]
                for j in jobs:
                    j.result()
            report(f"round {r + 1}")
            print(f"{'':<10} {len(jobs)} requests in {time.monotonic() - t0:.1f} s", flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    main()
