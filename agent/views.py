"""What a VLM is shown of a clip: which frames, at what size, and each one's label (its role and time).

Times are seconds from the switch frame (the last real frame, ``t = 0``): prefix frame ``i`` of ``P`` is at
``(i - (P - 1)) / fps`` and generated frame ``k`` (0-based) at ``(k + 1) / fps``. A prefix of one frame is an
image-to-video scene (the switch frame is the input image).

- :func:`critique_views`: dense around the switch (the last ``context`` prefix frames, the switch frame, the
  first ``dense`` generated frames, where velocity continuity is judged) plus ``coverage`` frames evenly over
  the rest of the continuation, the last generated frame always among them; optionally a timestamped contact
  sheet and upscaled crops of the moving region, so small objects are visible.
- :func:`prefix_views`: the prefix for the prediction (evenly spaced, the switch frame last).
- :func:`judge_views`: the last prefix frames, then A's and B's frames at the same times.
- :func:`clip_video`: prefix and continuation as one labelled :class:`~agent.vlm.base.Video`.
- :func:`to_message_kwargs`: views -> ``Message(..., images=..., labels=...)`` keyword arguments.

Everything here is a pure function of numpy frames (OpenCV for resizing and drawing).

>>> prefix = np.zeros((24, 18, 32, 3), np.uint8)
>>> frames = np.zeros((40, 18, 32, 3), np.uint8)
>>> [view.label for view in critique_views(prefix, frames, fps=8)][:4]
['prefix, t = -0.25 s', 'prefix, t = -0.12 s', 'switch frame, t = 0 s (last real frame)', 'generated, t = +0.12 s']
"""

from __future__ import annotations

import itertools
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from agent.vlm.base import Video, downscale

logger = logging.getLogger(__name__)

#: Grey levels (0-255) a blurred frame difference must exceed to count as motion: above the flicker and
#: compression noise of generated clips, below the contrast of an object against its background.
DIFF_THRESHOLD = 24
#: Side (pixels) of the Gaussian kernel that smooths a difference before thresholding.
DIFF_BLUR = 5
#: Smallest crop side in source pixels (a crop much smaller than this upscales to mush).
MIN_CROP_SIDE = 32
#: Margin around the moving region: this fraction of its larger side, at least ``MIN_CROP_MARGIN`` pixels.
CROP_MARGIN = 0.25
MIN_CROP_MARGIN = 6
#: A moving region covering more of the frame than this is the whole scene (camera motion, flicker): a crop
#: would show nothing closer, so none is made.
MAX_CROP_AREA = 0.5
#: Contact-sheet columns.
SHEET_COLUMNS = 4


@dataclass(frozen=True)
class View:
    """One image the model is shown, with the label sent as text right before it.

    Attributes:
        label: Role and time, e.g. ``"generated, t = +0.50 s"``.
        image: ``(H, W, 3)`` uint8 RGB.
    """

    label: str
    image: np.ndarray


