"""``physrefine compare``, ``sweep``, ``submit`` and ``report``: the workflows over finished run directories."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer


def _fail(message: str) -> typer.Exit:
    from rich.console import Console
    from rich.markup import escape

    Console(stderr=True).print("[red]error:[/] " + escape(message), soft_wrap=True)
    return typer.Exit(2)


def _print_compare(result: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    from agent.workflows.compare import _ci

    labels = list(result["runs"])
    conf = round(100 * result["bootstrap"]["confidence"])
    table = Table(
        title=f"Physics-IQ, baseline {labels[0]} ({conf}% paired bootstrap CI)", title_justify="left"
    )
    table.add_column("selection")
    for label in labels:
        table.add_column(label, justify="right")
    for label in labels[1:]:
        table.add_column(f"Δ {label}", justify="right")
    for row in result["overall"]:
        table.add_row(
            row["label"],
            *(f"{row[label]:.2f}" for label in labels),
            *(_ci(row["vs"][label]) for label in labels[1:]),
        )
    console = Console()
    console.print(table)
    for note in result["notes"]:
        console.print(f"[yellow]note:[/] {note}", soft_wrap=True)


def compare(
    runs: Annotated[list[Path], typer.Argument(help="Run directories; the first is the baseline.")],
    out: Annotated[Path, typer.Option("--out", help="New folder for compare.md, CSV tables, plots.")],
    variant: Annotated[
        str,
        typer.Option(
            "--variant", help="Selection compared per view/category: loop_1, final, honest_ensemble, oracle."
        ),
    ] = "honest_ensemble",
    n_boot: Annotated[int, typer.Option("--n-boot", min=10, help="Bootstrap resamples.")] = 2000,
    seed: Annotated[int, typer.Option("--seed", help="Bootstrap seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the comparison as JSON on stdout.")] = False,
) -> None:
    """Compare finished runs: per view, per category and overall Physics-IQ deltas with paired bootstrap
    confidence intervals over scenarios, loop-by-loop curves and convergence statistics."""
    from agent.workflows.compare import CompareError, compare_runs, write_comparison
    from agent.workflows.rundata import load_run
    from physics_iq.errors import PhysicsIQError

    try:
        loaded = [load_run(r) for r in runs]
        result = compare_runs(loaded, variant=variant, n_boot=n_boot, seed=seed)
        written = write_comparison(result, out)
    except (PhysicsIQError, CompareError) as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        _print_compare(result)
        typer.echo(f"wrote {len(written)} file(s) to {out}")


def register(app: typer.Typer) -> None:
    """Add the workflow commands to the CLI."""
    app.command("compare")(compare)
