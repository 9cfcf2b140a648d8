"""``feature-path``: the geometry of the clip's path through a per-frame feature space, after GeoPhys.

GeoPhys (Internò et al., "GeoPhys: The Geometry of Physical Plausibility", arXiv 2606.20707) maps each frame
to a pooled embedding of a frozen image encoder and reads five statistics off the resulting trajectory
``z_0 .. z_n``; plausible motion keeps the path smooth and locally linear, violations bend and jolt it:

1. speed variation: spread of the step sizes ``|z_{t+1} - z_t|``;
2. curvature: mean turning angle between consecutive steps;
3. angle consistency: spread of the turning angles;
4. acceleration: size of the second difference ``z_{t+1} - 2 z_t + z_{t-1}``;
5. prediction residual: error of a linear predictor fitted on the recent past.

The paper's code was not released when this was written; its project page defines the five signals in
words (standard deviations of the step and of the angle, mean angle, second difference, residual of a
linear auto-regressive predictor) but not their normalisation or how they are combined. Here every
statistic is made scale-free (the encoder's feature scale cancels): the step spread is a coefficient of
variation, angles are in radians divided by pi, acceleration and residual are divided by the mean step;
the predictor is a least-squares line through the previous ``history`` points extrapolated one step; and
``value = -(sum of the five)`` with equal weights (nothing tuned). All statistics are time-symmetric.

The path covers the last ``context`` prefix frames (the switch frame alone in i2v) and the whole
continuation, so a break at the switch frame bends it. A continuation in which nothing moves traces a path
of zero length and scores 0 (the best): freezing is caught only when the prefix was moving (v2v).

Two backends share this: :class:`ClassicalFeaturePath` (``feature-path``: a heavily blurred colour thumbnail
of each frame, NumPy/OpenCV, CPU, offline) and
:class:`agent.verifiers.encoder_path.EncoderFeaturePath` (``feature-path-encoder``: a transformers image
encoder such as DINOv2 or SigLIP).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from agent.verifiers.base import (
    ClipInput,
    VerifierScore,
    check_clip,
    conditioning,
    failure_message,
    isolate_failures,
)
from physics_iq.registry import BackendOptionError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PathGeometry:
    """The five GeoPhys-style statistics of one trajectory (all scale-free; larger is less regular).

    Attributes:
        speed_variation: Standard deviation of the step sizes over their mean.
        curvature: Mean turning angle between consecutive steps, radians.
        angle_spread: Standard deviation of the turning angles, radians.
        acceleration: Mean size of the second difference over the mean step.
        prediction_residual: Mean error of the linear one-step predictor over the mean step.
        mean_step: Mean step size, in the feature space's own units (for reference only).
        largest_step: Index ``t`` of the largest step ``z_t -> z_{t+1}``.
        largest_step_ratio: That step over the median step.
    """

    speed_variation: float
    curvature: float
    angle_spread: float
    acceleration: float
    prediction_residual: float
    mean_step: float
    largest_step: int
    largest_step_ratio: float

    @property
    def irregularity(self) -> float:
        """The sum the value negates: the five statistics, angles divided by pi."""
        return (
            self.speed_variation
            + self.curvature / math.pi
            + self.angle_spread / math.pi
            + self.acceleration
            + self.prediction_residual
        )


def linear_prediction_residuals(path: np.ndarray, history: int) -> np.ndarray:
    """``|z_t - zhat_t|`` for ``t >= history``, ``zhat_t`` the least-squares line through the previous
    ``history`` points, extrapolated one step.

    >>> line = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    >>> linear_prediction_residuals(line, 2).round(9).tolist()
    [0.0, 0.0]
    >>> bent = np.array([[0.0], [1.0], [2.0], [0.0]])
    >>> linear_prediction_residuals(bent, 3).tolist()
    [3.0]
    """
    # Least squares through times 0..k-1, evaluated at time k: a fixed linear filter of the k points.
    times = np.arange(history, dtype=np.float64)
    centred = times - times.mean()
    weights = 1.0 / history + centred * (history - times.mean()) / float((centred**2).sum())
    count = len(path) - history
    if count <= 0:
        return np.zeros(0)
    windows = np.stack([path[i : i + count] for i in range(history)])  # (history, count, D)
    predicted = np.tensordot(weights, windows, axes=1)
    return np.linalg.norm(path[history:] - predicted, axis=1)


def path_geometry(path: np.ndarray, history: int = 3, tolerance: float = 1e-4) -> PathGeometry:
    """The GeoPhys-style statistics of a ``(T, D)`` trajectory (``T >= history + 1``, ``history >= 2``).

    The statistics are scale-free, so they would blow floating-point jitter up into a wildly irregular
    path: steps shorter than ``tolerance`` times the mean norm of the path's points count as zero (a
    network's output for identical frames can differ in the last bits with the frame's place in a batch).
    Zero-length steps have no direction: angles are taken only between steps that moved. A path that never
    moves scores 0 on everything.

    >>> straight = np.outer(np.arange(6.0), [1.0, 2.0])
    >>> g = path_geometry(straight)
    >>> [round(v, 6) for v in (g.speed_variation, g.curvature, g.acceleration, g.prediction_residual)]
    [0.0, 0.0, 0.0, 0.0]
    >>> zigzag = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 0.0], [1.0, 0.0], [0.0, 0.0]])
    >>> round(path_geometry(zigzag).curvature / math.pi, 6)
    1.0
    """
    path = np.asarray(path, np.float64)
    steps = np.diff(path, axis=0)
    sizes = np.linalg.norm(steps, axis=1)
    moving = sizes > tolerance * float(np.linalg.norm(path, axis=1).mean())
    steps[~moving] = 0.0
    sizes[~moving] = 0.0
    mean_step = float(sizes.mean())
    if mean_step <= 0.0:
        return PathGeometry(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0, 1.0)
    angles = []
    for t in range(len(steps) - 1):
        if moving[t] and moving[t + 1]:
            cosine = float(np.dot(steps[t], steps[t + 1]) / (sizes[t] * sizes[t + 1]))
            angles.append(math.acos(max(-1.0, min(1.0, cosine))))
    accelerations = np.linalg.norm(np.diff(steps, axis=0), axis=1)
    residuals = linear_prediction_residuals(path, history)
    largest = int(np.argmax(sizes))
    median = float(np.median(sizes))
    return PathGeometry(
        speed_variation=float(sizes.std() / mean_step),
        curvature=float(np.mean(angles)) if angles else 0.0,
        angle_spread=float(np.std(angles)) if angles else 0.0,
        acceleration=float(accelerations.mean() / mean_step) if accelerations.size else 0.0,
        prediction_residual=float(residuals.mean() / mean_step) if residuals.size else 0.0,
        mean_step=mean_step,
        largest_step=largest,
        largest_step_ratio=float(sizes[largest] / median) if median > 0 else math.inf,
    )


class FeaturePathVerifier:
    """Shared scoring of the feature-path backends; a backend provides :meth:`embed`.

    Args:
        context: Prefix frames (ending at the switch frame) put at the start of the path (v2v).
        history: Points the linear predictor is fitted on.
    """

    name = "feature-path"
    neural = False
    #: Plain-language name of the feature space, for summaries.
    features = "features"

    def __init__(self, context: int = 8, history: int = 3) -> None:
        if context < 1:
            raise BackendOptionError(f"{self.name}: context must be >= 1, got {context}")
        if history < 2:
            raise BackendOptionError(f"{self.name}: history must be >= 2, got {history}")
        self.context = context
        self.history = history
        self.config: dict[str, Any] = dict(context=context, history=history)

    def embed(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        """``(N, D)`` float embeddings of ``N`` uint8 RGB frames (any mix of clips)."""
        raise NotImplementedError

    def path_frames(self, clip: ClipInput) -> list[np.ndarray]:
        """The frames whose embeddings form the path: prefix tail (switch frame last), then the continuation
        (views, not copies)."""
        return [*conditioning(clip)[-self.context :], *clip.frames]

    def score(self, clip: ClipInput) -> VerifierScore:
        return self.score_many([clip])[0]

    def score_many(self, clips: Sequence[ClipInput]) -> list[VerifierScore]:
        results: list[VerifierScore | None] = []
        pending: list[int] = []
        for index, clip in enumerate(clips):
            # At least one linear prediction made from generated frames alone.
            error = check_clip(clip, min_frames=self.history + 1)
            results.append(VerifierScore.failed(self.name, error) if error else None)
            if not error:
                pending.append(index)
        paths = isolate_failures(self._embed_paths, [self.path_frames(clips[i]) for i in pending])
        for index, path in zip(pending, paths, strict=True):
            if isinstance(path, Exception):
                log.warning("%s: the feature backend failed on attempt %d: %s", self.name, index, path)
                results[index] = VerifierScore.failed(
                    self.name, f"the feature backend failed ({failure_message(path)})"
                )
            else:
                switch = min(self.context, len(conditioning(clips[index]))) - 1
                results[index] = self._judge(path, switch)
        return [result for result in results if result is not None]

    def _embed_paths(self, groups: Sequence[list[np.ndarray]]) -> list[np.ndarray]:
        """Embed the frames of several paths in one go (the backend batches them), split back per path."""
        if not groups:
            return []
        embeddings = self.embed([frame for frames in groups for frame in frames])
        bounds = np.cumsum([len(frames) for frames in groups])[:-1]
        return np.split(embeddings, bounds)

    def _judge(self, path: np.ndarray, switch: int) -> VerifierScore:
        geometry = path_geometry(path, self.history)
        details = asdict(geometry)
        details["largest_step"] = float(geometry.largest_step)
        # Step t goes from path point t to t + 1; the switch frame is point ``switch``.
        after_switch = geometry.largest_step + 1 - switch
        details["largest_step_frame_after_switch"] = float(after_switch)
        details["irregularity"] = geometry.irregularity
        if geometry.mean_step == 0.0:
            verdict = "nothing changes at all, so the path has no length"
        elif geometry.irregularity < 1.0:
            verdict = "smooth and nearly straight"
        else:
            verdict = "irregular"
        where = (
            "the largest change is from the switch frame to the first generated frame"
            if after_switch == 1
            else f"the largest change ends at generated frame {after_switch}"
            if after_switch > 1
            else "the largest change is inside the conditioning frames"
        )
        summary = (
            f"Feature-path geometry (after GeoPhys, {self.features}): the clip's path through feature space "
            f"across the switch frame is {verdict}; step sizes vary by {100 * geometry.speed_variation:.0f}%, "
            f"it turns {math.degrees(geometry.curvature):.0f} deg per step on average "
            f"(spread {math.degrees(geometry.angle_spread):.0f} deg), and {where} "
            f"({geometry.largest_step_ratio:.1f} times the median step)."
        )
        return VerifierScore(value=-geometry.irregularity, details=details, summary=summary)


def classical_features(
    frame: np.ndarray, thumbnail: tuple[int, int] = (16, 9), blur: float = 1 / 16
) -> np.ndarray:
    """Hand-made per-frame embedding: the frame blurred by a Gaussian of ``blur`` times its longer side,
    shrunk to a ``thumbnail`` (width, height) colour image, flattened (values 0..1).

    Heavy blur is what makes this a usable feature space: a moving object then shifts a wide, smooth
    bump, so the thumbnail changes almost linearly with its position and steady motion traces a
    nearly straight path, while sharp thumbnails (or gradient histograms and colour moments per cell)
    make even steady motion turn by 50 degrees or more per step.

    >>> frame = np.zeros((36, 64, 3), np.uint8)
    >>> classical_features(frame).shape
    (432,)
    """
    height, width = frame.shape[:2]
    # Shrink to 4x the thumbnail first (area averaging), then blur by the same fraction of the smaller
    # image: the same low-pass picture as blurring the full frame, at a fraction of the cost.
    small = (min(width, 4 * thumbnail[0]), min(height, 4 * thumbnail[1]))
    image = cv2.resize(frame, small, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    sigma = max(0.5, blur * max(small))
    smooth = cv2.GaussianBlur(image, (0, 0), sigma)
    return np.asarray(cv2.resize(smooth, thumbnail, interpolation=cv2.INTER_AREA), np.float64).ravel()


class ClassicalFeaturePath(FeaturePathVerifier):
    """GeoPhys-style path geometry on a blurred colour thumbnail (CPU, offline, no model to load).

    Args:
        context: Prefix frames (ending at the switch frame) put at the start of the path (v2v).
        history: Points the linear predictor is fitted on.
        thumbnail: ``"WxH"`` size of the thumbnail.
        blur: Gaussian blur before shrinking, as a fraction of the frame's longer side.
    """

    name = "feature-path"
    neural = False
    features = "a heavily blurred colour thumbnail of each frame"

    def __init__(
        self, context: int = 8, history: int = 3, thumbnail: str = "16x9", blur: float = 1 / 16
    ) -> None:
        super().__init__(context=context, history=history)
        try:
            width, height = (int(part) for part in thumbnail.lower().split("x"))
        except ValueError:
            raise BackendOptionError(
                f"{self.name}: thumbnail must be 'WxH' (e.g. '16x9'), got {thumbnail!r}"
            ) from None
        if min(width, height) < 1 or not 0.0 <= blur < 1.0:
            raise BackendOptionError(f"{self.name}: thumbnail sides must be positive and blur in [0, 1)")
        self.thumbnail = (width, height)
        self.blur = blur
        self.config.update(thumbnail=thumbnail, blur=blur)

    def embed(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        return np.stack([classical_features(frame, self.thumbnail, self.blur) for frame in frames])
