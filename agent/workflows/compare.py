"""Compare finished runs: per view, per category and overall Physics-IQ deltas with paired bootstrap CIs.

The first run is the baseline; every other run is compared with it on the views both hold (runs over
different scenario sets are compared on their intersection, and the report says which views were left out).

Scores are aggregated the official way (:func:`physics_iq.scoring.aggregate`) from the per-attempt metrics a
run stores. Confidence intervals come from a **paired bootstrap over Physics-IQ scenarios**: a resample
draws scenario slugs (all perspectives of a scenario move together, since they share the physical event)
with replacement, ``n_boot`` times from ``numpy.random.default_rng(seed)``; both runs are aggregated on the
same resample and the delta recorded; the interval is the ``(alpha/2, 1-alpha/2)`` percentile of those
deltas, and ``p(delta<=0)`` the fraction of resamples where the other run is not better. A resample that
draws a scenario k times weighs it k times in every mean of the official aggregation
(:func:`weighted_scores`, tested against :func:`~physics_iq.scoring.aggregate` on duplicated views).

Runs as repeats: the comparison also treats all the runs as independent repeats of one method (the four
runs of ``refine --repeat 4``) and reports, per selection, the mean and sample standard deviation
(``ddof=1``, as the official ``aggregate_runs_from_csvs.py``) of the original and the Physics-IQ Verified
scores (:func:`repeat_stats`). These come from the runs' stored metrics, scored in the runs' mode (``fast``);
leaderboard numbers come from ``physrefine submit --verified`` (compat mode).
"""

from __future__ import annotations

import csv
import json
import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agent.workflows.rundata import VARIANT_LABELS, VARIANTS, RunData, RunDataError
from physics_iq.scoring import (
    VERIFIED_TERMS,
    MetricValues,
    ViewResult,
    aggregate,
    mean_std,
    physics_iq_score,
    verified_aggregate,
)

logger = logging.getLogger(__name__)


class CompareError(ValueError):
    """Runs cannot be compared (no common views, unscored runs, a non-empty output folder)."""


# -- vectorised official aggregation under scenario weights ------------------------------------------------
@dataclass(frozen=True)
class ScoreTable:
    """Views of one selection as arrays, for the official aggregation under scenario weights.

    Attributes:
        scenarios: Scenario slugs, the columns of a weight matrix.
        scenario_of: Per item (one scored attempt), the index of its scenario.
        perspective_of: Per item, the index of its perspective.
        model: ``(items, 4)`` model metrics (spatial, spatiotemporal, weighted spatial IoU, MSE).
        variance: ``(items, 4)`` the physical variance metrics of the item's view.
    """

    scenarios: tuple[str, ...]
    scenario_of: np.ndarray
    perspective_of: np.ndarray
    model: np.ndarray
    variance: np.ndarray

    @classmethod
    def from_views(cls, views: Sequence[ViewResult], scenarios: Sequence[str]) -> ScoreTable:
        """Build the table; ``scenarios`` fixes the column order (every view's scenario must be in it)."""
        index = {s: i for i, s in enumerate(scenarios)}
        perspectives: dict[str, int] = {}
        rows = []
        for v in views:
            rows.append((index[v.scenario], perspectives.setdefault(v.perspective, len(perspectives))))
        as_row = lambda m: [m.spatial_iou, m.spatiotemporal_iou, m.weighted_spatial_iou, m.mse]  # noqa: E731
        return cls(
            scenarios=tuple(scenarios),
            scenario_of=np.array([r[0] for r in rows], dtype=np.int64),
            perspective_of=np.array([r[1] for r in rows], dtype=np.int64),
            model=np.array([as_row(v.model_v1.values) for v in views], dtype=np.float64).reshape(-1, 4),
            variance=np.array([as_row(v.variance.values) for v in views], dtype=np.float64).reshape(-1, 4),
        )


