"""The Physics-IQ Verified per-sample score: hand-computed values (clipping, the 1e-8 terms, the inverted MSE
ratio, compat rounding), agreement with a naive transcription of the official formula on the evaluator's
results.csv for the tests' dataset, and ``physrefine score`` over several runs (mean and sample std)."""

from __future__ import annotations

import csv
import json
import re
import statistics
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from agent.cli import app
from physics_iq.evaluate import Evaluator
from physics_iq.layout import PERSPECTIVES
from physics_iq.scoring import (
    Comparison,
    MetricValues,
    ViewResult,
    mean_std,
    verified_aggregate,
    verified_sample,
    verified_terms,
)
from tests.datasets import parity_models

EPS = 1e-8


# -- hand-computed values ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("model", "variance", "expected"),
    [
        # plain ratios below 1; MSE inverted: (0.01 + 1e-8) / 0.02
        (
            (0.3, 0.2, 0.1, 0.02),
            (0.6, 0.4, 0.4, 0.01),
            (0.3 / (0.6 + EPS), 0.2 / (0.4 + EPS), 0.1 / (0.4 + EPS), (0.01 + EPS) / 0.02),
        ),
        # better than physics: every term clipped to 1
        ((0.9, 0.9, 0.9, 0.001), (0.6, 0.4, 0.4, 0.01), (1.0, 1.0, 1.0, 1.0)),
        # 0/0 with the 1e-8 terms: 0 (the original score's own rule would say 1); x/0 clipped to 1
        (
            (0.0, 0.5, 0.0, 0.01),
            (0.0, 0.0, 0.0, 0.01),
            (0.0, 1.0, 0.0, 1.0),
        ),
        # a model MSE of 0: the inverted ratio is infinite, clipped to 1; a variance MSE of 0: 1e-8 / mse
        (
            (0.3, 0.2, 0.1, 0.0),
            (0.6, 0.4, 0.4, 0.0),
            (0.3 / (0.6 + EPS), 0.5 / (1 + 2.5e-8), 0.25 / (1 + 2.5e-8), 1.0),
        ),
        (
            (0.3, 0.2, 0.1, 0.04),
            (0.6, 0.4, 0.4, 0.0),
            (0.3 / (0.6 + EPS), 0.2 / (0.4 + EPS), 0.1 / (0.4 + EPS), EPS / 0.04),
        ),
    ],
    ids=["ratios", "clipped-above", "zero-variance", "zero-model-mse", "zero-variance-mse"],
)
def test_verified_terms_hand_computed(model, variance, expected):
    got = verified_terms(MetricValues(*model), MetricValues(*variance))
    # order: spatial, spatiotemporal, weighted spatial, mse (MetricValues: spatial, spatiotemporal, weighted, mse)
    assert got == pytest.approx(expected, abs=1e-15, rel=1e-12)


def _view(take1_id, st_frames, mse_frames, vst_frames, vmse_frames, s=0.4, vs=0.8, ws=0.2, vws=0.4):
    model = Comparison(s, ws, tuple(st_frames), tuple(mse_frames))
    variance = Comparison(vs, vws, tuple(vst_frames), tuple(vmse_frames))
    return ViewResult(
        "scene", PERSPECTIVES[take1_id % 3], "Optics", take1_id, take1_id + 3, "", model, model, variance
    )