class ViewOptions(BaseModel):
    """How many frames a critique shows, and the extras.

    Attributes:
        images: Frames in total (context + switch + dense + coverage; the contact sheet and crops come on
            top). Coverage is what is left: ``images - context - 1 - dense``, at least 1 (the last frame).
        context: Prefix frames right before the switch frame (v2v; an i2v scene gives them to coverage).
        dense: Generated frames right after the switch frame.
        contact_sheet: Add one image: a grid of ``sheet_frames`` generated frames with their times.
        sheet_frames: Frames on the contact sheet, evenly over the continuation.
        crop: Add crops of the moving region of the switch-adjacent frames, upscaled to ``crop_side``.
        crop_side: Larger side of each crop in pixels.
        max_side: Larger side of the frames and of the contact sheet (frames are never upscaled).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    images: int = Field(default=10, ge=2)
    context: int = Field(default=2, ge=0)
    dense: int = Field(default=3, ge=0)
    contact_sheet: bool = False
    sheet_frames: int = Field(default=12, ge=2)
    crop: bool = False
    crop_side: int = Field(default=384, ge=32)
    max_side: int = Field(default=512, ge=64)

    @model_validator(mode="after")
    def _room_for_coverage(self) -> ViewOptions:
        if self.images < self.context + self.dense + 2:
            raise ValueError(
                f"images={self.images} leaves no coverage frame: it must be at least context + dense + 2 "
                f"= {self.context + self.dense + 2} (the switch frame and the last generated frame)"
            )
        return self


def format_seconds(seconds: float) -> str:
    """``"0 s"`` or a signed time with 2 decimals.

    >>> format_seconds(0.0), format_seconds(-0.25), format_seconds(0.5), format_seconds(5)
    ('0 s', '-0.25 s', '+0.50 s', '+5.00 s')
    """
    if abs(seconds) < 0.005:
        return "0 s"
    return f"{seconds:+.2f} s"


def time_label(role: str, seconds: float) -> str:
    """``"<role>, t = <time>"``; a switch frame is marked as the last real frame.

    >>> time_label("prefix", -0.25), time_label("generated", 0.5)
    ('prefix, t = -0.25 s', 'generated, t = +0.50 s')
    >>> time_label("switch frame", 0)
    'switch frame, t = 0 s (last real frame)'
    """
    label = f"{role}, t = {format_seconds(seconds)}"
    if role.endswith("switch frame"):
        label += " (last real frame)"
    return label


def prefix_seconds(index: int, count: int, fps: float) -> float:
    """Time of prefix frame ``index`` of ``count`` (the last one, the switch frame, is 0)."""
    return (index - (count - 1)) / fps


def generated_seconds(index: int, fps: float) -> float:
    """Time of generated frame ``index`` (0-based; frame 0 comes one frame after the switch frame)."""
    return (index + 1) / fps


def spread(first: int, last: int, count: int) -> list[int]:
    """``count`` integers evenly from ``first`` to ``last`` (both included, halves rounded up), no repeats.

    >>> spread(0, 39, 4), spread(0, 2, 5), spread(3, 9, 1)
    ([0, 13, 26, 39], [0, 1, 2], [9])
    """
    if count <= 1 or last <= first:
        return [last]
    return sorted({first + math.floor((last - first) * j / (count - 1) + 0.5) for j in range(count)})


def coverage_indices(count: int, dense: int, coverage: int) -> list[int]:
    """Generated-frame indices evenly covering the continuation after the first ``dense`` frames, ending on
    the last frame (``count - 1``).

    >>> coverage_indices(40, 3, 4), coverage_indices(40, 0, 2), coverage_indices(3, 3, 4)
    ([11, 21, 30, 39], [19, 39], [])
    """
    if count <= dense or coverage <= 0:
        return []
    step = (count - dense) / coverage
    return sorted({dense - 1 + math.floor(step * j + 0.5) for j in range(1, coverage + 1)})


def _clip(frames: Any, name: str) -> np.ndarray:
    array = np.asarray(frames)
    if array.ndim != 4 or array.shape[-1] != 3 or array.dtype != np.uint8 or len(array) == 0:
        raise ValueError(
            f"{name}: expected (T, H, W, 3) uint8 frames with T >= 1, got {array.shape} {array.dtype}"
        )
    return array


def _check_fps(fps: float) -> float:
    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return float(fps)


def _fit(frame: np.ndarray, max_side: int | None) -> np.ndarray:
    image = downscale(frame, max_side) if max_side else frame
    return np.array(image, dtype=np.uint8, copy=True)


def critique_views(
    prefix: np.ndarray, frames: np.ndarray, fps: float, options: ViewOptions | None = None
) -> list[View]:
    """The labelled images a critique shows, in time order, then the contact sheet and crops if asked.

    Args:
        prefix: ``(P, H, W, 3)`` uint8, its last frame the switch frame (``P == 1`` for i2v).
        frames: ``(N, H, W, 3)`` uint8 generated continuation (frame 0 one frame after the switch).
        fps: Frame rate of both.
        options: Counts and extras (defaults: 10 images = 2 context + switch + 3 dense + 4 coverage).

    Returns:
        Context prefix frames, the switch frame, dense and coverage generated frames (time order), then the
        contact sheet, then the crops.
    """
    options = options or ViewOptions()
    prefix, frames, fps = _clip(prefix, "prefix"), _clip(frames, "frames"), _check_fps(fps)
    count = len(prefix)
    context = min(options.context, count - 1)
    dense = min(options.dense, len(frames))
    coverage = options.images - context - 1 - options.dense
    views = [
        View(time_label("prefix", prefix_seconds(i, count, fps)), _fit(prefix[i], options.max_side))
        for i in range(count - 1 - context, count - 1)
    ]
    views.append(View(time_label("switch frame", 0.0), _fit(prefix[-1], options.max_side)))
    for k in sorted(set(range(dense)) | set(coverage_indices(len(frames), dense, coverage))):
        views.append(
            View(time_label("generated", generated_seconds(k, fps)), _fit(frames[k], options.max_side))
        )
    if options.contact_sheet:
        views.append(contact_sheet(frames, fps, options.sheet_frames, options.max_side))
    if options.crop:
        views.extend(crop_views(prefix, frames, fps, dense=max(dense, 1), side=options.crop_side))
    return views


def prefix_views(prefix: np.ndarray, fps: float, n: int = 4) -> list[View]:
    """The prefix for the prediction: ``n`` frames evenly over it, the switch frame last (i2v: just it).

    >>> [v.label for v in prefix_views(np.zeros((24, 4, 4, 3), np.uint8), fps=8, n=3)]
    ['prefix, t = -2.88 s', 'prefix, t = -1.38 s', 'switch frame, t = 0 s (last real frame)']
    """
    prefix, fps = _clip(prefix, "prefix"), _check_fps(fps)
    count = len(prefix)
    views = []
    for i in spread(0, count - 1, max(1, n)):
        role = "switch frame" if i == count - 1 else "prefix"
        views.append(View(time_label(role, prefix_seconds(i, count, fps)), _fit(prefix[i], None)))
    return views


def judge_views(
    prefix: np.ndarray, frames_a: np.ndarray, frames_b: np.ndarray, fps: float, n: int = 4, context: int = 2
) -> list[View]:
    """For comparing two continuations: the last ``context`` prefix frames and the switch frame, then ``n``
    of A's frames, then B's frames at the same times (evenly spaced, the last frame of the shorter included).

    >>> clip = np.zeros((40, 4, 4, 3), np.uint8)
    >>> [v.label for v in judge_views(clip[:24], clip, clip, fps=8, n=2, context=1)]  # doctest: +NORMALIZE_WHITESPACE
    ['prefix, t = -0.12 s', 'switch frame, t = 0 s (last real frame)',
     'A, generated, t = +0.12 s', 'A, generated, t = +5.00 s',
     'B, generated, t = +0.12 s', 'B, generated, t = +5.00 s']
    """
    prefix, fps = _clip(prefix, "prefix"), _check_fps(fps)
    frames_a, frames_b = _clip(frames_a, "frames_a"), _clip(frames_b, "frames_b")
    count = len(prefix)
    views = [
        View(time_label("prefix", prefix_seconds(i, count, fps)), _fit(prefix[i], None))
        for i in range(count - 1 - min(context, count - 1), count - 1)
    ]
    views.append(View(time_label("switch frame", 0.0), _fit(prefix[-1], None)))
    times = spread(0, min(len(frames_a), len(frames_b)) - 1, max(1, n))
    for name, frames in (("A", frames_a), ("B", frames_b)):
        views += [
            View(time_label(f"{name}, generated", generated_seconds(k, fps)), _fit(frames[k], None))
            for k in times
        ]
    return views


def _font_scale(text: str, width: int, height: int) -> float:
    """The largest Hershey-simplex scale at which ``text`` fits ``width`` x ``height`` pixels."""
    (text_width, text_height), baseline = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 1.0, 1)
    return min(width / text_width, height / (text_height + baseline))


def contact_sheet(frames: np.ndarray, fps: float, n: int = 12, max_side: int = 512) -> View:
    """One image: ``n`` generated frames evenly over the continuation in a grid (left to right, top to bottom),
    each under a black band with its time in white.

    The sheet's larger side is ``max_side``; the time text fills most of its band, whose height is a fifth
    of the tile width (at least 12 pixels), so it stays legible at the sheet's own size.
    """
    frames, fps = _clip(frames, "frames"), _check_fps(fps)
    chosen = spread(0, len(frames) - 1, n)
    columns = min(SHEET_COLUMNS, len(chosen))
    rows = math.ceil(len(chosen) / columns)
    height, width = frames.shape[1:3]
    tile_width = max_side // columns
    band = max(12, tile_width // 5)
    tile_height = max(1, round(tile_width * height / width))
    if rows * (tile_height + band) > max_side:  # tall frames: fit the height instead
        tile_height = max(1, max_side // rows - band)
        tile_width = min(max_side // columns, max(1, round(tile_height * width / height)))
    sheet = np.zeros((rows * (tile_height + band), columns * tile_width, 3), np.uint8)
    for slot, k in enumerate(chosen):
        top, left = (slot // columns) * (tile_height + band), (slot % columns) * tile_width
        tile = cv2.resize(frames[k], (tile_width, tile_height), interpolation=cv2.INTER_AREA)
        sheet[top + band : top + band + tile_height, left : left + tile_width] = tile
        text = format_seconds(generated_seconds(k, fps))
        scale = _font_scale(text, tile_width - 4, band - 2)
        (_, text_height), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        baseline_y = top + (band + text_height) // 2
        cv2.putText(
            sheet,
            text,
            (left + 2, baseline_y),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
    first, last = generated_seconds(chosen[0], fps), generated_seconds(chosen[-1], fps)
    label = (
        f"contact sheet: {len(chosen)} generated frames from t = {format_seconds(first)} to "
        f"t = {format_seconds(last)}, left to right, top to bottom, each under its time"
    )
    return View(label, sheet)


def _changed(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pixels where two frames differ by more than noise (blurred max-channel difference, thresholded)."""
    difference = cv2.absdiff(a, b).max(axis=2)
    difference = cv2.GaussianBlur(difference, (DIFF_BLUR, DIFF_BLUR), 0)
    return np.asarray(difference > DIFF_THRESHOLD)


