"""``physrefine demo`` end to end, ``physrefine refine`` options, user errors (one line, exit code 2, nothing
touched), and resume after ``kill -9``."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from agent.cli import app
from physics_iq.synthetic import build_suite
from tests import replies

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
    # Bracketed defaults survive rich markup; the built-in prompt sets are listed (help unwrapped first).
    text = " ".join(result.output.replace("│", " ").split())
    assert "[physics-prior]" in text and "[v2v]" in text and "(default, minimal, phyt2v)" in text
    sweep = runner.invoke(app, ["sweep", "--help"])
    assert "[base] settings and a [grid] of lists" in " ".join(sweep.output.replace("│", " ").split())


# -- user errors: one line, exit code 2, nothing created or changed -------------------------------------------
@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A tiny suite and a finished one-loop run over it (unscored): the inputs the error cases must not touch."""
    root = tmp_path_factory.mktemp("errors")
    suite = build_suite(root / "suite", scenarios=["synthetic-magnet-repel"], size=(128, 72), jobs=1).root
    done = runner.invoke(app, [*_refine_base(suite, root / "run"), "--no-score"])
    assert done.exit_code == 0, done.output
    return suite, root / "run"


def _refine_base(suite: Path, run_dir: Path) -> list[str]:
    return ["refine", "--dataset", str(suite), "--scenarios", "2", "--run-dir", str(run_dir), "--loops", "1", "--seeds", "1"]  # fmt: skip


