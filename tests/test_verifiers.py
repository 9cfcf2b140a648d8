"""The classical verifiers on hand-made clips whose answer is known, their bad-input contract, the registry,
and that no verifier can reach the ground truth."""

from __future__ import annotations

import ast
import inspect
import itertools
import json
import math
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from agent.verifiers import VERIFIERS, ClipInput, VerifierScore, build_verifier, clear_cache, verifier_options
from agent.verifiers.background import trimmed_mean
from agent.verifiers.continuity import MotionContinuity, extrapolate, velocity_error
from agent.verifiers.feature_path import linear_prediction_residuals, path_geometry
from agent.verifiers.testing import ball_clip
from physics_iq.registry import BackendOptionError, UnknownNameError

ROOT = Path(__file__).resolve().parents[1]
CLASSICAL = ("motion-continuity", "background-stability", "feature-path")
#: Two scenes: a ball rolling right, and one thrown up-left that falls (stays in frame).
SCENES = {
    "rolling": dict(seed=0),
    "thrown": dict(seed=1, start=(250.0, 70.0), velocity=(-4.0, -2.0), gravity=0.2),
}
#: Verifier -> mode -> the broken continuations it must rank below the one that carries on.
CATCHES = {
    "motion-continuity": {"v2v": ("teleport", "freeze", "reverse", "jitter"), "i2v": ("teleport", "jitter")},
    "background-stability": {"v2v": ("jitter", "flicker"), "i2v": ("jitter", "flicker")},
    "feature-path": {
        "v2v": ("teleport", "freeze", "reverse", "jitter", "flicker"),
        "i2v": ("teleport", "freeze", "jitter", "flicker"),
    },
}


def _clip(kind: str, mode: str = "v2v", scene: str = "rolling", **overrides: object) -> ClipInput:
    return ball_clip(kind, mode, **{**SCENES[scene], **overrides})  # type: ignore[arg-type]


CASES = [
    pytest.param(name, mode, kind, scene, id=f"{name}-{mode}-{kind}-{scene}")
    for name, modes in CATCHES.items()
    for mode, kinds in modes.items()
    for kind in kinds
    for scene in SCENES
]


@pytest.mark.parametrize("name,mode,kind,scene", CASES)
def test_continuing_ball_beats_broken_continuation(name: str, mode: str, kind: str, scene: str) -> None:
    verifier = build_verifier(name)
    good = verifier.score(_clip("continue", mode, scene))
    bad = verifier.score(_clip(kind, mode, scene))
    assert good.value is not None and bad.value is not None, (good.error, bad.error)
    assert good.value > bad.value, f"{kind}: {bad.summary} vs continue: {good.summary}"


@pytest.mark.parametrize("kind", ["teleport", "freeze", "reverse"])
def test_background_stability_ignores_what_the_object_does(kind: str) -> None:
    """Only the background counts: an object breaking physics is another verifier's business."""
    verifier = build_verifier("background-stability")
    good = verifier.score(_clip("continue"))
    other = verifier.score(_clip(kind))
    assert good.value == pytest.approx(0.0, abs=0.3)
    assert other.value == pytest.approx(good.value, abs=0.3)


def test_motion_continuity_says_what_went_wrong() -> None:
    verifier = build_verifier("motion-continuity")
    scores = {kind: verifier.score(_clip(kind)) for kind in ("continue", "teleport", "freeze", "reverse")}
    assert scores["continue"].details["velocity_error"] < 0.2
    assert "keeps its speed and direction" in scores["continue"].summary
    assert scores["freeze"].details["speed_after_px_per_frame"] < 0.5
    assert "stops" in scores["freeze"].summary
    assert scores["reverse"].details["direction_change_deg"] > 150
    assert "reverses" in scores["reverse"].summary
    assert scores["teleport"].details["unexplained_excess"] > 0.3
    assert "jumps" in scores["teleport"].summary
    for score in scores.values():
        assert score.summary.startswith("Motion continuity across the switch frame: ")


