"""The one extension point for vision-language models: ``VLM.chat(messages) -> VLMReply``.

Backends only send messages with images and return text. The agent owns prompt rendering (templates in
``prompts/``) and parsing replies into schemas; no backend knows what a critique is.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import cv2
import numpy as np

Role = Literal["system", "user", "assistant"]


class VLMError(RuntimeError):
    """The backend failed to answer (transport error, timeout, refusal, exhausted retries)."""


class VLMUnavailable(VLMError):
    """The backend itself cannot be used right now, whatever was asked: it cannot be reached (``kind`` =
    ``"connection"``: refused, timed out, DNS) or it refused the credentials (``"auth"``: HTTP 401/403).

    Unlike a bad reply, asking again at once does not help: an auth error is never retried, and a run stops
    cleanly after a few consecutive connection failures (see :class:`agent.budget.BackendGate`).

    Attributes:
        kind: ``"connection"`` or ``"auth"``.
        endpoint: What could not be used (a URL, never with credentials).
    """

    def __init__(self, message: str, kind: str, endpoint: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.endpoint = endpoint


@dataclass(frozen=True)
class Video:
    """A clip sent as video to backends that take it (``video`` option of each backend).

    Attributes:
        frames: ``(T, H, W, 3)`` uint8 RGB.
        fps: Frame rate of ``frames`` (the model is told it, so it can reason about time).
        label: Text shown immediately before the video (e.g. what it covers and its time span).

    Raises:
        ValueError: Frames that are not ``(T, H, W, 3)`` uint8 with ``T >= 1``, or ``fps <= 0``.
    """

    frames: np.ndarray
    fps: float
    label: str = ""

    def __post_init__(self) -> None:
        frames = np.asarray(self.frames)
        if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
            raise ValueError(
                f"Video.frames must be (T, H, W, 3) uint8 with T >= 1, got {frames.shape} {frames.dtype}"
            )
        if not self.fps > 0:
            raise ValueError(f"Video.fps must be positive, got {self.fps}")
        object.__setattr__(self, "frames", frames)


@dataclass(frozen=True)
class Message:
    """One chat message.

    Every backend sends a message's parts in one order (see :func:`message_parts`):

    1. the message ``text``;
    2. for each image, its label as a text part (when labelled), then the image;
    3. the ``video``, if any and if the backend was asked to send video: its label as a text part, then the
       clip.

    A backend that samples the images down to its ``max_frames`` keeps each kept image's label with it and
    drops the labels of the images it drops. A backend not asked for video leaves the video (and its label)
    out, so callers may attach one whatever the backend.

    Attributes:
        role: ``system``, ``user`` or ``assistant``.
        text: The text part.
        images: Frames shown with the text, each ``(H, W, 3)`` uint8 RGB, in order.
        labels: One label per image (e.g. ``"generated, t = +0.50 s"``), or empty for unlabelled images.
        video: A clip for backends that take video.

    Raises:
        ValueError: ``labels`` is neither empty nor one per image.

    >>> Message("user", "What happens?", (np.zeros((4, 4, 3), np.uint8),), ("switch frame",)).labels
    ('switch frame',)
    """

    role: Role
    text: str
    images: tuple[np.ndarray, ...] = ()
    labels: tuple[str, ...] = ()
    video: Video | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "images", tuple(self.images))
        object.__setattr__(self, "labels", tuple(str(label) for label in self.labels))
        if self.labels and len(self.labels) != len(self.images):
            raise ValueError(
                f"Message.labels: {len(self.labels)} labels for {len(self.images)} images "
                "(give one label per image, or none)"
            )


PartKind = Literal["text", "image", "video"]


def message_parts(
    message: Message, max_images: int | None = None, *, video: bool = True
) -> list[tuple[PartKind, Any]]:
    """A message's parts in the order every backend sends them: text, then (label, image) pairs, then video.

    Args:
        message: The message.
        max_images: Keep at most this many images, evenly spread with the first and last kept
            (:func:`sample_indices`); a dropped image's label is dropped with it.
        video: Include the message's video (with its label); ``False`` for backends not sending video.

    Returns:
        ``("text", str)``, ``("image", ndarray)`` and ``("video", Video)`` items. Empty texts and labels are
        left out.

    >>> frames = tuple(np.full((2, 2, 3), i, np.uint8) for i in range(5))
    >>> parts = message_parts(Message("user", "Q", frames, tuple("abcde")), max_images=3)
    >>> [(kind, value if kind == "text" else int(value[0, 0, 0])) for kind, value in parts]
    [('text', 'Q'), ('text', 'a'), ('image', 0), ('text', 'c'), ('image', 2), ('text', 'e'), ('image', 4)]
    """
    parts: list[tuple[PartKind, Any]] = []
    if message.text:
        parts.append(("text", message.text))
    count = len(message.images)
    chosen = sample_indices(count, max_images) if max_images is not None else list(range(count))
    for index in chosen:
        if message.labels and message.labels[index]:
            parts.append(("text", message.labels[index]))
        parts.append(("image", message.images[index]))
    if video and message.video is not None:
        if message.video.label:
            parts.append(("text", message.video.label))
        parts.append(("video", message.video))
    return parts


def sample_indices(count: int, limit: int) -> list[int]:
    """Evenly spread indices of at most ``limit`` of ``count`` items, first and last included.

    >>> sample_indices(10, 4), sample_indices(3, 8)
    ([0, 3, 6, 9], [0, 1, 2])
    """
    if count <= limit:
        return list(range(count))
    return sorted({round(float(x)) for x in np.linspace(0, count - 1, limit)})


def downscale(frame: np.ndarray, max_side: int) -> np.ndarray:
    """``(H, W, 3)`` uint8 RGB scaled (area interpolation) so its larger side is at most ``max_side``; never up.

    >>> downscale(np.zeros((90, 160, 3), np.uint8), 64).shape, downscale(np.zeros((8, 12, 3), np.uint8), 64).shape
    ((36, 64, 3), (8, 12, 3))
    """
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"images must be (H, W, 3) uint8 RGB, got {frame.shape} {frame.dtype}")
    height, width = frame.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return frame
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.ascontiguousarray(cv2.resize(frame, size, interpolation=cv2.INTER_AREA))


def video_stride(count: int, limit: int) -> int:
    """The whole-frame stride that keeps at most ``limit`` of ``count`` frames of a clip.

    A uniform stride keeps the clip's timing exact: the kept frames are ``frames[::stride]`` at
    ``fps / stride``.

    >>> video_stride(40, 32), video_stride(48, 16), video_stride(10, 32)
    (2, 3, 1)
    """
    return max(1, -(-count // max(1, limit)))


@dataclass(frozen=True)
class VLMReply:
    """A model's answer with its accounting.

    Attributes:
        text: The raw reply text.
        model: The model that answered.
        prompt_tokens: Input tokens billed (0 when unknown).
        completion_tokens: Output tokens billed (0 when unknown).
        cost_usd: Estimated cost, ``None`` when no price is known.
        metadata: JSON-serialisable extras (finish reason, latency, retries...).
    """

    text: str
    model: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_usd: float | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@runtime_checkable
class VLM(Protocol):
    """Sends messages with images, returns text. Loads/connects once, in ``__init__``.

    A backend may also define ``check() -> str``: a cheap test, made before a run spends anything, that
    the endpoint answers, the credentials are accepted and the model exists; it raises
    :class:`VLMUnavailable` or :class:`VLMError` with one line naming the option at fault, and returns
    what it checked.
    """

    name: str

    def chat(self, messages: Sequence[Message], *, json_schema: Mapping[str, Any] | None = None) -> VLMReply:
        """Answer the conversation; ``json_schema`` asks for structured output where the backend supports it."""
        ...
