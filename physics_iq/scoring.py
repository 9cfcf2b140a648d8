"""The Physics-IQ score and its aggregation over views, scenarios and categories.

The formula and the order in which means are taken follow the official toolkit
(google-deepmind/physics-IQ-benchmark, ``calculate_iq_score.py``):

* model metrics (each generated view against its take-1 video): the spatiotemporal IoU and the MSE are
  averaged per scenario over the frames of its three views, then over scenarios; the spatial and weighted
  spatial IoU are averaged per view over scenarios, then over the views;
* physical variance (take-1 against take-2): the per-frame metrics are averaged per view over all frames of
  all scenarios, then over views; the scalar ones per view over scenarios, then over views;
* ``score = 100 * clamp(mean_k(model_k / variance_k) - (model_mse - variance_mse), 0, 1)`` over the three
  IoU metrics ``k``.

``compat=True`` also reproduces the official rounding: every per-frame value rounded to 4 decimals, the
variances rounded to 4 (spatial IoU: 5) decimals, the final score to 2.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

#: The four raw metric names, as used in the JSON summary.
METRIC_NAMES: tuple[str, ...] = ("spatial_iou", "spatiotemporal_iou", "weighted_spatial_iou", "mse")


@dataclass(frozen=True)
class MetricValues:
    """The four Physics-IQ metrics of one comparison (or an aggregate of many).

    Attributes:
        spatial_iou: IoU of the time-collapsed masks (higher is better).
        spatiotemporal_iou: Mean per-frame IoU (higher is better).
        weighted_spatial_iou: IoU of the time-averaged masks (higher is better).
        mse: Mean squared pixel error in [0, 1] units (lower is better).
    """

    spatial_iou: float
    spatiotemporal_iou: float
    weighted_spatial_iou: float
    mse: float

    def as_dict(self) -> dict[str, float]:
        """``{metric name: value}`` with plain Python floats."""
        return {name: float(getattr(self, name)) for name in METRIC_NAMES}


@dataclass(frozen=True)
class Comparison:
    """Everything the aggregation needs from comparing one clip with another (per-frame values kept).

    Attributes:
        spatial_iou: See :func:`physics_iq.metrics.spatial_iou`.
        weighted_spatial_iou: See :func:`physics_iq.metrics.weighted_spatial_iou`.
        spatiotemporal_iou_frames: Per-frame IoU, one value per frame.
        mse_frames: Per-frame MSE, one value per frame.
    """

    spatial_iou: float
    weighted_spatial_iou: float
    spatiotemporal_iou_frames: tuple[float, ...]
    mse_frames: tuple[float, ...]

    @property
    def values(self) -> MetricValues:
        """The frame-averaged :class:`MetricValues`."""
        return MetricValues(
            spatial_iou=self.spatial_iou,
            spatiotemporal_iou=_mean(self.spatiotemporal_iou_frames, empty=1.0),
            weighted_spatial_iou=self.weighted_spatial_iou,
            mse=_mean(self.mse_frames, empty=0.0),
        )


@dataclass(frozen=True)
class ViewResult:
    """One scored view: a generated clip against take-1 and take-2, and the take-1/take-2 variance.

    Attributes:
        scenario: Scenario slug.
        perspective: ``perspective-left|center|right``.
        category: The scenario's category.
        take1_id: ID of the take-1 row (the ID of the generated file).
        take2_id: ID of the take-2 twin.
        generated: The generated file's name (``""`` when scored from an array).
        model_v1: Generated vs take-1 (what the score uses).
        model_v2: Generated vs take-2 (reported in the official CSV only).
        variance: Take-1 vs take-2, the physical variance.
    """

    scenario: str
    perspective: str
    category: str
    take1_id: int
    take2_id: int
    generated: str
    model_v1: Comparison
    model_v2: Comparison
    variance: Comparison

    @property
    def score(self) -> float:
        """This view's own Physics-IQ score (model against its own physical variance)."""
        return physics_iq_score(self.model_v1.values, self.variance.values)


@dataclass(frozen=True)
class Aggregate:
    """Aggregated metrics and score of a set of views.

    Attributes:
        physics_iq_score: The score in [0, 100].
        model: Aggregated model metrics (against take-1).
        variance: Aggregated physical variance (take-1 against take-2).
        physical_variance: The official single-number summary ``vst + vs + vws - vmse``.
        n_views: How many views were aggregated.
        n_scenarios: How many scenarios they belong to.
    """

    physics_iq_score: float
    model: MetricValues
    variance: MetricValues
    physical_variance: float
    n_views: int
    n_scenarios: int

    def as_dict(self) -> dict[str, object]:
        """JSON-ready dict with the score, the four model metrics under their names and the variance."""
        out: dict[str, object] = {"physics_iq_score": float(self.physics_iq_score)}
        out.update(self.model.as_dict())
        out["physical_variance"] = float(self.physical_variance)
        out["physical_variance_metrics"] = self.variance.as_dict()
        out["n_views"] = self.n_views
        out["n_scenarios"] = self.n_scenarios
        return out


def _mean(values: Iterable[float], empty: float) -> float:
    arr = np.asarray(list(values), dtype=np.float64)
    return float(arr.mean()) if arr.size else empty


