"""Hand-made clips whose right answer is known, and tiny random-weight checkpoints, for tests and benchmarks.

:func:`ball_clip` draws a red ball crossing a textured grey background at constant velocity (optionally
falling), then after the switch frame lets it continue, teleport, freeze or reverse, or shakes or flickers
the whole picture. Every verifier should rank ``continue`` above the broken variants it is meant to catch.

The tiny checkpoint builders (:func:`build_tiny_image_encoder`, :func:`build_tiny_vjepa2`) construct the
real transformers classes at tiny sizes with seeded random weights and ``save_pretrained`` them, so tests
load them back through the backends' own ``from_pretrained(folder)`` path. They import torch and
transformers (the ``[models]`` extra) when called.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from agent.verifiers.base import ClipInput

Kind = Literal["continue", "teleport", "freeze", "reverse", "jitter", "flicker"]
KINDS: tuple[str, ...] = ("continue", "teleport", "freeze", "reverse", "jitter", "flicker")


def textured_background(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A low-saturation, smoothly textured RGB background (like the suite's), uint8."""
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, 1.0, (height, width, 3)).astype(np.float32)
    smooth = np.asarray(cv2.GaussianBlur(noise, (0, 0), 4.0), np.float32)
    smooth = smooth / max(float(np.abs(smooth).max()), 1e-6)
    grey = 125.0 + 35.0 * smooth.mean(axis=2, keepdims=True) + 6.0 * smooth
    return np.clip(grey, 0, 255).astype(np.uint8)


def _draw(background: np.ndarray, x: float, y: float, radius: float) -> np.ndarray:
    frame = background.copy()
    shift = 4  # sub-pixel centre: a smoothly moving ball, not one that snaps to the pixel grid
    centre = (round(x * (1 << shift)), round(y * (1 << shift)))
    cv2.circle(frame, centre, round(radius * (1 << shift)), (215, 35, 40), -1, cv2.LINE_AA, shift)
    return frame


def ball_clip(
    kind: Kind = "continue",
    mode: Literal["i2v", "v2v"] = "v2v",
    *,
    width: int = 320,
    height: int = 180,
    prefix_frames: int = 12,
    frames: int = 16,
    fps: float = 8.0,
    start: tuple[float, float] = (50.0, 60.0),
    velocity: tuple[float, float] = (6.0, 0.0),
    gravity: float = 0.0,
    radius: float = 9.0,
    jump: float = 60.0,
    shake_px: int = 3,
    flicker_levels: float = 12.0,
    noise: float = 1.5,
    seed: int = 0,
) -> ClipInput:
    """A ball clip whose continuation is broken in a known way after the switch frame.

    Args:
        kind: After the switch frame the ball ``continue``s its motion, ``teleport``s ``jump`` px ahead
            then continues, ``freeze``s where it was, ``reverse``s its velocity; or the ball continues while
            the camera shakes (``jitter``: whole-picture shifts of up to ``shake_px``) or the brightness
            ``flicker``s (alternating +-``flicker_levels`` grey levels).
        mode: ``v2v`` keeps all ``prefix_frames``; ``i2v`` keeps the switch frame only.
        width: Frame width (px).
        height: Frame height (px).
        prefix_frames: Conditioning frames, the last being the switch frame.
        frames: Generated frames after the switch frame.
        fps: Frame rate.
        start: Ball centre in the first prefix frame (px).
        velocity: Ball velocity (px/frame).
        gravity: Downward acceleration (px/frame^2).
        radius: Ball radius (px).
        jump: Teleport distance along the motion (px).
        shake_px: Largest camera-shake offset (px).
        flicker_levels: Flicker amplitude (grey levels).
        noise: Standard deviation of per-frame sensor/codec noise (grey levels).
        seed: Seeds the background texture, the noise and the shake.
    """
    rng = np.random.default_rng(seed)
    background = textured_background(width, height, seed)
    switch = prefix_frames - 1

    def position(t: float) -> tuple[float, float]:
        return start[0] + velocity[0] * t, start[1] + velocity[1] * t + 0.5 * gravity * t * t

    images = []
    for t in range(prefix_frames + frames):
        x, y = position(t)
        after = t - switch  # 1 for the first generated frame
        if after > 0 and kind == "teleport":
            speed = float(np.hypot(*velocity)) or 1.0
            x, y = x + jump * velocity[0] / speed, y + jump * velocity[1] / speed
        elif after > 0 and kind == "freeze":
            x, y = position(switch)
        elif after > 0 and kind == "reverse":
            x, y = position(switch - after)
        frame = _draw(background, x, y, radius).astype(np.float32)
        if after > 0 and kind == "jitter":
            dx, dy = rng.integers(-shake_px, shake_px + 1, size=2)
            shift = np.array([[1, 0, dx], [0, 1, dy]], np.float32)
            frame = np.asarray(
                cv2.warpAffine(frame, shift, (width, height), borderMode=cv2.BORDER_REFLECT), np.float32
            )
        elif after > 0 and kind == "flicker":
            frame += flicker_levels * (1 if after % 2 else -1)
        frame += rng.normal(0.0, noise, frame.shape).astype(np.float32)
        images.append(np.clip(np.round(frame), 0, 255).astype(np.uint8))
    video = np.stack(images)
    prefix = video[:prefix_frames]
    if mode == "i2v":
        prefix = prefix[-1:]
    return ClipInput(prefix=prefix, frames=video[prefix_frames:], fps=fps, mode=mode)


