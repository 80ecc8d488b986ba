"""Cameras and lenses, opened by backend name.

Backends register as ``"module:factory"`` strings and are imported only when opened, so a
missing SDK only matters to the user who asks for that backend.
"""

from __future__ import annotations

import importlib
import inspect
import math
import typing
from collections.abc import Mapping
from typing import Any

from dasha.errors import ConfigError
from dasha.hardware.base import Camera, Frame, Lens, Range, Roi

CAMERA_BACKENDS: dict[str, str] = {
    "sim": "dasha.hardware.sim:open_sim_camera",
    "basler": "dasha.hardware.basler:open_basler_camera",
    "uvc": "dasha.hardware.uvc:open_uvc_camera",
    "replay": "dasha.hardware.replay:open_replay_camera",
}
LENS_BACKENDS: dict[str, str] = {
    "sim": "dasha.hardware.sim:open_sim_lens",
    "varioptic-serial": "dasha.hardware.varioptic:open_varioptic_lens",
    "casp": "dasha.hardware.casp:open_casp_lens",
    "uvc": "dasha.hardware.uvc:open_uvc_lens",
    "replay": "dasha.hardware.replay:open_replay_lens",
}


def _load(table: dict[str, str], kind: str, name: str) -> Any:
    if name not in table:
        raise ConfigError(f"unknown {kind} backend {name!r}; choose one of: {', '.join(table)}")
    module, _, factory = table[name].partition(":")
    try:
        mod = importlib.import_module(module)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.startswith("dasha"):
            raise ConfigError(f"{kind} backend {name!r} is not available in this version") from exc
        raise
    return getattr(mod, factory)


def declared_options(factory: Any) -> dict[str, inspect.Parameter]:
    """The keyword options a backend factory takes, following ``**options`` into the class
    it returns (``open_basler_camera(**options) -> BaslerCamera(**options)``)."""
    params = {
        n: p
        for n, p in inspect.signature(factory).parameters.items()
        if n != "camera" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
    }
    if any(p.kind is p.VAR_KEYWORD for p in inspect.signature(factory).parameters.values()):
        returned = typing.get_type_hints(factory).get("return")
        if inspect.isclass(returned):
            params = {**declared_options(returned.__init__), **params}
        params.pop("self", None)
    return params


def check_options(kind: str, name: str, options: Mapping[str, Any]) -> None:
    """Refuse an option the backend does not declare, or a value of the wrong type or sign,
    before the device is touched: ``--set lens.timeout_s=-1`` is a user error, not a crash."""
    factory = _load(LENS_BACKENDS if kind == "lens" else CAMERA_BACKENDS, kind, name)
    declared = declared_options(factory)
    hints = typing.get_type_hints(factory)
    for key, value in options.items():
        if key not in declared:
            raise ConfigError(
                f"{kind} backend {name!r} has no option {key!r}; it takes: "
                f"{', '.join(sorted(declared)) or 'none'}"
            )
        expected = hints.get(key) or _class_hint(factory, key)
        _check_value(f"{kind}.{key}", value, expected)


def _class_hint(factory: Any, key: str) -> Any:
    returned = typing.get_type_hints(factory).get("return")
    if inspect.isclass(returned):
        return typing.get_type_hints(returned.__init__).get(key)
    return None


# What a --set value can be (JSON); an option of another type is set from Python only.
_PLAIN = (int, float, str, bool, list, tuple, dict, type(None))


def _check_value(option: str, value: Any, expected: Any) -> None:
    allowed = typing.get_args(expected) or (expected,)
    given = [t for t in allowed if t is not type(None)]
    if Roi in given and isinstance(value, (list, tuple)):  # the backends build it from a list
        if not 2 <= len(value) <= 4 or not all(isinstance(v, int) and v >= 0 for v in value):
            raise ConfigError(
                f"{option}={value!r}: give [width, height] or [width, height, offset_x, "
                "offset_y] in pixels"
            )
        return
    if expected is not None and not any(t in _PLAIN or t is Any for t in given):
        names = " or ".join(getattr(t, "__name__", str(t)) for t in given)
        raise ConfigError(f"{option} takes a {names}: set it from Python, not with --set")
    numeric = [t for t in allowed if t in (int, float)]
    if numeric and not (set(allowed) - {int, float, type(None)}):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            if value is None and type(None) in allowed:
                return
            raise ConfigError(f"{option}={value!r}: give a number")
        if int in numeric and float not in numeric and not isinstance(value, int):
            raise ConfigError(f"{option}={value!r}: give a whole number")
        if not math.isfinite(value) or value < 0:
            # Times, counts, rates and voltages of a device are never negative.
            raise ConfigError(f"{option}={value!r}: give a finite number, at least 0")
        if option.endswith("timeout_s") and value == 0:
            raise ConfigError(f"{option}=0: a timeout must be greater than 0")
    elif allowed == (str,) and not isinstance(value, str):
        raise ConfigError(f"{option}={value!r}: give a text value")


def open_camera(name: str, **options: Any) -> Camera:
    """Open a camera backend: ``sim``, ``basler``, ``uvc``, ``replay``."""
    check_options("camera", name, options)
    return _load(CAMERA_BACKENDS, "camera", name)(**options)


def open_lens(name: str, camera: Camera | None = None, **options: Any) -> Lens:
    """Open a lens backend: ``sim``/``replay`` (need their camera), ``varioptic-serial``, ``casp``, ``uvc``."""
    check_options("lens", name, options)
    return _load(LENS_BACKENDS, "lens", name)(camera=camera, **options)


__all__ = [
    "CAMERA_BACKENDS",
    "LENS_BACKENDS",
    "Camera",
    "Frame",
    "Lens",
    "Range",
    "Roi",
    "check_options",
    "open_camera",
    "open_lens",
]
