"""``physrefine sweep CONFIG``: a grid of refinement runs sharing identical generations, then a comparison.

Config file (TOML or YAML)::

    [base]                         # run settings shared by every cell (refine's names)
    dataset = "suite"              # relative paths are relative to the config file
    fps = 8
    seeds = 1

    jobs = 4                       # execution settings (refine's): they change where cells run, not
    executor = "ray"               # what they compute, so a rerun may change them
    generator_resources = {num_gpus = 1}

    [grid]                         # one cell per combination of these lists
    prompt_set = ["default", "minimal"]
    loops = [2, 4]
    seed = [0, 1]                  # also: seeds, vlm, generator

Layout of the sweep folder::

    SWEEP/
      sweep.json                   the grid and every cell's config (a rerun must match)
      cells/<cell>/                a normal run directory per cell (refine's format)
      generations/<view>/<key>.*   shared generation cache: hard links of attempt videos + their records
      compare/                     physrefine compare over the cells (first cell = baseline)

Sharing generations reuses the run's own content addressing: an attempt is ``attempts/<key>.mp4`` with
``key = agent.graph.attempt_key(generator id, scene, prompt, seed)`` and the graph reuses a file that already
exists under that name. Before a cell runs, the cache's files for its views are hard-linked into its
``scenarios/<view>/attempts/``; identical inputs (same generator, options, prefix, prompt and seed) then hit
the same key and are not generated again, byte-identical. After the cell, its new attempts join the cache,
and links the cell did not use are removed again (they are only links; the cache keeps the file). Critiques
are not shared: they depend on the critic and prompt set, which differ between cells.

Resumable: rerunning the same command skips finished cells and resumes an interrupted one (its own sqlite
checkpoint); a different grid in the same folder is refused.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agent.budget import RunLimits
from agent.runs import RunConfig
from agent.settings import EXECUTION_KEYS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

logger = logging.getLogger(__name__)

GRID_KEYS: tuple[str, ...] = ("prompt_set", "loops", "seeds", "seed", "vlm", "generator")


class SweepError(ValueError):
    """A sweep config is invalid, or the sweep folder holds a different sweep."""


class SweepConfig(BaseModel):
    """The validated sweep file."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base: dict[str, Any] = Field(default_factory=dict)
    grid: dict[str, list[Any]] = Field(min_length=1)

    @field_validator("grid")
    @classmethod
    def _known_keys(cls, grid: dict[str, list[Any]]) -> dict[str, list[Any]]:
        for key, values in grid.items():
            if key not in GRID_KEYS:
                raise ValueError(f"grid key {key!r} cannot vary; expected some of {list(GRID_KEYS)}")
            if not values:
                raise ValueError(f"grid key {key!r} has an empty list")
            if len(set(map(str, values))) != len(values):
                raise ValueError(f"grid key {key!r} lists a value twice: {values}")
        return grid


