"""A local HTTP server standing in for the Physics-IQ data sources in tests: a public Google Cloud Storage
bucket (JSON API listing, paged, with sizes and MD5s; object downloads with ``Range``), raw files of the
official repository (the descriptions), and the Hugging Face Hub endpoints ``huggingface_hub`` uses to list a
dataset repository and download its files.

Faults can be injected: an object served cut short (a dropped connection), a wrong MD5, a gated repository
without a token. Every request is logged (method, path, ``Range`` and ``Authorization`` headers).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class Storage:
    """What the server holds and how it misbehaves.

    Attributes:
        objects: Bucket object name -> bytes.
        raw: Repository path -> bytes (served under ``/raw/``).
        hub_files: Hub dataset repository path -> bytes.
        bucket: Bucket name.
        repo_id: Hub dataset repository.
        page_size: Listing page size (small, so paging is exercised).
        cut: Object/file name -> how many more times to serve it cut to half its bytes.
        bad_md5: Object names listed with a wrong MD5.
        gated_token: When set, the Hub answers 401 GatedRepo to requests without ``Bearer <token>``.
        log: ``(method, path, range, authorization)`` of every request.
    """

    objects: dict[str, bytes] = field(default_factory=dict)
    raw: dict[str, bytes] = field(default_factory=dict)
    hub_files: dict[str, bytes] = field(default_factory=dict)
    bucket: str = "physics-iq-benchmark"
    repo_id: str = "org/Physics-IQ-Verified"
    page_size: int = 7
    cut: dict[str, int] = field(default_factory=dict)
    bad_md5: set[str] = field(default_factory=set)
    gated_token: str | None = None
    log: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _handler(storage: Storage) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # keep test output clean
            return

        def _json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> None:
            body = json.dumps(data).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _bytes(self, name: str, data: bytes, extra: dict[str, str] | None = None) -> None:
            start = 0
            ranged = self.headers.get("Range")
            if ranged and ranged.startswith("bytes="):
                start = int(ranged[6:].split("-")[0] or 0)
            body = data[start:]
            with storage.lock:
                cut = storage.cut.get(name, 0) > 0 and self.command == "GET"
                if cut:
                    storage.cut[name] -= 1
            self.send_response(206 if start else 200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Accept-Ranges", "bytes")
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            for key, value in (extra or {}).items():
                self.send_header(key, value)
            self.end_headers()
            if self.command == "HEAD":
                return
            if cut:  # a dropped connection: half the promised bytes, then close
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            self.wfile.write(body)

        def _gated(self) -> bool:
            if storage.gated_token is None:
                return False
            if self.headers.get("Authorization") == f"Bearer {storage.gated_token}":
                return False
            self._json({"error": "Access to this dataset is restricted."}, 401, {"X-Error-Code": "GatedRepo"})
            return True

        def do_HEAD(self) -> None:
            self.do_GET()

        def do_GET(self) -> None:
            url = urllib.parse.urlsplit(self.path)
            path = urllib.parse.unquote(url.path)
            query = urllib.parse.parse_qs(url.query)
            with storage.lock:
                storage.log.append(
                    (self.command, path, self.headers.get("Range"), self.headers.get("Authorization"))
                )
            repo = storage.repo_id
            if path == f"/storage/v1/b/{storage.bucket}/o":
                return self._list(query)
            if path.startswith(f"/{storage.bucket}/"):
                name = path[len(storage.bucket) + 2 :]
                if name in storage.objects:
                    return self._bytes(name, storage.objects[name])
            elif path.startswith("/raw/"):
                name = path[5:]
                if name in storage.raw:
                    return self._bytes(name, storage.raw[name])
            elif path == f"/api/datasets/{repo}" or path.startswith(f"/api/datasets/{repo}/revision/"):
                if self._gated():
                    return None
                return self._json({"id": repo, "sha": COMMIT, "private": False, "siblings": []})
            elif path.startswith(f"/api/datasets/{repo}/tree/"):
                if self._gated():
                    return None
                return self._json(
                    [
                        {
                            "type": "file",
                            "path": name,
                            "size": len(data),
                            "oid": hashlib.sha1(data).hexdigest(),
                        }
                        for name, data in sorted(storage.hub_files.items())
                    ]
                )
            elif path.startswith(f"/datasets/{repo}/resolve/{COMMIT}/"):
                if self._gated():
                    return None
                name = path[len(f"/datasets/{repo}/resolve/{COMMIT}/") :]
                if name in storage.hub_files:
                    data = storage.hub_files[name]
                    etag = hashlib.sha256(data).hexdigest()
                    return self._bytes(name, data, {"X-Repo-Commit": COMMIT, "ETag": f'"{etag}"'})
            return self._json({"error": f"not found: {path}"}, 404)

        def _list(self, query: dict[str, list[str]]) -> None:
            prefix = query.get("prefix", [""])[0]
            names = sorted(n for n in storage.objects if n.startswith(prefix))
            start = int(query.get("pageToken", ["0"])[0])
            page = names[start : start + storage.page_size]
            items = []
            for name in page:
                data = storage.objects[name]
                digest = hashlib.md5(data + (b"x" if name in storage.bad_md5 else b"")).digest()
                items.append(
                    {"name": name, "size": str(len(data)), "md5Hash": base64.b64encode(digest).decode()}
                )
            out: dict[str, Any] = {"kind": "storage#objects", "items": items}
            if start + storage.page_size < len(names):
                out["nextPageToken"] = str(start + storage.page_size)
            self._json(out)

    return Handler


@contextmanager
def serve(storage: Storage) -> Iterator[str]:
    """Run the server on a free local port for the block; yields its base URL."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(storage))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
