"""The CLI side of ``physrefine refine --repeat N`` (the option lives in :mod:`agent.commands.refine`; the
runs are made by :mod:`agent.workflows.repeat`)."""

from __future__ import annotations

import json
from typing import Any

import typer


def run_repeated(settings: Any, n: int, as_json: bool) -> None:
    """Make (or resume) ``n`` independent runs under ``settings.run_dir``; print each run's progress on
    stderr and the mean ± sample std of their scores (or one JSON object on stdout)."""
    from rich.console import Console
    from rich.table import Table

    from agent.workflows.repeat import run_repeats

    err = Console(stderr=True)

    def on_run(name: str, index: int, total: int, status: str) -> None:
        err.print(f"[{index}/{total}] {name}: {status}")

    result = run_repeats(settings.config, settings.run_dir, n, limits=settings.limits, on_run=on_run)
    # As a single run: a failed run or one stopped by its backends exits 1; a budget stop exits 0.
    failed = result["status"] == "failed" or any(
        str(r.get("stopped_by", "")).startswith("backend:") for r in result["runs"].values()
    )
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        if failed:
            raise typer.Exit(1)
        return
    console = Console()
    repeats = result.get("repeats")
    if repeats is None:
        console.print(
            f"[bold yellow]stopped early[/] ({result['status']}): rerun the same command to resume the runs"
            if result["status"] != "complete"
            else "runs made without scores (--no-score): no mean or std"
        )
        if failed:
            raise typer.Exit(1)
        return
    table = Table(
        title=f"{repeats['n_runs']} independent runs: mean ± sample std (ddof=1), {repeats['mode']} mode",
        title_justify="left",
        caption="leaderboard numbers: physrefine submit RUN ... --verified (compat mode)",
    )
    table.add_column("selection")
    for column in ("original", "Physics-IQ Verified", "per run (Verified)"):
        table.add_column(column, justify="right")
    for variant, stats in repeats["variants"].items():
        cells = []
        for key in ("original", "verified"):
            stat = stats[key]
            cells.append(f"{stat['mean']:.2f}" + ("" if stat["std"] is None else f" ± {stat['std']:.2f}"))
        cells.append(", ".join(f"{v:.2f}" for v in stats["verified"]["values"].values()))
        table.add_row(variant.replace("_", " "), *cells)
    console.print(table)
    console.print(f"run directories: [bold]{', '.join(result['runs'])}[/] in {result['parent']}")
