"""The ``physrefine`` command line. Only this module (and ``agent/commands``) reads ``sys.argv``.

Each sub-command lives in its own module under ``agent/commands`` and registers itself here.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import typer
from rich.console import Console
from rich.logging import RichHandler
from typer.core import TyperGroup

from agent.commands import COMMAND_MODULES

logger = logging.getLogger(__name__)

#: Exceptions that mean "the input is wrong" (a path, a name, a setting), not "physrefine is broken": each is
#: raised with a message naming the file/field and what was expected, so it is shown as that one line.
USER_ERRORS: tuple[tuple[str, str], ...] = (
    ("physics_iq.errors", "PhysicsIQError"),  # dataset, video, validation, suite, run-data, submit errors
    ("agent.settings", "SettingsError"),
    ("agent.runs", "RunConfigError"),  # a run directory made with other settings
    ("agent.prompting", "PromptSetError"),
    ("physics_iq.registry", "UnknownNameError"),
    ("physics_iq.registry", "MissingExtraError"),
    ("physics_iq.registry", "BackendOptionError"),  # an option or checkpoint a backend cannot be built from
    ("agent.vlm.base", "VLMError"),  # e.g. no API key in the environment
    ("agent.workflows.compare", "CompareError"),
    ("agent.workflows.sweep", "SweepError"),
    ("agent.selection", "SelectionError"),  # a selector spec naming no selector
)


def is_user_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an expected user error (see :data:`USER_ERRORS`) or a missing/existing file.

    Classes are looked up only in modules already imported: an exception cannot be an instance of a class
    that was never loaded, and the error path then imports nothing (a broken import stays a traceback).
    """
    if isinstance(exc, FileNotFoundError | FileExistsError):
        return True
    for module_name, name in USER_ERRORS:
        module = sys.modules.get(module_name)
        if module is not None and isinstance(exc, getattr(module, name)):
            return True
    return False


def user_error_message(exc: BaseException) -> str:
    """The line shown for a user error: its own message, or ``PATH: reason`` for a bare OS error.

    >>> user_error_message(FileNotFoundError(2, "No such file or directory", "data/x.csv"))
    'data/x.csv: No such file or directory'
    >>> user_error_message(FileExistsError("out: exists; refusing to overwrite it"))
    'out: exists; refusing to overwrite it'
    """
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    return str(exc)


class _Group(TyperGroup):
    """The root command group: turns a user error raised by any sub-command into ``error: ...`` and exit
    code 2 (like click's own usage errors), in this one place rather than in every command."""

    # ``Any``: typer vendors click, and the Context type it passes lives in a private module (typer._click).
    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except Exception as exc:
            if not is_user_error(exc):
                raise  # a bug: typer shows the traceback
            from rich.markup import escape

            # -vv still shows where it came from; by default the one line is enough to fix the input.
            logger.debug("user error", exc_info=True)
            Console(stderr=True).print(
                "[red]error:[/] " + escape(user_error_message(exc)), soft_wrap=True, highlight=False
            )
            raise typer.Exit(2) from exc


app = typer.Typer(
    cls=_Group,
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
