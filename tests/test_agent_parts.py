"""Prompt sets, reply parsing, motion tracking, the physics-prior generator and the offline critic."""

from __future__ import annotations

from pathlib import Path

import cv2
import jinja2
import numpy as np
import pytest

from agent import motion
from agent.minimal_suite import build_minimal_suite
from agent.offline import OfflineReasoner
from agent.prompting import ROLES, PromptSet, PromptSetError
from agent.reasoning import make_scene
from agent.schemas import Critique, Prediction, ReplyParseError, parse_reply
from generators.base import GenerationRequest
from generators.physics_prior import PhysicsPriorGenerator, read_prompt
from physics_iq.video import read_video
from prompts import builtin_sets

VARIABLES = {
    "description": "A red ball rolls.",
    "mode": "v2v",
    "n_images": 4,
    "grounding": "object 1 (red): moving right at 40 px/s",
    "prompt": "A red ball rolls right.",
    "n_prefix_images": 2,
    "n_attempt_images": 4,
    "n_frames": 40,
    "fps": "8",
    "loop_index": 1,
    "violations": [
        {"frames": [0, 3], "object": "red ball", "law": "gravity", "severity": "high", "detail": ""}
    ],
    "suggested_changes": ["The red ball falls."],
    "statements": ["The red ball keeps moving."],
}


@pytest.mark.parametrize("set_name", builtin_sets())
@pytest.mark.parametrize("role", ROLES)
def test_every_template_renders_strictly(set_name: str, role: str) -> None:
    prompts = PromptSet(set_name)
    text = prompts.render(role, **VARIABLES)
    assert text and "{{" not in text
    with pytest.raises(jinja2.UndefinedError):
        prompts.render(role, **{k: v for k, v in VARIABLES.items() if k != "description"})


def test_prompt_sets_by_name_or_path_with_hashes(tmp_path: Path) -> None:
    assert {"default", "minimal"} <= set(builtin_sets())
    record = PromptSet("minimal").record()
    assert record["name"] == "minimal" and set(record["templates"]) == set(ROLES)
    assert record["templates"] != PromptSet("default").record()["templates"]
    with pytest.raises(PromptSetError, match="missing template"):
        PromptSet(tmp_path)
    with pytest.raises(PromptSetError, match="built-in"):
        PromptSet("no-such-set")


@pytest.mark.parametrize(
    ("reply", "ok"),
    [
        ('{"verdict": "consistent", "score": 0.8}', True),
        ('Here you go:\n```json\n{"verdict": "inconsistent", "score": 0.1}\n```', True),
        ('{"verdict": "consistent", "score": 1.7}', False),
        ('{"verdict": "consistent", "score": 0.8', False),
        ("I'm sorry, but I can't assist with that.", False),
    ],
    ids=["valid", "fenced", "out-of-range", "truncated", "refusal"],
)
def test_parse_reply(reply: str, ok: bool) -> None:
    if ok:
        assert isinstance(parse_reply(reply, Critique), Critique)
    else:
        with pytest.raises(ReplyParseError) as info:
            parse_reply(reply, Critique)
        assert info.value.raw == reply


def test_parse_reply_requires_prompt() -> None:
    with pytest.raises(ReplyParseError, match="prompt"):
        parse_reply('{"objects": []}', Prediction)


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_minimal_suite(tmp_path_factory.mktemp("suite"), fps=8, scenarios=["bouncing-ball"]).root


def _prefix(suite: Path) -> np.ndarray:
    files = sorted((suite / "split-videos" / "conditioning-videos" / "8FPS").glob("0001_*.mp4"))
    return read_video(files[0])[0]


def test_tracker_measures_the_suite_ball(suite: Path) -> None:
    prefix = _prefix(suite)
    summary = motion.summarise(prefix, 8.0, reference=motion.detect_objects(prefix[-1])[0])
    (ball,) = summary.objects
    assert ball.colour == "red"
    assert ball.gravity == pytest.approx(260, rel=0.1)  # the suite's gravity
    assert ball.bounces and 0.6 < (ball.restitution or 0) < 1.0  # true restitution 0.8
    assert "object 1 (red)" in summary.grounding_text("prefix")


def test_physics_prior_follows_the_prompt_and_the_seed(suite: Path) -> None:
    prefix = _prefix(suite)
    gen = PhysicsPriorGenerator()

    def final_x(prompt: str, seed: int) -> float:
        req = GenerationRequest(prefix, 8.0, prompt, seed, 8, mode="v2v")
        frames = gen.generate(req).frames
        assert frames.shape == (8, *prefix.shape[1:])
        return motion.detect_objects(frames[-1])[0][0].x

    start = motion.detect_objects(prefix[-1])[0][0].x
    assert final_x("The red ball moves right at 40 px/s.", 0) > start + 20
    assert final_x("The red ball moves left at 40 px/s.", 0) < start - 20
    # unpinned parameters are sampled from the seed: different seeds, different continuations
    assert final_x("A ball.", 0) != final_x("A ball.", 1)
    assert final_x("A ball.", 3) == final_x("A ball.", 3)


def test_read_prompt_parameters() -> None:
    said = read_prompt(
        "The blue ball does not bounce. The red ball stays still. It slows down by 20% every second."
    )
    assert (
        said.restitution == pytest.approx(0.05) and "red" in said.still and said.damping == pytest.approx(0.8)
    )


def test_offline_critic_flags_a_frozen_ball_and_rewrites_concretely(suite: Path) -> None:
    prefix = _prefix(suite)
    scene = make_scene("A red ball is thrown.", "v2v", 8.0, 40, prefix)
    critic = OfflineReasoner(PromptSet("default"))
    prediction = critic.predict(scene)
    assert "red ball" in prediction.prompt and "px/s" not in prediction.prompt  # qualitative first guess
    # A continuation that jumps the ball 20 px away and freezes it there in mid-air.
    frozen = np.repeat(prefix[-1:], 40, axis=0).copy()
    blob = motion.detect_objects(prefix[-1])[0][0]
    background = np.median(prefix, axis=0).astype(np.uint8)
    frozen[:] = background
    for frame in frozen:
        cv2.circle(frame, (int(blob.x), int(blob.y) - 20), 6, (230, 30, 30), -1)
    critique = critic.critique(scene, prediction.prompt, frozen)
    laws = {v.law for v in critique.violations}
    assert critique.verdict == "inconsistent" and "velocity continuity" in laws
    rewrite = critic.rewrite(scene, prediction.prompt, critique, 1)
    assert "px/s" in rewrite.prompt and rewrite.prompt != prediction.prompt
    # a rewrite of the rewrite with the same critique replaces, not duplicates, the sentence
    again = critic.rewrite(scene, rewrite.prompt, critique, 2)
    assert again.prompt == rewrite.prompt
