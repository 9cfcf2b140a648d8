"""What the VLM is shown: frame choice, labels, contact sheet and crops (agent/views.py)."""

from __future__ import annotations

import re

import cv2
import numpy as np
import pytest
from pydantic import ValidationError

from agent.views import (
    View,
    ViewOptions,
    clip_video,
    contact_sheet,
    critique_views,
    judge_views,
    moving_box,
    prefix_views,
    time_label,
    to_message_kwargs,
)
from agent.vlm.base import Message

FPS = 8.0


def numbered(count: int, size: tuple[int, int] = (18, 32), start: int = 0) -> np.ndarray:
    """Frames filled with their own number (``start + index``), so a view can be traced to its frame."""
    values = np.arange(start, start + count, dtype=np.uint8)
    return np.broadcast_to(values[:, None, None, None], (count, *size, 3)).copy()


def frame_number(view: View) -> int:
    values = np.unique(view.image)
    assert len(values) == 1, view.label
    return int(values[0])


PREFIX = numbered(24, start=0)  # prefix frame i holds i; the switch frame holds 23
GENERATED = numbered(40, start=100)  # generated frame k holds 100 + k

V2V_LABELS = [
    "prefix, t = -0.25 s",
    "prefix, t = -0.12 s",
    "switch frame, t = 0 s (last real frame)",
    "generated, t = +0.12 s",
    "generated, t = +0.25 s",
    "generated, t = +0.38 s",
    "generated, t = +1.50 s",
    "generated, t = +2.75 s",
    "generated, t = +3.88 s",
    "generated, t = +5.00 s",
]
I2V_LABELS = [
    "switch frame, t = 0 s (last real frame)",
    "generated, t = +0.12 s",
    "generated, t = +0.25 s",
    "generated, t = +0.38 s",
    "generated, t = +1.12 s",
    "generated, t = +1.88 s",
    "generated, t = +2.75 s",
    "generated, t = +3.50 s",
    "generated, t = +4.25 s",
    "generated, t = +5.00 s",
]


def test_v2v_critique_views_at_8_fps_with_40_generated_frames() -> None:
    views = critique_views(PREFIX, GENERATED, FPS)
    assert [view.label for view in views] == V2V_LABELS
    # prefix 21, 22 and the switch frame 23; generated 0, 1, 2 (dense) and 11, 21, 30, 39 (coverage)
    assert [frame_number(view) for view in views] == [21, 22, 23, 100, 101, 102, 111, 121, 130, 139]


def test_i2v_critique_views_give_the_context_slots_to_coverage() -> None:
    views = critique_views(PREFIX[-1:], GENERATED, FPS)
    assert [view.label for view in views] == I2V_LABELS
    assert [frame_number(view) for view in views] == [23, 100, 101, 102, 108, 114, 121, 127, 133, 139]


def test_time_labels() -> None:
    assert time_label("prefix", -0.25) == "prefix, t = -0.25 s"
    assert time_label("switch frame", 0) == "switch frame, t = 0 s (last real frame)"
    assert time_label("generated", 0.5) == "generated, t = +0.50 s"
    assert time_label("A, generated", 4.999) == "A, generated, t = +5.00 s"


def test_counts_are_configurable() -> None:
    options = ViewOptions(images=8, context=1, dense=2)
    views = critique_views(PREFIX, GENERATED, FPS, options)
    assert len(views) == 8
    assert [view.label for view in views][:4] == [
        "prefix, t = -0.12 s",
        "switch frame, t = 0 s (last real frame)",
        "generated, t = +0.12 s",
        "generated, t = +0.25 s",
    ]
    assert [frame_number(view) for view in views][4:] == [111, 120, 130, 139]  # 4 coverage frames
    assert len(critique_views(PREFIX, GENERATED, FPS, ViewOptions(images=16, context=4, dense=6))) == 16
    # A prefix shorter than the context gives its missing frames to coverage too.
    assert len(critique_views(PREFIX[-2:], GENERATED, FPS)) == 10
    with pytest.raises(ValidationError, match="no coverage frame"):
        ViewOptions(images=5, context=2, dense=2)
    with pytest.raises(ValidationError, match="extra"):
        ViewOptions(image=5)


