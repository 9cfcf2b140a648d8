"""Independent repeats of one refinement run (``physrefine refine --repeat N``), as the leaderboard asks.

A Physics-IQ Verified entry that claims a state of the art reports four independent runs as mean and sample
standard deviation. ``run_repeats`` makes them: ``N`` run directories under one parent folder, named
``<model>-<op|bpp>-run_01..N`` (the official naming of run folders), identical but for the base seed. Run ``i``
gets base seed ``seed + (i - 1) * seeds``, so the runs' attempt seeds (``base + k`` for ``k < seeds``) never
overlap: every run draws its own samples.

Each run is an ordinary run directory (resumable: rerunning the same command resumes the unfinished ones and
skips the finished ones), and ``repeats.json`` in the parent folder records the plan and, once all runs
finished, the mean and sample std of their scores per selection (from the runs' own ``fast``-mode metrics,
:func:`agent.workflows.compare.repeat_stats`). Leaderboard numbers come from
``physrefine submit RUN_01 ... RUN_04 --verified`` (compat mode). Limits (budgets, time) apply to each run.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from agent.budget import RunLimits
from agent.refine import run_refinement
from agent.runs import RunConfig
from agent.settings import Settings
from physics_iq.errors import PhysicsIQError
from physics_iq.layout import DatasetLayout, descriptions_file

PLAN_FILE = "repeats.json"


class RepeatError(PhysicsIQError):
    """Repeats cannot be made (a parent folder holding another plan)."""


def model_slug(config: RunConfig) -> str:
    """The model part of a run name: the generator's checkpoint (last path part) or the generator's name.

    >>> model_slug(RunConfig(dataset="d", fps=8, generator="wan2.1-i2v",
    ...                      generator_options={"model": "Wan-AI/Wan2.1-I2V-14B-480P-Diffusers"}))
    'wan2.1-i2v-14b-480p-diffusers'
    >>> model_slug(RunConfig(dataset="d", fps=8))
    'physics-prior'
    """
    model = config.generator_options.get("model") or config.generator
    tail = Path(str(model).rstrip("/\\")).name or str(model)
    return re.sub(r"[^a-z0-9.]+", "-", tail.lower()).strip("-.") or "model"


def repeat_plan(config: RunConfig, n: int) -> list[tuple[str, RunConfig]]:
    """The ``n`` runs: ``(name, config)`` with names ``<model>-<op|bpp>-run_01..`` and disjoint seed sets.

    Raises:
        ValueError: ``n`` < 1.
        DatasetError: the dataset cannot be read (its prompt set names the runs).
    """
    if n < 1:
        raise ValueError(f"--repeat {n}: expected at least 1")
    prompt_set = DatasetLayout(config.dataset).prompt_set
    base = f"{model_slug(config)}-{prompt_set}"
    return [
        (f"{base}-run_{i:02d}", config.model_copy(update={"seed": config.seed + (i - 1) * config.seeds}))
        for i in range(1, n + 1)
    ]


def with_descriptions(settings: Settings, which: str) -> Settings:
    """The settings with the dataset's ``op`` or ``bpp`` prompt set: the run's dataset becomes that
    descriptions file, so the run's config records which prompts it was given.

    Raises:
        DatasetError: the dataset has no such prompt set.
    """
    path = descriptions_file(settings.config.dataset, which)
    config = settings.config.model_copy(update={"dataset": str(path.resolve())})
    return dataclasses.replace(settings, config=config)


def run_repeats(
    config: RunConfig,
    parent: str | Path,
    n: int,
    *,
    limits: RunLimits | None = None,
    on_run: Callable[[str, int, int, str], None] | None = None,
    on_event: Callable[[dict[str, Any]], None] | None = None,
) -> dict[str, Any]:
    """Make (or resume) ``n`` independent runs of ``config`` under ``parent`` (see the module docstring).

    Args:
        config: The run's settings; every run uses them with its own base seed.
        parent: The folder holding the run directories and ``repeats.json``.
        n: How many runs (4 for a leaderboard entry).
        limits: Budgets and worker threads, applied to each run.
        on_run: Called as ``(name, index, total, status)`` when a run starts and ends.
        on_event: Every run's trace events (for a progress display).

    Returns:
        ``{"parent", "runs": {name: {"run_dir", "seed", "status", "overall"}}, "status", "repeats"}``;
        ``repeats`` (mean and sample std per selection) once every run finished.

    Raises:
        RepeatError: ``parent`` holds a plan of other runs.
    """
    from agent.workflows.compare import repeat_stats
    from agent.workflows.rundata import load_run

    parent = Path(parent)
    plan = repeat_plan(config, n)
    record = {
        "format": "physrefine.repeats/1",
        "n": n,
        "runs": [name for name, _ in plan],
        "seeds": {name: cfg.seed for name, cfg in plan},
        "config": config.model_dump(mode="json"),
    }
    plan_path = parent / PLAN_FILE
    if plan_path.is_file():
        stored = json.loads(plan_path.read_text(encoding="utf-8"))
        if {k: stored.get(k) for k in ("n", "runs", "config")} != {
            k: record[k] for k in ("n", "runs", "config")
        }:
            raise RepeatError(
                f"{plan_path}: this folder holds {stored.get('n')} repeats of other settings; choose another "
                "--run-dir (or rerun the same command to resume them)"
            )
    parent.mkdir(parents=True, exist_ok=True)
    plan_path.write_text(json.dumps(record, indent=2), encoding="utf-8")
    runs: dict[str, Any] = {}
    status = "complete"
    for index, (name, run_config) in enumerate(plan, start=1):
        if on_run:
            on_run(name, index, n, f"running (base seed {run_config.seed})")
        summary = run_refinement(run_config, parent / name, on_event=on_event, limits=limits)
        runs[name] = {
            "run_dir": str(parent / name),
            "seed": run_config.seed,
            "status": summary.get("status", "complete"),
            "stopped_by": summary.get("stopped_by", ""),
            "score_mode": summary.get("score_mode", "fast"),
            "overall": summary.get("overall", {}),
        }
        if on_run:
            on_run(name, index, n, summary.get("status", "complete"))
        if summary.get("status", "complete") != "complete":
            # A budget or a backend stopped it, or its generations failed: the next runs would meet the same;
            # rerun to resume once the cause is gone.
            status = str(summary.get("status"))
            break
    result: dict[str, Any] = {"parent": str(parent), "runs": runs, "status": status}
    if status == "complete" and config.score:
        loaded = [load_run(parent / name) for name, _ in plan]
        names = sorted(set.intersection(*({v.name for v in run.views} for run in loaded)))
        result["repeats"] = repeat_stats(loaded, names, [name for name, _ in plan])
    record["result"] = result
    plan_path.write_text(json.dumps(record, indent=2), encoding="utf-8")
    return result


__all__ = ["PLAN_FILE", "RepeatError", "model_slug", "repeat_plan", "run_repeats", "with_descriptions"]
