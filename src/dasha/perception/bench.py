"""A small benchmark of the perception layer: milliseconds per part on this machine."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    return round(_interleaved_median_ms([fn], repeats)[0], 2)


# Before each timed call: a pause, then one untimed call of the same function. After a
# forward pass torch's OpenMP workers spin-wait (libgomp's default) on the cores for ~20 ms:
# an ONNX Runtime encode timed right after a torch one ran ~1.7 ms slower than after another
# ONNX Runtime encode, 0.3 ms slower 20 ms later, and no slower with OMP_WAIT_POLICY=PASSIVE.
# A pause alone makes torch pay its own workers' wake-up instead (~8 ms on one frame). So
# each timed call runs as the second of two back to back, with the other backends' work
# ``SETTLE_S`` behind it: what a loop of that backend alone costs.
SETTLE_S = 0.025


def _interleaved_median_ms(fns: list[Callable[[], object]], repeats: int) -> list[float]:
    """Median ms of each function, run in turns so that CPU frequency and background load
    drift affect all of them alike (what a fair A/B needs on a small machine); each timed
    call follows a pause and an untimed call of the same function (``SETTLE_S``)."""
    samples: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, samples, strict=True):
            time.sleep(SETTLE_S)
            fn()
            start = time.perf_counter()
            fn()
            out.append((time.perf_counter() - start) * 1e3)
    return [float(np.median(out)) for out in samples]


def bench_perception(
    image: np.ndarray,
    encoder: str = "efficientnet-lite0",
    detector: str | None = "yolo",
    batch_size: int = 8,
    repeats: int = 5,
    box: tuple[float, float, float, float] | None = None,
) -> dict[str, Any]:
    """Median ms of each part on ``image`` (2-D uint8); encoder single vs batched per frame."""
    import torch

    from dasha.perception.brisque import brisque_score
    from dasha.perception.encoder import load_encoder
    from dasha.perception.focus import FOCUS_MEASURES
    from dasha.perception.histogram import histogram

    height, width = image.shape[:2]
    box = box or (width / 4, height / 4, 3 * width / 4, 3 * height / 4)
    enc = load_encoder(encoder)
    frames = [np.roll(image, 7 * i, axis=1) for i in range(batch_size)]
    one_by_one, batched = _interleaved_median_ms(
        [lambda: [enc.encode(f) for f in frames], lambda: enc.encode_batch(frames)],
        max(repeats, 15),
    )
    result: dict[str, Any] = {
        "image_px": [width, height],
        "torch_threads": torch.get_num_threads(),
        "encoder": encoder,
        "encoder_single_ms": round(one_by_one / batch_size, 2),
        f"encoder_batch{batch_size}_ms_per_frame": round(batched / batch_size, 2),
        "histogram_ms": _median_ms(lambda: histogram(image), repeats),
        "brisque_frame_ms": _median_ms(lambda: brisque_score(image), repeats),
        "brisque_box_ms": _median_ms(lambda: brisque_score(image, box), repeats),
        "box_px": [round(v) for v in box],
    }
    for name, fn in FOCUS_MEASURES.items():
        result[f"focus_{name}_ms"] = _median_ms(lambda fn=fn: fn(image), repeats)  # type: ignore[misc]
    if detector is not None:
        from dasha.perception.detectors import load_detector

        det = load_detector(detector)
        result["detector"] = detector
        result["detector_ms"] = _median_ms(lambda: det.detect(image), repeats)
    return result


def available_backends() -> list[str]:
    """The concrete backends this machine can run, reference first."""
    from dasha.perception.onnx_runtime import ONNX_BACKENDS, REFERENCE, onnxruntime_available

    return [REFERENCE, *(ONNX_BACKENDS if onnxruntime_available() else ())]


def bench_backends(
    scene: str = "motorcycle",
    encoder: str = "efficientnet-lite0",
    detector: str = "yolo",
    repeats: int = 15,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Median ms of the encoder, detector, BRISQUE of the box and a full A_L step (render +
    encoder + detector + BRISQUE) under each backend and ``auto`` (what it picks per model
    is ``auto_picks``), timed in turns in the same run (warm-up excluded), on a simulated
    frame; ``speedup`` is reference / each."""
    from dasha.hardware import open_camera, open_lens
    from dasha.hardware.sim import SimCamera
    from dasha.perception.brisque import brisque_reward_score, uses_package_features
    from dasha.perception.onnx_runtime import AUTO, REFERENCE
    from dasha.perception.senses import Senses

    camera = open_camera("sim", scene=scene, distance_cm=170.0, illuminance_lux=100.0, seed=0)
    assert isinstance(camera, SimCamera)
    # in focus, so that the step's detector finds the target and BRISQUE scores its box
    open_lens("sim", camera=camera).set_focus(camera.world.optics.in_focus_v(170.0))
    frame = camera.grab()
    image = frame.as_uint8()
    backends = [*available_backends(), AUTO]
    senses = {b: Senses(encoder=encoder, detector=detector, backend=b) for b in backends}
    box = senses[REFERENCE].target(frame).box
    frames = [np.roll(image, 7 * i, axis=1) for i in range(batch_size)]

    def a_l_step(s: Senses) -> object:
        grabbed = camera.grab()
        return s.encode(grabbed), s.target(grabbed)

    parts: dict[str, Callable[[Senses], object]] = {
        "encoder": lambda s: s.encode(frame),
        f"encoder_batch{batch_size}_per_frame": lambda s: s.features_batch_images(frames),
        "detector": lambda s: s._detector().detect(image),
        "brisque_box": lambda s: brisque_reward_score(image, box, s.backend),
        "a_l_step": a_l_step,
    }
    auto = senses[AUTO]
    result: dict[str, Any] = {
        "scene": scene,
        "backends": backends,
        "auto_picks": {
            "encoder": auto._encoder().backend,
            "detector": getattr(auto._detector(), "backend", REFERENCE),
            "brisque": "package" if uses_package_features(AUTO) else "fast",
        },
        "box_px": box,
        "ms": {},
    }
    for part, fn in parts.items():
        times = _interleaved_median_ms(
            [lambda s=senses[b], fn=fn: fn(s) for b in backends],  # type: ignore[misc]
            repeats,
        )
        if part.startswith("encoder_batch"):
            times = [t / batch_size for t in times]
        result["ms"][part] = {b: round(t, 2) for b, t in zip(backends, times, strict=True)}
    result["speedup"] = {
        part: {b: round(ms[REFERENCE] / ms[b], 2) for b in backends if b != REFERENCE}
        for part, ms in result["ms"].items()
    }
    return result
