"""The library's exceptions: every error a user can cause is one of these, with a fix in its text."""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from types import ModuleType


class DashaError(Exception):
    """Base class of every error DASHA raises on purpose."""


class ConfigError(DashaError, ValueError):
    """A value given by the user is invalid (out of range, unknown name, missing file)."""


class HardwareError(DashaError, RuntimeError):
    """A device failed, timed out, refused a command or disconnected."""


class DisconnectedError(HardwareError):
    """A device went away mid-use (cable pulled, power lost); reopen it to continue."""


class MissingExtraError(DashaError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def require(module: str, extra: str) -> ModuleType:
    """Import an optional dependency, or fail with the ``pip install`` line that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f'{module!r} is not installed; install it with: pip install "dasha[{extra}]" ({exc})'
        ) from exc


def check_choice(option: str, value: str, choices: Sequence[str]) -> str:
    """``value`` if it is one of ``choices``, else a ``ConfigError`` that lists them."""
    if value not in choices:
        raise ConfigError(f"{option}={value!r}: choose among {', '.join(choices)}")
    return value
