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

**Physics-IQ Verified** (``final_score_view`` of the official ``calculate_iq_score_stable.py``) scores each
sample (one scenario seen from one perspective) on its own and averages the samples: per sample, four terms
from the same metrics,

* spatial: ``s / (vs + 1e-8)``; weighted spatial: ``ws / (vws + 1e-8)``;
* spatiotemporal: ``mean_f(st) / (mean_f(vst) + 1e-8)`` (per-frame values averaged over the sample's frames);
* MSE: ``(mean_f(vmse) + 1e-8) / mean_f(mse)`` (the inverted ratio: lower model MSE is better),

each clipped to [0, 1]; the sample's value is the mean of the four, the score the mean over samples (x 100).
The four sub-scores are the per-term means over samples (x 100). See :func:`verified_terms`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

#: The four raw metric names, as used in the JSON summary.
METRIC_NAMES: tuple[str, ...] = ("spatial_iou", "spatiotemporal_iou", "weighted_spatial_iou", "mse")

#: Score types: the original aggregate score and the Verified per-sample score.
SCORE_TYPES: tuple[str, ...] = ("original", "verified")
#: The Verified sub-score names, in the order of the official ``score_*_view`` keys.
VERIFIED_TERMS: tuple[str, ...] = (
    "score_spatial",
    "score_spatiotemporal",
    "score_weighted_spatial",
    "score_mse",
)
#: Added to every Verified denominator (official ``IQTable.ratio_eps``): 0/0 gives 0, x/0 a huge ratio (clipped).
RATIO_EPS = 1e-8


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


# --------------------------------------------------------------------------------------------------------
# Physics-IQ Verified: per-sample view scores


def _clip01(value: float) -> float:
    # NaN (0/0 cannot happen with the 1e-8 terms, but a NaN metric can) stays NaN, as numpy's clip keeps it.
    return value if math.isnan(value) else min(max(value, 0.0), 1.0)


def verified_terms(model: MetricValues, variance: MetricValues) -> tuple[float, float, float, float]:
    """The four clipped Verified terms of one sample: ``(spatial, spatiotemporal, weighted spatial, mse)``.

    ``model`` and ``variance`` hold the sample's metrics, per-frame ones already averaged over its frames
    (:attr:`Comparison.values`). Each term is clipped to [0, 1]:

    * ``spatial = s / (vs + 1e-8)``, ``weighted = ws / (vws + 1e-8)``, ``spatiotemporal = st / (vst + 1e-8)``;
    * ``mse = (vmse + 1e-8) / mse``: a model MSE of 0 gives +inf, clipped to 1 (numpy's ``0 ** -1``).

    >>> v = MetricValues(0.5, 0.4, 0.2, 0.01)
    >>> [round(t, 6) for t in verified_terms(MetricValues(0.25, 0.8, 0.1, 0.02), v)]
    [0.5, 1.0, 0.5, 0.5]
    >>> verified_terms(MetricValues(0.0, 0.0, 0.0, 0.0), MetricValues(0.0, 0.0, 0.0, 0.0))
    (0.0, 0.0, 0.0, 1.0)
    """
    spatial = model.spatial_iou / (variance.spatial_iou + RATIO_EPS)
    spatiotemporal = model.spatiotemporal_iou / (variance.spatiotemporal_iou + RATIO_EPS)
    weighted = model.weighted_spatial_iou / (variance.weighted_spatial_iou + RATIO_EPS)
    mse = (variance.mse + RATIO_EPS) / model.mse if model.mse != 0 else math.inf
    return (_clip01(spatial), _clip01(spatiotemporal), _clip01(weighted), _clip01(mse))


@dataclass(frozen=True)
class VerifiedSample:
    """One Verified sample (a scenario seen from one perspective) and its four clipped terms.

    Attributes:
        take1_id: The take-1 ID (the generated file's ID).
        scenario: Scenario slug.
        perspective: ``perspective-left|center|right``.
        category: The scenario's category.
        terms: ``{score_spatial, score_spatiotemporal, score_weighted_spatial, score_mse}`` in [0, 1].
    """

    take1_id: int
    scenario: str
    perspective: str
    category: str
    terms: dict[str, float]

    @property
    def value(self) -> float:
        """The sample's value in [0, 1]: the mean of its four clipped terms."""
        return float(sum(self.terms.values()) / len(self.terms))


@dataclass(frozen=True)
class VerifiedAggregate:
    """The Physics-IQ Verified score of a set of samples.

    Attributes:
        physics_iq_score: ``100 * mean`` over samples of the sample value (``final_score_view``).
        terms: Sub-scores ``100 * mean`` over samples of each clipped term (``score_*_view``).
        n_samples: How many samples were averaged.
    """

    physics_iq_score: float
    terms: dict[str, float]
    n_samples: int

    def as_dict(self) -> dict[str, object]:
        """JSON-ready: ``physics_iq_score``, the four ``score_*`` sub-scores (0-100) and ``n_samples``."""
        return {"physics_iq_score": float(self.physics_iq_score), **self.terms, "n_samples": self.n_samples}


def _frame_mean(values: Sequence[float], compat: bool, empty: float) -> float:
    return _mean(_round_frames(values, compat), empty=empty)


def verified_sample(view: ViewResult, *, compat: bool = False) -> VerifiedSample:
    """The Verified terms of one scored view (generated clip against take 1, variance take 1 vs take 2).

    ``compat=True`` rounds every per-frame value to 4 decimals before the frame means, as the official code
    does when it reads the results CSV (``parse_list_of_floats``); the scalar IoUs are not rounded there.
    """
    model = MetricValues(
        spatial_iou=view.model_v1.spatial_iou,
        spatiotemporal_iou=_frame_mean(view.model_v1.spatiotemporal_iou_frames, compat, 1.0),
        weighted_spatial_iou=view.model_v1.weighted_spatial_iou,
        mse=_frame_mean(view.model_v1.mse_frames, compat, 0.0),
    )
    variance = MetricValues(
        spatial_iou=view.variance.spatial_iou,
        spatiotemporal_iou=_frame_mean(view.variance.spatiotemporal_iou_frames, compat, 1.0),
        weighted_spatial_iou=view.variance.weighted_spatial_iou,
        mse=_frame_mean(view.variance.mse_frames, compat, 0.0),
    )
    terms = dict(zip(VERIFIED_TERMS, verified_terms(model, variance), strict=True))
    return VerifiedSample(view.take1_id, view.scenario, view.perspective, view.category, terms)


def verified_aggregate(views: Sequence[ViewResult], *, compat: bool = False) -> VerifiedAggregate:
    """The Physics-IQ Verified score of scored views: the mean over samples (see the module docstring).

    Args:
        views: Scored views, one sample each (a view scored twice counts twice).
        compat: Official per-frame rounding (see :func:`verified_sample`); the score is then rounded to 2
            decimals as the official evaluator prints it (``round(final_score_view, 4) * 100``).

    Raises:
        ValueError: ``views`` is empty.

    >>> c = lambda s, st, ws, m: Comparison(s, ws, (st,), (m,))
    >>> good = ViewResult("a", "perspective-left", "x", 1, 2, "", c(.4, .6, .2, .01), c(0, 0, 0, 1),
    ...                   c(.4, .6, .2, .01))
    >>> half = ViewResult("a", "perspective-center", "x", 2, 3, "", c(.2, .3, .1, .02), c(0, 0, 0, 1),
    ...                   c(.4, .6, .2, .01))
    >>> agg = verified_aggregate([good, half])
    >>> round(agg.physics_iq_score, 4), round(agg.terms["score_mse"], 4)
    (75.0, 75.0)
    """
    if not views:
        raise ValueError("nothing to aggregate: no scored views")
    samples = [verified_sample(v, compat=compat) for v in views]
    score = 100.0 * float(np.mean([s.value for s in samples]))
    terms = {name: 100.0 * float(np.mean([s.terms[name] for s in samples])) for name in VERIFIED_TERMS}
    return VerifiedAggregate(
        physics_iq_score=round(score, 2) if compat else score, terms=terms, n_samples=len(samples)
    )


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (``ddof=1``) of one score over runs, as the official
    ``aggregate_runs_from_csvs.py`` reports them (pandas ``std``); one value has no std (``None``).

    >>> mean_std([40.0, 42.0, 44.0, 46.0])
    (43.0, 2.581988897471611)
    >>> mean_std([40.0])
    (40.0, None)

    Raises:
        ValueError: no value.
    """
    arr = np.asarray(list(values), dtype=np.float64)
    if arr.size == 0:
        raise ValueError("mean_std needs at least one value")
    std = float(arr.std(ddof=1)) if arr.size > 1 else None
    return float(arr.mean()), std