def moving_box(
    switch: np.ndarray, generated: Sequence[np.ndarray], prefix: Sequence[np.ndarray] = ()
) -> tuple[int, int, int, int] | None:
    """The square region ``(x0, y0, x1, y1)`` (``x1``, ``y1`` exclusive) where things move near the switch.

    Motion is where the ``generated`` frames differ from the ``switch`` frame, or consecutive ``prefix``
    frames differ from each other (blurred, thresholded at :data:`DIFF_THRESHOLD`). The bounding box of it
    gets a margin, a minimum side of :data:`MIN_CROP_SIDE`, is made square and kept inside the frame.

    Returns:
        The box, or ``None`` when nothing moves or the motion covers most of the frame.
    """
    height, width = switch.shape[:2]
    mask = np.zeros((height, width), bool)
    for frame in generated:
        mask |= _changed(switch, frame)
    for before, after in itertools.pairwise(prefix):
        mask |= _changed(before, after)
    ys, xs = np.nonzero(mask)
    if len(xs) == 0:
        return None
    x0, x1, y0, y1 = int(xs.min()), int(xs.max()) + 1, int(ys.min()), int(ys.max()) + 1
    if (x1 - x0) * (y1 - y0) > MAX_CROP_AREA * width * height:
        return None
    margin = max(MIN_CROP_MARGIN, math.ceil(CROP_MARGIN * max(x1 - x0, y1 - y0)))
    side = max(MIN_CROP_SIDE, max(x1 - x0, y1 - y0) + 2 * margin)
    centre_x, centre_y = (x0 + x1) / 2, (y0 + y1) / 2

    def place(centre: float, extent: int) -> tuple[int, int]:
        size = min(side, extent)
        start = min(max(0, round(centre - size / 2)), extent - size)
        return start, start + size

    (x0, x1), (y0, y1) = place(centre_x, width), place(centre_y, height)
    return x0, y0, x1, y1


