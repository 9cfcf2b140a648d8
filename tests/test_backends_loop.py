"""One full refinement loop with real backends: a tiny diffusers pipeline loaded from its folder and the
OpenAI-compatible VLM against a scripted local server, driven through ``physrefine refine`` and the Python API.

The synthetic suite's frames are 96x54, which no family accepts (54 is not a multiple of 16), so the
adapters are given a generation size through ``--generator-opt`` (``height``/``width``, or ``max_area`` for
the request's aspect ratio); they generate at that size and resize back to the dataset's 96x54. Random
weights produce noise, so these tests check the plumbing and the files of a run, not quality.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")
pytest.importorskip("ftfy")  # Wan's prompt cleaning

from agent.cli import app  # noqa: E402
from agent.schemas import Critique  # noqa: E402
from physics_iq.layout import DatasetLayout  # noqa: E402
from physics_iq.synthetic import build_suite  # noqa: E402
from physics_iq.video import TEST_SECONDS, probe  # noqa: E402
from tests.openai_server import Reply, ScriptedServer, completion  # noqa: E402
from tests.tiny_models import tiny_folder  # noqa: E402

pytestmark = pytest.mark.models

# A 2-core machine under load runs tiny models ~10x slower with 2 threads than with 1.
torch.set_num_threads(1)

FPS = 8
SIZE = (96, 54)  # (width, height): the synthetic suite's smallest frame
SCENARIO = "0002"  # the centre view of synthetic-ball-bounce
FAKE_KEY = "sk-test-DO-NOT-LEAK-loop-5e1d07aa"
KEY_ENV = "PHYSREFINE_TEST_LOOP_KEY"
runner = CliRunner()


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> DatasetLayout:
    return build_suite(
        tmp_path_factory.mktemp("suite") / "suite",
        scenarios=["synthetic-ball-bounce"],
        fps=FPS,
        size=SIZE,
        jobs=1,
    )


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Tiny pipeline folders, built on first use (shared with the other backend tests of the session)."""

    class _Lazy(dict):  # type: ignore[type-arg]
        def __missing__(self, key: str) -> Path:
            self[key] = tiny_folder(key, tmp_path_factory)
            return self[key]

    return _Lazy()


# -- the scripted VLM: answers by the schema the agent asked for --------------------------------------------
PREDICTION = {
    "objects": ["red ball", "blue ball"],
    "physics": "gravity; the rubber ball bounces, the clay ball does not",
    "expected_outcome": "both fall; the red ball bounces, the blue one stays on the table",
    "prompt": "The grabbers let go; the red ball falls and bounces twice, the blue ball falls and stays flat.",
}
CRITIQUE = {
    "observations": "frame 3: both balls dissolve into noise",
    "expected_physics": "both balls fall under gravity",
    "violations": [
        {
            "when": "generated, t = +0.38 s to +1.38 s",
            "object": "red ball",
            "law": "object permanence",
            "severity": "high",
            "detail": "x",
        }
    ],
    "verdict": "inconsistent",
    "score": 0.25,
    "suggested_changes": ["keep both balls visible while they fall"],
}
REWRITE = {
    "reasoning": "the balls vanished",
    "prompt": "Both balls stay solid and visible: the red ball drops onto the table and bounces twice.",
}
_ANSWERS = {"Prediction": PREDICTION, "Critique": CRITIQUE, "Rewrite": REWRITE}


def schema_title(request: dict[str, Any]) -> str:
    """Which role asked: the title of the JSON schema in ``response_format``."""
    return str(request["response_format"]["json_schema"]["schema"]["title"])