def load_sweep_config(path: str | Path) -> SweepConfig:
    """Read and validate a sweep file (``.toml``, ``.yaml`` or ``.yml``).

    Raises:
        SweepError: unreadable file, bad syntax, unknown keys, or values the run config rejects (naming the
            cell and field).
    """
    path = Path(path)
    if path.suffix.lower() not in (".toml", ".yaml", ".yml"):
        raise SweepError(f"{path}: expected a .toml, .yaml or .yml sweep file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SweepError(f"{path}: cannot read the sweep file ({exc.strerror or exc})") from exc
    try:
        data = tomllib.loads(text) if path.suffix.lower() == ".toml" else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise SweepError(f"{path}: not valid {path.suffix[1:].upper()}: {exc}") from exc
    try:
        config = SweepConfig.model_validate(data or {})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise SweepError(f"{path}: {problems}") from exc
    base = dict(config.base)
    if "dataset" not in base:
        raise SweepError(f"{path}: [base] needs 'dataset' (the dataset folder)")
    dataset = Path(str(base["dataset"]))
    base["dataset"] = str((dataset if dataset.is_absolute() else path.parent / dataset).resolve())
    overlap = sorted(set(base) & set(config.grid))
    if overlap:
        raise SweepError(f"{path}: {overlap} set in both [base] and [grid]; keep each in one place")
    _check_names(path, base, config.grid)
    checked = SweepConfig(base=base, grid=config.grid)
    try:
        cells(checked)  # every cell's run config, before anything is created
    except SweepError as exc:
        raise SweepError(f"{path}: {exc}") from exc
    execution_limits(checked, where=f"{path}: [base]")
    return checked


def execution_limits(config: SweepConfig, where: str = "[base]") -> RunLimits:
    """Where the cells run: the execution keys of ``[base]`` (jobs, devices, executor, Ray settings).

    Raises:
        SweepError: an invalid value, naming ``where`` and the key.
    """
    from agent.settings import SettingsError
    from agent.settings import execution_limits as limits_of

    try:
        return limits_of(dict(config.base), where)
    except SettingsError as exc:
        raise SweepError(str(exc)) from exc


def _check_names(path: Path, base: dict[str, Any], grid: dict[str, list[Any]]) -> None:
    """Backend names and prompt sets, checked as ``refine`` checks its flags (with did-you-mean hints)."""
    from agent.settings import SettingsError, check_backend, check_prompt_set

    values = [("base", key, value) for key, value in base.items()]
    values += [("grid", key, value) for key, listed in grid.items() for value in listed]
    try:
        for section, key, value in values:
            where = f"{path}: [{section}] {key}"
            if key == "generator":
                check_backend("generator", value, where)
            elif key == "vlm":
                check_backend("vlm", value, where)
            elif key == "prompt_set":
                check_prompt_set(value, where)
    except SettingsError as exc:
        raise SweepError(str(exc)) from exc


def cell_name(values: dict[str, Any]) -> str:
    """A folder name for a cell, e.g. ``prompt_set-minimal__loops-2``.

    >>> cell_name({"prompt_set": "my/set", "loops": 2})
    'prompt_set-my_set__loops-2'
    """
    return "__".join(f"{k}-{re.sub(r'[^A-Za-z0-9.=+-]+', '_', str(v))}" for k, v in values.items())


def cells(config: SweepConfig) -> dict[str, RunConfig]:
    """Every cell's run config, in grid order (the first is the comparison's baseline).

    Raises:
        SweepError: a cell's settings are rejected by :class:`~agent.runs.RunConfig` (naming the cell).
    """
    keys = list(config.grid)
    out: dict[str, RunConfig] = {}
    for combo in itertools.product(*(config.grid[k] for k in keys)):
        values = dict(zip(keys, combo, strict=True))
        name = cell_name(values)
        try:
            # fps defaults to 8 as in ``physrefine refine``.
            base = {k: v for k, v in config.base.items() if k not in EXECUTION_KEYS}
            out[name] = RunConfig.model_validate({"fps": 8, **base, **values})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
            raise SweepError(f"cell {name}: {problems}") from exc
    return out


# -- the shared generation cache ---------------------------------------------------------------------------
def _link(source: Path, dest: Path) -> bool:
    if dest.exists():
        return False
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, dest)
    except OSError:  # another file system: a link is impossible, a copy is still exact
        import shutil

        shutil.copyfile(source, dest)
    return True


def _view_names(config: RunConfig) -> list[str]:
    from agent.refine import select_pairs
    from physics_iq.layout import DatasetLayout

    layout = DatasetLayout(config.dataset)
    return [
        Path(p.take1.generated_video_name).stem
        for p in select_pairs(layout, config.scenarios, config.categories)
    ]


def seed_cell(cache: Path, cell_dir: Path, views: list[str]) -> list[str]:
    """Hard-link cached generations of the cell's views into it; returns the links made (relative paths)."""
    made = []
    for view in views:
        for source in sorted((cache / view).glob("*")):
            if source.suffix not in (".mp4", ".json") or ".critique" in source.name:
                continue
            dest = cell_dir / "scenarios" / view / "attempts" / source.name
            if _link(source, dest):
                made.append(str(dest.relative_to(cell_dir)))
    return made


def harvest_cell(cache: Path, cell_dir: Path) -> int:
    """Add the cell's generated attempts (videos and generation records, not critiques) to the cache."""
    added = 0
    for video in sorted(cell_dir.glob("scenarios/*/attempts/*.mp4")):
        view = video.parent.parent.name
        for item in (video, video.with_suffix(".json")):
            if item.is_file() and _link(item, cache / view / item.name):
                added += 1
    return added


def _used_keys(cell_dir: Path) -> set[str] | None:
    used: set[str] = set()
    for scores in cell_dir.glob("scenarios/*/scores.json"):
        used |= {
            Path(a["path"]).stem for a in json.loads(scores.read_text(encoding="utf-8")).get("attempts", [])
        }
    return used if (cell_dir / "summary.json").is_file() else None


