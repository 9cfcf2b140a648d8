"""Wan 2.1 / 2.2 image-to-video and Wan VACE video continuation through diffusers.

Checkpoint layouts (diffusers format) and how they are told apart after loading:

* Wan 2.1 I2V (``Wan-AI/Wan2.1-I2V-14B-480P-Diffusers``, ``-720P-``): one transformer plus a CLIP image
  encoder (``image_encoder`` / ``image_processor``).
* Wan 2.2 I2V A14B (``Wan-AI/Wan2.2-I2V-A14B-Diffusers``): two transformers, high-noise and low-noise, switched
  at ``boundary_ratio`` of the schedule; no image encoder.
* Wan 2.2 TI2V 5B (``Wan-AI/Wan2.2-TI2V-5B-Diffusers``): one transformer, a 16x16 spatial VAE and
  ``expand_timesteps`` (the image is injected as clean first latent frame); 24 fps.
* Wan VACE (``Wan-AI/Wan2.1-VACE-1.3B-diffusers``, ``-14B-``): all-in-one editing; here the prefix clip is
  given as the first frames of ``video`` with a mask that keeps them, and the rest is generated (true
  multi-frame continuation).

Rules (from the loaded components): frames ``4k+1`` (temporal VAE stride), height/width multiples of
``VAE stride * patch size`` (16; 32 for TI2V-5B). Native fps 16 (24 for TI2V-5B), from the model cards.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from PIL import Image
from pydantic import Field

from generators.base import GenerationRequest, PromptStyle
from generators.diffusers_common import (
    DiffusersGenerator,
    DiffusersOptions,
    batch_frames,
    switch_frame_image,
    to_pil,
)
from generators.video_rules import FramePlan, FrameRule, resize_frames
from physics_iq.registry import BackendOptionError
from physics_iq.video import resample_fps


class WanOptions(DiffusersOptions):
    """Wan options; defaults from the diffusers Wan examples.

    Attributes:
        guidance_scale_2: Guidance for the low-noise transformer of Wan 2.2 A14B (defaults to
            ``guidance_scale``).
    """

    num_inference_steps: int = Field(40, ge=1)
    guidance_scale: float = Field(5.0, ge=0)
    guidance_scale_2: float | None = Field(None, ge=0)


def _transformer(pipe: Any) -> Any:
    return pipe.transformer if pipe.transformer is not None else pipe.transformer_2


class _WanBase(DiffusersGenerator):
    options_class: ClassVar[type[DiffusersOptions]] = WanOptions

    def _frame_rule(self, pipe: Any) -> FrameRule:
        return FrameRule(int(pipe.vae_scale_factor_temporal))

    def _size_multiple(self, pipe: Any) -> int:
        patch = _transformer(pipe).config.patch_size
        return int(pipe.vae_scale_factor_spatial) * int(patch[1])

    def _native_fps(self, pipe: Any) -> float:
        # Wan 2.2 TI2V-5B is the expand_timesteps layout and runs at 24 fps; the 14B models at 16 fps.
        return 24.0 if getattr(pipe.config, "expand_timesteps", False) else 16.0


class WanI2VGenerator(_WanBase):
    """Any Wan image-to-video checkpoint (2.1 with CLIP encoder, 2.2 A14B, 2.2 TI2V-5B), conditioned on the
    switch frame. The named subclasses below also check that the folder holds the layout they name."""

    #: Wan was trained on long, detailed captions and takes a negative prompt.
    prompt_style: ClassVar[PromptStyle] = PromptStyle(
        words=(80, 160),
        negative_prompt=True,
        note="Wan reads long, detailed prompts best: subject, motion, camera, lighting and the end state.",
    )

    name = "wan-i2v"
    pipeline_class: ClassVar[str] = "WanImageToVideoPipeline"
    default_max_area: ClassVar[int] = 480 * 832

    def _call(
        self, request: GenerationRequest, plan: FramePlan, height: int, width: int, generator: torch.Generator
    ) -> np.ndarray:
        kwargs = self._common_kwargs(request)
        if self.options.guidance_scale_2 is not None:
            kwargs["guidance_scale_2"] = self.options.guidance_scale_2
        output = self.pipeline(
            image=switch_frame_image(request, height, width),
            prompt=request.prompt,
            negative_prompt=self.negative_prompt(request),
            height=height,
            width=width,
            num_frames=plan.total,
            generator=generator,
            **kwargs,
        )
        return batch_frames(output)


class Wan21I2VGenerator(WanI2VGenerator):
    """Wan 2.1 I2V (CLIP image encoder + one transformer), 16 fps, 480P or 720P."""

    name = "wan2.1-i2v"

    def _check_pipeline(self, pipe: Any) -> None:
        if pipe.image_encoder is None or pipe.transformer is None or pipe.transformer_2 is not None:
            raise BackendOptionError(
                f"{self.name}: {self.options.model!r} is not a Wan 2.1 I2V checkpoint (needs image_encoder and "
                "one transformer); for Wan 2.2 use --generator wan2.2-i2v-a14b or wan2.2-ti2v-5b"
            )


class Wan22I2VA14BGenerator(WanI2VGenerator):
    """Wan 2.2 I2V A14B: high-noise and low-noise transformers switched at ``boundary_ratio``, 16 fps."""

    name = "wan2.2-i2v-a14b"
    default_max_area: ClassVar[int] = 720 * 1280

    def _check_pipeline(self, pipe: Any) -> None:
        if pipe.transformer_2 is None or pipe.config.boundary_ratio is None:
            raise BackendOptionError(
                f"{self.name}: {self.options.model!r} is not a Wan 2.2 A14B checkpoint "
                "(needs transformer_2 and boundary_ratio in model_index.json)"
            )


class Wan22TI2V5BGenerator(WanI2VGenerator):
    """Wan 2.2 TI2V 5B: one transformer, 16x16 VAE, ``expand_timesteps``, 24 fps, 704x1280."""

    name = "wan2.2-ti2v-5b"
    default_max_area: ClassVar[int] = 704 * 1280

    def _check_pipeline(self, pipe: Any) -> None:
        if not getattr(pipe.config, "expand_timesteps", False):
            raise BackendOptionError(
                f"{self.name}: {self.options.model!r} is not a Wan 2.2 TI2V-5B checkpoint "
                "(model_index.json must set expand_timesteps: true)"
            )


class WanVACEOptions(WanOptions):
    """Wan VACE options.

    Attributes:
        max_prefix_frames: Most prefix frames (at the native fps, ending at the switch frame) given to the
            model as context; more context costs memory and leaves fewer of the clip's frames for new content.
        conditioning_scale: VACE control strength.
    """

    max_prefix_frames: int = Field(17, ge=1)
    conditioning_scale: float = Field(1.0, ge=0)


class WanVACEGenerator(_WanBase):
    """Wan VACE as true prefix-clip continuation: the prefix (resampled to the native fps) fills the first
    frames of ``video`` with a mask that keeps them; the remaining masked frames are generated."""

    name = "wan-vace"
    pipeline_class: ClassVar[str] = "WanVACEPipeline"
    options_class: ClassVar[type[DiffusersOptions]] = WanVACEOptions
    default_max_area: ClassVar[int] = 480 * 832

    def _native_prefix(self, request: GenerationRequest) -> np.ndarray:
        prefix = np.asarray(request.prefix)
        if len(prefix) > 1 and abs(request.fps - self.native_fps) > 1e-9:
            # resample_fps spans first..last frame, so the switch frame stays the last one.
            prefix = resample_fps(prefix, request.fps, self.native_fps)
        return prefix[-self.options.max_prefix_frames :]

    def _conditioning_frames(self, request: GenerationRequest) -> int:
        return len(self._native_prefix(request))

    def _call(
        self, request: GenerationRequest, plan: FramePlan, height: int, width: int, generator: torch.Generator
    ) -> np.ndarray:
        prefix = resize_frames(self._native_prefix(request), height, width)
        keep = len(prefix)
        # VACE convention: grey (127) pixels where content is to be generated; mask white = generate.
        video = np.full((plan.total, height, width, 3), 127, np.uint8)
        video[:keep] = prefix
        mask = np.zeros((plan.total, height, width), np.uint8)
        mask[keep:] = 255
        kwargs = self._common_kwargs(request)
        if self.options.guidance_scale_2 is not None:
            kwargs["guidance_scale_2"] = self.options.guidance_scale_2
        output = self.pipeline(
            video=to_pil(video),
            mask=[Image.fromarray(m, mode="L") for m in mask],
            prompt=request.prompt,
            negative_prompt=self.negative_prompt(request),
            conditioning_scale=self.options.conditioning_scale,
            height=height,
            width=width,
            num_frames=plan.total,
            generator=generator,
            **kwargs,
        )
        return batch_frames(output)