def weighted_scores(table: ScoreTable, weights: np.ndarray) -> np.ndarray:
    """Physics-IQ scores of ``B`` weightings of the scenarios, each aggregated the official way.

    With all weights 1 this is :func:`physics_iq.scoring.aggregate` over the table's views (every view of a
    run has the same frame count, so per-scenario frame means are means of view means). A weight of ``k``
    counts a scenario as ``k`` copies; a weight of 0 leaves it out.

    Args:
        table: The views.
        weights: ``(B, n_scenarios)`` non-negative scenario weights (bootstrap counts).

    Returns:
        ``(B,)`` scores in [0, 100]; ``nan`` where every weight is 0.

    >>> from physics_iq.scoring import Comparison
    >>> c = lambda s, st, ws, m: Comparison(s, ws, (st,), (m,))
    >>> v = ViewResult("a", "perspective-left", "x", 1, 2, "", c(.2, .3, .1, .01), c(.2, .3, .1, .01),
    ...                c(.4, .6, .2, .01))
    >>> table = ScoreTable.from_views([v], ["a"])
    >>> float(weighted_scores(table, np.ones((1, 1)))[0]) == aggregate([v]).physics_iq_score
    True
    """
    weights = np.asarray(weights, dtype=np.float64)
    n_boot = weights.shape[0]
    item_w = weights[:, table.scenario_of]  # (B, items)
    # Model spatiotemporal IoU and MSE: mean per scenario over its items, then weighted mean over scenarios.
    n_scen = len(table.scenarios)
    per_scen_count = np.bincount(table.scenario_of, minlength=n_scen).astype(np.float64)
    present = per_scen_count > 0
    scen_mean = np.zeros((n_scen, 4))
    for k in range(4):
        sums = np.bincount(table.scenario_of, weights=table.model[:, k], minlength=n_scen)
        scen_mean[present, k] = sums[present] / per_scen_count[present]
    scen_w = weights * present[None, :]
    total = scen_w.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        frames_model = (scen_w @ scen_mean) / total[:, None]  # (B, 4); columns 1 and 3 used
        # Everything else: weighted mean per perspective over items, then plain mean over perspectives.
        persp_model = []
        persp_var = []
        persp_present = []
        for p in np.unique(table.perspective_of):
            mask = table.perspective_of == p
            w = item_w[:, mask]
            den = w.sum(axis=1)
            persp_model.append((w @ table.model[mask]) / den[:, None])
            persp_var.append((w @ table.variance[mask]) / den[:, None])
            persp_present.append(den > 0)
    present_p = np.stack(persp_present, axis=1)  # (B, P)
    count_p = present_p.sum(axis=1)
    pm = np.where(present_p[:, :, None], np.stack(persp_model, axis=1), 0.0).sum(axis=1)
    pv = np.where(present_p[:, :, None], np.stack(persp_var, axis=1), 0.0).sum(axis=1)
    out = np.full(n_boot, np.nan)
    for b in range(n_boot):
        if count_p[b] == 0:
            continue
        model = MetricValues(
            spatial_iou=pm[b, 0] / count_p[b],
            spatiotemporal_iou=frames_model[b, 1],
            weighted_spatial_iou=pm[b, 2] / count_p[b],
            mse=frames_model[b, 3],
        )
        variance = MetricValues(*(float(x) for x in pv[b] / count_p[b]))
        out[b] = physics_iq_score(model, variance)
    return out


