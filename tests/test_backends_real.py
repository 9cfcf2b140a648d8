"""Real checkpoints and real APIs through the same adapters the offline tests drive (opt-in, skipped by default).

Nothing here runs without its flag *and* its environment variables (see ``docs/backends.md``):

- ``--run-slow --run-gpu`` with ``PHYSREFINE_WAN21_I2V`` (etc., see :data:`CHECKPOINT_ENV`) set to a hub id or
  a local diffusers folder: one 5 s continuation of a synthetic scenario at 8 fps per checkpoint. Extra
  adapter options come from ``PHYSREFINE_GENERATOR_OPTS`` (``"cpu_offload=true num_inference_steps=20"``).
- ``--run-api`` with ``PHYSREFINE_OPENAI_MODEL`` and ``OPENAI_API_KEY`` (or ``PHYSREFINE_OPENAI_BASE_URL``
  for a local OpenAI-compatible server): a real prediction and critique parsed into the agent's schemas.
- ``--run-slow`` with ``PHYSREFINE_TRANSFORMERS_VLM``: the same through a local transformers model.
- all three flags: ``physrefine refine`` end to end with the first configured checkpoint and the API.

What is asserted is the contract (exact length, size, fps, parsed replies, usage, no key in the run's files)
plus one relative sanity check per generator that random weights would fail: the first generated frame
looks more like the switch frame it was conditioned on than like that frame's negative. Visual quality and
physics are not asserted: that is what the benchmark measures.
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from physics_iq.layout import DatasetLayout
from physics_iq.synthetic import build_suite
from physics_iq.video import TEST_SECONDS, frames_for_seconds, probe, read_video

FPS = 8
SCENARIO = "synthetic-ball-bounce"

#: Registered generator -> environment variable holding its checkpoint (hub id or local folder), and mode.
CHECKPOINT_ENV: dict[str, tuple[str, str]] = {
    "wan2.1-i2v": ("PHYSREFINE_WAN21_I2V", "i2v"),
    "wan2.2-i2v-a14b": ("PHYSREFINE_WAN22_I2V_A14B", "i2v"),
    "wan2.2-ti2v-5b": ("PHYSREFINE_WAN22_TI2V_5B", "i2v"),
    "wan-vace": ("PHYSREFINE_WAN_VACE", "v2v"),
    "ltx-condition": ("PHYSREFINE_LTX", "v2v"),
    "cogvideox-i2v": ("PHYSREFINE_COGVIDEOX_I2V", "i2v"),
    "svd": ("PHYSREFINE_SVD", "i2v"),
}


def generator_options() -> dict[str, str]:
    """``PHYSREFINE_GENERATOR_OPTS="k=v k=v"`` as adapter options (strings, as the CLI passes them)."""
    options = {}
    for item in shlex.split(os.environ.get("PHYSREFINE_GENERATOR_OPTS", "")):
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"PHYSREFINE_GENERATOR_OPTS: expected KEY=VALUE, got {item!r}")
        options[key] = value
    return options


def checkpoint(name: str) -> str:
    variable = CHECKPOINT_ENV[name][0]
    value = os.environ.get(variable, "")
    if not value:
        pytest.skip(f"set {variable}=<hub id or local diffusers folder> to run {name} on a real checkpoint")
    return value


def require_cuda() -> None:
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device (real checkpoints on CPU take hours)")


def openai_settings() -> dict[str, str]:
    model = os.environ.get("PHYSREFINE_OPENAI_MODEL", "")
    base_url = os.environ.get("PHYSREFINE_OPENAI_BASE_URL", "")
    if not model:
        pytest.skip("set PHYSREFINE_OPENAI_MODEL (and OPENAI_API_KEY, or PHYSREFINE_OPENAI_BASE_URL)")
    if not base_url and not os.environ.get("OPENAI_API_KEY"):
        pytest.skip("set OPENAI_API_KEY for api.openai.com, or PHYSREFINE_OPENAI_BASE_URL for a local server")
    settings = {"model": model}
    if base_url:
        settings["base_url"] = base_url
    return settings


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> DatasetLayout:
    # The default 320x180 frame: real models generate at their own size and the adapter resizes back.
    return build_suite(tmp_path_factory.mktemp("real-suite") / "suite", scenarios=[SCENARIO], fps=FPS, jobs=1)


def center_take1(suite: DatasetLayout) -> Any:
    return next(pair.take1 for pair in suite.pairs() if pair.take1.perspective == "perspective-center")


def prefix_clip(suite: DatasetLayout) -> np.ndarray:
    frames, _ = read_video(suite.conditioning_video(center_take1(suite), FPS))
    return frames


def mae(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float32) - b.astype(np.float32)).mean())


# -- generators (slow + gpu) ---------------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.gpu
@pytest.mark.parametrize("name", list(CHECKPOINT_ENV))
def test_real_checkpoint_generates_five_seconds(name: str, suite: DatasetLayout) -> None:
    model = checkpoint(name)
    require_cuda()
    from generators import GENERATORS
    from generators.base import GenerationRequest

    mode = CHECKPOINT_ENV[name][1]
    prefix = prefix_clip(suite)
    if mode == "i2v":
        prefix = prefix[-1:]
    generator = GENERATORS.resolve(name)(model=model, **generator_options())
    num_frames = frames_for_seconds(TEST_SECONDS, FPS)
    request = GenerationRequest(
        prefix=prefix,
        fps=float(FPS),
        prompt="A red ball and a blue ball are released and fall onto the wooden table. Static camera.",
        seed=0,
        num_frames=num_frames,
        mode=mode,  # type: ignore[arg-type]
    )
    video = generator.generate(request)
    height, width = prefix.shape[1:3]
    assert video.frames.shape == (num_frames, height, width, 3) and video.frames.dtype == np.uint8
    assert video.fps == FPS
    assert generator.frame_rule.is_valid(video.metadata["pipeline_num_frames"])
    assert video.frames.std() > 5  # not a blank clip
    # Conditioning reached the model: the continuation starts nearer the switch frame than its negative.
    switch = prefix[-1]
    assert mae(video.frames[0], switch) < mae(video.frames[0], 255 - switch), video.metadata


# -- VLMs (api / slow) ---------------------------------------------------------------------------------------
def _predict_and_critique(vlm: Any, suite: DatasetLayout) -> None:
    from agent.prompting import PromptSet
    from agent.reasoning import VLMReasoner, make_scene
    from agent.schemas import Critique, Prediction

    row = center_take1(suite)
    num_frames = frames_for_seconds(TEST_SECONDS, FPS)
    scene = make_scene(row.description, "v2v", float(FPS), num_frames, prefix_clip(suite))
    reasoner = VLMReasoner(vlm, PromptSet("default"))
    prediction = reasoner.predict(scene)
    assert isinstance(prediction, Prediction) and prediction.prompt.strip()
    real_continuation, _ = read_video(suite.testing_video(row, FPS))
    critique = reasoner.critique(scene, prediction.prompt, real_continuation)
    assert isinstance(critique, Critique) and not critique.failed
    assert 0.0 <= critique.score <= 1.0


@pytest.mark.api
def test_real_openai_compatible_vlm_predicts_and_critiques(suite: DatasetLayout) -> None:
    from agent.vlm import VLMS
    from agent.vlm.base import Message

    vlm = VLMS.resolve("openai")(**openai_settings())
    _predict_and_critique(vlm, suite)
    reply = vlm.chat([Message("user", "Reply with the single word: ok")])
    assert reply.text.strip() and reply.prompt_tokens > 0 and reply.completion_tokens > 0


@pytest.mark.slow
def test_real_transformers_vlm_predicts_and_critiques(suite: DatasetLayout) -> None:
    model = os.environ.get("PHYSREFINE_TRANSFORMERS_VLM", "")
    if not model:
        pytest.skip(
            "set PHYSREFINE_TRANSFORMERS_VLM=<hub id or local folder> (e.g. Qwen/Qwen2.5-VL-3B-Instruct)"
        )
    pytest.importorskip("transformers")
    from agent.vlm import VLMS

    _predict_and_critique(VLMS.resolve("transformers")(model=model, max_new_tokens=1024), suite)


# -- the whole loop (slow + gpu + api) -----------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.gpu
@pytest.mark.api
def test_real_refine_end_to_end(suite: DatasetLayout, tmp_path: Path) -> None:
    configured = [name for name, (variable, _) in CHECKPOINT_ENV.items() if os.environ.get(variable)]
    if not configured:
        pytest.skip("set one of " + ", ".join(v for v, _ in CHECKPOINT_ENV.values()))
    require_cuda()
    vlm = openai_settings()
    from typer.testing import CliRunner

    from agent.cli import app

    name = configured[0]
    run_dir = tmp_path / "run"
    args = [
        "refine", "--dataset", str(suite.root), "--run-dir", str(run_dir), "--fps", str(FPS),
        "--mode", CHECKPOINT_ENV[name][1], "--scenarios", center_take1(suite).id_str,
        "--generator", name, "--model", os.environ[CHECKPOINT_ENV[name][0]],
        "--vlm", "openai", "--vlm-model", vlm["model"], "--loops", "2", "--seeds", "1", "--json",
    ]  # fmt: skip
    if "base_url" in vlm:
        args += ["--base-url", vlm["base_url"]]
    for key, value in generator_options().items():
        args += ["--generator-opt", f"{key}={value}"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    videos = sorted(run_dir.glob("scenarios/*/attempts/*.mp4"))
    assert videos, summary
    for video in videos:
        info = probe(video)
        assert (info.fps, info.frame_count) == (FPS, frames_for_seconds(TEST_SECONDS, FPS))
    assert list(run_dir.glob("scenarios/*/attempts/*.critique-1.json"))
    key = os.environ.get("OPENAI_API_KEY", "")
    if key:
        written = b"".join(p.read_bytes() for p in run_dir.rglob("*") if p.is_file())
        assert key.encode() not in written and key not in result.output
