"""Scenes of a run: which dataset views it refines, their prefixes, folders and generator context.

One :class:`SceneStore` per run; it is the :class:`agent.graph.SceneSource` the graph nodes read, and it
loads each prefix once (the conditioning clip in v2v mode, the switch frame in i2v mode).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2

from agent.reasoning import Scene, make_scene
from agent.runs import RunConfig, RunDir
from physics_iq.errors import DatasetError
from physics_iq.layout import DatasetLayout, ViewPair
from physics_iq.video import TEST_SECONDS, frames_for_seconds, read_video


def select_pairs(layout: DatasetLayout, wanted: list[str], categories: Sequence[str] = ()) -> list[ViewPair]:
    """Pairs whose scenario slug, ID or generated name is in ``wanted`` (all when empty), restricted to
    ``categories`` (case-insensitive; all when empty).

    Raises:
        DatasetError: a wanted name or category matches nothing (listing those there are).
    """
    pairs = layout.pairs()
    if categories:
        known = sorted({p.take1.category for p in pairs})
        lowered = {c.lower() for c in known}
        unknown = [c for c in categories if c.lower() not in lowered]
        if unknown:
            raise DatasetError(
                f"{layout.descriptions_path}: no category {unknown}; known: {', '.join(known)}"
            )
        chosen_categories = {c.lower() for c in categories}
        pairs = [p for p in pairs if p.take1.category.lower() in chosen_categories]
    if not wanted:
        return pairs

    def names(pair: ViewPair) -> set[str]:
        take1 = pair.take1
        return {pair.scenario, take1.id_str, str(take1.id), Path(take1.generated_video_name).stem}

    chosen = [pair for pair in pairs if names(pair) & set(wanted)]
    matched = set().union(*(names(p) for p in chosen)) if chosen else set()
    missing = [w for w in wanted if w not in matched]
    if missing:
        raise DatasetError(
            f"{layout.descriptions_path}: no scenario {missing}; known: {', '.join(layout.scenarios())}"
        )
    return chosen


class SceneStore:
    """The selected views of a dataset, their scenes (loaded once, thread-safe) and run folders.

    Args:
        config: The run's configuration (dataset, fps, mode, scenario and category filters).
        layout: The dataset (default: ``config.dataset``).

    ``run`` is set once the run directory is opened; scenario folders live under it.

    Raises:
        DatasetError: an unknown scenario or category, or no testing videos at the run's fps.
    """

    def __init__(self, config: RunConfig, layout: DatasetLayout | None = None) -> None:
        self.config = config
        self.layout = layout or DatasetLayout(config.dataset)
        self.pairs = select_pairs(self.layout, config.scenarios, config.categories)
        if config.fps not in self.layout.fps_available():
            raise DatasetError(
                f"{self.layout.root}: no testing videos at {config.fps} FPS "
                f"(available: {self.layout.fps_available()})"
            )
        self.num_frames = frames_for_seconds(TEST_SECONDS, config.fps)
        self.run: RunDir | None = None
        self._by_id = {p.take1.id: p for p in self.pairs}
        self._scenes: dict[int, Scene] = {}
        self._lock = threading.Lock()

    def pair(self, take1_id: int) -> ViewPair:
        return self._by_id[take1_id]

    def name(self, take1_id: int) -> str:
        """The scenario's folder and thread name (its generated video's stem)."""
        return Path(self._by_id[take1_id].take1.generated_video_name).stem

    def scenario_dir(self, take1_id: int) -> Path:
        if self.run is None:
            raise RuntimeError("SceneStore.scenario_dir before the run directory was opened")
        return self.run.scenario_dir(self.name(take1_id))

    def scene(self, take1_id: int) -> Scene:
        """The scene (prefix, description, tracked prefix motion), loaded on first use."""
        with self._lock:
            cached = self._scenes.get(take1_id)
        if cached is not None:
            return cached
        row = self._by_id[take1_id].take1
        if self.config.mode == "v2v":
            prefix, _ = read_video(self.layout.conditioning_video(row, self.config.fps))
        else:
            path = self.layout.switch_frame(row)
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
            if image is None:
                raise DatasetError(f"{path}: switch frame missing or not an image")
            prefix = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)[None]
        scene = make_scene(row.description, self.config.mode, float(self.config.fps), self.num_frames, prefix)
        with self._lock:
            return self._scenes.setdefault(take1_id, scene)

    def context(self, take1_id: int) -> dict[str, Any]:
        """``GenerationRequest.context`` for the scenario (the take-2 video only for the calibration baseline)."""
        pair = self._by_id[take1_id]
        context: dict[str, Any] = {"scenario": pair.scenario, "take1_id": take1_id}
        if self.config.generator == "take2":  # only the calibration baseline may see the second take
            context["take2_video"] = str(self.layout.testing_video(pair.take2, self.config.fps))
        return context


__all__ = ["SceneStore", "select_pairs"]