@pytest.mark.parametrize("count", [1, 2, 3, 4, 7, 40, 121])
@pytest.mark.parametrize("prefix_frames", [1, 24])
@pytest.mark.parametrize(
    "options", [ViewOptions(), ViewOptions(images=2, context=0, dense=0), ViewOptions(images=12, dense=8)]
)
def test_the_last_generated_frame_is_always_shown_once_and_times_increase(
    count: int, prefix_frames: int, options: ViewOptions
) -> None:
    views = critique_views(PREFIX[-prefix_frames:], numbered(count, start=100), FPS, options)
    numbers = [frame_number(view) for view in views]
    assert numbers[-1] == 100 + count - 1
    assert numbers == sorted(set(numbers))  # time order, no frame twice
    assert len(views) <= options.images
    if count >= options.images:  # enough frames: exactly the configured number of images, i2v or v2v
        assert len(views) == options.images


def test_frames_are_downscaled_to_max_side_and_every_view_is_uint8_rgb() -> None:
    prefix, frames = numbered(24, (360, 640)), numbered(40, (360, 640), start=100)
    views = critique_views(prefix, frames, FPS, ViewOptions(contact_sheet=True, crop=True, max_side=256))
    views += prefix_views(prefix, FPS) + judge_views(prefix, frames, frames, FPS)
    for view in views:
        assert view.image.dtype == np.uint8 and view.image.ndim == 3 and view.image.shape[2] == 3, view.label
    assert all(max(view.image.shape[:2]) <= 256 for view in views[:11])  # frames and sheet


def test_prefix_views() -> None:
    views = prefix_views(PREFIX, FPS, n=4)
    assert [view.label for view in views] == [
        "prefix, t = -2.88 s",
        "prefix, t = -1.88 s",
        "prefix, t = -1.00 s",
        "switch frame, t = 0 s (last real frame)",
    ]
    assert [frame_number(view) for view in views] == [0, 8, 15, 23]
    (switch,) = prefix_views(PREFIX[-1:], FPS, n=4)
    assert switch.label == "switch frame, t = 0 s (last real frame)" and frame_number(switch) == 23


def test_judge_views_show_a_and_b_at_the_same_times() -> None:
    frames_b = numbered(40, start=200)
    views = judge_views(PREFIX, GENERATED, frames_b, FPS, n=3)
    assert [view.label for view in views] == [
        "prefix, t = -0.25 s",
        "prefix, t = -0.12 s",
        "switch frame, t = 0 s (last real frame)",
        "A, generated, t = +0.12 s",
        "A, generated, t = +2.62 s",
        "A, generated, t = +5.00 s",
        "B, generated, t = +0.12 s",
        "B, generated, t = +2.62 s",
        "B, generated, t = +5.00 s",
    ]
    assert [frame_number(view) for view in views] == [21, 22, 23, 100, 120, 139, 200, 220, 239]
    # i2v: the switch frame only; continuations of different lengths: the shorter's last frame.
    views = judge_views(PREFIX[-1:], GENERATED, frames_b[:20], FPS, n=2)
    assert [frame_number(view) for view in views] == [23, 100, 119, 200, 219]


