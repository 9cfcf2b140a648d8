"""Prompt sets, reply parsing, motion tracking, the physics-prior generator and the offline critic."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import cv2
import jinja2
import numpy as np
import pytest

from agent.offline import OfflineReasoner
from agent.prompting import ROLES, PromptSet, PromptSetError
from agent.reasoning import RewriteContext, make_scene
from agent.schemas import Critique, Prediction, ReplyParseError, parse_reply
from generators.base import GenerationRequest
from generators.physics_prior import PhysicsPriorGenerator, SimBody, WorldParams, read_prompt, simulate
from physics_iq import motion
from physics_iq.layout import DatasetLayout, Row
from physics_iq.synthetic import build_suite
from physics_iq.video import read_video
from prompts import builtin_sets
from tests import replies

VARIABLES = {
    "description": "A red ball rolls.",
    "mode": "v2v",
    "n_images": 4,
    "labels": ["prefix, t = -0.25 s", "switch frame, t = 0 s", "generated, t = +0.12 s"],
    "grounding": "object 1 (red): moving right at 40 px/s",
    "signals": ["Motion continuity across the switch frame: the moving region keeps its speed."],
    "prompt": "A red ball rolls right.",
    "current_negative_prompt": "",
    "n_frames": 40,
    "seconds": "5",
    "fps": "8",
    "loop_index": 2,
    "history": ["A red ball."],
    "attempts": 2,
    "critiqued": 2,
    "observations": ["the ball floats", "the ball rolls"],
    "violations": [
        {
            "object": "red ball",
            "law": "gravity",
            "severity": "high",
            "count": 2,
            "when": ["generated, t = +0.12 s"],
            "details": ["it floats"],
        }
    ],
    "suggested_changes": ["The red ball falls."],
    "statements": ["The red ball keeps moving."],
    "schema": "Critique",
    "error": "score: Input should be less than or equal to 1",
    "words_min": 30,
    "words_max": 80,
    "negative_prompt": True,
    "model_note": "",
}
#: The variable whose absence each role must refuse (``repair`` is about the reply, not the scene).
REQUIRED = {"repair": "error"}


@pytest.mark.parametrize("set_name", builtin_sets())
@pytest.mark.parametrize("role", ROLES)
def test_every_template_renders_strictly(set_name: str, role: str) -> None:
    prompts = PromptSet(set_name)
    text = prompts.render(role, **VARIABLES)
    assert text and "{{" not in text
    required = REQUIRED.get(role, "description")
    with pytest.raises(jinja2.UndefinedError):
        prompts.render(role, **{k: v for k, v in VARIABLES.items() if k != required})


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
        (json.dumps(replies.critique(score=0.8)), True),
        ("Here you go:\n```json\n" + json.dumps(replies.critique(verdict="inconsistent")) + "\n```", True),
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
def suite(tmp_path_factory: pytest.TempPathFactory) -> DatasetLayout:
    """A small synthetic suite (two scenarios, three cameras) at 8 FPS and the default size."""
    return build_suite(
        tmp_path_factory.mktemp("suite"),
        scenarios=["synthetic-ball-bounce", "synthetic-two-ball-collision"],
        fps=8,
        jobs=1,
    )


def _row(suite: DatasetLayout, scenario: str) -> Row:
    return next(
        r for r in suite.take1_rows() if r.scenario == scenario and r.perspective == "perspective-center"
    )


def _prefix(suite: DatasetLayout, scenario: str = "synthetic-two-ball-collision") -> np.ndarray:
    return read_video(suite.conditioning_video(_row(suite, scenario), 8))[0]


def _state_velocity(suite: DatasetLayout, row: Row, obj: str) -> float:
    path = suite.conditioning_video(row, 8).with_suffix(".state.json")
    last = json.loads(path.read_text())["frames"][-1]
    return float(next(o for o in last["objects"] if o["id"] == obj)["velocity_px_s"][0])


#: Words a person would not write in a critique or a prompt: measurement units and the old private phrases.
PRIVATE = ("px/s", "px", "% of its", "impact speed", "vx=", "vy=", "object 1")


def _perceived(prefix: np.ndarray, description: str) -> motion.Perception:
    return motion.perceive(prefix, description, 8.0)


def test_tracker_measures_the_pushed_ball(suite: DatasetLayout) -> None:
    # Ground truth from the suite's state file (tests may read it; the agent never does).
    row = _row(suite, "synthetic-two-ball-collision")
    prefix = _prefix(suite)
    perception = _perceived(prefix, row.description)
    names = {b.name: b for b in perception.objects}
    assert {"the red ball", "the blue ball"} <= set(names)
    assert names["the red ball"].moving and not names["the blue ball"].moving
    from generators.physics_prior import prefix_velocities

    velocity = prefix_velocities(prefix, perception, 8.0)
    red = perception.objects.index(names["the red ball"])
    assert velocity[red][0] == pytest.approx(_state_velocity(suite, row, "ball-red"), rel=0.15)


def test_tracker_sees_the_rubber_ball_bounce_higher(suite: DatasetLayout) -> None:
    row = _row(suite, "synthetic-ball-bounce")
    testing, _ = read_video(suite.testing_video(row, 8))
    first = motion.perceive(testing[:1], row.description)
    summary = motion.summarise(testing, 8.0, first.objects, first.labels, first.background, first.floor_y)
    by_colour = {m.colour: m for m in summary.objects}
    red, blue = by_colour["red"], by_colour["blue"]
    assert len(red.bounces) > len(blue.bounces) >= 1
    assert (red.restitution or 0) > (blue.restitution or 0) + 0.3  # rubber vs clay-like


def _red_x(frames: np.ndarray, description: str) -> float:
    blobs = motion.detect_objects(frames[-1], description)[0]
    return next(b.x for b in blobs if b.colour == "red")


def test_physics_prior_follows_ordinary_language_and_the_seed(suite: DatasetLayout) -> None:
    prefix = _prefix(suite, "synthetic-ball-bounce")  # both balls held still above the table
    gen = PhysicsPriorGenerator()
    scene = "A red ball and a blue ball hang above a wooden table."

    def last(prompt: str, seed: int) -> np.ndarray:
        req = GenerationRequest(prefix, 8.0, f"{scene} {prompt}", seed, 8, mode="v2v")
        frames = gen.generate(req).frames
        assert frames.shape == (8, *prefix.shape[1:])
        return frames

    start = _red_x(prefix, scene)
    start_y = next(b.y for b in motion.detect_objects(prefix[-1], scene)[0] if b.colour == "red")
    assert _red_x(last("The red ball rolls to the right, slows down and stops.", 0), scene) > start + 10
    assert _red_x(last("The red ball moves quickly to the left.", 0), scene) < start - 10
    fallen = last("The red ball falls straight down.", 0)
    assert next(b.y for b in motion.detect_objects(fallen[-1], scene)[0] if b.colour == "red") > start_y + 20
    # unpinned parameters are sampled from the seed: different seeds, different continuations
    a, b = last("The red ball falls straight down.", 0), last("The red ball falls straight down.", 1)
    assert not np.array_equal(a, b)
    assert np.array_equal(last("The red ball falls.", 3), last("The red ball falls.", 3))
    # an object at rest in the air stays put unless the prompt lets it go
    assert _red_x(last("Nothing happens.", 0), scene) == pytest.approx(start, abs=1)


def test_physics_prior_leaves_what_is_neither_named_nor_moving_alone(suite: DatasetLayout) -> None:
    prefix = _prefix(suite, "synthetic-ball-bounce")
    request = GenerationRequest(prefix, 8.0, "A red ball is let go and falls.", 0, 16, mode="v2v")
    frames = PhysicsPriorGenerator().generate(request).frames
    blue = next(b for b in motion.detect_objects(prefix[-1], "A blue ball.")[0] if b.colour == "blue")
    x0, y0, w, h = blue.bbox
    patch = (slice(y0, y0 + h), slice(x0, x0 + w))
    # The blue ball is not named in the prompt and did not move in the prefix: it stays where it is (the
    # generated background is the prefix's median, so its pixels match up to the sensor noise).
    assert all(np.array_equal(frame[patch], frames[0][patch]) for frame in frames)
    assert np.abs(frames[0][patch].astype(int) - prefix[-1][patch].astype(int)).mean() < 3


def test_physics_prior_reads_structured_expectations_from_the_context(suite: DatasetLayout) -> None:
    prefix = _prefix(suite, "synthetic-ball-bounce")
    scene = "A red ball and a blue ball hang above a wooden table."
    red = next(b for b in motion.detect_objects(prefix[-1], scene)[0] if b.colour == "red")
    height, width = prefix.shape[1:3]
    hint = {
        "object": "the red ball", "x": red.x / width, "y": red.y / height, "motion": "rolling",
        "direction": "left", "speed": "fast", "bounce": "none", "friction": "low",
        "lands_at": None, "stops_at": None,
    }  # fmt: skip
    request = GenerationRequest(prefix, 8.0, scene, 0, 8, mode="v2v", context={"expectations": [hint]})
    frames = PhysicsPriorGenerator().generate(request).frames
    assert _red_x(frames, scene) < red.x - 20  # the words say nothing; the numbers send it left


def test_offline_predict_reads_a_release_from_the_description(suite: DatasetLayout) -> None:
    prefix = _prefix(suite, "synthetic-ball-bounce")
    critic = OfflineReasoner(PromptSet("default"))
    released = critic.predict(
        make_scene("A red rubber ball and a blue clay ball hang from grabbers. The grabbers let go of both "
                   "balls.", "v2v", 8.0, 40, prefix)
    )  # fmt: skip
    held = critic.predict(
        make_scene("A red ball and a blue ball hang from grabbers.", "v2v", 8.0, 40, prefix)
    )
    assert "The red ball is let go and falls straight down onto the floor." in released.prompt
    assert "It bounces a few times, each bounce lower." in released.prompt  # rubber
    assert "It does not bounce." in released.prompt  # clay
    assert "falls" not in held.prompt.split("grabbers.")[-1]
    assert {e.object for e in released.expectations} == {"the red ball", "the blue ball"}
    assert all(e.motion == "falling" and e.lands_at is not None for e in released.expectations)


def test_read_prompt_ordinary_language() -> None:
    ball = motion.Blob(50, 50, 200, "grey", (42, 42, 16, 16), 1, "round", "ball", "the grey ball")
    block = motion.Blob(90, 50, 200, "orange", (82, 42, 16, 16), 2, "box", "block", "the orange block")
    said = read_prompt(
        "The ball rolls to the right, slows down and stops. It bounces a few times, each bounce lower. "
        "The orange block falls straight down and does not bounce.",
        [ball, block],
    )
    rolls, falls = said.objects[0], said.objects[1]
    assert rolls.moves and rolls.heading == "right" and rolls.keep is not None and rolls.keep < 1
    assert rolls.bounce is not None and rolls.bounce > 0.5
    assert falls.falls and falls.bounce is not None and falls.bounce < 0.1
    still = read_prompt("The grey ball stays where it is until something hits it.", [ball]).objects[0]
    assert still.free and not still.still


def test_offline_critic_writes_ordinary_language_and_rewrites_in_place(suite: DatasetLayout) -> None:
    row = _row(suite, "synthetic-two-ball-collision")
    prefix = _prefix(suite)  # the red ball is pushed to the right
    scene = make_scene(row.description, "v2v", 8.0, 40, prefix)
    critic = OfflineReasoner(PromptSet("default"))
    prediction = critic.predict(scene)
    assert "The red ball keeps rolling to the right." in prediction.prompt
    # A continuation in which the rolling ball stops dead at the switch frame.
    perception = _perceived(prefix, row.description)
    red = next(b for b in perception.objects if b.colour == "red")
    frozen = np.repeat(perception.background[None], 40, axis=0).copy()
    for frame in frozen:
        cv2.circle(frame, (round(red.x), round(red.y)), round(red.radius), (230, 30, 30), -1)
    critique = critic.critique(scene, prediction.prompt, frozen)
    assert critique.verdict == "inconsistent" and "velocity continuity" in {
        v.law for v in critique.violations
    }
    texts = [critique.observations, critique.expected_physics, *critique.suggested_changes]
    texts += [v.detail for v in critique.violations]
    for text in texts:
        assert not any(word in text for word in PRIVATE), text
        assert text[:1].isupper() and text.endswith("."), text
    assert any(v.detail.startswith("Right after the switch frame the red ball ") for v in critique.violations)
    assert "The red ball keeps rolling to the right at the same speed it had." in critique.suggested_changes
    rewrite = critic.rewrite(scene, RewriteContext(1, prediction.prompt, critiques=(critique,)))
    assert rewrite.prompt != prediction.prompt and "at the same speed it had" in rewrite.prompt
    assert "The red ball keeps rolling to the right." not in rewrite.prompt  # replaced, not added
    # a rewrite of the rewrite with the same critique changes nothing more
    again = critic.rewrite(scene, RewriteContext(2, rewrite.prompt, critiques=(critique,)))
    assert again.prompt == rewrite.prompt


def _table_clip(xs: list[float], draw: Callable[[np.ndarray, int], object], seed: int = 0) -> np.ndarray:
    """A brown table top in front of a beige wall, ``draw(frame, x)`` adding what is at ``x`` in each frame."""
    rng = np.random.default_rng(seed)
    frames = []
    for x in xs:
        frame = np.full((180, 320, 3), (200, 190, 170), np.uint8)
        frame[140:] = (120, 90, 60)
        draw(frame, round(x))
        frames.append(np.clip(frame + rng.normal(0, 1.0, frame.shape), 0, 255).astype(np.uint8))
    return np.stack(frames)


def _rolling_clip(xs: list[float], seed: int = 0) -> np.ndarray:
    """A white ball rolling along the table, at the given centres."""
    return _table_clip(xs, lambda frame, x: cv2.circle(frame, (x, 131), 8, (235, 235, 235), -1), seed)


def test_offline_critic_says_when_a_rolling_ball_slows_down_too_fast() -> None:
    # Rolling resistance takes little speed from a ball on a table: losing 70% a second is not rolling.
    fps, speed = 8.0, 40.0
    prefix = _rolling_clip([30 + speed * t / fps for t in range(12)])
    x0 = 30 + speed * 11 / fps
    description = "A white ball rolls to the right along a wooden table in front of a beige wall."
    scene = make_scene(description, "v2v", fps, 40, prefix)
    critic = OfflineReasoner(PromptSet("default"))
    prediction = critic.predict(scene)
    assert "The white ball keeps rolling to the right." in prediction.prompt
    keep = 0.3  # speed kept per second
    braking = _rolling_clip(
        [x0 + speed * (keep ** (k / fps) - 1) / math.log(keep) for k in range(1, 41)], seed=1
    )
    steady = _rolling_clip([x0 + 0.95 * speed * k / fps for k in range(1, 41)], seed=1)
    slowed = critic.critique(scene, prediction.prompt, braking)
    assert "The white ball slows down much faster than a rolling ball does." in [
        v.detail for v in slowed.violations
    ]
    assert "The white ball slows down gradually." in slowed.suggested_changes
    fine = critic.critique(scene, prediction.prompt, steady)
    assert "friction" not in {v.law for v in fine.violations}
    assert fine.score > slowed.score
    # The rewrite adds the sentence and keeps the one about where the ball goes (another aspect).
    rewrite = critic.rewrite(scene, RewriteContext(1, prediction.prompt, critiques=(slowed,)))
    assert "The white ball slows down gradually." in rewrite.prompt
    assert "The white ball keeps rolling to the right" in rewrite.prompt


def _ball_clip(points: list[tuple[float, float]], seed: int = 0) -> np.ndarray:
    """A white ball at the given centres over a beige wall and a brown table top (row 140 down)."""
    rng = np.random.default_rng(seed)
    frames = []
    for x, y in points:
        frame = np.full((180, 320, 3), (200, 190, 170), np.uint8)
        frame[140:] = (120, 90, 60)
        cv2.circle(frame, (round(x), round(y)), 8, (235, 235, 235), -1)
        frames.append(np.clip(frame + rng.normal(0, 1.0, frame.shape), 0, 255).astype(np.uint8))
    return np.stack(frames)


def test_offline_critic_lets_a_ball_leaving_an_edge_fall() -> None:
    # Off an edge gravity takes the vertical at once: only the horizontal speed has to carry on.
    fps, vx = 8.0, 60.0
    prefix = _ball_clip([(30 + vx * t / fps, 60.0) for t in range(12)])
    x0 = 30 + vx * 11 / fps
    scene = make_scene("A white ball rolls to the right off a ledge.", "v2v", fps, 40, prefix)
    critic = OfflineReasoner(PromptSet("default"))
    prediction = critic.predict(scene)
    assert "The white ball keeps rolling to the right and falls." in prediction.prompt
    g = 400.0  # px/s²: lands on the table (centre at row 131) after about 0.6 s

    def falling(speed: float) -> list[tuple[float, float]]:
        return [(x0 + speed * t, min(131.0, 60.0 + 0.5 * g * t * t)) for t in (k / fps for k in range(1, 41))]

    falls = critic.critique(scene, prediction.prompt, _ball_clip(falling(vx), seed=1))
    assert "velocity continuity" not in {v.law for v in falls.violations}
    slowed = critic.critique(scene, prediction.prompt, _ball_clip(falling(0.4 * vx), seed=1))
    assert "velocity continuity" in {v.law for v in slowed.violations}


def test_offline_critic_tells_a_ball_leaving_the_picture_from_one_that_vanishes() -> None:
    # A fast ball last seen 36 px from the right edge, one step from leaving it, is leaving the picture (the
    # tracker loses a ball half out of view); one lost in the middle of the frame vanished.
    fps, speed = 8.0, 290.0
    prefix = _rolling_clip([100 + speed * t / fps for t in range(-11, 1)])
    scene = make_scene("A white ball rolls to the right along a wooden table.", "v2v", fps, 40, prefix)
    critic = OfflineReasoner(PromptSet("default"))
    prediction = critic.predict(scene)
    leaving = critic.critique(
        scene, prediction.prompt, _rolling_clip([100 + speed * k / fps for k in range(1, 41)], seed=1)
    )
    assert "no vanishing" not in {v.law for v in leaving.violations}
    gone = [100 + speed * k / fps if k < 3 else -100.0 for k in range(1, 41)]  # gone after frame 2
    vanished = critic.critique(scene, prediction.prompt, _rolling_clip(gone, seed=1))
    assert "no vanishing" in {v.law for v in vanished.violations}


def test_offline_critic_says_when_a_pushed_ball_does_not_go() -> None:
    frame = _rolling_clip([80.0])
    description = "A white ball rests on a wooden table. A cue stick pushes the white ball to the right."
    scene = make_scene(description, "i2v", 8.0, 40, frame)
    critic = OfflineReasoner(PromptSet("default"))
    prediction = critic.predict(scene)
    assert "The white ball is pushed and rolls to the right." in prediction.prompt
    still = critic.critique(scene, prediction.prompt, _rolling_clip([80.0] * 40, seed=1))
    assert "a push sets it moving" in {v.law for v in still.violations}
    assert "The white ball is pushed and rolls to the right without stopping." in still.suggested_changes
    rolls = critic.critique(
        scene, prediction.prompt, _rolling_clip([80 + 4.0 * k for k in range(1, 41)], seed=1)
    )
    assert "a push sets it moving" not in {v.law for v in rolls.violations}


def test_offline_critic_says_when_a_ball_stops_in_mid_air(suite: DatasetLayout) -> None:
    row = _row(suite, "synthetic-ball-bounce")
    prefix = _prefix(suite, "synthetic-ball-bounce")
    scene = make_scene(row.description, "v2v", 8.0, 40, prefix)
    critic = OfflineReasoner(PromptSet("default"))
    perception = critic.view(scene).perception
    red = next(b for b in perception.objects if b.colour == "red")
    clip = np.repeat(prefix[-1:], 40, axis=0).copy()
    for k, frame in enumerate(clip):  # falls for 1 s, then hangs in the air
        frame[:] = perception.background
        blue = next(b for b in perception.objects if b.colour == "blue")
        cv2.circle(frame, (round(blue.x), round(blue.y)), round(blue.radius), (40, 80, 235), -1)
        y = red.y + 30 * min(k + 1, 8) / 8
        cv2.circle(frame, (round(red.x), round(y)), round(red.radius), (230, 40, 40), -1)
    critique = critic.critique(scene, "", clip)
    details = [v.detail for v in critique.violations if v.object == "the red ball"]
    assert any(
        d.startswith("The red ball stops in mid-air at about")
        and d.endswith("instead of falling to the table.")
        for d in details
    ), details
    assert "The red ball keeps falling until it reaches the table." in critique.suggested_changes


def test_offline_critic_i2v_sends_the_pushed_ball_towards_its_target(suite: DatasetLayout) -> None:
    # One frame cannot show the push; the description says who pushes what, which way and towards what.
    row = _row(suite, "synthetic-two-ball-collision")
    prefix = _prefix(suite)
    scene = make_scene(row.description, "i2v", 8.0, 40, prefix[-1:])
    critic = OfflineReasoner(PromptSet("default"))
    prediction = critic.predict(scene)
    assert "The red ball is pushed and rolls to the right towards the blue ball." in prediction.prompt
    assert "The blue ball stays where it is until something hits it." in prediction.prompt
    red = next(x for x in prediction.expectations if x.object == "the red ball")
    blue = next(x for x in prediction.expectations if x.object == "the blue ball")
    assert (red.motion, red.direction, red.speed) == ("rolling", "right", "medium")  # the speed is not known
    assert blue.motion == "still"
    # The physics prior reads the sentence as about the red ball only, and sets it moving.
    from generators.base import GenerationRequest

    plan = PhysicsPriorGenerator().plan(
        GenerationRequest(prefix=prefix[-1:], prompt=prediction.prompt, num_frames=40, fps=8.0, seed=0,
                          mode="i2v", context={"expectations": [x.model_dump() for x in prediction.expectations]})
    )  # fmt: skip
    objects = plan.perception.objects
    moving = [objects[k].name for k, body in enumerate(plan.bodies) if abs(body.vx) > 5]
    assert moving == ["the red ball"]
    # A continuation where it stops short of the blue ball: the critic says so and asks for a harder push.
    perception = critic.view(scene).perception
    r = next(b for b in perception.objects if b.name == "the red ball")
    b = next(b for b in perception.objects if b.name == "the blue ball")
    clip = np.repeat(prefix[-1:], 40, axis=0).copy()
    for k, frame in enumerate(clip):
        frame[:] = perception.background
        cv2.circle(frame, (round(b.x), round(b.y)), round(b.radius), (40, 80, 235), -1)
        x = r.x + 0.4 * (b.x - r.x) * min(k + 1, 10) / 10
        cv2.circle(frame, (round(x), round(r.y)), round(r.radius), (230, 30, 30), -1)
    short = critic.critique(scene, prediction.prompt, clip)
    assert "reaches what it is sent towards" in {v.law for v in short.violations}
    change = "The red ball is pushed hard and rolls quickly to the right until it hits the blue ball."
    assert change in short.suggested_changes
    rewrite = critic.rewrite(scene, RewriteContext(1, prediction.prompt, critiques=(short,)))
    assert change in rewrite.prompt and "pushed and rolls to the right towards" not in rewrite.prompt
    # ... and one where it gets there (the blue ball moves off): no such complaint.
    for k, frame in enumerate(clip):
        frame[:] = perception.background
        hit = k > 12
        cv2.circle(frame, (round(b.x + (4 * (k - 12) if hit else 0)), round(b.y)), round(b.radius),
                   (40, 80, 235), -1)  # fmt: skip
        x = r.x + (b.x - r.x - 2 * r.radius) * min(k + 1, 12) / 12
        cv2.circle(frame, (round(x), round(r.y)), round(r.radius), (230, 30, 30), -1)
    reached = critic.critique(scene, prediction.prompt, clip)
    assert "reaches what it is sent towards" not in {v.law for v in reached.violations}


def test_offline_rewrite_replaces_a_sentence_that_says_it() -> None:
    # "It bounces a few times" is about the ball of the sentence before: a bounce suggestion replaces it.
    from agent.offline import _about, _keys

    white = motion.Blob(
        40, 20, 80, "white", (35, 15, 10, 10), 1, "round", "ball", "the white ball", mention=0
    )
    black = motion.Blob(
        90, 20, 80, "black", (85, 15, 10, 10), 2, "round", "ball", "the black ball", mention=1
    )
    kept = [
        "The white ball is let go and falls straight down onto the table.",
        "It bounces a few times, each bounce lower.",
        "The black ball is let go and falls straight down onto the table.",
        "It does not bounce.",
    ]
    assert _about(kept, [white, black]) == [[0], [0], [1], [1]]
    keys = _keys(kept, [white, black])
    assert keys[1] == ("the white ball", frozenset({"bounce"}))
    assert keys[3] == ("the black ball", frozenset({"bounce"}))


def test_metered_vlm_traces_each_call_without_its_text(tmp_path: Path) -> None:
    from agent.budget import MeteredVLM, UsageMeter
    from agent.vlm.base import Message
    from agent.vlm.scripted import ScriptedVLM

    events: list[dict] = []
    vlm = MeteredVLM(ScriptedVLM(["x" * 40]), UsageMeter(tmp_path / "usage.json"), trace=events.append)
    image = np.zeros((4, 4, 3), np.uint8)
    vlm.chat(
        [Message("user", "hidden words " * 30, (image, image))], json_schema=Critique.model_json_schema()
    )
    (event,) = events
    # The scripted backend reports no usage: the meter's estimate (chars / 4 + 256 per image) is traced.
    assert event == {
        "node": "vlm_call",
        "take1_id": None,  # outside any graph node
        "model": "scripted",
        "schema": "Critique",
        "turn": 1,
        "prompt_tokens": len("hidden words " * 30) // 4 + 2 * 256,
        "completion_tokens": 10,
        "cost_usd": None,
        "estimated": True,
        "images": 2,
        "latency_s": None,
    }
    assert "hidden" not in json.dumps(event)
    from agent.budget import scenario_scope

    with scenario_scope(7):
        vlm.chat([Message("user", "again")])
    assert events[-1]["take1_id"] == 7


def test_offline_critic_treats_a_mirror_image_as_a_reflection(tmp_path: Path) -> None:
    """On the glossy table the ball's reflection below the surface is not an object sinking into it."""
    mirror = build_suite(tmp_path / "mirror", scenarios=["synthetic-mirror-table-bounce"], fps=8, jobs=1)
    critic = OfflineReasoner(PromptSet("default"))
    description = mirror.take1_rows()[0].description
    for row in mirror.take1_rows():
        prefix = read_video(mirror.conditioning_video(row, 8))[0]
        scene = make_scene(description, "v2v", 8.0, 40, prefix)
        perception = critic.view(scene).perception
        blobs = perception.objects
        images = motion.mirror_images(blobs, perception.floor_y)
        assert len(images) == 1, row.perspective
        ((index, source),) = images.items()
        assert blobs[source].y < blobs[index].y  # the object above the table, its image below
        assert critic.predict(scene).objects == ["the red ball"]  # one ball, not two
        truth = read_video(mirror.testing_video(row, 8))[0]
        critique = critic.critique(scene, description, truth)
        # The image is below the floor and moves up when the ball moves down: flagging that would flag the
        # ground truth itself.
        assert not [v for v in critique.violations if v.object == blobs[index].name], critique.violations