def paired_bootstrap(
    base: ScoreTable, other: ScoreTable, *, n_boot: int = 2000, seed: int = 0, alpha: float = 0.05
) -> dict[str, Any]:
    """Paired bootstrap over scenarios of ``score(other) - score(base)`` (see the module docstring).

    Both tables must have the same scenario columns. Returns ``delta`` (on the full set), ``ci_low``,
    ``ci_high`` and ``p_not_better`` (fraction of resamples with delta <= 0); the last three are ``None``
    with fewer than two scenarios (a resample of one scenario is always itself).
    """
    if base.scenarios != other.scenarios:
        raise ValueError("paired bootstrap needs the same scenarios in both tables")
    n = len(base.scenarios)
    full = np.ones((1, n))
    delta = float(weighted_scores(other, full)[0] - weighted_scores(base, full)[0])
    if n < 2:  # one scenario resampled is always itself: no interval to speak of
        return {"delta": round(delta, 4), "ci_low": None, "ci_high": None, "p_not_better": None}
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n, size=(n_boot, n))
    counts = np.zeros((n_boot, n))
    np.add.at(counts, (np.repeat(np.arange(n_boot), n), draws.ravel()), 1.0)
    deltas = weighted_scores(other, counts) - weighted_scores(base, counts)
    low, high = np.nanpercentile(deltas, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return {
        "delta": round(delta, 4),
        "ci_low": round(float(low), 4),
        "ci_high": round(float(high), 4),
        "p_not_better": round(float(np.mean(deltas <= 0)), 4),
    }


# -- the comparison ----------------------------------------------------------------------------------------
def _views(run: RunData, names: Sequence[str], variant: str) -> list[ViewResult]:
    out: list[ViewResult] = []
    for name in names:
        view = run.view(name)
        out.extend(view.view_results(view.select(variant)))
    return out


def _score(views: list[ViewResult]) -> float | None:
    return round(aggregate(views).physics_iq_score, 4) if views else None


def run_scores(run: RunData, names: Sequence[str], variant: str) -> dict[str, float] | None:
    """One run's original and Verified scores (and Verified sub-scores) on ``names`` for a selection;
    ``None`` when the selection holds no attempt."""
    views = _views(run, names, variant)
    if not views:
        return None
    verified = verified_aggregate(views)
    return {
        "original": round(aggregate(views).physics_iq_score, 4),
        "verified": round(verified.physics_iq_score, 4),
        **{k: round(v, 4) for k, v in verified.terms.items()},
    }


def repeat_stats(runs: Sequence[RunData], names: Sequence[str], labels: Sequence[str]) -> dict[str, Any]:
    """Mean and sample std (``ddof=1``; ``None`` with one run) over runs of every score, per selection.

    Returns:
        ``{"n_runs", "mode", "variants": {variant: {score: {"mean", "std", "values": {label: value}}}}}``
        where ``score`` is ``original``, ``verified`` or a Verified sub-score (``score_spatial``, ...).
    """
    out: dict[str, Any] = {
        "n_runs": len(runs),
        "mode": _score_mode(runs),
        "std": "sample standard deviation (ddof=1) over the runs",
        "variants": {},
    }
    for variant in VARIANTS:
        per_run = {label: run_scores(run, names, variant) for label, run in zip(labels, runs, strict=True)}
        scored = {label: s for label, s in per_run.items() if s is not None}
        if not scored:
            continue
        stats: dict[str, Any] = {}
        for key in ("original", "verified", *VERIFIED_TERMS):
            values = {label: s[key] for label, s in scored.items()}
            mean, std = mean_std(list(values.values()))
            stats[key] = {
                "mean": round(mean, 4),
                "std": None if std is None else round(std, 4),
                "values": values,
            }
        out["variants"][variant] = stats
    return out


def loop_curve(run: RunData, names: Sequence[str], max_loop: int) -> list[float | None]:
    """Score after each loop 1..max_loop; a view that stopped earlier contributes its last loop (its output)."""
    return [_score(_views(run, names, f"loop-{loop}")) for loop in range(1, max_loop + 1)]


def convergence(run: RunData, names: Sequence[str]) -> dict[str, Any]:
    """Loops used (mean, histogram) and stop reasons (the part before ``:``) over the given views."""
    views = [run.view(n) for n in names]
    loops = [v.loops for v in views]
    reasons = Counter(v.stop_reason.split(":", 1)[0] or "unknown" for v in views)
    return {
        "mean_loops": round(float(np.mean(loops)), 3) if loops else None,
        "loops_histogram": {str(k): c for k, c in sorted(Counter(loops).items())},
        "stop_reasons": dict(sorted(reasons.items())),
        "max_loops": run.config.get("loops"),
    }


def compare_runs(
    runs: Sequence[RunData],
    *,
    variant: str = "honest_ensemble",
    n_boot: int = 2000,
    seed: int = 0,
    alpha: float = 0.05,
) -> dict[str, Any]:
    """Compare runs against the first one (see the module docstring). Returns a JSON-ready dict.

    Args:
        runs: Two or more scored runs; the first is the baseline.
        variant: The selection compared per view and per category (all variants are compared overall).
        n_boot: Bootstrap resamples.
        seed: Bootstrap seed.
        alpha: 1 - confidence level.

    Raises:
        CompareError: fewer than two runs, an unscored run, or no view in common.
    """
    if len(runs) < 2:
        raise CompareError("compare needs at least two run directories")
    if variant not in VARIANTS:
        raise CompareError(f"unknown variant {variant!r}; expected one of {list(VARIANTS)}")
    for run in runs:
        if not run.scored:
            raise CompareError(f"{run.root}: the run has no Physics-IQ scores (made with --no-score?)")
    labels = _unique_labels(runs)
    name_sets = [{v.name for v in run.views} for run in runs]
    common = sorted(set.intersection(*name_sets))
    if not common:
        raise CompareError("the runs have no view (take-1 row) in common; nothing to compare")
    notes = []
    for label, names in zip(labels, name_sets, strict=True):
        left = sorted(names - set(common))
        if left:
            notes.append(f"{label}: {len(left)} view(s) not in every run, left out: {', '.join(left)}")
    if notes:
        notes.insert(0, f"runs cover different views; compared on the {len(common)} they share")
    for label, run in zip(labels, runs, strict=True):
        if run.summary.get("status", "complete") != "complete":
            notes.append(
                f"{label}: the run stopped early ({run.summary.get('stopped_by') or 'limit'}); its unfinished "
                f"views {run.summary.get('unfinished', [])} are not in it (rerun refine to finish them)"
            )
    base = runs[0]
    scenarios = sorted({base.view(n).scenario for n in common})
    categories = sorted({base.view(n).category for n in common})

    overall: list[dict[str, Any]] = []
    for v in VARIANTS:
        tables = [ScoreTable.from_views(_views(r, common, v), scenarios) for r in runs]
        row: dict[str, Any] = {"variant": v, "label": VARIANT_LABELS[v]}
        for label, table in zip(labels, tables, strict=True):
            row[label] = round(float(weighted_scores(table, np.ones((1, len(scenarios))))[0]), 4)
        row["vs"] = {
            label: paired_bootstrap(tables[0], table, n_boot=n_boot, seed=seed, alpha=alpha)
            for label, table in zip(labels[1:], tables[1:], strict=True)
        }
        overall.append(row)

    per_category: list[dict[str, Any]] = []
    for category in categories:
        in_category = [n for n in common if base.view(n).category == category]
        cat_scen = sorted({base.view(n).scenario for n in in_category})
        tables = [ScoreTable.from_views(_views(r, in_category, variant), cat_scen) for r in runs]
        row = {"category": category, "views": len(in_category), "scenarios": len(cat_scen)}
        for label, table in zip(labels, tables, strict=True):
            row[label] = round(float(weighted_scores(table, np.ones((1, len(cat_scen))))[0]), 4)
        row["vs"] = {
            label: paired_bootstrap(tables[0], table, n_boot=n_boot, seed=seed, alpha=alpha)
            for label, table in zip(labels[1:], tables[1:], strict=True)
        }
        per_category.append(row)

    per_view: list[dict[str, Any]] = []
    for name in common:
        view = base.view(name)
        row = {"view": name, "scenario": view.scenario, "category": view.category}
        for label, run in zip(labels, runs, strict=True):
            other = run.view(name)
            row[label] = _score(other.view_results(other.select(variant)))
            row[f"{label} loops"] = other.loops
            row[f"{label} stop"] = other.stop_reason
        for label in labels[1:]:
            a, b = row[labels[0]], row[label]
            row[f"delta {label}"] = None if a is None or b is None else round(b - a, 4)
        per_view.append(row)

    max_loop = max(max(run.view(n).loops for n in common) for run in runs)
    return {
        "runs": {label: str(run.root) for label, run in zip(labels, runs, strict=True)},
        "baseline": labels[0],
        # The runs' own scores of their attempts; leaderboard numbers come from a compat-mode package.
        "score_mode": _score_mode(runs),
        "variant": variant,
        "views": common,
        "notes": notes,
        "bootstrap": {
            "method": "paired bootstrap over Physics-IQ scenarios (all perspectives of a scenario together), "
            "official aggregation on each resample, percentile interval",
            "n_boot": n_boot,
            "seed": seed,
            "confidence": 1 - alpha,
            "n_scenarios": len(scenarios),
        },
        "configs": {label: _config_digest(run) for label, run in zip(labels, runs, strict=True)},
        "overall": overall,
        "per_category": per_category,
        "per_view": per_view,
        "loop_curves": {
            label: loop_curve(run, common, max_loop) for label, run in zip(labels, runs, strict=True)
        },
        "convergence": {label: convergence(run, common) for label, run in zip(labels, runs, strict=True)},
        "repeats": repeat_stats(runs, common, labels),
        "accounting": {label: accounting(run) for label, run in zip(labels, runs, strict=True)},
        "oracle_note": "oracle rows pick attempts with the ground truth: an upper bound, not an honest result",
    }


#: The summary keys that separate what refining adds from what choosing adds (see agent.summary).
ACCOUNTING = ("best_of_n", "refinement_gain", "selection_gain", "selection_accuracy", "selection_pairs")


def accounting(run: RunData) -> dict[str, Any]:
    """A run's honest accounting (best-of-N at an equal budget, refinement and selection gains, selection
    accuracy) from its summary, and every re-ranking of its attempts (``physrefine rank``)."""
    from agent.workflows.rank import load_rankings

    overall = run.summary.get("overall", {})
    return {
        **{key: overall.get(key) for key in ACCOUNTING},
        "selector": run.config.get("selector", "critic"),
        "rankings": [
            {
                "selector": r["selector"],
                "pick": r["overall"]["pick"],
                "selection_accuracy": r["overall"]["selection_accuracy"],
                "selection_pairs": r["overall"]["selection_pairs"],
            }
            for r in load_rankings(run.root)
        ],
    }


def _score_mode(runs: Sequence[RunData]) -> str:
    modes = sorted({str(run.summary.get("score_mode") or "fast") for run in runs})
    return modes[0] if len(modes) == 1 else "/".join(modes)


def _unique_labels(runs: Sequence[RunData]) -> list[str]:
    labels: list[str] = []
    for run in runs:
        label = run.label
        if label in labels:
            label = f"{run.root.parent.name}/{run.root.name}"
        while label in labels:
            label += "'"
        labels.append(label)
    return labels


def _config_digest(run: RunData) -> dict[str, Any]:
    keys = ("prompt_set", "generator", "vlm", "loops", "seeds", "seed", "mode", "fps")
    return {k: run.config.get(k) for k in keys}


# -- outputs -----------------------------------------------------------------------------------------------
def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value)