def test_motion_continuity_i2v_documents_what_it_measures() -> None:
    score = build_verifier("motion-continuity").score(_clip("continue", "i2v"))
    assert "image-conditioned" in score.summary and "smooth" in score.summary
    assert score.value is not None and score.value > -0.3


def test_background_stability_reports_shake_and_flicker() -> None:
    verifier = build_verifier("background-stability")
    shaken = verifier.score(_clip("jitter"))
    assert shaken.details["camera_shift_px"] > 1.0 and "shakes" in shaken.summary
    flickering = verifier.score(_clip("flicker"))
    assert flickering.details["excess_flicker"] > 5.0 and "flickers" in flickering.summary
    steady = verifier.score(_clip("continue"))
    assert steady.details["camera_shift_px"] < 0.5 and "stays still" in steady.summary


def test_feature_path_finds_the_teleport_step() -> None:
    score = build_verifier("feature-path").score(_clip("teleport"))
    assert score.details["largest_step_frame_after_switch"] == 1
    assert "from the switch frame to the first generated frame" in score.summary


def test_background_stability_needs_a_static_region() -> None:
    clip = _clip("continue")
    rng = np.random.default_rng(0)
    moving = rng.integers(0, 255, clip.prefix.shape, dtype=np.uint8)  # every pixel changes every frame
    score = build_verifier("background-stability").score(ClipInput(moving, clip.frames, clip.fps))
    assert score.value is None and score.error.startswith("no static background")


# --- bad input: never raises, says why --------------------------------------------------------------------


def _bad_clips() -> list[tuple[str, ClipInput, str]]:
    good = _clip("continue")
    frames, prefix = good.frames, good.prefix
    flat = np.full_like(frames, 117)
    return [
        ("too-short", ClipInput(prefix, frames[:1], 8.0), "too short"),
        ("blank", ClipInput(prefix, flat, 8.0), "blank"),
        ("wrong-size", ClipInput(prefix, frames[:, :90, :160], 8.0), "wrong size"),
        ("tiny", ClipInput(prefix[:, :8, :8], frames[:, :8, :8], 8.0), "wrong size"),
        ("float-frames", ClipInput(prefix, frames.astype(np.float32), 8.0), "frames must be"),
        ("grey-prefix", ClipInput(prefix[..., 0], frames, 8.0), "prefix must be"),
        ("no-fps", ClipInput(prefix, frames, 0.0), "fps must be"),
        ("bad-mode", ClipInput(prefix, frames, 8.0, "t2v"), "mode must be"),  # type: ignore[arg-type]
        ("v2v-one-frame", ClipInput(prefix[-1:], frames, 8.0, "v2v"), "too short"),
    ]


BAD = [
    pytest.param(name, label, clip, why, id=f"{name}-{label}")
    for name in CLASSICAL
    for label, clip, why in _bad_clips()
    # The feature path starts at the switch frame when there is no earlier one: one prefix frame is enough.
    if not (label == "v2v-one-frame" and name == "feature-path")
]


@pytest.mark.parametrize("name,label,clip,why", BAD)
def test_bad_clip_is_a_score_without_value(name: str, label: str, clip: ClipInput, why: str) -> None:
    score = build_verifier(name).score(clip)
    assert score.value is None
    assert score.error.startswith(why), score.error
    assert name in score.summary and score.error in score.summary
    json.dumps(score.to_dict())


@pytest.mark.parametrize("name", CLASSICAL)
def test_score_many_keeps_order_and_isolates_bad_clips(name: str) -> None:
    verifier = build_verifier(name)
    good, bad = _clip("continue"), ClipInput(_clip("continue").prefix, _clip("continue").frames[:1], 8.0)
    results = verifier.score_many([good, bad, _clip("teleport")])
    assert [r.value is None for r in results] == [False, True, False]
    assert results[0].value == verifier.score(good).value
    assert verifier.score_many([]) == []


# --- the score record ---------------------------------------------------------------------------------------


def test_score_round_trips_through_json() -> None:
    score = build_verifier("motion-continuity").score(_clip("continue"))
    data = json.loads(json.dumps(score.to_dict()))
    assert VerifierScore.from_dict(data) == score
    assert set(data) == {"value", "details", "error", "summary"}


