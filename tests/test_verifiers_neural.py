"""The neural verifiers (transformers image encoders, V-JEPA 2) with tiny random-weight checkpoints.

Each checkpoint is a real transformers class at a tiny config, saved with ``save_pretrained`` and loaded back
by folder through the backend's own loading code. Random weights say nothing about plausibility: these tests
check the contract (loading, batching, windows, errors), not which clip wins.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from agent.verifiers import ClipInput, build_verifier, clear_cache  # noqa: E402
from agent.verifiers.testing import ball_clip, build_tiny_image_encoder, build_tiny_vjepa2  # noqa: E402
from agent.verifiers.world_model import window_starts  # noqa: E402
from physics_iq.registry import BackendOptionError  # noqa: E402

pytestmark = pytest.mark.models


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("tiny-verifiers")
    empty = root / "empty"
    empty.mkdir()
    return {
        "dinov2": build_tiny_image_encoder(root / "dinov2", "dinov2"),
        "siglip": build_tiny_image_encoder(root / "siglip", "siglip"),
        "vjepa2": build_tiny_vjepa2(root / "vjepa2"),
        "vjepa2-no-predictor": build_tiny_vjepa2(root / "vjepa2-no-predictor", with_predictor=False),
        "empty": empty,
        "missing": root / "does-not-exist",
    }


def _clips() -> list[ClipInput]:
    return [
        ball_clip("continue"),
        ball_clip("teleport", seed=1),
        ball_clip("freeze", frames=20),
        ball_clip("continue", "i2v", frames=17),
    ]


def _static_clip() -> ClipInput:
    still = ball_clip("freeze", noise=0.0).frames
    return ClipInput(still[:1], still, 8.0, "v2v")


# --- feature-path-encoder -----------------------------------------------------------------------------------


@pytest.mark.parametrize("family", ["dinov2", "siglip"])
def test_encoder_path_loads_by_folder_and_batches(folders: dict[str, Path], family: str) -> None:
    verifier = build_verifier("feature-path-encoder", model=str(folders[family]), device="cpu", batch_size=5)
    assert verifier.neural and verifier.config["model"] == str(folders[family])
    clips = _clips()
    together = verifier.score_many(clips)
    alone = [verifier.score(clip) for clip in clips]
    for a, b in zip(together, alone, strict=True):
        assert a.value is not None and np.isfinite(a.value)
        assert a.value == pytest.approx(b.value, abs=1e-5)  # batch borders fall elsewhere; same numbers
        assert a.summary.startswith(
            f"Feature-path geometry (after GeoPhys, pooled features of a frozen {family} image encoder)"
        )
    assert {"speed_variation", "curvature", "angle_spread", "acceleration", "prediction_residual"} <= set(
        together[0].details
    )


@pytest.mark.parametrize("family", ["dinov2", "siglip"])
def test_encoder_path_of_a_still_clip_is_zero(folders: dict[str, Path], family: str) -> None:
    verifier = build_verifier("feature-path-encoder", model=str(folders[family]), device="cpu", batch_size=4)
    assert verifier.score(_static_clip()).value == 0.0


def test_encoder_path_layer_and_pooling(folders: dict[str, Path]) -> None:
    base = build_verifier("feature-path-encoder", model=str(folders["dinov2"]), device="cpu")
    layered = build_verifier(
        "feature-path-encoder", model=str(folders["dinov2"]), device="cpu", layer="1", pooling="mean"
    )
    assert layered.config["layer"] == 1 and layered is not base
    clip = ball_clip("continue")
    assert base.score(clip).value != layered.score(clip).value
    with pytest.raises(BackendOptionError, match="pooling must be one of"):
        build_verifier("feature-path-encoder", model=str(folders["dinov2"]), pooling="max")


@pytest.mark.parametrize("folder", ["empty", "missing", "vjepa2"])
def test_encoder_path_refuses_a_folder_without_an_image_encoder(
    folders: dict[str, Path], folder: str
) -> None:
    path = str(folders[folder])
    with pytest.raises(BackendOptionError) as caught:
        build_verifier("feature-path-encoder", model=path, device="cpu")
    message = str(caught.value)
    assert "\n" not in message and path in message and message.startswith("feature-path-encoder: ")


# --- world-model-surprise -----------------------------------------------------------------------------------


def test_world_model_scores_sliding_windows_in_batches(folders: dict[str, Path]) -> None:
    verifier = build_verifier(
        "world-model-surprise", model=str(folders["vjepa2"]), device="cpu", batch_size=3
    )
    clips = _clips()
    together = verifier.score_many(clips)
    alone = [verifier.score(clip) for clip in clips]
    for clip, a, b in zip(clips, together, alone, strict=True):
        assert a.value is not None and b.value is not None
        assert a.value == pytest.approx(b.value, abs=1e-5)
        assert 0.0 <= -a.value <= 2.0  # 1 - cosine similarity
        prefix = 1 if clip.mode == "i2v" else len(clip.prefix)
        assert a.details["windows"] == len(window_starts(prefix + len(clip.frames), prefix, 16, 8, 4))
        assert a.details["surprise_max"] >= a.details["surprise_mean"]
        assert a.summary.startswith("World-model surprise (V-JEPA 2, after WMReward): ")


def test_world_model_options(folders: dict[str, Path]) -> None:
    folder = str(folders["vjepa2"])
    clip = ball_clip("continue", frames=24)
    mean = build_verifier("world-model-surprise", model=folder, device="cpu").score(clip)
    worst = build_verifier("world-model-surprise", model=folder, device="cpu", aggregate="max").score(clip)
    assert worst.value == pytest.approx(-mean.details["surprise_max"])
    cropped = build_verifier("world-model-surprise", model=folder, device="cpu", resize="crop").score(clip)
    assert cropped.value is not None and cropped.value != mean.value
    short = build_verifier("world-model-surprise", model=folder, device="cpu", window=8, context_frames=4)
    assert short.score(clip).details["windows"] > mean.details["windows"]
    with pytest.raises(BackendOptionError, match="multiples of the model's tubelet size"):
        build_verifier("world-model-surprise", model=folder, device="cpu", window=15)
    with pytest.raises(BackendOptionError, match="0 < context_frames < window"):
        build_verifier("world-model-surprise", model=folder, device="cpu", context_frames=16)


def test_world_model_too_short_clip_is_recorded(folders: dict[str, Path]) -> None:
    verifier = build_verifier("world-model-surprise", model=str(folders["vjepa2"]), device="cpu")
    score = verifier.score(ball_clip("continue", "i2v", frames=10))  # 11 frames < one 16-frame window
    assert score.value is None and score.error.startswith("too short")


@pytest.mark.parametrize("folder", ["empty", "missing", "dinov2", "vjepa2-no-predictor"])
def test_world_model_refuses_a_folder_without_a_vjepa2_predictor(
    folders: dict[str, Path], folder: str
) -> None:
    path = str(folders[folder])
    with pytest.raises(BackendOptionError) as caught:
        build_verifier("world-model-surprise", model=path, device="cpu")
    message = str(caught.value)
    assert "\n" not in message and path in message and message.startswith("world-model-surprise: ")


# --- shared ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name,family", [("feature-path-encoder", "dinov2"), ("world-model-surprise", "vjepa2")]
)
def test_devices_are_checked_before_loading(folders: dict[str, Path], name: str, family: str) -> None:
    with pytest.raises(BackendOptionError, match="device must be"):
        build_verifier(name, model=str(folders[family]), device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(BackendOptionError, match="CUDA is not available"):
            build_verifier(name, model=str(folders[family]), device="cuda:1")
    auto = build_verifier(name, model=str(folders[family]), device="auto")
    assert auto.device.type == ("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize(
    "name,family", [("feature-path-encoder", "dinov2"), ("world-model-surprise", "vjepa2")]
)
def test_a_model_loads_once_per_process(folders: dict[str, Path], name: str, family: str) -> None:
    clear_cache()
    first = build_verifier(name, model=str(folders[family]), device="cpu")
    assert build_verifier(name, model=str(folders[family]), device="cpu") is first
    assert (
        build_verifier(name, model=str(folders[family]), device="cpu", batch_size=first.config["batch_size"])
        is first
    )


@pytest.mark.parametrize(
    "name,family", [("feature-path-encoder", "siglip"), ("world-model-surprise", "vjepa2")]
)
def test_bad_clips_never_raise(folders: dict[str, Path], name: str, family: str) -> None:
    verifier = build_verifier(name, model=str(folders[family]), device="cpu")
    good = ball_clip("continue")
    bad = [
        ClipInput(good.prefix, np.full_like(good.frames, 80), 8.0),
        ClipInput(good.prefix, good.frames[:, :60], 8.0),
        ClipInput(good.prefix, good.frames[:2], 8.0),
    ]
    results = verifier.score_many([*bad, good])
    assert [r.error.split(":")[0] for r in results[:3]] == ["blank", "wrong size", "too short"]
    assert all(r.value is None for r in results[:3]) and results[3].value is not None


@pytest.mark.parametrize(
    "name,family", [("feature-path-encoder", "dinov2"), ("world-model-surprise", "vjepa2")]
)
def test_scoring_opens_no_file(folders: dict[str, Path], name: str, family: str) -> None:
    """Once loaded, a neural verifier reads only the arrays it is given (no take-2 video, no state file)."""
    verifier = build_verifier(name, model=str(folders[family]), device="cpu")
    clip = ball_clip("continue")
    verifier.score(clip)  # warm up: first calls may load kernels lazily
    opened: list[str] = []
    watching = threading.local()

    def hook(event: str, args: tuple[object, ...]) -> None:
        if getattr(watching, "on", False) and event == "open":
            opened.append(str(args[0]))

    sys.addaudithook(hook)
    watching.on = True
    try:
        score = verifier.score(clip)
    finally:
        watching.on = False
    assert score.value is not None and opened == []
