"""Prompt sets, reply parsing, motion tracking, the physics-prior generator and the offline critic."""

from __future__ import annotations

import json
import math
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
from generators.physics_prior import PhysicsPriorGenerator, _background, read_prompt
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


def test_tracker_measures_the_pushed_ball(suite: DatasetLayout) -> None:
    # Ground truth from the suite's state file (tests may read it; the agent never does).
    row = _row(suite, "synthetic-two-ball-collision")
    prefix = _prefix(suite)
    summary = motion.summarise(prefix, 8.0, reference=motion.detect_objects(prefix[-1])[0])
    by_colour = {m.colour: m for m in summary.objects}
    assert set(by_colour) == {"red", "blue"}
    truth = _state_velocity(suite, row, "ball-red")
    assert by_colour["red"].velocity[0] == pytest.approx(truth, rel=0.15)
    assert abs(by_colour["blue"].velocity[0]) < 5  # resting until hit
    assert "(red)" in summary.grounding_text("prefix")


def test_tracker_sees_the_rubber_ball_bounce_higher(suite: DatasetLayout) -> None:
    testing, _ = read_video(suite.testing_video(_row(suite, "synthetic-ball-bounce"), 8))
    summary = motion.summarise(testing, 8.0, reference=motion.detect_objects(testing[0])[0])
    by_colour = {m.colour: m for m in summary.objects}
    red, blue = by_colour["red"], by_colour["blue"]
    assert len(red.bounces) > len(blue.bounces) >= 1
    assert (red.restitution or 0) > (blue.restitution or 0) + 0.3  # rubber vs clay-like


def test_physics_prior_follows_the_prompt_and_the_seed(suite: DatasetLayout) -> None:
    prefix = _prefix(suite, "synthetic-ball-bounce")  # both balls held still above the table
    gen = PhysicsPriorGenerator()

    def red_x(prompt: str, seed: int) -> float:
        req = GenerationRequest(prefix, 8.0, prompt, seed, 8, mode="v2v")
        frames = gen.generate(req).frames
        assert frames.shape == (8, *prefix.shape[1:])
        return next(b.x for b in motion.detect_objects(frames[-1])[0] if b.colour == "red")

    start = next(b.x for b in motion.detect_objects(prefix[-1])[0] if b.colour == "red")
    assert red_x("The red ball moves right at 40 px/s.", 0) > start + 20
    assert red_x("The red ball moves left at 40 px/s.", 0) < start - 20
    # unpinned parameters are sampled from the seed: different seeds, different continuations
    assert red_x("The red ball falls.", 0) != red_x("The red ball falls.", 1)
    assert red_x("The red ball falls.", 3) == red_x("The red ball falls.", 3)
    # an object at rest in the air stays put unless the prompt lets it go
    assert red_x("A scene.", 0) == pytest.approx(start, abs=1)


def test_offline_predict_reads_a_release_from_the_description(suite: DatasetLayout) -> None:
    prefix = _prefix(suite, "synthetic-ball-bounce")
    critic = OfflineReasoner(PromptSet("default"))
    released = critic.predict(make_scene("The grabbers let go of both balls.", "v2v", 8.0, 40, prefix))
    held = critic.predict(make_scene("Two balls hang from grabbers.", "v2v", 8.0, 40, prefix))
    assert "The red ball is let go and falls." in released.prompt
    assert "falls" not in held.prompt


def _state_velocity(suite: DatasetLayout, row: Row, obj: str) -> float:
    path = suite.conditioning_video(row, 8).with_suffix(".state.json")
    last = json.loads(path.read_text())["frames"][-1]
    return float(next(o for o in last["objects"] if o["id"] == obj)["velocity_px_s"][0])


def test_read_prompt_parameters() -> None:
    said = read_prompt(
        "The blue ball does not bounce. The red ball stays still. It slows down by 20% every second."
    )
    assert (
        said.restitution == pytest.approx(0.05) and "red" in said.still and said.damping == pytest.approx(0.8)
    )


