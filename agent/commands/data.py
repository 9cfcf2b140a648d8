"""``physrefine fetch-data``: download the Physics-IQ data (original or Verified), resumable and checked."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

if TYPE_CHECKING:
    from physics_iq.fetch import FetchProgress


def _rich_progress(console: Any) -> tuple[Any, FetchProgress]:
    """The download's rich progress bar (bytes, files, speed, time left) on stderr, and the callbacks that
    drive it. Built here so that the CLI's import stays free of the download code."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    from physics_iq.fetch import FetchProgress

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
        TextColumn("{task.fields[files]}"),
        console=console,
        transient=False,
    )
    task = progress.add_task("fetching", total=None, files="")

    class Callbacks(FetchProgress):
        files_total = 0
        files_done = 0

        def start(self, files: int, total_bytes: int) -> None:
            self.files_total = files
            progress.update(task, total=total_bytes, files=f"0/{files} files")

        def advance(self, n_bytes: int) -> None:
            progress.advance(task, n_bytes)

        def file_done(self, path: str) -> None:
            self.files_done += 1
            progress.update(task, files=f"{self.files_done}/{self.files_total} new files")

    return progress, Callbacks()


def fetch_data(
    dest: Annotated[
        Path, typer.Argument(help="Dataset folder to create or complete (an unfinished one resumes).")
    ],
    variant: Annotated[
        str,
        typer.Option(
            "--variant",
            help="verified (Physics-IQ Verified, Hugging Face Hub; needs the [data] extra and a Hub login) or "
            "original (the public bucket) \\[verified].",
        ),
    ] = "verified",
    fps: Annotated[
        list[int] | None,
        typer.Option("--fps", help="Frame rate to fetch: 8, 16, 24 or 30; repeatable \\[8]."),
    ] = None,
    views: Annotated[
        str | None,
        typer.Option(
            "--views", help="Comma-separated perspectives to fetch, e.g. left,center \\[all three]."
        ),
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="original: re-check the MD5 of files already present too.")
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the dataset marker as JSON on stdout.")
    ] = False,
) -> None:
    """Download the Physics-IQ benchmark data into DEST: the split clips, real masks and switch frames at the
    chosen frame rates, plus the op (and for Verified the bpp) descriptions. Resumable (rerun the same
    command), checked against the layout the descriptions name, and marked complete only when it is. The
    Verified set is gated: log in with `hf auth login` or set HF_TOKEN; physrefine takes no token option."""
    from rich.console import Console

    from physics_iq.fetch import fetch_original, fetch_verified
    from physics_iq.layout import VARIANTS

    if variant not in VARIANTS:
        raise typer.BadParameter(
            f"expected one of {', '.join(VARIANTS)}, got {variant!r}", param_hint="--variant"
        )
    err = Console(stderr=True)
    chosen = [v.strip() for v in views.split(",") if v.strip()] if views else None
    bar, display = _rich_progress(err)
    # FetchError and MissingExtraError are shown as one ``error:`` line by the CLI's root group.
    with bar:
        if variant == "original":
            result = fetch_original(dest, fps or [8], chosen, progress=display, verify=verify)
        else:
            result = fetch_verified(dest, fps or [8], chosen, progress=display)
    if as_json:
        typer.echo(json.dumps(result.marker, indent=2))
    err.print(
        f"{dest}: Physics-IQ {result.variant} complete, {result.files} file(s) checked "
        f"({result.downloaded} downloaded now, {result.present} already there); parts: "
        + ", ".join(f"{k} {v}" for k, v in result.parts.items())
    )
    if any(v == "absent" for v in result.parts.values()):
        err.print(
            "[yellow]note:[/] the source has no "
            + " and no ".join(k for k, v in result.parts.items() if v == "absent")
            + " at these frame rates (conditioning clips are needed for --mode v2v; without real masks, compat "
            "mode computes them from the clips as the official evaluator does)"
        )


def register(app: typer.Typer) -> None:
    """Add ``fetch-data`` to the CLI."""
    app.command("fetch-data")(fetch_data)
