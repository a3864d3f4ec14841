"""Issue 18: the served app against each attack class: answer time, the server's peak RSS increase, the message.

    python -m benchmarks.hardening [--requests 500] [--clients 24] [--per-client 3]

Serves the app in a subprocess (tests/served_app.py) with its own Gradio cache folder and a small cache cap
(FACELAB_CACHE_MAX_MB=20, pruned every 5 s) so that the cache bound shows within the run. Per case: resets the
server's peak RSS (/proc/PID/clear_refs, 5), sends the request (raw HTTP to /gradio_api/queue/join, the way an
attacker would, after uploading any file through /gradio_api/upload), reads the answer from the event stream,
and reports seconds, peak RSS increase (VmHWM after - RSS before) and the message (flagging any absolute path).
Then 24 concurrent clients x 3 /analyze requests each, one after the other (gradio_client): served / "queue full" / other, RSS before and
after; then N /gan_sample requests with distinct seeds (distinct result files) and the cache's disk use.
"""
from __future__ import annotations

import argparse
import base64
import io
import json
import os
import re
import tempfile
import time
import uuid
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image

MB = 2 ** 20
ABS_PATH = re.compile(r"(?<![\w.:/])/(?:[^\s/'\"]+/)+")


def status(pid: int, key: str) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    return 0


def reset_peak(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def folder_bytes(folder: str) -> tuple[int, int]:
    total = count = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
                count += 1
            except OSError:
                pass
    return total, count


class Raw:
    """Requests as an attacker sends them: upload, queue/join with any JSON, read the event stream."""

    def __init__(self, url: str):
        import httpx
        from gradio_client import Client

        self.url, self.http = url.rstrip("/") + "/gradio_api", httpx.Client(timeout=600)
        self.client = Client(url, verbose=False)

    def fn_index(self, api_name: str) -> int:
        return self.client._infer_fn_index(api_name, None)

    def upload(self, data: bytes, name: str) -> dict:
        r = self.http.post(self.url + "/upload", files={"files": (name, data, "application/octet-stream")})
        r.raise_for_status()
        return {"path": r.json()[0], "orig_name": name, "meta": {"_type": "gradio.FileData"}}

    def call(self, api_name: str, data: list, session: str | None = None) -> tuple[bool, str]:
        """(success, message or 'ok') of one event (a new session unless `session` is given)."""
        session = session or uuid.uuid4().hex
        body = json.dumps({"data": data, "fn_index": self.fn_index(api_name), "session_hash": session,
                           "event_data": None, "trigger_id": None}).encode()
        try:
            r = self.http.post(self.url + "/queue/join", content=body, headers={"content-type": "application/json"})
        except Exception as e:  # noqa: BLE001 - the server may close on a refused body
            return False, f"connection closed ({type(e).__name__})"
        if r.status_code != 200:
            try:
                return False, f"HTTP {r.status_code}: {r.json().get('error') or r.json().get('detail')}"
            except ValueError:
                return False, f"HTTP {r.status_code}"
        with self.http.stream("GET", self.url + f"/queue/data?session_hash={session}") as stream:
            for line in stream.iter_lines():
                if not line.startswith("data:"):
                    continue
                msg = json.loads(line[5:])
                if msg.get("msg") == "process_completed":
                    if msg.get("success"):
                        return True, "ok"
                    out = msg.get("output") or {}
                    return False, str(out.get("error") or out.get("title") or "Error (no message)")
                if msg.get("msg") == "unexpected_error":
                    return False, str(msg.get("message"))
        return False, "stream ended"


def png(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(array).save(buf, "PNG")
    return buf.getvalue()


def npy(a) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(a), allow_pickle=False)
    return buf.getvalue()


def code_npz(**members) -> bytes:
    meta = json.dumps({"version": 1, "generator": "stylegan", "fingerprint": "", "from": "sample"})
    arrays = {"meta": npy(np.array(meta)), "ws": npy(np.zeros((12, 512), np.float32))}
    arrays.update(members)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in arrays.items():
            z.writestr(name + ".npy", data)
    return buf.getvalue()


def zip_bomb_npz(gib: float = 1.0) -> bytes:
    """A ws.npy member declaring ~gib GiB of float32 zeros, streamed into the archive (about 1 MB per GiB)."""
    rows = int(gib * 2 ** 30 / (512 * 4))
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (rows, 512)})
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("meta.npy", npy(np.array(json.dumps({"version": 1}))))
        with z.open("ws.npy", "w", force_zip64=True) as f:
            f.write(header.getvalue())
            chunk = bytes(64 * MB)
            left = rows * 512 * 4
            while left:
                n = min(left, len(chunk))
                f.write(chunk[:n])
                left -= n
    return buf.getvalue()