def test_offline_critic_flags_a_frozen_ball_and_rewrites_concretely(suite: DatasetLayout) -> None:
    prefix = _prefix(suite)  # the red ball is pushed to the right
    scene = make_scene("A red ball is pushed.", "v2v", 8.0, 40, prefix)
    critic = OfflineReasoner(PromptSet("default"))
    prediction = critic.predict(scene)
    assert "red ball" in prediction.prompt and "px/s" not in prediction.prompt  # qualitative first guess
    # A continuation that jumps the ball 20 px away and freezes it there in mid-air.
    frozen = np.repeat(prefix[-1:], 40, axis=0).copy()
    blob = next(b for b in motion.detect_objects(prefix[-1])[0] if b.colour == "red")
    background = _background(prefix)  # the objects inpainted away
    frozen[:] = background
    for frame in frozen:
        cv2.circle(frame, (int(blob.x), int(blob.y) - 20), 6, (230, 30, 30), -1)
    critique = critic.critique(scene, prediction.prompt, frozen)
    laws = {v.law for v in critique.violations}
    assert critique.verdict == "inconsistent" and "velocity continuity" in laws
    rewrite = critic.rewrite(scene, RewriteContext(1, prediction.prompt, critiques=(critique,)))
    assert "px/s" in rewrite.prompt and rewrite.prompt != prediction.prompt
    # a rewrite of the rewrite with the same critique replaces, not duplicates, the sentence
    again = critic.rewrite(scene, RewriteContext(2, rewrite.prompt, critiques=(critique,)))
    assert again.prompt == rewrite.prompt


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
        blobs = scene.switch_blobs
        images = motion.mirror_images(blobs, scene.prefix_motion.floor_y)
        assert len(images) == 1 and {b.colour for b in blobs} == {"red"}, row.perspective
        ((index, source),) = images.items()
        assert blobs[source].y < blobs[index].y  # the object above the table, its image below
        image_name = motion.track_name(index, blobs[index])
        assert critic.predict(scene).objects == ["red ball"]  # one ball, not two
        truth = read_video(mirror.testing_video(row, 8))[0]
        critique = critic.critique(scene, description, truth)
        # The image is below the floor and moves up when the ball moves down: flagging that would flag the
        # ground truth itself. (The real ball may still be flagged: the floor line is found a few px high here.)
        assert not [v for v in critique.violations if v.object == image_name], critique.violations


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
    _, labels = motion.detect_objects(prefix[-1])
    hidden = cv2.dilate((labels > 0).astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    under_ball = motion.support_surface(prefix[-1], 150.0, unknown=hidden)
    # The ball hides the slope; its columns are interpolated from both sides, not raised to its top.
    np.testing.assert_allclose(under_ball[100:121], surface[100:121], atol=2)


def test_physics_prior_rolls_a_released_ball_down_a_ramp_and_off_a_post() -> None:
    _, prefix = _ramp_scene()
    request = GenerationRequest(prefix, 8.0, "The red ball is released and rolls down.", 0, 40, mode="v2v")
    generator = PhysicsPriorGenerator()
    plan = generator.plan(request)
    assert len(plan.surface) >= 5  # table, ramp corner, slope foot, post
    frames = generator.generate(request).frames
    tracks = motion.track_objects(frames)
    (red,) = [t for t in tracks if t.colour == "red"]
    xy = red.xy[red.seen]
    slope = (150 - 70) / (200 - 60)
    on_ramp = xy[:, 0] < 200
    # It runs down the slope (never through it: the centre stays a radius above the surface)...
    assert xy[:, 0].max() > 200 and np.all(xy[on_ramp, 1] <= 70 + slope * (xy[on_ramp, 0] - 60) + 1)
    # ...and the post stops it: it never passes the post's left face.
    assert xy[:, 0].max() < 280


def test_read_prompt_attraction_and_repulsion() -> None:
    said = read_prompt(
        "The green ball is pulled towards the magnet on the right and speeds up until it touches it. "
        "The magenta ball is pushed back by the magnet on the left before it touches it. The red ball rests."
    )
    assert said.pulls == {"green": (1.0, "right"), "magenta": (-1.0, "left")}
    assert read_prompt("A grey cue stick pushes the red ball to the right.").pulls == {}


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