def crop_views(
    prefix: np.ndarray, frames: np.ndarray, fps: float, dense: int = 3, side: int = 384
) -> list[View]:
    """Upscaled crops of the moving region (:func:`moving_box`) of the frames around the switch: the last
    prefix frame before it (v2v), the switch frame and the first ``dense`` generated frames.

    Each is labelled ``"crop (x0-x1, y0-y1) of <role>, t = <time>"`` in source pixels. Nothing moving (or
    everything moving) gives no crop.
    """
    prefix, frames, fps = _clip(prefix, "prefix"), _clip(frames, "frames"), _check_fps(fps)
    if prefix.shape[1:] != frames.shape[1:]:
        logger.warning(
            "views: no crop: prefix frames are %s but generated frames %s",
            prefix.shape[1:3],
            frames.shape[1:3],
        )
        return []
    count = len(prefix)
    generated = [(k, frames[k]) for k in range(min(dense, len(frames)))]
    box = moving_box(prefix[-1], [frame for _, frame in generated], list(prefix[-3:]))
    if box is None:
        return []
    x0, y0, x1, y1 = box
    sources: list[tuple[str, np.ndarray]] = []
    if count > 1:
        sources.append((time_label("prefix", prefix_seconds(count - 2, count, fps)), prefix[-2]))
    sources.append((time_label("switch frame", 0.0), prefix[-1]))
    sources += [(time_label("generated", generated_seconds(k, fps)), frame) for k, frame in generated]
    scale = side / max(x1 - x0, y1 - y0)
    size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
    return [
        View(
            f"crop ({x0}-{x1}, {y0}-{y1}) of {label}",
            cv2.resize(np.ascontiguousarray(frame[y0:y1, x0:x1]), size, interpolation=cv2.INTER_CUBIC),
        )
        for label, frame in sources
    ]


