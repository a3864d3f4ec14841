"""A local stand-in for huggingface.co, enough for `huggingface_hub.hf_hub_download` (tests only).

It answers HEAD and GET `/{repo_id}/resolve/{revision}/{filename}` the way the Hub does (as read in
huggingface_hub 2.4, file_download.get_hf_file_metadata / utils/_http.hf_raise_for_status):
- every answer carries `X-Repo-Commit`;
- small files: 200 with `ETag: "<git blob sha1>"` and `Content-Length`;
- LFS files (*.safetensors): 302 to a second server on another port (the "CDN", another origin, so
  the client does not follow it on HEAD) with `X-Linked-Etag: "<sha256>"` and `X-Linked-Size`;
- unknown repo / revision / file: 404 with `X-Error-Code` RepoNotFound / RevisionNotFound / EntryNotFound.
Every request is logged in `FakeHub.requests` as (method, path).
"""
from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


class FakeHub:
    def __init__(self):
        self.repos: dict[str, dict[str, dict[str, bytes]]] = {}  # repo_id -> commit -> file name -> bytes
        self.requests: list[tuple[str, str]] = []
        self._servers: list[ThreadingHTTPServer] = []

    def add_repo(self, repo_id: str, folder: str | Path) -> str:
        """Publish every file of `folder` as one commit of `repo_id`; return the commit (40 hex)."""
        files = {path.name: path.read_bytes() for path in sorted(Path(folder).iterdir()) if path.is_file()}
        commit = hashlib.sha1(repr(sorted((k, git_blob_sha1(v)) for k, v in files.items())).encode()).hexdigest()
        self.repos.setdefault(repo_id, {})[commit] = files
        return commit

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._servers[0].server_port}"

    @property
    def cdn_url(self) -> str:
        return f"http://127.0.0.1:{self._servers[1].server_port}"

    def __enter__(self) -> FakeHub:
        for _ in range(2):  # the Hub, and the CDN it redirects LFS files to
            server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()  # quick shutdown
            self._servers.append(server)
        return self

    def __exit__(self, *exc) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    def find_blob(self, sha256: str) -> bytes | None:
        for commits in self.repos.values():
            for files in commits.values():
                for data in files.values():
                    if hashlib.sha256(data).hexdigest() == sha256:
                        return data
        return None


def _make_handler(hub: FakeHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:  # keep pytest output clean
            pass

        def do_HEAD(self) -> None:
            self._answer(body=False)

        def do_GET(self) -> None:
            self._answer(body=True)

        def _answer(self, body: bool) -> None:
            hub.requests.append((self.command, self.path))
            if self.path.startswith("/cdn/"):
                self._cdn(self.path.removeprefix("/cdn/"), body)
            elif "/resolve/" in self.path:
                repo_id, _, rest = self.path.lstrip("/").partition("/resolve/")
                revision, _, filename = rest.partition("/")
                self._resolve(repo_id, revision, filename, body)
            else:
                self._send(404, {"X-Error-Code": "RepoNotFound"})

        def _resolve(self, repo_id: str, revision: str, filename: str, body: bool) -> None:
            commits = hub.repos.get(repo_id)
            if commits is None:
                return self._send(404, {"X-Error-Code": "RepoNotFound"})
            if revision == "main":
                revision = list(commits)[-1]
            if revision not in commits:
                return self._send(404, {"X-Error-Code": "RevisionNotFound"})
            headers = {"X-Repo-Commit": revision}
            data = commits[revision].get(filename)
            if data is None:
                return self._send(404, dict(headers, **{"X-Error-Code": "EntryNotFound"}))
            if filename.endswith(".safetensors"):  # stored in LFS: redirect to the CDN
                sha256 = hashlib.sha256(data).hexdigest()
                return self._send(302, dict(headers, **{
                    "Location": f"{hub.cdn_url}/cdn/{sha256}", "ETag": f'"{sha256}"',
                    "X-Linked-Etag": f'"{sha256}"', "X-Linked-Size": str(len(data))}))
            self._send(200, dict(headers, ETag=f'"{git_blob_sha1(data)}"'), data if body else None, len(data))

        def _cdn(self, sha256: str, body: bool) -> None:
            data = hub.find_blob(sha256)
            if data is None:
                return self._send(404, {})
            self._send(200, {"ETag": f'"{sha256}"'}, data if body else None, len(data))

        def _send(self, status: int, headers: dict[str, str], data: bytes | None = None, size: int = 0) -> None:
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(size))
            self.end_headers()
            if data is not None:
                self.wfile.write(data)

    return Handler