@pytest.fixture
def vlm_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[ScriptedServer]:
    """A local chat-completions server answering each role with valid JSON; a fake key in the environment
    under a variable the run names with ``api_key_env`` (``OPENAI_API_KEY`` unset, so only that one works)."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setenv(KEY_ENV, FAKE_KEY)
    server = ScriptedServer()

    def answer() -> Reply:
        return completion(json.dumps(_ANSWERS[schema_title(server.requests[-1])]))

    server.script = [answer]
    yield server
    server.stop()


# -- helpers -----------------------------------------------------------------------------------------------
def refine_args(suite: DatasetLayout, run_dir: Path, generator: str, model: Path, *extra: str) -> list[str]:
    return [
        "refine", "--dataset", str(suite.root), "--run-dir", str(run_dir), "--fps", str(FPS),
        "--scenarios", SCENARIO, "--generator", generator, "--model", str(model),
        "--generator-opt", "num_inference_steps=2", "--loops", "1", "--seeds", "1", "--json", *extra,
    ]  # fmt: skip


def only_scenario(run_dir: Path) -> Path:
    (folder,) = (run_dir / "scenarios").iterdir()
    return folder


def check_attempt(run_dir: Path, generator: str) -> dict[str, Any]:
    """The attempt video is exactly 5 s at the dataset fps and size; return its generation metadata."""
    (video,) = (only_scenario(run_dir) / "attempts").glob("*.mp4")
    info = probe(video)
    assert (info.fps, info.frame_count) == (FPS, TEST_SECONDS * FPS)
    assert (info.width, info.height) == SIZE
    metadata = json.loads(video.with_suffix(".json").read_text())
    assert metadata["generator"] == generator
    return dict(metadata)


def check_scores(run_dir: Path, summary: dict[str, Any]) -> None:
    scores = json.loads((only_scenario(run_dir) / "scores.json").read_text())
    (row,) = scores["attempts"]
    assert row["physics_iq"] >= 0.0 and row["loop"] == 1
    assert "oracle" in scores["oracle"]["label"]
    for variant in ("loop_1", "final", "honest_ensemble", "oracle", "static"):
        assert isinstance(summary["overall"][variant], float), variant


def all_bytes(folder: Path) -> bytes:
    return b"".join(path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file())


# -- tests ---------------------------------------------------------------------------------------------------
def test_cli_refine_with_wan21_and_openai_vlm(
    suite: DatasetLayout, models: dict[str, Path], vlm_server: ScriptedServer, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    args = refine_args(suite, run_dir, "wan2.1-i2v", models["wan2.1-i2v"], "--mode", "i2v")
    args += ["--generator-opt", "height=32", "--generator-opt", "width=32"]
    args += ["--vlm", "openai", "--vlm-model", "x", "--base-url", vlm_server.url]
    args += ["--vlm-opt", f"api_key_env={KEY_ENV}", "--vlm-opt", "max_tokens=800"]
    args += ["--vlm-opt", "prompt_price=1.0", "--vlm-opt", "completion_price=2.0"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)

    # The generator: loaded from the folder, 81 native frames at 16 fps at 32x32, resampled to 5 s at 8 fps.
    metadata = check_attempt(run_dir, "wan2.1-i2v")
    assert metadata["pipeline"] == "WanImageToVideoPipeline"
    assert metadata["model"] == str(models["wan2.1-i2v"])
    assert (metadata["pipeline_num_frames"], metadata["native_fps"]) == (81, 16.0)
    assert metadata["generation_size"] == [32, 32]
    assert metadata["prompt"] == PREDICTION["prompt"]  # the VLM's prediction reached the generator

    # The VLM: one prediction and one critique, with frames, through the server; the critique parsed.
    titles = [schema_title(request) for request in vlm_server.requests]
    assert titles == ["Prediction", "Critique"]
    critique_request = vlm_server.requests[1]
    assert (critique_request["model"], critique_request["max_tokens"]) == ("x", 800)
    images = [p for p in critique_request["messages"][0]["content"] if p["type"] == "image_url"]
    # What the model fills has no internal bookkeeping, and each image comes after its label.
    schema = json.dumps(critique_request["response_format"]["json_schema"]["schema"])
    assert '"failed"' not in schema and '"error"' not in schema and "prefixItems" not in schema
    parts = critique_request["messages"][0]["content"]
    labels = [parts[i - 1]["text"] for i, p in enumerate(parts) if p["type"] == "image_url"]
    assert labels[0].startswith("switch frame, t = 0 s") and labels[-1] == "generated, t = +5.00 s"
    assert len(images) >= 2 and images[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
    (critique_file,) = (only_scenario(run_dir) / "attempts").glob("*.critique-1.json")
    critique = Critique.model_validate_json(
        critique_file.read_text()
    )  # a critique file, not a failure record
    assert (critique.verdict, critique.score) == ("inconsistent", 0.25)
    assert [v.law for v in critique.violations] == ["object permanence"]
    assert summary["critic_is_neural"] is True and summary["generator_is_neural"] is True
    check_scores(run_dir, summary)

    # The key was used, and nothing the run wrote or printed holds it.
    assert vlm_server.headers[0]["authorization"] == f"Bearer {FAKE_KEY}"
    assert FAKE_KEY.encode() not in all_bytes(run_dir)
    assert FAKE_KEY not in result.output
    trace = [json.loads(line) for line in (run_dir / "trace.jsonl").read_text().splitlines()]
    assert {"predict", "generate", "critique", "score"} <= {event.get("node") for event in trace}
    assert not [e for e in trace if e.get("node") == "generate" and e.get("error")]

    # One vlm_call event per request the server saw, with the server's usage and the run's prices.
    calls = [e for e in trace if e["node"] == "vlm_call"]
    assert [e["schema"] for e in calls] == titles
    for event in calls:
        assert (event["model"], event["turn"]) == ("tiny-test-model", 1)
        assert (event["prompt_tokens"], event["completion_tokens"], event["estimated"]) == (1000, 200, False)
        assert event["cost_usd"] == pytest.approx((1000 * 1.0 + 200 * 2.0) / 1e6)
    assert calls[1]["images"] == len(images) and calls[0]["images"] >= 1
    # ... each attributed to the scenario that made it (one scenario here: its take-1 ID).
    assert {e["take1_id"] for e in calls} == {int(only_scenario(run_dir).name[:4])}
    assert summary["usage"]["calls"] == len(calls) and summary["usage"]["tokens"] == 1200 * len(calls)


def test_cli_refine_v2v_family_with_offline_critic(
    suite: DatasetLayout, models: dict[str, Path], tmp_path: Path
) -> None:
    # LTX continues the 3 s conditioning clip (v2v), generating at the dataset's aspect ratio (max_area).
    run_dir = tmp_path / "run"
    args = refine_args(suite, run_dir, "ltx-condition", models["ltx-condition"], "--mode", "v2v")
    args += ["--generator-opt", "max_area=4096", "--generator-opt", "max_prefix_frames=9"]
    result = runner.invoke(app, [*args, "--dtype", "float32", "--device", "cpu", "--vlm", "offline"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    options = json.loads((run_dir / "config.json").read_text())["generator_options"]
    assert options["dtype"] == "float32" and "device" not in options  # where it runs is not what it computes
    assert json.loads((run_dir / "limits.json").read_text())["devices"] == ["cpu"]
    metadata = check_attempt(run_dir, "ltx-condition")
    # 54x96 scaled to at most 4096 pixels, floored to multiples of 32 (LTXConditionPipeline demands 32).
    assert metadata["generation_size"] == [32, 32 * 2]
    assert metadata["dropped_conditioning_frames"] == 9  # the prefix clip, re-decoded, is dropped
    assert metadata["native_fps"] == 24.0
    (critique_file,) = (only_scenario(run_dir) / "attempts").glob("*.critique-1.json")
    Critique.model_validate_json(critique_file.read_text())
    assert summary["critic_is_neural"] is False
    check_scores(run_dir, summary)


@pytest.mark.parametrize(
    ("generator", "folder", "mode", "options"),
    [
        pytest.param(
            "wan2.2-i2v-a14b", "wan2.2-i2v-a14b", "i2v", ["height=16", "width=16"], id="wan2.2-a14b"
        ),
        pytest.param("wan2.2-ti2v-5b", "wan2.2-ti2v-5b", "i2v", ["height=32", "width=32"], id="wan2.2-5b"),
        pytest.param(
            "wan-vace", "wan-vace", "v2v", ["height=16", "width=16", "max_prefix_frames=5"], id="wan-vace"
        ),
        pytest.param(
            "cogvideox-i2v",
            "cogvideox1.5-i2v",
            "i2v",
            ["height=16", "width=32", "max_sequence_length=16"],
            id="cogvideox-1.5",
        ),
        # native_fps=4: 21 frames instead of 36 through the UNet (keeps the test fast; covers the option).
        pytest.param("svd", "svd", "i2v", ["height=32", "width=32", "native_fps=4"], id="svd"),
        pytest.param(
            "diffusers-i2v",
            "wan2.2-i2v-a14b",
            "i2v",
            ["height=16", "width=16"],
            id="generic-on-wan2.2",
        ),
    ],
)
def test_every_family_runs_a_loop_from_the_cli(
    suite: DatasetLayout,
    models: dict[str, Path],
    tmp_path: Path,
    generator: str,
    folder: str,
    mode: str,
    options: list[str],
) -> None:
    run_dir = tmp_path / "run"
    args = refine_args(suite, run_dir, generator, models[folder], "--mode", mode, "--no-score")
    for option in options:
        args += ["--generator-opt", option]
    result = runner.invoke(app, [*args, "--vlm", "offline"])
    assert result.exit_code == 0, result.output
    check_attempt(run_dir, generator)


def test_python_api_two_loops_with_rewrite(
    suite: DatasetLayout, models: dict[str, Path], vlm_server: ScriptedServer, tmp_path: Path
) -> None:
    from agent.refine import run_refinement
    from agent.runs import RunConfig

    config = RunConfig(
        dataset=str(suite.root),
        fps=FPS,
        mode="i2v",
        generator="wan2.2-i2v-a14b",
        generator_options={
            "model": str(models["wan2.2-i2v-a14b"]),
            "height": "16",
            "width": "16",
            "num_inference_steps": "2",
        },
        vlm="openai",
        vlm_options={"model": "x", "base_url": vlm_server.url, "max_frames": "2", "api_key_env": KEY_ENV},
        loops=2,
        seeds=1,
        scenarios=[SCENARIO],
    )
    summary = run_refinement(config, tmp_path / "run")
    titles = [schema_title(request) for request in vlm_server.requests]
    assert titles == ["Prediction", "Critique", "Rewrite", "Critique"]
    (entry,) = summary["scenarios"]
    assert entry["loops"] == 2 and entry["attempts"] == 2
    assert entry["final_prompt"] == REWRITE["prompt"]
    prompts = sorted(
        json.loads(p.read_text())["prompt"]
        for p in (only_scenario(tmp_path / "run") / "attempts").glob("*.json")
        if "critique" not in p.name
    )
    assert prompts == sorted([PREDICTION["prompt"], REWRITE["prompt"]])
    assert FAKE_KEY.encode() not in all_bytes(tmp_path / "run")
    trace = [json.loads(line) for line in (tmp_path / "run" / "trace.jsonl").read_text().splitlines()]
    calls = [e for e in trace if e["node"] == "vlm_call"]
    assert [e["schema"] for e in calls] == titles  # one event per request, in order
    assert all(
        (e["prompt_tokens"], e["completion_tokens"], e["cost_usd"]) == (1000, 200, None) for e in calls
    )


def test_a_size_the_family_rejects_fails_before_the_run_starts(
    suite: DatasetLayout, models: dict[str, Path], tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    args = refine_args(suite, run_dir, "wan2.1-i2v", models["wan2.1-i2v"], "--mode", "i2v")
    # The dataset's own size: 54 is not a multiple of 16, and the pipeline would silently snap it.
    args += ["--generator-opt", "height=54", "--generator-opt", "width=96", "--vlm", "offline"]
    result = runner.invoke(app, args)
    assert result.exit_code == 2  # a user error: one line, no traceback
    assert "height=54, width=96 must be positive multiples of 16" in result.stderr
    assert "Traceback" not in result.output
    assert not run_dir.exists()


def test_a_clip_the_checkpoint_cannot_make_is_recorded_and_the_run_ends_cleanly(
    suite: DatasetLayout, models: dict[str, Path], tmp_path: Path
) -> None:
    # The tiny CogVideoX 1.0 layout generates 9 frames at 8 fps; 5 s needs 41. That is known only per request,
    # so it is a generation error recorded on each attempt, and the loop stops with the reason.
    run_dir = tmp_path / "run"
    args = refine_args(suite, run_dir, "cogvideox-i2v", models["cogvideox-i2v"], "--mode", "i2v")
    result = runner.invoke(app, [*args, "--generator-opt", "max_sequence_length=16", "--vlm", "offline"])
    assert result.exit_code == 1, result.output  # a scenario without any successful generation: not a success
    summary = json.loads(result.stdout)
    assert summary["status"] == "failed" and summary["failed_generations"] >= 1
    assert "generation(s) failed" in result.stderr and "run failed" in result.stderr
    (entry,) = summary["scenarios"]
    message = "more than the 9 this CogVideoX 1.0 checkpoint generates"
    assert entry["stop_reason"].startswith("failed: all") and message in entry["stop_reason"]
    assert entry["attempts"] == 0 and entry["failed_generations"] >= 1
    events = [json.loads(line) for line in (run_dir / "trace.jsonl").read_text().splitlines()]
    assert all(message in e["error"] for e in events if e["node"] == "generate")


def test_a_secret_on_the_command_line_is_refused_and_not_written(
    suite: DatasetLayout, models: dict[str, Path], tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    args = refine_args(suite, run_dir, "wan2.1-i2v", models["wan2.1-i2v"], "--mode", "i2v")
    result = runner.invoke(app, [*args, "--vlm", "openai", "--vlm-opt", f"api_key={FAKE_KEY}"])
    message = " ".join(result.output.replace("│", " ").split())  # unwrap rich's error box
    assert result.exit_code != 0 and "'api_key' looks like a secret" in message
    assert not run_dir.exists()


def test_refine_help_lists_every_registered_backend() -> None:
    from agent.vlm import VLMS
    from generators import GENERATORS

    result = runner.invoke(app, ["refine", "--help"], terminal_width=400)
    assert result.exit_code == 0
    text = " ".join(result.output.split())
    for name in [*GENERATORS.describe(), *VLMS.describe(), "offline"]:
        assert name in text, name
