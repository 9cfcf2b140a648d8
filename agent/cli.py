"""The ``physrefine`` command line. Only this module (and ``agent/commands``) reads ``sys.argv``.

Each sub-command lives in its own module under ``agent/commands`` and registers itself here.
"""

from __future__ import annotations

import logging

import typer
from rich.console import Console
from rich.logging import RichHandler

from agent.commands import COMMAND_MODULES

app = typer.Typer(
    name="physrefine",
    help="Make video generation models obey physics by talking to them.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def _configure(
    verbose: int = typer.Option(
        0, "--verbose", "-v", count=True, help="More log output (-v info, -vv debug)."
    ),
) -> None:
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(
        level=level,
        format="%(message)s",
        handlers=[RichHandler(show_path=False, console=Console(stderr=True))],
        force=True,
    )


for _module in COMMAND_MODULES:
    _module.register(app)


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
