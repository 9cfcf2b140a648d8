"""``motion-continuity``: does the motion that was under way at the switch frame carry on (optical flow)?

For each pair of consecutive frames around the switch frame, dense optical flow (OpenCV DIS) gives the
*moving region* (pixels that changed and whose flow exceeds ``min_flow``), its mean velocity (px/frame, x
right, y down) and the share of the change the flow cannot explain (after warping the earlier frame by the
flow, the fraction of changed pixels that still differ: objects that appear, vanish or teleport).

v2v mode: the velocity of the last ``context`` prefix pairs is fitted with a straight line in time (constant
acceleration; the mean when fewer than 3 pairs) and extrapolated over the switch pair and the next
``horizon - 1`` generated pairs. Each observed velocity is compared with its prediction,
``|v - v_pred| / (max(|v|, |v_pred|) + min_speed)`` (about 0 when the motion carries on, about 1 when it
stops, about 2 when it reverses), and the unexplained share of the switch-side pairs is compared with the
prefix's own (disocclusions leave some change unexplained in every clip).

i2v mode: one conditioning frame shows no motion, so the check is on smoothness of the first generated
frames: each velocity from the third pair on is predicted from the previous two (constant acceleration,
``2 v[k-1] - v[k-2]``), and the unexplained share's excess is measured against its median over those pairs.
It catches a jump, a reversal or a stutter right after the switch frame; it cannot tell whether the motion
that starts is the one the scene implies.

``value = -(mean velocity error + unexplained excess)``; 0 is a perfect continuation.

Limits: the moving region's mean velocity mixes several objects moving differently; a legitimate bounce
right at the switch frame reads as a reversal.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from agent.verifiers.base import ClipInput, VerifierScore, check_clip
from physics_iq.registry import BackendOptionError

_PRESETS = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}


@dataclass(frozen=True)
class PairMotion:
    """Motion between two consecutive frames.

    Attributes:
        velocity: Mean flow of the moving region, ``(vx, vy)`` px/frame; ``(0, 0)`` when nothing moves.
        moving_fraction: Share of the frame in the moving region.
        unexplained: Share of the changed pixels that still differ after warping by the flow (0..1).
    """

    velocity: tuple[float, float]
    moving_fraction: float
    unexplained: float

    @property
    def speed(self) -> float:
        return math.hypot(*self.velocity)


def to_gray(frame: np.ndarray, max_side: int) -> np.ndarray:
    """uint8 grey image of an RGB frame, downscaled (area) so its longer side is at most ``max_side``."""
    gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
    height, width = gray.shape
    scale = max_side / max(height, width)
    if scale < 1.0:
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
    return gray


def pair_motion(
    before: np.ndarray,
    after: np.ndarray,
    flow: cv2.DISOpticalFlow,
    *,
    min_flow: float = 0.5,
    change_threshold: int = 10,
    min_pixels: int = 12,
) -> PairMotion:
    """The moving region's velocity and unexplained change between two uint8 grey frames.

    Args:
        before: Earlier frame.
        after: Later frame.
        flow: A DIS optical-flow object.
        min_flow: Flow magnitude (px/frame) below which a pixel is not moving.
        change_threshold: Grey-level difference above which a pixel changed; 10 sits well above the
            codec noise of the suite's H.264 clips (a few grey levels) and below any object edge.
        min_pixels: Fewer moving (or changed) pixels than this count as none.
    """
    # Flow from ``after`` back to ``before``: after(q) ~ before(q + back(q)), so the object's velocity at
    # q is -back(q), and warping ``before`` by ``back`` predicts ``after`` on after's own grid.
    back = np.asarray(flow.calc(after, before, np.zeros((*after.shape, 2), np.float32)))
    diff = cv2.absdiff(after, before)
    changed = diff > change_threshold
    # The interior of a flat object does not change while it moves; its flow is still valid near edges.
    near_change = cv2.dilate(changed.astype(np.uint8), np.ones((7, 7), np.uint8)) > 0
    magnitude = np.hypot(back[..., 0], back[..., 1])
    moving = near_change & (magnitude > min_flow)
    count = int(moving.sum())
    if count >= min_pixels:
        mean = -back[moving].mean(axis=0)
        velocity = (float(mean[0]), float(mean[1]))
    else:
        velocity = (0.0, 0.0)
    unexplained = 0.0
    if int(changed.sum()) >= min_pixels:
        height, width = before.shape
        xs, ys = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
        predicted = cv2.remap(
            before, xs + back[..., 0], ys + back[..., 1], cv2.INTER_LINEAR, None, cv2.BORDER_REPLICATE
        )
        residual = cv2.absdiff(after, predicted)
        unexplained = float((residual[changed] > change_threshold).mean())
    return PairMotion(velocity=velocity, moving_fraction=count / before.size, unexplained=unexplained)


def velocity_error(observed: np.ndarray, predicted: np.ndarray, min_speed: float) -> float:
    """``|v - v_pred| / (max(|v|, |v_pred|) + min_speed)``: ~0 carried on, ~1 stopped, ~2 reversed.

    >>> round(velocity_error(np.array([6.0, 0.0]), np.array([6.0, 0.0]), 1.0), 3)
    0.0
    >>> round(velocity_error(np.array([0.0, 0.0]), np.array([6.0, 0.0]), 1.0), 3)
    0.857
    >>> round(velocity_error(np.array([-6.0, 0.0]), np.array([6.0, 0.0]), 1.0), 3)
    1.714
    """
    scale = max(float(np.linalg.norm(observed)), float(np.linalg.norm(predicted))) + min_speed
    return float(np.linalg.norm(observed - predicted)) / scale


def extrapolate(history: np.ndarray, steps: int, accelerate: bool = True) -> np.ndarray:
    """Predict the next ``steps`` velocities from ``history`` ``(n, 2)`` (line in time, or the mean).

    >>> extrapolate(np.array([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0]]), 2).round(6).tolist()
    [[4.0, 0.0], [5.0, 0.0]]
    >>> extrapolate(np.array([[1.0, 0.0], [3.0, 0.0]]), 1).tolist()
    [[2.0, 0.0]]
    """
    count = len(history)
    times = np.arange(count, dtype=np.float64)
    future = np.arange(count, count + steps, dtype=np.float64)
    if accelerate and count >= 3:
        slope, intercept = np.polyfit(times, history, 1)
        return intercept[None, :] + future[:, None] * slope[None, :]
    return np.repeat(history.mean(axis=0, keepdims=True), steps, axis=0)


def turn_degrees(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two velocity vectors, degrees (0 when either is zero).

    >>> turn_degrees(np.array([1.0, 0.0]), np.array([-1.0, 0.0]))
    180.0
    """
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 0.0
    cosine = float(np.clip(np.dot(a, b) / (na * nb), -1.0, 1.0))
    return math.degrees(math.acos(cosine))


