"""Recording an exposure x focus grid of real frames, and reading it back.

A recording is a directory, so that each frame is written once, atomically, and an
interrupted capture resumes by skipping what is on disk (one archive file would have to
be rewritten per frame); the PNGs open in any viewer and keep 16-bit data::

    recording/
      manifest.json          format, camera/lens info, grid, conditions, per-frame metadata
      frames/e000_f000.png   exposure index 0, focus index 0 (8- or 16-bit grey PNG)

``manifest.json`` (rewritten atomically after every frame, so it only ever lists frames
whose PNG is complete)::

    {"format": "dasha-recording", "version": 1,
     "camera": {...}, "lens": {...}, "focus_unit": "V", "bit_depth": 12,
     "exposures_us": [...], "focus": [...], "conditions": {...free-form, e.g. lux...},
     "frames": {"e000_f000": {"file": "frames/e000_f000.png", "exposure_us": 1000.0,
                              "focus": 24.0, "gain_db": 0.0, "timestamp_s": ..., "meta": {...}}},
     "complete": true}

The order is exposure-major (the slow change, a stream restart on a Basler, happens
once per row); the lens is moved and allowed ``settle_s`` before each grab.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dasha.errors import ConfigError
from dasha.hardware.base import Frame
from dasha.hardware.session import Rig
from dasha.io import jsonable, write_image, write_json

FORMAT = "dasha-recording"
VERSION = 1
MANIFEST = "manifest.json"
SIMULATED_BACKENDS = frozenset({"sim", "replay"})  # cameras whose time runs on a sim clock


def _no_wait(_: float) -> None:
    pass


def frame_key(exposure_index: int, focus_index: int) -> str:
    return f"e{exposure_index:03d}_f{focus_index:03d}"


def _plain(meta: Mapping[str, Any]) -> dict[str, Any]:
    """The JSON-serialisable part of a frame's metadata (the rest is dropped, not failed on)."""
    kept = {}
    for key, value in meta.items():
        try:
            kept[str(key)] = json.loads(json.dumps(value, default=jsonable))
        except (TypeError, ValueError):
            continue
    return kept