def test_contact_sheet_grid_size_and_timestamps() -> None:
    colours = np.linspace(20, 235, 40).astype(np.uint8)  # frame k is grey level colours[k]
    frames = np.broadcast_to(colours[:, None, None, None], (40, 180, 320, 3)).copy()
    sheet = contact_sheet(frames, FPS, n=12, max_side=512)
    assert sheet.label == (
        "contact sheet: 12 generated frames from t = +0.12 s to t = +5.00 s, left to right, top to bottom, "
        "each under its time"
    )
    # 4 columns x 3 rows of 128-px tiles (128x72 frames under a 25-px band).
    assert sheet.image.shape == (3 * (72 + 25), 512, 3) and sheet.image.dtype == np.uint8
    expected = [0, 4, 7, 11, 14, 18, 21, 25, 28, 32, 35, 39]
    for slot, k in enumerate(expected):
        top, left = (slot // 4) * 97, (slot % 4) * 128
        assert sheet.image[top + 25 + 36, left + 64, 0] == colours[k], slot
        band = sheet.image[top : top + 25, left : left + 128, 0]
        ys, xs = np.nonzero(band > 128)  # the white time text
        assert ys.max() - ys.min() >= 10 and xs.max() - xs.min() >= 50, f"time on tile {slot} too small"
    # Tall frames fit the height instead.
    tall = contact_sheet(np.zeros((40, 320, 180, 3), np.uint8), FPS, max_side=512).image
    assert max(tall.shape[:2]) <= 512


def ball_clip(moving: bool = True) -> tuple[np.ndarray, np.ndarray, list[tuple[int, int]]]:
    """A 6-px red disc moving right 4 px per frame over a static texture, with per-frame sensor noise.

    Returns the prefix (24 frames), the continuation (40 frames) and the disc centre of every frame.
    """
    rng = np.random.default_rng(1)
    texture = cv2.GaussianBlur(rng.integers(0, 256, (180, 320, 3), dtype=np.uint8), (5, 5), 0)
    frames, centres = [], []
    for index in range(64):
        frame = texture.copy()
        centre = (60 + 4 * index if moving else 150, 90)
        cv2.circle(frame, centre, 3, (255, 0, 0), -1)
        noise = rng.integers(-3, 4, frame.shape)
        frames.append(np.clip(frame.astype(int) + noise, 0, 255).astype(np.uint8))
        centres.append(centre)
    clip = np.stack(frames)
    return clip[:24], clip[24:], centres


def test_crop_finds_a_small_moving_ball_and_upscales_it() -> None:
    prefix, frames, centres = ball_clip()
    views = critique_views(prefix, frames, FPS, ViewOptions(crop=True, crop_side=384))
    crops = [view for view in views if view.label.startswith("crop")]
    assert len(crops) == 5  # the last prefix frame before the switch, the switch frame, 3 dense frames
    match = re.match(r"crop \((\d+)-(\d+), (\d+)-(\d+)\) of ", crops[0].label)
    assert match, crops[0].label
    x0, x1, y0, y1 = map(int, match.groups())
    assert [view.label.split(" of ", 1)[1] for view in crops] == [
        "prefix, t = -0.12 s",
        "switch frame, t = 0 s (last real frame)",
        "generated, t = +0.12 s",
        "generated, t = +0.25 s",
        "generated, t = +0.38 s",
    ]
    for view, index in zip(crops, [22, 23, 24, 25, 26], strict=True):
        cx, cy = centres[index]
        assert x0 <= cx - 3 and cx + 3 < x1 and y0 <= cy - 3 and cy + 3 < y1, (view.label, centres[index])
        assert view.image.shape == (384, 384, 3) and view.image.dtype == np.uint8
        red = (view.image[..., 0] > 200) & (view.image[..., 1] < 80) & (view.image[..., 2] < 80)
        assert red.sum() > 1500  # ~28 px of disc, upscaled ~9x per side
    assert (x1 - x0) == (y1 - y0) <= 64  # a tight square, not the frame
    # The box comes from motion only: a static scene gives none, a whole-frame change gives none.
    still_prefix, still_frames, _ = ball_clip(moving=False)
    assert not [
        v
        for v in critique_views(still_prefix, still_frames, FPS, ViewOptions(crop=True))
        if "crop" in v.label
    ]
    brighter = np.clip(frames.astype(int) + 60, 0, 255).astype(np.uint8)
    assert moving_box(prefix[-1], list(brighter[:3])) is None


def test_crop_near_the_border_stays_inside_the_frame() -> None:
    frames = np.zeros((4, 40, 60, 3), np.uint8)
    for index, frame in enumerate(frames):
        cv2.circle(frame, (2 + index, 2), 3, (255, 255, 255), -1)
    x0, y0, x1, y1 = moving_box(frames[0], list(frames[1:])) or (0, 0, 0, 0)
    assert (x0, y0) == (0, 0) and x1 - x0 == y1 - y0 == 32


def test_clip_video_and_message_kwargs() -> None:
    video = clip_video(PREFIX, GENERATED, FPS)
    assert video.frames.shape == (64, 18, 32, 3) and video.fps == FPS
    assert video.label == (
        "video at 8 fps: the prefix from t = -2.88 s, the switch frame (last real frame) at t = 0 s, "
        "then the generated continuation to t = +5.00 s"
    )
    assert clip_video(PREFIX[-1:], GENERATED, FPS).label == (
        "video at 8 fps: the switch frame (last real frame) at t = 0 s, then the generated continuation "
        "to t = +5.00 s"
    )
    views = critique_views(PREFIX, GENERATED, FPS)
    message = Message("user", "What happens?", **to_message_kwargs(views), video=video)
    assert list(message.labels) == V2V_LABELS and len(message.images) == 10


def test_bad_input_is_named() -> None:
    with pytest.raises(ValueError, match=r"frames: expected \(T, H, W, 3\) uint8"):
        critique_views(PREFIX, GENERATED.astype(np.float32), FPS)
    with pytest.raises(ValueError, match="prefix"):
        critique_views(PREFIX[:0], GENERATED, FPS)
    with pytest.raises(ValueError, match="fps must be positive"):
        prefix_views(PREFIX, 0)
