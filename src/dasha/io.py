"""Atomic file writing: a result file is either the old one or the complete new one.

Everything DASHA records (frames, JSON results, checkpoints, recordings) goes through
these helpers, so a crash or Ctrl-C never leaves a half-written file behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np

from dasha.errors import ConfigError


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; on success it replaces ``path`` in one rename."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise ConfigError(
            f"cannot write {path}: {exc.strerror or exc}; choose another place"
        ) from exc
    # mkstemp creates 0600; a result file gets the mode any new file would (umask applies).
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def json_text(obj: Any, indent: int | None = None) -> str:
    """Strict JSON: numpy values become plain numbers, NaN and infinities (not JSON) null."""
    return json.dumps(_finite(obj), indent=indent, default=jsonable, allow_nan=False)


def write_json(path: str | os.PathLike[str], obj: Any) -> None:
    with atomic_open(path, "w") as handle:
        handle.write(json_text(obj, indent=2) + "\n")


def write_jsonl(path: str | os.PathLike[str], records: Iterable[Any]) -> None:
    """One JSON object per line (JSON Lines), written atomically; NaN and infinities (not
    JSON) become null."""
    with atomic_open(path, "w") as handle:
        for record in records:
            handle.write(json_text(record) + "\n")


def _finite(value: Any) -> Any:
    if isinstance(value, (float, np.floating)):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, np.ndarray):
        return _finite(value.tolist())
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def write_image(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Write an image (PNG, TIFF, JPEG... by suffix; 16-bit kept for PNG/TIFF) atomically."""
    import cv2

    suffix = Path(path).suffix.lower() or ".png"
    if image.dtype != np.uint8 and suffix not in (".png", ".tif", ".tiff"):
        # cv2 would write a 12-bit frame's raw values into 8 bits: a nearly white picture.
        raise ConfigError(
            f"cannot write a {image.dtype} image as {suffix!r} (8 bits only); use .png or .tif"
        )
    ok, encoded = cv2.imencode(suffix, image)
    if not ok:
        raise ConfigError(f"cannot encode an image as {suffix!r}; use .png, .tif or .jpg")
    write_bytes(path, encoded.tobytes())


def jsonable(value: Any) -> Any:
    if isinstance(value, (np.generic,)):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