def test_non_finite_numbers_become_null() -> None:
    data = VerifierScore(1.0, {"ratio": math.inf, "angle": math.nan}).to_dict()
    assert data["details"] == {"ratio": None, "angle": None}
    assert VerifierScore(-0.0).value == 0.0 and math.copysign(1.0, VerifierScore(-0.0).value) == 1.0


# --- the pure measurements, against naive references ------------------------------------------------------


def _naive_geometry(path: np.ndarray, history: int) -> list[float]:
    steps = [path[t + 1] - path[t] for t in range(len(path) - 1)]
    sizes = [float(np.sqrt(np.sum(s * s))) for s in steps]
    mean = sum(sizes) / len(sizes)
    var = sum((s - mean) ** 2 for s in sizes) / len(sizes)
    angles = []
    for a, b in itertools.pairwise(steps):
        cos = float(np.sum(a * b)) / (float(np.sqrt(np.sum(a * a))) * float(np.sqrt(np.sum(b * b))))
        angles.append(math.acos(max(-1.0, min(1.0, cos))))
    angle_mean = sum(angles) / len(angles)
    angle_std = math.sqrt(sum((x - angle_mean) ** 2 for x in angles) / len(angles))
    accel = [float(np.sqrt(np.sum((b - a) ** 2))) for a, b in itertools.pairwise(steps)]
    residuals = []
    for t in range(history, len(path)):
        coeffs = np.polyfit(np.arange(history, dtype=float), path[t - history : t], 1)
        predicted = coeffs[0] * history + coeffs[1]
        residuals.append(float(np.sqrt(np.sum((path[t] - predicted) ** 2))))
    return [
        math.sqrt(var) / mean,
        angle_mean,
        angle_std,
        sum(accel) / len(accel) / mean,
        sum(residuals) / len(residuals) / mean,
    ]


@pytest.mark.parametrize("history", [2, 3, 5])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_path_geometry_matches_naive_reference(seed: int, history: int) -> None:
    path = np.cumsum(np.random.default_rng(seed).normal(size=(14, 6)), axis=0)
    g = path_geometry(path, history)
    got = [g.speed_variation, g.curvature, g.angle_spread, g.acceleration, g.prediction_residual]
    assert got == pytest.approx(_naive_geometry(path, history), rel=1e-9, abs=1e-12)


def test_path_geometry_is_scale_free_and_ignores_float_jitter() -> None:
    path = np.cumsum(np.random.default_rng(3).normal(size=(10, 4)), axis=0)
    assert path_geometry(path * 1e4).irregularity == pytest.approx(path_geometry(path).irregularity)
    still = np.ones((8, 4)) + np.random.default_rng(0).normal(scale=1e-9, size=(8, 4))
    assert path_geometry(still).irregularity == 0.0


def test_linear_predictor_extrapolates_lines_exactly() -> None:
    line = np.outer(np.arange(7.0), [2.0, -1.0]) + 3.0
    assert np.allclose(linear_prediction_residuals(line, 4), 0.0)


def test_velocity_error_and_extrapolation_known_values() -> None:
    assert velocity_error(np.zeros(2), np.zeros(2), 1.0) == 0.0
    falling = np.array([[0.0, 1.0], [0.0, 2.0], [0.0, 3.0]])
    assert extrapolate(falling, 1, accelerate=False).tolist() == [[0.0, 2.0]]
    assert np.allclose(extrapolate(falling, 2), [[0.0, 4.0], [0.0, 5.0]])


@pytest.mark.parametrize("trim", [0.0, 0.1, 0.5, 0.9])
def test_trimmed_mean_matches_naive_reference(trim: float) -> None:
    values = np.random.default_rng(1).exponential(size=101)
    keep = max(1, round(101 * (1 - trim)))
    assert trimmed_mean(values, trim) == pytest.approx(float(np.mean(sorted(values)[:keep])))


# --- the registry -------------------------------------------------------------------------------------------


