"""A run's summary: per scenario and overall Physics-IQ of each variant, written as JSON and CSV.

The summary follows the official aggregation (:func:`physics_iq.scoring.aggregate`: means of metrics over
rows, then the score formula) for each variant:

- ``loop_1``: every loop-1 attempt (all seeds, each a row) — what single-shot generation gives;
- ``final``: every attempt of each scenario's last loop;
- ``honest_ensemble``: per scenario the attempt the honest selector picked (no ground truth);
- ``oracle``: per scenario the attempt with the best Physics-IQ against ground truth — an upper bound, never
  an honest result;
- ``static``: the switch frame repeated (baseline);
- ``physical_variance``: take 1 against take 2.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

from agent.runs import RunConfig
from agent.scenes import SceneStore
from agent.scoring import AttemptScorer

VARIANTS: tuple[str, ...] = ("loop_1", "final", "honest_ensemble", "oracle", "static")

#: Generators that are not neural models (offline stand-ins and baselines).
OFFLINE_GENERATORS = ("physics-prior", "static", "take2")


def summarise(
    config: RunConfig,
    run_root: Path,
    scenes: SceneStore,
    finals: dict[int, dict[str, Any]],
    scorer: AttemptScorer | None,
) -> dict[str, Any]:
    """Per scenario and overall scores of every variant (see the module docstring)."""
    from physics_iq.scoring import aggregate

    per_variant: dict[str, list[Any]] = {v: [] for v in VARIANTS}
    scenarios = []
    for take1_id, values in finals.items():
        attempts = [a for a in values.get("attempts", []) if a["path"]]
        failed = [a for a in values.get("attempts", []) if a["error"]]
        last = int(values.get("loop_index", 1))
        entry: dict[str, Any] = {
            "scenario": scenes.name(take1_id),
            "loops": last,
            "attempts": len(attempts),
            "failed_generations": len(failed),
            "generation_errors": sorted({a["error"][:300] for a in failed}),
            "stop_reason": values.get("stop_reason", ""),
            "final_prompt": values.get("prompt", ""),
            "honest_pick": values.get("honest", {}),
            "oracle_pick": values.get("oracle", {}),
        }
        if scorer is not None and attempts:
            chosen = {
                "loop_1": [a["path"] for a in attempts if a["loop"] == 1],
                "final": [a["path"] for a in attempts if a["loop"] == last],
                "honest_ensemble": [values["honest"]["path"]] if values.get("honest") else [],
                "oracle": [values["oracle"]["path"]] if values.get("oracle", {}).get("path") else [],
                "static": [scorer.static_path(take1_id)],
            }
            for variant, paths in chosen.items():
                views = [scorer.view(take1_id, p) for p in paths]
                per_variant[variant].extend(views)
                entry[variant] = round(aggregate(views).physics_iq_score, 2) if views else None
            static_view = scorer.view(take1_id, chosen["static"][0])
            entry["physical_variance"] = round(aggregate([static_view]).physical_variance, 4)
        scenarios.append(entry)
    overall: dict[str, Any] = {}
    if scorer is not None:
        for variant, views in per_variant.items():
            overall[variant] = round(aggregate(views).physics_iq_score, 2) if views else None
        if per_variant["static"]:
            overall["physical_variance"] = round(aggregate(per_variant["static"]).physical_variance, 4)
    return {
        "run_dir": str(run_root),
        "config": config.model_dump(mode="json"),
        "generator_is_neural": config.generator not in OFFLINE_GENERATORS,
        "critic_is_neural": config.vlm != "offline",
        "score_mode": scorer.mode if scorer is not None else None,
        "overall": overall,
        "scenarios": scenarios,
    }


def write_summary(run_root: Path, summary: dict[str, Any]) -> None:
    """``summary.json`` and ``summary.csv`` (one row per scenario, then ``overall``)."""
    (run_root / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    columns = [
        "scenario",
        "loops",
        "attempts",
        "failed_generations",
        *VARIANTS,
        "physical_variance",
        "stop_reason",
    ]
    with (run_root / "summary.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for entry in summary["scenarios"]:
            writer.writerow(entry)
        writer.writerow({"scenario": "overall", **summary["overall"]})


__all__ = ["OFFLINE_GENERATORS", "VARIANTS", "summarise", "write_summary"]