def build_tiny_image_encoder(folder: Path, family: Literal["dinov2", "siglip"] = "dinov2") -> Path:
    """Save a tiny random DINOv2 (or SigLIP) image encoder and its image processor into ``folder``."""
    import torch
    import transformers

    torch.manual_seed(0)
    model: Any
    processor: Any
    if family == "dinov2":
        model = transformers.Dinov2Model(
            transformers.Dinov2Config(
                hidden_size=32,
                num_hidden_layers=2,
                num_attention_heads=2,
                mlp_ratio=2,
                image_size=32,
                patch_size=8,
            )
        )
        # The PIL image processors need no torchvision; 32 px keeps the tiny model cheap.
        processor = transformers.BitImageProcessorPil(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        )
    else:
        vision = transformers.SiglipVisionConfig(
            hidden_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=37,
            image_size=32,
            patch_size=8,
        )
        text = transformers.SiglipTextConfig(
            hidden_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=37,
            vocab_size=99,
            bos_token_id=None,
            eos_token_id=None,
        )
        model = transformers.SiglipModel(
            transformers.SiglipConfig(text_config=text.to_dict(), vision_config=vision.to_dict())
        )
        processor = transformers.SiglipImageProcessorPil(size={"height": 32, "width": 32})
    model.eval().save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def build_tiny_vjepa2(folder: Path, *, with_predictor: bool = True) -> Path:
    """Save a tiny random V-JEPA 2 (encoder and predictor; 32 px crops, 8 px patches, tubelets of 2)."""
    import torch
    import transformers

    torch.manual_seed(0)
    config = transformers.VJEPA2Config(
        patch_size=8,
        crop_size=32,
        frames_per_clip=16,
        tubelet_size=2,
        hidden_size=32,
        num_attention_heads=2,
        num_hidden_layers=2,
        mlp_ratio=2.0,
        num_pooler_layers=1,
        pred_hidden_size=32,
        pred_num_attention_heads=2,
        pred_num_hidden_layers=2,
        pred_mlp_ratio=2.0,
    )
    model = transformers.VJEPA2Model(config).eval()
    if not with_predictor:
        # A checkpoint saved without its predictor (as an encoder-only export would be).
        state = {k: v for k, v in model.state_dict().items() if not k.startswith("predictor.")}
        model.save_pretrained(folder, state_dict=state)
    else:
        model.save_pretrained(folder)
    return folder