class MotionContinuity:
    """Optical-flow continuity of the moving region across the switch frame (see the module docstring).

    Args:
        context: Prefix frame pairs whose motion is extrapolated (v2v).
        horizon: Pairs checked from the switch frame on (the switch pair is the first).
        min_flow: Flow (px/frame) below which a pixel is not moving.
        min_speed: Speed (px/frame) added to the error's denominator: slower motion counts as "still".
        change_threshold: Grey-level difference that counts as a change.
        max_side: Frames are downscaled so their longer side is at most this (px).
        preset: DIS optical-flow preset: ``ultrafast``, ``fast`` or ``medium``.
        accelerate: Extrapolate the prefix motion with constant acceleration (else constant velocity).
    """

    name = "motion-continuity"
    neural = False

    def __init__(
        self,
        context: int = 4,
        horizon: int = 4,
        min_flow: float = 0.5,
        min_speed: float = 1.0,
        change_threshold: int = 10,
        max_side: int = 320,
        preset: str = "medium",
        accelerate: bool = True,
    ) -> None:
        if preset not in _PRESETS:
            raise BackendOptionError(
                f"{self.name}: preset must be one of {', '.join(_PRESETS)}, got {preset!r}"
            )
        if context < 1 or horizon < 3:
            raise BackendOptionError(
                f"{self.name}: context must be >= 1 and horizon >= 3, got {context}, {horizon}"
            )
        if max_side < 32:
            raise BackendOptionError(f"{self.name}: max_side must be >= 32 px, got {max_side}")
        self.context = context
        self.horizon = horizon
        self.min_flow = min_flow
        self.min_speed = min_speed
        self.change_threshold = change_threshold
        self.max_side = max_side
        self.preset = preset
        self.accelerate = accelerate
        self.config: dict[str, Any] = dict(
            context=context,
            horizon=horizon,
            min_flow=min_flow,
            min_speed=min_speed,
            change_threshold=change_threshold,
            max_side=max_side,
            preset=preset,
            accelerate=accelerate,
        )

    def score_many(self, clips: Sequence[ClipInput]) -> list[VerifierScore]:
        return [self.score(clip) for clip in clips]

    def score(self, clip: ClipInput) -> VerifierScore:
        # The switch pair plus horizon-1 generated pairs needs horizon generated frames.
        error = check_clip(clip, min_frames=self.horizon, min_prefix=2)
        if error:
            return VerifierScore.failed(self.name, error)
        flow = cv2.DISOpticalFlow.create(_PRESETS[self.preset])
        prefix = [] if clip.mode == "i2v" else list(clip.prefix[-(self.context + 1) : -1])
        sequence = [*prefix, clip.prefix[-1], *clip.frames[: self.horizon]]
        gray = [to_gray(frame, self.max_side) for frame in sequence]
        min_pixels = max(12, round(5e-4 * gray[0].size))
        pairs = [
            pair_motion(
                gray[i],
                gray[i + 1],
                flow,
                min_flow=self.min_flow,
                change_threshold=self.change_threshold,
                min_pixels=min_pixels,
            )
            for i in range(len(gray) - 1)
        ]
        before, after = pairs[: len(prefix)], pairs[len(prefix) :]
        if clip.mode == "i2v":
            return self._judge_i2v(after)
        return self._judge_v2v(before, after)

    def _judge_v2v(self, before: list[PairMotion], after: list[PairMotion]) -> VerifierScore:
        history = np.array([p.velocity for p in before], np.float64)
        observed = np.array([p.velocity for p in after], np.float64)
        predicted = extrapolate(history, len(after), self.accelerate)
        errors = [velocity_error(o, p, self.min_speed) for o, p in zip(observed, predicted, strict=True)]
        baseline = float(np.mean([p.unexplained for p in before]))
        # The switch pair and the next one: where a teleport or a pop-in shows.
        unexplained = max(p.unexplained for p in after[:2])
        excess = max(0.0, unexplained - baseline)
        speed_before = float(np.linalg.norm(predicted[0]))
        mean_after = observed.mean(axis=0)
        speed_after = float(np.linalg.norm(mean_after))
        turn = (
            turn_degrees(predicted[0], mean_after)
            if min(speed_before, speed_after) >= self.min_speed
            else 0.0
        )
        velocity_err = float(np.mean(errors))
        details = {
            "speed_before_px_per_frame": speed_before,
            "speed_after_px_per_frame": speed_after,
            "direction_change_deg": turn,
            "velocity_error": velocity_err,
            "switch_velocity_error": errors[0],
            "unexplained_change": unexplained,
            "unexplained_change_prefix": baseline,
            "unexplained_excess": excess,
        }
        value = -(velocity_err + excess)
        verdict = self._verdict(speed_before, speed_after, turn, excess, velocity_err)
        summary = (
            f"Motion continuity across the switch frame: {verdict} (flow {speed_before:.1f} px/frame before, "
            f"{speed_after:.1f} after, direction change {turn:.0f} deg, "
            f"{100 * unexplained:.0f}% of the change just after the switch is not explained by smooth motion "
            f"vs {100 * baseline:.0f}% before)."
        )
        return VerifierScore(value=value, details=details, summary=summary)

    def _judge_i2v(self, after: list[PairMotion]) -> VerifierScore:
        observed = np.array([p.velocity for p in after], np.float64)
        errors = [
            velocity_error(observed[k], 2 * observed[k - 1] - observed[k - 2], self.min_speed)
            for k in range(2, len(observed))
        ]
        shares = [p.unexplained for p in after]
        baseline = float(np.median(shares))
        excess = max(0.0, max(shares) - baseline)
        speed_first = float(np.linalg.norm(observed[0]))
        speed_later = float(np.linalg.norm(observed[1:].mean(axis=0)))
        turn = (
            turn_degrees(observed[0], observed[1:].mean(axis=0))
            if min(speed_first, speed_later) >= self.min_speed
            else 0.0
        )
        velocity_err = float(np.mean(errors))
        details = {
            "speed_first_px_per_frame": speed_first,
            "speed_later_px_per_frame": speed_later,
            "direction_change_deg": turn,
            "velocity_error": velocity_err,
            "unexplained_change": max(shares),
            "unexplained_change_median": baseline,
            "unexplained_excess": excess,
        }
        if excess > 0.3:
            verdict = "part of the scene jumps or pops in instead of moving"
        elif velocity_err > 0.5:
            verdict = "the motion is jerky (speed or direction changes abruptly from frame to frame)"
        elif max(speed_first, speed_later) < self.min_speed:
            verdict = "nothing moves in the first generated frames"
        else:
            verdict = "the motion that starts is smooth"
        summary = (
            f"Motion smoothness right after the switch frame (image-conditioned, so there is no earlier motion "
            f"to continue): {verdict} (flow {speed_first:.1f} px/frame on the first step, {speed_later:.1f} "
            f"on the next ones, direction change {turn:.0f} deg, frame-to-frame velocity error "
            f"{velocity_err:.2f})."
        )
        return VerifierScore(value=-(velocity_err + excess), details=details, summary=summary)

    def _verdict(self, before: float, after: float, turn: float, excess: float, error: float) -> str:
        # Wording only: the value above does not depend on these cut-offs.
        if excess > 0.3:
            return "the moving region jumps (it appears somewhere else instead of moving there)"
        if before >= self.min_speed and after < max(self.min_speed, 0.3 * before):
            return "the motion stops at the switch frame"
        if turn > 120:
            return "the motion reverses at the switch frame"
        if turn > 45:
            return f"the motion turns by {turn:.0f} degrees at the switch frame"
        if before < self.min_speed and after < self.min_speed:
            return "nothing moves before or after the switch frame"
        if before < self.min_speed:
            return "motion starts at the switch frame although nothing moved before"
        if error > 0.5:
            return "the speed changes abruptly at the switch frame"
        return "the moving region keeps its speed and direction"
