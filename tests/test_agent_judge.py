"""``--selector judge``: the pairwise VLM tournament as the honest ensemble pick (scripted and fake VLMs)."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from agent.prompting import PromptSet
from agent.reasoning import VLMReasoner, make_scene
from agent.refine import run_refinement
from agent.runs import RunConfig, RunConfigError
from agent.vlm.base import Message, VLMError, VLMReply
from agent.vlm.scripted import ScriptedVLM
from generators.base import GeneratedVideo, GenerationRequest
from tests import replies
from tests.datasets import build_tiny_dataset
from tests.loop_fixtures import loop_context, run_loop

PREDICTION = json.dumps(replies.prediction())
CRITIQUE_OK = json.dumps(replies.critique())


class SeedBrightnessGenerator:
    """Frames whose brightness encodes the seed (seed k -> 10 k + 5)."""

    name = "fake"

    def generate(self, request: GenerationRequest) -> GeneratedVideo:
        value = 10 * request.seed + 5
        frames = np.full((request.num_frames, request.height, request.width, 3), value, np.uint8)
        return GeneratedVideo(frames, request.fps, {"seed": request.seed})


class JudgeVLM:
    """Scripted for predict/critique; for the judge prompt it answers by ``rule`` over the shown images."""

    name = "judge-fake"

    def __init__(self, rule: str) -> None:
        self.rule = rule
        self.scripted = ScriptedVLM([PREDICTION, CRITIQUE_OK])
        self.judge_calls = 0

    def chat(self, messages: Sequence[Message], *, json_schema: Mapping[str, Any] | None = None) -> VLMReply:
        (message,) = messages
        if not message.text.startswith("Two generated continuations"):
            return self.scripted.chat(messages, json_schema=json_schema)
        self.judge_calls += 1
        if self.rule == "error":
            raise VLMError("judge backend down")
        # The images come labelled: real frames first, then "A, generated, ..." and "B, generated, ...".
        shown = list(zip(message.labels, message.images, strict=True))
        a = float(np.mean([im.mean() for label, im in shown if label.startswith("A,")]))
        b = float(np.mean([im.mean() for label, im in shown if label.startswith("B,")]))
        winner = {"brighter": "A" if a > b else "B", "always-a": "A"}[self.rule]
        return VLMReply(json.dumps({"reasoning": f"A {a:.0f} vs B {b:.0f}", "winner": winner}), "fake")


def _run(
    tmp_path: Path, rule: str, selector: str = "judge", seeds: int = 3
) -> tuple[dict[str, Any], JudgeVLM]:
    prefix = np.full((4, 16, 16, 3), 120, np.uint8)
    scene = make_scene("A red ball is dropped.", "v2v", 8.0, 6, prefix)
    vlm = JudgeVLM(rule)
    reasoner = VLMReasoner(vlm, PromptSet("default"))
    context = loop_context(
        reasoner,
        SeedBrightnessGenerator(),
        scene,
        tmp_path / "scenario",
        n_seeds=seeds,
        max_loops=1,
        selector=selector,
    )
    return run_loop(context), vlm


def test_judge_overrides_a_critic_tie(tmp_path: Path) -> None:
    critic, _ = _run(tmp_path / "critic", "brighter", selector="critic")
    assert critic["honest"]["seed"] == 0  # all critiques tie: the critic's tie-break takes the lowest seed
    final, vlm = _run(tmp_path / "judge", "brighter")
    assert final["honest"]["seed"] == 2  # the judge prefers the brightest clip, in both orders
    assert "pairwise VLM judge" in final["honest"]["selector"]
    assert len(final["honest"]["bouts"]) == 2 and vlm.judge_calls == 4  # 2 bouts x both orders
    saved = sorted(p.name for p in (tmp_path / "judge" / "scenario" / "judge").glob("*.json"))
    assert len(saved) == 4  # every ordered bout on disk, for resume and audit


def test_position_biased_judge_changes_nothing(tmp_path: Path) -> None:
    final, _ = _run(tmp_path, "always-a")
    assert final["honest"]["seed"] == 0
    assert all(b["votes"] == ["A", "A"] for b in final["honest"]["bouts"])


def test_failing_judge_falls_back_to_the_critic_and_says_so(tmp_path: Path) -> None:
    final, vlm = _run(tmp_path, "error")
    assert final["honest"]["seed"] == 0 and "judge failed (VLMError" in final["honest"]["selector"]
    assert vlm.judge_calls == 3  # the node's retry policy: three attempts


def test_judge_needs_a_vlm(tmp_path: Path) -> None:
    layout = build_tiny_dataset(tmp_path / "data", n_scenarios=1)
    config = RunConfig(dataset=str(layout.root), fps=8, selector="judge")  # offline critic: cannot judge
    with pytest.raises(RunConfigError, match=r"selector 'judge' compares attempts pairwise"):
        run_refinement(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()  # refused before the run directory is created