def capture_grid(
    rig: Rig,
    out: str | Path,
    exposures_us: Sequence[float],
    focus: Sequence[float],
    *,
    conditions: Mapping[str, Any] | None = None,
    timeout_s: float = 5.0,
    sleep: Callable[[float], None] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Record one frame per (exposure, focus) into the directory ``out``; resume if it holds
    a recording of the same grid. Values are checked against the devices' limits first.
    ``progress(done, total)`` is called after each frame (and once at the start). ``sleep``
    waits for the lens to settle: real time by default, nothing for backends on a
    simulated clock (their frames already wait for the lens)."""
    out = Path(out)
    if sleep is None:
        simulated = rig.camera.name in SIMULATED_BACKENDS
        sleep = _no_wait if simulated else time.sleep
    exposures = [rig.camera.exposure_range_us.check(e, "exposure_us") for e in exposures_us]
    focuses = [rig.lens.focus_range.check(f, f"focus ({rig.lens.unit})") for f in focus]
    manifest = _start_manifest(out, rig, exposures, focuses, dict(conditions or {}))
    frames: dict[str, Any] = manifest["frames"]
    total = len(exposures) * len(focuses)
    if progress:
        progress(len(frames), total)
    for i, exposure_us in enumerate(exposures):
        todo = [j for j in range(len(focuses)) if frame_key(i, j) not in frames]
        if not todo:
            continue
        rig.camera.set_exposure_us(exposure_us)
        for j in todo:
            rig.lens.set_focus(focuses[j])
            sleep(rig.lens.settle_s)
            frame = rig.camera.grab(timeout_s)
            key = frame_key(i, j)
            write_image(out / "frames" / f"{key}.png", frame.image)
            frames[key] = {
                "file": f"frames/{key}.png",
                "exposure_us": frame.exposure_us,
                "focus": rig.lens.focus,
                "gain_db": frame.gain_db,
                "timestamp_s": frame.timestamp_s,
                "meta": _plain(frame.meta),
            }
            manifest["bit_depth"] = frame.bit_depth
            manifest["complete"] = len(frames) == total
            write_json(out / MANIFEST, manifest)
            if progress:
                progress(len(frames), total)
    return out


def _start_manifest(
    out: Path, rig: Rig, exposures: list[float], focuses: list[float], conditions: dict[str, Any]
) -> dict[str, Any]:
    grid = {"exposures_us": exposures, "focus": focuses, "focus_unit": rig.lens.unit}
    path = out / MANIFEST
    if path.exists():
        manifest: dict[str, Any] = json.loads(path.read_text())
        if any(manifest.get(k) != v for k, v in grid.items()):
            raise ConfigError(
                f"{out} holds a recording of another grid; choose a new --out to start afresh"
            )
        # keep only frames whose PNG is really there (a file deleted by hand is retaken)
        manifest["frames"] = {
            k: v for k, v in manifest["frames"].items() if (out / v["file"]).is_file()
        }
        return manifest
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} exists and is not a DASHA recording; choose another --out")
    return {
        "format": FORMAT,
        "version": VERSION,
        **rig.info(),
        **grid,
        "conditions": conditions,
        "bit_depth": None,
        "frames": {},
        "complete": False,
    }


def check_manifest(manifest: dict[str, Any], path: Path) -> None:
    """The manifest's schema: a grid of finite numbers, a bit depth, and frame entries whose
    keys index that grid and whose files lie inside the recording."""

    def fail(what: str) -> ConfigError:
        return ConfigError(f"{path}: {what}; it is not a recording `dasha capture` wrote")

    for name in ("exposures_us", "focus"):
        values = manifest.get(name)
        if not isinstance(values, list) or not values or not all(_finite(v) for v in values):
            raise fail(f"{name!r} must be a non-empty list of finite numbers")
    if any(v <= 0 for v in manifest["exposures_us"]):
        raise fail("'exposures_us' must be positive")
    if not isinstance(manifest.get("focus_unit"), str):
        raise fail("'focus_unit' is missing")
    frames = manifest.get("frames")
    if not isinstance(frames, dict):
        raise fail("'frames' is missing")
    if frames and manifest.get("bit_depth") not in BIT_DEPTHS:
        raise fail(f"'bit_depth' must be one of {BIT_DEPTHS}")
    root = path.parent.resolve()
    shape = (len(manifest["exposures_us"]), len(manifest["focus"]))
    for key, entry in frames.items():
        indices = _grid_point(key)
        if indices is None or not (indices[0] < shape[0] and indices[1] < shape[1]):
            raise fail(f"frame key {key!r} is not a point of the {shape[0]}x{shape[1]} grid")
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            raise fail(f"frame {key} has no 'file'")
        if not (root / entry["file"]).resolve().is_relative_to(root):
            raise fail(f"frame {key} points outside the recording ({entry['file']!r})")
        numbers = ("exposure_us", "focus", "gain_db", "timestamp_s")
        if not all(_finite(entry.get(n)) for n in numbers) or not isinstance(
            entry.get("meta"), dict
        ):
            raise fail(f"frame {key} needs finite {', '.join(numbers)} and a 'meta' object")


BIT_DEPTHS = (8, 10, 12, 16)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _grid_point(key: str) -> tuple[int, int] | None:
    if len(key) == 9 and key[0] == "e" and key[4:6] == "_f" and (key[1:4] + key[6:9]).isdigit():
        return int(key[1:4]), int(key[6:9])
    return None


@dataclass
class Recording:
    """A recording read back: the grid, and frames loaded on demand (then cached)."""

    path: Path
    manifest: dict[str, Any]
    _cache: dict[str, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def open(cls, path: str | Path) -> Recording:
        path = Path(path)
        manifest_path = path / MANIFEST if path.is_dir() else path
        try:
            manifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError) as exc:
            raise ConfigError(f"{path} is not a readable DASHA recording ({exc})") from exc
        if not isinstance(manifest, dict) or (manifest.get("format"), manifest.get("version")) != (
            FORMAT,
            VERSION,
        ):
            raise ConfigError(f"{path}: not a {FORMAT} version {VERSION} manifest")
        check_manifest(manifest, manifest_path)
        if not manifest["frames"]:
            raise ConfigError(f"{path} holds no frames yet; run `dasha capture` on it first")
        return cls(manifest_path.parent, manifest)

    @property
    def exposures_us(self) -> np.ndarray:
        return np.asarray(self.manifest["exposures_us"], dtype=float)

    @property
    def focus(self) -> np.ndarray:
        return np.asarray(self.manifest["focus"], dtype=float)

    @property
    def focus_unit(self) -> str:
        return str(self.manifest["focus_unit"])

    @property
    def bit_depth(self) -> int:
        return int(self.manifest["bit_depth"])

    @property
    def complete(self) -> bool:
        return bool(self.manifest.get("complete"))

    def nearest(self, exposure_us: float, focus: float) -> tuple[int, int]:
        """Indices of the recorded frame nearest to the request: exposure compared on a log
        scale (brightness is multiplicative), focus on a linear one, each axis scaled by
        its grid spacing; only frames present in the recording are candidates."""
        log_e = np.log(self.exposures_us)
        e_scale = np.ptp(log_e) / max(len(log_e) - 1, 1) or 1.0
        f_scale = np.ptp(self.focus) / max(len(self.focus) - 1, 1) or 1.0
        best, best_distance = (0, 0), math.inf
        for key in self.manifest["frames"]:
            i, j = int(key[1:4]), int(key[6:9])
            distance = ((log_e[i] - math.log(exposure_us)) / e_scale) ** 2 + (
                (self.focus[j] - focus) / f_scale
            ) ** 2
            if distance < best_distance:
                best, best_distance = (i, j), distance
        return best

    def frame(self, exposure_index: int, focus_index: int, index: int = 0) -> Frame:
        """The recorded frame at a grid point, as a ``Frame`` (``meta`` as recorded, plus
        ``recording`` = the grid point)."""
        import cv2

        key = frame_key(exposure_index, focus_index)
        entry = self.manifest["frames"].get(key)
        if entry is None:
            raise ConfigError(f"{self.path} has no frame {key}; resume the capture to finish it")
        image = self._cache.get(key)
        if image is None:
            image = cv2.imread(str(self.path / entry["file"]), cv2.IMREAD_UNCHANGED)
            if image is None:
                raise ConfigError(f"cannot read {self.path / entry['file']}")
            self._check_image(key, image)
            self._cache[key] = image
        return Frame(
            image=image,
            bit_depth=self.bit_depth,
            exposure_us=float(entry["exposure_us"]),
            gain_db=float(entry["gain_db"]),
            timestamp_s=float(entry["timestamp_s"]),
            index=index,
            meta={**entry["meta"], "recording": {"key": key, "focus": entry["focus"]}},
        )

    def _check_image(self, key: str, image: np.ndarray) -> None:
        """Every frame a grey image of the recording's depth and of one size."""
        dtype = np.uint8 if self.bit_depth <= 8 else np.uint16
        if image.ndim != 2 or image.dtype != dtype:
            raise ConfigError(
                f"{self.path}: frame {key} is a {image.dtype} image of shape {image.shape}; "
                f"the recording holds {self.bit_depth}-bit grey frames ({np.dtype(dtype).name})"
            )
        first = next((im for im in self._cache.values()), image)
        if image.shape != first.shape:
            raise ConfigError(
                f"{self.path}: frame {key} is {image.shape[1]}x{image.shape[0]}, the others "
                f"{first.shape[1]}x{first.shape[0]}"
            )
