"""CogVideoX image-to-video through diffusers (``CogVideoXImageToVideoPipeline``), conditioned on the switch frame.

Two checkpoint layouts, told apart from the loaded transformer's config:

* CogVideoX 1.0 I2V (``THUDM/CogVideoX-5b-I2V``): learned positional embeddings, so the size is fixed at
  ``sample_height x sample_width`` latents (480x720) and the clip length at ``sample_frames`` (49) -- any other
  length silently swaps in sin-cos embeddings the model never saw. 8 fps. The adapter always generates the
  49 frames and keeps the part covering the request.
* CogVideoX 1.5 I2V (``THUDM/CogVideoX1.5-5B-I2V``): temporal patch size 2, any size that is a multiple of
  16, 16 fps, 81 or 161 frames on its card.

Frame rule: ``8k+1`` (the card lengths 49, 81 and 161; the VAE alone needs ``4k+1`` and the pipeline silently
floors anything else).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field

from generators.base import GenerationRequest, PromptStyle
from generators.diffusers_common import DiffusersGenerator, DiffusersOptions, batch_frames, switch_frame_image
from generators.video_rules import FramePlan, FrameRule
from physics_iq.registry import BackendOptionError


class CogVideoXOptions(DiffusersOptions):
    """CogVideoX options; defaults from the diffusers CogVideoX I2V example.

    Attributes:
        use_dynamic_cfg: Cosine-ramped guidance, recommended with the DPM scheduler.
    """

    num_inference_steps: int = Field(50, ge=1)
    guidance_scale: float = Field(6.0, ge=0)
    use_dynamic_cfg: bool = False


class CogVideoXI2VGenerator(DiffusersGenerator):
    """CogVideoX 1.0 / 1.5 image-to-video."""

    #: CogVideoX was trained on long captions (up to 226 tokens) and takes a negative prompt.
    prompt_style: ClassVar[PromptStyle] = PromptStyle(
        words=(80, 160),
        negative_prompt=True,
        note="CogVideoX reads long, detailed, descriptive prompts best (about 200 tokens at most).",
    )

    name = "cogvideox-i2v"
    pipeline_class: ClassVar[str] = "CogVideoXImageToVideoPipeline"
    options_class: ClassVar[type[DiffusersOptions]] = CogVideoXOptions
    default_max_area: ClassVar[int] = 768 * 1360

    @property
    def fixed_layout(self) -> bool:
        """CogVideoX 1.0: learned positional embeddings fix the size and the clip length."""
        return bool(self.pipeline.transformer.config.use_learned_positional_embeddings)

    def _check_pipeline(self, pipe: Any) -> None:
        if self.fixed_layout and self.options.height is not None:
            fixed = self._fixed_size(pipe)
            if (self.options.height, self.options.width) != fixed:
                raise BackendOptionError(
                    f"{self.name}: {self.options.model!r} (CogVideoX 1.0 layout) only generates at "
                    f"{fixed[0]}x{fixed[1]}, got height={self.options.height}, width={self.options.width}"
                )

    @staticmethod
    def _fixed_size(pipe: Any) -> tuple[int, int]:
        config = pipe.transformer.config
        scale = int(pipe.vae_scale_factor_spatial)
        return int(config.sample_height) * scale, int(config.sample_width) * scale

    def _native_fps(self, pipe: Any) -> float:
        # Model cards: CogVideoX 1.0 at 8 fps, CogVideoX 1.5 at 16 fps.
        return 16.0 if pipe.transformer.config.patch_size_t else 8.0

    def _frame_rule(self, pipe: Any) -> FrameRule:
        return FrameRule(2 * int(pipe.vae_scale_factor_temporal))

    def _size_multiple(self, pipe: Any) -> int:
        return int(pipe.vae_scale_factor_spatial) * int(pipe.transformer.config.patch_size)

    def generation_size(self, request: GenerationRequest) -> tuple[int, int]:
        if self.fixed_layout:
            return self._fixed_size(self.pipeline)
        return super().generation_size(request)

    def _plan(self, request: GenerationRequest) -> FramePlan:
        plan = super()._plan(request)
        if not self.fixed_layout:
            return plan
        sample_frames = int(self.pipeline.transformer.config.sample_frames)
        if plan.total > sample_frames:
            raise ValueError(
                f"{self.name}: {request.num_frames} frames at {request.fps} fps need {plan.total} frames at "
                f"{self.native_fps} fps, more than the {sample_frames} this CogVideoX 1.0 checkpoint generates"
            )
        return replace(plan, total=sample_frames)

    def _call(
        self, request: GenerationRequest, plan: FramePlan, height: int, width: int, generator: torch.Generator
    ) -> np.ndarray:
        output = self.pipeline(
            image=switch_frame_image(request, height, width),
            prompt=request.prompt,
            negative_prompt=self.negative_prompt(request),
            height=height,
            width=width,
            num_frames=plan.total,
            use_dynamic_cfg=self.options.use_dynamic_cfg,
            generator=generator,
            **self._common_kwargs(request),
        )
        return batch_frames(output)
