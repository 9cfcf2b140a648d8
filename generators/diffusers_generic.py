"""Fallback for other diffusers image-to-video pipelines: ``DiffusionPipeline.from_pretrained`` + your rules.

diffusers picks the pipeline class from the folder's ``model_index.json``; this adapter passes the switch
frame as ``image`` and only the keyword arguments the pipeline's ``__call__`` accepts. It cannot know the
model's rules, so they are options (``native_fps``, ``frame_multiple``, ``size_multiple``,
``conditioning_frames``) with defaults that fit most current latent video models (4k+1 frames, multiples of
16, 16 fps); set them from the model card. Use a family adapter when one exists: it reads the rules from the
checkpoint and knows the family's conditioning.
"""

from __future__ import annotations

import inspect
from typing import Any, ClassVar

import numpy as np
import torch
from pydantic import Field

from generators.base import GenerationRequest
from generators.diffusers_common import DiffusersGenerator, DiffusersOptions, batch_frames, switch_frame_image
from generators.video_rules import FramePlan, FrameRule
from physics_iq.registry import BackendOptionError


class GenericOptions(DiffusersOptions):
    """Options of the fallback adapter.

    Attributes:
        frame_multiple: Valid clip lengths are ``frame_multiple * k + 1`` (the VAE's temporal stride).
        size_multiple: Height and width multiple (VAE stride x patch size).
        conditioning_frames: Leading output frames that re-decode the input image (dropped).
    """

    native_fps: float | None = Field(16.0, gt=0)
    frame_multiple: int = Field(4, ge=1)
    size_multiple: int = Field(16, ge=1)
    conditioning_frames: int = Field(1, ge=0)


class GenericI2VGenerator(DiffusersGenerator):
    """Any diffusers pipeline that takes ``image``, ``prompt`` and ``num_frames``."""

    name = "diffusers-i2v"
    pipeline_class: ClassVar[str] = "DiffusionPipeline"
    options_class: ClassVar[type[DiffusersOptions]] = GenericOptions

    def _check_pipeline(self, pipe: Any) -> None:
        self._accepted = set(inspect.signature(pipe.__call__).parameters)
        missing = {"image", "num_frames"} - self._accepted
        if missing:
            raise BackendOptionError(
                f"{self.name}: {type(pipe).__name__} from {self.options.model!r} does not take "
                f"{sorted(missing)}; it is not an image-to-video pipeline"
            )

    def _native_fps(self, pipe: Any) -> float:
        return float(self.options.native_fps)

    def _frame_rule(self, pipe: Any) -> FrameRule:
        return FrameRule(self.options.frame_multiple)

    def _size_multiple(self, pipe: Any) -> int:
        return int(self.options.size_multiple)

    def _conditioning_frames(self, request: GenerationRequest) -> int:
        return int(self.options.conditioning_frames)

    def _call(
        self, request: GenerationRequest, plan: FramePlan, height: int, width: int, generator: torch.Generator
    ) -> np.ndarray:
        wanted: dict[str, Any] = {
            "image": switch_frame_image(request, height, width),
            "prompt": request.prompt,
            "negative_prompt": self.negative_prompt(request),
            "height": height,
            "width": width,
            "num_frames": plan.total,
            "generator": generator,
            **self._common_kwargs(request),
        }
        kwargs = {key: value for key, value in wanted.items() if key in self._accepted}
        return batch_frames(self.pipeline(**kwargs))
