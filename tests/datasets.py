"""A tiny Physics-IQ dataset in the official layout, built from scratch for tests (and reusable by others).

Each scenario shows coloured squares moving over a textured, noisy background, filmed from three "views"
(different textures, offsets and speeds) in two takes; take-2 perturbs the start position and speed slightly,
as a second real recording of the same experiment would. Everything is deterministic given ``seed``.

Usage::

    from tests.datasets import build_tiny_dataset, write_generated_folder
    layout = build_tiny_dataset(tmp_path / "ds")                      # 3 scenarios x 3 views x 2 takes, 8 FPS
    gen = write_generated_folder(layout, tmp_path / "gen", source="take2")
"""

from __future__ import annotations

import shutil
from pathlib import Path

import cv2
import numpy as np

from physics_iq.layout import CATEGORIES, PERSPECTIVES, DatasetLayout, Row, write_descriptions
from physics_iq.video import write_video

CONDITIONING_SECONDS = 3.0


def _background(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    # Smooth texture: low-resolution noise upsampled, so blur + threshold 10 sees no motion in it.
    small = rng.integers(40, 200, size=(max(height // 8, 2), max(width // 8, 2), 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_CUBIC)


def render_clip(
    *,
    scenario: int,
    view: int,
    take: int,
    n_frames: int,
    start_frame: int,
    fps: int,
    width: int,
    height: int,
    seed: int,
) -> np.ndarray:
    """Frames ``start_frame .. start_frame + n_frames`` of one recording, ``(T, H, W, 3)`` RGB uint8."""
    bg = _background(np.random.default_rng([seed, scenario, view]), width, height)
    noise_rng = np.random.default_rng([seed, scenario, view, take, start_frame])
    colours = [(230, 40, 40), (40, 200, 60), (50, 80, 230), (240, 220, 40)]
    perturb = 0.0 if take == 1 else 2.0
    squares = []
    for k in range(1 + scenario % 2):
        side = max(8, height // 4)
        x0 = (0.1 + 0.25 * k + 0.05 * view) * width + perturb
        y0 = (0.2 + 0.3 * k) * height
        vx = (0.35 + 0.1 * scenario + 0.05 * view) * width * (1.0 + 0.02 * perturb)  # pixels per second
        vy = (0.2 * (scenario - 1)) * height
        squares.append((side, x0, y0, vx, vy, colours[(scenario + k) % len(colours)]))
    out = np.empty((n_frames, height, width, 3), np.uint8)
    for i in range(n_frames):
        t = (start_frame + i) / fps
        frame = bg.copy()
        for side, x0, y0, vx, vy, colour in squares:
            # Bounce between the walls so the motion stays inside the frame for any clip length.
            span_x, span_y = width - side, height - side
            x = round(abs((x0 + vx * t) % (2 * span_x) - span_x))
            y = round(abs((y0 + vy * t) % (2 * span_y) - span_y))
            frame[y : y + side, x : x + side] = colour
        noisy = frame.astype(np.int16) + noise_rng.normal(0, 2.0, frame.shape).round().astype(np.int16)
        out[i] = np.clip(noisy, 0, 255).astype(np.uint8)
    return out


def build_tiny_dataset(
    root: str | Path,
    *,
    n_scenarios: int = 3,
    fps: int = 8,
    width: int = 96,
    height: int = 64,
    seconds: float = 5.0,
    seed: int = 0,
    crf: int = 18,
) -> DatasetLayout:
    """Write a complete tiny dataset (descriptions, testing and conditioning videos, switch frames).

    IDs follow the official convention: take-1 rows first (``1 .. 3 * n_scenarios``), then their take-2 twins
    in the same order.
    """
    root = Path(root)
    rows: list[Row] = []
    n_views = len(PERSPECTIVES)
    for take in (1, 2):
        for s in range(n_scenarios):
            for v, perspective in enumerate(PERSPECTIVES):
                id_ = (take - 1) * n_scenarios * n_views + s * n_views + v + 1
                slug = f"trimmed-tiny-scenario-{s}"
                rows.append(
                    Row(
                        id=id_,
                        perspective=perspective,
                        take=take,
                        scenario=slug,
                        description=f"Tiny scenario {s}: coloured squares slide across a table.",
                        category=CATEGORIES[s % len(CATEGORIES)],
                        generated_video_name=f"{id_:04d}_{perspective}_{slug}.mp4",
                    )
                )
    root.mkdir(parents=True, exist_ok=True)
    write_descriptions(root / "descriptions.csv", rows)
    layout = DatasetLayout(root)
    n_test = int(seconds * fps)
    n_cond = int(CONDITIONING_SECONDS * fps)
    for row in layout.rows:
        s = int(row.scenario.rsplit("-", 1)[1])
        v = PERSPECTIVES.index(row.perspective)
        common = dict(scenario=s, view=v, take=row.take, fps=fps, width=width, height=height, seed=seed)
        cond = render_clip(n_frames=n_cond, start_frame=0, **common)  # type: ignore[arg-type]
        test = render_clip(n_frames=n_test, start_frame=n_cond, **common)  # type: ignore[arg-type]
        write_video(layout.conditioning_video(row, fps), cond, fps, crf=crf)
        write_video(layout.testing_video(row, fps), test, fps, crf=crf)
        if row.take == 1:
            switch = layout.switch_frame(row)
            switch.parent.mkdir(parents=True, exist_ok=True)
            cv2.imwrite(
                str(switch), cv2.cvtColor(cond[-1], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]
            )
    return layout


def write_generated_folder(
    layout: DatasetLayout,
    out_dir: str | Path,
    *,
    source: str = "take2",
    fps: int = 8,
    seconds: float = 5.0,
) -> Path:
    """A folder of "generated" videos for every take-1 row.

    Args:
        layout: The dataset.
        out_dir: Folder to create.
        source: ``take2`` copies the take-2 testing video (must score exactly 100), ``take1`` copies take-1,
            ``switch`` repeats the switch frame (a model that predicts no motion).
        fps: Frame rate.
        seconds: Duration of ``switch`` clips.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for pair in layout.pairs():
        dest = out_dir / pair.take1.generated_video_name
        if source in ("take1", "take2"):
            row = pair.take2 if source == "take2" else pair.take1
            shutil.copyfile(layout.testing_video(row, fps), dest)
        elif source == "switch":
            image = cv2.cvtColor(cv2.imread(str(layout.switch_frame(pair.take1))), cv2.COLOR_BGR2RGB)
            write_video(dest, np.repeat(image[None], int(seconds * fps), axis=0), fps)
        else:
            raise ValueError(f"unknown source {source!r}; expected take1, take2 or switch")
    return out_dir


def parity_models(root: Path) -> tuple[DatasetLayout, dict[str, Path]]:
    """The three "models" the parity tests score on a 3-scenario dataset: take 2 (``take2``), the switch frame
    held (``switch``) and take 1 replayed 4 frames late (``late``)."""
    from physics_iq.video import read_video

    layout = build_tiny_dataset(root / "ds", n_scenarios=3, fps=8)
    gens = {src: write_generated_folder(layout, root / src, source=src) for src in ("take2", "switch")}
    late = root / "late"
    late.mkdir()
    for pair in layout.pairs():
        frames, _ = read_video(layout.testing_video(pair.take1, 8))
        held = np.concatenate([np.repeat(frames[:1], 4, axis=0), frames[:-4]])
        write_video(late / pair.take1.generated_video_name, held, 8)
    gens["late"] = late
    return layout, gens
