"""Frame-count, size and frame-rate rules shared by the neural generator adapters (pure numpy, no torch).

Video diffusion models only accept some clip lengths and sizes: a causal video VAE that compresses time by
``k`` decodes ``k * n + 1`` frames (Wan, LTX with a 4x VAE: ``4n + 1``; CogVideoX and LTX 0.9.5: ``8n + 1``),
and latents are patchified, so height and width must be multiples of ``VAE stride * patch size`` (16 or 32).
Several diffusers pipelines *silently* floor a bad ``num_frames`` or snap the size, which would hand back a
clip of the wrong length. Adapters therefore compute valid values here up front and raise on anything else.

Models also run at their own native frame rate (Wan 2.1: 16 fps), while Physics-IQ wants exactly 5 s at the
benchmark fps after the switch frame. :func:`plan_frames` decides how many native frames to generate and
:func:`to_request_clip` turns the pipeline's output into the contract of :class:`generators.base.GeneratedVideo`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from physics_iq.video import frames_for_seconds, resample_fps


@dataclass(frozen=True)
class FrameRule:
    """Valid clip lengths ``multiple * n + 1`` (``n >= 0``), as a causal video VAE decodes them.

    >>> rule = FrameRule(4)
    >>> rule.is_valid(81), rule.is_valid(80)
    (True, False)
    >>> rule.ceil(78), rule.ceil(81)
    (81, 81)
    """

    multiple: int

    def is_valid(self, frames: int) -> bool:
        """Whether ``frames`` is ``multiple * n + 1``."""
        return frames >= 1 and (frames - 1) % self.multiple == 0

    def ceil(self, frames: int) -> int:
        """The smallest valid length that is at least ``frames``."""
        frames = max(int(frames), 1)
        return 1 + math.ceil((frames - 1) / self.multiple) * self.multiple

    def floor(self, frames: int) -> int:
        """The largest valid length that is at most ``frames`` (``frames >= 1``)."""
        if frames < 1:
            raise ValueError(f"need at least 1 frame, got {frames}")
        return 1 + ((frames - 1) // self.multiple) * self.multiple

    def check(self, frames: int, who: str) -> int:
        """Return ``frames`` or raise ``ValueError`` naming the nearest valid lengths."""
        if not self.is_valid(frames):
            lower = self.floor(frames) if frames >= 1 else 1
            raise ValueError(
                f"{who}: num_frames={frames} is not of the form {self.multiple}*k+1 "
                f"(nearest valid: {lower} or {self.ceil(frames)}); the pipeline would silently change it"
            )
        return frames


def check_size(height: int, width: int, multiple: int, who: str) -> tuple[int, int]:
    """Return ``(height, width)`` or raise ``ValueError`` when either is not a positive multiple of ``multiple``.

    >>> check_size(480, 832, 16, "wan")
    (480, 832)
    >>> check_size(480, 830, 16, "wan")
    Traceback (most recent call last):
    ...
    ValueError: wan: height=480, width=830 must be positive multiples of 16 (e.g. 480x832); the pipeline would silently snap them
    """
    if height <= 0 or width <= 0 or height % multiple or width % multiple:
        suggestion = f"{max(multiple, round(height / multiple) * multiple)}x{max(multiple, round(width / multiple) * multiple)}"
        raise ValueError(
            f"{who}: height={height}, width={width} must be positive multiples of {multiple} "
            f"(e.g. {suggestion}); the pipeline would silently snap them"
        )
    return height, width


def fit_size(height: int, width: int, max_area: int, multiple: int) -> tuple[int, int]:
    """Largest ``(h, w)``, multiples of ``multiple``, with the aspect ratio of ``height x width`` and area <= ``max_area``.

    This is how the Wan and CogVideoX examples pick a generation size for an arbitrary input image.

    >>> fit_size(1080, 1920, 480 * 832, 16)
    (464, 832)
    >>> fit_size(8, 8, 64 * 64, 32)
    (64, 64)
    """
    if height <= 0 or width <= 0:
        raise ValueError(f"image size must be positive, got {height}x{width}")
    scale = math.sqrt(max_area / (height * width))
    h = max(multiple, int(height * scale) // multiple * multiple)
    w = max(multiple, int(width * scale) // multiple * multiple)
    return h, w


@dataclass(frozen=True)
class FramePlan:
    """How many native frames to ask a pipeline for.

    Attributes:
        total: ``num_frames`` passed to the pipeline (valid under the family's rule).
        conditioning: Leading output frames that re-decode the conditioning (switch frame or prefix clip) and
            are dropped.
        needed: Native frames after the conditioning that cover the requested duration.
        native_fps: The model's frame rate.
    """

    total: int
    conditioning: int
    needed: int
    native_fps: float


def plan_frames(
    num_frames: int, fps: float, native_fps: float, rule: FrameRule, conditioning: int = 1
) -> FramePlan:
    """Plan a generation of ``num_frames`` at ``fps`` from a model running at ``native_fps``.

    Args:
        num_frames: Frames wanted after the switch frame, at ``fps``.
        fps: The request's (benchmark) frame rate.
        native_fps: The model's frame rate.
        rule: The family's valid clip lengths.
        conditioning: Leading frames of the pipeline's output that re-decode the conditioning input
            (1 for image-to-video; the prefix length for video continuation).

    >>> plan_frames(40, 8, 16, FrameRule(4))  # 5 s at 8 fps from Wan at 16 fps: the canonical 81 frames
    FramePlan(total=81, conditioning=1, needed=80, native_fps=16)
    >>> plan_frames(120, 24, 24, FrameRule(8), conditioning=9).total
    129
    """
    if num_frames < 1 or fps <= 0 or native_fps <= 0:
        raise ValueError(
            f"need num_frames >= 1 and positive frame rates, got {num_frames}, {fps}, {native_fps}"
        )
    seconds = num_frames / fps
    # ceil (with a tolerance for float noise) so that resampling back never falls short of num_frames.
    needed = max(1, math.ceil(seconds * native_fps - 1e-6))
    total = rule.ceil(conditioning + needed)
    return FramePlan(total=total, conditioning=conditioning, needed=needed, native_fps=native_fps)


def resize_frames(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Resize ``(T, H, W, 3)`` uint8 frames; area filter when shrinking, bilinear when enlarging.

    >>> resize_frames(np.zeros((2, 4, 6, 3), np.uint8), 8, 12).shape
    (2, 8, 12, 3)
    """
    if frames.shape[1:3] == (height, width):
        return frames
    shrinking = height * width < frames.shape[1] * frames.shape[2]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    out = np.empty((len(frames), height, width, frames.shape[3]), np.uint8)
    for i, frame in enumerate(frames):
        out[i] = cv2.resize(frame, (width, height), interpolation=interpolation)
    return out


def float_to_uint8(frames: np.ndarray) -> np.ndarray:
    """Map pipeline output in ``[0, 1]`` (``output_type="np"``) to uint8, clipping stray values.

    >>> float_to_uint8(np.array([-0.1, 0.0, 0.5, 1.0, 1.2])).tolist()
    [0, 0, 128, 255, 255]
    """
    frames = np.asarray(frames, dtype=np.float32)
    if not np.isfinite(frames).all():
        raise ValueError("pipeline output contains NaN or infinite values")
    return np.clip(np.rint(frames * 255.0), 0, 255).astype(np.uint8)


def to_request_clip(
    native: np.ndarray, plan: FramePlan, num_frames: int, fps: float, height: int, width: int
) -> np.ndarray:
    """Turn a pipeline's native-rate output into exactly ``num_frames`` at ``fps`` and ``height x width``.

    Drops the re-decoded conditioning frames, keeps the native frames covering the requested duration,
    resamples them to ``fps`` with the official Physics-IQ linear blend and resizes.

    Args:
        native: ``(plan.total, h, w, 3)`` uint8 as the pipeline produced it.
        plan: The plan the pipeline was called with.
        num_frames: Frames wanted.
        fps: Wanted frame rate.
        height: Wanted height.
        width: Wanted width.

    Raises:
        ValueError: The pipeline returned a different number of frames than planned.

    >>> plan = plan_frames(4, 8, 16, FrameRule(4))
    >>> clip = np.repeat(np.arange(plan.total, dtype=np.uint8)[:, None, None, None], 3, axis=3)
    >>> to_request_clip(clip, plan, 4, 8, 1, 1)[:, 0, 0, 0].tolist()
    [1, 3, 5, 8]
    """
    if native.ndim != 4 or len(native) != plan.total:
        raise ValueError(
            f"pipeline returned {native.shape[0] if native.ndim == 4 else native.shape} frames, "
            f"planned {plan.total} (shape {native.shape})"
        )
    after = native[plan.conditioning : plan.conditioning + plan.needed]
    same_rate = abs(plan.native_fps - fps) < 1e-9
    resampled = after if same_rate else resample_fps(after, plan.native_fps, fps)
    if len(resampled) < num_frames:
        raise ValueError(
            f"{len(after)} native frames at {plan.native_fps} fps resample to {len(resampled)} frames at "
            f"{fps} fps, fewer than the {num_frames} wanted"
        )
    return resize_frames(np.ascontiguousarray(resampled[:num_frames]), height, width)


__all__ = [
    "FramePlan",
    "FrameRule",
    "check_size",
    "fit_size",
    "float_to_uint8",
    "frames_for_seconds",
    "plan_frames",
    "resize_frames",
    "to_request_clip",
]
