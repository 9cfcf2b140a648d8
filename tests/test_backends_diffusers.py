"""Diffusers adapters, end to end on tiny random-weight pipelines built offline.

Every family is built from the real diffusers/transformers classes at tiny configs by
:mod:`tests.tiny_models` (tokenizers built in memory from a vocab list, no hub), saved with
``save_pretrained`` and loaded back through exactly the adapter's ``from_pretrained(folder)`` path. Random weights produce noise,
so these tests check the contract (frame count, size, fps, range, determinism), the family rules, the
conditioning actually reaching the model and error mapping -- not visual quality.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
diffusers = pytest.importorskip("diffusers")
transformers = pytest.importorskip("transformers")
pytest.importorskip("ftfy")  # Wan's prompt cleaning

from generators import GENERATORS  # noqa: E402
from generators.base import GenerationError, GenerationRequest, Generator  # noqa: E402
from physics_iq.registry import BackendOptionError  # noqa: E402
from tests.tiny_models import tiny_folder  # noqa: E402

pytestmark = pytest.mark.models

# A 2-core machine under load runs tiny models ~10x slower with 2 threads than with 1.
torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Folders of tiny pipelines, built lazily once per session."""

    class _Lazy(dict):  # type: ignore[type-arg]
        def __missing__(self, key: str) -> Path:
            self[key] = tiny_folder(key, tmp_path_factory)
            return self[key]

    return _Lazy()


_LOADED: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}


def load(tiny_models: dict[str, Path], name: str, folder: str | None = None, **options: Any) -> Any:
    """The registered adapter ``name`` on the tiny folder (default: the one named like it), loaded once."""
    folder = folder or name
    key = (name, folder, tuple(sorted(options.items())))
    if key not in _LOADED:
        cls = GENERATORS.resolve(name)
        _LOADED[key] = cls(model=str(tiny_models[folder]), **{"num_inference_steps": "2", **options})
    return _LOADED[key]


def make_request(
    seed: int = 0,
    num_frames: int = 4,
    fps: float = 8.0,
    size: tuple[int, int] = (24, 40),
    prefix_len: int = 1,
) -> GenerationRequest:
    rng = np.random.default_rng(123)
    prefix = rng.integers(0, 256, size=(prefix_len, *size, 3), dtype=np.uint8)
    return GenerationRequest(
        prefix=prefix,
        fps=fps,
        prompt="the red ball falls down",
        seed=seed,
        num_frames=num_frames,
        mode="i2v" if prefix_len == 1 else "v2v",
    )


# Tiny generation sizes: 32x32 for the 16-multiple families, 64x64 for the 32-multiple ones.
_FAMILY_CASES = [
    pytest.param("wan2.1-i2v", {"height": "32", "width": "32"}, 16.0, 9, id="wan2.1-i2v"),
    pytest.param("wan2.2-i2v-a14b", {"height": "16", "width": "16"}, 16.0, 9, id="wan2.2-a14b"),
    pytest.param("wan2.2-ti2v-5b", {"height": "32", "width": "32"}, 24.0, 13, id="wan2.2-ti2v-5b"),
    pytest.param(
        "wan-vace", {"height": "16", "width": "16", "max_prefix_frames": "5"}, 16.0, 13, id="wan-vace"
    ),
    pytest.param(
        "ltx-condition", {"height": "32", "width": "32", "max_prefix_frames": "9"}, 24.0, 21, id="ltx"
    ),
    # CogVideoX 1.0 layout: fixed size and clip length (sample_frames=9) whatever the request.
    pytest.param("cogvideox-i2v", {"max_sequence_length": "16"}, 8.0, 9, id="cogvideox-1.0"),
    pytest.param(
        "cogvideox-i2v",
        {"height": "16", "width": "32", "max_sequence_length": "16", "folder": "cogvideox1.5-i2v"},
        16.0,
        9,
        id="cogvideox-1.5",
    ),
    pytest.param("svd", {"height": "32", "width": "32"}, 7.0, 5, id="svd"),
    pytest.param(
        "diffusers-i2v",
        {
            "height": "16",
            "width": "16",
            "frame_multiple": "8",
            "max_sequence_length": "16",
            "folder": "cogvideox1.5-i2v",
        },
        16.0,
        9,
        id="generic-on-cogvideox-1.5",
    ),
]