def test_physics_prior_draws_a_mirror_image_from_its_object() -> None:
    from generators.physics_prior import SimBody, WorldParams, simulate

    ball = SimBody(20.0, 40.0, 30.0, 0.0, 4.0)
    image = SimBody(20.0, 120.0, 0.0, 0.0, 3.0, mirror_of=0)  # the mirror line is y = 80 (the floor)
    pos = simulate([ball, image], WorldParams(gravity=200.0), floor_y=80.0, width=200.0, n_frames=16, fps=8)
    assert pos[-1, 0, 1] > 70  # the ball fell onto the floor ...
    np.testing.assert_allclose(pos[:, 1, 0], pos[:, 0, 0])  # ... and its image kept its column
    np.testing.assert_allclose(pos[:, 1, 1], 160.0 - pos[:, 0, 1])  # mirrored in y = 80


def _ramp_scene() -> tuple[np.ndarray, np.ndarray]:
    """A side view: dark textured backdrop, a table from row 150, a grey ramp sloping down to the right
    (from (60, 70) to (200, 150)), a wooden post at x 280-292; a red ball resting on the slope."""
    rng = np.random.default_rng(0)
    frame = np.clip(rng.normal(70, 3, (180, 320, 3)), 0, 255).astype(np.uint8)
    frame[150:] = (140, 120, 100)  # muted wood: below the object detector's saturation floor
    cv2.fillPoly(frame, [np.array([[60, 150], [60, 70], [200, 150]], np.int32)], (150, 150, 150))
    frame[90:150, 280:292] = (140, 120, 100)
    slope = (150 - 70) / (200 - 60)
    x0 = 110.0
    y0 = 70 + slope * (x0 - 60) - 7 / math.cos(math.atan(slope))  # centre 7 px above the slope
    with_ball = frame.copy()
    cv2.circle(with_ball, (round(x0), round(y0)), 7, (230, 30, 30), -1)
    return frame, np.repeat(with_ball[None], 6, axis=0)


