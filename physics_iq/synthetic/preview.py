"""A contact sheet of the suite: one strip of frames per scenario (or per category), for docs and eyeballing."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from physics_iq.synthetic.build import clip_times, render_take, simulate
from physics_iq.synthetic.scenarios import SCENARIOS

#: Seconds since the take started at which the strip samples frames (the first is near the switch frame).
STRIP_TIMES: tuple[float, ...] = (2.875, 3.5, 4.0, 5.0, 7.875)


def preview_sheet(
    scenarios: Sequence[str] | None = None,
    *,
    perspective: str = "perspective-center",
    size: tuple[int, int] = (320, 180),
    seed: int = 0,
    times: Sequence[float] = STRIP_TIMES,
    take: int = 1,
    style: str = "classic",
) -> np.ndarray:
    """Render one row of frames per scenario, labelled with its category and name.

    Args:
        scenarios: Slugs (default: every scenario).
        perspective: Which camera.
        size: Frame size of each tile.
        seed: Suite seed.
        times: Sample times in seconds since the take's start (multiples of 1/8 s).
        take: 1 or 2.
        style: The look (:data:`physics_iq.synthetic.looks.LOOKS`).

    Returns:
        ``(rows * (H + label), len(times) * W, 3)`` uint8 RGB.
    """
    names = list(scenarios or SCENARIOS)
    fps = 8
    all_times = clip_times(fps)
    indices = [int(np.argmin(np.abs(np.asarray(all_times) - t))) for t in times]
    label_h = 16
    rows = []
    for name in names:
        sim = simulate(name, take, fps, seed)
        frames = render_take(sim, perspective, size, seed, name, take, style)
        strip = np.concatenate([frames[i] for i in indices], axis=1)
        label = np.full((label_h, strip.shape[1], 3), 245, np.uint8)
        text = f"{SCENARIOS[name].category}: {name}   (t = " + ", ".join(
            f"{all_times[i]:.2f}" for i in indices
        )
        cv2.putText(label, text + " s)", (4, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (20, 20, 20), 1, cv2.LINE_AA)
        rows.append(np.concatenate([label, strip], axis=0))
    return np.concatenate(rows, axis=0)


def write_preview(path: str | Path, image: np.ndarray, *, overwrite: bool = False) -> Path:
    """Save a preview sheet as PNG (refuses to replace an existing file unless ``overwrite``)."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: exists (pass overwrite=True to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"{path}: could not write PNG")
    return path