def _ci(stats: dict[str, Any]) -> str:
    if stats["ci_low"] is None:
        return f"{stats['delta']:+.2f} (one scenario: no CI)"
    return f"{stats['delta']:+.2f} [{stats['ci_low']:+.2f}, {stats['ci_high']:+.2f}]"


def to_markdown(result: dict[str, Any]) -> str:
    """The comparison as markdown tables."""
    labels = list(result["runs"])
    others = labels[1:]
    conf = round(100 * result["bootstrap"]["confidence"])
    lines = ["# Run comparison", ""]
    for label, path in result["runs"].items():
        digest = ", ".join(f"{k}={v}" for k, v in result["configs"][label].items())
        lines.append(f"- **{label}**: `{path}` ({digest})")
    lines += [
        "",
        f"Baseline: **{result['baseline']}**. {len(result['views'])} view(s) compared. Scores are the runs' own, "
        f"in {result.get('score_mode', 'fast')} mode.",
    ]
    lines += [f"> {note}" for note in result["notes"]]
    lines += [
        "",
        f"Deltas are other minus baseline, with a {conf}% CI from a {result['bootstrap']['method']} "
        f"({result['bootstrap']['n_boot']} resamples, seed {result['bootstrap']['seed']}, "
        f"{result['bootstrap']['n_scenarios']} scenario(s)). {result['oracle_note']}.",
        "",
        "## Overall Physics-IQ",
        "",
        "| selection | "
        + " | ".join(labels)
        + " | "
        + " | ".join(f"Δ {o} [{conf}% CI]" for o in others)
        + " |",
        "|---" * (1 + len(labels) + len(others)) + "|",
    ]
    for row in result["overall"]:
        cells = [row["label"], *(_fmt(row[label]) for label in labels), *(_ci(row["vs"][o]) for o in others)]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "## Refinement vs selection",
        "",
        "best of N: the run's selector over loops x seeds loop-1 attempts (no refinement, the same number of "
        "generations); refinement gain = honest - best of N; selection gain = best of N - loop 1; selection "
        "accuracy: share of attempt pairs (Physics-IQ apart by more than 1 point) the selector orders like "
        "Physics-IQ. Re-rankings (`physrefine rank`) score other selectors on the same attempts.",
        "",
        "| run | selector | best of N | refinement gain | selection gain | selection accuracy | re-rankings |",
        "|---|---|---|---|---|---|---|",
    ]
    for label in labels:
        acc = result.get("accounting", {}).get(label, {})
        accuracy = acc.get("selection_accuracy")
        shown = "-" if accuracy is None else f"{100 * accuracy:.0f}% of {acc.get('selection_pairs')}"
        rankings = "; ".join(
            f"{r['selector']}: {_fmt(r['pick'])}"
            + ("" if r["selection_accuracy"] is None else f" ({100 * r['selection_accuracy']:.0f}%)")
            for r in acc.get("rankings", [])
        )
        cells = [
            label,
            str(acc.get("selector", "")),
            _fmt(acc.get("best_of_n")),
            _fmt(acc.get("refinement_gain")),
        ]
        cells += [_fmt(acc.get("selection_gain")), shown, rankings or "-"]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"## Per category ({VARIANT_LABELS[result['variant']]})", ""]
    lines.append(
        "| category | views | "
        + " | ".join(labels)
        + " | "
        + " | ".join(f"Δ {o} [{conf}% CI]" for o in others)
        + " |"
    )
    lines.append("|---" * (2 + len(labels) + len(others)) + "|")
    for row in result["per_category"]:
        cells = [row["category"], str(row["views"]), *(_fmt(row[label]) for label in labels)]
        cells += [_ci(row["vs"][o]) for o in others]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", f"## Per view ({VARIANT_LABELS[result['variant']]})", ""]
    lines.append(
        "| view | " + " | ".join(labels) + " | " + " | ".join(f"Δ {o}" for o in others) + " | loops |"
    )
    lines.append("|---" * (2 + len(labels) + len(others)) + "|")
    for row in result["per_view"]:
        cells = [row["view"], *(_fmt(row[label]) for label in labels)]
        cells += [_fmt(row[f"delta {o}"]) for o in others]
        cells.append(" / ".join(str(row[f"{label} loops"]) for label in labels))
        lines.append("| " + " | ".join(cells) + " |")
    repeats = result.get("repeats")
    if repeats:
        lines += [
            "",
            f"## The runs as repeats ({repeats['n_runs']} runs, {repeats['mode']} mode)",
            "",
            "Mean ± sample standard deviation (ddof=1) over all the runs above, as the official aggregation of "
            "four runs reports them.",
            "",
            "| selection | original | Physics-IQ Verified | Verified spatial | spatiotemporal | weighted | MSE |",
            "|---|---|---|---|---|---|---|",
        ]
        for variant, stats in repeats["variants"].items():
            cells = [VARIANT_LABELS[variant]]
            for key in ("original", "verified", *VERIFIED_TERMS):
                stat = stats[key]
                cells.append(f"{stat['mean']:.2f}" + ("" if stat["std"] is None else f" ± {stat['std']:.2f}"))
            lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Loop by loop", "", "Views that stopped earlier count with their last loop.", ""]
    n_loops = max(len(c) for c in result["loop_curves"].values())
    lines.append("| run | " + " | ".join(f"loop {i}" for i in range(1, n_loops + 1)) + " |")
    lines.append("|---" * (1 + n_loops) + "|")
    for label, curve in result["loop_curves"].items():
        lines.append("| " + " | ".join([label, *(_fmt(x) for x in curve)]) + " |")
    lines += [
        "",
        "## Convergence",
        "",
        "| run | mean loops | loops used | stop reasons |",
        "|---|---|---|---|",
    ]
    for label, conv in result["convergence"].items():
        hist = ", ".join(f"{k}: {v}" for k, v in conv["loops_histogram"].items())
        reasons = ", ".join(f"{k}: {v}" for k, v in conv["stop_reasons"].items())
        lines.append(
            f"| {label} | {_fmt(conv['mean_loops'])} (max {conv['max_loops']}) | {hist} | {reasons} |"
        )
    return "\n".join(lines) + "\n"


