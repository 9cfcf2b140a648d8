"""Local vision-language model through transformers (``AutoProcessor`` + ``AutoModelForImageTextToText``).

Works with chat-templated image-text-to-text checkpoints such as Qwen2.5-VL / Qwen3-VL (their processors need
torchvision) and the LLaVA family. The model is loaded once; each ``chat`` applies the processor's chat
template with one image placeholder per frame, passes the frames as PIL images and decodes only the new
tokens. Local generation has no ``response_format``: a JSON schema is not enforced here, and the agent
validates the raw text as it does for every backend.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import cv2
import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from agent.vlm.base import Message, VLMError, VLMReply
from agent.vlm.openai_vlm import sample_indices
from physics_iq.registry import BackendOptionError

logger = logging.getLogger(__name__)


class TransformersVLMOptions(BaseModel):
    """Options (``--vlm-opt KEY=VALUE`` strings are coerced).

    Attributes:
        model: Hub id or local folder.
        dtype: ``auto`` is bfloat16 on CUDA, float32 on CPU.
        device: ``auto`` (CUDA when available), ``cpu``, ``cuda:0``...
        max_new_tokens: Generation budget.
        temperature: 0 decodes greedily (deterministic).
        top_p: Nucleus sampling when ``temperature > 0``.
        max_frames: Most images per message (evenly sampled).
        max_side: Largest image side before the processor's own resizing.
        trust_remote_code: Allow checkpoint code (only for checkpoints you trust).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1)
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    device: str = "auto"
    max_new_tokens: int = Field(1024, ge=1)
    temperature: float = Field(0.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_frames: int = Field(8, ge=1)
    max_side: int = Field(448, ge=16)
    trust_remote_code: bool = False


def _downscale(frame: np.ndarray, max_side: int) -> Image.Image:
    height, width = frame.shape[:2]
    scale = max_side / max(height, width)
    if scale < 1:
        frame = cv2.resize(
            frame, (max(1, round(width * scale)), max(1, round(height * scale))), interpolation=cv2.INTER_AREA
        )
    return Image.fromarray(np.ascontiguousarray(frame), mode="RGB")


class TransformersVLM:
    """A :class:`~agent.vlm.base.VLM` running a local transformers model.

    Args:
        model: Hub id or local folder.
        base_url: Not used (accepted so the CLI can pass it uniformly); must be unset.
        **options: Any field of :class:`TransformersVLMOptions`.
    """

    name = "transformers"
    model: Any

    def __init__(self, model: str | None = None, base_url: str | None = None, **options: Any) -> None:
        if base_url:
            raise BackendOptionError(
                "vlm transformers: base_url is for API backends; use --vlm openai for a server"
            )
        given = {key: value for key, value in {"model": model, **options}.items() if value is not None}
        try:
            self.options = TransformersVLMOptions(**given)
        except PydanticValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            known = ", ".join(TransformersVLMOptions.model_fields)
            raise ValueError(f"vlm transformers: {problems} (known options: {known})") from None
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        opts = self.options
        self.device = (
            ("cuda" if torch.cuda.is_available() else "cpu") if opts.device == "auto" else opts.device
        )
        if opts.dtype == "auto":
            dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        else:
            dtype = getattr(torch, opts.dtype)
        started = time.perf_counter()
        try:
            self.processor = AutoProcessor.from_pretrained(
                opts.model, trust_remote_code=opts.trust_remote_code
            )
            loaded: Any = AutoModelForImageTextToText.from_pretrained(
                opts.model, dtype=dtype, trust_remote_code=opts.trust_remote_code
            )
        except (OSError, ValueError, KeyError) as exc:
            raise VLMError(f"vlm transformers: could not load {opts.model!r}: {exc}") from exc
        self.model = loaded.to(self.device).eval()
        logger.info(
            "vlm transformers: loaded %s on %s in %.1f s",
            opts.model,
            self.device,
            time.perf_counter() - started,
        )

    def __repr__(self) -> str:
        return f"TransformersVLM(model={self.options.model!r}, device={self.device!r})"

    def _conversation(self, messages: Sequence[Message]) -> tuple[list[dict[str, Any]], list[Image.Image]]:
        conversation: list[dict[str, Any]] = []
        images: list[Image.Image] = []
        for message in messages:
            content: list[dict[str, Any]] = []
            for index in sample_indices(len(message.images), self.options.max_frames):
                frame = np.asarray(message.images[index])
                if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
                    raise ValueError(f"vlm transformers: images must be (H, W, 3) uint8, got {frame.shape}")
                images.append(_downscale(frame, self.options.max_side))
                content.append({"type": "image"})
            content.append({"type": "text", "text": message.text})
            conversation.append({"role": message.role, "content": content})
        return conversation, images

    def chat(self, messages: Sequence[Message], *, json_schema: Mapping[str, Any] | None = None) -> VLMReply:
        """Generate a reply to the conversation; return the decoded new text.

        Raises:
            VLMError: Generation failed (out of memory included) or produced no text.
        """
        import torch

        opts = self.options
        conversation, images = self._conversation(messages)
        prompt = self.processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
        inputs = self.processor(text=prompt, images=images or None, return_tensors="pt").to(self.device)
        sampling: dict[str, Any] = (
            {"do_sample": True, "temperature": opts.temperature, "top_p": opts.top_p}
            if opts.temperature > 0
            else {"do_sample": False}
        )
        started = time.perf_counter()
        try:
            with torch.inference_mode():
                output = self.model.generate(**inputs, max_new_tokens=opts.max_new_tokens, **sampling)
        except (RuntimeError, ValueError) as exc:
            raise VLMError(f"vlm transformers: generation failed: {type(exc).__name__}: {exc}") from exc
        prompt_tokens = int(inputs["input_ids"].shape[1])
        new_tokens = output[0, prompt_tokens:]
        text = self.processor.decode(new_tokens, skip_special_tokens=True)
        if not text.strip():
            raise VLMError(f"vlm transformers: {opts.model!r} produced no text ({len(new_tokens)} tokens)")
        return VLMReply(
            text=text,
            model=opts.model,
            prompt_tokens=prompt_tokens,
            completion_tokens=len(new_tokens),
            cost_usd=None,  # local compute; no per-token price
            metadata={
                "latency_s": round(time.perf_counter() - started, 3),
                "frames_sent": len(images),
                "structured_output_requested": False,
                "device": self.device,
            },
        )
