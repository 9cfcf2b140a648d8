"""What every diffusers adapter shares: options, loading once, seeding, the frame plan and error mapping.

A family module subclasses :class:`DiffusersGenerator` and supplies the pipeline class, its rules (valid frame
counts, size multiple, native fps) read from the loaded components, and one ``_call`` that maps a request to
the pipeline's own argument names. Everything else -- validating options that arrive as CLI strings, picking
device and dtype, CPU offload and VAE tiling, a seeded CPU ``torch.Generator`` per call, planning native
frames, converting the output to exactly ``num_frames`` at the request's fps and size, and turning pipeline
failures (out of memory included) into :class:`~generators.base.GenerationError` -- lives here, once.

Importing this module imports torch and diffusers; the registry in :mod:`generators` only does so when a
diffusers backend is asked for by name.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np
import torch
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from generators.base import GeneratedVideo, GenerationError, GenerationRequest, check_output
from generators.video_rules import (
    FramePlan,
    FrameRule,
    check_size,
    fit_size,
    float_to_uint8,
    plan_frames,
    resize_frames,
    to_request_clip,
)
from physics_iq.registry import BackendOptionError

logger = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


class DiffusersOptions(BaseModel):
    """Options every diffusers adapter accepts (``--generator-opt KEY=VALUE`` strings are coerced).

    Attributes:
        model: Hub model id or local folder written by ``save_pretrained``.
        dtype: Weights dtype; ``auto`` is bfloat16 on CUDA and float32 on CPU (half precision on CPU is slow
            and poorly supported).
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda``, ``cuda:1``...
        cpu_offload: Keep sub-models on the CPU and move each to the GPU only while it runs
            (``enable_model_cpu_offload``): much less VRAM, somewhat slower.
        vae_tiling: Decode in tiles (``vae.enable_tiling``) to bound decoder memory at high resolution.
        num_inference_steps: Denoising steps.
        guidance_scale: Classifier-free guidance scale.
        height: Generation height; with ``width``, fixed for every request (must fit the family's multiple).
        width: Generation width.
        max_area: When height/width are not given, generate at the request's aspect ratio with about this
            many pixels (family default from the model card).
        native_fps: The model's frame rate, used to plan frames and resample to the benchmark fps.
        max_sequence_length: Text tokens kept (pipeline default when unset).
        negative_prompt: Used when the request has none.
        local_files_only: Never contact the hub (a local folder never needs it).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1)
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    device: str = "auto"
    cpu_offload: bool = False
    vae_tiling: bool = False
    num_inference_steps: int = Field(30, ge=1)
    guidance_scale: float = Field(5.0, ge=0)
    height: int | None = Field(None, gt=0)
    width: int | None = Field(None, gt=0)
    max_area: int | None = Field(None, gt=0)
    native_fps: float | None = Field(None, gt=0)
    max_sequence_length: int | None = Field(None, ge=1)
    negative_prompt: str = ""
    local_files_only: bool = False


def parse_options(options_cls: type[BaseModel], who: str, values: Mapping[str, Any]) -> Any:
    """Validate constructor keywords into ``options_cls``, raising ``ValueError`` that names each bad field.

    Values given as ``None`` are treated as not given, so the CLI can pass unset options through.
    """
    given = {key: value for key, value in values.items() if value is not None}
    try:
        return options_cls(**given)
    except PydanticValidationError as exc:
        problems = []
        for error in exc.errors():
            field = ".".join(str(part) for part in error["loc"]) or "?"
            if error["type"] == "extra_forbidden":
                known = ", ".join(sorted(options_cls.model_fields))
                problems.append(f"unknown option {field!r} (known: {known})")
            else:
                problems.append(f"option {field}={error.get('input')!r}: {error['msg']}")
        raise BackendOptionError(f"{who}: " + "; ".join(problems)) from None


