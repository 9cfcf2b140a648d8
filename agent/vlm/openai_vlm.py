"""OpenAI-compatible chat backend: OpenAI itself, or vLLM, Ollama, LM Studio, ... through ``base_url``.

A message is sent in the order documented on :class:`~agent.vlm.base.Message`: its text, then each image
(at most ``max_frames``, evenly spread, largest side ``max_side``, as base64 data URLs) preceded by its label
as a text part, then the video when ``video`` is not ``none``. When the agent passes a JSON schema,
structured output is requested with ``response_format={"type": "json_schema", ...}``; servers that reject it
are asked again without it, and servers that silently ignore it are fine too, because this backend always
returns the raw text and the agent validates it with pydantic. Retries with exponential backoff on 429 / 5xx /
timeouts are the ``openai`` client's own (``max_retries``, ``timeout``). The API key is read from the
environment variable named by ``api_key_env`` only; it is never logged, stored or put in a reply.

Video (``--vlm-opt video=frames|mp4``) is for servers whose model takes video, e.g. vLLM serving Qwen2.5-VL
(start it with video allowed, e.g. ``--limit-mm-per-prompt '{"image": 16, "video": 1}'``):

- ``frames`` sends the clip's frames as one ``{"type": "video_url", "video_url": {"url":
  "data:video/jpeg;base64,<frame 1>,<frame 2>,..."}}`` part, vLLM's convention for frames sampled by the
  client (Qwen2.5-VL's README, "Start an OpenAI API Service");
- ``mp4`` encodes the frames as an H.264 mp4 (PyAV) sent as ``data:video/mp4;base64,...``.

A clip longer than ``video_frames`` is sent every k-th frame at ``fps / k``, so its timing stays exact. The
frame rate goes to the server in two request fields (``extra_body``), because vLLM moved it:

- ``mm_processor_kwargs: {"fps": ...}``, accepted from vLLM 0.8 (PR #13533, Feb 2025): forwarded to the
  Hugging Face processor, where Qwen2.5-VL processors of transformers before the video-processor refactor
  turn it into the temporal position scale (``second_per_grid_ts``);
- ``media_io_kwargs: {"video": {"fps": ..., "num_frames": -1}}``, the per-request media-loading field added
  by vLLM PR #34778 (first released around 0.18, March 2026): the fps of a ``video/jpeg`` frame sequence is
  read from it since PR #37301 (before, such frames carried no frame rate), Qwen2.5-VL uses that metadata for
  its temporal positions since PR #47736 (July 2026, around 0.25), and ``num_frames: -1`` stops vLLM from
  keeping only the first 32 frames of a sequence.

vLLM ignores (and logs) request fields it does not know, so both are sent. These version boundaries come
from reading vLLM's source and pull requests; this backend is tested against a scripted server only.
"""

from __future__ import annotations

import base64
import difflib
import logging
import os
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np
import openai
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from agent.vlm.base import (
    Message,
    Video,
    VLMError,
    VLMReply,
    VLMUnavailable,
    downscale,
    message_parts,
    sample_indices,
    video_stride,
)
from physics_iq.registry import BackendOptionError
from physics_iq.video import VideoWriteError, write_video

logger = logging.getLogger(__name__)

#: USD per million (prompt, completion) tokens, from https://openai.com/api/pricing (checked 2025); the
#: longest matching model-name prefix wins. Override per run with ``prompt_price``/``completion_price``.
PRICES_PER_MTOK: dict[str, tuple[float, float]] = {
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4o": (2.50, 10.00),
    "gpt-4.1-nano": (0.10, 0.40),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-5-nano": (0.05, 0.40),
    "gpt-5-mini": (0.25, 2.00),
    "gpt-5": (1.25, 10.00),
    "o4-mini": (1.10, 4.40),
}

# Local servers want some key string but never check it.
_LOCAL_PLACEHOLDER_KEY = "not-needed"


