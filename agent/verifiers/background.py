"""``background-stability``: what never moved in the prefix should not move, drift or flicker afterwards.

v2v mode: the *static region* is the set of pixels whose grey level stayed within ``still_threshold`` of
the previous frame throughout the prefix, shrunk by a margin (so the edges of moving things are out). Its
noise level is the mean frame-to-frame change inside it during the prefix (codec and sensor noise).

For every generated frame two changes are measured inside the static region, each a trimmed mean (the
largest ``trim`` share of pixels is left out, so that an object legitimately entering the region does
not count): *drift*, against the switch frame, and *flicker*, against the previous frame. Each is reduced
by the prefix noise level (a difference of two noisy frames shows that much change with nothing moving).
Camera shake moves every edge of the static region and shows in both; the camera shift between the switch
frame and each generated frame (the median optical flow of the static region, robust to the objects that
cross it) is reported alongside, in px.

i2v mode: a single conditioning frame shows nothing moving, so the static region is the whole frame,
trimmed harder (``trim_i2v``: moving objects may cover up to that share of it), and the noise level is
``noise_floor``.

``value = -(excess drift + excess flicker)``, in grey levels (0..255); 0 is a perfectly steady background.

Limits: a legitimate global lighting change (a lamp switched on) reads as drift.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from agent.verifiers.base import ClipInput, VerifierScore, check_clip
from agent.verifiers.continuity import to_gray
from physics_iq.registry import BackendOptionError


def trimmed_mean(values: np.ndarray, trim: float) -> float:
    """Mean of ``values`` without its largest ``trim`` share.

    >>> trimmed_mean(np.array([1.0, 1.0, 1.0, 100.0]), 0.25)
    1.0
    """
    flat = np.asarray(values, np.float64).ravel()
    if flat.size == 0:
        return 0.0
    keep = max(1, round(flat.size * (1.0 - trim)))
    if keep >= flat.size:
        return float(flat.mean())
    return float(np.partition(flat, keep - 1)[:keep].mean())


def static_region(prefix: Sequence[np.ndarray], still_threshold: float, margin: int) -> np.ndarray:
    """Pixels that never changed by more than ``still_threshold`` between consecutive prefix frames.

    Args:
        prefix: Grey float32 frames (at least 2).
        still_threshold: Largest frame-to-frame change (grey levels) of a still pixel.
        margin: The region is eroded by this many px, keeping the borders of moving things out.
    """
    moved = np.zeros(prefix[0].shape, bool)
    for before, after in itertools.pairwise(prefix):
        moved |= np.abs(after - before) > still_threshold
    still = (~moved).astype(np.uint8)
    if margin > 0:
        kernel = np.ones((2 * margin + 1, 2 * margin + 1), np.uint8)
        return np.asarray(cv2.erode(still, kernel, borderType=cv2.BORDER_REPLICATE)).astype(bool)
    return still.astype(bool)


class BackgroundStability:
    """Drift, flicker and shake of the part of the scene that stayed still (see the module docstring).

    Args:
        still_threshold: Largest frame-to-frame change (grey levels) of a static prefix pixel; 12 is well
            above the suite's codec noise and below the contrast of any moving edge.
        margin: Erosion of the static region (px).
        trim: Share of the largest changes left out of each trimmed mean (v2v).
        trim_i2v: The same in i2v mode, where the region is the whole frame.
        noise_floor: Smallest noise level (grey levels) subtracted from the changes.
        min_static: Smallest static share of the frame the verifier needs (else it cannot judge).
        max_side: Frames are downscaled so their longer side is at most this (px).
    """

    name = "background-stability"
    neural = False

    def __init__(
        self,
        still_threshold: float = 12.0,
        margin: int = 3,
        trim: float = 0.1,
        trim_i2v: float = 0.25,
        noise_floor: float = 1.0,
        min_static: float = 0.05,
        max_side: int = 320,
    ) -> None:
        for label, share in (("trim", trim), ("trim_i2v", trim_i2v), ("min_static", min_static)):
            if not 0.0 <= share < 1.0:
                raise BackendOptionError(f"{self.name}: {label} must be in [0, 1), got {share}")
        if max_side < 32:
            raise BackendOptionError(f"{self.name}: max_side must be >= 32 px, got {max_side}")
        self.still_threshold = still_threshold
        self.margin = margin
        self.trim = trim
        self.trim_i2v = trim_i2v
        self.noise_floor = noise_floor
        self.min_static = min_static
        self.max_side = max_side
        self.config: dict[str, Any] = dict(
            still_threshold=still_threshold,
            margin=margin,
            trim=trim,
            trim_i2v=trim_i2v,
            noise_floor=noise_floor,
            min_static=min_static,
            max_side=max_side,
        )

    def score_many(self, clips: Sequence[ClipInput]) -> list[VerifierScore]:
        return [self.score(clip) for clip in clips]

    def score(self, clip: ClipInput) -> VerifierScore:
        error = check_clip(clip, min_frames=2, min_prefix=2)
        if error:
            return VerifierScore.failed(self.name, error)
        if clip.mode == "i2v":
            switch = to_gray(clip.prefix[-1], self.max_side).astype(np.float32)
            region = np.ones(switch.shape, bool)
            noise = self.noise_floor
            trim = self.trim_i2v
        else:
            prefix = [to_gray(frame, self.max_side).astype(np.float32) for frame in clip.prefix]
            switch = prefix[-1]
            region = static_region(prefix, self.still_threshold, self.margin)
            share = float(region.mean())
            if share < self.min_static:
                return VerifierScore.failed(
                    self.name,
                    f"no static background: only {100 * share:.1f}% of the frame stayed still during the "
                    f"prefix (needs {100 * self.min_static:.0f}%)",
                )
            changes = [float(np.abs(b - a)[region].mean()) for a, b in itertools.pairwise(prefix)]
            noise = max(self.noise_floor, float(np.mean(changes)))
            trim = self.trim
        flow = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST)
        switch_u8 = switch.astype(np.uint8)
        drifts, flickers, shifts = [], [], []
        previous = switch
        for frame in clip.frames:
            gray = to_gray(frame, self.max_side).astype(np.float32)
            drifts.append(trimmed_mean(np.abs(gray - switch)[region], trim))
            flickers.append(trimmed_mean(np.abs(gray - previous)[region], trim))
            motion = np.asarray(
                flow.calc(switch_u8, gray.astype(np.uint8), np.zeros((*gray.shape, 2), np.float32))
            )[region]
            shifts.append(float(np.hypot(*np.median(motion, axis=0))))
            previous = gray
        drift = float(np.mean(drifts))
        flicker = float(np.mean(flickers))
        excess_drift = max(0.0, drift - noise)
        excess_flicker = max(0.0, flicker - noise)
        shake = float(np.mean(shifts))
        details = {
            "static_fraction": float(region.mean()),
            "noise_grey_levels": noise,
            "drift_grey_levels": drift,
            "flicker_grey_levels": flicker,
            "excess_drift": excess_drift,
            "excess_flicker": excess_flicker,
            "camera_shift_px": shake,
        }
        where = (
            "the whole frame (image-conditioned: nothing is known to move)"
            if clip.mode == "i2v"
            else f"the {100 * region.mean():.0f}% of the frame that stayed still in the conditioning frames"
        )
        summary = (
            f"Background stability of {where}: {self._verdict(excess_drift, excess_flicker, shake)} "
            f"(mean change {drift:.1f} grey levels from the switch frame and {flicker:.1f} frame to frame, "
            f"against a noise level of {noise:.1f}; camera shift {shake:.1f} px)."
        )
        return VerifierScore(value=-(excess_drift + excess_flicker), details=details, summary=summary)

    @staticmethod
    def _verdict(drift: float, flicker: float, shake: float) -> str:
        # Wording only: the value does not depend on these cut-offs.
        if shake >= 1.0:
            return f"the camera shakes (the picture shifts by {shake:.1f} px on average)"
        if flicker > 2.0:
            return "the background flickers from frame to frame"
        if drift > 2.0:
            return "the background drifts away from how it looked at the switch frame"
        return "the background stays still"
