"""A minimal built-in scenario set in the official Physics-IQ layout: a fallback for ``physrefine demo`` and a
fast fixture for tests.

Synthetic ground truth, not real footage: coloured balls simulated with pymunk on a textured background with
a floor. Each scenario has one perspective and two takes; take 2 perturbs the initial velocity by a few
percent, standing in for the physical variance between two real takes. The richer suite lives in
``physics_iq.synthetic`` (``physrefine make-suite``); the demo prefers it when it is installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from generators.physics_prior import SimBody, WorldParams, simulate
from physics_iq.layout import DatasetLayout, Row, generated_file_name, write_descriptions
from physics_iq.video import write_video

WIDTH, HEIGHT = 160, 120
FLOOR_Y = 104.0
PREFIX_SECONDS, TEST_SECONDS = 3.0, 5.0

_RGB = {
    "red": (230, 30, 30),
    "blue": (30, 70, 235),
    "green": (30, 200, 40),
    "yellow": (240, 240, 20),
    "orange": (250, 130, 10),
    "purple": (150, 40, 220),
}


@dataclass(frozen=True)
class MiniScenario:
    """One scenario: balls (colour, x, y, vx, vy, radius) and world parameters."""

    slug: str
    description: str
    balls: tuple[tuple[str, float, float, float, float, float], ...]
    params: WorldParams


SCENARIOS: tuple[MiniScenario, ...] = (
    MiniScenario(
        "bouncing-ball",
        "A red ball is thrown to the right across a room and bounces on the floor. Static camera.",
        (("red", 14, 30, 38, -40, 6),),
        WorldParams(gravity=260, restitution=0.8, damping=0.97),
    ),
    MiniScenario(
        "rolling-ball",
        "A blue ball rolls to the right along the floor towards a wall. Static camera.",
        (("blue", 12, FLOOR_Y - 7, 42, 0, 7),),
        WorldParams(gravity=260, restitution=0.5, damping=0.92),
    ),
    MiniScenario(
        "collision",
        "A green ball rolls to the right along the floor towards a yellow ball resting on the floor. Static camera.",
        (("green", 10, FLOOR_Y - 6, 40, 0, 6), ("yellow", 140, FLOOR_Y - 6, 0, 0, 6)),
        WorldParams(gravity=260, restitution=0.9, damping=0.97),
    ),
    MiniScenario(
        "high-throw",
        "An orange ball is thrown high up and falls back to the floor, bouncing. Static camera.",
        (("orange", 40, 90, 12, -120, 6),),
        WorldParams(gravity=90, restitution=0.55, damping=0.99),
    ),
)


def _background(rng: np.random.Generator) -> np.ndarray:
    # Low-saturation texture: grey noise, blurred, plus a vertical gradient; a darker floor band.
    raw = rng.normal(0, 14, size=(HEIGHT, WIDTH, 1)).astype(np.float32)
    noise = cv2.GaussianBlur(raw, (5, 5), 0)[..., None]
    rows = np.linspace(185, 150, HEIGHT, dtype=np.float32)[:, None, None]
    tint = np.array([1.0, 0.98, 0.94], np.float32)
    image: np.ndarray = (rows + noise) * tint
    image[int(FLOOR_Y) :] = np.array([95, 85, 75], np.float32) + noise[int(FLOOR_Y) :]
    return np.clip(image, 0, 255).astype(np.uint8)


def render(scenario: MiniScenario, fps: int, velocity_scale: float = 1.0) -> np.ndarray:
    """All frames (prefix + test) of a scenario, ``(T, H, W, 3)`` uint8, frame 0 being the start state."""
    background = _background(np.random.default_rng(7))
    bodies = [
        SimBody(x, y, vx * velocity_scale, vy * velocity_scale, r) for (_, x, y, vx, vy, r) in scenario.balls
    ]
    n_total = round((PREFIX_SECONDS + TEST_SECONDS) * fps)
    positions = simulate(
        bodies, scenario.params, floor_y=FLOOR_Y, width=WIDTH, n_frames=n_total - 1, fps=fps, substeps=32
    )
    start = np.array([[b.x, b.y] for b in bodies])[None]
    positions = np.concatenate([start, positions])
    frames = []
    for pos in positions:
        frame = background.copy()
        for (colour, *_rest, radius), (x, y) in zip(scenario.balls, pos, strict=True):
            cv2.circle(
                frame, (round(x * 4), round(y * 4)), round(radius * 4), _RGB[colour], -1, cv2.LINE_AA, 2
            )
        frames.append(frame)
    return np.stack(frames)


def build_minimal_suite(
    out_dir: str | Path, fps: int = 8, scenarios: list[str] | None = None, overwrite: bool = False
) -> DatasetLayout:
    """Write the scenarios in the official layout under ``out_dir`` and return the layout.

    An existing complete suite (its ``descriptions.csv`` present) is reused as is unless ``overwrite``.

    Args:
        out_dir: Destination folder.
        fps: Frame rate of the videos.
        scenarios: Slugs to include (default all of :data:`SCENARIOS`).
        overwrite: Rebuild even if the folder holds a suite.
    """
    out = Path(out_dir)
    if (out / "descriptions.csv").is_file() and not overwrite:
        return DatasetLayout(out)
    chosen = [s for s in SCENARIOS if scenarios is None or s.slug in scenarios]
    if scenarios is not None and len(chosen) != len(set(scenarios)):
        known = ", ".join(s.slug for s in SCENARIOS)
        raise ValueError(f"unknown minimal-suite scenario(s) in {scenarios}; known: {known}")
    n_prefix = round(PREFIX_SECONDS * fps)
    rows: list[Row] = []
    perspective = "perspective-center"
    for take in (1, 2):
        for index, scenario in enumerate(chosen):
            take_id = index + 1 + (take - 1) * len(chosen)
            row = Row(
                id=take_id,
                perspective=perspective,
                take=take,
                scenario=scenario.slug,
                description=scenario.description,
                category="Solid Mechanics",
                generated_video_name=generated_file_name(take_id, perspective, scenario.slug),
            )
            rows.append(row)
    out.mkdir(parents=True, exist_ok=True)
    layout_paths = _Paths(out)
    for row in rows:
        scenario = next(s for s in chosen if s.slug == row.scenario)
        frames = render(scenario, fps, velocity_scale=1.0 if row.take == 1 else 1.04)
        write_video(
            layout_paths.split("conditioning-videos", row, fps), frames[:n_prefix], fps, overwrite=True
        )
        write_video(layout_paths.split("testing-videos", row, fps), frames[n_prefix:], fps, overwrite=True)
        switch = layout_paths.switch(row)
        switch.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(
            str(switch), cv2.cvtColor(frames[n_prefix - 1], cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 95]
        )
    # descriptions.csv last: its presence marks a complete suite (see the reuse check above).
    write_descriptions(out / "descriptions.csv", rows)
    return DatasetLayout(out)


class _Paths:
    def __init__(self, root: Path) -> None:
        self.root = root

    def split(self, kind: str, row: Row, fps: int) -> Path:
        name = f"{row.id_str}_{kind}_{fps}FPS_{row.perspective}_{row.take_str}_{row.scenario}.mp4"
        return self.root / "split-videos" / kind / f"{fps}FPS" / name

    def switch(self, row: Row) -> Path:
        return (
            self.root
            / "switch-frames"
            / f"{row.id_str}_switch-frames_anyFPS_{row.perspective}_{row.scenario}.jpg"
        )