def clip_video(prefix: np.ndarray, frames: np.ndarray, fps: float) -> Video:
    """Prefix and continuation as one labelled clip (for backends that take video).

    >>> clip = np.zeros((40, 4, 4, 3), np.uint8)
    >>> video = clip_video(clip[:24], clip, fps=8)
    >>> video.frames.shape, video.label
    ((64, 4, 4, 3), 'video at 8 fps: the prefix from t = -2.88 s, the switch frame (last real frame) at t = 0 s, then the generated continuation to t = +5.00 s')
    """
    prefix, frames, fps = _clip(prefix, "prefix"), _clip(frames, "frames"), _check_fps(fps)
    height, width = frames.shape[1:3]
    if prefix.shape[1:3] != (height, width):
        prefix = np.stack([cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in prefix])
    start = prefix_seconds(0, len(prefix), fps)
    end = format_seconds(generated_seconds(len(frames) - 1, fps))
    if len(prefix) > 1:
        label = (
            f"video at {fps:g} fps: the prefix from t = {format_seconds(start)}, the switch frame (last real "
            f"frame) at t = 0 s, then the generated continuation to t = {end}"
        )
    else:
        label = (
            f"video at {fps:g} fps: the switch frame (last real frame) at t = 0 s, then the generated "
            f"continuation to t = {end}"
        )
    return Video(np.concatenate([prefix, frames]), fps, label)


def to_message_kwargs(views: Sequence[View]) -> dict[str, tuple[Any, ...]]:
    """``images`` and ``labels`` for :class:`~agent.vlm.base.Message`: ``Message("user", text, **kwargs)``.

    >>> kwargs = to_message_kwargs([View("switch frame, t = 0 s", np.zeros((2, 2, 3), np.uint8))])
    >>> kwargs["labels"], len(kwargs["images"])
    (('switch frame, t = 0 s',), 1)
    """
    return {"images": tuple(view.image for view in views), "labels": tuple(view.label for view in views)}
