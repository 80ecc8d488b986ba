"""Cameras and lenses, opened by backend name.

Backends register as ``"module:factory"`` strings and are imported only when opened, so a
missing SDK only matters to the user who asks for that backend.
"""

from __future__ import annotations

import importlib
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


def open_camera(name: str, **options: Any) -> Camera:
    """Open a camera backend: ``sim``, ``basler``, ``uvc``, ``replay``."""
    return _load(CAMERA_BACKENDS, "camera", name)(**options)


def open_lens(name: str, camera: Camera | None = None, **options: Any) -> Lens:
    """Open a lens backend: ``sim``/``replay`` (need their camera), ``varioptic-serial``, ``casp``, ``uvc``."""
    return _load(LENS_BACKENDS, "lens", name)(camera=camera, **options)


__all__ = [
    "CAMERA_BACKENDS",
    "LENS_BACKENDS",
    "Camera",
    "Frame",
    "Lens",
    "Range",
    "Roi",
    "open_camera",
    "open_lens",
]
