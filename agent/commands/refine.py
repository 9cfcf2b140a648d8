"""``physrefine refine`` (the loop on any dataset) and ``physrefine demo`` (the main job, offline)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

VARIANT_LABELS = {
    "loop_1": "loop 1",
    "final": "final loop",
    "honest_ensemble": "honest ensemble",
    "oracle": "oracle (peeks at GT)",
    "static": "static baseline",
}


def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    out = {}
    for item in values or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise typer.BadParameter(f"expected KEY=VALUE, got {item!r}", param_hint=flag)
        out[key.strip()] = value
    return out


def _backends_help() -> str:
    from agent.vlm import VLMS
    from generators import GENERATORS

    gens = "; ".join(f"{k} ({v})" if v else k for k, v in GENERATORS.describe().items())
    vlms = "; ".join(f"{k} ({v})" if v else k for k, v in VLMS.describe().items())
    return (
        "Run the VLM-guided refinement loop over a dataset in the Physics-IQ layout; rerun the same command "
        f"to resume.\n\nGenerators: {gens}.\n\nVLMs: offline (motion-grounded rule-based critic, not neural); {vlms}."
    )


def _print_table(summary: dict[str, Any], console: Any) -> None:
    from rich.table import Table

    table = Table(title="Physics-IQ score (100 = as good as a second real take)", title_justify="left")
    table.add_column("scenario")
    for label in VARIANT_LABELS.values():
        table.add_column(label, justify="right")
    table.add_column("phys. var.", justify="right")
    table.add_column("loops", justify="right")
    table.add_column("stop reason")

    def fmt(value: Any) -> str:
        return "-" if value is None else f"{value:.2f}"

    for entry in summary["scenarios"]:
        table.add_row(
            entry["scenario"],
            *(fmt(entry.get(k)) for k in VARIANT_LABELS),
            fmt(entry.get("physical_variance")),
            str(entry["loops"]),
            entry["stop_reason"],
        )
    overall = summary["overall"]
    table.add_row(
        "overall",
        *(fmt(overall.get(k)) for k in VARIANT_LABELS),
        fmt(overall.get("physical_variance")),
        "",
        "",
        style="bold",
    )
    console.print(table)
    notes = []
    if not summary["generator_is_neural"]:
        notes.append("generator: offline physics-prior stand-in (not a neural model)")
    if not summary["critic_is_neural"]:
        notes.append("critic: offline motion-grounded rules (not a neural model)")
    notes.append("oracle picks with ground truth: an upper bound, not an honest result")
    console.print("[dim]" + "; ".join(notes) + "[/]")
    console.print(f"run directory: [bold]{summary['run_dir']}[/]")


def _run(config: Any, run_dir: Path, as_json: bool) -> None:
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from agent.refine import run_refinement

    console = Console(stderr=True)
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        disable=as_json,
        transient=True,
    ) as progress:
        task = progress.add_task("starting", total=None)

        def on_event(event: dict[str, Any]) -> None:
            where = f"scenario {event.get('take1_id', '')}"
            loop = f" loop {event['loop']}" if "loop" in event else ""
            progress.update(task, description=f"{where}{loop}: {event.get('node', '')}")

        summary = run_refinement(config, run_dir, on_event=on_event)
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
    else:
        _print_table(summary, Console())


def register(app: typer.Typer) -> None:
    """Add ``refine`` and ``demo`` to the CLI."""

    @app.command(help=_backends_help())
    def refine(
        dataset: Annotated[
            Path, typer.Option("--dataset", help="Dataset folder (descriptions.csv, split-videos/...).")
        ],
        run_dir: Annotated[Path, typer.Option("--run-dir", help="Run directory (created; rerun to resume).")],
        fps: Annotated[int, typer.Option("--fps", help="Benchmark frame rate to work at.")] = 8,
        mode: Annotated[
            str, typer.Option("--mode", help="i2v (switch frame only) or v2v (conditioning clip).")
        ] = "v2v",
        generator: Annotated[
            str, typer.Option("--generator", help="Generator name (see above).")
        ] = "physics-prior",
        vlm: Annotated[str, typer.Option("--vlm", help="'offline' or a VLM backend name.")] = "offline",
        loops: Annotated[int, typer.Option("--loops", help="Maximum refinement loops.")] = 4,
        seeds: Annotated[int, typer.Option("--seeds", help="Attempts (seeds) per loop.")] = 2,
        seed: Annotated[int, typer.Option("--seed", help="Base seed.")] = 0,
        scenarios: Annotated[
            str, typer.Option("--scenarios", help="Comma-separated scenario slugs or IDs.")
        ] = "",
        prompt_set: Annotated[
            str, typer.Option("--prompt-set", help="Prompt set name or folder.")
        ] = "default",
        model: Annotated[str | None, typer.Option("--model", help="Generator model id or path.")] = None,
        dtype: Annotated[str | None, typer.Option("--dtype", help="Generator dtype.")] = None,
        device: Annotated[str | None, typer.Option("--device", help="Generator device.")] = None,
        vlm_model: Annotated[str | None, typer.Option("--vlm-model", help="VLM model name.")] = None,
        base_url: Annotated[str | None, typer.Option("--base-url", help="VLM API base URL.")] = None,
        generator_opt: Annotated[
            list[str] | None, typer.Option("--generator-opt", help="KEY=VALUE, repeatable.")
        ] = None,
        vlm_opt: Annotated[list[str] | None, typer.Option("--vlm-opt", help="KEY=VALUE, repeatable.")] = None,
        no_grounding: Annotated[
            bool, typer.Option("--no-grounding", help="Do not give VLMs tracker text.")
        ] = False,
        no_score: Annotated[bool, typer.Option("--no-score", help="Skip Physics-IQ scoring.")] = False,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary on stdout.")] = False,
    ) -> None:
        from pydantic import ValidationError

        from agent.runs import RunConfig

        gen_opts = {
            k: v for k, v in {"model": model, "dtype": dtype, "device": device}.items() if v is not None
        }
        gen_opts.update(_pairs(generator_opt, "--generator-opt"))
        vlm_opts = {k: v for k, v in {"model": vlm_model, "base_url": base_url}.items() if v is not None}
        vlm_opts.update(_pairs(vlm_opt, "--vlm-opt"))
        try:
            config = RunConfig(
                dataset=str(dataset.resolve()),
                fps=fps,
                mode=mode,  # type: ignore[arg-type]  # pydantic validates the literal
                generator=generator,
                generator_options=gen_opts,
                vlm=vlm,
                vlm_options=vlm_opts,
                loops=loops,
                seeds=seeds,
                seed=seed,
                scenarios=[s.strip() for s in scenarios.split(",") if s.strip()],
                prompt_set=prompt_set,
                grounding=not no_grounding,
                score=not no_score,
            )
        except ValidationError as exc:
            raise typer.BadParameter(str(exc)) from exc
        _run(config, run_dir, as_json)

    @app.command()
    def demo(
        out: Annotated[Path, typer.Option("--out", help="Folder for the suite and the run.")] = Path(
            "physrefine-demo"
        ),
        loops: Annotated[int, typer.Option("--loops", help="Maximum refinement loops.")] = 4,
        seeds: Annotated[int, typer.Option("--seeds", help="Attempts per loop.")] = 2,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary on stdout.")] = False,
    ) -> None:
        """The main job offline: build the built-in scenario set, refine with the offline critic and the
        physics-prior generator (neither is a neural model), score, and print loop 1 vs final vs ensembles."""
        from agent.minimal_suite import build_minimal_suite
        from agent.runs import RunConfig

        layout = build_minimal_suite(out / "suite", fps=8)
        config = RunConfig(dataset=str(layout.root.resolve()), fps=8, mode="v2v", loops=loops, seeds=seeds)
        _run(config, out / "run", as_json)
