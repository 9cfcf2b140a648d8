"""Batch refinement runs: settings files with CLI overrides, category filters, budgets that stop cleanly and
resume, and concurrency that does not change results."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agent.budget import Budget, MeteredVLM, RunLimits, UsageMeter
from agent.cli import app
from agent.pool import LocalGeneratorPool
from agent.refine import run_refinement
from agent.runs import RunConfig
from agent.settings import SettingsError, parse_duration, resolve_settings
from agent.vlm.base import Message
from agent.vlm.scripted import ScriptedVLM
from generators.base import GeneratedVideo, GenerationError, GenerationRequest
from physics_iq.synthetic import build_suite

runner = CliRunner()
# One reply that parses as a prediction, a critique and a rewrite (the scripted VLM repeats it).
UNIVERSAL_REPLY = json.dumps(  # valid for every role's schema (extra fields are ignored)
    {
        "objects": ["magenta puck"],
        "physics": "it slides on the table and slows down through friction",
        "expected_outcome": "it slides right and stops",
        "prompt": "The magenta puck slides right and slows down.",
        "observations": "the puck slides right",
        "expected_physics": "it slows down",
        "violations": [],
        "verdict": "inconsistent",
        "score": 0.3,
        "suggested_changes": [],
        "reasoning": "keep the slide",
    }
)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """IDs 1-3: two-ball collision (Solid Mechanics), 4-6: magnet repel (Magnetism); left, center, right."""
    layout = build_suite(
        tmp_path_factory.mktemp("suite"),
        scenarios=["synthetic-two-ball-collision", "synthetic-magnet-repel"],
        fps=8,
        jobs=1,
    )
    return layout.root


def _comparable(summary: dict[str, Any]) -> dict[str, Any]:
    """The results, without what names the run directory or measures time."""
    scenarios = [{k: v for k, v in s.items() if not k.endswith("_pick")} for s in summary["scenarios"]]
    return {"overall": summary["overall"], "scenarios": scenarios}


# -- settings -----------------------------------------------------------------------------------------------
def test_toml_settings_with_cli_overrides(tmp_path: Path, suite: Path) -> None:
    file = tmp_path / "run.toml"
    file.write_text(
        f'dataset = "{suite}"\nrun_dir = "{tmp_path / "run"}"\nloops = 3\nseeds = 2\n'
        'categories = ["Magnetism"]\ntime_limit = "10m"\njobs = 2\n'
    )
    settings = resolve_settings({"seeds": 1}, file)
    assert settings.config.loops == 3 and settings.config.seeds == 1  # the command line wins
    assert settings.config.categories == ["Magnetism"] and settings.config.fps == 8
    assert settings.limits == RunLimits(time_limit_s=600.0, jobs=2)
    assert settings.run_dir == tmp_path / "run"


def test_yaml_settings(tmp_path: Path, suite: Path) -> None:
    file = tmp_path / "run.yaml"
    file.write_text(f"dataset: {suite}\nrun_dir: {tmp_path / 'run'}\nscenarios: 2,5\nmax_cost_usd: 1.5\n")
    settings = resolve_settings({}, file)
    assert settings.config.scenarios == ["2", "5"] and settings.limits.max_cost_usd == 1.5


@pytest.mark.parametrize(
    ("text", "cli", "message"),
    [
        ("lops = 3\n", {}, r"run.toml: unknown field 'lops'; did you mean 'loops'\?"),
        ("loops = 0\n", {}, r"run.toml: field 'loops': Input should be greater than or equal to 1"),
        ("loops = 2\n", {"loops": 0}, r"option --loops: Input should be greater than or equal to 1"),
        ('mode = "t2v"\n', {}, r"run.toml: field 'mode'"),
        ("jobs = 0\n", {}, r"run.toml: field 'jobs'"),
        (
            'selector = "critc"\n',
            {},
            r"run.toml: field 'selector': unknown selector 'critc'; did you mean 'critic'\?",
        ),
        ('time_limit = "soon"\n', {}, r"run.toml: field 'time_limit': expected a duration"),
        ("loops = [\n", {}, r"run.toml: not valid TOML"),
    ],
    ids=[
        "unknown-key",
        "bad-file-value",
        "bad-cli-value",
        "bad-literal",
        "bad-limit",
        "bad-selector",
        "bad-duration",
        "syntax",
    ],
)
def test_settings_errors_name_the_file_and_field(
    tmp_path: Path, suite: Path, text: str, cli: dict[str, Any], message: str
) -> None:
    file = tmp_path / "run.toml"
    file.write_text(f'dataset = "{suite}"\nrun_dir = "{tmp_path / "run"}"\n{text}')
    before = file.read_bytes()
    with pytest.raises(SettingsError, match=message):
        resolve_settings(cli, file)
    assert file.read_bytes() == before  # the input is never modified


def test_settings_file_of_wrong_kind(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"expected a \.toml, \.yaml or \.yml"):
        resolve_settings({}, tmp_path / "run.json")
    with pytest.raises(SettingsError, match="cannot read"):
        resolve_settings({}, tmp_path / "missing.toml")


def test_parse_duration_rejects_garbage() -> None:
    assert parse_duration("1h 30m") == 5400.0
    with pytest.raises(ValueError, match="duration"):
        parse_duration("10 minutes")


def test_cli_config_file_and_categories(tmp_path: Path, suite: Path) -> None:
    file = tmp_path / "run.yaml"
    run_dir = tmp_path / "run"
    file.write_text(f"dataset: {suite}\nrun_dir: {run_dir}\nloops: 1\nseeds: 1\nscore: false\n")
    result = runner.invoke(app, ["refine", "--config", str(file), "--categories", "Magnetism", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)  # stdout holds only the JSON; progress went to stderr
    assert [s["scenario"].split("_")[-1] for s in summary["scenarios"]] == ["synthetic-magnet-repel"] * 3
    saved = json.loads((run_dir / "config.json").read_text())
    assert saved["categories"] == ["Magnetism"] and saved["loops"] == 1 and saved["score"] is False
    assert json.loads((run_dir / "limits.json").read_text())["jobs"] == 1
    bad = runner.invoke(app, ["refine", "--config", str(file), "--categories", "Optics"])
    assert bad.exit_code == 2 and "no category ['Optics']; known: Magnetism" in bad.stderr


# -- budgets --------------------------------------------------------------------------------------------------
def test_meter_counts_reported_or_estimated_tokens_and_persists(tmp_path: Path) -> None:
    meter = UsageMeter(tmp_path / "usage.json")
    vlm = MeteredVLM(ScriptedVLM(["x" * 40]), meter)
    vlm.chat([Message("user", "y" * 400)])
    usage = meter.snapshot()
    assert usage["calls"] == 1 and usage["tokens"] == 100 + 10 and usage["estimated_calls"] == 1
    assert UsageMeter(tmp_path / "usage.json").snapshot()["tokens"] == 110  # survives a restart
    budget = Budget(RunLimits(max_vlm_tokens=100), meter)
    assert budget.exhausted().startswith("max_vlm_tokens: 110")
    clock = iter([0.0, 5.0])
    timed = Budget(RunLimits(time_limit_s=4), UsageMeter(tmp_path / "other.json"), clock=lambda: next(clock))
    assert timed.exhausted().startswith("time_limit")


def test_cost_limit_counts_the_backends_prices(tmp_path: Path) -> None:
    from agent.vlm.base import VLMReply

    meter = UsageMeter(tmp_path / "usage.json")
    budget = Budget(RunLimits(max_cost_usd=0.5), meter)
    reply = VLMReply("{}", "m", prompt_tokens=1000, completion_tokens=100, cost_usd=0.3)
    meter.add(reply, [Message("user", "q")])
    assert budget.exhausted() == ""  # $0.30 of $0.50
    meter.add(reply, [Message("user", "q")])
    assert budget.exhausted() == "max_cost_usd: $0.6000 spent, limit $0.5000"
    assert UsageMeter(tmp_path / "usage.json").snapshot()["cost_usd"] == pytest.approx(0.6)


def test_token_budget_stops_cleanly_and_a_larger_budget_resumes(tmp_path: Path, suite: Path) -> None:
    config = RunConfig(
        dataset=str(suite),
        fps=8,
        loops=2,
        seeds=1,
        scenarios=["5"],
        vlm="scripted",
        vlm_options={"replies": json.dumps([UNIVERSAL_REPLY])},
    )
    run_dir = tmp_path / "run"
    stopped = run_refinement(config, run_dir, limits=RunLimits(max_vlm_tokens=10))
    assert stopped["status"] == "stopped" and stopped["stopped_by"].startswith("max_vlm_tokens")
    assert stopped["unfinished"] == ["0005_perspective-center_synthetic-magnet-repel"]
    assert stopped["usage"]["calls"] == 1  # stopped right after the first VLM call (predict)
    events = [json.loads(line) for line in (run_dir / "trace.jsonl").read_text().splitlines()]
    assert any(e["node"] == "budget" and e["stopped_by"].startswith("max_vlm_tokens") for e in events)
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "stopped"

    resumed = run_refinement(config, run_dir, limits=RunLimits(max_vlm_tokens=10**6))
    assert resumed["status"] == "complete" and resumed["unfinished"] == []
    assert resumed["usage"]["calls"] > 1
    events = [json.loads(line) for line in (run_dir / "trace.jsonl").read_text().splitlines()]
    assert sum(e["node"] == "predict" for e in events) == 1  # resumed after predict, not restarted


def test_time_limit_stops_between_steps(tmp_path: Path, suite: Path) -> None:
    config = RunConfig(
        dataset=str(suite), fps=8, loops=2, seeds=1, scenarios=["2", "5"], score=False,
        generator_options={"delay_s": "0.3"},
    )  # fmt: skip
    result = runner.invoke(
        app,
        ["refine", "--dataset", str(suite), "--run-dir", str(tmp_path / "run"), "--scenarios", "2,5",
         "--loops", "2", "--seeds", "1", "--no-score", "--generator-opt", "delay_s=0.3",
         "--time-limit", "0.2", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "stopped" and summary["stopped_by"].startswith("time_limit")
    assert len(summary["unfinished"]) == 2 and summary["config"] == config.model_dump(mode="json")


# -- failures ------------------------------------------------------------------------------------------------------
class _FailingGenerator:
    name = "failing"

    def generate(self, request: GenerationRequest) -> GeneratedVideo:
        raise GenerationError(f"failing: {request.num_frames} frames are more than this checkpoint makes")


def test_a_scenario_whose_generations_all_fail_is_summarised_not_crashed(tmp_path: Path, suite: Path) -> None:
    from rich.console import Console

    from agent.commands.refine import _print_table
    from agent.refine import Refinement

    config = RunConfig(dataset=str(suite), fps=8, loops=3, seeds=2, scenarios=["5"])
    refinement = Refinement(config, tmp_path / "run")
    refinement.generators = LocalGeneratorPool.of(_FailingGenerator())
    summary = refinement.run_all()
    # The run says so: not "complete" (the CLI exits 1), and which scenario has nothing to show.
    assert summary["status"] == "failed" and summary["failed_generations"] == 2
    assert summary["scenarios_without_attempts"] == [summary["scenarios"][0]["scenario"]]
    (entry,) = summary["scenarios"]
    error = "failing: 40 frames are more than this checkpoint makes"
    assert entry["stop_reason"] == f"failed: all 2 generation(s) of loop 1 failed ({error})"
    assert (
        entry["attempts"] == 0 and entry["failed_generations"] == 2 and entry["generation_errors"] == [error]
    )
    # Nothing of this scenario enters the variants (they stay comparable); the table shows "-".
    assert all(entry.get(v) is None for v in ("loop_1", "final", "honest_ensemble", "oracle", "static"))
    saved = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert saved["scenarios"][0]["stop_reason"] == entry["stop_reason"]
    assert "failed_generations" in (tmp_path / "run" / "summary.csv").read_text().splitlines()[0]
    console = Console(record=True, width=100)
    _print_table(summary, console)
    text = " ".join(console.export_text().split())
    assert "2 generation(s) failed" in text and error in text


# -- concurrency --------------------------------------------------------------------------------------------------
def test_jobs_do_not_change_results(tmp_path: Path, suite: Path) -> None:
    config = RunConfig(dataset=str(suite), fps=8, loops=2, seeds=1, scenarios=["2", "5"])
    serial = run_refinement(config, tmp_path / "serial", limits=RunLimits(jobs=1))
    parallel = run_refinement(config, tmp_path / "parallel", limits=RunLimits(jobs=2))
    assert serial["status"] == parallel["status"] == "complete"
    assert _comparable(serial) == _comparable(parallel)
    names = lambda run: sorted(p.name for p in (tmp_path / run).glob("scenarios/*/attempts/*.mp4"))  # noqa: E731
    assert names("serial") == names("parallel")


def test_refine_without_dataset_or_run_dir_says_what_is_missing(tmp_path: Path, suite: Path) -> None:
    no_run_dir = runner.invoke(app, ["refine", "--dataset", str(suite)])
    assert no_run_dir.exit_code != 0 and "no run directory" in no_run_dir.output
    no_dataset = runner.invoke(app, ["refine", "--run-dir", str(tmp_path / "run")])
    assert no_dataset.exit_code != 0 and "no dataset" in no_dataset.output
    assert not (tmp_path / "run").exists()


# -- crashes ------------------------------------------------------------------------------------------------------
class _Crash(Exception):
    """Stands for the process dying (SIGKILL, power loss) between two checkpoint writes."""


def test_a_crash_between_any_two_checkpoints_resumes_to_the_same_result(
    tmp_path: Path, suite: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LangGraph saves each finished task's writes as it ends and the step's checkpoint after the whole step.
    A crash in between leaves a thread whose snapshot has no ``next`` task although the graph is not done
    (every task of the step already has writes); such a thread must be resumed, not taken as finished.
    Crashing at every checkpoint write of a two-loop scenario covers that window at each step."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    config = RunConfig(dataset=str(suite), fps=8, loops=2, seeds=1, scenarios=["5"])  # a view that rewrites
    real_put = SqliteSaver.put
    calls = {"n": 0, "crash_at": 0}

    def put(self: SqliteSaver, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == calls["crash_at"]:
            raise _Crash(f"killed before checkpoint write {calls['n']}")
        return real_put(self, *args, **kwargs)

    monkeypatch.setattr(SqliteSaver, "put", put)
    reference = run_refinement(config, tmp_path / "reference")
    writes = calls["n"]
    assert reference["status"] == "complete" and reference["scenarios"][0]["loops"] == 2  # a rewrite happened
    rerun = run_refinement(config, tmp_path / "reference")  # a finished thread is recognised as such
    events = [json.loads(line) for line in (tmp_path / "reference" / "trace.jsonl").read_text().splitlines()]
    # Both threads of the scenario (the refinement and its best-of-N baseline) are recognised as finished.
    assert [e.get("status") for e in events if e["node"] == "resume"] == ["already finished"] * 2
    assert _comparable(rerun) == _comparable(reference) and rerun["usage"] == reference["usage"]
    assert calls["n"] == writes  # the rerun ran no step
    for crash_at in range(1, writes + 1):
        run_dir = tmp_path / f"crash-{crash_at}"
        calls.update(n=0, crash_at=crash_at)
        with pytest.raises(_Crash):
            run_refinement(config, run_dir)
        assert not (run_dir / "summary.json").exists()
        calls.update(n=0, crash_at=0)
        resumed = run_refinement(config, run_dir)
        assert _comparable(resumed) == _comparable(reference), f"crash before checkpoint write {crash_at}"
        events = [json.loads(line) for line in (run_dir / "trace.jsonl").read_text().splitlines()]
        statuses = [e["status"] for e in events if e["node"] == "resume"]
        if crash_at == 1:  # nothing was saved: the rerun starts afresh
            assert statuses == []
        else:  # the thread that crashed resumes (unless it crashed at its own first write); one before it is done
            resuming = [s for s in statuses if s.startswith("resuming")]
            assert len(resuming) <= 1 and all(s == "already finished" or s in resuming for s in statuses), (
                statuses
            )
            assert statuses, statuses
        folder = run_dir / "scenarios" / resumed["scenarios"][0]["scenario"]
        assert (folder / "scores.json").is_file() and (folder / "scores-best_of_n.json").is_file()


def test_resuming_a_run_made_by_other_code_says_so(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    from agent.runs import RunDir

    config = RunConfig(dataset=str(tmp_path), fps=8, loops=1, seeds=1)
    assert RunDir(tmp_path / "run", config).open({"git_commit": "a" * 40}) is False
    with caplog.at_level(logging.WARNING, logger="agent.runs"):
        assert RunDir(tmp_path / "run", config).open({"git_commit": "a" * 40}) is True
        assert not caplog.records  # the same code: nothing to say
        assert RunDir(tmp_path / "run", config).open({"git_commit": "b" * 40}) is True
    (record,) = caplog.records
    assert "made at commit aaaaaaaaaaaa and is resumed at commit bbbbbbbbbbbb" in record.getMessage()
    # The run keeps the provenance of the code that made it.
    assert json.loads((tmp_path / "run" / "provenance.json").read_text())["git_commit"] == "a" * 40
