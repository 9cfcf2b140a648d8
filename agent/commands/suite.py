"""``physrefine make-suite`` and ``physrefine suite-preview``: the offline synthetic Physics-IQ-style suite."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

import typer

_SIZE_RE = re.compile(r"^(\d+)x(\d+)$")


def _parse_size(text: str) -> tuple[int, int]:
    match = _SIZE_RE.match(text.strip().lower())
    if not match:
        raise typer.BadParameter(f"expected WIDTHxHEIGHT such as 320x180, got {text!r}", param_hint="--size")
    return int(match[1]), int(match[2])


def make_suite(
    out_dir: Annotated[
        Path,
        typer.Argument(
            help="New (or empty) folder; a previous suite with the same arguments is verified and reused."
        ),
    ],
    scenarios: Annotated[
        str, typer.Option("--scenarios", "-s", help="'all' or comma-separated slugs (see --list).")
    ] = "all",
    fps: Annotated[int, typer.Option("--fps", help="Frame rate: 8, 16, 24 or 30.")] = 8,
    size: Annotated[str, typer.Option("--size", help="Frame size WIDTHxHEIGHT (even, 16:9).")] = "320x180",
    seed: Annotated[int, typer.Option("--seed", min=0, help="Scene variation seed.")] = 0,
    style: Annotated[
        str,
        typer.Option(
            "--style",
            help="The look: classic (default: plain dark backdrop, flat saturated objects), cluttered or room "
            "(bright textured rooms, props and decorations that never move, shaded and patterned objects in "
            "any colour, other framing). The physics of a seed is the same in every look.",
        ),
    ] = "classic",
    jobs: Annotated[
        int | None, typer.Option("--jobs", "-j", min=1, help="Worker processes (default: CPU count).")
    ] = None,
    list_scenarios: Annotated[
        bool, typer.Option("--list", help="List the scenarios and exit (OUT_DIR is not touched).")
    ] = False,
) -> None:
    """Simulate and write the synthetic Physics-IQ-style suite (pymunk physics, ground-truth state)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from physics_iq.synthetic import SCENARIOS, build_suite

    console = Console()
    err = Console(stderr=True)
    if list_scenarios:
        for name, spec in SCENARIOS.items():
            console.print(f"[bold]{name}[/]  ({spec.category})\n  {spec.description}")
        return
    width, height = _parse_size(size)
    # A SuiteError (non-empty folder, other arguments) is shown as one line by the CLI's root group.
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err,
        transient=True,
    ) as progress:
        task = progress.add_task("simulating and rendering", total=None)

        def done(name: str, count: int, total: int) -> None:
            progress.update(task, completed=count, total=total, description=f"done {name}")

        layout = build_suite(
            out_dir,
            scenarios,
            fps=fps,
            size=(width, height),
            seed=seed,
            style=style,
            jobs=jobs,
            on_scenario_done=done,
        )
    n_scen = len(layout.scenarios())
    console.print(
        f"wrote {len(layout.rows)} rows ({n_scen} scenarios x 3 views x 2 takes) at {fps} FPS, "
        f"{width}x{height}, seed {seed}, style {style} into {layout.root}"
    )


def suite_preview(
    out_png: Annotated[Path, typer.Argument(help="PNG file to write.")],
    scenarios: Annotated[
        str,
        typer.Option(
            "--scenarios", "-s", help="'all', 'per-category' (first of each) or comma-separated slugs."
        ),
    ] = "per-category",
    perspective: Annotated[str, typer.Option("--perspective", help="left, center or right.")] = "center",
    size: Annotated[str, typer.Option("--size", help="Tile size WIDTHxHEIGHT.")] = "224x126",
    seed: Annotated[int, typer.Option("--seed", min=0)] = 0,
    style: Annotated[str, typer.Option("--style", help="The look: classic, cluttered or room.")] = "classic",
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace an existing PNG.")] = False,
) -> None:
    """Write a contact sheet: a strip of frames (switch frame, then the outcome) per scenario."""
    from rich.console import Console

    from physics_iq.layout import PERSPECTIVES
    from physics_iq.synthetic import SCENARIOS
    from physics_iq.synthetic.looks import LOOKS
    from physics_iq.synthetic.preview import preview_sheet, write_preview

    err = Console(stderr=True)
    view = f"perspective-{perspective}"
    if view not in PERSPECTIVES:
        err.print(f"[red]error:[/] --perspective must be left, center or right, got {perspective!r}")
        raise typer.Exit(2)
    if style not in LOOKS:
        err.print(f"[red]error:[/] --style must be one of {', '.join(LOOKS)}, got {style!r}")
        raise typer.Exit(2)
    if scenarios == "all":
        names = list(SCENARIOS)
    elif scenarios == "per-category":
        first: dict[str, str] = {}
        for name, spec in SCENARIOS.items():
            first.setdefault(spec.category, name)
        names = list(first.values())
    else:
        names = [s.strip() for s in scenarios.split(",") if s.strip()]
        unknown = [n for n in names if n not in SCENARIOS]
        if unknown:
            err.print(f"[red]error:[/] unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
            raise typer.Exit(2)
    if out_png.exists() and not overwrite:
        err.print(f"[red]error:[/] {out_png} exists; pass --overwrite to replace it")
        raise typer.Exit(2)
    image = preview_sheet(names, perspective=view, size=_parse_size(size), seed=seed, style=style)
    write_preview(out_png, image, overwrite=overwrite)
    Console().print(f"wrote {out_png} ({image.shape[1]}x{image.shape[0]}, {len(names)} scenario(s))")


def register(app: typer.Typer) -> None:
    """Add ``make-suite`` and ``suite-preview`` to the CLI."""
    app.command("make-suite")(make_suite)
    app.command("suite-preview")(suite_preview)