def check_model_source(model: str, who: str) -> None:
    """Refuse, before any loading, a model that is neither a pipeline folder nor a hub id.

    A path that exists must be a folder holding ``model_index.json`` (what ``save_pretrained`` writes); a
    string that looks like a path (absolute, ``./``, ``../``, ``~``, or more than one ``/``) but does not
    exist is named as a missing folder instead of being sent to the hub as a repository id.

    Raises:
        BackendOptionError: naming ``--model`` and what is wrong.

    >>> check_model_source("/nonexistent/wan", "wan2.1-i2v")
    Traceback (most recent call last):
    ...
    physics_iq.registry.BackendOptionError: --model '/nonexistent/wan': no such folder (wan2.1-i2v needs a folder written by save_pretrained, or a hub id such as 'org/name')
    >>> check_model_source("Wan-AI/Wan2.1-I2V-14B-480P-Diffusers", "wan2.1-i2v")  # a hub id: left to the hub
    """
    path = Path(model).expanduser()
    if path.exists():
        if not path.is_dir():
            raise BackendOptionError(
                f"--model {model!r}: a file, not a pipeline folder ({who} needs a folder)"
            )
        if not (path / "model_index.json").is_file():
            raise BackendOptionError(
                f"--model {model!r}: no model_index.json in this folder; {who} needs a diffusers pipeline folder "
                "(written by save_pretrained or downloaded from the hub)"
            )
        return
    looks_like_path = (
        model.startswith(("/", "./", "../", "~", ".\\")) or model.count("/") > 1 or "\\" in model
    )
    if looks_like_path:
        raise BackendOptionError(
            f"--model {model!r}: no such folder ({who} needs a folder written by save_pretrained, "
            "or a hub id such as 'org/name')"
        )


def resolve_device(device: str) -> str:
    """``auto`` -> ``cuda`` when available, else ``cpu``; anything else is passed through."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def resolve_dtype(dtype: str, device: str) -> torch.dtype:
    """``auto`` -> bfloat16 on CUDA, float32 elsewhere."""
    if dtype == "auto":
        return torch.bfloat16 if device.startswith("cuda") else torch.float32
    return _DTYPES[dtype]


def seeded_generator(seed: int) -> torch.Generator:
    """A CPU generator: diffusers draws noise on it and moves it, so a seed gives the same clip on any device."""
    return torch.Generator(device="cpu").manual_seed(int(seed))


def to_pil(frames: np.ndarray) -> list[Image.Image]:
    """``(T, H, W, 3)`` uint8 -> list of RGB PIL images."""
    return [Image.fromarray(np.ascontiguousarray(frame), mode="RGB") for frame in frames]


def _dtype_kwarg(dtype: torch.dtype) -> dict[str, torch.dtype]:
    """``from_pretrained``'s dtype keyword: ``dtype`` in recent diffusers, ``torch_dtype`` before."""
    from diffusers.utils import deprecation_utils

    return {"dtype": dtype} if hasattr(deprecation_utils, "_resolve_dtype") else {"torch_dtype": dtype}


def _is_out_of_memory(exc: BaseException) -> bool:
    oom_types = tuple(t for t in (getattr(torch, "OutOfMemoryError", None),) if t is not None)
    return isinstance(exc, oom_types) or "out of memory" in str(exc).lower()


