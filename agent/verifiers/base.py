"""The verifier contract: a clip in, a plausibility score out, no ground truth anywhere.

A verifier judges one attempt from what an honest selector may see: the conditioning frames (``prefix``,
ending at the switch frame) and the generated continuation (``frames``). It never sees the real take-2, the
scenario's state files or the evaluator's masks; :class:`ClipInput` is everything it gets.

Scores are comparable between attempts of the same scenario (the selector's use), not across scenarios.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

import numpy as np

Mode = Literal["i2v", "v2v"]
T = TypeVar("T")
R = TypeVar("R")
MODES: tuple[str, ...] = ("i2v", "v2v")

#: A generated frame whose grey-level standard deviation is below this is a flat colour (a decoder or
#: generator failure, not a scene): a clip made only of such frames is "blank".
BLANK_STD = 1.0
#: Frames smaller than this (either side, px) cannot carry the structure any verifier measures.
MIN_SIDE = 16


@dataclass(frozen=True)
class ClipInput:
    """One attempt as a verifier sees it.

    Attributes:
        prefix: ``(P, H, W, 3)`` uint8 RGB conditioning frames ending at the switch frame (``P == 1`` in
            i2v mode: the switch frame alone).
        frames: ``(T, H, W, 3)`` uint8 RGB generated continuation, the frames *after* the switch frame.
        fps: Frame rate of both (frames per second).
        mode: ``"i2v"`` (image-conditioned: only the switch frame is known) or ``"v2v"`` (the generator
            saw the whole prefix).

    Construction never validates: a verifier checks the clip with :func:`check_clip` and reports a bad one
    as ``value=None`` with the reason, so building a ``ClipInput`` from a broken attempt cannot crash a run.
    """

    prefix: np.ndarray
    frames: np.ndarray
    fps: float
    mode: Mode = "v2v"


@dataclass(frozen=True)
class VerifierScore:
    """A verifier's judgement of one clip.

    Attributes:
        value: Plausibility, higher is better for every verifier (losses are negated); ``None`` when the
            verifier could not run on the clip.
        details: The components the value is made of, by name (units in the verifier's docs).
        error: ``""``, or why the verifier could not run (too short, blank, wrong size, ...).
        summary: One plain-language sentence for a critique prompt; says what went wrong when it did.
    """

    value: float | None
    details: dict[str, float] = field(default_factory=dict)
    error: str = ""
    summary: str = ""

    def __post_init__(self) -> None:
        if self.value is not None:
            # A plain float, and 0.0 rather than the -0.0 that negating a zero loss gives.
            object.__setattr__(self, "value", float(self.value) + 0.0)

    @property
    def ok(self) -> bool:
        """Whether the verifier ran (``value`` is a number)."""
        return self.value is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (non-finite numbers become ``None``).

        >>> VerifierScore(-0.5, {"speed": 2.0}, "", "Fine.").to_dict()
        {'value': -0.5, 'details': {'speed': 2.0}, 'error': '', 'summary': 'Fine.'}
        """
        return {
            "value": _finite_or_none(self.value),
            "details": {key: _finite_or_none(val) for key, val in self.details.items()},
            "error": self.error,
            "summary": self.summary,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> VerifierScore:
        """Inverse of :meth:`to_dict` (a ``None`` detail is read back as NaN)."""
        value = data.get("value")
        details = {
            str(k): (math.nan if v is None else float(v)) for k, v in dict(data.get("details", {})).items()
        }
        return cls(
            value=None if value is None else float(value),
            details=details,
            error=str(data.get("error", "")),
            summary=str(data.get("summary", "")),
        )

    @classmethod
    def failed(cls, verifier: str, error: str) -> VerifierScore:
        """A score for a clip the verifier could not judge."""
        return cls(value=None, error=error, summary=f"{verifier} could not judge this attempt: {error}.")


@runtime_checkable
class Verifier(Protocol):
    """A training-free judge of physical plausibility that never sees ground truth.

    Attributes:
        name: Registry name (e.g. ``"motion-continuity"``).
        neural: Whether it runs a neural network (loads weights, may use a GPU).
        config: The options it was built with, defaults included (JSON-serialisable, for provenance).
    """

    name: str
    neural: bool
    config: Mapping[str, Any]

    def score(self, clip: ClipInput) -> VerifierScore:
        """Judge one clip; never raises for a bad clip (returns ``value=None`` with the error)."""
        ...

    def score_many(self, clips: Sequence[ClipInput]) -> list[VerifierScore]:
        """Judge several clips, in order (neural backends batch their frames here)."""
        ...


def check_clip(clip: ClipInput, *, min_frames: int = 2, min_prefix: int = 1) -> str:
    """Why ``clip`` cannot be judged, or ``""`` when it can.

    Args:
        clip: The clip.
        min_frames: Generated frames the verifier needs.
        min_prefix: Conditioning frames it needs (i2v clips always pass 1; only ``prefix[-1]`` is used).

    >>> frame = np.random.default_rng(0).integers(0, 255, (1, 32, 32, 3), dtype=np.uint8)
    >>> check_clip(ClipInput(frame, np.repeat(frame, 4, axis=0), 8.0))
    ''
    >>> check_clip(ClipInput(frame, np.repeat(frame, 1, axis=0), 8.0), min_frames=3)
    'too short: 1 generated frame(s), this verifier needs at least 3'
    """
    for label, array in (("prefix", clip.prefix), ("frames", clip.frames)):
        if (
            not isinstance(array, np.ndarray)
            or array.dtype != np.uint8
            or array.ndim != 4
            or array.shape[-1] != 3
        ):
            shape = getattr(array, "shape", None)
            dtype = getattr(array, "dtype", type(array).__name__)
            return f"{label} must be (N, H, W, 3) uint8 RGB, got shape {shape} dtype {dtype}"
    if clip.mode not in MODES:
        return f"mode must be one of {', '.join(MODES)}, got {clip.mode!r}"
    if not (isinstance(clip.fps, (int, float)) and math.isfinite(clip.fps) and clip.fps > 0):
        return f"fps must be a positive number, got {clip.fps!r}"
    height, width = clip.prefix.shape[1:3]
    if clip.frames.shape[1:3] != (height, width):
        got_h, got_w = clip.frames.shape[1:3]
        return f"wrong size: generated frames are {got_w}x{got_h} but the prefix is {width}x{height}"
    if min(height, width) < MIN_SIDE:
        return f"wrong size: {width}x{height} frames, at least {MIN_SIDE} px a side needed"
    if len(clip.prefix) < 1:
        return "too short: no prefix frame"
    needed_prefix = 1 if clip.mode == "i2v" else min_prefix
    if len(clip.prefix) < needed_prefix:
        return f"too short: {len(clip.prefix)} prefix frame(s), this verifier needs at least {needed_prefix} in v2v mode"
    if len(clip.frames) < min_frames:
        return f"too short: {len(clip.frames)} generated frame(s), this verifier needs at least {min_frames}"
    if is_blank(clip.frames):
        return "blank: every generated frame is a single flat colour"
    return ""


def is_blank(frames: np.ndarray) -> bool:
    """Whether every frame is (nearly) one flat colour.

    >>> is_blank(np.full((3, 8, 8, 3), 90, np.uint8))
    True
    """
    return all(float(frame.std()) < BLANK_STD for frame in frames)


def conditioning(clip: ClipInput) -> np.ndarray:
    """The conditioning frames a verifier may use: all of the prefix in v2v, the switch frame in i2v."""
    return clip.prefix[-1:] if clip.mode == "i2v" else clip.prefix


def _finite_or_none(value: float | None) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return float(value)


def batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    """Consecutive slices of at most ``size`` items.

    >>> [list(b) for b in batches([1, 2, 3, 4, 5], 2)]
    [[1, 2], [3, 4], [5]]
    """
    for start in range(0, len(items), max(1, size)):
        yield items[start : start + max(1, size)]


def isolate_failures(run: Callable[[Sequence[T]], Sequence[R]], groups: Sequence[T]) -> list[R | Exception]:
    """``run(groups)`` (one result per group); if it raises, each group alone, keeping each one's exception.

    One bad attempt (or an out-of-memory batch) then costs only its own score, not every attempt's.

    >>> def inverse(xs):
    ...     return [1 / x for x in xs]
    >>> [type(r).__name__ if isinstance(r, Exception) else r for r in isolate_failures(inverse, [1, 0, 2])]
    [1.0, 'ZeroDivisionError', 0.5]
    """
    try:
        return list(run(groups))
    except Exception as exc:
        if len(groups) == 1:
            return [exc]
    results: list[R | Exception] = []
    for group in groups:
        try:
            results.extend(run([group]))
        except Exception as exc:
            results.append(exc)
    return results


def failure_message(exc: BaseException) -> str:
    """``"Type: first line of the message"`` for recording a backend failure on an attempt.

    >>> failure_message(RuntimeError("out of memory\\n(details)"))
    'RuntimeError: out of memory'
    """
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__
