"""A scripted OpenAI-compatible chat-completions server on 127.0.0.1 for tests (no network).

Each POST is answered with the next scripted reply (the last one repeats); a script step may be a callable,
which can look at ``server.requests[-1]`` (already recorded when it is called) to answer by content.
:func:`sent_parts` reads back what a recorded request showed the model (texts, image sizes, videos).
"""

from __future__ import annotations

import base64
import io
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import av
import cv2
import numpy as np

Reply = tuple[int, dict[str, Any], dict[str, str]]  # status, JSON body, extra headers


def completion(content: str | None, refusal: str | None = None, finish: str = "stop") -> Reply:
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 0,
        "model": "tiny-test-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": finish,
            }
        ],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 200, "total_tokens": 1200},
    }
    return 200, body, {}


def error(status: int, message: str = "busy") -> Reply:
    # retry-after-ms keeps the client's backoff short in tests.
    return status, {"error": {"message": message, "type": "server_error"}}, {"retry-after-ms": "10"}


#: A script step that closes the connection without an answer (a server that went away mid-request).
DROP: Reply = (0, {}, {})


def models(*names: str) -> Reply:
    """A models listing with these model ids."""
    data = [{"id": name, "object": "model", "created": 0, "owned_by": "test"} for name in names]
    return 200, {"object": "list", "data": data}, {}


class ScriptedServer:
    """Answers each POST with the next scripted reply (the last one repeats); records requests.

    ``GET /v1/models`` answers ``models_reply`` when set (e.g. :func:`models` or :func:`error`), else 404 like
    a server without a models listing; the GET paths are recorded in ``gets``.
    """

    def __init__(self) -> None:
        self.script: list[Reply | Callable[[], Reply]] = []
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.models_reply: Reply | None = None
        self.gets: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.gets.append(self.path)
                reply = server.models_reply if self.path.rstrip("/").endswith("/models") else None
                status, body, extra = reply or error(404, "not found")
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                server.requests.append(json.loads(self.rfile.read(length)))
                server.headers.append({k.lower(): v for k, v in self.headers.items()})
                step = server.script[min(len(server.requests) - 1, len(server.script) - 1)]
                status, body, extra = step() if callable(step) else step
                if status == DROP[0]:  # hang up without answering: the client sees a connection error
                    self.close_connection = True
                    return
                data = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(data)))
                    for key, value in extra.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout test)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


def decode_data_url(url: str) -> tuple[str, bytes]:
    """``data:<media type>;base64,<data>`` -> (media type, bytes); a frame sequence keeps its commas."""
    head, _, data = url.partition(",")
    assert head.startswith("data:") and head.endswith(";base64"), head[:40]
    media = head[len("data:") : -len(";base64")]
    if media == "video/jpeg":
        return media, data.encode("ascii")
    return media, base64.b64decode(data)


def decode_image(data: bytes) -> np.ndarray:
    """Encoded image bytes -> ``(H, W, 3)`` uint8 RGB."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None, "not an image"
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def decode_video(url: str) -> tuple[str, np.ndarray, float | None]:
    """A video data URL -> (media type, ``(T, H, W, 3)`` frames, fps stored in the file or ``None``)."""
    media, data = decode_data_url(url)
    if media == "video/jpeg":
        frames = [decode_image(base64.b64decode(part)) for part in data.decode("ascii").split(",")]
        return media, np.stack(frames), None
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        fps = float(stream.average_rate) if stream.average_rate else None
        frames = [frame.to_ndarray(format="rgb24") for frame in container.decode(stream)]
    return media, np.stack(frames), fps


def sent_parts(request: dict[str, Any], index: int = -1) -> list[tuple[str, Any]]:
    """What message ``index`` of a recorded request showed, in order: ``("text", str)``, ``("image", (H, W))``,
    ``("video", (media type, T, H, W))``. A plain-string content is one text part."""
    content = request["messages"][index]["content"]
    if isinstance(content, str):
        return [("text", content)]
    parts: list[tuple[str, Any]] = []
    for part in content:
        if part["type"] == "text":
            parts.append(("text", part["text"]))
        elif part["type"] == "image_url":
            parts.append(("image", decode_image(decode_data_url(part["image_url"]["url"])[1]).shape[:2]))
        elif part["type"] == "video_url":
            media, frames, _ = decode_video(part["video_url"]["url"])
            parts.append(("video", (media, *frames.shape[:3])))
        else:
            raise AssertionError(f"unexpected content part {part['type']!r}")
    return parts
