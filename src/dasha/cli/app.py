"""The root Typer app, the shared error handling and JSON printing of every command."""

from __future__ import annotations

import functools
import importlib
import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from dasha.errors import DashaError
from dasha.io import jsonable

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
err_console = Console(stderr=True)

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
    """Turn a ``DashaError`` into one red line and exit code 2 instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except DashaError as exc:
            # The message is text, not markup: a sidecar hint's [x1, y1, ...] must survive.
            err_console.print(f"[bold red]error:[/] {escape(str(exc))}")
            raise typer.Exit(code=2) from exc

    return wrapper  # type: ignore[return-value]


def print_json(obj: Any) -> None:
    """One JSON object on stdout (for scripts); numpy scalars become plain numbers."""
    sys.stdout.write(json.dumps(obj, default=jsonable) + "\n")
