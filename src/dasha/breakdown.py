"""Where a method succeeds: success and lens moves per scene and per distance band.

One computation for ``dasha evaluate`` and ``dasha bench``, so the two report the same
numbers for the same episodes. Success is whatever the caller counts (both count "the
target detected on the final frame and in focus by the simulator's ground truth").
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

# Band edges (cm). Each band includes its upper edge, so that the paper's 140..200 cm is one
# band (100-200 cm).
DISTANCE_BAND_EDGES_CM = (50.0, 100.0, 200.0, 500.0)


def _band_labels(edges: tuple[float, ...]) -> tuple[str, ...]:
    inner = [f"{lo:g}-{hi:g} cm" for lo, hi in itertools.pairwise(edges)]
    return (f"<={edges[0]:g} cm", *inner, f">{edges[-1]:g} cm")


DISTANCE_BANDS = _band_labels(DISTANCE_BAND_EDGES_CM)


def distance_band(distance_cm: float) -> str:
    """The label of the band a target distance falls in (see ``DISTANCE_BAND_EDGES_CM``)."""
    return DISTANCE_BANDS[int(np.searchsorted(DISTANCE_BAND_EDGES_CM, distance_cm, side="left"))]


@dataclass(frozen=True)
class EpisodeResult:
    """What the breakdown needs of one episode."""

    conditions: Mapping[str, Any]  # the sampled conditions (scene, distance_cm, ...)
    success: bool
    lens_moves: int


def _stats(results: list[EpisodeResult]) -> dict[str, Any]:
    if not results:
        return {"episodes": 0, "success_rate": None, "lens_moves_mean": None}
    return {
        "episodes": len(results),
        "success_rate": float(np.mean([r.success for r in results])),
        "lens_moves_mean": float(np.mean([r.lens_moves for r in results])),
    }


def _group(
    results: Iterable[EpisodeResult], key: Callable[[EpisodeResult], str | None]
) -> dict[str, list[EpisodeResult]]:
    groups: dict[str, list[EpisodeResult]] = {}
    for result in results:
        name = key(result)
        if name is not None:
            groups.setdefault(name, []).append(result)
    return groups


def breakdown(results: Iterable[EpisodeResult]) -> dict[str, dict[str, dict[str, Any]]]:
    """``per_scene`` (scenes in name order) and ``per_distance_band`` (every band, in order;
    empty ones with 0 episodes): episodes, success rate and mean lens moves of each.

    Episodes without a scene or a distance (a real camera's) are left out of that grouping.
    """
    results = list(results)
    scenes = _group(
        results, lambda r: None if "scene" not in r.conditions else str(r.conditions["scene"])
    )
    bands = _group(
        results,
        lambda r: (
            None
            if "distance_cm" not in r.conditions
            else distance_band(float(r.conditions["distance_cm"]))
        ),
    )
    return {
        "per_scene": {name: _stats(scenes[name]) for name in sorted(scenes)},
        "per_distance_band": {band: _stats(bands.get(band, [])) for band in DISTANCE_BANDS},
    }


def breakdown_markdown(per_method: Mapping[str, Mapping[str, Mapping[str, Any]]]) -> list[str]:
    """Two Markdown tables (by scene, by distance band) of ``{method: breakdown(...)}``:
    success rate, mean lens moves and episodes per cell; empty bands left out."""
    lines: list[str] = []
    for part, title in (("per_scene", "scene"), ("per_distance_band", "distance band")):
        seen = {c for b in per_method.values() for c, s in b[part].items() if s["episodes"]}
        columns = [
            c
            for c in (DISTANCE_BANDS if part == "per_distance_band" else sorted(seen))
            if c in seen
        ]
        if not columns:
            continue
        lines += ["", f"## Success (mean lens moves) by {title}", ""]
        lines += ["| method | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
        for method, result in per_method.items():
            cells = [_cell(result[part].get(column)) for column in columns]
            lines.append(f"| {method} | " + " | ".join(cells) + " |")
    return lines


def _cell(stats: Mapping[str, Any] | None) -> str:
    if not stats or not stats["episodes"]:
        return ""
    return f"{stats['success_rate']:.0%} ({stats['lens_moves_mean']:.1f}), n={stats['episodes']}"
