"""``physrefine score``: the Physics-IQ score of a folder of generated videos."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from rich.console import Console

    from physics_iq.evaluate import FolderResults
    from physics_iq.layout import DatasetLayout

logger = logging.getLogger(__name__)


def _default_out_dir(generated_dir: Path) -> Path:
    # The folder name alone is not unique (the official toolkit's bug); add a hash of the resolved path.
    digest = hashlib.sha256(str(generated_dir.resolve()).encode()).hexdigest()[:8]
    return Path("score-results") / f"{generated_dir.resolve().name}-{digest}"


def _trajectory(
    layout: DatasetLayout, generated_dir: Path, fps: int, console: Console
) -> dict[str, Any] | None:
    """The synthetic suite's trajectory report when the dataset ships ground-truth state files."""
    if not any(layout.state_file(row, fps).is_file() for row in layout.take1_rows()):
        return None
    try:
        from physics_iq.trajectory import trajectory_report  # written by the synthetic-suite work
    except ImportError as exc:
        console.print(f"[yellow]warning:[/] state files found but no trajectory metric available ({exc})")
        return None
    report: dict[str, Any] | None = trajectory_report(layout, generated_dir, fps)
    return report


def _table(results: FolderResults, console: Console, score_types: Sequence[str]) -> None:
    """The original score's table (metrics per category) and the Verified score's (sub-scores per category),
    each titled with its mode."""
    from rich.table import Table

    from physics_iq.evaluate import MODE_NOTES

    overall = results.overall
    where = f"({results.mode} mode, {results.fps} FPS, {overall.n_views} views)"
    if "original" in score_types:
        table = Table(title=f"Physics-IQ score {overall.physics_iq_score:.2f}  {where}", title_justify="left")
        for column in ("group", "score", "spatial", "spatiotemp.", "weighted", "MSE", "views"):
            table.add_column(column, justify="left" if column == "group" else "right")

        def add(name: str, agg: Any, style: str | None = None) -> None:
            m = agg.model
            table.add_row(
                name,
                f"{agg.physics_iq_score:.2f}",
                f"{m.spatial_iou:.4f}",
                f"{m.spatiotemporal_iou:.4f}",
                f"{m.weighted_spatial_iou:.4f}",
                f"{m.mse:.5f}",
                str(agg.n_views),
                style=style,
            )

        add("all", overall, style="bold")
        v = overall.variance
        table.add_row(
            "physical variance",
            "100.00",
            f"{v.spatial_iou:.4f}",
            f"{v.spatiotemporal_iou:.4f}",
            f"{v.weighted_spatial_iou:.4f}",
            f"{v.mse:.5f}",
            str(overall.n_views),
            style="dim",
        )
        for name, agg in sorted(results.per_category.items()):
            add(name, agg)
        console.print(table)
    if "verified" in score_types and results.verified is not None:
        verified = results.verified
        table = Table(
            title=f"Physics-IQ Verified score {verified.physics_iq_score:.2f}  {where}",
            title_justify="left",
            caption="per sample: each ratio to the physical variance clipped to [0, 1], then averaged (x 100)",
        )
        for column in ("group", "Verified", "spatial", "spatiotemp.", "weighted", "MSE", "samples"):
            table.add_column(column, justify="left" if column == "group" else "right")
        keys = ("score_spatial", "score_spatiotemporal", "score_weighted_spatial", "score_mse")
        rows = [("all", verified), *sorted(results.verified_per_category.items())]
        for name, vagg in rows:
            table.add_row(
                name,
                f"{vagg.physics_iq_score:.2f}",
                *(f"{vagg.terms[k]:.2f}" for k in keys),
                str(vagg.n_samples),
                style="bold" if name == "all" else None,
            )
        console.print(table)
    console.print(f"[dim]{MODE_NOTES.get(results.mode, '')}[/]")
    trajectory = results.extra.get("trajectory")
    if isinstance(trajectory, dict):
        summary = ", ".join(f"{k}={v:.4g}" for k, v in trajectory.items() if isinstance(v, (int, float)))
        console.print(f"trajectory: {summary or json.dumps(trajectory)[:200]}")


