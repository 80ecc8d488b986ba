"""Checks of every command's arguments, by parameter name, before the command does any work.

One table for the whole CLI instead of a check per command: a new command that names its
options as the others do (``seed``, ``episodes``, ``out``...) is checked with no code of
its own. ``handle_errors`` runs ``check_arguments`` on the parsed arguments, so a bad value
is refused before a simulation, a training run or a download starts and nothing is lost.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dasha.agents import SHIPPED_POLICIES, shipped_name
from dasha.errors import ConfigError

# numpy's SeedSequence takes any non-negative int, but RLlib and torch seeds are 32-bit.
MAX_SEED = 2**32 - 1

# Counts of things to do: zero would run nothing and report a meaningless result.
POSITIVE_INTS = {
    "frames",
    "episodes",
    "steps",
    "batch_steps",
    "batch_size",
    "repeats",
    "backgrounds_per_target",
    "rl_steps",
    "conditions",  # gate-bench: conditions per blur level
    "rounds",
    "epochs",
    "exposure_conditions",
}
# Upper bounds: a count past these is a typo that would run for days or fill the memory
# (sim bench draws all its frames' settings up front).
MAX_COUNT = {"steps": 10**9, "rl_steps": 10**9, "frames": 10**6}
MAX_OTHER_COUNT = 100_000
NON_NEGATIVE_INTS = {"env_runners"}
# Positive by nature; exposure, focus, distance and illuminance are left to the backends,
# whose messages give the device's own range.
POSITIVE_FLOATS = {
    "target_size_cm",
    "timeout_s",
    "lr_final",
    "kl_target",
    "env_steps_per_s",
    "blur_px_per_range",
}
UNIT_INTERVAL = {"score_threshold"}
NON_NEGATIVE_FLOATS = {"sharp_brisque_max"}
BIT_DEPTHS = (8, 12)

IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
# Formats that keep more than 8 bits per pixel (cv2.imencode writes 16-bit PNG and TIFF).
DEEP_IMAGE_SUFFIXES = (".png", ".tif", ".tiff")

# Outputs by (command function, parameter): a directory, or a file with these suffixes.
# `check_arguments` refuses an output of an unlisted command, so a new one must be added.
DIRECTORY = "directory"
OUTPUTS: dict[tuple[str, str], str | tuple[str, ...]] = {
    ("dasha.cli.sim.snapshot", "out"): IMAGE_SUFFIXES,
    ("dasha.cli.sim.sheet", "out"): (".png",),
    ("dasha.cli.scenes.build", "out"): (".json",),
    ("dasha.cli.scenes.sheet", "out"): (".png",),
    ("dasha.cli.agents.evaluate_command", "episodes_out"): (".jsonl",),
    ("dasha.cli.agents.focus_command", "save_frames"): DIRECTORY,
    ("dasha.cli.devices.capture", "out"): DIRECTORY,
    ("dasha.cli.agents.train_command", "out"): DIRECTORY,
    ("dasha.cli.agents.pretrain_command", "out"): DIRECTORY,
    ("dasha.cli.bench.bench_command", "out"): DIRECTORY,
    ("dasha.cli.watch.watch_command", "timeline"): (".json",),
    ("dasha.cli.serve.serve_command", "screenshot"): (".png",),
}
OUTPUT_PARAMETERS = {"out", "episodes_out", "save_frames", "timeline", "screenshot"}
# Files and folders the command reads: they must exist before anything starts.
INPUT_FILES = {"image", "encoder_weights", "weights"}
INPUT_DIRECTORIES = {"policy"}  # (scenes --library says "not a folder" itself)


def flag(name: str, flags: Mapping[str, str] | None = None) -> str:
    """The option a parameter comes from, as the user typed it (``--distance-cm``)."""
    if flags and name in flags:
        return flags[name]
    return "--" + name.replace("_", "-")


def check_arguments(
    command: str, arguments: Mapping[str, Any], flags: Mapping[str, str] | None = None
) -> None:
    """Raise ``ConfigError`` naming the first argument that is out of its domain."""
    for name, value in arguments.items():
        if value is None or isinstance(value, bool):
            continue
        option = flag(name, flags)
        if isinstance(value, float):
            _check_float(option, name, value)
        elif isinstance(value, int):
            _check_int(option, name, value)
        if name in OUTPUT_PARAMETERS:
            kind = OUTPUTS.get((command, name))
            if kind is None:
                raise ConfigError(f"{option}: {command} writes an output the CLI does not check")
            check_output(option, Path(value), kind)
        elif name in INPUT_FILES:
            _check_input(option, Path(value), Path.is_file, "file")
        elif name == "policy" and shipped_name(value):
            continue
        elif name in INPUT_DIRECTORIES:
            shipped = f" (or a shipped pair: {', '.join(SHIPPED_POLICIES)})"
            kind = "directory" + (shipped if name == "policy" else "")
            _check_input(option, Path(value), Path.is_dir, kind)
    bits = arguments.get("bit_depth")
    out = arguments.get("out")
    deep = bits is not None and bits > 8
    if deep and out is not None and Path(out).suffix.lower() not in DEEP_IMAGE_SUFFIXES:
        raise ConfigError(
            f"--out {out}: a {bits}-bit frame does not fit in {Path(out).suffix or 'that format'} "
            f"(8 bits); write {' or '.join(DEEP_IMAGE_SUFFIXES)}"
        )


def _check_float(option: str, name: str, value: float) -> None:
    if not math.isfinite(value):
        raise ConfigError(f"{option} {value}: give a finite number")
    if name in POSITIVE_FLOATS and value <= 0:
        raise ConfigError(f"{option} {value:g}: must be greater than 0")
    if name in NON_NEGATIVE_FLOATS and value < 0:
        raise ConfigError(f"{option} {value:g}: must be at least 0")
    if name in UNIT_INTERVAL and not 0.0 <= value <= 1.0:
        raise ConfigError(f"{option} {value:g}: a confidence between 0 and 1")


def _check_int(option: str, name: str, value: int) -> None:
    if name == "seed" and not 0 <= value <= MAX_SEED:
        raise ConfigError(f"{option} {value}: a seed is between 0 and {MAX_SEED}")
    if name in POSITIVE_INTS and value < 1:
        raise ConfigError(f"{option} {value}: must be at least 1")
    limit = MAX_COUNT.get(name, MAX_OTHER_COUNT)
    if name in POSITIVE_INTS | NON_NEGATIVE_INTS and value > limit:
        raise ConfigError(f"{option} {value}: at most {limit}")
    if name in NON_NEGATIVE_INTS and value < 0:
        raise ConfigError(f"{option} {value}: must be at least 0")
    if name == "bit_depth" and value not in BIT_DEPTHS:
        raise ConfigError(f"{option} {value}: choose {' or '.join(map(str, BIT_DEPTHS))}")


def _check_input(option: str, path: Path, test: Callable[[Path], bool], kind: str) -> None:
    if not test(path):
        what = "does not exist" if not path.exists() else f"is not a {kind}"
        raise ConfigError(f"{option} {path}: {what}; give an existing {kind}")


def check_output(option: str, path: Path, kind: str | tuple[str, ...]) -> None:
    """An output can be written: the right kind of thing, the right suffix, and a writable
    place (the nearest existing folder above it, since missing ones are created)."""
    if kind == DIRECTORY:
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{option} {path}: is a file; give a directory (new or existing)")
    else:
        if path.is_dir():
            raise ConfigError(f"{option} {path}: is a directory; give a file name")
        if path.suffix.lower() not in kind:
            raise ConfigError(f"{option} {path}: give a file ending in {' or '.join(kind)}")
    existing = path if path.is_dir() else path.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{option} {path}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: {existing} is not writable; choose another place")