def test_sample_and_score_hand_computed_with_compat_rounding():
    # Frames whose 4-decimal rounding matters: st frames 0.12344 and 0.12346 -> 0.1234 and 0.1235.
    view = _view(1, [0.12344, 0.12346], [0.01, 0.03], [0.24690, 0.24690], [0.01, 0.01])
    fast = verified_sample(view)
    st = 0.12345 / (0.2469 + EPS)
    assert fast.terms["score_spatiotemporal"] == pytest.approx(st, rel=1e-12)
    compat = verified_sample(view, compat=True)
    assert compat.terms["score_spatiotemporal"] == pytest.approx(
        ((0.1234 + 0.1235) / 2) / (0.2469 + EPS), rel=1e-12
    )
    spatial, weighted, mse = 0.4 / (0.8 + EPS), 0.2 / (0.4 + EPS), (0.01 + EPS) / 0.02
    assert fast.terms["score_spatial"] == pytest.approx(spatial, rel=1e-12)
    assert fast.terms["score_weighted_spatial"] == pytest.approx(weighted, rel=1e-12)
    assert fast.terms["score_mse"] == pytest.approx(mse, rel=1e-12)
    assert fast.value == pytest.approx((spatial + st + weighted + mse) / 4, rel=1e-12)
    # A perfect second sample: the score is the mean of the two sample values (x 100), sub-scores likewise.
    # A second sample matching physics: its terms are 1 - 1e-8 / (v + 1e-8) (the 1e-8 terms), or clipped to 1.
    perfect = _view(2, [0.5, 0.5], [0.001, 0.001], [0.25, 0.25], [0.01, 0.01], s=0.8, ws=0.4)
    second = (0.8 / (0.8 + EPS) + 1.0 + 0.4 / (0.4 + EPS) + 1.0) / 4
    assert verified_sample(perfect).value == pytest.approx(second, rel=1e-15)
    agg = verified_aggregate([view, perfect])
    assert agg.physics_iq_score == pytest.approx(100 * (fast.value + second) / 2, rel=1e-12)
    assert agg.terms["score_mse"] == pytest.approx(100 * (mse + 1.0) / 2, rel=1e-12)
    assert agg.n_samples == 2
    assert verified_aggregate([view, perfect], compat=True).physics_iq_score == round(
        100 * (verified_sample(view, compat=True).value + second) / 2, 2
    )


def test_mean_and_sample_std_over_runs_match_pandas_defaults():
    values = [41.2, 43.9, 40.1, 42.6]
    mean, std = mean_std(values)
    assert mean == pytest.approx(statistics.mean(values)) and std == pytest.approx(statistics.stdev(values))


# -- agreement with the official formula ---------------------------------------------------------------------
def _parse_list(value: str, round_frames: bool) -> list[float]:
    """The official ``parse_list_of_floats`` (calculate_iq_score.py): every number of "[...]", rounded to 4."""
    assert value.startswith("[") and value.endswith("]")
    found = [float(x) for x in re.findall(r"[-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?", value)]
    return [round(x, 4) for x in found] if round_frames else found


def official_verified(results_csv: Path, round_frames: bool = True) -> dict[str, float]:
    """Naive transcription of the official ``IQTable.get_output_dict`` Verified keys
    (calculate_iq_score_stable.py): per scenario and view, ratio = metric / (variance + 1e-8) with per-frame
    columns averaged per view, MSE ratio inverted (``ratio ** -1``), every term clipped to [0, 1], the row's
    mean of the four (``final_arithmetic``); ``final_score_view`` and ``score_*_view`` are means over rows."""
    with results_csv.open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    samples = []
    for row in rows:
        for view in PERSPECTIVES:
            st = np.mean(_parse_list(row[f"spatiotemporal_iou_v1_{view}"], round_frames))
            vst = np.mean(_parse_list(row[f"variance_spatiotemporal_iou_{view}"], round_frames))
            mse = np.mean(_parse_list(row[f"v1_mse_{view}"], round_frames))
            vmse = np.mean(_parse_list(row[f"variance_mse_{view}"], round_frames))
            with np.errstate(divide="ignore"):
                terms = {
                    "spatial": float(row[f"spatial_iou_v1_{view}"])
                    / (float(row[f"variance_spatial_{view}"]) + EPS),
                    "weighted_spatial": float(row[f"weighted_spatial_iou_v1_{view}"])
                    / (float(row[f"variance_weighted_spatial_{view}"]) + EPS),
                    "spatiotemporal": st / (vst + EPS),
                    "mse": np.float64(mse / (vmse + EPS)) ** -1,
                }
            samples.append({k: float(np.clip(v, 0.0, 1.0)) for k, v in terms.items()})
    out = {f"score_{k}_view": float(np.mean([s[k] for s in samples])) for k in samples[0]}
    out["final_score_view"] = float(np.mean([np.mean(list(s.values())) for s in samples]))
    return out


