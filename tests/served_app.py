"""The FaceLab app served for tests and benchmarks: a subprocess on 127.0.0.1 with a free port.

    from tests.served_app import shared_server
    server = shared_server()          # started once per process, stopped at exit
    server.url, server.rss()

    python -m tests.served_app [--port N]       # what the subprocess runs (app.launch, then waits)

A subprocess (not a thread) so that the server's memory can be measured on its own, and so that a
hung or crashed server cannot take the test process with it. The child exits by itself when its
parent dies, so no orphan keeps a port.
"""
from __future__ import annotations

import argparse
import atexit
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
START_TIMEOUT = float(os.environ.get("FACELAB_START_TIMEOUT", "300"))  # s; a loaded 2-core CPU is slow


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_of(pid: int) -> int:
    """Resident set size of a process in bytes (psutil when installed, else /proc)."""
    try:
        import psutil

        return psutil.Process(pid).memory_info().rss
    except ImportError:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    raise RuntimeError(f"cannot read the memory of process {pid}")


class ServedApp:
    """A running app subprocess: `url`, `pid`, `rss()`, `log()`, `alive()`, `stop()`."""

    def __init__(self, timeout: float = START_TIMEOUT):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = os.path.join(tempfile.mkdtemp(prefix="facelab_app_"), "server.log")
        env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", HF_HUB_DISABLE_TELEMETRY="1",
                   PYTHONUNBUFFERED="1")
        env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tests.served_app", "--port", str(self.port), "--parent", str(os.getpid())],
            cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.pid = self.proc.pid
        try:
            self._wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout: float) -> None:
        t0 = time.monotonic()
        while time.monotonic() - t0 < timeout:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the app exited with code {self.proc.returncode} while starting:\n{self.log()}")
            try:
                with urllib.request.urlopen(self.url + "gradio_api/info", timeout=10) as r:
                    if r.status == 200:
                        self.start_seconds = time.monotonic() - t0
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"the app did not answer on {self.url} within {timeout:.0f} s:\n{self.log()}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def rss(self) -> int:
        return rss_of(self.pid)

    def log(self, tail: int = 4000) -> str:
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode("utf-8", "replace")[-tail:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._log.close()


_shared: ServedApp | None = None
_lock = threading.Lock()


def shared_server() -> ServedApp:
    """One app per test session (process), started on first use and stopped at exit.

    A module-level singleton rather than a conftest fixture so that every test module (and the
    benchmark) shares the same launch. If the server died (a test proved it could), a new one starts.
    """
    global _shared
    with _lock:
        if _shared is None or not _shared.alive():
            _shared = ServedApp()
            atexit.register(_shared.stop)
        return _shared


def _watch_parent(parent: int) -> None:
    """Exit when the process that started us is gone (no orphan servers after a killed pytest)."""
    while True:
        time.sleep(2)
        try:
            os.kill(parent, 0)
        except ProcessLookupError:
            os._exit(0)
        if os.getppid() != parent:
            os._exit(0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=7860)
    ap.add_argument("--parent", type=int, default=0, help="exit when this process is gone")
    args = ap.parse_args()
    if args.parent:
        threading.Thread(target=_watch_parent, args=(args.parent,), daemon=True).start()
    import app

    app.launch(port=args.port, prevent_thread_lock=True, quiet=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
