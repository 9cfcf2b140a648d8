"""``physrefine refine`` (the loop on any dataset) and ``physrefine demo`` (the main job, offline)."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

VARIANT_LABELS = {
    "loop_1": "loop 1",
    "final": "final loop",
    "honest_ensemble": "honest ensemble",
    "best_of_n": "best of N (same budget)",
    "oracle": "oracle (peeks at GT)",
    "static": "static baseline",
}


def _pairs(values: list[str] | None, flag: str) -> dict[str, str]:
    out = {}
    for number, item in enumerate(values or [], start=1):
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            # The item is not echoed: without a key we cannot tell whether it is a secret pasted by mistake.
            raise typer.BadParameter(
                f"expected KEY=VALUE, got an item without a key (the {_ordinal(number)} {flag}, "
                f"{len(item)} characters)",
                param_hint=flag,
            )
        out[key.strip()] = value
    return out


def _ordinal(n: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``, ... ``11th``, ``21st``.

    >>> [_ordinal(n) for n in (1, 2, 3, 4, 11, 12, 21)]
    ['1st', '2nd', '3rd', '4th', '11th', '12th', '21st']
    """
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _backends_help() -> str:
    from agent.vlm import VLMS
    from generators import GENERATORS

    gens = "; ".join(f"{k} ({v})" if v else k for k, v in GENERATORS.describe().items())
    vlms = "; ".join(f"{k} ({v})" if v else k for k, v in VLMS.describe().items())
    return (
        "Run the VLM-guided refinement loop over a dataset in the Physics-IQ layout; rerun the same command "
        f"to resume.\n\nGenerators: {gens}.\n\nVLMs: offline (motion-grounded rule-based critic, not neural); {vlms}."
    )


def _prompt_sets_help() -> str:
    # Module level: the option annotations are strings evaluated against this module's globals.
    from prompts import builtin_sets  # a folder listing, cheap enough for --help

    return f"Prompt set: built-in ({', '.join(builtin_sets())}) or a folder of templates \\[default]."