@pytest.mark.parametrize(("name", "options", "native_fps", "pipeline_frames"), _FAMILY_CASES)
def test_output_contract_and_determinism(
    tiny_models: dict[str, Path], name: str, options: dict[str, str], native_fps: float, pipeline_frames: int
) -> None:
    generator = load(tiny_models, name, **options)
    assert isinstance(generator, Generator)
    assert generator.native_fps == native_fps
    prefix_len = 12 if name in ("wan-vace", "ltx-condition") else 1
    request = make_request(seed=3, prefix_len=prefix_len)
    video = generator.generate(request)
    assert video.frames.shape == (4, 24, 40, 3)
    assert video.frames.dtype == np.uint8
    assert video.fps == request.fps
    assert video.metadata["pipeline_num_frames"] == pipeline_frames
    assert video.metadata["native_fps"] == native_fps
    assert video.frames.std() > 0  # random weights still give a non-constant clip
    again = generator.generate(request)
    np.testing.assert_array_equal(video.frames, again.frames)
    other_seed = generator.generate(make_request(seed=4, prefix_len=prefix_len))
    assert not np.array_equal(video.frames, other_seed.frames)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # fit_size(24, 40, max_area, multiple): the request's aspect ratio at the model card's pixel budget.
        pytest.param("wan2.1-i2v", (480, 800), id="wan2.1-480x832-area-16"),
        pytest.param("ltx-condition", (480, 800), id="ltx-512x768-area-32"),
        pytest.param("wan2.2-ti2v-5b", (704, 1216), id="wan2.2-5b-704x1280-area-32"),
    ],
)
def test_default_generation_size_keeps_the_aspect_ratio_within_the_family_area(
    tiny_models: dict[str, Path], name: str, expected: tuple[int, int]
) -> None:
    from generators.video_rules import fit_size

    generator = load(tiny_models, name)  # no height/width/max_area given
    size = generator.generation_size(make_request())
    assert size == expected == fit_size(24, 40, type(generator).default_max_area, generator.size_multiple)
    assert size[0] % generator.size_multiple == 0 and size[1] % generator.size_multiple == 0


def test_same_fps_as_native_skips_resampling(tiny_models: dict[str, Path]) -> None:
    generator = load(tiny_models, "wan2.1-i2v", height="32", width="32")
    video = generator.generate(make_request(num_frames=8, fps=16.0))
    assert video.frames.shape == (8, 24, 40, 3)
    assert video.metadata["pipeline_num_frames"] == 9


def test_switch_frame_conditions_i2v_output(tiny_models: dict[str, Path]) -> None:
    generator = load(tiny_models, "wan2.1-i2v", height="32", width="32")
    request = make_request(seed=1)
    other = GenerationRequest(**{**request.__dict__, "prefix": 255 - request.prefix})
    assert not np.array_equal(generator.generate(request).frames, generator.generate(other).frames)


