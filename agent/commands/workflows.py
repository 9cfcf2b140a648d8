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
        title=f"Physics-IQ, baseline {labels[0]} ({conf}% paired bootstrap CI, "
        f"{result.get('score_mode', 'fast')} mode)",
        title_justify="left",
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
    repeats = result.get("repeats")
    if repeats:
        table = Table(
            title=f"The {repeats['n_runs']} runs as repeats: mean ± sample std (ddof=1), {repeats['mode']} mode",
            title_justify="left",
        )
        for column in ("selection", "original", "Physics-IQ Verified"):
            table.add_column(column, justify="left" if column == "selection" else "right")
        for variant, stats in repeats["variants"].items():
            cells = []
            for key in ("original", "verified"):
                stat = stats[key]
                cells.append(f"{stat['mean']:.2f}" + ("" if stat["std"] is None else f" ± {stat['std']:.2f}"))
            table.add_row(variant.replace("_", " "), *cells)
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
    runs: Annotated[
        list[Path] | None,
        typer.Argument(help="Finished run directories (four for a leaderboard entry with mean and std)."),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out", help="New package folder (must not hold files); with --validate-only, the package."
        ),
    ] = None,
    verified: Annotated[
        bool,
        typer.Option(
            "--verified",
            help="Physics-IQ Verified package with submission.yaml; runs must be on the Verified data.",
        ),
    ] = False,
    validate_only: Annotated[
        bool,
        typer.Option(
            "--validate-only",
            help="Run every check of the official submission script on the package at --out, print each "
            "failure, write nothing.",
        ),
    ] = False,
    run_id: Annotated[
        str | None,
        typer.Option("--run-id", help="With --validate-only: the run id the maintainers assigned (checked)."),
    ] = None,
    pick: Annotated[
        str,
        typer.Option("--pick", help="honest (critic pick), final, loop-N, or oracle (needs --force-oracle)."),
    ] = "honest",
    fps: Annotated[
        int | None, typer.Option("--fps", help="Submission frame rate (default: the runs').")
    ] = None,
    force_oracle: Annotated[
        bool, typer.Option("--force-oracle", help="Allow --pick oracle; the package is labelled ORACLE.")
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force", help="Allow runs of the take2 generator (ground truth); the package is labelled so."
        ),
    ] = False,
    score: Annotated[
        bool | None,
        typer.Option(
            "--score/--no-score",
            help="Score every run folder in compat mode (the leaderboard's) \\[on with --verified, else off].",
        ),
    ] = None,
    dataset: Annotated[
        Path | None, typer.Option("--dataset", help="Dataset naming the take-1 IDs (default: the runs').")
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the manifest (or the checks) as JSON.")
    ] = False,
) -> None:
    """Write the package the official Physics-IQ tools read from finished runs: runs/<name>/ with the clips
    only, descriptions.csv, a manifest beside them, and with --verified the filled submission card. Validates
    with the official rules and stricter ones; never writes into a non-empty --out; uploads nothing."""
    from rich.console import Console
    from rich.markup import escape

    from agent.workflows.rundata import load_run
    from agent.workflows.submit import MANIFEST, make_submission, validate_package

    console = Console(stderr=as_json)
    if out is None:
        raise typer.BadParameter("--out is required (the package folder)", param_hint="--out")
    if validate_only:
        checks = validate_package(out, run_id=run_id)
        if as_json:
            typer.echo(json.dumps(checks, indent=2))
        for failure in checks["failures"]:
            console.print(f"[red]FAIL[/] {escape(failure)}", soft_wrap=True, highlight=False)
        if checks["expected_count"] != checks["official_count"]:
            console.print(
                f"[yellow]note:[/] run folders were checked for {checks['expected_count']} clips (one per take-1 "
                f"row of the dataset); the official script requires {checks['official_count']}"
            )
        if checks["failures"]:
            console.print(f"{len(checks['failures'])} check(s) failed ({', '.join(checks['checked'])})")
            raise typer.Exit(1)
        console.print(f"all checks passed ({', '.join(checks['checked'])})")
        return
    if not runs:
        raise typer.BadParameter("give at least one run directory (or --validate-only)", param_hint="RUNS")
    manifest = make_submission(
        [load_run(r) for r in runs],
        out,
        pick=pick,
        fps=fps,
        force_oracle=force_oracle,
        force=force,
        dataset=dataset,
        verified=verified,
        score=score,
    )
    if as_json:
        typer.echo(json.dumps({"manifest": manifest, "score": manifest["scores"]}, indent=2))
    names = ", ".join(r["folder"] for r in manifest["runs"])
    console.print(
        f"wrote {len(manifest['runs'])} run folder(s) of {manifest['videos_per_run']} clip(s) at {manifest['fps']} "
        f"fps to {escape(str(out))} ({escape(names)}); manifest: {escape(str(out / MANIFEST))}; validated: "
        "official evaluator listing, official submission checks, strict checks",
        soft_wrap=True,
    )
    if manifest["videos_per_run"] != manifest["official_videos_per_run"]:
        console.print(
            f"[yellow]note:[/] {manifest['videos_per_run']} clips per run (the dataset's take-1 rows); the "
            f"benchmark has {manifest['official_videos_per_run']}"
        )
    console.print(f"selection: {escape(manifest['selection']['rule'])}", soft_wrap=True)
    scores = manifest["scores"]
    if scores is not None:
        agg = scores["aggregate"]
        for kind in ("verified", "original"):
            stat = agg.get(kind, {}).get("physics_iq_score")
            if stat:
                spread = f" ± {stat['std']:.2f}" if stat["std"] is not None else " (one run: no std)"
                console.print(
                    f"Physics-IQ {kind}: [bold]{stat['mean']:.2f}{spread}[/] over {agg['n_runs']} run(s), "
                    f"{scores['mode']} mode (results in {escape(str(out / scores['folder']))})"
                )
    labels = manifest["label"]
    style = "bold red" if ("ORACLE" in labels or "GROUND TRUTH" in labels) else "dim"
    console.print(f"[{style}]{escape(labels)}[/]", soft_wrap=True)
    card = manifest.get("card")
    if card:
        console.print(f"card: {escape(str(out / card['file']))}; fields for a person to fill:")
        for name, why in card["to_fill"].items():
            console.print(f"  - {escape(name)}: {escape(why)}", soft_wrap=True, highlight=False)
        console.print(
            f"then check it: physrefine submit --validate-only --out {escape(str(out))} [--run-id ID] "
            f"({len(card['problems'])} check(s) fail until those are filled)"
        )


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


