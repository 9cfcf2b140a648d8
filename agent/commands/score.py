"""``physrefine score``: the Physics-IQ score of a folder of generated videos."""

from __future__ import annotations

import hashlib
import json
import logging
import os
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


def _table(results: FolderResults, console: Console) -> None:
    from rich.table import Table

    overall = results.overall
    title = (
        f"Physics-IQ score {overall.physics_iq_score:.2f}  "
        f"({results.mode} mode, {results.fps} FPS, {overall.n_views} views)"
    )
    table = Table(title=title, title_justify="left")
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
    trajectory = results.extra.get("trajectory")
    if isinstance(trajectory, dict):
        summary = ", ".join(f"{k}={v:.4g}" for k, v in trajectory.items() if isinstance(v, (int, float)))
        console.print(f"trajectory: {summary or json.dumps(trajectory)[:200]}")


def score(
    generated_dir: Annotated[
        Path, typer.Argument(help="Folder of generated videos, {ID}_{perspective}_{scenario}.mp4.")
    ],
    dataset: Annotated[
        Path, typer.Option("--dataset", "-d", help="Physics-IQ style dataset folder (descriptions.csv).")
    ],
    fps: Annotated[
        int | None, typer.Option("--fps", help="Frame rate to score at (default: the videos' own).")
    ] = None,
    mode: Annotated[
        str, typer.Option("--mode", help="fast (in memory) or compat (official lossy steps).")
    ] = "fast",
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", "-o", help="Where results.csv and summary.json go (default: ./score-results/NAME-HASH)."
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
    """Score generated videos with the Physics-IQ evaluator (validates the folder first, never modifies it)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from physics_iq.evaluate import MODES, Evaluator
    from physics_iq.layout import DatasetLayout
    from physics_iq.validation import validate_generated_folder

    err = Console(stderr=True)
    if jobs is None:
        # Two threads pay off even on 2 cores (decoding and OpenCV release the GIL; benchmarks/bench_score.py).
        jobs = min(2, os.cpu_count() or 1)
    if mode not in MODES:
        err.print(f"[red]error:[/] --mode must be one of {', '.join(MODES)}, got {mode!r}")
        raise typer.Exit(2)
    if no_cache and cache_dir is not None:
        err.print("[red]error:[/] --cache-dir and --no-cache contradict each other; pass one")
        raise typer.Exit(2)
    # A PhysicsIQError (bad dataset, invalid folder) is shown as one line by the CLI's root group.
    layout = DatasetLayout(dataset)
    folder = validate_generated_folder(layout, generated_dir, fps=fps, jobs=jobs)
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
        task = progress.add_task(f"scoring ({mode})", total=len(pairs))
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
    out_dir = out if out is not None else _default_out_dir(generated_dir)
    csv_path, json_path = results.write(out_dir)
    if json_output:
        typer.echo(json.dumps(results.to_json(), indent=2))
        _table(results, err)
    else:
        _table(results, Console())
    err.print(f"wrote {csv_path} and {json_path}")


def _escape(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def register(app: typer.Typer) -> None:
    """Add ``score`` to the CLI."""
    app.command("score")(score)
