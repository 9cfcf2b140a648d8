"""A run's summary: per scenario and overall Physics-IQ of each variant, written as JSON and CSV.

The summary follows the official aggregation (:func:`physics_iq.scoring.aggregate`: means of metrics over
rows, then the score formula) for each variant:

- ``loop_1``: every loop-1 attempt (all seeds, each a row) — what single-shot generation gives;
- ``final``: every attempt of each scenario's last loop;
- ``honest_ensemble``: per scenario the attempt the honest selector picked (no ground truth);
- ``oracle``: per scenario the attempt with the best Physics-IQ against ground truth — an upper bound, never
  an honest result;
- ``static``: the switch frame repeated (baseline);
- ``best_of_n``: the same selector over as many loop-1-prompt attempts as the refinement generated for the
  scenario (loops run x seeds; the same seeds, no refinement): what the same generations give without
  refining (when the run has the baseline);
- ``physical_variance``: take 1 against take 2.

And the accounting that separates what refining adds from what choosing adds:

- ``refinement_gain`` = honest - best_of_n (refinement, at an equal budget of generations);
- ``selection_gain`` = best_of_n - loop_1 (choosing among more attempts of one prompt);
- ``selection_accuracy``: among pairs of the refinement's attempts of one scenario whose Physics-IQ differs by
  more than :data:`PAIR_MARGIN` points, the share the honest selector's ranking orders like Physics-IQ
  (``selection_pairs`` counts them). 0.5 is chance.
"""

from __future__ import annotations

import csv
import functools
import json
from pathlib import Path
from typing import Any

from agent.runs import RunConfig
from agent.scenes import SceneStore
from agent.scoring import AttemptScorer

VARIANTS: tuple[str, ...] = ("loop_1", "final", "honest_ensemble", "oracle", "static")
#: The label of the equal-budget baseline (its graph thread, its files, its variant in the summary).
BEST_OF_N = "best_of_n"
#: Physics-IQ points two attempts must differ by for their order to count in ``selection_accuracy``.
PAIR_MARGIN = 1.0

#: Generators that are not neural models (offline stand-ins and baselines).
OFFLINE_GENERATORS = ("physics-prior", "static", "take2")


def summarise(
    config: RunConfig,
    run_root: Path,
    scenes: SceneStore,
    finals: dict[int, dict[str, Any]],
    scorer: AttemptScorer | None,
    baselines: dict[int, dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Per scenario and overall scores of every variant (see the module docstring).

    Args:
        baselines: ``take1_id -> final state`` of the best-of-N baseline's thread (when the run has one).
    """
    from physics_iq.scoring import aggregate

    baselines = baselines or {}
    per_variant: dict[str, list[Any]] = {v: [] for v in (*VARIANTS, BEST_OF_N)}
    pairs_total = pairs_right = 0
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
            baseline = baselines.get(take1_id)
            if baseline is not None:
                chosen[BEST_OF_N] = [baseline["honest"]["path"]] if baseline.get("honest") else []
                entry["best_of_n_pick"] = baseline.get("honest", {})
                entry["best_of_n_generations"] = len(baseline.get("attempts", []))
            for variant, paths in chosen.items():
                views = [scorer.view(take1_id, p) for p in paths]
                per_variant[variant].extend(views)
                entry[variant] = round(aggregate(views).physics_iq_score, 2) if views else None
            static_view = scorer.view(take1_id, chosen["static"][0])
            entry["physical_variance"] = round(aggregate([static_view]).physical_variance, 4)
            right, total = ordered_pairs(
                values.get("honest", {}), functools.partial(_physics_iq, scorer, take1_id)
            )
            entry["selection_pairs"] = total
            entry["selection_accuracy"] = round(right / total, 4) if total else None
            pairs_right += right
            pairs_total += total
        scenarios.append(entry)
    overall: dict[str, Any] = {}
    if scorer is not None:
        for variant, views in per_variant.items():
            overall[variant] = round(aggregate(views).physics_iq_score, 2) if views else None
        if not baselines:
            overall.pop(BEST_OF_N)
        if per_variant["static"]:
            overall["physical_variance"] = round(aggregate(per_variant["static"]).physical_variance, 4)
        honest, best_of_n, loop_1 = (overall.get(k) for k in ("honest_ensemble", BEST_OF_N, "loop_1"))
        if honest is not None and best_of_n is not None:
            overall["refinement_gain"] = round(honest - best_of_n, 2)
        if best_of_n is not None and loop_1 is not None:
            overall["selection_gain"] = round(best_of_n - loop_1, 2)
        overall["selection_accuracy"] = round(pairs_right / pairs_total, 4) if pairs_total else None
        overall["selection_pairs"] = pairs_total
    return {
        "run_dir": str(run_root),
        "config": config.model_dump(mode="json"),
        "generator_is_neural": config.generator not in OFFLINE_GENERATORS,
        "critic_is_neural": config.vlm != "offline",
        "score_mode": scorer.mode if scorer is not None else None,
        "overall": overall,
        "scenarios": scenarios,
    }


def _physics_iq(scorer: AttemptScorer, take1_id: int, path: str) -> float:
    return float(scorer.view(take1_id, path).score)


def ordered_pairs(honest: dict[str, Any], physics_iq: Any, margin: float = PAIR_MARGIN) -> tuple[int, int]:
    """``(agreeing, counted)`` pairs of the selector's ranking whose Physics-IQ differs by more than ``margin``.

    >>> scores = {"a": 50.0, "b": 40.0, "c": 49.5}
    >>> ordered_pairs({"ranking": ["a", "b", "c"]}, scores.__getitem__)  # a>b right, b>c wrong, a~c skipped
    (1, 2)
    """
    ranking = list(honest.get("ranking", []))
    values = [physics_iq(path) for path in ranking]
    right = total = 0
    for i in range(len(values)):
        for j in range(i + 1, len(values)):
            if abs(values[i] - values[j]) > margin:
                total += 1
                right += values[i] > values[j]
    return right, total


def write_summary(run_root: Path, summary: dict[str, Any]) -> None:
    """``summary.json`` and ``summary.csv`` (one row per scenario, then ``overall``)."""
    (run_root / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    columns = [
        "scenario",
        "loops",
        "attempts",
        "failed_generations",
        *VARIANTS,
        BEST_OF_N,
        "physical_variance",
        "selection_accuracy",
        "stop_reason",
    ]
    with (run_root / "summary.csv").open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for entry in summary["scenarios"]:
            writer.writerow(entry)
        writer.writerow({"scenario": "overall", **summary["overall"]})


__all__ = [
    "BEST_OF_N",
    "OFFLINE_GENERATORS",
    "PAIR_MARGIN",
    "VARIANTS",
    "ordered_pairs",
    "summarise",
    "write_summary",
]
