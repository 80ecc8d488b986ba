"""The ``dasha`` command line: one Typer app, one module per command group.

Command modules import heavy dependencies inside their functions, so ``dasha --help``
stays fast and a missing extra only matters to the command that needs it.
"""

from __future__ import annotations

import sys

from dasha.cli.app import app, register_all, report_error


def main() -> None:
    try:
        register_all()
        app(prog_name="dasha")
    except KeyboardInterrupt:
        sys.exit(130)
    except Exception as exc:  # outside every command's boundary (imports, parsing)
        sys.exit(report_error(exc))


__all__ = ["app", "main"]

if __name__ == "__main__":  # pragma: no cover
    main()