def test_registry_lists_every_verifier() -> None:
    assert VERIFIERS.names() == sorted(
        [
            "motion-continuity",
            "background-stability",
            "feature-path",
            "feature-path-encoder",
            "world-model-surprise",
        ]
    )
    assert all(VERIFIERS.describe().values())


def test_unknown_name_suggests_the_closest() -> None:
    with pytest.raises(UnknownNameError, match="did you mean 'motion-continuity'"):
        build_verifier("motion-continuty")


def test_options_are_validated_and_coerced() -> None:
    built = build_verifier("motion-continuity", horizon="5", accelerate="false")
    assert built.config["horizon"] == 5 and built.config["accelerate"] is False
    assert built is build_verifier("motion-continuity", horizon=5, accelerate=False)
    assert built is not build_verifier("motion-continuity")
    with pytest.raises(BackendOptionError, match="no option 'horizn'"):
        build_verifier("motion-continuity", horizn=5)
    with pytest.raises(BackendOptionError, match="option 'horizon' must be int, got 'five'"):
        build_verifier("motion-continuity", horizon="five")
    with pytest.raises(BackendOptionError, match="preset must be one of"):
        build_verifier("motion-continuity", preset="slow")
    assert verifier_options("feature-path") == {
        "context": 8,
        "history": 3,
        "thumbnail": "16x9",
        "blur": 1 / 16,
    }


def test_config_records_every_option_for_provenance() -> None:
    for name in CLASSICAL:
        verifier = build_verifier(name)
        assert dict(verifier.config) == verifier_options(name)
        json.dumps(verifier.config)
        assert verifier.name == name and verifier.neural is False


def test_concurrent_builds_load_once(monkeypatch: pytest.MonkeyPatch) -> None:
    clear_cache()
    built = []
    original = MotionContinuity.__init__

    def slow_init(self: MotionContinuity, *args: object, **kwargs: object) -> None:
        time.sleep(0.05)  # a slow model load: other threads must wait for it, not start their own
        built.append(self)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(MotionContinuity, "__init__", slow_init)
    found: list[object] = []
    threads = [
        threading.Thread(target=lambda: found.append(build_verifier("motion-continuity"))) for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(built) == 1 and all(f is found[0] for f in found)
    clear_cache()


# --- no ground truth ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", VERIFIERS.names())
def test_a_verifier_sees_only_the_clip(name: str) -> None:
    """``score`` takes one ClipInput (conditioning + continuation); nothing names a dataset, take or state."""
    cls = VERIFIERS.resolve(name) if name in CLASSICAL else None
    source_names = {
        "motion-continuity": "continuity",
        "background-stability": "background",
        "feature-path": "feature_path",
        "feature-path-encoder": "encoder_path",
        "world-model-surprise": "world_model",
    }
    path = ROOT / "agent" / "verifiers" / f"{source_names[name]}.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    ours = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            ours.append(node.module)
        elif isinstance(node, ast.Import):
            ours.extend(alias.name for alias in node.names)
    reachable = [m for m in ours if m.split(".")[0] in ("agent", "physics_iq", "generators", "prompts")]
    assert all(m.startswith("agent.verifiers") or m == "physics_iq.registry" for m in reachable), reachable
    text = path.read_text(encoding="utf-8").lower()
    assert "take2" not in text and "state.json" not in text and "testing-videos" not in text
    if cls is not None:
        params = list(inspect.signature(cls.score).parameters)
        assert params == ["self", "clip"]


@pytest.mark.parametrize("name", CLASSICAL)
def test_scoring_opens_no_file(name: str) -> None:
    """Scoring reads only the arrays it is given: no file (a take-2 video, a state file) is opened."""
    verifier = build_verifier(name)
    clip = _clip("continue")
    opened: list[str] = []
    watching = threading.local()

    def hook(event: str, args: tuple[object, ...]) -> None:
        if getattr(watching, "on", False) and event == "open":
            opened.append(str(args[0]))

    sys.addaudithook(hook)  # cannot be removed; inert once ``watching.on`` is reset
    watching.on = True
    try:
        score = verifier.score(clip)
    finally:
        watching.on = False
    assert score.value is not None and opened == []
