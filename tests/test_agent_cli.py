"""``physrefine demo`` end to end, ``physrefine refine`` options, and resume after ``kill -9``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from typer.testing import CliRunner

from agent.cli import app
from physics_iq.synthetic import build_suite

runner = CliRunner()


def test_demo_end_to_end_json(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    args = [
        "demo",
        "--out",
        str(out),
        "--scenarios",
        "synthetic-magnet-repel",
        "--loops",
        "2",
        "--seeds",
        "1",
        "--jobs",
        "2",  # the live display takes events from two worker threads
    ]
    result = runner.invoke(app, [*args, "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    for key in ("loop_1", "final", "honest_ensemble", "oracle", "static", "physical_variance"):
        assert isinstance(summary["overall"][key], float), key
        for entry in summary["scenarios"]:
            assert key in entry
    assert summary["critic_is_neural"] is False and summary["generator_is_neural"] is False
    run = tmp_path / "demo" / "run"
    provenance = json.loads((run / "provenance.json").read_text())
    assert set(provenance["prompt_set"]["templates"]) >= {"predict", "critique", "rewrite"}
    assert (run / "summary.csv").is_file() and (run / "trace.jsonl").is_file()
    assert len(summary["scenarios"]) == 3  # one scenario seen by the suite's three cameras
    for entry in summary["scenarios"]:
        assert entry["oracle"] >= entry["honest_ensemble"] - 1e-6  # the oracle is an upper bound
    assert summary["status"] == "complete" and summary["unfinished"] == []
    assert (out / "suite" / "synthetic_suite.json").is_file()
    again = runner.invoke(app, [*args, "--json"])  # reuses the suite (manifest) and the finished run
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["overall"] == summary["overall"]


def test_refine_help_lists_backends() -> None:
    result = runner.invoke(app, ["refine", "--help"], terminal_width=200)
    assert result.exit_code == 0
    assert "physics-prior" in result.output and "offline" in result.output and "scripted" in result.output


def test_refine_rejects_unknown_backend_and_changed_config(tmp_path: Path) -> None:
    suite = build_suite(tmp_path / "suite", scenarios=["synthetic-magnet-repel"], jobs=1)
    base = [
        "refine",
        "--dataset",
        str(suite.root),
        "--scenarios",
        "2",
        "--run-dir",
        str(tmp_path / "run"),
        "--loops",
        "1",
        "--seeds",
        "1",
    ]
    result = runner.invoke(app, [*base, "--generator", "physics-prio"])
    assert result.exit_code != 0 and "did you mean 'physics-prior'" in str(result.exception)
    assert runner.invoke(app, [*base, "--json", "--no-score"]).exit_code == 0
    changed = runner.invoke(app, [*base, "--no-score", "--seeds", "2"])
    assert changed.exit_code != 0 and "differs in ['seeds']" in str(changed.exception)


def _refine_cmd(suite: Path, run_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "agent.cli", "refine", "--dataset", str(suite), "--run-dir", str(run_dir),
        "--scenarios", "2", "--loops", "2", "--seeds", "2", "--generator-opt", "delay_s=0.4", "--json",
    ]  # fmt: skip


def _attempt_files(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.glob("scenarios/*/attempts/*.mp4"))


def _comparable(summary: dict) -> dict:
    return {"overall": summary["overall"], "scenarios": [
        {k: v for k, v in s.items() if k not in ("honest_pick", "oracle_pick")} for s in summary["scenarios"]
    ]}  # fmt: skip


def test_kill_mid_generation_and_resume(tmp_path: Path) -> None:
    suite = build_suite(tmp_path / "suite", scenarios=["synthetic-two-ball-collision"], jobs=1).root
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    run_dir = tmp_path / "run"
    process = subprocess.Popen(
        _refine_cmd(suite, run_dir), stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    trace = run_dir / "trace.jsonl"
    deadline = time.time() + 60
    # Kill once the first attempt of loop 1 is on disk but generation is still going (0.4 s per attempt).
    while time.time() < deadline:
        if trace.is_file() and '"node": "generate"' in trace.read_text():
            break
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (run_dir / "summary.json").exists(), "the run finished before it could be killed"
    before = _attempt_files(run_dir)
    assert 1 <= len(before) < 4

    resumed = subprocess.run(
        _refine_cmd(suite, run_dir), capture_output=True, text=True, env=env, timeout=120
    )
    assert resumed.returncode == 0, resumed.stderr
    reference_dir = tmp_path / "reference"
    reference = subprocess.run(
        _refine_cmd(suite, reference_dir), capture_output=True, text=True, env=env, timeout=120
    )
    assert reference.returncode == 0, reference.stderr

    after = _attempt_files(run_dir)
    assert after == _attempt_files(reference_dir)  # same attempts, none duplicated or lost
    assert set(before) <= set(after)
    events = [json.loads(line) for line in trace.read_text().splitlines()]
    assert any(e["node"] == "resume" for e in events)
    generated = [e for e in events if e["node"] == "generate" and not e.get("reused")]
    assert len(generated) == len({e["path"] for e in generated})  # no attempt generated twice
    assert _comparable(json.loads(resumed.stdout)) == _comparable(json.loads(reference.stdout))