def broken_exif_jpeg(photo: np.ndarray) -> bytes:
    """A JPEG whose EXIF block (orientation 6) has one corrupted byte in a tag's type: Pillow's exif_transpose
    raises struct.error on it (found by mutating the EXIF bytes at random)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Canon"
    exif[0x0131] = "x" * 10
    raw = bytearray(exif.tobytes())
    import random

    rng = random.Random(1)
    for _ in range(27):   # the 27th mutation of this sequence is the one that breaks exif_transpose
        raw = bytearray(exif.tobytes())
        for _ in range(rng.randint(1, 3)):
            raw[rng.randrange(6, len(raw))] = rng.randrange(256)
    buf = io.BytesIO()
    Image.fromarray(photo).save(buf, "JPEG", exif=bytes(raw))
    return buf.getvalue()


def cases(raw: Raw, photo: np.ndarray):
    """(name, thunk) per attack case; each thunk uploads what it needs and calls one endpoint."""
    astronaut = raw.upload(png(photo), "astronaut.png")
    zero_mask = np.zeros((9000, 9000), np.uint8)

    def editor(file):
        return {"background": file, "layers": [], "composite": file, "id": None}

    def mask(side):
        def run():
            f = raw.upload(png(np.zeros((side, side), np.uint8)), "mask.png")
            return raw.call("/mask2face", [editor(f), None, 0, [], None])
        return run

    def edit(data):
        def run():
            f = raw.upload(data, "code.npz")
            return raw.call("/edit", [f, None] + [0.0] * 12)
        return run

    def analyze(data, name):
        def run():
            return raw.call("/analyze", [raw.upload(data, name), 0])
        return run

    grey16 = (np.asarray(Image.fromarray(photo).convert("L"), np.uint16) * 257)
    big_grey = png(np.zeros((12000, 12000), np.uint8))
    data_url = "data:image/png;base64," + base64.b64encode(os.urandom(64 * MB)).decode()
    del zero_mask
    return [
        ("1 mask 9000x9000 -> /mask2face", mask(9000)),
        ("1 mask 12000x12000 -> /mask2face", mask(12000)),
        ("2 zip-bomb .npz (1 GiB inflated) -> /edit", edit(zip_bomb_npz(1.0))),
        ("3 grey PNG 12000x12000 -> /analyze", analyze(big_grey, "grey.png")),
        ("3 16-bit grey photo -> /analyze", analyze(png(grey16), "grey16.png")),
        ("4 data: URL, 85 MB body -> /analyze", lambda: raw.call("/analyze", [
            {"path": "x.png", "url": data_url, "orig_name": "x.png", "meta": {"_type": "gradio.FileData"}}, 0])),
        ("6 malformed EXIF -> /analyze", analyze(broken_exif_jpeg(photo), "exif.jpg")),
        ("6 text in the de-occlusion mask", lambda: raw.call("/deocclude", [astronaut, "some text", 0, False,
                                                                           False])),
        ("6 .npz const of wrong shape -> /edit", edit(code_npz(const=npy(np.zeros((4, 4), np.float32))))),
        ("6 .npz matrix 3x3 -> /edit", edit(code_npz(matrix=npy(np.zeros((3, 3)))))),
        ("6 .npz source_size text -> /edit", edit(code_npz(source_size=npy(np.array(["a", "b"]))))),
        ("6 .npz meta a list -> /edit", edit(code_npz(meta=npy(np.array("[1, 2]"))))),
        ("6 .npz ws NaN -> /edit", edit(code_npz(ws=npy(np.full((12, 512), np.nan, np.float32))))),
        ("6 .npz ws 1e30 -> /edit", edit(code_npz(ws=npy(np.full((12, 512), 1e30, np.float32))))),
        ("6 yaw='abc' -> /pose", lambda: raw.call("/pose", [astronaut, "abc", None, None, 0])),
        ("6 yaw=None -> /pose (keeps own yaw)", lambda: raw.call("/pose", [astronaut, None, 0, None, 0])),
        ("8 missing upload path -> /analyze", lambda: raw.call("/analyze", [
            {"path": "/tmp/gradio/nope/x.png", "meta": {"_type": "gradio.FileData"}}, 0])),
    ]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--requests", type=int, default=500, help="requests for the cache measurement")
    ap.add_argument("--clients", type=int, default=24)
    ap.add_argument("--per-client", type=int, default=3)
    args = ap.parse_args()
    from skimage import data

    cache = tempfile.mkdtemp(prefix="facelab_bench_cache_")
    os.environ.update(GRADIO_TEMP_DIR=cache, FACELAB_CACHE_MAX_MB="20", FACELAB_CACHE_PRUNE_S="5",
                      FACELAB_CACHE_MIN_AGE="5")
    from tests.served_app import ServedApp

    server = ServedApp()
    pid = server.pid
    photo = data.astronaut()
    raw = Raw(server.url)
    print(f"app {server.url} pid {pid}, {os.cpu_count()} CPUs, cache {cache}")
    try:
        # warm-up: every model the cases touch is loaded before anything is measured
        for api, args_ in (("/analyze", [raw.upload(png(photo), "a.png"), 0]), ("/gan_sample", [0, 0.7])):
            print("warm-up", api, raw.call(api, args_))
        rows = []
        for name, run in cases(raw, photo):
            rss0 = server.rss()
            exact = reset_peak(pid)
            t0 = time.monotonic()
            ok, message = run()
            seconds = time.monotonic() - t0
            peak = status(pid, "VmHWM") if exact else server.rss()
            path = "yes" if ABS_PATH.search(message) else "no"
            rows.append((name, seconds, (peak - rss0) / MB, "result" if ok else message, path))
            print(f"{name:<42} {seconds:6.2f} s  +{(peak - rss0) / MB:6.0f} MiB  {rows[-1][3][:90]}", flush=True)
        print("\n| case | answer | time (s) | peak RSS increase (MiB) | absolute path in message |")
        print("| --- | --- | --- | --- | --- |")
        for name, seconds, mib, message, path in rows:
            answer = message.replace("The file code.npz is not a FaceLab latent code (.npz written by `python -m cli "
                                     "invert` or the Invert & edit tab)", "not a FaceLab latent code")
            answer = answer.replace("|", "/").replace("\n", " ")[:120]
            print(f"| {name} | {answer} | {seconds:.2f} | {max(mib, 0):.0f} | {path} |")

        # 24 clients x 3 requests, all at once
        from gradio_client import Client, handle_file

        folder = tempfile.mkdtemp(prefix="facelab_bench_")
        path = os.path.join(folder, "a.png")
        Image.fromarray(photo).save(path)
        clients = [Client(server.url, verbose=False, download_files=os.path.join(folder, f"c{i}"))
                   for i in range(args.clients)]

        def one(client):
            t = time.monotonic()
            try:
                client.submit(handle_file(path), 0, api_name="/analyze").result(timeout=600)
                return "served", time.monotonic() - t
            except Exception as e:  # noqa: BLE001
                return ("queue full" if "queue" in str(e).lower() and "full" in str(e).lower() else
                        f"other: {str(e)[:80]}"), time.monotonic() - t

        def client_run(client):  # one client: its requests one after the other
            return [one(client) for _ in range(args.per_client)]

        for round_ in range(3):
            rss0 = server.rss()
            t0 = time.monotonic()
            with ThreadPoolExecutor(args.clients) as pool:
                out = [o for outs in pool.map(client_run, clients) for o in outs]
            kinds = {k: sum(1 for o, _ in out if o == k) for k in sorted({o for o, _ in out})}
            lat = sorted(t for _, t in out)
            print(f"\nconcurrency round {round_ + 1}: {args.clients} clients x {args.per_client} requests in "
                  f"{time.monotonic() - t0:.1f} s: {kinds}; latency median {lat[len(lat) // 2]:.1f} s, max "
                  f"{lat[-1]:.1f} s; RSS {rss0 / MB:.0f} -> {server.rss() / MB:.0f} MiB", flush=True)

        # cache disk use under distinct results
        print(f"\ncache after the cases: {folder_bytes(cache)[0] / MB:.1f} MiB")
        t0 = time.monotonic()
        session = uuid.uuid4().hex
        for i in range(args.requests):
            raw.call("/gan_sample", [1000 + i, 0.7], session)
            if (i + 1) % 100 == 0:
                size, count = folder_bytes(cache)
                print(f"after {i + 1} /gan_sample requests ({time.monotonic() - t0:.0f} s): cache {size / MB:.1f} MiB "
                      f"in {count} files (cap 20 MiB), RSS {server.rss() / MB:.0f} MiB", flush=True)
        print("server alive:", server.alive())
        print("server log, last lines:\n" + "\n".join(server.log(3000).splitlines()[-8:]))
    finally:
        server.stop()


if __name__ == "__main__":
    main()
