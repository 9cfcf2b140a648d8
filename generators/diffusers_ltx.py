"""LTX-Video through ``LTXConditionPipeline``: true prefix-clip (v2v) continuation.

The prefix clip, resampled to the model's frame rate and ending at the switch frame, is given as
``LTXVideoCondition(video=prefix, frame_index=0)``: its latents are written into the first latent frames with
strength 1 and kept fixed while the rest is denoised, so the model continues the real motion rather than
starting from one still. An i2v request (a single frame) is the ``1 = 8*0 + 1`` frame case of the same call.

Rules (read from the loaded VAE and transformer): total frames and prefix frames ``8k+1`` (the pipeline
silently *floors* both otherwise -- the prefix via ``trim_conditioning_sequence``); height and width multiples
of 32. Checkpoints: ``Lightricks/LTX-Video-0.9.5`` and later 0.9.x diffusers folders.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field

from generators.base import GenerationRequest, PromptStyle
from generators.diffusers_common import DiffusersGenerator, DiffusersOptions, batch_frames, to_pil
from generators.video_rules import FramePlan, FrameRule, resize_frames
from physics_iq.video import resample_fps


class LTXOptions(DiffusersOptions):
    """LTX options; defaults from the diffusers ``LTXConditionPipeline`` example.

    Attributes:
        max_prefix_frames: Most prefix frames (native fps, ending at the switch frame) used as condition;
            floored to the VAE's ``8k+1``.
        condition_strength: 1.0 keeps the prefix latents fixed.
        decode_timestep: Timestep the (timestep-conditioned) VAE decodes at (0.05 for 0.9.5 per its card).
        image_cond_noise_scale: Noise added to the conditioning latents each step.
    """

    num_inference_steps: int = Field(40, ge=1)
    guidance_scale: float = Field(3.0, ge=0)
    max_prefix_frames: int = Field(25, ge=1)
    condition_strength: float = Field(1.0, ge=0, le=1)
    decode_timestep: float = Field(0.05, ge=0)
    image_cond_noise_scale: float = Field(0.025, ge=0)


class LTXConditionGenerator(DiffusersGenerator):
    """LTX-Video prefix continuation (``LTXConditionPipeline``)."""

    #: LTX-Video recommends detailed, chronological descriptions and takes a negative prompt.
    prompt_style: ClassVar[PromptStyle] = PromptStyle(
        words=(60, 150),
        negative_prompt=True,
        note="LTX-Video reads detailed, chronological descriptions of actions best, in one paragraph.",
    )

    name = "ltx-condition"
    pipeline_class: ClassVar[str] = "LTXConditionPipeline"
    options_class: ClassVar[type[DiffusersOptions]] = LTXOptions
    default_max_area: ClassVar[int] = 512 * 768

    def _native_fps(self, pipe: Any) -> float:
        # LTX-Video was trained on 24-30 fps clips; the diffusers examples pass frame_rate=24.
        return 24.0

    def _frame_rule(self, pipe: Any) -> FrameRule:
        return FrameRule(int(pipe.vae_temporal_compression_ratio))

    def _size_multiple(self, pipe: Any) -> int:
        # LTXConditionPipeline.check_inputs demands multiples of 32 whatever the VAE (the released VAE's
        # stride is 32 anyway; a smaller custom VAE would otherwise pass our check and fail in the pipeline).
        latent = int(pipe.vae_spatial_compression_ratio) * int(pipe.transformer_spatial_patch_size)
        return math.lcm(32, latent)

    def native_prefix(self, request: GenerationRequest) -> np.ndarray:
        """The prefix at the native fps, cut to the last ``8k+1`` frames within ``max_prefix_frames``."""
        prefix = np.asarray(request.prefix)
        if len(prefix) > 1 and abs(request.fps - self.native_fps) > 1e-9:
            # resample_fps spans first..last frame, so the switch frame stays the last one.
            prefix = resample_fps(prefix, request.fps, self.native_fps)
        keep = self.frame_rule.floor(min(len(prefix), self.options.max_prefix_frames))
        return prefix[-keep:]

    def _conditioning_frames(self, request: GenerationRequest) -> int:
        return len(self.native_prefix(request))

    def _call(
        self, request: GenerationRequest, plan: FramePlan, height: int, width: int, generator: torch.Generator
    ) -> np.ndarray:
        from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

        prefix = resize_frames(self.native_prefix(request), height, width)
        self.frame_rule.check(len(prefix), f"{self.name} prefix")
        condition = LTXVideoCondition(
            video=to_pil(prefix), frame_index=0, strength=self.options.condition_strength
        )
        output = self.pipeline(
            conditions=[condition],
            prompt=request.prompt,
            negative_prompt=self.negative_prompt(request),
            height=height,
            width=width,
            num_frames=plan.total,
            frame_rate=round(self.native_fps),
            decode_timestep=self.options.decode_timestep,
            image_cond_noise_scale=self.options.image_cond_noise_scale,
            generator=generator,
            **self._common_kwargs(request),
        )
        return batch_frames(output)
