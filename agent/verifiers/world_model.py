"""``world-model-surprise``: how badly V-JEPA 2 predicts the clip's future from its past, after WMReward.

WMReward (Yuan et al., "Inference-time Physics Alignment of Video Generative Models with Latent World
Models", arXiv 2601.10553; first place of the ICCV 2025 Physics-IQ challenge) scores a video by its
*surprise* under the latent world model V-JEPA 2: the video is cut into sliding windows of ``window``
frames; in each, the encoder sees the first ``context_frames`` (causal masking), the predictor predicts the
latents of the remaining frames, and the surprise is ``1 - cosine similarity`` between the prediction and
the encoder's latents of the whole window (both layer-normalised, as in V-JEPA training), averaged over
the predicted tokens. The video's surprise is the mean over windows (``aggregate="max"`` takes the worst);
``value = -surprise``. The defaults follow the authors' released ``compute_wmreward.py`` (16-frame windows,
8 context frames, the ViT-g checkpoint), with a stride of 4 frames.

Here the video is the conditioning frames (the switch frame alone in i2v) followed by the continuation, and
only windows whose predicted part contains generated frames are scored: windows wholly inside the prefix
judge the real video, the same for every attempt.

Through transformers (``VJEPA2Model``): the context latents come from ``model.encoder`` run on the
context frames alone (with rotary positions this equals the original encoder applied to the context
tokens of the window: it never sees the frames it must predict), the targets from ``model.encoder`` on
the whole window, the prediction from ``model.predictor(encoder_hidden_states, context_mask,
target_mask)`` with token indices in tubelet-major order. Frames are resized to the model's
``crop_size`` square (``resize="squash"``, the default: a 16:9 clip keeps all of its width, since the
event may happen anywhere; ``resize="crop"`` is WMReward's short-side resize and centre crop) and
normalised with the ImageNet mean and standard deviation of the V-JEPA 2 video processor.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from agent.verifiers.base import (
    ClipInput,
    VerifierScore,
    batches,
    check_clip,
    conditioning,
    failure_message,
    isolate_failures,
)
from agent.verifiers.neural import first_line, resolve_device, resolve_dtype
from physics_iq.registry import BackendOptionError

log = logging.getLogger(__name__)

# ImageNet statistics: what transformers' VJEPA2VideoProcessor normalises with (IMAGENET_DEFAULT_MEAN/STD).
_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
_STD = np.array([0.229, 0.224, 0.225], np.float32)
RESIZES = ("squash", "crop")
AGGREGATES = ("mean", "max")


def window_starts(total: int, prefix: int, window: int, context: int, stride: int) -> list[int]:
    """First frames of the scored windows of a ``total``-frame video whose first ``prefix`` frames are
    conditioning: every ``stride`` frames from the first window whose predicted part reaches a generated
    frame, plus one window ending at the last frame.

    >>> window_starts(total=64, prefix=24, window=16, context=8, stride=4)
    [9, 13, 17, 21, 25, 29, 33, 37, 41, 45, 48]
    >>> window_starts(total=41, prefix=1, window=16, context=8, stride=8)
    [0, 8, 16, 24, 25]
    >>> window_starts(total=10, prefix=1, window=16, context=8, stride=4)
    []
    """
    if total < window:
        return []
    # Predicted frames are start + context .. start + window - 1; the last prefix frame is prefix - 1.
    first = max(0, prefix - window + 1, 0)
    last = total - window
    starts = list(range(first, last + 1, stride))
    if starts[-1] != last:
        starts.append(last)
    return starts


class WorldModelSurprise:
    """V-JEPA 2 surprise over sliding windows (see the module docstring).

    Args:
        model: Hub id or local folder of a V-JEPA 2 checkpoint with its predictor
            (e.g. ``facebook/vjepa2-vitg-fpc64-256``, ``facebook/vjepa2-vitl-fpc64-256``).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        dtype: ``auto`` (bfloat16 on CUDA, else float32), ``float32``, ``float16`` or ``bfloat16``.
        window: Frames per window (a multiple of the model's tubelet size).
        context_frames: Frames of each window the encoder sees (a multiple of the tubelet size).
        stride: Frames between window starts.
        batch_size: Windows per forward pass.
        resize: ``squash`` (whole frame to the square crop size) or ``crop`` (short side, centre crop).
        aggregate: ``mean`` or ``max`` surprise over windows.

    Raises:
        BackendOptionError: the model cannot be loaded, is not V-JEPA 2, or has no predictor weights (one
            line naming ``model``); window sizes that do not fit the model.
    """

    name = "world-model-surprise"
    neural = True

    def __init__(
        self,
        model: str = "facebook/vjepa2-vitg-fpc64-256",
        device: str = "auto",
        dtype: str = "auto",
        window: int = 16,
        context_frames: int = 8,
        stride: int = 4,
        batch_size: int = 4,
        resize: str = "squash",
        aggregate: str = "mean",
    ) -> None:
        if resize not in RESIZES:
            raise BackendOptionError(
                f"{self.name}: resize must be one of {', '.join(RESIZES)}, got {resize!r}"
            )
        if aggregate not in AGGREGATES:
            raise BackendOptionError(
                f"{self.name}: aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}"
            )
        if not 0 < context_frames < window:
            raise BackendOptionError(
                f"{self.name}: need 0 < context_frames < window, got {context_frames}, {window}"
            )
        if stride < 1 or batch_size < 1:
            raise BackendOptionError(
                f"{self.name}: stride and batch_size must be >= 1, got {stride}, {batch_size}"
            )
        self.device = resolve_device(device, self.name)
        self.dtype = resolve_dtype(dtype, self.device, self.name)
        self.model = _load_vjepa2(model, self.device, self.dtype, self.name)
        tubelet = int(self.model.config.tubelet_size)
        if window % tubelet or context_frames % tubelet:
            raise BackendOptionError(
                f"{self.name}: window ({window}) and context_frames ({context_frames}) must be multiples of "
                f"the model's tubelet size ({tubelet})"
            )
        self.crop_size = int(self.model.config.crop_size)
        self.window = window
        self.context_frames = context_frames
        self.stride = stride
        self.batch_size = batch_size
        self.resize = resize
        self.aggregate = aggregate
        self.config: dict[str, Any] = dict(
            model=model,
            device=device,
            dtype=dtype,
            window=window,
            context_frames=context_frames,
            stride=stride,
            batch_size=batch_size,
            resize=resize,
            aggregate=aggregate,
        )

    def score(self, clip: ClipInput) -> VerifierScore:
        return self.score_many([clip])[0]

    def score_many(self, clips: Sequence[ClipInput]) -> list[VerifierScore]:
        results: list[VerifierScore | None] = []
        pending: list[int] = []
        for index, clip in enumerate(clips):
            needed = max(1, self.window - len(conditioning(clip)))
            error = check_clip(clip, min_frames=needed)
            results.append(VerifierScore.failed(self.name, error) if error else None)
            if not error:
                pending.append(index)
        surprises = isolate_failures(self._surprises, [clips[i] for i in pending])
        for index, found in zip(pending, surprises, strict=True):
            if isinstance(found, Exception):
                log.warning("%s: the world model failed on attempt %d: %s", self.name, index, found)
                results[index] = VerifierScore.failed(
                    self.name, f"the world model failed ({failure_message(found)})"
                )
            else:
                results[index] = self._judge(clips[index], *found)
        return [result for result in results if result is not None]

    def preprocess(self, frames: np.ndarray) -> torch.Tensor:
        """``(T, 3, S, S)`` normalised float tensor of ``(T, H, W, 3)`` uint8 RGB frames (S = crop size)."""
        size = self.crop_size
        out = np.empty((len(frames), size, size, 3), np.float32)
        for i, frame in enumerate(frames):
            if self.resize == "crop":
                height, width = frame.shape[:2]
                scale = size / min(height, width)
                resized = cv2.resize(
                    frame,
                    (max(size, round(width * scale)), max(size, round(height * scale))),
                    interpolation=cv2.INTER_AREA,
                )
                top = (resized.shape[0] - size) // 2
                left = (resized.shape[1] - size) // 2
                resized = resized[top : top + size, left : left + size]
            else:
                resized = cv2.resize(frame, (size, size), interpolation=cv2.INTER_AREA)
            out[i] = (resized.astype(np.float32) / 255.0 - _MEAN) / _STD
        return torch.from_numpy(out).permute(0, 3, 1, 2)

    def _surprises(self, clips: Sequence[ClipInput]) -> list[tuple[np.ndarray, list[int]]]:
        """Per clip: the surprise of each scored window and the windows' first frames."""
        videos: list[torch.Tensor] = []
        jobs: list[tuple[int, int]] = []
        starts: list[list[int]] = []
        for number, clip in enumerate(clips):
            # Preprocessed apart and joined small: no full-resolution copy of the whole video.
            video = torch.cat([self.preprocess(conditioning(clip)), self.preprocess(clip.frames)])
            videos.append(video)
            found = window_starts(
                len(video), len(conditioning(clip)), self.window, self.context_frames, self.stride
            )
            starts.append(found)
            jobs.extend((number, start) for start in found)
        losses: dict[tuple[int, int], float] = {}
        with torch.inference_mode():
            for batch in batches(jobs, self.batch_size):
                pixels = torch.stack([videos[n][s : s + self.window] for n, s in batch])
                values = self.window_surprise(pixels.to(self.device, self.dtype))
                losses.update(zip(batch, values.tolist(), strict=True))
        return [(np.array([losses[(n, s)] for s in found]), found) for n, found in enumerate(starts)]

    def window_surprise(self, pixels: torch.Tensor) -> torch.Tensor:
        """``1 - cos`` between predicted and actual latents of each window's last frames, ``(B,)``.

        Args:
            pixels: ``(B, window, 3, S, S)`` preprocessed windows.
        """
        context = self.model.encoder(pixel_values_videos=pixels[:, : self.context_frames]).last_hidden_state
        full = self.model.encoder(pixel_values_videos=pixels).last_hidden_state
        batch, n_context, dim = context.shape
        n_total = full.shape[1]
        positions = torch.arange(n_total, device=full.device).unsqueeze(0).expand(batch, n_total)
        predicted = self.model.predictor(
            encoder_hidden_states=context,
            context_mask=[positions[:, :n_context]],
            target_mask=[positions[:, n_context:]],
        ).last_hidden_state
        target = F.layer_norm(full[:, n_context:].float(), (dim,))
        predicted = F.layer_norm(predicted.float(), (dim,))
        return 1.0 - F.cosine_similarity(predicted, target, dim=-1).mean(dim=1)

    def _judge(self, clip: ClipInput, surprises: np.ndarray, starts: list[int]) -> VerifierScore:
        surprise = float(surprises.max() if self.aggregate == "max" else surprises.mean())
        worst = int(np.argmax(surprises))
        switch = len(conditioning(clip)) - 1
        # Seconds from the switch frame to the first predicted frame of the worst window.
        worst_at = (starts[worst] + self.context_frames - switch) / clip.fps
        details = {
            "surprise": surprise,
            "surprise_mean": float(surprises.mean()),
            "surprise_max": float(surprises.max()),
            "windows": float(len(surprises)),
            "worst_window_seconds_after_switch": worst_at,
        }
        seconds = self.window / clip.fps
        summary = (
            f"World-model surprise (V-JEPA 2, after WMReward): predicting the second half of each "
            f"{seconds:.1f}-second window from its first half, the latent mismatch is "
            f"{surprises.mean():.3f} on average (1 - cosine similarity; 0 is fully predictable), worst "
            f"{surprises.max():.3f} for the part starting {worst_at:.1f} s after the switch frame."
        )
        return VerifierScore(value=-surprise, details=details, summary=summary)


def _load_vjepa2(model_id: str, device: torch.device, dtype: torch.dtype, owner: str) -> Any:
    """A V-JEPA 2 model with its predictor, or a one-line BackendOptionError naming ``model_id``."""
    import transformers

    model_class = getattr(transformers, "VJEPA2Model", None)
    if model_class is None:
        raise BackendOptionError(
            f"{owner}: transformers {transformers.__version__} has no VJEPA2Model (V-JEPA 2 needs transformers >= 4.56)"
        )
    try:
        config = transformers.AutoConfig.from_pretrained(model_id)
    except Exception as exc:
        raise BackendOptionError(
            f"{owner}: cannot load a transformers model from {model_id!r} ({first_line(exc)})"
        ) from exc
    kind = getattr(config, "model_type", "?")
    if kind != "vjepa2":
        raise BackendOptionError(
            f"{owner}: {model_id!r} holds a {kind!r} model, a V-JEPA 2 checkpoint ('vjepa2') is expected"
        )
    try:
        model, info = model_class.from_pretrained(model_id, dtype=dtype, output_loading_info=True)
    except Exception as exc:
        raise BackendOptionError(
            f"{owner}: cannot load the V-JEPA 2 model in {model_id!r} ({first_line(exc)})"
        ) from exc
    missing = [key for key in info.get("missing_keys", ()) if "predictor" in key]
    if missing:
        raise BackendOptionError(
            f"{owner}: {model_id!r} has no predictor weights ({len(missing)} missing, e.g. {sorted(missing)[0]!r}); "
            "world-model surprise needs a V-JEPA 2 checkpoint with its predictor"
        )
    model.to(device).eval()
    log.info("%s: loaded %s on %s as %s", owner, model_id, device, dtype)
    return model
