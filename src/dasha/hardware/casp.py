"""The Varioptic lens through the vendor's driver library (``ComCasp64.dll``) via ctypes.

This is how the paper's code drove the lens: ``Casp_OpenCOM()`` then
``Casp_SetFocusVoltage(volts)``. The library ships with the lens software and is not
redistributable, so the user gives its path (``dll_path=`` or ``DASHA_CASP_DLL``).

Signatures used (the vendor's header is not public, so these are stated assumptions)::

    int    Casp_OpenCOM(void);                  required
    int    Casp_SetFocusVoltage(double volts);  required
    int    Casp_CloseCOM(void);                 optional, called on close if exported
    double Casp_GetFocusVoltage(void);          optional, used by ``focus`` if exported

Every ``int`` result is checked against ``success_code`` (0 unless told otherwise).
"""

from __future__ import annotations

import ctypes
import os
from typing import Any

from dasha.errors import ConfigError, HardwareError
from dasha.hardware.base import Camera, Lens, Range

FOCUS_MIN_V = 24.0
FOCUS_MAX_V = 70.0
SETTLE_S = 0.05  # liquid lens response time: a few tens of ms

# name -> (restype, argtypes, required)
_SIGNATURES: dict[str, tuple[Any, list[Any], bool]] = {
    "Casp_OpenCOM": (ctypes.c_int, [], True),
    "Casp_SetFocusVoltage": (ctypes.c_int, [ctypes.c_double], True),
    "Casp_CloseCOM": (ctypes.c_int, [], False),
    "Casp_GetFocusVoltage": (ctypes.c_double, [], False),
}


def load_casp_library(dll_path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load the library and return its functions with argtypes/restype set (missing optional
    ones are left out)."""
    if not os.path.isfile(dll_path):
        raise ConfigError(f"no Casp driver library at {str(dll_path)!r} (give dll_path=...)")
    try:
        library = ctypes.CDLL(os.fspath(dll_path))
    except OSError as exc:
        raise HardwareError(
            f"cannot load the Casp driver library {str(dll_path)!r}: {exc}"
        ) from exc
    functions: dict[str, Any] = {}
    for name, (restype, argtypes, required) in _SIGNATURES.items():
        function = getattr(library, name, None)
        if function is None:
            if required:
                raise HardwareError(f"{str(dll_path)!r} does not export {name}; is it ComCasp?")
            continue
        function.restype, function.argtypes = restype, argtypes
        functions[name] = function
    return functions


class CaspLens(Lens):
    """A Varioptic lens driven through the vendor library; focus in volts."""

    name = "casp"
    unit = "V"

    def __init__(
        self,
        dll_path: str | os.PathLike[str],
        *,
        success_code: int = 0,
        settle_s: float = SETTLE_S,
        focus_min_v: float = FOCUS_MIN_V,
        focus_max_v: float = FOCUS_MAX_V,
        safe_focus_v: float | None = None,
    ) -> None:
        device = Range(FOCUS_MIN_V, FOCUS_MAX_V, "V")
        self._range = Range(
            device.check(focus_min_v, "focus_min_v"), device.check(focus_max_v, "focus_max_v"), "V"
        )
        self._safe_v = self._range.check(
            self._range.min if safe_focus_v is None else safe_focus_v, "safe_focus_v"
        )
        self._settle_s = float(settle_s)
        self._success = int(success_code)
        self.dll_path = os.fspath(dll_path)
        self._lib = load_casp_library(dll_path)
        self._call("Casp_OpenCOM")
        self._open = True
        self._focus_v = self._safe_v
        self.set_focus(self._safe_v)  # a known state: the library cannot always be read

    @property
    def focus_range(self) -> Range:
        return self._range

    @property
    def safe_focus(self) -> float:
        return self._safe_v

    @property
    def settle_s(self) -> float:
        return self._settle_s

    @property
    def focus(self) -> float:
        getter = self._lib.get("Casp_GetFocusVoltage")
        return float(getter()) if getter is not None and self._open else self._focus_v

    def set_focus(self, value: float) -> float:
        focus_v = self._range.check(value, "focus_v")
        if not self._open:
            raise HardwareError("the Casp lens is closed")
        self._call("Casp_SetFocusVoltage", focus_v)
        self._focus_v = focus_v
        return focus_v

    def close(self) -> None:
        if not self._open:
            return
        try:
            self._call("Casp_SetFocusVoltage", self._safe_v)
        finally:
            self._open = False
            if "Casp_CloseCOM" in self._lib:
                self._call("Casp_CloseCOM")

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "dll_path": self.dll_path, "unit": self.unit}

    def _call(self, name: str, *args: float) -> None:
        code = self._lib[name](*args)
        if code != self._success:
            raise HardwareError(
                f"{name}{args if args else '()'} returned {code} (success is {self._success}); "
                "is the lens driver connected and not used by another program?"
            )


def open_casp_lens(
    camera: Camera | None = None, *, dll_path: str | None = None, **options: Any
) -> CaspLens:
    """Open the lens through the vendor library; ``camera`` is unused."""
    dll_path = dll_path or os.environ.get("DASHA_CASP_DLL")
    if not dll_path:
        raise ConfigError(
            "the casp lens needs the vendor library: --dll-path C:/.../ComCasp64.dll "
            "(or set DASHA_CASP_DLL)"
        )
    return CaspLens(dll_path, **options)
