"""Acceptance test of the three workflows on the synthetic suite, all in a temporary folder:

refine (offline defaults) -> SIGKILL mid-run -> resume -> compare with a second prompt set and with a one-loop
run (per-run numbers = each run's summary.json, deltas = their differences) -> submit -> score the submission ->
report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.cli import app
from agent.workflows.rundata import VARIANTS
from tests.workflow_runs import kill_after_first_attempt

SCENARIOS = "synthetic-ball-bounce,synthetic-two-ball-collision"


def _refine_args(suite: Path, run_dir: Path, prompt_set: str, loops: int = 2) -> list[str]:
    return [
        "refine",
        "--dataset",
        str(suite),
        "--run-dir",
        str(run_dir),
        "--loops",
        str(loops),
        "--seeds",
        "2",
        "--prompt-set",
        prompt_set,
    ]


def _invoke(args: list[str]) -> str:
    done = CliRunner().invoke(app, args)
    assert done.exit_code == 0, f"physrefine {' '.join(args)}\n{done.output}"
    return done.stdout


def test_refine_kill_resume_compare_submit_score_report(tmp_path):
    from physics_iq.synthetic.build import build_suite

    suite = build_suite(tmp_path / "suite", scenarios=SCENARIOS, fps=8, size=(128, 72), jobs=1).root
    run_a = tmp_path / "run-default"

    # 1. refine in a subprocess, SIGKILL it once the first attempts are on disk
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-m", "agent.cli", *_refine_args(suite, run_a, "default")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    survivors = kill_after_first_attempt(proc, run_a, 60)
    assert survivors

    # 2. resume: same command; attempts made before the kill are reused, not regenerated
    _invoke(_refine_args(suite, run_a, "default"))
    summary = json.loads((run_a / "summary.json").read_text())
    assert summary.get("status", "complete") == "complete" and len(summary["scenarios"]) == 6
    assert {p: p.stat().st_mtime_ns for p in survivors} == survivors

    # 3. a second prompt set, and the same suite refined for one loop only; compare both with the first run.
    # The offline critic reads no prompt template but compose.j2 (the same in both sets), so the prompt-set
    # delta may well be zero; the one-loop run really differs (its final loop is loop 1).
    run_b = tmp_path / "run-minimal"
    _invoke(_refine_args(suite, run_b, "minimal"))
    run_c = tmp_path / "run-loops1"
    _invoke(_refine_args(suite, run_c, "default", loops=1))
    comparison = json.loads(
        _invoke(
            [
                "compare",
                str(run_a),
                str(run_b),
                str(run_c),
                "--out",
                str(tmp_path / "compare"),
                "--n-boot",
                "200",
                "--json",
            ]
        )
    )
    assert comparison["configs"]["run-default"]["prompt_set"] == "default"
    assert comparison["configs"]["run-minimal"]["prompt_set"] == "minimal"
    assert comparison["configs"]["run-loops1"]["loops"] == 1
    assert len(comparison["views"]) == 6 and not comparison["notes"]
    summaries = {run.name: json.loads((run / "summary.json").read_text()) for run in (run_a, run_b, run_c)}
    assert [row["variant"] for row in comparison["overall"]] == list(VARIANTS)
    for row in comparison["overall"]:
        for label, run_summary in summaries.items():
            # The run's own number: summary.json rounds to 2 decimals, compare to 4.
            own = run_summary["overall"][row["variant"]]
            assert row[label] == pytest.approx(own, abs=0.005 + 1e-4), f"{row['variant']} of {label}"
        for label in ("run-minimal", "run-loops1"):
            stats = row["vs"][label]
            # The delta is this run's number minus the baseline's (each rounded to 4 decimals).
            assert stats["delta"] == pytest.approx(row[label] - row["run-default"], abs=2e-4), (row, label)
            assert stats["ci_low"] <= stats["delta"] <= stats["ci_high"]
    one_loop = {row["variant"]: row["vs"]["run-loops1"]["delta"] for row in comparison["overall"]}
    assert one_loop["loop_1"] == 0.0  # loop 1 is the same attempts in both runs (same prompts and seeds)
    assert any(abs(delta) >= 0.01 for delta in one_loop.values()), one_loop
    assert (tmp_path / "compare" / "compare.md").is_file() and (
        tmp_path / "compare" / "loop_curves.png"
    ).is_file()

    # 4. submit the honest pick, score the submission
    submission = tmp_path / "submission"
    result = json.loads(
        _invoke(["submit", str(run_a), "--out", str(submission), "--fps", "8", "--score", "--json"])
    )
    clips = submission / "runs" / run_a.name
    assert sorted(p.suffix for p in clips.iterdir()) == [".mp4"] * 6  # the clips and nothing else
    assert result["manifest"]["selection"]["oracle"] is False
    # The package is scored in compat mode (the leaderboard's), the run in fast mode; each says so, and in
    # fast mode the package's clips score what the run reported.
    assert result["score"]["mode"] == "compat"
    from physics_iq.evaluate import Evaluator

    fast = Evaluator(summary["config"]["dataset"], 8, mode="fast", cache_dir=False).evaluate_folder(clips)
    assert fast.overall.physics_iq_score == pytest.approx(summary["overall"]["honest_ensemble"], abs=0.01)

    # 5. report
    report = tmp_path / "report.html"
    _invoke(["report", str(run_a), "--out", str(report)])
    html = report.read_text(encoding="utf-8")
    assert all(entry["scenario"] in html for entry in summary["scenarios"])
    assert "data:image/jpeg;base64," in html
