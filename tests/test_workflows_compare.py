"""physrefine compare: the vectorised official aggregation, the paired bootstrap, intersections and outputs."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.workflows.compare import (
    CompareError,
    ScoreTable,
    compare_runs,
    paired_bootstrap,
    weighted_scores,
    write_comparison,
)
from agent.workflows.rundata import RunDataError, load_run
from physics_iq.scoring import Comparison, ViewResult, aggregate
from tests.workflow_runs import write_run

PERSPECTIVES = ("perspective-left", "perspective-center", "perspective-right")


def _view(rng: np.random.Generator, scenario: str, perspective: str) -> ViewResult:
    def comp() -> Comparison:
        s, st, ws = rng.uniform(0.05, 0.9, 3)
        return Comparison(float(s), float(ws), (float(st),), (float(rng.uniform(0, 0.01)),))

    variance = comp()
    # Model below the variance (score well inside (0, 100), so shifts are not clamped away).
    scale = float(rng.uniform(0.2, 0.6))
    model = Comparison(
        variance.spatial_iou * scale,
        variance.weighted_spatial_iou * scale,
        (variance.spatiotemporal_iou_frames[0] * scale,),
        (float(rng.uniform(0, 0.01)),),
    )
    return ViewResult(scenario, perspective, "cat", 1, 2, "", model, model, variance)


def _views(seed: int, n_scenarios: int = 5, per_view: int = 2) -> list[ViewResult]:
    rng = np.random.default_rng(seed)
    return [_view(rng, f"s{k}", p) for k in range(n_scenarios) for p in PERSPECTIVES for _ in range(per_view)]


@pytest.mark.parametrize("seed", [0, 1, 2], ids=lambda s: f"seed{s}")
def test_weighted_scores_equal_official_aggregate_with_unit_weights(seed):
    views = _views(seed)
    table = ScoreTable.from_views(views, [f"s{k}" for k in range(5)])
    got = weighted_scores(table, np.ones((1, 5)))[0]
    assert got == pytest.approx(aggregate(views).physics_iq_score, abs=1e-9)


def test_weighted_scores_equal_aggregate_over_duplicated_scenarios():
    views = _views(3)
    names = [f"s{k}" for k in range(5)]
    counts = np.array([[2, 0, 1, 3, 0]], dtype=float)
    # The naive reference: duplicate each scenario's views under distinct names, aggregate officially.
    copies = [
        dataclasses.replace(v, scenario=f"{v.scenario}#{c}")
        for v in views
        for c in range(int(counts[0, names.index(v.scenario)]))
    ]
    got = weighted_scores(ScoreTable.from_views(views, names), counts)[0]
    assert got == pytest.approx(aggregate(copies).physics_iq_score, abs=1e-9)


def test_weighted_scores_all_zero_weights_is_nan():
    views = _views(0, n_scenarios=2)
    assert np.isnan(weighted_scores(ScoreTable.from_views(views, ["s0", "s1"]), np.zeros((1, 2)))[0])


def test_paired_bootstrap_is_seeded_and_brackets_a_uniform_shift():
    names = [f"s{k}" for k in range(6)]
    base_views = _views(4, n_scenarios=6)
    better = [
        dataclasses.replace(
            v,
            model_v1=Comparison(
                v.model_v1.spatial_iou * 1.2,
                v.model_v1.weighted_spatial_iou * 1.2,
                tuple(x * 1.2 for x in v.model_v1.spatiotemporal_iou_frames),
                v.model_v1.mse_frames,
            ),
        )
        for v in base_views
    ]
    a, b = ScoreTable.from_views(base_views, names), ScoreTable.from_views(better, names)
    first = paired_bootstrap(a, b, n_boot=300, seed=7)
    assert first == paired_bootstrap(a, b, n_boot=300, seed=7)
    assert first["ci_low"] <= first["delta"] <= first["ci_high"]
    assert first["delta"] > 0 and first["p_not_better"] < 0.05
    same = paired_bootstrap(a, a, n_boot=100, seed=0)
    assert same["delta"] == same["ci_low"] == same["ci_high"] == 0.0


def _pair(tmp_path):
    a = write_run(
        tmp_path / "a",
        {
            "0001_perspective-left_ball": [[0.3, 0.4], [0.5, 0.4]],
            "0002_perspective-center_ball": [[0.2, 0.2]],
            "0003_perspective-left_ramp": [[0.6, 0.5]],
        },
    )
    b = write_run(
        tmp_path / "b",
        {
            "0001_perspective-left_ball": [[0.3, 0.4], [0.7, 0.4], [0.8, 0.1]],
            "0002_perspective-center_ball": [[0.4, 0.2]],
            "0009_perspective-left_extra": [[0.9, 0.9]],
        },
        prompt_set="minimal",
    )
    return a, b


def test_compare_runs_intersection_deltas_curves_and_convergence(tmp_path):
    a, b = _pair(tmp_path)
    result = compare_runs([load_run(a), load_run(b)], n_boot=200)
    assert result["views"] == ["0001_perspective-left_ball", "0002_perspective-center_ball"]
    assert any("compared on the 2" in n for n in result["notes"])
    assert any("0003_perspective-left_ramp" in n for n in result["notes"])
    assert any("0009_perspective-left_extra" in n for n in result["notes"])
    per_view = {r["view"]: r for r in result["per_view"]}
    # honest = last loop, seed 0: 50 vs 80 and 20 vs 40 (score = 100 * quality - mse difference)
    assert per_view["0001_perspective-left_ball"]["delta b"] == pytest.approx(30.0, abs=1e-6)
    assert per_view["0002_perspective-center_ball"]["delta b"] == pytest.approx(20.0, abs=1e-6)
    assert result["convergence"]["b"]["loops_histogram"] == {"1": 1, "3": 1}
    assert result["convergence"]["a"]["stop_reasons"] == {"converged": 2}
    curve_b = result["loop_curves"]["b"]
    assert len(curve_b) == 3 and curve_b[1] == curve_b[1]  # not nan
    oracle = next(r for r in result["overall"] if r["variant"] == "oracle")
    assert "oracle" in oracle["label"] and "upper bound" in oracle["label"]


def test_compare_refuses_disjoint_and_unfinished_runs(tmp_path):
    a = write_run(tmp_path / "a", {"0001_perspective-left_ball": [[0.3]]})
    b = write_run(tmp_path / "b", {"0002_perspective-left_other": [[0.3]]})
    with pytest.raises(CompareError, match="no view"):
        compare_runs([load_run(a), load_run(b)])
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "config.json").write_text("{}", encoding="utf-8")
    with pytest.raises(RunDataError, match="not finished"):
        load_run(tmp_path / "c")
    with pytest.raises(RunDataError, match="not a run directory"):
        load_run(tmp_path)


def test_write_comparison_outputs_and_refuses_non_empty_out(tmp_path):
    a, b = _pair(tmp_path)
    result = compare_runs([load_run(a), load_run(b)], n_boot=50)
    written = write_comparison(result, tmp_path / "out")
    names = {p.name for p in written}
    assert {"compare.md", "compare.json", "per_view.csv", "loop_curves.png", "view_deltas.png"} <= names
    assert all(p.stat().st_size > 0 for p in written)
    assert "| 0001_perspective-left_ball |" in (tmp_path / "out" / "compare.md").read_text()
    with pytest.raises(CompareError, match="not empty"):
        write_comparison(result, tmp_path / "out")


def test_compare_cli_writes_tables_and_json(tmp_path):
    a, b = _pair(tmp_path)
    out = tmp_path / "cmp"
    done = CliRunner().invoke(app, ["compare", str(a), str(b), "--out", str(out), "--n-boot", "50", "--json"])
    assert done.exit_code == 0, done.output
    data = json.loads(done.stdout)
    assert data["baseline"] == "a" and (out / "compare.md").is_file()
    bad = CliRunner().invoke(
        app, ["compare", str(a), str(tmp_path / "missing"), "--out", str(tmp_path / "x")]
    )
    assert bad.exit_code != 0 and "missing" in bad.output


def test_compare_notes_a_run_stopped_by_a_budget(tmp_path):
    a, b = _pair(tmp_path)
    summary = json.loads((b / "summary.json").read_text())
    summary.update(status="stopped", stopped_by="max_cost_usd", unfinished=["0003_perspective-left_ramp"])
    (b / "summary.json").write_text(json.dumps(summary))
    result = compare_runs([load_run(a), load_run(b)], n_boot=20)
    assert any(
        "stopped early (max_cost_usd)" in n and "0003_perspective-left_ramp" in n for n in result["notes"]
    )


def test_paired_bootstrap_of_one_scenario_gives_no_interval():
    views = _views(5, n_scenarios=1)
    table = ScoreTable.from_views(views, ["s0"])
    stats = paired_bootstrap(table, table, n_boot=50)
    assert stats["delta"] == 0.0 and stats["ci_low"] is None and stats["p_not_better"] is None


def test_critic_rank_breaks_score_ties_by_violation_severity_not_seed(tmp_path):
    from agent.workflows.rundata import AttemptData, critic_rank

    def attempt(seed: int, score: float, severities: list[str]) -> AttemptData:
        path = tmp_path / f"a{seed}.mp4"
        violations = [{"law": "gravity", "severity": s} for s in severities]
        path.with_suffix(".critique-1.json").write_text(
            json.dumps({"verdict": "inconsistent", "score": score, "violations": violations})
        )
        return AttemptData(loop=1, seed=seed, path=path, physics_iq=None, metrics=None)

    tied = [attempt(0, 0.5, ["high", "medium"]), attempt(1, 0.5, ["high"]), attempt(2, 0.5, ["high", "low"])]
    assert [a.seed for a in sorted(tied, key=critic_rank, reverse=True)] == [1, 2, 0]
    better = attempt(3, 0.6, ["high", "high"])  # the critic score still comes first
    assert max([*tied, better], key=critic_rank).seed == 3