def prune_seeded(cell_dir: Path, seeded: list[str]) -> tuple[int, int]:
    """Remove seeded links the finished cell did not use. Returns ``(reused, removed)``.

    Only files this sweep linked in are considered (never the cell's own generations). Without scores (a
    ``--no-score`` cell) nothing is removed: unused links are then harmless extra files.
    """
    used = _used_keys(cell_dir)
    if used is None:
        return 0, 0
    reused = removed = 0
    for rel in seeded:
        path = cell_dir / rel
        if Path(rel).stem in used:
            reused += path.suffix == ".mp4"
        elif path.is_file() and used:
            path.unlink()  # a hard link we made; the cache holds the same file
            removed += 1
    return reused, removed


# -- the sweep ---------------------------------------------------------------------------------------------
def run_sweep(
    config: SweepConfig,
    out: str | Path,
    *,
    n_boot: int = 2000,
    on_cell: Callable[[str, int, int, str], None] | None = None,
) -> dict[str, Any]:
    """Run (or resume) every cell, share generations, compare the cells. Returns the sweep summary.

    Args:
        config: The validated sweep.
        out: The sweep folder (created; a rerun resumes it).
        n_boot: Bootstrap resamples of the comparison.
        on_cell: Called as ``(cell, index, total, status)`` when a cell starts and ends.

    Raises:
        SweepError: the folder holds a different sweep.
    """
    from agent.refine import run_refinement
    from agent.workflows.compare import compare_runs, write_comparison
    from agent.workflows.rundata import load_run

    out = Path(out)
    planned = cells(config)
    limits = execution_limits(config)
    results_base = {k: v for k, v in config.base.items() if k not in EXECUTION_KEYS}
    record = {
        "format": "physrefine.sweep/1",
        "grid": config.grid,
        "base": config.base,
        "cells": {name: c.model_dump(mode="json") for name, c in planned.items()},
    }
    state_path = out / "sweep.json"
    if state_path.is_file():
        existing = json.loads(state_path.read_text(encoding="utf-8"))
        # Execution settings may change between invocations (more GPUs, a cluster): they are not compared.
        old_base = {k: v for k, v in (existing.get("base") or {}).items() if k not in EXECUTION_KEYS}
        if (existing.get("grid"), old_base) != (record["grid"], results_base):
            raise SweepError(f"{out}: holds a different sweep (sweep.json differs); choose another --out")
        stats = existing.get("sharing", {})
    elif out.exists() and any(out.iterdir()):
        raise SweepError(f"{out}: exists, is not empty and holds no sweep.json; choose another --out")
    else:
        stats = {}
    out.mkdir(parents=True, exist_ok=True)
    cache = out / "generations"
    summaries: dict[str, dict[str, Any]] = {}
    for index, (name, cell_config) in enumerate(planned.items(), start=1):
        cell_dir = out / "cells" / name
        summary_path = cell_dir / "summary.json"
        if summary_path.is_file():
            summary = json.loads(summary_path.read_text(encoding="utf-8"))
            if summary.get("status", "complete") == "complete":
                summaries[name] = summary
                if on_cell:
                    on_cell(name, index, len(planned), "done before")
                continue
        if on_cell:
            on_cell(name, index, len(planned), "running")
        seeded = seed_cell(cache, cell_dir, _view_names(cell_config))
        state_path.write_text(json.dumps({**record, "sharing": stats}, indent=2), encoding="utf-8")
        summaries[name] = run_refinement(cell_config, cell_dir, limits=limits)
        reused, removed = prune_seeded(cell_dir, seeded)
        added = harvest_cell(cache, cell_dir)
        stats[name] = {"reused_generations": reused, "unused_links_removed": removed, "added_to_cache": added}
        state_path.write_text(json.dumps({**record, "sharing": stats}, indent=2), encoding="utf-8")
        if on_cell:
            on_cell(name, index, len(planned), f"finished ({reused} generation(s) reused from the cache)")
    result: dict[str, Any] = {
        "sweep_dir": str(out),
        "cells": {
            name: {"overall": s.get("overall", {}), "status": s.get("status", "complete")}
            for name, s in summaries.items()
        },
        "sharing": stats,
    }
    if len(planned) >= 2 and all(c.score for c in planned.values()):
        comparison = compare_runs([load_run(out / "cells" / n) for n in planned], n_boot=n_boot)
        write_comparison(comparison, out / "compare", overwrite=True)
        result["compare"] = str(out / "compare" / "compare.md")
        result["comparison"] = comparison["overall"]
    (out / "sweep_summary.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    return result


__all__ = [
    "EXECUTION_KEYS",
    "GRID_KEYS",
    "SweepConfig",
    "SweepError",
    "cell_name",
    "cells",
    "execution_limits",
    "harvest_cell",
    "load_sweep_config",
    "prune_seeded",
    "run_sweep",
    "seed_cell",
]