def _aggregate_table(aggregate: dict[str, Any], console: Console) -> None:
    from rich.table import Table

    from physics_iq.evaluate import MODE_NOTES

    table = Table(
        title=f"{aggregate['n_runs']} runs: mean ± sample std (ddof=1), {aggregate['mode']} mode",
        title_justify="left",
        caption=MODE_NOTES.get(str(aggregate["mode"]), ""),
    )
    table.add_column("score")
    table.add_column("mean ± std", justify="right")
    table.add_column("per run", justify="right")
    labels = {
        "physics_iq_score": "Physics-IQ",
        "score_spatial": "spatial",
        "score_spatiotemporal": "spatiotemporal",
        "score_weighted_spatial": "weighted spatial",
        "score_mse": "MSE",
    }
    for kind in ("verified", "original"):
        for key, stat in aggregate.get(kind, {}).items():
            if kind == "original" and key != "physics_iq_score":
                continue  # the raw metrics are in aggregate.json; the table shows scores
            spread = "" if stat["std"] is None else f" ± {stat['std']:.2f}"
            table.add_row(
                f"{kind} {labels.get(key, key)}",
                f"{stat['mean']:.2f}{spread}",
                ", ".join(f"{v:.2f}" for v in stat["values"]),
            )
    console.print(table)


def score(
    generated_dirs: Annotated[
        list[Path],
        typer.Argument(
            help="Folder(s) of generated videos, {ID}_{perspective}_{scenario}.mp4; several folders (runs of one "
            "model) are also reported as mean and sample std."
        ),
    ],
    dataset: Annotated[
        Path,
        typer.Option(
            "--dataset",
            "-d",
            help="Physics-IQ dataset folder (descriptions and split-videos), or a descriptions CSV in one.",
        ),
    ],
    fps: Annotated[
        int | None, typer.Option("--fps", help="Frame rate to score at (default: the videos' own).")
    ] = None,
    mode: Annotated[
        str,
        typer.Option(
            "--mode", help="fast (in memory) or compat (official lossy steps; for leaderboard numbers)."
        ),
    ] = "fast",
    score_type: Annotated[
        str,
        typer.Option(
            "--score-type",
            help="original (aggregate score), verified (Physics-IQ Verified per-sample score) or all \\[all].",
        ),
    ] = "all",
    descriptions: Annotated[
        str | None,
        typer.Option(
            "--descriptions", help="op or bpp: the dataset's prompt set to read (IDs and names are the same)."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            help="Where results.csv, samples.csv and summary.json go (several folders: one sub-folder each, plus "
            "aggregate.json; default: ./score-results/NAME-HASH).",
        ),
    ] = None,
    json_output: Annotated[
        bool, typer.Option("--json", help="Print only the JSON summary on stdout.")
    ] = False,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            help="Cache of real-video masks and variance (default: $PHYSREFINE_CACHE_DIR or ~/.cache/physrefine).",
        ),
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Do not read or write the cache.")] = False,
    jobs: Annotated[
        int | None,
        typer.Option(
            "--jobs", "-j", min=1, help="Worker threads, scenarios in parallel (default: min(2, CPU cores))."
        ),
    ] = None,
) -> None:
    """Score generated videos with the Physics-IQ evaluator (validates each folder first, never modifies it):
    the original score and the Physics-IQ Verified score, each saying the mode it was computed in."""
    from rich.console import Console

    from physics_iq.evaluate import MODES, aggregate_runs
    from physics_iq.layout import DatasetLayout
    from physics_iq.scoring import SCORE_TYPES
    from physics_iq.validation import validate_generated_folder

    err = Console(stderr=True)
    if jobs is None:
        # Two threads pay off even on 2 cores (decoding and OpenCV release the GIL; benchmarks/bench_score.py).
        jobs = min(2, os.cpu_count() or 1)
    if mode not in MODES:
        err.print(f"[red]error:[/] --mode must be one of {', '.join(MODES)}, got {mode!r}")
        raise typer.Exit(2)
    if score_type not in (*SCORE_TYPES, "all"):
        err.print(
            f"[red]error:[/] --score-type must be one of {', '.join(SCORE_TYPES)} or all, got {score_type!r}"
        )
        raise typer.Exit(2)
    score_types = SCORE_TYPES if score_type == "all" else (score_type,)
    if no_cache and cache_dir is not None:
        err.print("[red]error:[/] --cache-dir and --no-cache contradict each other; pass one")
        raise typer.Exit(2)
    # A PhysicsIQError (bad dataset, invalid folder) is shown as one line by the CLI's root group.
    layout = DatasetLayout(dataset, descriptions=descriptions)
    # Every folder is checked before any is scored: a bad fourth run fails in seconds, not after three.
    folders = [validate_generated_folder(layout, d, fps=fps, jobs=jobs) for d in generated_dirs]
    names = _run_names(generated_dirs)
    several = len(generated_dirs) > 1
    root = (
        out
        if out is not None
        else _default_out_dir(generated_dirs[0]).with_name("runs-" + _digest(generated_dirs))
    )
    summaries: dict[str, dict[str, Any]] = {}
    for generated_dir, folder, name in zip(generated_dirs, folders, names, strict=True):
        results = _score_one(layout, generated_dir, folder, mode, jobs, cache_dir, no_cache, err)
        if several:
            out_dir = (
                out or _default_out_dir(generated_dirs[0]).with_name("runs-" + _digest(generated_dirs))
            ) / name
        else:
            out_dir = out if out is not None else _default_out_dir(generated_dir)
        csv_path, json_path = results.write(out_dir, score_types)
        summaries[name] = results.to_json(score_types)
        if not json_output:
            _table(results, Console(), score_types)
        elif not several:
            typer.echo(json.dumps(summaries[name], indent=2))
            _table(results, err, score_types)
        err.print(f"wrote {csv_path}, {out_dir / 'samples.csv'} and {json_path}")
    if several:
        aggregate = aggregate_runs(summaries)
        (root / "aggregate.json").write_text(json.dumps(aggregate, indent=2) + "\n", encoding="utf-8")
        if json_output:
            typer.echo(json.dumps({"runs": summaries, "aggregate": aggregate}, indent=2))
        _aggregate_table(aggregate, err if json_output else Console())
        err.print(f"wrote {root / 'aggregate.json'}")