def _write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _flat(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k != "vs"}
    for label, stats in row.get("vs", {}).items():
        for key, value in stats.items():
            out[f"{key} {label}"] = value
    return out


def plot_comparison(result: dict[str, Any], out_dir: Path) -> list[Path]:
    """Loop curves and per-view deltas as PNGs (matplotlib, Agg backend)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for label, curve in result["loop_curves"].items():
        xs = [i + 1 for i, y in enumerate(curve) if y is not None]
        ax.plot(xs, [y for y in curve if y is not None], marker="o", label=label)
    ax.set_xlabel("loop")
    ax.set_ylabel("Physics-IQ score")
    ax.set_title("Score after each loop")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_dir / "loop_curves.png", dpi=110)
    plt.close(fig)
    written.append(out_dir / "loop_curves.png")

    labels = list(result["runs"])
    fig, ax = plt.subplots(figsize=(7, 0.35 * len(result["per_view"]) + 1.6))
    height = 0.8 / max(len(labels) - 1, 1)
    for k, label in enumerate(labels[1:]):
        ys = np.arange(len(result["per_view"])) + k * height
        deltas = [row[f"delta {label}"] or 0.0 for row in result["per_view"]]
        ax.barh(ys, deltas, height=height, label=f"{label} - {labels[0]}")
    ax.set_yticks(np.arange(len(result["per_view"])))
    ax.set_yticklabels([row["view"] for row in result["per_view"]], fontsize=7)
    ax.axvline(0, color="black", lw=0.8)
    overall = next(r for r in result["overall"] if r["variant"] == result["variant"])
    for label in labels[1:]:
        stats = overall["vs"][label]
        if stats["ci_low"] is not None:
            ax.axvspan(stats["ci_low"], stats["ci_high"], alpha=0.12, color="grey")
    ax.set_xlabel(f"Δ Physics-IQ ({VARIANT_LABELS[result['variant']]}); shaded: overall CI")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "view_deltas.png", dpi=110)
    plt.close(fig)
    written.append(out_dir / "view_deltas.png")
    return written


def write_comparison(result: dict[str, Any], out_dir: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Write ``compare.md``, ``compare.json``, CSV tables and plots into ``out_dir``.

    Raises:
        CompareError: ``out_dir`` holds files and ``overwrite`` is off.
    """
    out = Path(out_dir)
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not overwrite)):
        raise CompareError(f"{out}: exists and is not empty; choose a new --out folder")
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.md").write_text(to_markdown(result), encoding="utf-8")
    (out / "compare.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    _write_csv(out / "overall.csv", [_flat(r) for r in result["overall"]])
    _write_csv(out / "per_category.csv", [_flat(r) for r in result["per_category"]])
    _write_csv(out / "per_view.csv", result["per_view"])
    _write_csv(
        out / "loops.csv",
        [
            {"run": label, **{f"loop {i + 1}": y for i, y in enumerate(c)}}
            for label, c in result["loop_curves"].items()
        ],
    )
    _write_csv(
        out / "convergence.csv",
        [
            {"run": label, "mean_loops": c["mean_loops"], "max_loops": c["max_loops"], **c["stop_reasons"]}
            for label, c in result["convergence"].items()
        ],
    )
    repeat_rows = [
        {"selection": variant, "score": key, "mean": stat["mean"], "std": stat["std"], **stat["values"]}
        for variant, stats in result.get("repeats", {}).get("variants", {}).items()
        for key, stat in stats.items()
    ]
    _write_csv(out / "repeats.csv", repeat_rows)
    written = [
        out / n for n in ("compare.md", "compare.json", "overall.csv", "per_category.csv", "per_view.csv")
    ]
    written += [
        out / "loops.csv",
        out / "convergence.csv",
        out / "repeats.csv",
        *plot_comparison(result, out),
    ]
    return written


__all__ = [
    "CompareError",
    "RunDataError",
    "ScoreTable",
    "compare_runs",
    "convergence",
    "loop_curve",
    "paired_bootstrap",
    "plot_comparison",
    "repeat_stats",
    "run_scores",
    "to_markdown",
    "weighted_scores",
    "write_comparison",
]
