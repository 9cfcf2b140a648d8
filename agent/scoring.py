"""Physics-IQ scores of a run's attempts against the dataset's ground truth (never seen by the loop).

Every attempt of a scenario is scored once (results are cached in memory for the summary, and the real side
of each view in the run's evaluator cache); the ``static`` baseline (the switch frame held for 5 s) is
written once per scenario and scored beside them. The best attempt by Physics-IQ is the ``oracle`` pick,
labelled as such wherever it appears: it peeks at ground truth and is an upper bound, never an honest result.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Literal

from agent.scenes import SceneStore
from agent.state import Attempt
from physics_iq.video import write_video

#: The evaluator mode a run's scores are computed in (in-memory masks; see ``physrefine score --mode``).
RUN_SCORE_MODE: Literal["fast", "compat"] = "fast"
ORACLE_LABEL = "oracle: picked with ground truth (upper bound, not honest)"


class AttemptScorer:
    """Scores attempts of the scenarios of ``scenes`` with the Physics-IQ evaluator.

    Args:
        scenes: The run's scenes (ground truth comes from their dataset).
        cache_dir: The evaluator's cache of the real side of each view.
    """

    def __init__(self, scenes: SceneStore, cache_dir: Path) -> None:
        from physics_iq.evaluate import Evaluator

        self.scenes = scenes
        self.mode: Literal["fast", "compat"] = RUN_SCORE_MODE
        self.evaluator = Evaluator(scenes.layout, scenes.config.fps, mode=self.mode, cache_dir=cache_dir)
        self._views: dict[str, Any] = {}
        self._lock = threading.Lock()

    def view(self, take1_id: int, path: str) -> Any:
        """The evaluator's view result for the clip at ``path`` (computed once)."""
        with self._lock:
            cached = self._views.get(path)
        if cached is None:
            cached = self.evaluator.view_result(self.scenes.pair(take1_id), path)
            with self._lock:
                cached = self._views.setdefault(path, cached)
        return cached

    def static_path(self, take1_id: int) -> str:
        """The static baseline clip of the scenario (written on first use)."""
        from generators.base import GenerationRequest
        from generators.baselines import StaticGenerator

        path = self.scenes.scenario_dir(take1_id) / "baselines" / "static.mp4"
        if not path.is_file():
            scene = self.scenes.scene(take1_id)
            request = GenerationRequest(scene.prefix, scene.fps, "", 0, scene.num_frames)
            write_video(path, StaticGenerator().generate(request).frames, scene.fps)
        return str(path)

    def __call__(self, take1_id: int, attempts: list[Attempt]) -> dict[str, Any]:
        """Physics-IQ of every attempt against ground truth; the oracle pick is labelled as such."""
        rows = []
        for attempt in attempts:
            if not attempt["path"]:
                continue
            view = self.view(take1_id, attempt["path"])
            rows.append(
                {
                    "loop": attempt["loop"],
                    "seed": attempt["seed"],
                    "path": attempt["path"],
                    "physics_iq": round(float(view.score), 4),
                    **view.model_v1.values.as_dict(),
                }
            )
        oracle = max(rows, key=lambda r: r["physics_iq"]) if rows else {}
        static_view = self.view(take1_id, self.static_path(take1_id))
        return {
            "attempts": rows,
            "oracle": {**oracle, "label": ORACLE_LABEL},
            "static": {"path": static_view.generated, "physics_iq": round(float(static_view.score), 4)},
            "variance": static_view.variance.values.as_dict(),
            "mode": self.mode,
        }


__all__ = ["ORACLE_LABEL", "RUN_SCORE_MODE", "AttemptScorer"]
