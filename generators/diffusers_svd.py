"""Stable Video Diffusion image-to-video (``StableVideoDiffusionPipeline``): no text, so prompts are ignored.

SVD is conditioned only on the switch frame (CLIP image embedding plus the VAE latent), with
micro-conditioning on fps, motion bucket and noise augmentation. It is a useful prompt-free baseline for the
refinement loop: any gain over it is the prompt's. Checkpoints: ``stabilityai/stable-video-diffusion-img2vid``
(14 frames) and ``-img2vid-xt`` (25 frames), 576x1024.

Rules: any frame count (the UNet's temporal layers take any length, though 5 s at 7 fps is 36 frames, more
than the 25 it was trained on: set ``native_fps`` lower to stay near 25); height and width multiples of
``VAE stride * 2 ** (UNet levels - 1)`` (64 for the released checkpoints).
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field

from generators.base import GenerationRequest, PromptStyle
from generators.diffusers_common import DiffusersGenerator, DiffusersOptions, batch_frames, switch_frame_image
from generators.video_rules import FramePlan, FrameRule


class SVDOptions(DiffusersOptions):
    """SVD options; defaults from the diffusers SVD pipeline.

    Attributes:
        guidance_scale: Maximum of SVD's frame-wise linearly increasing guidance (``max_guidance_scale``).
        min_guidance_scale: Guidance on the first frame.
        motion_bucket_id: Amount of motion micro-conditioning (higher = more motion).
        noise_aug_strength: Noise added to the conditioning image.
        decode_chunk_size: Frames decoded at once (lower = less memory); all at once when unset.
    """

    num_inference_steps: int = Field(25, ge=1)
    guidance_scale: float = Field(3.0, ge=0)
    min_guidance_scale: float = Field(1.0, ge=0)
    motion_bucket_id: int = Field(127, ge=0)
    noise_aug_strength: float = Field(0.02, ge=0)
    decode_chunk_size: int | None = Field(None, ge=1)


class SVDGenerator(DiffusersGenerator):
    """Stable Video Diffusion image-to-video (prompt-free)."""

    #: Stable Video Diffusion reads no text: the prompt only names the attempt.
    prompt_style: ClassVar[PromptStyle] = PromptStyle(words=(10, 40), note="This model ignores the prompt.")

    name = "svd"
    pipeline_class: ClassVar[str] = "StableVideoDiffusionPipeline"
    options_class: ClassVar[type[DiffusersOptions]] = SVDOptions
    default_max_area: ClassVar[int] = 576 * 1024

    def _native_fps(self, pipe: Any) -> float:
        # The pipeline's own default fps (micro-conditioned as fps - 1 during training).
        return 7.0

    def _frame_rule(self, pipe: Any) -> FrameRule:
        return FrameRule(1)

    def _size_multiple(self, pipe: Any) -> int:
        levels = len(pipe.unet.config.down_block_types)
        return int(pipe.vae_scale_factor) * 2 ** (levels - 1)

    def _call(
        self, request: GenerationRequest, plan: FramePlan, height: int, width: int, generator: torch.Generator
    ) -> np.ndarray:
        opts = self.options
        output = self.pipeline(
            image=switch_frame_image(request, height, width),
            height=height,
            width=width,
            num_frames=plan.total,
            num_inference_steps=opts.num_inference_steps,
            min_guidance_scale=opts.min_guidance_scale,
            max_guidance_scale=opts.guidance_scale,
            fps=round(self.native_fps),
            motion_bucket_id=opts.motion_bucket_id,
            noise_aug_strength=opts.noise_aug_strength,
            decode_chunk_size=opts.decode_chunk_size,
            generator=generator,
            output_type="np",
        )
        return batch_frames(output)
