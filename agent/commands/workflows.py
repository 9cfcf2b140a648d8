"""``physrefine compare``, ``sweep``, ``submit`` and ``report``: the workflows over finished run directories.

Their errors (CompareError, SweepError, RunConfigError, PhysicsIQError, FileExistsError) are shown as one
``error: ...`` line with exit code 2 by the CLI's root group (:mod:`agent.cli`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer


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
    from agent.workflows.compare import compare_runs, write_comparison
    from agent.workflows.rundata import load_run

    loaded = [load_run(r) for r in runs]
    result = compare_runs(loaded, variant=variant, n_boot=n_boot, seed=seed)
    written = write_comparison(result, out)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
    else:
        _print_compare(result)
        typer.echo(f"wrote {len(written)} file(s) to {out}")


def submit(
    run_dir: Annotated[Path, typer.Argument(help="A finished run directory.")],
    out: Annotated[Path, typer.Option("--out", help="New folder for the submission (must not hold files).")],
    pick: Annotated[
        str,
        typer.Option("--pick", help="honest (critic pick), final, loop-N, or oracle (needs --force-oracle)."),
    ] = "honest",
    fps: Annotated[
        int | None, typer.Option("--fps", help="Submission frame rate (default: the run's).")
    ] = None,
    force_oracle: Annotated[
        bool, typer.Option("--force-oracle", help="Allow --pick oracle; the submission is labelled ORACLE.")
    ] = False,
    score: Annotated[bool, typer.Option("--score", help="Score the submission with the evaluator.")] = False,
    dataset: Annotated[
        Path | None, typer.Option("--dataset", help="Dataset naming the take-1 IDs (default: the run's).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest (and score) as JSON.")] = False,
) -> None:
    """Write the folder the official Physics-IQ toolkit expects from a run, validate it with the official
    rules and stricter ones, write a manifest, and optionally score it. Never writes into a non-empty --out."""
    from rich.console import Console

    from agent.workflows.rundata import load_run
    from agent.workflows.submit import META_DIR, ORACLE_LABEL, make_submission, score_submission

    console = Console(stderr=as_json)
    manifest = make_submission(
        load_run(run_dir), out, pick=pick, fps=fps, force_oracle=force_oracle, dataset=dataset
    )
    scored = score_submission(out, manifest) if score else None
    oracle = manifest["selection"]["oracle"]
    if as_json:
        typer.echo(json.dumps({"manifest": manifest, "score": scored}, indent=2))
    console.print(
        f"wrote {len(manifest['files'])} video(s) at {manifest['fps']} fps to {out} "
        f"(manifest: {out / META_DIR / 'manifest.json'}); validated: official rules and strict checks"
    )
    console.print(f"selection: {manifest['selection']['rule']}", soft_wrap=True)
    if scored is not None:
        label = "ORACLE " if oracle else ""
        console.print(
            f"{label}Physics-IQ score of the submission: [bold]{scored['physics_iq_score']:.2f}[/] "
            f"(results in {out / META_DIR / 'score'})"
        )
    if oracle:
        console.print(f"[bold red]{ORACLE_LABEL}[/]")


def report(
    run_dir: Annotated[Path, typer.Argument(help="A finished run directory.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="The HTML file to write (default: RUN_DIR/report.html).")
    ] = None,
) -> None:
    """Write one self-contained HTML report of a run: frame strips with motion masks, prompts and critiques
    per loop, score-per-loop curves, category breakdown. Never overwrites an existing file."""
    from agent.workflows.report import write_report
    from agent.workflows.rundata import load_run

    target = out if out is not None else run_dir / "report.html"
    written = write_report(load_run(run_dir), target)
    typer.echo(f"wrote {written} ({written.stat().st_size // 1024} KiB, self-contained)")


def sweep(
    config: Annotated[
        Path, typer.Argument(help=r"Sweep file (.toml/.yaml): \[base] settings and a \[grid] of lists.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Sweep folder (created; rerun the command to resume).")],
    n_boot: Annotated[
        int, typer.Option("--n-boot", min=10, help="Bootstrap resamples of the comparison.")
    ] = 2000,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the sweep summary as JSON on stdout.")
    ] = False,
) -> None:
    """Run a grid of refinement runs (prompt sets x loops x seeds x VLM x generator), each cell a run
    directory, sharing identical generations through a content-addressed cache; then compare the cells."""
    from rich.console import Console

    from agent.workflows.sweep import load_sweep_config, run_sweep

    err = Console(stderr=True)

    def on_cell(name: str, index: int, total: int, status: str) -> None:
        err.print(f"[{index}/{total}] {name}: {status}")

    result = run_sweep(load_sweep_config(config), out, n_boot=n_boot, on_cell=on_cell)
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    from rich.table import Table

    table = Table(title=f"sweep {out}", title_justify="left")
    for column in ("cell", "loop 1", "final", "honest", "oracle (GT)", "reused gens"):
        table.add_column(column, justify="left" if column == "cell" else "right")
    for name, cell in result["cells"].items():
        overall = cell["overall"]
        cells = [overall.get(k) for k in ("loop_1", "final", "honest_ensemble", "oracle")]
        reused = result["sharing"].get(name, {}).get("reused_generations", "-")
        table.add_row(name, *("-" if c is None else f"{c:.2f}" for c in cells), str(reused))
    Console().print(table)
    if "compare" in result:
        typer.echo(f"comparison: {result['compare']}")


def register(app: typer.Typer) -> None:
    """Add the workflow commands to the CLI."""
    app.command("compare")(compare)
    app.command("submit")(submit)
    app.command("report")(report)
    app.command("sweep")(sweep)