@pytest.mark.parametrize(
    ("name", "options", "match"),
    [
        pytest.param(
            "wan2.1-i2v", {"height": "40", "width": "32"}, "multiples of 16", id="size-not-multiple"
        ),
        pytest.param("wan2.1-i2v", {"height": "32"}, "both height and width", id="height-without-width"),
        pytest.param(
            "wan2.1-i2v", {"num_inference_step": "2"}, "unknown option 'num_inference_step'", id="typo"
        ),
        pytest.param("wan2.1-i2v", {"guidance_scale": "lots"}, "guidance_scale='lots'", id="bad-float"),
        pytest.param(
            "cogvideox-i2v", {"height": "32", "width": "32"}, "only generates at 16x16", id="cog10-size"
        ),
    ],
)
def test_option_and_rule_errors_name_the_value(
    tiny_models: dict[str, Path], name: str, options: dict[str, str], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        GENERATORS.resolve(name)(model=str(tiny_models[name]), **options)


def test_wrong_checkpoint_layout_is_rejected(tiny_models: dict[str, Path]) -> None:
    with pytest.raises(ValueError, match=r"not a Wan 2.1 I2V checkpoint"):
        GENERATORS.resolve("wan2.1-i2v")(model=str(tiny_models["wan2.2-i2v-a14b"]))
    with pytest.raises(ValueError, match=r"not a Wan 2.2 TI2V-5B checkpoint"):
        GENERATORS.resolve("wan2.2-ti2v-5b")(model=str(tiny_models["wan2.1-i2v"]))


def test_missing_model_folder_is_a_clear_error(tmp_path: Path) -> None:
    # Named as a missing folder before any loading (not sent to the hub as a repository id).
    with pytest.raises(BackendOptionError, match=r"--model '.*nope': no such folder"):
        GENERATORS.resolve("wan2.1-i2v")(model=str(tmp_path / "nope"), local_files_only="true")


def test_cogvideox_10_rejects_requests_longer_than_its_fixed_clip(tiny_models: dict[str, Path]) -> None:
    generator = load(tiny_models, "cogvideox-i2v", max_sequence_length="16")
    # A request the family cannot serve is a GenerationError (recorded on the attempt; the run goes on), not
    # the ValueError of a bad option; the family rule's ValueError is chained with the same message.
    with pytest.raises(
        GenerationError, match=r"more than the 9 this CogVideoX 1.0 checkpoint generates"
    ) as e:
        generator.generate(make_request(num_frames=40))  # 5 s at 8 fps = 41 native frames
    assert isinstance(e.value.__cause__, ValueError) and str(e.value.__cause__) == str(e.value)


def test_a_checkpoint_whose_fixed_clip_length_the_vae_cannot_decode_is_refused(
    tiny_models: dict[str, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A CogVideoX 1.0 layout generates exactly sample_frames frames; 10 is not 8k+1 (4x temporal VAE, 2x
    # latent patch), so the pipeline would hand back another length. The real request is refused up front.
    folder = tmp_path / "cogvideox-10-frames"
    shutil.copytree(tiny_models["cogvideox-i2v"], folder)
    config_path = folder / "transformer" / "config.json"
    config = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**config, "sample_frames": 10}))
    generator = GENERATORS.resolve("cogvideox-i2v")(
        model=str(folder), num_inference_steps="2", max_sequence_length="16"
    )
    calls = []
    monkeypatch.setattr(generator.pipeline.transformer, "forward", lambda *a, **k: calls.append(1))
    with pytest.raises(GenerationError) as refused:
        generator.generate(make_request(num_frames=4))
    assert str(refused.value) == (
        "cogvideox-i2v: num_frames=10 is not of the form 8*k+1 (nearest valid: 9 or 17); "
        "the pipeline would silently change it"
    )
    assert isinstance(refused.value.__cause__, ValueError)
    assert calls == []  # refused before the pipeline ran


@pytest.mark.parametrize(
    ("error", "match"),
    [
        pytest.param(
            torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB"),
            r"wan2\.2-i2v-a14b: out of memory generating 9 frames at 16x16 \(CUDA out of memory\. Tried to "
            r"allocate 20\.00 GiB\); try cpu_offload=true",
            id="oom",
        ),
        pytest.param(
            RuntimeError("mat1 and mat2 shapes cannot be multiplied (4x8 and 16x8)"),
            r"wan2\.2-i2v-a14b: pipeline failed: RuntimeError: mat1 and mat2 shapes cannot be multiplied",
            id="pipeline-error",
        ),
    ],
)
def test_a_component_failing_inside_the_real_pipeline_is_a_generation_error(
    tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch, error: Exception, match: str
) -> None:
    generator = load(tiny_models, "wan2.2-i2v-a14b", height="16", width="16")
    request = make_request()
    before = generator.generate(request).frames
    # The real pipeline runs (text encoder, VAE encode, scheduler); its first denoising step -- Wan 2.2 A14B's
    # high-noise transformer -- fails the way a GPU or a shape bug would.
    transformer = generator.pipeline.transformer
    calls = []

    def failing_forward(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        raise error

    with monkeypatch.context() as patch:
        patch.setattr(transformer, "forward", failing_forward)
        with pytest.raises(GenerationError, match=match) as failure:
            generator.generate(request)
    assert calls == [1]  # raised from inside the pipeline, on its first transformer call
    assert failure.value.__cause__ is error  # chained: the traceback still shows where it failed
    # Loaded once and never mutated per call: the same pipeline serves the next request, identically.
    np.testing.assert_array_equal(generator.generate(request).frames, before)


def test_pipeline_returning_a_silently_rounded_clip_is_caught(
    tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    generator = load(tiny_models, "wan2.2-i2v-a14b", height="16", width="16")
    real = generator.pipeline

    def rounding_pipeline(**kwargs: Any) -> Any:
        kwargs["num_frames"] -= 4  # what a pipeline that floors num_frames would hand back
        return real(**kwargs)

    monkeypatch.setattr(generator, "pipeline", rounding_pipeline)
    with pytest.raises(GenerationError, match="planned 9"):
        generator.generate(make_request())


def test_ltx_keeps_the_prefix_latents_and_continues_from_them(
    tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from generators.diffusers_common import seeded_generator

    generator = load(
        tiny_models,
        "ltx-condition",
        height="32",
        width="32",
        max_prefix_frames="9",
        image_cond_noise_scale="0",
    )
    request = make_request(seed=0, prefix_len=12)
    keep = generator._conditioning_frames(request)
    assert keep == 9  # 12 frames at 8 fps -> 36 at 24 fps -> last 9 (8k+1 within max_prefix_frames)
    seen: dict[str, Any] = {}
    real = generator.pipeline

    def spy(**kwargs: Any) -> Any:
        seen.update(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(generator, "pipeline", spy)
    first = generator.generate(request)
    (condition,) = seen["conditions"]
    assert (condition.frame_index, condition.strength, len(condition.video)) == (0, 1.0, keep)

    # The prefix latents are written in with strength 1 and never denoised: with the same seed, another
    # prompt leaves the prefix's latent frames untouched and changes the continuation's.
    def latents(prompt: str) -> Any:
        kwargs = {**seen, "prompt": prompt, "output_type": "latent", "generator": seeded_generator(0)}
        return real(**kwargs).frames

    a, b = latents(request.prompt), latents("blue water pours")
    latent_keep = (keep - 1) // generator.frame_rule.multiple + 1
    assert a.ndim == 5  # (batch, channels, latent frames, h, w)
    torch.testing.assert_close(a[:, :, :latent_keep], b[:, :, :latent_keep])
    assert (a[:, :, latent_keep:] - b[:, :, latent_keep:]).abs().mean() > 1e-4
    # And the continuation depends on the prefix content.
    flipped = GenerationRequest(**{**request.__dict__, "prefix": 255 - request.prefix})
    assert not np.array_equal(generator.generate(flipped).frames, first.frames)


def test_wan_vace_gives_the_prefix_as_kept_frames(
    tiny_models: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Random tiny VACE weights barely react to the control video (measured: ~5e-6 output change for a flipped
    # prefix), so check what reaches the pipeline: the native-fps prefix, kept by the mask, then grey to fill.
    generator = load(tiny_models, "wan-vace", height="16", width="16", max_prefix_frames="5")
    request = make_request(seed=0, prefix_len=12)
    seen: dict[str, Any] = {}
    real = generator.pipeline

    def spy(**kwargs: Any) -> Any:
        seen.update(kwargs)
        return real(**kwargs)

    monkeypatch.setattr(generator, "pipeline", spy)
    video = generator.generate(request)
    assert video.frames.shape == (4, 24, 40, 3)
    frames = np.stack([np.asarray(image) for image in seen["video"]])
    masks = np.stack([np.asarray(image) for image in seen["mask"]])
    assert len(frames) == len(masks) == seen["num_frames"] == 13
    from generators.video_rules import resize_frames
    from physics_iq.video import resample_fps

    expected_prefix = resize_frames(resample_fps(request.prefix, 8.0, 16.0)[-5:], 16, 16)
    np.testing.assert_array_equal(frames[:5], expected_prefix)
    assert (frames[5:] == 127).all()
    assert (masks[:5] == 0).all() and (masks[5:] == 255).all()