def _digest(dirs: Sequence[Path]) -> str:
    joined = "\n".join(str(d.resolve()) for d in dirs)
    return hashlib.sha256(joined.encode()).hexdigest()[:8]


def _run_names(dirs: Sequence[Path]) -> list[str]:
    """One output name per folder: its own name, made unique with a hash of its path when two share it."""
    names = [d.resolve().name for d in dirs]
    return [
        n if names.count(n) == 1 else f"{n}-{hashlib.sha256(str(d.resolve()).encode()).hexdigest()[:8]}"
        for n, d in zip(names, dirs, strict=True)
    ]


def _score_one(
    layout: DatasetLayout,
    generated_dir: Path,
    folder: Any,
    mode: str,
    jobs: int,
    cache_dir: Path | None,
    no_cache: bool,
    err: Console,
) -> FolderResults:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from physics_iq.evaluate import Evaluator

    evaluator = Evaluator(layout, folder.fps, mode=mode, cache_dir=False if no_cache else cache_dir)  # type: ignore[arg-type]
    pairs = evaluator.pairs()
    for message in folder.warnings:
        err.print("[yellow]warning:[/] " + _escape(message), soft_wrap=True)
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task(f"scoring {generated_dir.name} ({mode})", total=len(pairs))
        results = evaluator.evaluate_folder(
            generated_dir,
            jobs=jobs,
            progress=lambda n: progress.advance(task, n),
            validated=folder,
        )
    for message in results.warnings[len(folder.warnings) :]:
        err.print("[yellow]warning:[/] " + _escape(message), soft_wrap=True)
    trajectory = _trajectory(layout, generated_dir, folder.fps, err)
    if trajectory is not None:
        results.extra["trajectory"] = trajectory
    return results


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def register(app: typer.Typer) -> None:
    """Add ``score`` to the CLI."""
    app.command("score")(score)
