"""int8 models for the ``onnxruntime-int8`` backend: static quantisation of the float ONNX
graphs, calibrated on simulator frames.

ONNX Runtime's static quantiser (``onnxruntime.quantization.quantize_static``) rewrites a
float graph in the QDQ format: int8 weights (one scale per output channel) and
QuantizeLinear/DequantizeLinear pairs around the activations, which the runtime fuses into
integer kernels (VNNI on CPUs that have it). The activations' ranges come from running the
float model on calibration frames: ``calibration_frames`` draws them from the simulator's
training conditions (the built-in scenes, 140..200 cm, 13..300 lx), at an exposure near
mid-gray (what A_L sees) or anywhere from 1 to 200 ms (what A_H sees), the lens in focus
or anywhere in its range, seeded, so every machine builds the same model.

Dynamic quantisation (weights int8, activations quantised per run) was measured too: on
these depthwise/small convolutions it is slower than float and much less accurate
(README, "Inference backends"), so it is not offered.

An int8 model is cached like a float one (``onnx_runtime.cached_onnx``) under a key made of
the float model's key (the SHA-256 of its source weights and the converter's version), the
quantisation settings, this module's version and ONNX Runtime's (its quantiser decides what
the file holds), so a change of any of them builds a new model.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from dasha.perception.onnx_runtime import cached_onnx, model_key, require_onnxruntime

# Bump when the quantisation code changes what the int8 file computes.
QUANT_VERSION = "qdq-1"
CALIBRATION_METHODS = ("minmax", "percentile", "entropy")


@dataclass(frozen=True)
class QuantSettings:
    """How a float model is quantised (every field is part of the cache key)."""

    calibration_frames: int = 48
    """Simulator frames the activation ranges are measured on."""
    calibration_seed: int = 0
    method: str = "minmax"
    """``minmax`` | ``percentile`` | ``entropy`` (ONNX Runtime's calibrators)."""
    percentile: float = 99.999
    """``percentile``: the share of each activation's values its range keeps."""
    per_channel: bool = True
    """One weight scale per output channel (per tensor when false)."""
    op_types: tuple[str, ...] | None = None
    """Operator types to quantise (``None``: every type the quantiser supports)."""
    exclude_nodes: tuple[str, ...] = ()
    """Node names left in float (e.g. a head whose outputs are decoded in the graph)."""

    def key(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def quantized_onnx(
    name: str,
    float_key: str,
    float_path: Path,
    calibration_inputs: Callable[[Sequence[np.ndarray]], Iterator[dict[str, np.ndarray]]],
    settings: QuantSettings,
) -> Path:
    """The cached int8 model of float model ``name`` (``float_key``, at ``float_path``),
    built when missing; ``calibration_inputs(frames)`` turns calibration frames (2-D uint8)
    into the model's input dicts."""
    ort = require_onnxruntime()
    key = model_key([float_key, settings.key()], f"{QUANT_VERSION}-ort{ort.__version__}")

    def build(out: Path) -> None:
        frames = calibration_frames(settings.calibration_frames, settings.calibration_seed)
        quantize(float_path, out, calibration_inputs(frames), settings)

    return cached_onnx(f"{name}-int8", key, build)


def quantize(
    float_path: Path,
    out: Path,
    inputs: Iterator[dict[str, np.ndarray]],
    settings: QuantSettings,
) -> None:
    """Write the static QDQ int8 model of ``float_path`` to ``out``, calibrated on ``inputs``."""
    require_onnxruntime()
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    if settings.method not in CALIBRATION_METHODS:
        raise ValueError(f"method {settings.method!r}: choose one of {CALIBRATION_METHODS}")
    method = {
        "minmax": CalibrationMethod.MinMax,
        "percentile": CalibrationMethod.Percentile,
        "entropy": CalibrationMethod.Entropy,
    }[settings.method]

    class Reader(CalibrationDataReader):
        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(inputs, None)

    with tempfile.TemporaryDirectory() as tmp:
        # shapes and constant folding first, as the quantiser's docs ask (symbolic shape
        # inference gives up on the darknet graph's decode; ONNX's own is enough)
        prepared = Path(tmp) / "prepared.onnx"
        quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
        quantize_static(
            str(prepared),
            str(out),
            Reader(),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            per_channel=settings.per_channel,
            calibrate_method=method,
            op_types_to_quantize=list(settings.op_types) if settings.op_types else None,
            nodes_to_exclude=list(settings.exclude_nodes),
            extra_options={"CalibPercentile": settings.percentile},
        )


@lru_cache(maxsize=2)
def calibration_frames(count: int, seed: int) -> tuple[np.ndarray, ...]:
    """``count`` simulator frames (2-D uint8) of the training conditions (module docstring)."""
    from dasha.hardware.sim import FOCUS_RANGE_V, sim_rig
    from dasha.sim.scenes import BUILTIN_SCENES
    from dasha.sim.world import DISTANCE_RANGE_CM, ILLUMINANCE_RANGE_LUX

    rng = np.random.default_rng(seed)
    camera, lens = sim_rig(seed=seed)
    scenes = sorted(BUILTIN_SCENES)
    frames = []
    for i in range(count):
        distance_cm = float(rng.uniform(*DISTANCE_RANGE_CM))
        camera.reset(
            scene=scenes[i % len(scenes)],
            distance_cm=distance_cm,
            illuminance_lux=float(rng.uniform(*ILLUMINANCE_RANGE_LUX)),
        )
        if i % 3 == 2:  # anywhere in 1..200 ms, log-uniform: A_H's tries
            exposure_us = math.exp(rng.uniform(math.log(1e3), math.log(2e5)))
        else:  # the mean near mid-gray (the sensor is linear): the frames A_L judges
            probe = float(camera.grab().as_uint8().mean())
            exposure_us = camera.exposure_us * 110.0 / max(probe, 1.0)
        camera.set_exposure_us(float(np.clip(exposure_us, 100.0, 1e6)))
        sharp_v = camera.world.optics.in_focus_v(distance_cm)
        in_focus = rng.random() < 0.4
        lens.set_focus(
            sharp_v if in_focus else float(rng.uniform(FOCUS_RANGE_V.min, FOCUS_RANGE_V.max))
        )
        frames.append(camera.grab().as_uint8())
    return tuple(frames)