def test_support_surface_finds_the_ramp_and_the_post_but_not_thin_arms() -> None:
    frame, prefix = _ramp_scene()
    frame[0:60, 100:102] = (160, 160, 160)  # a grabber arm hanging from the top
    surface = motion.support_surface(frame, motion.detect_floor(frame))
    assert surface[30] == 150 and surface[250] == 150  # bare table
    assert surface[61] == pytest.approx(71, abs=2) and surface[130] == pytest.approx(110, abs=2)  # the slope
    assert surface[285] == pytest.approx(90, abs=1)  # the post
    _, labels = motion.detect_objects(prefix[-1], "A red ball rests on a grey ramp.")
    hidden = cv2.dilate((labels > 0).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    under_ball = motion.support_surface(prefix[-1], 150.0, unknown=hidden)
    # The ball hides the slope; its columns are interpolated from both sides, not raised to its top.
    np.testing.assert_allclose(under_ball[100:121], surface[100:121], atol=2)


def test_physics_prior_rolls_a_released_ball_down_a_ramp_and_off_a_post() -> None:
    _, prefix = _ramp_scene()
    prompt = "A red ball lies on a grey ramp. The red ball is released and rolls down."
    request = GenerationRequest(prefix, 8.0, prompt, 0, 40, mode="v2v")
    generator = PhysicsPriorGenerator()
    plan = generator.plan(request)
    assert len(plan.surface) >= 5  # table, ramp corner, slope foot, post
    frames = generator.generate(request).frames
    first = motion.perceive(frames[:1], prompt)
    tracks = motion.track_objects(frames, first.objects, first.labels, plan.background)
    (red,) = [t for t in tracks if t.colour == "red"]
    xy = red.xy[red.seen]
    slope = (150 - 70) / (200 - 60)
    on_ramp = xy[:, 0] < 200
    # It runs down the slope (never through it: the centre stays a radius above the surface)...
    assert xy[:, 0].max() > 200 and np.all(xy[on_ramp, 1] <= 70 + slope * (xy[on_ramp, 0] - 60) + 1)
    # ...and the post stops it: it never passes the post's left face.
    assert xy[:, 0].max() < 280


def test_read_prompt_attraction_and_repulsion() -> None:
    green = motion.Blob(50, 50, 200, "green", (42, 42, 16, 16), 1, "round", "ball", "the green ball")
    puck = motion.Blob(90, 50, 200, "magenta", (82, 42, 16, 16), 2, "box", "puck", "the magenta puck")
    said = read_prompt(
        "The green ball is pulled towards the magnet on the right and speeds up until it touches it. "
        "The magenta puck is pushed back by the magnet on the left before it touches it.",
        [green, puck],
    )
    assert said.objects[0].pull == (1.0, "right") and said.objects[1].pull == (-1.0, "left")
    assert (
        read_prompt("A grey cue stick pushes the green ball to the right.", [green]).objects[0].pull is None
    )


def test_a_pull_speeds_a_ball_up_towards_its_source_and_a_push_turns_it_back() -> None:
    from generators.physics_prior import Pull, SimBody, WorldParams, simulate

    world = {"floor_y": 100.0, "width": 400.0, "n_frames": 24, "fps": 8.0}
    params = WorldParams(gravity=300.0, restitution=0.1, damping=1.0, friction=0.0)
    source = (300.0, 95.0)
    pull = Pull(*source, strength=20.0, sign=1.0, start_distance=200.0, soft=9.0)
    (track,) = simulate([SimBody(100.0, 95.0, 0.0, 0.0, 5.0, pull=pull)], params, **world).transpose(1, 0, 2)
    steps = np.diff(track[::4, 0])  # every half second
    assert np.all(steps > 0) and np.all(np.diff(steps) > 0)  # towards the source, faster and faster
    assert track[-1, 0] > 200  # 110 px in 3 s from 20 px/s² at the start: more than constant (90 px)
    push = Pull(*source, strength=5.0, sign=-1.0, start_distance=200.0, soft=9.0)
    world["n_frames"] = 40
    (pushed,) = simulate([SimBody(100.0, 95.0, 90.0, 0.0, 5.0, pull=push)], params, **world).transpose(
        1, 0, 2
    )
    turn = int(np.argmax(pushed[:, 0]))
    assert 0 < turn < 30 and pushed[turn, 0] < source[0] - 20  # stops short of the source ...
    assert pushed[-1, 0] < pushed[turn, 0] - 50  # ... and is pushed back


def test_physics_prior_gives_each_object_its_own_draws_whatever_the_order() -> None:
    # Two balls on a table, both set rolling: naming them in the other order lists them in the other order,
    # and each must still get the same speed for a seed (each object draws from a stream keyed by where it is).
    frame = np.full((180, 320, 3), (200, 190, 170), np.uint8)
    frame[140:] = (120, 90, 60)
    cv2.circle(frame, (80, 131), 8, (230, 30, 30), -1)
    cv2.circle(frame, (220, 131), 8, (40, 80, 235), -1)
    pushes = "The red ball rolls to the right. The blue ball rolls to the left."
    speeds = []
    for balls in ("A red ball and a blue ball", "A blue ball and a red ball"):
        request = GenerationRequest(frame[None], 8.0, f"{balls} rest on a table. {pushes}", 3, 40, mode="i2v")
        plan = PhysicsPriorGenerator().plan(request)
        speeds.append(
            {o.name: round(b.vx, 6) for o, b in zip(plan.perception.objects, plan.bodies, strict=True)}
        )
    assert speeds[0] == speeds[1] and speeds[0]["the red ball"] > 0 > speeds[0]["the blue ball"]


_REPEL = (
    "A magenta magnetic puck slides on a smooth track towards a magnet at the right end facing the puck with "
    "the same pole."
)


def _puck_clip(xs: list[float], seed: int = 0) -> np.ndarray:
    """A magenta puck sliding along the table towards a grey magnet standing on its right end."""

    def draw(frame: np.ndarray, x: int) -> None:
        frame[112:140, 262:286] = (90, 90, 110)  # the magnet
        frame[130:140, x - 9 : x + 9] = (220, 40, 200)

    return _table_clip(xs, draw, seed)


def test_a_puck_heading_into_a_like_pole_stops_short_and_comes_back_for_every_seed() -> None:
    fps, speed = 8.0, 80.0
    prefix = _puck_clip([40 + speed * t / fps for t in range(12)])
    prompt = (
        f"{_REPEL} The magenta puck keeps sliding to the right at the same speed it had, without slowing down. "
        "The magenta puck slows down before it reaches the magnet on the right and is pushed back to the left."
    )
    said = read_prompt(prompt, _perceived(prefix, _REPEL).objects).objects[0]
    # Slowing said of a push is the push's doing: no friction from it, and no slowing by drag either.
    assert said.pull == (-1.0, "right") and said.keep == 1.0
    generator = PhysicsPriorGenerator()
    for seed in range(6):
        request = GenerationRequest(prefix, fps, prompt, seed, 40, mode="v2v")
        plan = generator.plan(request)
        (puck,) = plan.bodies
        assert puck.friction == 0.0 and puck.pull is not None
        (track,) = simulate(
            plan.bodies,
            plan.params,
            floor_y=plan.floor_y,
            width=320.0,
            n_frames=40,
            fps=fps,
            surface=plan.surface,
        ).transpose(1, 0, 2)
        turn = int(np.argmax(track[:, 0]))
        assert 0 < turn < 39, seed  # it turns back within the clip ...
        assert track[turn, 0] < 262 - 9, seed  # ... before it touches the magnet ...
        assert track[-1, 0] < track[turn, 0] - 30, seed  # ... and is pushed back


def test_a_suggestion_about_a_start_keeps_what_a_magnet_does_later() -> None:
    fps, speed = 8.0, 80.0
    prefix = _puck_clip([40 + speed * t / fps for t in range(12)])
    scene = make_scene(_REPEL, "v2v", fps, 40, prefix)
    critic = OfflineReasoner(PromptSet("default"))
    prediction = critic.predict(scene)
    push = "The magenta puck slows down before it reaches the magnet on the right and is pushed back to the left."
    assert push in prediction.prompt
    x0 = 40 + speed * 11 / fps
    # It slides on into the magnet and stays there: never pushed back.
    into = _puck_clip([min(x0 + speed * k / fps, 262 - 9) for k in range(1, 41)], seed=1)
    critique = critic.critique(scene, prediction.prompt, into)
    assert "magnetic force" in {v.law for v in critique.violations}
    assert any("pushed back strongly" in c for c in critique.suggested_changes)
    # A critique that only asks for the speed at the start leaves the push in the prompt.
    start = "The magenta puck keeps sliding to the right at the same speed it had, without slowing down."
    only_start = critique.model_copy(update={"suggested_changes": [start]})
    rewrite = critic.rewrite(scene, RewriteContext(1, prediction.prompt, critiques=(only_start,)))
    assert start in rewrite.prompt and push in rewrite.prompt
    assert "The magenta puck keeps sliding to the right." not in rewrite.prompt


def test_a_swinging_bob_takes_its_rod_along() -> None:
    # A bob held out to the left on a dark rod, let go: in the continuation the rod runs from the pivot to the
    # bob wherever it is, and where the rod hung at the start only the wall is left.
    frame = np.full((180, 320, 3), (200, 190, 170), np.uint8)
    frame[150:] = (120, 90, 60)
    pivot, bob = (160, 10), (80, 90)
    cv2.line(frame, pivot, bob, (30, 30, 30), 2)
    cv2.circle(frame, bob, 9, (120, 120, 130), -1)
    description = "A grey pendulum bob on a thin rod is held up to the left of its pivot. The bob is let go."
    prompt = f"{description} The grey bob is let go and swings down on its rod."
    video = PhysicsPriorGenerator().generate(GenerationRequest(frame[None], 8.0, prompt, 0, 16, mode="i2v"))
    (body,) = video.metadata["objects"]
    assert body["pivot"] is not None
    later = video.frames[3]
    dark = np.all(later < 90, axis=2)
    old = np.zeros(dark.shape, bool)
    cv2.line(old.view(np.uint8), pivot, (100, 70), 1, 1)  # the upper part of where the rod hung
    assert dark[old].mean() < 0.2
    _, xs = np.nonzero(dark[:140])
    assert len(xs) > 40 and xs.max() > 150  # a dark line from the pivot down towards the bob


def test_where_a_magnet_sends_a_thing_later_is_not_where_it_goes_now() -> None:
    frame = _puck_clip([100.0])[0]
    objects = _perceived(frame[None], _REPEL).objects
    prompt = (
        "The magenta puck is pushed and slides to the right. The magenta puck slows down before it reaches the "
        "magnet on the right and is pushed back to the left."
    )
    said = read_prompt(prompt, objects).objects[0]
    assert said.heading == "right" and said.moves and said.pull == (-1.0, "right")


def test_a_pushed_puck_that_a_magnet_sends_back_did_move_the_way_it_was_pushed() -> None:
    description = f"{_REPEL} A cue stick pushes the puck to the right towards the magnet."
    scene = make_scene(description, "i2v", 8.0, 40, _puck_clip([100.0]))
    critic = OfflineReasoner(PromptSet("default"))
    prediction = critic.predict(scene)
    assert "The magenta puck is pushed and slides to the right." in prediction.prompt
    # Out to 200 px in 1.5 s, then back past where it started.
    xs = [
        100 + 100 * math.sin(math.pi * min(k / 24, 1.0)) - (60 * (k - 24) / 16 if k > 24 else 0)
        for k in range(1, 41)
    ]
    critique = critic.critique(scene, prediction.prompt, _puck_clip(xs, seed=1))
    assert "a push sets it moving" not in {v.law for v in critique.violations}
    assert "magnetic force" not in {v.law for v in critique.violations}


def _tank_frame() -> np.ndarray:
    """A yellow block held above a tank of green liquid, in front of a wall with green stripes."""
    frame = np.full((180, 320, 3), (225, 215, 190), np.uint8)
    for x in range(10, 320, 24):
        frame[:150, x : x + 3] = (40, 150, 70)  # stripes of nearly the liquid's colour
    frame[150:] = (120, 90, 60)
    frame[110:150, 100:220] = (60, 170, 80)  # the liquid
    frame[30:50, 148:172] = (235, 200, 40)  # the block
    return frame


@pytest.mark.parametrize("floats", [False, True])
def test_a_block_dropped_into_a_liquid_sinks_through_it_or_floats(floats: bool) -> None:
    # A liquid is not a lid: what falls in slows down and sinks to the bottom, or, when the prompt says it
    # floats, comes back up and stays at the surface; it stays visible through the liquid either way.
    description = "A yellow block is held above a tank of green liquid and let go."
    prompt = description + (" The yellow block falls into the liquid and floats." if floats else "")
    video = PhysicsPriorGenerator().generate(
        GenerationRequest(_tank_frame()[None], 8.0, prompt, 0, 24, mode="i2v")
    )
    liquid = next(o for o in video.metadata["objects"] if o["region"] is not None)
    x0, y0, x1, _ = liquid["region"]
    assert y0 >= 100 and x1 - x0 < 160  # the liquid, not the stripes of its colour
    yellow = np.all(np.abs(video.frames[-1].astype(int) - (235, 200, 40)) < 40, axis=2)
    ys, _ = np.nonzero(yellow)
    assert len(ys) > 200  # seen through the liquid
    if floats:
        assert 100 <= ys.mean() <= 125  # at the surface
    else:
        assert ys.mean() > 135  # at the bottom of the tank


def test_a_bob_whose_rod_is_estimated_a_pixel_long_still_swings_over_the_table() -> None:
    # The rod's length comes from a found pivot: a pixel too long puts the bob's lowest point into the table
    # it swings over, and it bounced back off the table before it reached the block it was to strike.
    pivot = (100.0, 10.0)
    length = 91.0
    start = (pivot[0] - length * math.sin(math.radians(50)), pivot[1] + length * math.cos(math.radians(50)))
    bob = SimBody(start[0], start[1], 0.0, 0.0, 10.0, pivot=pivot, restitution=0.05)
    floor_y = pivot[1] + length + 10.0 - 1.0  # the bob's lowest point 1 px into the table
    states = simulate([bob], WorldParams(gravity=1500.0), floor_y=floor_y, width=200.0, n_frames=16, fps=8.0)
    assert float(states[:, 0, 0].max()) > pivot[0] + 40  # it swings up on the far side


def test_beads_that_are_let_go_pour_out_and_pile_up_below() -> None:
    # A heap of beads is not a rigid body: once its gate opens it runs out of its lowest point and piles up on
    # the table; the prediction says so in an ordinary sentence, and the prior reads it back.
    rng = np.random.default_rng(0)
    frame = np.full((180, 320, 3), (225, 215, 190), np.uint8)
    frame[150:] = (120, 90, 60)
    cv2.line(frame, (120, 20), (155, 75), (40, 60, 200), 3)  # the funnel's sides
    cv2.line(frame, (200, 20), (165, 75), (40, 60, 200), 3)
    for _ in range(260):  # the beads, heaped in the funnel
        y = int(rng.integers(25, 72))
        half = int((75 - y) * 35 / 55)
        x = int(rng.integers(160 - half, 161 + half))
        cv2.circle(frame, (x, y), 2, (200, 30, 30), -1)
    description = (
        "A blue funnel above a table is filled with small red beads, held in by a gate at its narrow end. "
        "The gate slides away."
    )
    scene = make_scene(description, "i2v", 8.0, 40, frame[None])
    prediction = OfflineReasoner(PromptSet("default")).predict(scene)
    assert "The red beads pour out and fall down." in prediction.prompt
    video = PhysicsPriorGenerator().generate(GenerationRequest(frame[None], 8.0, prediction.prompt, 0, 40))
    red = (video.frames[..., 0] > 150) & (video.frames[..., 1] < 90)
    assert red[-1, 20:75].sum() < 0.3 * red[0, 20:75].sum()  # the funnel has (mostly) run out
    assert red[-1, 120:150].sum() > 300  # onto a pile on the table
    assert red[2, 80:140, 150:170].any()  # through a stream below the outlet