@pytest.fixture(scope="module")
def scored_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("verified-parity")
    layout, gens = parity_models(root)
    return root, layout, gens


@pytest.mark.parametrize("mode", ["compat", "fast"])
@pytest.mark.parametrize("name", ["take2", "switch", "late"])
def test_verified_score_agrees_with_the_official_formula(scored_models, mode, name):
    root, layout, gens = scored_models
    results = Evaluator(layout, 8, mode=mode, cache_dir=root / "cache").evaluate_folder(gens[name])
    csv_path, _ = results.write(root / f"out-{name}-{mode}")
    # compat: the official reading of the CSV (lists rounded to 4 decimals); fast: our unrounded values.
    official = official_verified(csv_path, round_frames=mode == "compat")
    assert results.verified is not None
    expected = 100 * official["final_score_view"]
    if mode == "compat":
        assert results.verified.physics_iq_score == round(expected, 2)
    else:
        assert results.verified.physics_iq_score == pytest.approx(expected, abs=1e-9)
    for ours, theirs in (
        ("score_spatial", "score_spatial_view"),
        ("score_spatiotemporal", "score_spatiotemporal_view"),
        ("score_weighted_spatial", "score_weighted_spatial_view"),
        ("score_mse", "score_mse_view"),
    ):
        assert results.verified.terms[ours] == pytest.approx(100 * official[theirs], abs=1e-9), ours
    # The per-sample columns of results.csv and samples.csv hold the same terms.
    with (csv_path.parent / "samples.csv").open(newline="") as handle:
        samples = list(csv.DictReader(handle))
    assert len(samples) == len(layout.take1_rows())
    mean = 100 * np.mean([float(s["sample_value"]) for s in samples])
    assert mean == pytest.approx(official["final_score_view"] * 100, abs=1e-9)
    if name == "take2":  # a second real take is as good as physics on every term
        assert results.verified.physics_iq_score == pytest.approx(100.0)


def test_score_cli_several_runs_mean_and_sample_std(scored_models, tmp_path):
    root, layout, gens = scored_models
    out = tmp_path / "scores"
    done = CliRunner().invoke(
        app,
        [
            "score",
            str(gens["switch"]),
            str(gens["late"]),
            "-d",
            str(layout.root),
            "--mode",
            "compat",
            "--cache-dir",
            str(root / "cache"),
            "--out",
            str(out),
            "--json",
        ],
    )
    assert done.exit_code == 0, done.output
    result = json.loads(done.stdout)
    assert set(result["runs"]) == {"switch", "late"}
    verified = [result["runs"][n]["verified"]["physics_iq_score"] for n in ("switch", "late")]
    stat = result["aggregate"]["verified"]["physics_iq_score"]
    assert stat["mean"] == pytest.approx(np.mean(verified), abs=1e-4)
    assert stat["std"] == pytest.approx(np.std(verified, ddof=1), abs=1e-4)
    assert result["aggregate"]["mode"] == "compat"
    assert json.loads((out / "aggregate.json").read_text()) == result["aggregate"]
    for name in ("switch", "late"):
        assert (out / name / "results.csv").is_file() and (out / name / "samples.csv").is_file()


@pytest.mark.parametrize(
    ("score_type", "present", "absent"),
    [("original", "physics_iq_score", "verified"), ("verified", "verified", "physics_iq_score")],
)
def test_score_type_selects_what_summary_holds(scored_models, tmp_path, score_type, present, absent):
    root, layout, gens = scored_models
    done = CliRunner().invoke(
        app,
        [
            "score",
            str(gens["late"]),
            "-d",
            str(layout.root),
            "--score-type",
            score_type,
            "--cache-dir",
            str(root / "cache"),
            "--out",
            str(tmp_path / "o"),
            "--json",
        ],
    )
    assert done.exit_code == 0, done.output
    summary = json.loads(done.stdout)
    assert present in summary and absent not in summary and summary["score_types"] == [score_type]
    assert summary["mode"] == "fast" and "fast mode" in summary["mode_note"]
    assert ("Verified score" in done.stderr) == (score_type == "verified")
