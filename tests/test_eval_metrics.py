"""Physics-IQ metrics against deliberately naive references and hand-computed cases."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from physics_iq import metrics as M
from physics_iq.scoring import Comparison, MetricValues, ViewResult, aggregate, physics_iq_score

# ---------------------------------------------------------------------------------------------------------
# Naive references: loops over pixels and frames, written from the official definitions (docs/evaluator.md).


def naive_iou(a, b):
    inter = union = 0
    for x, y in zip(np.ravel(a), np.ravel(b), strict=True):
        inter += bool(x) and bool(y)
        union += bool(x) or bool(y)
    return 1.0 if union == 0 else inter / union


def naive_spatial(a, b):
    def collapse(m):
        return [
            [any(m[t][i][j] for t in range(len(m))) for j in range(len(m[0][0]))] for i in range(len(m[0]))
        ]

    return naive_iou(np.array(collapse(a)), np.array(collapse(b)))


def naive_spatiotemporal(a, b):
    return sum(naive_iou(a[t], b[t]) for t in range(len(a))) / len(a)


def naive_weighted(a, b):
    num = den = 0.0
    for i in range(a.shape[1]):
        for j in range(a.shape[2]):
            wa = sum(bool(a[t, i, j]) for t in range(len(a))) / len(a)
            wb = sum(bool(b[t, i, j]) for t in range(len(b))) / len(b)
            if max(wa, wb) > 0:
                num += min(wa, wb)
                den += max(wa, wb)
    return 1.0 if den == 0 else num / den


def naive_mse(x, y):
    total = []
    for t in range(len(x)):
        s = 0.0
        for v1, v2 in zip(x[t].ravel(), y[t].ravel(), strict=True):
            s += (float(v1) / 255 - float(v2) / 255) ** 2
        total.append(s / x[t].size)
    return sum(total) / len(total)


mask_pairs = st.integers(1, 4).flatmap(
    lambda t: st.tuples(
        arrays(bool, (t, 3, 4)),
        arrays(bool, (t, 3, 4)),
    )
)


@settings(max_examples=60, deadline=None)
@given(mask_pairs)
def test_iou_metrics_match_naive_reference(pair):
    a, b = pair
    assert M.spatial_iou(a, b) == pytest.approx(naive_spatial(a, b))
    assert M.spatiotemporal_iou(a, b) == pytest.approx(naive_spatiotemporal(a, b))
    assert M.weighted_spatial_iou(a, b) == pytest.approx(naive_weighted(a, b))


@settings(max_examples=30, deadline=None)
@given(
    st.integers(1, 3).flatmap(
        lambda t: st.tuples(arrays(np.uint8, (t, 2, 3, 3)), arrays(np.uint8, (t, 2, 3, 3)))
    )
)
def test_mse_matches_naive_reference(pair):
    a, b = pair
    assert M.mse(a, b) == pytest.approx(naive_mse(a, b), rel=1e-6, abs=1e-12)
    assert M.mse_per_frame(a, b, compat=True) == pytest.approx(M.mse_per_frame(a, b), rel=1e-5, abs=1e-9)


def _square(t: int, x: int, size: int = 4, shape=(16, 16)) -> np.ndarray:
    m = np.zeros((t, *shape), bool)
    m[:, 4 : 4 + size, x : x + size] = True
    return m


@pytest.mark.parametrize(
    ("name", "a", "b", "expected"),
    [
        ("identical", _square(3, 2), _square(3, 2), (1.0, 1.0, 1.0)),
        ("disjoint", _square(3, 0), _square(3, 8), (0.0, 0.0, 0.0)),
        ("both-empty", np.zeros((3, 8, 8), bool), np.zeros((3, 8, 8), bool), (1.0, 1.0, 1.0)),
        ("one-empty", _square(3, 2), np.zeros((3, 16, 16), bool), (0.0, 0.0, 0.0)),
        # 4x4 squares shifted by 2 px: overlap 4x2 = 8 of union 24.
        ("half-shift", _square(2, 0), _square(2, 2), (8 / 24, 8 / 24, 8 / 24)),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_hand_cases(name, a, b, expected):
    got = (M.spatial_iou(a, b), M.spatiotemporal_iou(a, b), M.weighted_spatial_iou(a, b))
    assert got == pytest.approx(expected)


def test_moving_square_spatial_vs_spatiotemporal():
    # The same square path but one step late: every frame is disjoint, the collapsed path nearly the same.
    a = np.zeros((4, 8, 32), bool)
    b = np.zeros((4, 8, 32), bool)
    for t in range(4):
        a[t, 2:6, 4 * t : 4 * t + 4] = True
        if t > 0:
            b[t, 2:6, 4 * (t - 1) : 4 * t] = True
    assert M.spatiotemporal_iou(a, b) == 0.0
    assert M.spatial_iou(a, b) == pytest.approx(12 / 16)
    assert M.weighted_spatial_iou(a, b) == pytest.approx(3 / 4)


def test_mismatched_shapes_raise():
    with pytest.raises(ValueError, match="shapes differ"):
        M.spatial_iou(np.zeros((2, 3, 3), bool), np.zeros((2, 3, 4), bool))


def test_motion_masks_follow_the_official_procedure():
    rng = np.random.default_rng(0)
    clip = np.full((6, 40, 40, 3), 100, np.uint8)
    clip += rng.integers(0, 3, clip.shape, dtype=np.uint8)  # sensor noise well below the threshold
    for t in range(6):
        clip[t, 10:20, 5 + 4 * t : 15 + 4 * t] = 220
    masks = M.motion_masks(clip)
    assert masks.shape == (6, 40, 40) and masks.dtype == bool
    assert not masks[0].any(), "the first frame seeds the background and gets an empty mask"
    for t in range(1, 6):
        assert masks[t, 15, 14 + 4 * t], f"leading edge of the square moves at t={t}"
        assert not masks[t, 35, 35], "static background with noise stays still"

    # A change of 10 grey levels is not motion (strict threshold); a large one is.
    still = np.full((3, 32, 32), 50, np.uint8)
    small = still.copy()
    small[1:, 8:24, 8:24] = 50 + 14  # |diff| against the 0.7/0.3 running average = 0.7*14 ~ 9.8 -> <=10
    big = still.copy()
    big[1:, 8:24, 8:24] = 50 + 60
    assert not M.motion_masks(small).any()
    assert M.motion_masks(big)[1, 16, 16]


def test_motion_masks_match_an_independent_step_by_step_implementation():
    rng = np.random.default_rng(1)
    clip = rng.integers(0, 255, (5, 24, 30), dtype=np.uint8)
    clip = np.stack([cv2.GaussianBlur(f, (7, 7), 0) for f in clip])
    ref = np.zeros(clip.shape, bool)
    avg = cv2.GaussianBlur(clip[0], (5, 5), 0).astype(np.float64)
    for t in range(1, len(clip)):
        g = cv2.GaussianBlur(clip[t], (5, 5), 0).astype(np.float64)
        avg = 0.7 * avg + 0.3 * g
        background = np.clip(np.rint(avg), 0, 255)
        moving = (np.abs(g - background) > 10).astype(np.uint8)
        k = np.ones((5, 5), np.uint8)
        moving = cv2.morphologyEx(cv2.morphologyEx(moving, cv2.MORPH_OPEN, k), cv2.MORPH_CLOSE, k)
        ref[t] = moving > 0
    assert np.array_equal(M.motion_masks(clip), ref)


def test_resize_masks_rebinarises_like_official():
    masks = np.zeros((1, 8, 8), bool)
    masks[0, :, :3] = True  # 3/8 of the width: after a 4x bilinear downscale columns become 255 / ~127 / 0
    small = M.resize_masks(masks, (2, 2))
    expected = cv2.resize(masks[0].astype(np.uint8) * 255, (2, 2), interpolation=cv2.INTER_LINEAR) > 127
    assert np.array_equal(small[0], expected)


# ---------------------------------------------------------------------------------------------------------
# Score formula and aggregation against hand-computed tables.


def test_score_formula_hand_values():
    var = MetricValues(spatial_iou=0.5, spatiotemporal_iou=0.25, weighted_spatial_iou=0.4, mse=0.01)
    model = MetricValues(spatial_iou=0.25, spatiotemporal_iou=0.25, weighted_spatial_iou=0.1, mse=0.06)
    # (0.5 + 1.0 + 0.25) / 3 - (0.06 - 0.01) = 0.58333 - 0.05 = 0.53333
    assert physics_iq_score(model, var) == pytest.approx(53.3333333)
    assert physics_iq_score(var, var) == 100.0
    better = MetricValues(1.0, 1.0, 1.0, 0.0)
    assert physics_iq_score(better, var) == 100.0, "clamped at 100"
    assert physics_iq_score(MetricValues(0, 0, 0, 0.9), var) == 0.0, "clamped at 0"


def test_score_zero_variance_rule():
    zero = MetricValues(0.0, 0.0, 0.0, 0.0)
    assert physics_iq_score(zero, zero) == 100.0
    assert not math.isnan(physics_iq_score(MetricValues(0.5, 0.0, 0.0, 0.0), zero))


def _comp(spatial, weighted, st_frames, mse_frames):
    return Comparison(spatial, weighted, tuple(st_frames), tuple(mse_frames))


def _view(scenario, perspective, model, variance, category="Optics", id_=1):
    return ViewResult(scenario, perspective, category, id_, id_ + 100, "", model, model, variance)


def test_aggregation_matches_hand_computed_table():
    # Two scenarios x 2 views, two frames each. Model per-frame IoU / MSE and scalar IoUs:
    #   s1/left:  st [1.0, 0.5] mse [0.02, 0.04] spatial 0.6 weighted 0.3
    #   s1/right: st [0.0, 0.5] mse [0.00, 0.02] spatial 0.2 weighted 0.1
    #   s2/left:  st [0.25, 0.25] mse [0.10, 0.10] spatial 0.4 weighted 0.5
    #   s2/right: st [1.0, 1.0] mse [0.0, 0.0] spatial 1.0 weighted 0.9
    # Model st = mean(mean(s1 frames)=0.5, mean(s2 frames)=0.625) = 0.5625; mse = mean(0.02, 0.05) = 0.035;
    # spatial = mean(left: 0.5, right: 0.6) = 0.55; weighted = mean(left 0.4, right 0.5) = 0.45.
    # Variance (same for all views): st [0.5, 0.5], mse [0.01, 0.01], spatial 0.5, weighted 0.5.
    var = _comp(0.5, 0.5, [0.5, 0.5], [0.01, 0.01])
    views = [
        _view("s1", "perspective-left", _comp(0.6, 0.3, [1.0, 0.5], [0.02, 0.04]), var),
        _view("s1", "perspective-right", _comp(0.2, 0.1, [0.0, 0.5], [0.00, 0.02]), var),
        _view("s2", "perspective-left", _comp(0.4, 0.5, [0.25, 0.25], [0.10, 0.10]), var),
        _view("s2", "perspective-right", _comp(1.0, 0.9, [1.0, 1.0], [0.0, 0.0]), var),
    ]
    agg = aggregate(views)
    assert agg.model.spatiotemporal_iou == pytest.approx(0.5625)
    assert agg.model.mse == pytest.approx(0.035)
    assert agg.model.spatial_iou == pytest.approx(0.55)
    assert agg.model.weighted_spatial_iou == pytest.approx(0.45)
    assert agg.variance == MetricValues(0.5, 0.5, 0.5, 0.01)
    # (0.55/0.5 + 0.5625/0.5 + 0.45/0.5) / 3 - (0.035 - 0.01) = (1.1 + 1.125 + 0.9)/3 - 0.025 = 1.016666 -> 100
    assert agg.physics_iq_score == 100.0
    assert agg.physical_variance == pytest.approx(0.5 + 0.5 + 0.5 - 0.01)
    assert (agg.n_views, agg.n_scenarios) == (4, 2)

    halved = [
        _view(v.scenario, v.perspective, v.model_v1, _comp(1.0, 1.0, [1.0, 1.0], [0.0, 0.0])) for v in views
    ]
    # (0.55 + 0.5625 + 0.45) / 3 - 0.035 = 0.520833 - 0.035 = 0.485833
    assert aggregate(halved).physics_iq_score == pytest.approx(48.583333, abs=1e-6)


def test_aggregation_weights_frames_per_scenario_then_scenarios():
    # Unequal frame counts expose the order of means: s1 has 1 frame, s2 has 3.
    var = _comp(1.0, 1.0, [1.0], [0.0])
    views = [
        _view("s1", "perspective-left", _comp(1, 1, [0.0], [0.0]), var),
        _view("s2", "perspective-left", _comp(1, 1, [1.0, 1.0, 1.0], [0.0, 0.0, 0.0]), var),
    ]
    assert aggregate(views).model.spatiotemporal_iou == pytest.approx(0.5)  # not 3/4


def test_compat_aggregation_rounds_like_official():
    var = _comp(0.123456789, 0.987654321, [0.333333333], [0.0123456789])
    view = _view("s", "perspective-left", _comp(0.1, 0.1, [0.123456789], [0.0555555555]), var)
    agg = aggregate([view], compat=True)
    assert agg.variance == MetricValues(0.12346, 0.3333, 0.9877, 0.0123)
    assert agg.model.spatiotemporal_iou == 0.1235 and agg.model.mse == 0.0556
    assert agg.physics_iq_score == round(agg.physics_iq_score, 2)


def test_aggregate_empty_raises():
    with pytest.raises(ValueError, match="no scored views"):
        aggregate([])


@pytest.mark.parametrize("shape", [(5, 5), (9, 13), (68, 120), (272, 480)], ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("density", [0.0, 0.02, 0.3, 0.7, 1.0], ids=lambda d: f"fill{d}")
def test_open_close_equals_official_open_then_close(shape, density):
    """Three-pass open_close against the official two morphologyEx calls, borders included."""
    rng = np.random.default_rng([shape[0], shape[1], int(density * 100)])
    for _ in range(5):
        binary = np.where(rng.random(shape) < density, 255, 0).astype(np.uint8)
        # Blocks as well as specks, so that both the opening and the closing change something.
        for _ in range(6):
            y, x = rng.integers(0, shape[0]), rng.integers(0, shape[1])
            binary[y : y + rng.integers(1, 12), x : x + rng.integers(1, 12)] = 255 * rng.integers(0, 2)
        official = cv2.morphologyEx(binary, cv2.MORPH_OPEN, M.MORPH_KERNEL)
        official = cv2.morphologyEx(official, cv2.MORPH_CLOSE, M.MORPH_KERNEL)
        assert np.array_equal(M.open_close(binary), official)
