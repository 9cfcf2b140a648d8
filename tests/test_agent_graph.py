"""The refinement graph: shape snapshot, routers, and nodes driven by a scripted VLM and a fake generator."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from agent.graph import LoopContext, decide_stop
from agent.pool import LocalGeneratorPool
from agent.prompting import PromptSet
from agent.reasoning import VLMReasoner, make_scene
from agent.vlm import VLMS
from generators.base import GeneratedVideo, GenerationError, GenerationRequest
from tests.loop_fixtures import OneScene, loop_context, run_loop

PREDICTION = json.dumps(
    {
        "objects": ["red ball"],
        "physics": "gravity",
        "expected_outcome": "falls",
        "prompt": "A red ball falls.",
    }
)
CRITIQUE_BAD = json.dumps(
    {
        "observations": "the ball floats",
        "expected_physics": "it should fall",
        "violations": [
            {
                "object": "red ball",
                "law": "gravity",
                "severity": "high",
                "when": "generated, t = +0.12 s to +0.75 s",
            }
        ],
        "verdict": "inconsistent",
        "score": 0.2,
        "suggested_changes": ["The red ball falls to the floor."],
    }
)
CRITIQUE_OK = json.dumps(
    {
        "observations": "the ball falls and bounces",
        "expected_physics": "it falls",
        "verdict": "consistent",
        "score": 0.9,
        "violations": [],
        "suggested_changes": [],
    }
)
REWRITE = json.dumps(
    {"reasoning": "be concrete", "prompt": "The red ball falls to the floor and bounces twice."}
)


class FakeGenerator:
    """Frames whose brightness encodes the seed; counts calls."""

    name = "fake"

    def __init__(self) -> None:
        self.calls: list[GenerationRequest] = []

    def generate(self, request: GenerationRequest) -> GeneratedVideo:
        self.calls.append(request)
        frames = np.full(
            (request.num_frames, request.height, request.width, 3), 10 * request.seed + 5, np.uint8
        )
        return GeneratedVideo(frames, request.fps, {"seed": request.seed})


def _deps(
    tmp_path: Path, replies: list[str], loops: int = 3, seeds: int = 2
) -> tuple[LoopContext, FakeGenerator]:
    prefix = np.full((4, 16, 16, 3), 120, np.uint8)
    scene = make_scene("A red ball is dropped.", "v2v", 8.0, 6, prefix)
    vlm = VLMS.resolve("scripted")(replies=replies)
    generator = FakeGenerator()
    reasoner = VLMReasoner(vlm, PromptSet("default"))
    deps = loop_context(reasoner, generator, scene, tmp_path / "scenario", n_seeds=seeds, max_loops=loops)
    return deps, generator


def test_loop_runs_to_convergence_with_scripted_vlm(tmp_path: Path) -> None:
    # predict, 2 critiques (loop 1, inconsistent), rewrite, 2 critiques (loop 2, consistent)
    deps, generator = _deps(tmp_path, [PREDICTION, CRITIQUE_BAD, CRITIQUE_BAD, REWRITE, CRITIQUE_OK])
    final = run_loop(deps)
    assert final["loop_index"] == 2
    assert final["stop_reason"].startswith("converged")
    assert [a["prompt"] for a in final["attempts"]] == ["A red ball falls."] * 2 + [
        "The red ball falls to the floor and bounces twice."
    ] * 2
    assert len(generator.calls) == 4
    assert final["honest"]["loop"] == 2
    assert final["prompt_history"][-1].endswith("bounces twice.")


def test_malformed_reply_is_retried_on_the_node(tmp_path: Path) -> None:
    # The reasoner's one repair turn gets "{still not json"; then the node's retry policy asks afresh.
    replies = [PREDICTION, "{not json", "{still not json", "```json\n" + CRITIQUE_OK + "\n```"]
    deps, _ = _deps(tmp_path, replies, seeds=1)
    final = run_loop(deps)
    (record,) = final["critiques"]
    assert not record["failed"] and record["verdict"] == "consistent"


def test_refusals_become_a_failed_critique_and_the_run_goes_on(tmp_path: Path) -> None:
    deps, _ = _deps(tmp_path, [PREDICTION, "I'm sorry, I can't help with that."], loops=1, seeds=1)
    final = run_loop(deps)
    (record,) = final["critiques"]
    assert record["failed"]
    saved = json.loads(Path(record["path"]).read_text())
    assert saved["failed"] and "I'm sorry" in saved["raw"] and saved["error"].startswith("ReplyParseError")
    assert final["stop_reason"].startswith("max_loops")
    assert final["honest"] == {}  # nothing honest to pick from a failed critique


@pytest.mark.parametrize(
    ("first_replies", "raw"),
    [
        (
            ["{not json", "{still not json", "Sure! The ball falls.", "{}", "{}", "I'm sorry, I can't help."],
            "I'm sorry",
        ),
        (["!error", "!error", "!error"], ""),
    ],
    ids=["malformed-replies", "transport-errors"],
)
def test_a_failed_prediction_falls_back_to_the_description_and_the_run_goes_on(
    tmp_path: Path, first_replies: list[str], raw: str
) -> None:
    # Three predict attempts (the node's retry policy), each with its repair turn for a reply that does not
    # parse, all fail; then the loop runs from the fallback prompt.
    deps, generator = _deps(tmp_path, [*first_replies, CRITIQUE_OK], loops=2, seeds=2)
    final = run_loop(deps)
    fallback = PromptSet("default").render("fallback", description="A red ball is dropped.", mode="v2v")
    assert fallback.startswith("A red ball is dropped.")
    assert final["prompt_history"] == [fallback]
    assert [call.prompt for call in generator.calls] == [fallback, fallback]
    assert final["stop_reason"].startswith("converged")
    assert [c["failed"] for c in final["critiques"]] == [False, False]
    assert final["honest"]["loop"] == 1
    folder = tmp_path / "scenario" / "loop_1"
    record = json.loads((folder / "prediction.failed.json").read_text())
    assert record["failed"] and record["fallback"]["prompt"] == fallback
    assert record["error"].startswith("ReplyParseError" if raw else "VLMError")
    assert record["raw"].startswith(raw) and (raw or record["raw"] == "")
    assert (folder / "prompt.txt").read_text().strip() == fallback
    assert not (folder / "prediction.json").exists()


class FailingGenerator:
    """Raises on every call, like an adapter whose family cannot make the requested clip."""

    name = "failing"

    def __init__(self) -> None:
        self.calls = 0

    def generate(self, request: GenerationRequest) -> GeneratedVideo:
        self.calls += 1
        raise GenerationError(f"failing: cannot make {request.num_frames} frames")


def test_a_loop_whose_generations_all_fail_ends_with_a_recorded_stop_reason(tmp_path: Path) -> None:
    deps, _ = _deps(tmp_path, [PREDICTION, CRITIQUE_OK], loops=3, seeds=2)
    failing = FailingGenerator()
    events: list[dict] = []
    deps = replace(deps, generators=LocalGeneratorPool.of(failing), trace=events.append)
    final = run_loop(deps)
    assert failing.calls == 2  # one loop: nothing to critique or rewrite from, so no second loop
    assert (
        final["stop_reason"] == "failed: all 2 generation(s) of loop 1 failed (failing: cannot make 6 frames)"
    )
    assert [(a["path"], a["error"]) for a in final["attempts"]] == [("", "failing: cannot make 6 frames")] * 2
    assert final["critiques"] == [] and final["honest"] == {}
    assert [e["error"] for e in events if e["node"] == "generate"] == ["failing: cannot make 6 frames"] * 2
    assert not (tmp_path / "scenario" / "attempts").exists() or not any(
        (tmp_path / "scenario" / "attempts").iterdir()
    )


def _ball_frames(xs: list[float]) -> np.ndarray:
    frames = np.full((len(xs), 64, 96, 3), 200, np.uint8)
    for frame, x in zip(frames, xs, strict=True):
        cv2.circle(frame, (round(x), 30), 6, (220, 30, 30), -1)
    return frames


class BallGenerator:
    """The red ball keeps its prefix speed (3 px/frame) with seed 1 and jumps to 9 px/frame with seed 0."""

    name = "ball"

    def generate(self, request: GenerationRequest) -> GeneratedVideo:
        step = 3.0 if request.seed == 1 else 9.0
        x0 = 10 + 3.0 * (len(request.prefix) - 1)
        return GeneratedVideo(_ball_frames([x0 + step * (i + 1) for i in range(request.num_frames)]), 8.0, {})


def test_a_tie_on_the_critique_goes_to_the_continuation_that_keeps_the_prefix_motion(tmp_path: Path) -> None:
    # Both attempts get the same critique; seed order would pick seed 0, the one whose speed jumps.
    scene = make_scene(
        "A red ball rolls right.", "v2v", 8.0, 6, _ball_frames([10 + 3.0 * i for i in range(4)])
    )
    deps, _ = _deps(tmp_path, [PREDICTION, CRITIQUE_OK], loops=1, seeds=2)
    deps = replace(
        deps, scenes=OneScene(scene, tmp_path / "scenario"), generators=LocalGeneratorPool.of(BallGenerator())
    )
    final = run_loop(deps)
    honest = final["honest"]
    assert (honest["loop"], honest["seed"], honest["tied_on_critique"]) == (1, 1, 2)
    gaps = honest["switch_velocity_gap_px_s"]
    assert gaps["loop 1 seed 1"] < 5 < 24 < gaps["loop 1 seed 0"]  # 3 vs 9 px/frame at 8 fps: 0 vs 48 px/s
    assert "smaller velocity jump at the switch frame" in honest["selector"]


def test_generation_is_content_addressed_and_reused(tmp_path: Path) -> None:
    deps, generator = _deps(tmp_path, [PREDICTION, CRITIQUE_OK], seeds=2)
    run_loop(deps)
    deps2, generator2 = _deps(tmp_path, [PREDICTION, CRITIQUE_OK], seeds=2)
    run_loop(deps2)
    assert len(generator.calls) == 2 and generator2.calls == []
    assert len(list((tmp_path / "scenario" / "attempts").glob("*.mp4"))) == 2


def _rec(
    loop: int, score: float, verdict: str = "inconsistent", failed: bool = False, severe: bool = False
) -> dict:
    return dict(
        loop=loop,
        seed=0,
        attempt=f"a{loop}",
        path="p",
        verdict=verdict,
        score=score,
        severe=severe,
        failed=failed,
    )


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        ({"loop_index": 1, "critiques": [_rec(1, 0.3)]}, ""),
        ({"loop_index": 1, "critiques": [_rec(1, 0.9, "consistent")]}, "converged"),
        ({"loop_index": 1, "critiques": [_rec(1, 0.9, "consistent", severe=True)]}, ""),
        ({"loop_index": 3, "critiques": [_rec(3, 0.3)], "loop_scores": [0.2, 0.5]}, "plateau"),
        ({"loop_index": 2, "critiques": [_rec(2, 0.3)], "loop_scores": [0.5]}, ""),
        ({"loop_index": 2, "critiques": [_rec(2, 0.0, failed=True)]}, "failed"),
        ({"loop_index": 4, "critiques": [_rec(4, 0.3)]}, "max_loops"),
    ],
    ids=[
        "go-on",
        "converged",
        "severe-goes-on",
        "plateau",
        "no-plateau-before-loop-3",
        "all-failed",
        "budget",
    ],
)
def test_convergence_router(state: dict, expected: str) -> None:
    reason, _ = decide_stop(state, max_loops=4, plateau=0.01)
    assert reason.split(":")[0] == expected


def test_a_rewrite_sees_every_seed_pooled_and_the_earlier_prompts(tmp_path: Path) -> None:
    other = json.loads(CRITIQUE_BAD)
    other["violations"] = [
        dict(other["violations"][0]),
        {"object": "table", "law": "no appearing", "severity": "low", "when": "generated, t = +2.00 s"},
    ]
    replies = [PREDICTION, CRITIQUE_BAD, json.dumps(other), REWRITE, CRITIQUE_BAD, CRITIQUE_BAD, REWRITE_2]
    deps, _ = _deps(tmp_path, replies, loops=3, seeds=2)
    run_loop(deps)
    vlm = deps.reasoner.vlm  # type: ignore[attr-defined]
    rewrites = [call[0].text for call in vlm.calls if call[0].text.startswith("You improve a prompt")]
    first, second = rewrites
    # Both seeds' critiques, pooled: the gravity problem of both videos first, the table of one video after.
    assert "red ball: gravity (high), in 2 of 2 video(s)" in first
    assert "table: no appearing (low), in 1 of 2 video(s)" in first
    assert first.index("gravity (high)") < first.index("no appearing")
    assert (
        "Earlier prompts" not in first and 'Earlier prompts, oldest first:\n1. "A red ball falls."' in second
    )
    assert "about 30-80 words" in first  # the default generator style


REWRITE_2 = json.dumps(
    {"reasoning": "again", "prompt": "The red ball drops straight to the floor and bounces."}
)


def test_one_consistent_seed_is_not_convergence(tmp_path: Path) -> None:
    deps, _ = _deps(tmp_path, [PREDICTION, CRITIQUE_OK, CRITIQUE_BAD, REWRITE, CRITIQUE_OK], loops=3, seeds=2)
    final = run_loop(deps)
    assert final["loop_index"] == 2 and final["stop_reason"].startswith(
        "converged: all 2 attempt(s) of loop 2"
    )


def test_a_rerun_pays_for_no_reply_it_already_has(tmp_path: Path) -> None:
    replies = [PREDICTION, CRITIQUE_BAD, CRITIQUE_BAD, REWRITE, CRITIQUE_OK]
    deps, _ = _deps(tmp_path, replies)
    first = run_loop(deps)
    # The same scenario again without its checkpoint (a kill after every reply was saved, before the step's
    # checkpoint): predictions, attempts, critiques and rewrites are read back, nothing is asked again.
    again, generator2 = _deps(tmp_path, ["!error"])
    second = run_loop(again)
    assert again.reasoner.vlm.calls == [] and generator2.calls == []  # type: ignore[attr-defined]
    assert second["prompt_history"] == first["prompt_history"] and second["honest"] == first["honest"]


def test_a_rewrite_that_never_parses_keeps_the_prompt_and_ends_the_loop(tmp_path: Path) -> None:
    replies = [PREDICTION, CRITIQUE_BAD, CRITIQUE_BAD, "no json here"]
    deps, generator = _deps(tmp_path, replies, loops=3, seeds=2)
    final = run_loop(deps)
    assert final["stop_reason"].startswith(
        "failed: the rewrite of loop 1 could not be obtained (ReplyParseError"
    )
    assert final["prompt"] == "A red ball falls." and final["loop_index"] == 1 and len(generator.calls) == 2
    assert final["honest"]["loop"] == 1  # the ensemble still picks among what was made
    saved = json.loads((tmp_path / "scenario" / "loop_2" / "rewrite.failed.json").read_text())
    assert saved["raw"] == "no json here"


def test_model_facing_schemas_hold_no_internal_fields_and_no_tuples() -> None:
    from agent.schemas import MODEL_FACING

    for schema in MODEL_FACING:
        text = json.dumps(schema.model_json_schema())
        assert "prefixItems" not in text and '"failed"' not in text and '"error"' not in text, schema.__name__
        required = schema.model_json_schema()["required"]
        reasoning = {"reasoning", "physics", "observations", "expected_physics"} & set(schema.model_fields)
        assert reasoning <= set(required), schema.__name__