def _tree(*roots: Path) -> dict[str, tuple[str, int]]:
    """Every file under ``roots``: content hash and modification time (a rewrite with the same bytes shows)."""
    return {
        str(p): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for root in roots
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


# Each case: the arguments (``{suite}``, ``{run}``: the fixture's; ``{new}``: a path that must stay absent)
# and what the one line must say.
USER_ERRORS = {
    "refine-missing-dataset": (
        ["refine", "--dataset", "{new}/data", "--run-dir", "{new}/run"],
        "data: dataset folder not found",
    ),
    "refine-unknown-generator": (
        ["{refine_new}", "--generator", "physics-prio"],
        "option --generator: unknown generator 'physics-prio'; did you mean 'physics-prior'?",
    ),
    "refine-unknown-vlm": (
        ["{refine_new}", "--vlm", "offlin"],
        "option --vlm: unknown vlm 'offlin'; did you mean 'offline'?",
    ),
    "refine-unknown-prompt-set": (
        ["{refine_new}", "--prompt-set", "phyt2"],
        "option --prompt-set: prompt set 'phyt2' is neither a folder nor a built-in set",
    ),
    "refine-missing-config-file": (
        ["{refine_new}", "--config", "{new}/settings.toml"],
        "settings.toml: cannot read settings file",
    ),
    "refine-unknown-scenario": (["{refine_new}", "--scenarios", "nosuch"], "no scenario ['nosuch']"),
    "refine-rerun-with-other-settings": (
        ["{refine_run}", "--no-score", "--seeds", "2"],
        "config.json: this run directory was made with a different configuration (differs in ['seeds'])",
    ),
    "demo-unknown-scenario": (
        ["demo", "--out", "{new}", "--scenarios", "synthetic-bal-bounce"],
        "unknown scenario 'synthetic-bal-bounce'; did you mean 'synthetic-ball-bounce'?",
    ),
    "make-suite-into-a-run-dir": (
        ["make-suite", "{run}", "--scenarios", "synthetic-magnet-repel"],
        "folder is not empty and holds no synthetic_suite.json; refusing to write into it",
    ),
    "score-missing-dataset": (
        ["score", "{run}/scenarios", "--dataset", "{new}/data"],
        "data: dataset folder not found",
    ),
    "score-dataset-is-a-file": (
        ["score", "{run}/scenarios", "--dataset", "{run}/config.json"],
        "config.json: is a file; expected a dataset folder holding descriptions.csv",
    ),
    "report-missing-run": (["report", "{new}/run"], "run: no such run directory"),
    "refine-bad-generator-option": (
        # str.format() halves the braces: the command template reaches the CLI as {{ outptu }}.
        ["{refine_new}", "--generator", "command", "--generator-opt", "command=gen --out {{{{ outptu }}}}"],
        "command: command template: 'outptu' is undefined",
    ),
    "refine-unknown-vlm-option": (
        [
            *["{refine_new}", "--vlm", "openai", "--vlm-model", "m"],
            *["--base-url", "http://127.0.0.1:9/v1", "--vlm-opt", "max_frame=4"],
        ],
        "vlm openai: max_frame: Extra inputs are not permitted",
    ),
}


@pytest.mark.parametrize("case", list(USER_ERRORS))
def test_user_errors_are_one_line_exit_2_and_change_nothing(
    case: str, finished: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite, run = finished
    monkeypatch.chdir(tmp_path)  # a relative default output (score-results/) would land here and show
    new = tmp_path / "new"
    args, expected = USER_ERRORS[case]
    fill = {
        "{refine_new}": _refine_base(suite, new / "run"),
        "{refine_run}": _refine_base(suite, run),
    }
    argv = [a for arg in args for a in fill.get(arg, [arg])]
    argv = [a.format(suite=suite, run=run, new=new) for a in argv]
    before = _tree(suite, run, tmp_path)
    result = runner.invoke(app, argv)
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert expected in lines[0]
    assert "Traceback" not in result.output and result.stdout == ""
    assert not new.exists()
    assert _tree(suite, run, tmp_path) == before


def test_demo_rerun_with_other_settings_is_one_line(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--scenarios", "synthetic-magnet-repel", "--seeds", "1"]
    assert runner.invoke(app, [*args, "--loops", "1", "--json"]).exit_code == 0
    before = {p: h for p, (h, _) in _tree(out).items()}
    result = runner.invoke(app, [*args, "--loops", "2"])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "differs in ['loops']" in lines[0], result.stderr
    # Content only: reusing the suite rewrites its manifest and descriptions.csv with the same bytes.
    assert {p: h for p, (h, _) in _tree(out).items()} == before


def test_a_missing_file_is_one_line_and_a_bug_keeps_its_traceback(
    finished: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import agent.workflows.rundata as rundata

    def missing(path: Path) -> None:
        raise FileNotFoundError(2, "No such file or directory", str(path / "summary.json"))

    monkeypatch.setattr(rundata, "load_run", missing)
    result = runner.invoke(app, ["report", str(finished[1])])
    assert result.exit_code == 2
    assert result.stderr.strip() == f"error: {finished[1] / 'summary.json'}: No such file or directory"

    def bug(path: Path) -> None:
        raise RuntimeError("an internal bug")

    monkeypatch.setattr(rundata, "load_run", bug)
    crashed = runner.invoke(app, ["report", str(finished[1])])
    assert crashed.exit_code == 1 and isinstance(crashed.exception, RuntimeError)


def _refine_cmd(suite: Path, run_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "agent.cli", "refine", "--dataset", str(suite), "--run-dir", str(run_dir),
        "--scenarios", "2", "--loops", "2", "--seeds", "2", "--generator-opt", "delay_s=0.4", "--json",
    ]  # fmt: skip


def _attempt_files(run_dir: Path) -> list[str]:
    return sorted(p.name for p in run_dir.glob("scenarios/*/attempts/*.mp4"))


def _comparable(summary: dict) -> dict:
    return {"overall": summary["overall"], "scenarios": [
        {k: v for k, v in s.items() if not k.endswith("_pick")} for s in summary["scenarios"]
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


# -- the PhyT2V-style prompt set ------------------------------------------------------------------------------
def test_phyt2v_prompt_set_is_used_and_recorded(
    finished: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agent.prompting import ROLES
    from agent.vlm.scripted import ScriptedVLM
    from prompts import PROMPTS_ROOT

    sent: list[str] = []
    original = ScriptedVLM.chat

    def recording(self: ScriptedVLM, messages: Any, **kwargs: Any) -> Any:
        sent.append(messages[-1].text)
        return original(self, messages, **kwargs)

    monkeypatch.setattr(ScriptedVLM, "chat", recording)
    # One reply that parses as a prediction, a critique (inconsistent: the loop goes on) and a rewrite.
    reply = json.dumps(
        replies.universal(
            prompt="The magenta puck slides right and stops.", verdict="inconsistent", score=0.3
        )
    )
    run_dir = tmp_path / "run"
    args = [
        "refine",
        "--dataset",
        str(finished[0]),
        "--scenarios",
        "2",
        "--run-dir",
        str(run_dir),
        "--loops",
        "2",
    ]
    args += ["--seeds", "1", "--no-score", "--prompt-set", "phyt2v", "--vlm", "scripted"]
    args += ["--vlm-opt", f"replies={json.dumps([reply])}", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads((run_dir / "config.json").read_text())["prompt_set"] == "phyt2v"
    recorded = json.loads((run_dir / "provenance.json").read_text())["prompt_set"]
    assert recorded["name"] == "phyt2v" and set(recorded["templates"]) == set(ROLES)
    for role, digest in recorded["templates"].items():
        assert digest == hashlib.sha256((PROMPTS_ROOT / "phyt2v" / f"{role}.j2").read_bytes()).hexdigest()
    # What the VLM was sent came from this set: predict's step-back, critique's caption, rewrite's step-back.
    assert any(text.startswith("You are a physics expert") and "3. Step back" in text for text in sent)
    assert any("1. Caption: describe only what the generated frames show" in text for text in sent)
    assert any(text.startswith("You refine a prompt") and "1. Step back" in text for text in sent)


def test_live_display_follows_workers_and_usage(tmp_path: Path) -> None:
    """The rich display on stderr: scenarios done, what each worker does (events from several threads),
    VLM tokens and cost; the final frame stays on screen."""
    import io
    import threading

    from rich.console import Console

    from agent.budget import UsageMeter
    from agent.commands.refine import _LiveDisplay
    from agent.vlm.base import VLMReply

    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=200, color_system=None)
    meter = UsageMeter(tmp_path / "usage.json")
    with _LiveDisplay(console, total=3) as display:
        display.meter = meter
        display.on_event({"node": "start", "take1_id": 2})
        display.on_event({"node": "generate", "take1_id": 2, "loop": 1, "error": ""})
        display.on_event({"node": "generate", "take1_id": 2, "loop": 1, "error": "out of memory"})
        meter.add(VLMReply("{}", "m", prompt_tokens=1200, completion_tokens=34, cost_usd=0.0123), [])
        display.on_event({"node": "critique", "take1_id": 2, "loop": 1})
        display.on_event({"node": "predict", "take1_id": 5})
        (task,) = display.progress.tasks
        assert task.description == "scenarios [#2 loop 1 critique (1 att.) | #5 predict (0 att.)]"
        assert task.fields["usage"] == "VLM 1234 tok $0.0123"

        def worker(take1_id: int) -> None:
            for loop in (1, 2):
                display.on_event({"node": "generate", "take1_id": take1_id, "loop": loop, "error": ""})
            display.on_event({"node": "scenario_done", "take1_id": take1_id})

        threads = [threading.Thread(target=worker, args=(n,)) for n in (2, 5, 7)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert display.progress.tasks[0].completed == 3 and display.active == {}
        assert display.attempts == {2: 3, 5: 2, 7: 2}
    final = screen.getvalue().rsplit("\r", 1)[-1]
    assert "3/3" in final and "VLM 1234 tok $0.0123" in final