def _print_table(summary: dict[str, Any], console: Any) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="Physics-IQ score (100 = as good as a second real take)", title_justify="left")
    # Numbers never wrap; long scenario names are cut and the stop reason is shown by its kind only (the
    # full text is in summary.json), so the table stays readable in an 80-column terminal.
    table.add_column("scenario", overflow="ellipsis", ratio=1, min_width=12)
    for label in VARIANT_LABELS.values():
        table.add_column(label, justify="right", min_width=5)
    table.add_column("phys. var.", justify="right", min_width=4)
    table.add_column("loops", justify="right", min_width=2)
    table.add_column("stop", overflow="ellipsis", min_width=6)

    def fmt(value: Any) -> str:
        return "-" if value is None else f"{value:.2f}"

    for entry in summary["scenarios"]:
        table.add_row(
            entry["scenario"],
            *(fmt(entry.get(k)) for k in VARIANT_LABELS),
            fmt(entry.get("physical_variance")),
            str(entry["loops"]),
            entry["stop_reason"].split(":", 1)[0],
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
    for entry in summary["scenarios"]:
        if entry.get("failed_generations"):
            errors = escape("; ".join(entry.get("generation_errors", [])))  # error text is not markup
            console.print(
                f"[yellow]{escape(entry['scenario'])}: {entry['failed_generations']} generation(s) failed[/] "
                f"({errors}); stop: {escape(entry['stop_reason'])}",
                highlight=False,
            )
    accounting = []
    if overall.get("refinement_gain") is not None:
        accounting.append(f"refinement gain (honest - best of N): {overall['refinement_gain']:+.2f}")
    if overall.get("selection_gain") is not None:
        accounting.append(f"selection gain (best of N - loop 1): {overall['selection_gain']:+.2f}")
    if overall.get("selection_pairs"):
        accounting.append(
            f"selection accuracy: {100 * overall['selection_accuracy']:.0f}% of {overall['selection_pairs']} "
            "attempt pairs ordered like Physics-IQ"
        )
    if accounting:
        console.print("; ".join(accounting), highlight=False)
    notes = []
    if not summary["generator_is_neural"]:
        notes.append("generator: offline physics-prior stand-in (not a neural model)")
    if not summary["critic_is_neural"]:
        notes.append("critic: offline motion-grounded rules (not a neural model)")
    notes.append("oracle picks with ground truth: an upper bound, not an honest result")
    console.print("[dim]" + "; ".join(notes) + "[/]")
    console.print(f"run directory: [bold]{summary['run_dir']}[/]")


#: Generator slots listed one per line in the live display (the busy ones first); the rest are counted.
SHOWN_SLOTS = 8


def generator_lines(pool: Any, limit: int = SHOWN_SLOTS) -> list[str]:
    """What the generators are doing, for the live display: a summary line (instances or Ray actors, busy,
    calls waiting, busy seconds -- GPU-seconds when each actor holds a GPU), then one line per slot.

    >>> from agent.pool import Slot
    >>> class Pool:
    ...     actor_names = ["a", "b"]
    ...     def slots(self): return [Slot(0, "actor 0 @ n1 GPU 0", "#12 loop 2 seed 1", 3, 30.5), Slot(1, "actor 1 @ n1 GPU 1", "", 2, 20.0)]
    ...     def waiting(self): return 4
    ...     def uses_gpus(self): return True
    >>> print("\\n".join(generator_lines(Pool())))
    generators: 2 Ray actor(s), 1 busy, 4 call(s) waiting, 50.5 GPU-s
      actor 0 @ n1 GPU 0: #12 loop 2 seed 1 (3 calls, 30.5 s)
      actor 1 @ n1 GPU 1: idle (2 calls, 20.0 s)
    """
    slots = pool.slots()
    ray = getattr(pool, "actor_names", None) is not None
    busy = [s for s in slots if s.busy]
    seconds = sum(s.busy_s for s in slots)
    unit = "GPU-s" if ray and pool.uses_gpus() else "s busy"
    kind = f"{len(pool.actor_names)} Ray actor(s)" if ray else f"{len(slots)} slot(s)"
    lines = [f"generators: {kind}, {len(busy)} busy, {pool.waiting()} call(s) waiting, {seconds:.1f} {unit}"]
    shown = sorted(slots, key=lambda s: (not s.busy, s.index))[:limit]
    for slot in sorted(shown, key=lambda s: s.index):
        where = slot.device or f"slot {slot.index}"
        lines.append(f"  {where}: {slot.busy or 'idle'} ({slot.calls} calls, {slot.busy_s:.1f} s)")
    if len(slots) > limit:
        lines.append(f"  ... {len(slots) - limit} more")
    return lines


def _shows_generators(pool: Any) -> bool:
    """Ray actors, or several local instances that each serve one call (a shared concurrent-safe instance's
    slots only count calls: nothing to watch)."""
    if pool is None or not hasattr(pool, "slots"):
        return False
    if getattr(pool, "actor_names", None) is not None:
        return True
    return not getattr(pool, "concurrent_safe", True) and getattr(pool, "capacity", 1) > 1


class _LiveDisplay:
    """The live rich display of a run on stderr: scenarios done (with ETA), what each worker is doing
    (scenario, loop, attempts), VLM tokens and estimated cost, and -- with Ray actors or several generator
    instances -- what each generator is generating, the calls waiting and the busy (GPU) seconds. stdout stays
    free for ``--json``."""

    def __init__(self, console: Any, total: int, pool: Any = None) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        display = self

        class _Progress(Progress):
            def get_renderables(self) -> Any:
                yield from super().get_renderables()
                if _shows_generators(display.pool):  # redrawn with the bar, a few times a second
                    yield Text("\n".join(generator_lines(display.pool)), style="dim")

        self.pool = pool
        self.progress = _Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[usage]}"),
            console=console,
            transient=False,
        )
        self.task = self.progress.add_task("scenarios", total=total, usage="")
        self.active: dict[int, str] = {}
        self.attempts: dict[int, int] = {}
        self.meter: Any = None
        self.lock = threading.Lock()

    def __enter__(self) -> _LiveDisplay:
        self.progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.__exit__(None, None, None)

    def on_event(self, event: dict[str, Any]) -> None:
        # Worker threads (--jobs) report concurrently: one at a time, or the shared dicts change under us.
        with self.lock:
            self._on_event(event)

    def _on_event(self, event: dict[str, Any]) -> None:
        take1_id = event.get("take1_id")
        node = event.get("node", "")
        if take1_id is None:
            return
        if node == "generate" and not event.get("error"):
            self.attempts[take1_id] = self.attempts.get(take1_id, 0) + 1
        if node == "scenario_done":  # a refinement's thread, or its best-of-N baseline's
            self.active.pop(take1_id, None)
            self.progress.advance(self.task)
        else:
            loop = f" loop {event['loop']}" if "loop" in event else ""
            variant = " best-of-N" if event.get("variant") else ""
            self.active[take1_id] = (
                f"#{take1_id}{variant}{loop} {node} ({self.attempts.get(take1_id, 0)} att.)"
            )
        usage = ""
        if self.meter is not None:
            snap = self.meter.snapshot()
            approx = "~" if snap["estimated_calls"] else ""
            usage = f"VLM {approx}{snap['tokens']} tok ${snap['cost_usd']:.4f}"
        current = " | ".join(self.active[k] for k in sorted(self.active)[:3])
        self.progress.update(
            self.task, description=f"scenarios [{current}]" if current else "scenarios", usage=usage
        )


