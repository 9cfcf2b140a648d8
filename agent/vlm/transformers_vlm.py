"""Local vision-language model through transformers (``AutoProcessor`` + ``AutoModelForImageTextToText``).

Works with chat-templated image-text-to-text checkpoints such as Qwen2.5-VL / Qwen3-VL (their processors need
torchvision) and the LLaVA family. The model is loaded once; each ``chat`` builds the conversation in the
order documented on :class:`~agent.vlm.base.Message` (the text, then each image's label as a text item
followed by an ``{"type": "image"}`` item, then the video's label and a ``{"type": "video"}`` item), applies
the processor's chat template, passes the frames as PIL images and decodes only the new tokens. Local
generation has no ``response_format``: a JSON schema is not enforced here, and the agent validates the raw
text as it does for every backend.

With ``video=true`` a message's clip goes to the processor as ``videos=[frames]`` (a ``(T, H, W, 3)`` uint8
array) with its frame rate in ``video_metadata`` (``total_num_frames``, ``fps``, ``frames_indices``) and
``do_sample_frames=False``: the frames were already chosen, and since transformers' video-processor refactor
Qwen2.5-VL derives its temporal positions (``second_per_grid_ts``) from the metadata's ``sampled_fps``
(without metadata it assumes 24 fps). ``fps`` is passed as well, which processors from before the refactor
read instead. A processor without a video processor (LLaVA) cannot take video: asking for it is an error
when the backend is built.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from agent.vlm.base import Message, VLMError, VLMReply, downscale, message_parts, video_stride
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
        max_frames: Most images per message (evenly sampled; labels stay with their images).
        max_side: Largest image (and video frame) side before the processor's own resizing.
        trust_remote_code: Allow checkpoint code (only for checkpoints you trust).
        video: Send a message's video to the processor (needs a processor with a video processor, e.g.
            Qwen2.5-VL's); ``false`` leaves it out.
        video_frames: Most frames of one video; a longer clip is sent every k-th frame at ``fps / k``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str = Field(min_length=1)
    dtype: Literal["auto", "float32", "float16", "bfloat16"] = "auto"
    device: str = "auto"
    max_new_tokens: int = Field(1024, ge=1)
    temperature: float = Field(0.0, ge=0)
    top_p: float = Field(1.0, gt=0, le=1)
    max_frames: int = Field(16, ge=1)
    max_side: int = Field(448, ge=16)
    trust_remote_code: bool = False
    video: bool = False
    video_frames: int = Field(32, ge=2)


def _pil(frame: np.ndarray, max_side: int) -> Image.Image:
    return Image.fromarray(downscale(frame, max_side), mode="RGB")


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
        if opts.video and getattr(self.processor, "video_processor", None) is None:
            raise BackendOptionError(
                f"vlm transformers: video=true, but the processor of {opts.model!r} "
                f"({type(self.processor).__name__}) has no video processor; use video=false"
            )
        self.model = loaded.to(self.device).eval()
        logger.info(
            "vlm transformers: loaded %s on %s in %.1f s",
            opts.model,
            self.device,
            time.perf_counter() - started,
        )

    def __repr__(self) -> str:
        return f"TransformersVLM(model={self.options.model!r}, device={self.device!r})"

    def _conversation(
        self, messages: Sequence[Message]
    ) -> tuple[list[dict[str, Any]], list[Image.Image], list[tuple[np.ndarray, float]]]:
        """The chat-template conversation (in :func:`~agent.vlm.base.message_parts` order), its images and its
        videos as ``(frames, fps)``."""
        opts = self.options
        conversation: list[dict[str, Any]] = []
        images: list[Image.Image] = []
        videos: list[tuple[np.ndarray, float]] = []
        for message in messages:
            content: list[dict[str, Any]] = []
            for kind, value in message_parts(message, opts.max_frames, video=opts.video):
                if kind == "text":
                    content.append({"type": "text", "text": value})
                elif kind == "image":
                    images.append(_pil(value, opts.max_side))
                    content.append({"type": "image"})
                else:
                    stride = video_stride(len(value.frames), opts.video_frames)
                    frames = np.stack([downscale(f, opts.max_side) for f in value.frames[::stride]])
                    videos.append((frames, value.fps / stride))
                    content.append({"type": "video"})
            conversation.append({"role": message.role, "content": content})
        return conversation, images, videos

    def _inputs(self, prompt: str, images: list[Image.Image], videos: list[tuple[np.ndarray, float]]) -> Any:
        """The processor's call: text, images, and videos with their frame rates (see the module docstring)."""
        kwargs: dict[str, Any] = {"text": prompt, "images": images or None, "return_tensors": "pt"}
        if videos:
            kwargs["videos"] = [frames for frames, _ in videos]
            kwargs["video_metadata"] = [
                {"total_num_frames": len(frames), "fps": fps, "frames_indices": list(range(len(frames)))}
                for frames, fps in videos
            ]
            rates = sorted({fps for _, fps in videos})
            if len(rates) > 1:
                raise ValueError(
                    f"vlm transformers: the videos of one call must share a frame rate, got {rates}"
                )
            kwargs["fps"] = rates[0]
            kwargs["do_sample_frames"] = False
        try:
            return self.processor(**kwargs)
        except (TypeError, ValueError) as exc:
            if not videos:
                raise
            raise VLMError(
                f"vlm transformers: the processor of {self.options.model!r} did not take the video "
                f"(video=true): {type(exc).__name__}: {exc}"
            ) from exc

    def chat(self, messages: Sequence[Message], *, json_schema: Mapping[str, Any] | None = None) -> VLMReply:
        """Generate a reply to the conversation; return the decoded new text.

        Raises:
            ValueError: An image or video frame that is not ``(H, W, 3)`` uint8.
            VLMError: Generation failed (out of memory included) or produced no text; the processor did not
                take the video (naming the ``video`` option).
        """
        import torch

        opts = self.options
        conversation, images, videos = self._conversation(messages)
        prompt = self.processor.apply_chat_template(conversation, add_generation_prompt=True, tokenize=False)
        inputs = self._inputs(prompt, images, videos).to(self.device)
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
                "video_frames_sent": sum(len(frames) for frames, _ in videos),
                "video_fps": videos[0][1] if videos else None,
                "structured_output_requested": False,
                "device": self.device,
            },
        )
