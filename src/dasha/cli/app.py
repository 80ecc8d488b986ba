"""The root Typer app, the shared error handling and JSON printing of every command."""

from __future__ import annotations

import functools
import importlib
import os
import sys
import traceback
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.text import Text
from typer._click.globals import get_current_context
from typer.exceptions import TyperException

from dasha.cli.checks import check_arguments
from dasha.errors import DashaError
from dasha.io import json_text

app = typer.Typer(
    name="dasha",
    help=(
        "DASHA: a camera that focuses and exposes itself with two hierarchical RL agents.\n\n"
        "Everything runs on the built-in simulated camera by default; real cameras and "
        "lenses are backends (see `dasha devices`)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err_console = Console(stderr=True, highlight=False)
# --debug (or DASHA_DEBUG=1) lets an unexpected exception out with its traceback.
_debug = {"on": os.environ.get("DASHA_DEBUG", "") not in ("", "0")}


@app.callback()
def _root(
    debug: bool = typer.Option(
        False, "--debug", help="Show the Python traceback of an unexpected error."
    ),
) -> None:
    if debug:
        _debug["on"] = True


# Each module adds its commands to `app` when imported (sub-apps or plain commands).
COMMAND_MODULES = [
    "dasha.cli.sim",
    "dasha.cli.perceive",
    "dasha.cli.devices",
    "dasha.cli.agents",
    "dasha.cli.bench",
    "dasha.cli.scenes",
    "dasha.cli.watch",
    "dasha.cli.serve",
]

F = TypeVar("F", bound=Callable[..., Any])


def register_all() -> None:
    for name in COMMAND_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real missing import inside a command module
                raise


def handle_errors(func: F) -> F:
    """The CLI's one error boundary, around every command: the arguments are checked first
    (``dasha.cli.checks``), a ``DashaError`` becomes one line and exit code 2, any other
    exception one line and exit code 1 (its traceback only with ``--debug``)."""
    command = f"{func.__module__}.{func.__name__}"

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            check_arguments(command, kwargs, _flags())
            return func(*args, **kwargs)
        except (typer.Exit, typer.Abort, TyperException, KeyboardInterrupt):
            raise
        except BaseException as exc:
            raise typer.Exit(code=report_error(exc)) from exc

    wrapper.dasha_error_boundary = True  # type: ignore[attr-defined]
    return wrapper  # type: ignore[return-value]


def report_error(exc: BaseException) -> int:
    """Print ``exc`` for a user and return the exit code: 2 for what the user can fix."""
    if isinstance(exc, DashaError):
        print_error(str(exc))
        return 2
    if isinstance(exc, OSError) and exc.filename is not None:
        # A file the user named or a place they pointed at: not a bug in DASHA.
        print_error(f"{exc.filename}: {exc.strerror or exc}")
        return 2
    if isinstance(exc, (SystemExit, GeneratorExit)):
        raise exc
    if _debug["on"]:
        err_console.print(
            Text("".join(traceback.format_exception(exc)), style="red"), soft_wrap=True
        )
    print_error(
        f"unexpected {type(exc).__name__}: {exc} (a bug in DASHA: please report it; "
        "`dasha --debug ...` shows the traceback)"
    )
    return 1


def print_error(message: str) -> None:
    # Text, not markup: a sidecar hint's [x1, y1, ...] and a user's "[/x]" print as typed.
    err_console.print(Text("error: ", style="bold red") + Text(message), soft_wrap=True)


def _flags() -> dict[str, str]:
    """Each parameter's option as the user can type it, from the running command."""
    ctx = get_current_context(silent=True)
    if ctx is None:
        return {}
    return {
        p.name: (p.opts[0] if p.opts and p.opts[0].startswith("-") else p.name.upper())
        for p in ctx.command.params
        if p.name
    }


def print_json(obj: Any) -> None:
    """One JSON object on stdout (for scripts); numpy scalars become plain numbers."""
    sys.stdout.write(json_text(obj) + "\n")
