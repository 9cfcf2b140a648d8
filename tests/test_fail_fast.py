"""A backend that cannot work stops the run before anything is generated, in one line; one that stops working
mid-run stops the run cleanly (resumable), never fills it with failed records."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agent.budget import BackendGate
from agent.cli import app
from agent.refine import run_refinement
from agent.runs import RunConfig
from agent.vlm.base import VLMUnavailable
from tests.datasets import build_tiny_dataset
from tests.openai_server import DROP, ScriptedServer, completion, error, models

runner = CliRunner()
KEY_ENV = "PHYSREFINE_TEST_FAILFAST_KEY"

PREDICTION = {"objects": ["red square"], "physics": "it slides", "expected_outcome": "it slides on", "prompt": "A red square slides right."}  # fmt: skip
CRITIQUE = {"observations": "it slides", "expected_physics": "it slides", "violations": [], "verdict": "consistent", "score": 0.9, "suggested_changes": []}  # fmt: skip


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_dataset(tmp_path_factory.mktemp("data") / "ds", n_scenarios=1).root


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedServer]:
    monkeypatch.setenv(KEY_ENV, "sk-test-failfast")
    started = ScriptedServer()
    yield started
    started.stop()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _refine(dataset: Path, run_dir: Path, *extra: str) -> object:
    args = ["refine", "--dataset", str(dataset), "--run-dir", str(run_dir), "--scenarios", "0001"]
    args += ["--vlm", "openai", "--vlm-opt", f"api_key_env={KEY_ENV}", *extra]
    return runner.invoke(app, args)


def _one_error_line(result: object) -> str:
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    lines = [line for line in result.stderr.splitlines() if line.strip()]  # type: ignore[attr-defined]
    assert len(lines) == 1 and lines[0].startswith("error:"), result.stderr  # type: ignore[attr-defined]
    assert "Traceback" not in result.output  # type: ignore[attr-defined]
    return lines[0]


def test_an_endpoint_where_nothing_listens_stops_the_run_at_once(dataset: Path, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}/v1"
    started = time.monotonic()
    result = _refine(dataset, tmp_path / "run", "--base-url", url, "--vlm-model", "m")
    line = _one_error_line(result)
    assert "--base-url" in line and url in line and "cannot be reached" in line
    assert time.monotonic() - started < 30  # one try and one retry, not a run of failed critiques
    assert not (tmp_path / "run").exists()


def test_a_refused_key_stops_the_run_at_once(dataset: Path, tmp_path: Path, server: ScriptedServer) -> None:
    server.models_reply = error(401, "invalid api key")
    line = _one_error_line(_refine(dataset, tmp_path / "run", "--base-url", server.url, "--vlm-model", "m"))
    assert f"refused the API key in ${KEY_ENV}" in line and "HTTP 401" in line
    assert "sk-test-failfast" not in line
    assert server.requests == [] and not (tmp_path / "run").exists()


def test_a_misspelt_model_is_named_with_the_models_there_are(
    dataset: Path, tmp_path: Path, server: ScriptedServer
) -> None:
    server.models_reply = models("qwen2.5-vl-7b", "qwen2.5-vl-72b")
    line = _one_error_line(
        _refine(dataset, tmp_path / "run", "--base-url", server.url, "--vlm-model", "qwen2.5-vl-7")
    )
    assert "--vlm-model 'qwen2.5-vl-7': " in line and "did you mean 'qwen2.5-vl-7b'?" in line
    assert "(it has: qwen2.5-vl-72b, qwen2.5-vl-7b)" in line
    assert not (tmp_path / "run").exists()


def test_a_pipeline_folder_that_does_not_exist_is_one_line(dataset: Path, tmp_path: Path) -> None:
    pytest.importorskip("diffusers")
    args = ["refine", "--dataset", str(dataset), "--run-dir", str(tmp_path / "run"), "--mode", "i2v"]
    result = runner.invoke(app, [*args, "--generator", "wan2.1-i2v", "--model", "/nonexistent/wan21"])
    line = _one_error_line(result)
    assert "--model '/nonexistent/wan21': no such folder" in line
    folder = tmp_path / "not-a-pipeline"
    folder.mkdir()
    result = runner.invoke(app, [*args, "--generator", "wan2.1-i2v", "--model", str(folder)])
    assert "no model_index.json" in _one_error_line(result)
    assert not (tmp_path / "run").exists()


def _config(dataset: Path, url: str) -> RunConfig:
    return RunConfig(
        dataset=str(dataset),
        fps=8,
        loops=1,
        seeds=2,
        vlm="openai",
        vlm_options={"base_url": url, "model": "m", "api_key_env": KEY_ENV, "max_retries": "0"},
        scenarios=["0001"],
    )


def test_a_backend_lost_mid_run_stops_cleanly_and_the_rerun_resumes(
    dataset: Path, tmp_path: Path, server: ScriptedServer
) -> None:
    server.script = [completion(json.dumps(PREDICTION)), DROP]
    run_dir = tmp_path / "run"
    stopped = run_refinement(_config(dataset, server.url), run_dir)
    assert stopped["status"] == "stopped" and stopped["unfinished"] == [
        "0001_perspective-left_trimmed-tiny-scenario-0"
    ]
    assert stopped["stopped_by"].startswith(f"backend: {server.url}: 3 consecutive connection failures")
    assert len(server.requests) == 1 + 3  # the prediction, then the critique asked three times (node retries)
    assert not list(run_dir.rglob("*.failed.json"))  # an outage is not recorded as a failed critique
    # The backend is back: the rerun resumes at the critique; nothing done before is asked or generated again.
    server.requests.clear()
    server.script = [completion(json.dumps(CRITIQUE))]
    resumed = run_refinement(_config(dataset, server.url), run_dir)
    assert resumed["status"] == "complete"
    titles = [r["response_format"]["json_schema"]["schema"]["title"] for r in server.requests]
    assert titles == ["Critique", "Critique"]
    trace = [json.loads(line) for line in (run_dir / "trace.jsonl").read_text().splitlines()]
    assert len([e for e in trace if e["node"] == "generate" and not e.get("reused")]) == 2
    assert [e["status"] for e in trace if e["node"] == "resume"] == ["resuming after a backend outage"]


def test_refused_credentials_mid_run_are_not_retried(
    dataset: Path, tmp_path: Path, server: ScriptedServer
) -> None:
    server.script = [completion(json.dumps(PREDICTION)), error(401, "key revoked")]
    result = _refine(
        dataset,
        tmp_path / "run",
        "--base-url",
        server.url,
        "--vlm-model",
        "m",
        "--vlm-opt",
        "max_retries=0",
        "--json",
    )
    assert result.exit_code == 1, result.output
    summary = json.loads(result.stdout)
    assert summary["status"] == "stopped" and "credentials refused" in summary["stopped_by"]
    assert len(server.requests) == 2  # the 401 was asked once: no client retry, no node retry


def test_the_gate_counts_consecutive_connection_failures_only() -> None:
    gate = BackendGate(max_failures=3)
    down = VLMUnavailable("down", "connection", "http://h/v1")
    assert not gate.failure(down) and not gate.failure(down)
    gate.success()  # any answer resets the count
    assert not gate.failure(down) and not gate.failure(down) and gate.failure(down)
    assert gate.reason.startswith("backend: http://h/v1: 3 consecutive")