def _print_usage(summary: dict[str, Any], console: Any) -> None:
    usage = summary.get("usage", {})
    if usage.get("calls"):
        approx = " (estimated for some calls)" if usage.get("estimated_calls") else ""
        unpriced = (
            f"; {usage['unpriced_calls']} call(s) without a price" if usage.get("unpriced_calls") else ""
        )
        console.print(
            f"VLM: {usage['calls']} call(s), {usage['tokens']} token(s){approx}, "
            f"${usage['cost_usd']:.4f}{unpriced}"
        )
    if summary.get("status") == "stopped":
        console.print(
            f"[bold yellow]stopped early[/] ({summary['stopped_by']}); {len(summary['unfinished'])} scenario(s) "
            "unfinished: rerun the same command (with a larger budget) to resume"
        )


def _run(config: Any, run_dir: Path, as_json: bool, limits: Any = None) -> None:
    from rich.console import Console

    from agent.refine import Refinement

    console = Console(stderr=True)
    refinement = Refinement(config, run_dir, limits=limits)
    threads = len(refinement.pairs) * (2 if refinement.best_of_n else 1)  # + the best-of-N baselines
    with _LiveDisplay(console, threads, refinement.generators) as display:
        display.meter = refinement.meter
        refinement.on_event = display.on_event
        summary = refinement.run_all()
    if as_json:
        typer.echo(json.dumps(summary, indent=2))
        _print_usage(summary, console)
    else:
        out = Console()
        _print_table(summary, out)
        _print_usage(summary, out)
    _warn_failures(summary, console)
    if summary["status"] == "failed" or summary.get("stopped_by", "").startswith("backend:"):
        raise typer.Exit(1)


def _warn_failures(summary: dict[str, Any], console: Any) -> None:
    """On stderr, whatever the output format: failed generations, and scenarios left without an attempt."""
    from rich.markup import escape

    failed = summary.get("failed_generations", 0)
    empty = summary.get("scenarios_without_attempts", [])
    if failed:
        console.print(
            f"[bold yellow]warning:[/] {failed} generation(s) failed"
            + (
                f"; no successful attempt in {len(empty)} scenario(s): {escape(', '.join(empty))}"
                if empty
                else ""
            )
            + " (errors in summary.json and trace.jsonl)",
            highlight=False,
        )
    if summary["status"] == "failed":
        console.print(
            "[bold red]run failed:[/] a scenario without any successful generation", highlight=False
        )