class OpenAIVLMOptions(BaseModel):
    """Options (``--vlm-opt KEY=VALUE`` strings are coerced).

    Attributes:
        model: Model name as the server knows it.
        base_url: Server URL (e.g. ``http://localhost:8000/v1`` for vLLM); OpenAI's when unset.
        api_key_env: Environment variable holding the key; local servers need none.
        max_retries: Retries on 429 / 5xx / connection errors / timeouts (exponential backoff by the client).
        timeout: Seconds per request attempt.
        max_frames: Most images sent per message (evenly sampled; labels stay with their images).
        max_side: Largest image (and video frame) side in pixels after downscaling.
        image_detail: OpenAI ``detail`` hint (``low`` is 85 tokens per image).
        image_format: Encoding of the frames.
        temperature: Sampling temperature (unset: server default).
        max_tokens: Completion budget (unset: server default).
        structured_output: Ask for ``json_schema`` output when a schema is given, or never (``none``).
        prompt_price: USD per million prompt tokens (overrides the table).
        completion_price: USD per million completion tokens (overrides the table).
        video: Send a message's video as ``frames`` (a ``data:video/jpeg`` frame sequence) or ``mp4``, or
            leave it out (``none``); only for servers whose model takes video (see the module docstring).
        video_frames: Most frames of one video; a longer clip is sent every k-th frame at ``fps / k``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field("gpt-4o-mini", min_length=1)
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    max_retries: int = Field(3, ge=0)
    timeout: float = Field(120.0, gt=0)
    max_frames: int = Field(16, ge=1)
    max_side: int = Field(512, ge=16)
    image_detail: Literal["auto", "low", "high"] = "auto"
    image_format: Literal["jpeg", "png"] = "jpeg"
    temperature: float | None = Field(None, ge=0)
    max_tokens: int | None = Field(None, ge=1)
    structured_output: Literal["json_schema", "none"] = "json_schema"
    prompt_price: float | None = Field(None, ge=0)
    completion_price: float | None = Field(None, ge=0)
    video: Literal["none", "frames", "mp4"] = "none"
    video_frames: int = Field(32, ge=2)


__all__ = ["OpenAIVLM", "OpenAIVLMOptions", "encode_frame", "encode_video", "price_of", "sample_indices"]


def encode_frame(frame: np.ndarray, max_side: int, image_format: str = "jpeg") -> str:
    """``(H, W, 3)`` uint8 RGB -> ``data:image/...;base64,...`` URL, downscaled so the larger side <= ``max_side``."""
    return f"data:image/{image_format};base64,{_encode_image(frame, max_side, image_format)}"


def _encode_image(frame: np.ndarray, max_side: int, image_format: str) -> str:
    frame = downscale(frame, max_side)
    extension = ".jpg" if image_format == "jpeg" else ".png"
    ok, buffer = cv2.imencode(extension, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"could not encode a {frame.shape} frame as {image_format}")
    return base64.b64encode(buffer.tobytes()).decode("ascii")


def encode_video(video: Video, max_side: int, max_frames: int, container: str) -> tuple[str, int, float]:
    """A clip as a data URL: ``data:video/jpeg;base64,<frame>,<frame>,...`` or ``data:video/mp4;base64,...``.

    Args:
        video: The clip.
        max_side: Largest frame side after downscaling.
        max_frames: Most frames sent; a longer clip keeps every k-th frame (``fps / k``).
        container: ``frames`` (JPEG frame sequence) or ``mp4`` (H.264, even sides).

    Returns:
        The URL, the number of frames in it and their frame rate.
    """
    stride = video_stride(len(video.frames), max_frames)
    frames = [downscale(frame, max_side) for frame in video.frames[::stride]]
    fps = video.fps / stride
    if container == "frames":
        return (
            "data:video/jpeg;base64," + ",".join(_encode_image(f, max_side, "jpeg") for f in frames),
            len(frames),
            fps,
        )
    height, width = frames[0].shape[:2]
    # H.264 in yuv420p needs even sides: drop an odd last row or column.
    clip = np.stack([frame[: height - height % 2, : width - width % 2] for frame in frames])
    with tempfile.TemporaryDirectory(prefix="physrefine-video-") as folder:
        path = Path(folder) / "clip.mp4"
        try:
            write_video(path, clip, fps)
        except VideoWriteError as exc:
            raise ValueError(f"vlm openai: could not encode the video as mp4: {exc}") from exc
        data = path.read_bytes()
    return "data:video/mp4;base64," + base64.b64encode(data).decode("ascii"), len(frames), fps


def price_of(
    model: str, table: Mapping[str, tuple[float, float]] = PRICES_PER_MTOK
) -> tuple[float, float] | None:
    """(prompt, completion) USD per million tokens for ``model`` by longest prefix, ``None`` when unknown.

    >>> price_of("gpt-4o-mini-2024-07-18"), price_of("gpt-4o-2024-08-06"), price_of("llava")
    ((0.15, 0.6), (2.5, 10.0), None)
    """
    matches = [prefix for prefix in table if model.startswith(prefix)]
    return table[max(matches, key=len)] if matches else None


class OpenAIVLM:
    """A :class:`~agent.vlm.base.VLM` speaking the OpenAI chat-completions API.

    Args:
        model: Model name.
        base_url: Server URL; OpenAI's when unset.
        **options: Any field of :class:`OpenAIVLMOptions` (strings are coerced).

    Raises:
        ValueError: An unknown or invalid option.
        VLMError: No API key in the environment for OpenAI's own endpoint.
    """

    name = "openai"

    def __init__(self, model: str | None = None, base_url: str | None = None, **options: Any) -> None:
        given = {
            key: value
            for key, value in {"model": model, "base_url": base_url, **options}.items()
            if value is not None
        }
        try:
            self.options = OpenAIVLMOptions(**given)
        except PydanticValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
            )
            raise BackendOptionError(
                f"vlm openai: {problems} (known options: {', '.join(OpenAIVLMOptions.model_fields)})"
            ) from None
        opts = self.options
        key = os.environ.get(opts.api_key_env, "")
        if not key:
            if opts.base_url is None:
                raise VLMError(
                    f"vlm openai: no API key; set the environment variable {opts.api_key_env} "
                    "(or give base_url for a local server that needs none)"
                )
            key = _LOCAL_PLACEHOLDER_KEY
        self._client = openai.OpenAI(
            api_key=key, base_url=opts.base_url, max_retries=opts.max_retries, timeout=opts.timeout
        )
        self._schema_supported = opts.structured_output == "json_schema"
        if opts.prompt_price is not None or opts.completion_price is not None:
            self._prices: tuple[float, float] | None = (
                opts.prompt_price or 0.0,
                opts.completion_price or 0.0,
            )
        elif opts.base_url is None or "api.openai.com" in opts.base_url:
            self._prices = price_of(opts.model)
        else:
            self._prices = None  # a local server's model name says nothing about a price

    def __repr__(self) -> str:
        return f"OpenAIVLM(model={self.options.model!r}, base_url={self.options.base_url!r})"

    @property
    def endpoint(self) -> str:
        """The server, as shown in messages (``--base-url`` or OpenAI's)."""
        return self.options.base_url or "https://api.openai.com/v1"

    def _refused(self, exc: openai.APIStatusError, who: str) -> VLMUnavailable:
        """The server refused the credentials (HTTP 401/403): the key's variable named, never the key (nor the
        server's message, which may quote part of it)."""
        return VLMUnavailable(
            f"{who}: {self.endpoint} refused the API key in ${self.options.api_key_env} (HTTP {exc.status_code})",
            "auth",
            self.endpoint,
        )

    def check(self) -> str:
        """Before a run: the server answers, accepts the key and has the model (its models listing).

        One request, one retry at most, a short timeout. A server without a listing (HTTP 404/405) is taken
        as reachable, with the model left unchecked (said in the return value).

        Raises:
            VLMUnavailable: The server cannot be reached or refused the key.
            VLMError: The server has no model of that name (with the names it has).
        """
        opts = self.options
        client = self._client.with_options(max_retries=1, timeout=min(opts.timeout, 15.0))
        try:
            listing = client.models.list()
            names = [model.id for model in listing.data]
        except (openai.APITimeoutError, openai.APIConnectionError) as exc:
            raise VLMUnavailable(
                f"--base-url {self.endpoint}: the VLM server cannot be reached ({type(exc).__name__}: {exc})",
                "connection",
                self.endpoint,
            ) from exc
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise self._refused(exc, "--vlm openai") from exc
        except openai.APIStatusError as exc:
            if exc.status_code in (404, 405, 501):
                return f"{self.endpoint} reachable (no models listing; model {opts.model!r} not checked)"
            raise VLMError(
                f"--base-url {self.endpoint}: the models listing failed with HTTP {exc.status_code}"
            ) from exc
        if names and opts.model not in names:
            close = difflib.get_close_matches(opts.model, names, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            shown = ", ".join(sorted(names)[:12]) + (", ..." if len(names) > 12 else "")
            raise VLMError(
                f"--vlm-model {opts.model!r}: {self.endpoint} has no such model{hint} (it has: {shown})"
            )
        return f"{self.endpoint} reachable, key accepted, model {opts.model!r} listed"

    def _content(self, message: Message) -> tuple[Any, int, list[tuple[int, float]]]:
        """The message's ``content`` in the order of :func:`~agent.vlm.base.message_parts`, the number of
        images in it, and ``(frames, fps)`` of each video in it."""
        opts = self.options
        send_video = opts.video != "none"
        if not message.images and (message.video is None or not send_video):
            return message.text, 0, []
        if message.role != "user":
            raise ValueError(
                f"vlm openai: only user messages may carry images or video, got {message.role!r}"
            )
        parts: list[dict[str, Any]] = []
        images = 0
        videos: list[tuple[int, float]] = []
        for kind, value in message_parts(message, opts.max_frames, video=send_video):
            if kind == "text":
                parts.append({"type": "text", "text": value})
            elif kind == "image":
                url = encode_frame(value, opts.max_side, opts.image_format)
                parts.append({"type": "image_url", "image_url": {"url": url, "detail": opts.image_detail}})
                images += 1
            else:
                url, count, fps = encode_video(value, opts.max_side, opts.video_frames, opts.video)
                parts.append({"type": "video_url", "video_url": {"url": url}})
                videos.append((count, fps))
        return parts, images, videos

    def chat(self, messages: Sequence[Message], *, json_schema: Mapping[str, Any] | None = None) -> VLMReply:
        """Send the conversation; return the raw reply text with token usage and estimated cost.

        Raises:
            ValueError: Images or video on a non-user message, or videos of different frame rates.
            VLMError: Transport failure after retries, timeout, refusal, or empty content; a server that
                refuses the video part (naming the ``video`` option).
        """
        opts = self.options
        payload: list[dict[str, Any]] = []
        frames_sent = 0
        videos: list[tuple[int, float]] = []
        for message in messages:
            content, sent, clips = self._content(message)
            frames_sent += sent
            videos += clips
            payload.append({"role": message.role, "content": content})
        request: dict[str, Any] = {"model": opts.model, "messages": payload}
        video_fps = None
        if videos:
            rates = sorted({fps for _, fps in videos})
            if len(rates) > 1:
                raise ValueError(
                    f"vlm openai: the videos of one request must share a frame rate, got {rates}"
                )
            video_fps = rates[0]
            # Two fields because vLLM moved the frame rate of client-sampled frames (module docstring).
            request["extra_body"] = {
                "mm_processor_kwargs": {"fps": video_fps},
                "media_io_kwargs": {"video": {"fps": video_fps, "num_frames": -1}},
            }
        if opts.temperature is not None:
            request["temperature"] = opts.temperature
        if opts.max_tokens is not None:
            request["max_tokens"] = opts.max_tokens
        structured = json_schema is not None and self._schema_supported
        if structured:
            request["response_format"] = {
                "type": "json_schema",
                # strict mode rejects common pydantic schemas (optional fields, defaults); validation is local.
                "json_schema": {"name": "reply", "schema": dict(json_schema or {}), "strict": False},
            }
        started = time.perf_counter()
        fallback = False
        try:
            try:
                response = self._client.chat.completions.create(**request)
            except openai.BadRequestError as exc:
                if not structured:
                    raise
                # Some OpenAI-compatible servers reject response_format; ask once more without it and stop
                # asking for the rest of the run (the agent validates the text either way).
                logger.warning(
                    "vlm openai: server rejected response_format (%s); retrying without it", exc.status_code
                )
                self._schema_supported = False
                fallback = True
                request.pop("response_format")
                try:
                    response = self._client.chat.completions.create(**request)
                except openai.BadRequestError:
                    if videos:  # the request failed for another reason (the video, likely): keep asking
                        self._schema_supported = True
                    raise
        except openai.BadRequestError as exc:
            if videos:
                raise VLMError(
                    f"vlm openai: {self.endpoint} refused a request with a video (HTTP {exc.status_code}: "
                    f"{exc.message}); use --vlm-opt video=none unless {opts.model!r} takes video "
                    f"(video={opts.video})"
                ) from exc
            raise VLMError(
                f"vlm openai: {opts.model!r} answered HTTP {exc.status_code}: {exc.message}"
            ) from exc
        except openai.APITimeoutError as exc:
            raise VLMUnavailable(
                f"vlm openai: no answer from {opts.model!r} within {opts.timeout} s after {opts.max_retries} retries",
                "connection",
                self.endpoint,
            ) from exc
        except openai.APIConnectionError as exc:
            raise VLMUnavailable(
                f"vlm openai: cannot reach {self.endpoint}: {exc}", "connection", self.endpoint
            ) from exc
        except (openai.AuthenticationError, openai.PermissionDeniedError) as exc:
            raise self._refused(exc, "vlm openai") from exc
        except openai.APIStatusError as exc:
            raise VLMError(
                f"vlm openai: {opts.model!r} answered HTTP {exc.status_code} "
                f"(after up to {opts.max_retries} retries): {exc.message}"
            ) from exc
        latency = time.perf_counter() - started
        if not response.choices:
            raise VLMError(f"vlm openai: {opts.model!r} returned no choices")
        choice = response.choices[0]
        refusal = getattr(choice.message, "refusal", None)
        if refusal:
            raise VLMError(f"vlm openai: {opts.model!r} refused: {refusal}")
        if choice.finish_reason == "content_filter":
            raise VLMError(f"vlm openai: {opts.model!r} reply was blocked by the content filter")
        text = choice.message.content or ""
        if not text.strip():
            raise VLMError(
                f"vlm openai: {opts.model!r} returned empty content (finish_reason={choice.finish_reason})"
            )
        usage = response.usage
        prompt_tokens = int(usage.prompt_tokens) if usage and usage.prompt_tokens else 0
        completion_tokens = int(usage.completion_tokens) if usage and usage.completion_tokens else 0
        cost = None
        if self._prices is not None:
            cost = (prompt_tokens * self._prices[0] + completion_tokens * self._prices[1]) / 1e6
        logger.debug(
            "vlm openai: %s answered in %.2f s, %d+%d tokens, %d frames",
            response.model or opts.model,
            latency,
            prompt_tokens,
            completion_tokens,
            frames_sent,
        )
        return VLMReply(
            text=text,
            model=response.model or opts.model,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            cost_usd=cost,
            metadata={
                "finish_reason": choice.finish_reason,
                "latency_s": round(latency, 3),
                "frames_sent": frames_sent,
                "structured_output_requested": structured,
                "response_format_rejected": fallback,
                "base_url": opts.base_url,
                "video_frames_sent": sum(count for count, _ in videos),
                "video_fps": video_fps,
            },
        )
