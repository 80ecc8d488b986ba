"""The ``dasha`` command line: one Typer app, one module per command group.

Command modules import heavy dependencies inside their functions, so ``dasha --help``
stays fast and a missing extra only matters to the command that needs it.
"""

from __future__ import annotations

from dasha.cli.app import app, register_all


def main() -> None:
    register_all()
    app(prog_name="dasha")


__all__ = ["app", "main"]

if __name__ == "__main__":  # pragma: no cover
    main()