def register(app: typer.Typer) -> None:
    """Add ``refine`` and ``demo`` to the CLI."""

    @app.command(help=_backends_help())
    def refine(
        dataset: Annotated[
            Path | None,
            typer.Option("--dataset", help="Dataset folder (descriptions.csv, split-videos/...). Required."),
        ] = None,
        run_dir: Annotated[
            Path | None, typer.Option("--run-dir", help="Run directory (created; rerun to resume). Required.")
        ] = None,
        config_file: Annotated[
            Path | None,
            typer.Option(
                "--config",
                help="Settings file (.toml/.yaml) with the option names below; the command line wins.",
            ),
        ] = None,
        fps: Annotated[int | None, typer.Option("--fps", help="Benchmark frame rate to work at [8].")] = None,
        # Defaults in help texts are written \[like-this]: rich markup would take [like-this] for a style tag
        # and print nothing.
        mode: Annotated[
            str | None,
            typer.Option("--mode", help=r"i2v (switch frame only) or v2v (conditioning clip) \[v2v]."),
        ] = None,
        generator: Annotated[
            str | None, typer.Option("--generator", help=r"Generator name (see above) \[physics-prior].")
        ] = None,
        vlm: Annotated[
            str | None, typer.Option("--vlm", help=r"'offline' or a VLM backend name \[offline].")
        ] = None,
        loops: Annotated[int | None, typer.Option("--loops", help="Maximum refinement loops [4].")] = None,
        seeds: Annotated[int | None, typer.Option("--seeds", help="Attempts (seeds) per loop [2].")] = None,
        seed: Annotated[int | None, typer.Option("--seed", help="Base seed [0].")] = None,
        scenarios: Annotated[
            str | None, typer.Option("--scenarios", help="Comma-separated scenario slugs or IDs.")
        ] = None,
        categories: Annotated[
            str | None,
            typer.Option(
                "--categories", help="Comma-separated categories, e.g. 'Solid Mechanics,Magnetism'."
            ),
        ] = None,
        prompt_set: Annotated[
            str | None,
            typer.Option(
                "--prompt-set",
                help=_prompt_sets_help(),
            ),
        ] = None,
        model: Annotated[str | None, typer.Option("--model", help="Generator model id or path.")] = None,
        dtype: Annotated[str | None, typer.Option("--dtype", help="Generator dtype.")] = None,
        device: Annotated[
            str | None,
            typer.Option(
                "--device",
                help="Generator device(s): one generator instance per device, e.g. cuda:0,cuda:1; each "
                "instance serves one generation at a time (a diffusers pipeline cannot overlap calls).",
            ),
        ] = None,
        devices: Annotated[
            int | None,
            typer.Option("--devices", help="Use N GPUs (cuda:0..N-1), one generator instance each."),
        ] = None,
        generator_workers: Annotated[
            int | None,
            typer.Option(
                "--generator-workers",
                help="Generator instances (default: one per device); a generator safe for concurrent calls "
                "(physics-prior, folder, command) shares one instance between this many calls. With "
                "--executor ray: the number of actors (default: as many as the cluster's resources hold).",
            ),
        ] = None,
        executor: Annotated[
            str | None,
            typer.Option(
                "--executor",
                help="Where generation runs: 'local' (this process) or 'ray' (Ray actors, one generator "
                "each, on this machine or a cluster; docs/ray.md) \\[local].",
            ),
        ] = None,
        ray_address: Annotated[
            str | None,
            typer.Option(
                "--ray-address",
                help="Ray cluster to join with --executor ray: auto, HOST:PORT or ray://HOST:PORT "
                "(default: RAY_ADDRESS, else Ray started on this machine).",
            ),
        ] = None,
        generator_resources: Annotated[
            list[str] | None,
            typer.Option(
                "--generator-resources",
                help="What each Ray actor holds, KEY=VALUE, repeatable: num_gpus, num_cpus, memory, a custom "
                "resource, or max_concurrency (calls at once, concurrent-safe generators only) "
                "\\[num_cpus=1, plus num_gpus=1 for a generator that takes a device on a GPU cluster].",
            ),
        ] = None,
        vlm_model: Annotated[str | None, typer.Option("--vlm-model", help="VLM model name.")] = None,
        base_url: Annotated[str | None, typer.Option("--base-url", help="VLM API base URL.")] = None,
        generator_opt: Annotated[
            list[str] | None, typer.Option("--generator-opt", help="KEY=VALUE, repeatable.")
        ] = None,
        vlm_opt: Annotated[list[str] | None, typer.Option("--vlm-opt", help="KEY=VALUE, repeatable.")] = None,
        view_opt: Annotated[
            list[str] | None,
            typer.Option(
                "--view-opt",
                help="What a VLM critique shows, KEY=VALUE, repeatable: images, context, dense, contact_sheet, "
                "crop, crop_side, max_side (docs/real-models.md).",
            ),
        ] = None,
        no_grounding: Annotated[
            bool, typer.Option("--no-grounding", help="Do not give VLMs tracker text.")
        ] = False,
        no_score: Annotated[bool, typer.Option("--no-score", help="Skip Physics-IQ scoring.")] = False,
        selector: Annotated[
            str | None,
            typer.Option(
                "--selector",
                help="Honest ensemble pick, no ground truth: 'critic' (best critique), 'judge' (pairwise VLM), "
                "a verifier (motion-continuity, background-stability, feature-path, feature-path-encoder, "
                "world-model-surprise), 'critic+NAME' (NAME breaks the critic's ties) or "
                "'mean:NAME=W,NAME=W' (weighted mean rank) \\[critic; critic+feature-path for the offline stack].",
            ),
        ] = None,
        critic_signals: Annotated[
            str | None,
            typer.Option(
                "--critic-signals",
                help="Comma-separated verifiers whose measurements a VLM critique is told (e.g. "
                "motion-continuity,background-stability); options through --selector-opt NAME.KEY=VALUE.",
            ),
        ] = None,
        selector_opt: Annotated[
            list[str] | None,
            typer.Option(
                "--selector-opt",
                help="KEY=VALUE for the selector's verifiers (NAME.KEY=VALUE for one of them), repeatable.",
            ),
        ] = None,
        best_of_n_baseline: Annotated[
            bool | None,
            typer.Option(
                "--best-of-n-baseline/--no-best-of-n-baseline",
                help="Also run the equal-budget baseline (the selector over loops x seeds loop-1 attempts) "
                "to report refinement and selection gains apart; doubles the generations \\[on for the "
                "offline stack, off otherwise].",
            ),
        ] = None,
        max_vlm_tokens: Annotated[
            int | None, typer.Option("--max-vlm-tokens", help="Stop once the VLM used this many tokens.")
        ] = None,
        max_cost_usd: Annotated[
            float | None,
            typer.Option("--max-cost-usd", help="Stop once the VLM's estimated cost reaches this."),
        ] = None,
        time_limit: Annotated[
            str | None,
            typer.Option("--time-limit", help="Stop after this wall-clock time (90, 90s, 10m, 1h30m)."),
        ] = None,
        jobs: Annotated[
            int | None, typer.Option("--jobs", help="Scenarios refined concurrently (threads) [1].")
        ] = None,
        repeat: Annotated[
            int,
            typer.Option(
                "--repeat",
                min=1,
                help="Independent runs differing by base seed, --run-dir/<model>-<op|bpp>-run_01..N (4 for a "
                "leaderboard entry) \\[1].",
            ),
        ] = 1,
        descriptions: Annotated[
            str | None,
            typer.Option(
                "--descriptions", help="The dataset's prompt set: op (original) or bpp (best practice)."
            ),
        ] = None,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary on stdout.")] = False,
    ) -> None:
        from agent.settings import resolve_settings

        given: dict[str, Any] = {
            "dataset": dataset,
            "run_dir": run_dir,
            "fps": fps,
            "mode": mode,
            "generator": generator,
            "vlm": vlm,
            "loops": loops,
            "seeds": seeds,
            "seed": seed,
            "scenarios": scenarios,
            "categories": categories,
            "prompt_set": prompt_set,
            "max_vlm_tokens": max_vlm_tokens,
            "max_cost_usd": max_cost_usd,
            "time_limit": time_limit,
            "jobs": jobs,
            "generator_workers": generator_workers,
            "executor": executor,
            "ray_address": ray_address,
            "selector": selector,
            "critic_signals": critic_signals,
            "best_of_n_baseline": best_of_n_baseline,
            "grounding": False if no_grounding else None,
            "score": False if no_score else None,
        }
        cli = {k: (str(v) if isinstance(v, Path) else v) for k, v in given.items() if v is not None}
        if device is not None and devices is not None:
            raise typer.BadParameter(
                "give either --device A,B,... or --devices N, not both", param_hint="--devices"
            )
        if device is not None or devices is not None:
            cli["devices"] = device if device is not None else devices
        gen_opts = {k: v for k, v in {"model": model, "dtype": dtype}.items() if v is not None}
        gen_opts.update(_pairs(generator_opt, "--generator-opt"))
        vlm_opts = {k: v for k, v in {"model": vlm_model, "base_url": base_url}.items() if v is not None}
        vlm_opts.update(_pairs(vlm_opt, "--vlm-opt"))
        if gen_opts:
            cli["generator_options"] = gen_opts
        if vlm_opts:
            cli["vlm_options"] = vlm_opts
        if view_opt:
            cli["view_options"] = _pairs(view_opt, "--view-opt")
        if generator_resources:
            cli["generator_resources"] = _pairs(generator_resources, "--generator-resources")
        if selector_opt:
            cli["selector_options"] = _pairs(selector_opt, "--selector-opt")
        # A SettingsError (like every user error) is shown as one line by the CLI's root group.
        settings = resolve_settings(cli, config_file)
        if descriptions is not None:
            from agent.workflows.repeat import with_descriptions

            settings = with_descriptions(settings, descriptions)
        if repeat > 1:
            from agent.commands.repeat import run_repeated

            run_repeated(settings, repeat, as_json)
            return
        _run(settings.config, settings.run_dir, as_json, settings.limits)

    @app.command()
    def demo(
        out: Annotated[Path, typer.Option("--out", help="Folder for the suite and the run.")] = Path(
            "physrefine-demo"
        ),
        loops: Annotated[int, typer.Option("--loops", help="Maximum refinement loops.")] = 4,
        seeds: Annotated[int, typer.Option("--seeds", help="Attempts per loop.")] = 2,
        scenarios: Annotated[
            str,
            typer.Option(
                "--scenarios", help="Comma-separated synthetic-suite scenarios (default: the demo set)."
            ),
        ] = "",
        jobs: Annotated[int, typer.Option("--jobs", help="Scenarios refined concurrently (threads).")] = 1,
        as_json: Annotated[bool, typer.Option("--json", help="Print one JSON summary on stdout.")] = False,
    ) -> None:
        """The main job offline: build (or reuse) a handful of synthetic-suite scenarios (pymunk, three
        cameras, 8 FPS), refine them with the offline critic and the physics-prior generator (neither is a
        neural model), score, and print loop 1 vs final vs ensembles vs static vs physical variance."""
        from agent.budget import RunLimits
        from agent.refine import DEMO_SCENARIOS
        from agent.runs import RunConfig
        from physics_iq.synthetic import build_suite

        names = [s.strip() for s in scenarios.split(",") if s.strip()] or list(DEMO_SCENARIOS)
        # Reused when the folder holds a suite built with the same arguments (checked via its manifest).
        layout = build_suite(out / "suite", scenarios=names, fps=8, seed=0, jobs=min(2, len(names)))
        config = RunConfig(dataset=str(layout.root.resolve()), fps=8, mode="v2v", loops=loops, seeds=seeds)
        _run(config, out / "run", as_json, RunLimits(jobs=jobs))