def rank(
    run_dir: Annotated[Path, typer.Argument(help="A finished, scored run directory.")],
    selector: Annotated[
        str,
        typer.Option(
            "--selector",
            help="Selector to rank with: critic, a verifier, critic+NAME, mean:NAME=W,NAME=W (see refine --help).",
        ),
    ],
    selector_opt: Annotated[
        list[str] | None,
        typer.Option(
            "--selector-opt", help="KEY=VALUE for the verifiers (NAME.KEY=VALUE for one), repeatable."
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the ranking summary as JSON.")] = False,
) -> None:
    """Re-rank a finished run's attempts with another selector (no generation, no ground truth) and report
    what its picks would score, next to the run's own honest pick and the oracle. Writes
    RUN_DIR/rankings/<selector>.json, which compare shows."""
    from rich.console import Console
    from rich.table import Table

    from agent.commands.refine import _pairs
    from agent.workflows.rank import rank_run
    from agent.workflows.rundata import load_run

    result = rank_run(load_run(run_dir), selector, _pairs(selector_opt, "--selector-opt"))
    if as_json:
        typer.echo(json.dumps(result, indent=2))
        return
    overall = result["overall"]
    table = Table(title=f"Re-ranked with {selector} ({result['score_mode']} mode)", title_justify="left")
    for column in (
        "loop 1",
        f"run's pick ({overall['run_selector']})",
        f"{selector} pick",
        "oracle",
        "pairs right",
    ):
        table.add_column(column, justify="right")
    accuracy = overall["selection_accuracy"]

    def fmt(value: Any) -> str:
        return "-" if value is None else f"{value:.2f}"

    table.add_row(
        fmt(overall["loop_1"]),
        fmt(overall["run_honest"]),
        fmt(overall["pick"]),
        fmt(overall["oracle"]),
        "-" if accuracy is None else f"{100 * accuracy:.0f}% of {overall['selection_pairs']}",
    )
    Console().print(table)
    typer.echo(f"wrote {result['written']} (no ground truth used to rank)")


def register(app: typer.Typer) -> None:
    """Add the workflow commands to the CLI."""
    app.command("compare")(compare)
    app.command("rank")(rank)
    app.command("submit")(submit)
    app.command("report")(report)
    app.command("sweep")(sweep)
