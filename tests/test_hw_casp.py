"""The Casp (vendor DLL) lens backend against a tiny C library with the same symbols."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
from pathlib import Path

import pytest

from dasha.errors import ConfigError, HardwareError
from dasha.hardware import open_lens

FAKE_CASP = r"""
/* Records every call so the test can check what the backend did. */
static char log_[4096]; static int len_ = 0; static int fail_next_ = 0;
static double volts_ = 0.0;
static void note(const char *s) { while (*s && len_ < 4095) log_[len_++] = *s++; log_[len_] = 0; }
static int result(void) { if (fail_next_) { fail_next_--; return -3; } return 0; }
int Casp_OpenCOM(void) { note("open;"); return result(); }
int Casp_SetFocusVoltage(double v) {
    char b[32]; int r = result();
    if (r == 0) volts_ = v;
    snprintf(b, sizeof b, "set %.3f;", v); note(b); return r;
}
#ifndef MINIMAL
int Casp_CloseCOM(void) { note("close;"); return 0; }
double Casp_GetFocusVoltage(void) { return volts_; }
#endif
const char *fake_log(void) { return log_; }
void fake_fail_next(int n) { fail_next_ = n; }
"""


def build(tmp_path: Path, *defines: str) -> tuple[Path, ctypes.CDLL]:
    # A C compiler is part of the machine (not skipped: a missing gcc must show).
    assert shutil.which("gcc"), "these tests compile a fake vendor library: install gcc"
    source = tmp_path / "fake_casp.c"
    source.write_text("#include <stdio.h>\n" + FAKE_CASP)
    library = tmp_path / f"libcasp{''.join(defines)}.so"
    subprocess.run(
        ["gcc", "-shared", "-fPIC", *[f"-D{d}" for d in defines], "-o", library, source],
        check=True,
    )
    handle = ctypes.CDLL(str(library))
    handle.fake_log.restype = ctypes.c_char_p
    return library, handle


def test_open_set_read_and_park_on_close(tmp_path: Path) -> None:
    path, fake = build(tmp_path)
    lens = open_lens("casp", dll_path=str(path))
    assert lens.unit == "V" and lens.focus == 24.0
    assert lens.set_focus(47.25) == 47.25
    assert lens.focus == pytest.approx(47.25)  # read through Casp_GetFocusVoltage
    lens.close()
    lens.close()
    assert fake.fake_log().decode() == "open;set 24.000;set 47.250;set 24.000;close;"


def test_optional_symbols_may_be_missing(tmp_path: Path) -> None:
    path, fake = build(tmp_path, "MINIMAL")
    with open_lens("casp", dll_path=str(path), safe_focus_v=30.0) as lens:
        lens.set_focus(40.0)
        assert lens.focus == 40.0  # remembered, the library cannot be asked
    assert fake.fake_log().decode() == "open;set 30.000;set 40.000;set 30.000;"


def test_error_codes_raise_hardware_errors(tmp_path: Path) -> None:
    path, fake = build(tmp_path)
    fake.fake_fail_next(1)
    with pytest.raises(HardwareError, match=r"Casp_OpenCOM\(\) returned -3"):
        open_lens("casp", dll_path=str(path))
    with open_lens("casp", dll_path=str(path)) as lens:
        fake.fake_fail_next(1)
        with pytest.raises(HardwareError, match="Casp_SetFocusVoltage"):
            lens.set_focus(50.0)
        assert lens.focus == 24.0
        with pytest.raises(ConfigError, match="outside the device limits"):
            lens.set_focus(80.0)


def test_configuration_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DASHA_CASP_DLL", raising=False)
    with pytest.raises(ConfigError, match="needs the vendor library"):
        open_lens("casp")
    with pytest.raises(ConfigError, match="no Casp driver library"):
        open_lens("casp", dll_path=str(tmp_path / "missing.dll"))
    not_a_library = tmp_path / "junk.so"
    not_a_library.write_bytes(b"junk")
    with pytest.raises(HardwareError, match="cannot load"):
        open_lens("casp", dll_path=str(not_a_library))
