"""A small benchmark of the perception layer: milliseconds per part on this machine."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np


def _median_ms(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up (lazy initialisation, allocator)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1e3)
    return round(float(np.median(samples)), 2)


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
    one_by_one = _median_ms(lambda: [enc.encode(f) for f in frames], repeats) / batch_size
    batched = _median_ms(lambda: enc.encode_batch(frames), repeats) / batch_size
    result: dict[str, Any] = {
        "image_px": [width, height],
        "torch_threads": torch.get_num_threads(),
        "encoder": encoder,
        "encoder_single_ms": round(one_by_one, 2),
        f"encoder_batch{batch_size}_ms_per_frame": round(batched, 2),
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