def _ratio(model: float, variance: float) -> float:
    # Official rule is a plain division. Our zero-division rule: 0/0 (neither take-2 nor the model overlaps
    # take-1) is "as good as physics", 1.0; x/0 is unbounded and is clamped by the final [0, 100] clamp.
    if variance > 0:
        return model / variance
    return 1.0 if model == 0 else math.inf


def physics_iq_score(model: MetricValues, variance: MetricValues) -> float:
    """The official Physics-IQ score formula, clamped to [0, 100].

    ``100 * clamp((s/vs + st/vst + ws/vws) / 3 - (mse - vmse), 0, 1)`` where ``s, st, ws`` are the spatial,
    spatiotemporal and weighted spatial IoU of the model, ``v*`` the physical variance. A variance of 0 with a
    model value of 0 gives a ratio of 1 (the official code would produce NaN).

    >>> v = MetricValues(0.5, 0.8, 0.4, 0.01)
    >>> physics_iq_score(v, v)
    100.0
    >>> round(physics_iq_score(MetricValues(0.25, 0.4, 0.2, 0.03), v), 6)
    48.0
    >>> physics_iq_score(MetricValues(0.0, 0.0, 0.0, 0.5), v)
    0.0
    """
    ratios = [
        _ratio(model.spatial_iou, variance.spatial_iou),
        _ratio(model.spatiotemporal_iou, variance.spatiotemporal_iou),
        _ratio(model.weighted_spatial_iou, variance.weighted_spatial_iou),
    ]
    raw = sum(ratios) / 3 - (model.mse - variance.mse)
    return float(100.0 * min(max(raw, 0.0), 1.0))


def _round_frames(values: Sequence[float], compat: bool) -> list[float]:
    # Official parse_list_of_floats rounds each per-frame value to 4 decimals before any mean.
    return [round(float(v), 4) for v in values] if compat else [float(v) for v in values]


def aggregate(views: Sequence[ViewResult], *, compat: bool = False) -> Aggregate:
    """Aggregate view results the way the official toolkit does (see the module docstring).

    Args:
        views: Scored views (any subset: all, one category, one scenario).
        compat: Apply the official intermediate rounding.

    Raises:
        ValueError: ``views`` is empty.
    """
    if not views:
        raise ValueError("nothing to aggregate: no scored views")
    scenarios: dict[str, list[ViewResult]] = {}
    perspectives: dict[str, list[ViewResult]] = {}
    for view in views:
        scenarios.setdefault(view.scenario, []).append(view)
        perspectives.setdefault(view.perspective, []).append(view)

    def per_scenario_frames(attr: str) -> float:
        # Mean per scenario over the concatenated frames of its views, then mean over scenarios.
        return _mean(
            (
                _mean((f for v in group for f in _round_frames(getattr(v.model_v1, attr), compat)), empty=0.0)
                for group in scenarios.values()
            ),
            empty=0.0,
        )

    def per_view_scalar(get: str, attr: str) -> float:
        # Mean per perspective over scenarios, then over perspectives (official df[cols].mean().mean()).
        return _mean(
            (
                _mean((getattr(getattr(v, get), attr) for v in group), empty=0.0)
                for group in perspectives.values()
            ),
            empty=0.0,
        )

    def variance_frames(attr: str) -> float:
        # Per perspective over all frames of all scenarios (official .explode().mean()), then over perspectives.
        return _mean(
            (
                _mean((f for v in group for f in _round_frames(getattr(v.variance, attr), compat)), empty=0.0)
                for group in perspectives.values()
            ),
            empty=0.0,
        )

    model = MetricValues(
        spatial_iou=per_view_scalar("model_v1", "spatial_iou"),
        spatiotemporal_iou=per_scenario_frames("spatiotemporal_iou_frames"),
        weighted_spatial_iou=per_view_scalar("model_v1", "weighted_spatial_iou"),
        mse=per_scenario_frames("mse_frames"),
    )
    variance = MetricValues(
        spatial_iou=per_view_scalar("variance", "spatial_iou"),
        spatiotemporal_iou=variance_frames("spatiotemporal_iou_frames"),
        weighted_spatial_iou=per_view_scalar("variance", "weighted_spatial_iou"),
        mse=variance_frames("mse_frames"),
    )
    if compat:
        variance = MetricValues(
            spatial_iou=round(variance.spatial_iou, 5),
            spatiotemporal_iou=round(variance.spatiotemporal_iou, 4),
            weighted_spatial_iou=round(variance.weighted_spatial_iou, 4),
            mse=round(variance.mse, 4),
        )
    physical = (
        variance.spatiotemporal_iou + variance.spatial_iou + variance.weighted_spatial_iou - variance.mse
    )
    score = physics_iq_score(model, variance)
    if compat:
        physical = round(physical, 4)
        score = round(score, 2)
    else:
        # Model and variance means are taken in different orders (official); identical inputs can then differ
        # in the last bit. 1e-9 points is far below anything meaningful.
        score = round(score, 9)
    return Aggregate(
        physics_iq_score=score,
        model=model,
        variance=variance,
        physical_variance=float(physical),
        n_views=len(views),
        n_scenarios=len(scenarios),
    )
