"""Option parsing shared by the commands (value lists, condition sets and splits)."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import typer

from dasha.errors import ConfigError


def parse_values(text: str, name: str) -> list[float]:
    """``"1,2.5,4"`` or ``"start:stop:step"`` (stop included when it falls on the grid)."""
    text = text.strip()
    try:
        if ":" in text:
            parts = [float(p) for p in text.split(":")]
            if len(parts) != 3 or parts[2] <= 0 or parts[1] < parts[0]:
                raise ValueError
            start, stop, step = parts
            count = int(np.floor((stop - start) / step + 1e-9)) + 1
            return [round(start + i * step, 9) for i in range(count)]
        values = [float(p) for p in text.split(",") if p.strip()]
        if not values:
            raise ValueError
        return values
    except ValueError:
        raise ConfigError(
            f"--{name} {text!r}: give a comma list (e.g. 30,35.5,40) or start:stop:step (e.g. 24:70:0.5)"
        ) from None


BackendName = Annotated[
    str,
    typer.Option(
        "--backend",
        help="Inference backend of the encoder and detector: auto (the fastest installed: ONNX Runtime when it imports), onnxruntime, or reference (torch for the encoders, cv2.dnn for YOLO).",
    ),
]
SceneNames = Annotated[
    list[str] | None,
    typer.Option(
        "--scene",
        "--scenes",
        help="Restrict the condition set to these scenes (repeatable): built-in names, library scene ids (`dasha scenes`) or image paths with a sidecar JSON; default the split's scenes.",
    ),
]
ConditionsName = Annotated[
    str,
    typer.Option(
        "--conditions",
        help="Condition set the episodes are drawn from: paper (the four built-in photographs, 140-200 cm, 13-300 lx, no splits); full (the scene library's scenes of one split, 30 cm to infinity, 13-1000 lx, nominal optics); mismatch (full with the lens calibration, f-number, PSF, noise and gain drawn off-nominal). `dasha scenes` lists the library.",
    ),
]
SplitName = Annotated[
    str | None,
    typer.Option(
        "--split",
        help="Split of the condition set: train, val or test. Default: train for dasha train, test for evaluate and bench; a set without splits (paper) takes none.",
        show_default=False,
    ),
]


def episode_conditions(
    conditions: str, split: str | None, default_split: str, scenes: list[str] | None
) -> dict[str, Any]:
    """The ``EpisodeConfig`` fields of ``--conditions``, ``--split`` and ``--scene``: the split
    defaults to ``default_split`` where the set has splits, and is refused where it has none."""
    from dasha.envs.conditions import resolve_split

    return {
        "conditions": conditions,
        "split": resolve_split(conditions, split, default_split),
        "scenes": tuple(scenes) if scenes else None,
    }
