"""The one extension point for video generators: ``Generator.generate(request) -> GeneratedVideo``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

Mode = Literal["i2v", "v2v"]


class GenerationError(RuntimeError):
    """A generator could not produce a valid continuation (pipeline error, out of memory, bad output).

    The refinement loop records it on the attempt and goes on with the other attempts.
    """


@dataclass(frozen=True)
class GenerationRequest:
    """What to continue, and how.

    Attributes:
        prefix: ``(P, H, W, 3)`` uint8 RGB. For ``i2v`` the switch frame alone (``P == 1``); for ``v2v`` the
            conditioning clip, its last frame being the switch frame.
        fps: Frame rate of the prefix and of the wanted output (the benchmark fps).
        prompt: The generation prompt.
        seed: Random seed; the same request and seed must give the same frames.
        num_frames: Number of frames wanted *after* the switch frame (5 s at ``fps`` for Physics-IQ).
        mode: ``"i2v"`` or ``"v2v"``.
        negative_prompt: What to avoid (ignored by generators without one).
        context: Free-form, JSON-serialisable hints (scenario id, dataset paths for baselines, ...).
    """

    prefix: np.ndarray
    fps: float
    prompt: str
    seed: int
    num_frames: int
    mode: Mode = "i2v"
    negative_prompt: str = ""
    context: Mapping[str, Any] = field(default_factory=dict)

    @property
    def height(self) -> int:
        return int(self.prefix.shape[1])

    @property
    def width(self) -> int:
        return int(self.prefix.shape[2])

    @property
    def switch_frame(self) -> np.ndarray:
        """The last prefix frame, ``(H, W, 3)``."""
        return self.prefix[-1]


@dataclass(frozen=True)
class GeneratedVideo:
    """A continuation: exactly ``request.num_frames`` frames after the switch frame.

    Attributes:
        frames: ``(num_frames, H, W, 3)`` uint8 RGB at the request's size.
        fps: Equal to the request's fps.
        metadata: JSON-serialisable facts (model id, steps, native fps, timings, ...).
    """

    frames: np.ndarray
    fps: float
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class PromptStyle:
    """What prompts a generator family reads best, so the VLM writes for the model it drives.

    Attributes:
        words: ``(least, most)`` words of a good prompt (Wan and CogVideoX were trained on long, detailed
            captions; a short prompt under-specifies them).
        negative_prompt: Whether the family takes a negative prompt (the VLM is then asked for one).
        note: One sentence on what the family reads well, shown to the VLM.
    """

    words: tuple[int, int] = (30, 80)
    negative_prompt: bool = False
    note: str = ""


#: The style of a generator that declares none.
DEFAULT_PROMPT_STYLE = PromptStyle()


def prompt_style(generator: object) -> PromptStyle:
    """The :class:`PromptStyle` a generator (class or instance) declares, or the default."""
    style = getattr(generator, "prompt_style", None)
    return style if isinstance(style, PromptStyle) else DEFAULT_PROMPT_STYLE


@runtime_checkable
class Generator(Protocol):
    """Turns (prefix, prompt, seed) into a continuation. Loads its model once, in ``__init__``.

    A generator class may also declare ``concurrent_safe = True`` (its instances may serve overlapping calls;
    undeclared means one call at a time, see ``agent.pool``), ``prompt_style`` (a :class:`PromptStyle`) and
    ``reads_expectations = True`` (it reads the predicted per-object expectations from
    ``request.context["expectations"]``; they are then part of each attempt's identity).
    """

    name: str

    def generate(self, request: GenerationRequest) -> GeneratedVideo: ...


def check_output(request: GenerationRequest, video: GeneratedVideo, who: str) -> GeneratedVideo:
    """Enforce the output contract, raising :class:`GenerationError` with the offending values."""
    frames = video.frames
    expected = (request.num_frames, request.height, request.width, 3)
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8:
        raise GenerationError(f"{who}: frames must be a uint8 numpy array, got {type(frames).__name__}")
    if frames.shape != expected:
        raise GenerationError(f"{who}: expected frames of shape {expected}, got {frames.shape}")
    if abs(video.fps - request.fps) > 1e-6:
        raise GenerationError(f"{who}: expected fps {request.fps}, got {video.fps}")
    return video
