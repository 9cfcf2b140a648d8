"""``feature-path-encoder``: GeoPhys path geometry on a frozen transformers image encoder.

GeoPhys (arXiv 2606.20707) reads its five trajectory statistics off the pooled per-frame features of frozen
image encoders (DINOv2, DINOv3, ...). This backend loads any transformers image encoder (a hub id or a local
folder holding the model and its image processor): DINOv2/DINOv3-style models are used as they are, models
with a ``vision_model`` tower (SigLIP, CLIP) through that tower. The statistics, the path and the value are
those of :mod:`agent.verifiers.feature_path`.

The model loads once (in the constructor), frames of all the attempts scored together are embedded in
batches of ``batch_size`` under ``torch.inference_mode``, on ``device``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from agent.verifiers.base import batches
from agent.verifiers.feature_path import FeaturePathVerifier
from agent.verifiers.neural import first_line, resolve_device, resolve_dtype
from physics_iq.registry import BackendOptionError

log = logging.getLogger(__name__)

POOLINGS = ("auto", "cls", "mean")


class EncoderFeaturePath(FeaturePathVerifier):
    """GeoPhys-style path geometry on a transformers image encoder's pooled features.

    Args:
        model: Hub id or local folder with the model and its image processor.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        dtype: ``auto`` (bfloat16 on CUDA, else float32), ``float32``, ``float16`` or ``bfloat16``.
        batch_size: Frames per forward pass.
        layer: Read the hidden states of this layer (0 = embeddings, negative counts from the end) instead
            of the final output; GeoPhys picks an intermediate layer per backbone.
        pooling: ``auto`` (the model's pooled output, else the token mean), ``cls`` (first token) or
            ``mean`` (mean of all tokens).
        context: Prefix frames (ending at the switch frame) put at the start of the path (v2v).
        history: Points the linear predictor is fitted on.

    Raises:
        BackendOptionError: the model or its image processor cannot be loaded, or it is not an image
            encoder (one line naming ``model``).
    """

    name = "feature-path-encoder"
    neural = True

    def __init__(
        self,
        model: str = "facebook/dinov2-small",
        device: str = "auto",
        dtype: str = "auto",
        batch_size: int = 32,
        layer: int | None = None,
        pooling: str = "auto",
        context: int = 8,
        history: int = 3,
    ) -> None:
        super().__init__(context=context, history=history)
        if pooling not in POOLINGS:
            raise BackendOptionError(
                f"{self.name}: pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}"
            )
        if batch_size < 1:
            raise BackendOptionError(f"{self.name}: batch_size must be >= 1, got {batch_size}")
        self.device = resolve_device(device, self.name)
        self.dtype = resolve_dtype(dtype, self.device, self.name)
        self.batch_size = batch_size
        self.layer = layer
        self.pooling = pooling
        self.processor, self.model, self.tower = _load_image_encoder(
            model, self.device, self.dtype, self.name
        )
        kind = getattr(self.model.config, "model_type", "image encoder")
        # No model path here: the summary goes into critique prompts.
        self.features = f"pooled features of a frozen {kind} image encoder"
        self.config.update(
            model=model, device=device, dtype=dtype, batch_size=batch_size, layer=layer, pooling=pooling
        )

    def embed(self, frames: Sequence[np.ndarray]) -> np.ndarray:
        out = []
        with torch.inference_mode():
            for batch in batches(frames, self.batch_size):
                inputs = self.processor(images=list(batch), return_tensors="pt")
                pixels = inputs["pixel_values"].to(self.device, self.dtype)
                result = self.tower(pixel_values=pixels, output_hidden_states=self.layer is not None)
                out.append(self._pool(result).float().cpu().numpy())
        return np.concatenate(out).astype(np.float64)

    def _pool(self, result: Any) -> torch.Tensor:
        if self.layer is not None:
            tokens = result.hidden_states[self.layer]
        else:
            pooled = getattr(result, "pooler_output", None)
            if self.pooling == "auto" and pooled is not None:
                return pooled.flatten(1)
            tokens = result.last_hidden_state
        if tokens.ndim == 2:  # already one vector per image
            return tokens
        if tokens.ndim == 4:  # convolutional feature maps (B, C, H, W)
            return tokens.flatten(2).mean(-1) if self.pooling != "cls" else tokens[..., 0, 0]
        return tokens[:, 0] if self.pooling == "cls" else tokens.mean(dim=1)


def _load_image_encoder(
    model_id: str, device: torch.device, dtype: torch.dtype, owner: str
) -> tuple[Any, Any, Any]:
    """``(image processor, model, vision tower)`` of ``model_id``, or a one-line BackendOptionError."""
    from transformers import AutoConfig, AutoImageProcessor, AutoModel

    try:
        config = AutoConfig.from_pretrained(model_id)
    except Exception as exc:
        raise BackendOptionError(
            f"{owner}: cannot load a transformers model from {model_id!r} ({first_line(exc)})"
        ) from exc
    kind = getattr(config, "model_type", "?")
    try:
        processor = AutoImageProcessor.from_pretrained(model_id)
    except Exception as exc:
        raise BackendOptionError(
            f"{owner}: {model_id!r} holds a {kind!r} model but no image processor; an image encoder "
            f"(DINOv2, SigLIP, CLIP, ...) saved with its image processor is expected ({first_line(exc)})"
        ) from exc
    try:
        model = AutoModel.from_pretrained(model_id, dtype=dtype)
    except Exception as exc:
        raise BackendOptionError(
            f"{owner}: cannot load the {kind!r} model in {model_id!r} ({first_line(exc)})"
        ) from exc
    tower = getattr(model, "vision_model", None) or model
    if getattr(tower, "main_input_name", None) != "pixel_values":
        raise BackendOptionError(
            f"{owner}: {model_id!r} holds a {kind!r} model, which does not encode images "
            "(an image encoder such as DINOv2, SigLIP or CLIP is expected)"
        )
    model.to(device).eval()
    log.info("%s: loaded %s (%s) on %s as %s", owner, model_id, kind, device, dtype)
    return processor, model, tower
