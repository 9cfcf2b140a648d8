"""``physrefine rank``: re-rank a finished run's attempts with another selector, without generating anything.

Every selector sees what the run's own selector saw -- the prefix from the dataset's conditioning clip (or
switch frame), the attempts and their critiques -- and never ground truth. What its pick *would* score comes
from the per-attempt Physics-IQ the run already stored (``scores.json``), so selectors are compared on exactly
the same attempts. Results go to ``RUN/rankings/<selector>.json`` (a new file; nothing of the run is changed;
verifier scores are kept beside each attempt as ``<attempt>.verify-<name>.json`` for the next ranking).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent.backends import parse_options
from agent.runs import RunConfig
from agent.scenes import SceneStore
from agent.selection import Candidate, SelectionContext, build_selector, pick_record, uses_judge
from agent.summary import ordered_pairs
from agent.workflows.rundata import AttemptData, RunData, RunDataError, ViewData
from physics_iq.motion import switch_velocity_gap
from physics_iq.video import read_video


def _record(attempt: AttemptData) -> dict[str, Any] | None:
    """The critique record the graph would have built for this attempt (``None`` when it has no critique)."""
    critique = attempt.critique()
    if not critique:
        return None
    if critique.get("failed"):
        return {"failed": True, "verdict": "inconsistent", "score": 0.0, "severities": []}
    return {
        "failed": False,
        "verdict": critique.get("verdict", "inconsistent"),
        "score": float(critique.get("score", 0.0)),
        "severities": [str(v.get("severity", "medium")) for v in critique.get("violations", [])],
    }


def slug(spec: str) -> str:
    """A file name for a selector spec.

    >>> slug("mean:critic=1,feature-path=2")
    'mean-critic-1-feature-path-2'
    """
    return re.sub(r"[^A-Za-z0-9.]+", "-", spec).strip("-")


def rank_run(run: RunData, spec: str, options: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Rank every view's attempts with ``spec``; return (and write) what the picks would score.

    Raises:
        RunDataError: the run was not scored, or the selector needs what a finished run cannot give (a VLM).
        agent.selection.SelectionError: an unknown selector.
    """
    from physics_iq.scoring import aggregate

    if not run.scored:
        raise RunDataError(
            f"{run.root}: the run has no Physics-IQ scores (made with --no-score?): nothing to compare"
        )
    if uses_judge(spec):
        raise RunDataError(
            f"selector {spec!r}: the judge asks a VLM; rank re-ranks offline (critic and verifiers)"
        )
    selector = build_selector(spec, parse_options(dict(options or {})))
    config = RunConfig.model_validate(run.config)
    scenes = SceneStore(config)
    picks: list[tuple[ViewData, AttemptData]] = []
    views = []
    right = total = 0
    for view in run.views:
        scene = scenes.scene(view.take1_id)
        by_path = {str(a.path): a for a in view.attempts}
        candidates = [Candidate(str(a.path), a.loop, a.seed, _record(a)) for a in view.attempts]
        cache: dict[str, Any] = {}

        def frames(path: str, cache: dict[str, Any] = cache) -> Any:
            if path not in cache:
                cache[path] = read_video(path)[0]
            return cache[path]

        def gap(candidate: Candidate, scene: Any = scene, frames: Any = frames) -> float:
            return switch_velocity_gap(scene.prefix_motion, scene.attempt_motion(frames(candidate.path)))

        context = SelectionContext(
            prefix=scene.prefix,
            fps=scene.fps,
            mode=scene.mode,
            frames=frames,
            folder=view.folder,
            motion_gap=gap,
            scene=scene,
        )
        record = pick_record(selector.rank(candidates, context), selector)
        chosen = by_path.get(str(record.get("path", "")))
        if chosen is not None:
            picks.append((view, chosen))
        scores = {str(a.path): a.physics_iq for a in view.attempts}
        good, counted = ordered_pairs(record, lambda p, scores=scores: float(scores[p] or 0.0))
        right, total = right + good, total + counted
        honest = view.select("honest_ensemble")
        views.append(
            {
                "view": view.name,
                "pick": {"loop": chosen.loop, "seed": chosen.seed, "path": str(chosen.path)}
                if chosen
                else {},
                "physics_iq": chosen.physics_iq if chosen else None,
                "run_honest_physics_iq": honest[0].physics_iq if honest else None,
                "oracle_physics_iq": max((a.physics_iq or 0.0) for a in view.attempts)
                if view.attempts
                else None,
                "selection_accuracy": round(good / counted, 4) if counted else None,
                "selection_pairs": counted,
                "unranked": record.get("unranked", {}),
            }
        )
    results = [r for view, attempt in picks for r in view.view_results([attempt])]
    overall = round(aggregate(results).physics_iq_score, 2) if results else None
    summary = {
        "run_dir": str(run.root),
        "selector": spec,
        "selector_options": dict(options or {}),
        "describe": selector.describe(),
        "score_mode": run.summary.get("score_mode", "fast"),
        "overall": {
            "pick": overall,
            "run_honest": run.summary.get("overall", {}).get("honest_ensemble"),
            "run_selector": run.config.get("selector", "critic"),
            "loop_1": run.summary.get("overall", {}).get("loop_1"),
            "oracle": run.summary.get("overall", {}).get("oracle"),
            "selection_accuracy": round(right / total, 4) if total else None,
            "selection_pairs": total,
        },
        "views": views,
        "note": "no ground truth used to rank; Physics-IQ of the picks from the run's stored scores",
    }
    out = run.root / "rankings" / f"{slug(spec)}.json"
    out.parent.mkdir(exist_ok=True)
    tmp = out.with_suffix(".json.part")
    tmp.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    tmp.replace(out)
    summary["written"] = str(out)
    return summary


def load_rankings(root: Path) -> list[dict[str, Any]]:
    """The rankings written for a run (``RUN/rankings/*.json``), for ``compare``."""
    folder = Path(root) / "rankings"
    if not folder.is_dir():
        return []
    return [json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))]


__all__ = ["load_rankings", "rank_run", "slug"]