class DiffusersGenerator:
    """Base adapter: load a diffusers pipeline once, generate continuations that satisfy the output contract.

    Subclasses set :attr:`pipeline_class` (a diffusers attribute name), :attr:`options_class`,
    :attr:`default_max_area` and implement :meth:`_native_fps`, :meth:`_frame_rule`, :meth:`_size_multiple`,
    :meth:`_conditioning_frames` and :meth:`_call`. ``_check_pipeline`` may reject a folder that holds a
    different family.

    Args:
        model: Hub id or local folder.
        **options: Any field of the family's options class (strings are coerced).
    """

    name: str = "diffusers"
    #: A pipeline keeps per-call state on itself and its scheduler (timesteps, step index, guidance scale):
    #: overlapping calls on one instance corrupt each other, so the pool serves one call per instance.
    concurrent_safe: ClassVar[bool] = False
    pipeline_class: ClassVar[str] = "DiffusionPipeline"
    options_class: ClassVar[type[DiffusersOptions]] = DiffusersOptions
    default_max_area: ClassVar[int] = 480 * 832

    def __init__(self, model: str | None = None, **options: Any) -> None:
        self.options = parse_options(self.options_class, self.name, {"model": model, **options})
        opts = self.options
        self.device = resolve_device(opts.device)
        self.torch_dtype = resolve_dtype(opts.dtype, self.device)
        if (opts.height is None) != (opts.width is None):
            raise BackendOptionError(
                f"{self.name}: give both height and width, or neither (got {opts.height}, {opts.width})"
            )
        started = time.perf_counter()
        self.pipeline = self._load()
        self._check_pipeline(self.pipeline)
        self.frame_rule = self._frame_rule(self.pipeline)
        self.size_multiple = self._size_multiple(self.pipeline)
        self.native_fps = float(opts.native_fps or self._native_fps(self.pipeline))
        if opts.height is not None and opts.width is not None:
            try:
                check_size(opts.height, opts.width, self.size_multiple, self.name)
            except ValueError as exc:  # the --generator-opt height/width, not a request: an option error
                raise BackendOptionError(str(exc)) from None
        logger.info(
            "%s: loaded %s from %s on %s (%s) in %.1f s; frames %s*k+1, size multiple %d, native %.3g fps",
            self.name,
            type(self.pipeline).__name__,
            opts.model,
            self.device,
            self.torch_dtype,
            time.perf_counter() - started,
            self.frame_rule.multiple,
            self.size_multiple,
            self.native_fps,
        )

    # -- loading ---------------------------------------------------------------------------------------------

    def _load(self) -> Any:
        import diffusers

        opts = self.options
        check_model_source(opts.model, self.name)
        cls = getattr(diffusers, self.pipeline_class)
        try:
            pipe = cls.from_pretrained(
                opts.model, local_files_only=opts.local_files_only, **_dtype_kwarg(self.torch_dtype)
            )
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendOptionError(
                f"--model {opts.model!r}: {self.name} could not load a {self.pipeline_class} from it "
                f"({type(exc).__name__}: {first_line})"
            ) from exc
        if opts.cpu_offload:
            # Offload hooks move each sub-model to the accelerator when it runs; .to() would defeat them.
            pipe.enable_model_cpu_offload(device=self.device)
        else:
            pipe.to(self.device)
        if opts.vae_tiling:
            vae = getattr(pipe, "vae", None)
            if vae is None or not hasattr(vae, "enable_tiling"):
                raise BackendOptionError(
                    f"{self.name}: vae_tiling=true but {type(pipe).__name__} has no tiling VAE"
                )
            vae.enable_tiling()
        pipe.set_progress_bar_config(disable=True)
        return pipe

    def _check_pipeline(self, pipe: Any) -> None:
        """Raise ``ValueError`` when the loaded folder is not what this adapter expects."""

    # -- family rules ----------------------------------------------------------------------------------------

    def _native_fps(self, pipe: Any) -> float:
        raise NotImplementedError

    def _frame_rule(self, pipe: Any) -> FrameRule:
        raise NotImplementedError

    def _size_multiple(self, pipe: Any) -> int:
        raise NotImplementedError

    def _conditioning_frames(self, request: GenerationRequest) -> int:
        """Leading output frames that re-decode the conditioning input (dropped from the result)."""
        return 1

    def _plan(self, request: GenerationRequest) -> FramePlan:
        return plan_frames(
            request.num_frames,
            request.fps,
            self.native_fps,
            self.frame_rule,
            conditioning=self._conditioning_frames(request),
        )

    def generation_size(self, request: GenerationRequest) -> tuple[int, int]:
        """``(height, width)`` the pipeline runs at: the configured size, else the request's aspect ratio."""
        opts = self.options
        if opts.height is not None and opts.width is not None:
            return opts.height, opts.width
        area = opts.max_area or self.default_max_area
        return fit_size(request.height, request.width, area, self.size_multiple)

    # -- generation ------------------------------------------------------------------------------------------

    def _call(
        self,
        request: GenerationRequest,
        plan: FramePlan,
        height: int,
        width: int,
        generator: torch.Generator,
    ) -> np.ndarray:
        """Run the pipeline; return ``(plan.total, height, width, 3)`` floats in [0, 1]."""
        raise NotImplementedError

    def _common_kwargs(self, request: GenerationRequest) -> dict[str, Any]:
        opts = self.options
        kwargs: dict[str, Any] = {
            "num_inference_steps": opts.num_inference_steps,
            "guidance_scale": opts.guidance_scale,
            "output_type": "np",
        }
        if opts.max_sequence_length is not None:
            kwargs["max_sequence_length"] = opts.max_sequence_length
        return kwargs

    def negative_prompt(self, request: GenerationRequest) -> str:
        return request.negative_prompt or self.options.negative_prompt

    def generate(self, request: GenerationRequest) -> GeneratedVideo:
        """Generate ``request.num_frames`` frames after the switch frame at ``request.fps`` and size.

        Raises:
            GenerationError: This request cannot be served: the family's rules rule it out (bad prefix, a
                clip longer than the checkpoint makes, a size it cannot make), the pipeline failed (out of
                memory included) or returned a wrong clip. Option errors are ``ValueError`` from the
                constructor; a request-time error is recorded on the attempt and the run goes on.
        """
        prefix = np.asarray(request.prefix)
        if prefix.ndim != 4 or prefix.shape[-1] != 3 or prefix.dtype != np.uint8 or len(prefix) == 0:
            raise GenerationError(
                f"{self.name}: prefix must be (P, H, W, 3) uint8 with P >= 1, got {prefix.shape}"
            )
        try:
            plan = self._plan(request)
            height, width = self.generation_size(request)
            check_size(height, width, self.size_multiple, self.name)
            self.frame_rule.check(plan.total, self.name)
        except ValueError as exc:  # the family's rules (generators/video_rules.py) refuse this request
            raise GenerationError(str(exc)) from exc
        started = time.perf_counter()
        try:
            with torch.inference_mode():
                raw = self._call(request, plan, height, width, seeded_generator(request.seed))
        except GenerationError:
            raise
        except Exception as exc:  # any pipeline failure is recorded on the attempt; the run goes on
            if _is_out_of_memory(exc):
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
                raise GenerationError(
                    f"{self.name}: out of memory generating {plan.total} frames at {width}x{height} "
                    f"({exc}); try cpu_offload=true, vae_tiling=true or a smaller height/width"
                ) from exc
            raise GenerationError(f"{self.name}: pipeline failed: {type(exc).__name__}: {exc}") from exc
        elapsed = time.perf_counter() - started
        try:
            native = float_to_uint8(np.asarray(raw))
            if native.shape[1:3] != (height, width):
                raise ValueError(f"pipeline returned size {native.shape[1:3]}, asked for {(height, width)}")
            frames = to_request_clip(
                native, plan, request.num_frames, request.fps, request.height, request.width
            )
        except ValueError as exc:
            raise GenerationError(f"{self.name}: {exc}") from exc
        metadata = {
            "generator": self.name,
            "model": self.options.model,
            "pipeline": type(self.pipeline).__name__,
            "native_fps": self.native_fps,
            "pipeline_num_frames": plan.total,
            "dropped_conditioning_frames": plan.conditioning,
            "generation_size": [height, width],
            "num_inference_steps": self.options.num_inference_steps,
            "guidance_scale": self.options.guidance_scale,
            "seed": int(request.seed),
            "seconds": round(elapsed, 3),
        }
        return check_output(
            request, GeneratedVideo(frames=frames, fps=request.fps, metadata=metadata), self.name
        )


def switch_frame_image(request: GenerationRequest, height: int, width: int) -> Image.Image:
    """The switch frame resized to the generation size, as a PIL image (what i2v pipelines take)."""
    frame = resize_frames(request.prefix[-1:], height, width)[0]
    return Image.fromarray(frame, mode="RGB")


def batch_frames(output: Any) -> np.ndarray:
    """First video of a pipeline output's ``frames`` (``output_type="np"``), as ``(T, H, W, 3)`` floats."""
    frames = output.frames if hasattr(output, "frames") else output[0]
    frames = frames[0] if isinstance(frames, list | tuple) else frames
    array = np.asarray(frames)
    if array.ndim == 5:
        array = array[0]
    return array
