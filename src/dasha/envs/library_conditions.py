"""The condition sets over the scene library: ``full`` and ``mismatch``.

``full``: the library's scenes of one split; target distance from 30 cm to infinity,
uniform in dioptres (what focus cares about: equal steps of lens power); the background
plane from just behind the target to infinity, also uniform in dioptres; illuminance
13..1000 lx, log-uniform (what exposure cares about); the target's physical size drawn
so that its image covers a height the detector can see (the scene's well-posed range
from the library check, within 10..90 % of the frame); nominal optics.

``mismatch``: ``full`` with the lens and sensor drawn off-nominal per episode
(``dasha.sim.variation.VariationRanges``: calibration offset and slope, f-number, PSF
shape, noise, gain): what a policy meets on a lens it was not trained on.

"Infinity" is ``FAR_VERGENCE_DPT`` (100 m): at 0.01 dpt the blur of this lens is under
half a pixel, indistinguishable from a star.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from dasha.errors import ConfigError
from dasha.sim.library import SPLITS, catalogue, photo_splits, split_scenes
from dasha.sim.optics import Optics
from dasha.sim.variation import VariationRanges

if TYPE_CHECKING:
    from dasha.envs.conditions import ConditionGrid

NEAR_DISTANCE_CM = 30.0
FAR_VERGENCE_DPT = 0.01
FULL_ILLUMINANCE_RANGE_LUX = (13.0, 1000.0)
# The target's image height, as a fraction of the frame height.
HEIGHT_FRACTION_RANGE = (0.1, 0.9)
# A scene without a library check (a user's photo) is drawn over this range.
DEFAULT_HEIGHT_FRACTIONS = (0.3, 0.7)
# The background is at least this much (in dioptres, relative) behind the target.
BACKGROUND_BEHIND_FRACTION = 0.9
FRAME_HEIGHT_PX = 404  # the paper's region; sizes are physical, so other regions just crop


def height_fractions(scene: str) -> tuple[float, float]:
    """The range of image heights (fraction of the frame) at which the scene is well-posed."""
    lo, hi = DEFAULT_HEIGHT_FRACTIONS
    entry = catalogue().scenes.get(scene)  # None: a user's photo, or a pairing never checked
    if entry is not None and "height_fractions" in entry.check:
        lo, hi = entry.check["height_fractions"]
    lo = max(lo, HEIGHT_FRACTION_RANGE[0])
    hi = min(hi, HEIGHT_FRACTION_RANGE[1])
    return float(lo), float(max(hi, lo))


@dataclass(frozen=True)
class LibrarySampler:
    """Draws one episode's conditions of the ``full`` (or, with ``variation``, ``mismatch``) set."""

    scenes: tuple[str, ...]
    variation: VariationRanges | None = None
    near_distance_cm: float = NEAR_DISTANCE_CM
    illuminance_range_lux: tuple[float, float] = FULL_ILLUMINANCE_RANGE_LUX
    optics: Optics = field(default_factory=Optics)  # nominal: sizes from its magnification
    illuminance_levels: int | None = None
    """``N``: illuminance on N levels evenly spaced in log lux (training's grid, so that
    perception results are reused); ``None``: continuous."""

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        scene = str(self.scenes[int(rng.integers(len(self.scenes)))])
        near_dpt = 100.0 / self.near_distance_cm
        target_dpt = float(rng.uniform(FAR_VERGENCE_DPT, near_dpt))
        background_dpt = float(rng.uniform(0.0, BACKGROUND_BEHIND_FRACTION * target_dpt))
        distance_cm = 100.0 / target_dpt
        background_cm = 100.0 / max(background_dpt, FAR_VERGENCE_DPT)
        lo, hi = height_fractions(scene)
        fraction = float(rng.uniform(lo, hi))
        size_cm = self.optics.object_size_cm(fraction * FRAME_HEIGHT_PX, distance_cm)
        l0, l1 = self.illuminance_range_lux
        if self.illuminance_levels:
            levels = np.geomspace(l0, l1, self.illuminance_levels)
            lux = float(levels[int(rng.integers(len(levels)))])
        else:
            lux = float(np.exp(rng.uniform(np.log(l0), np.log(l1))))
        conditions: dict[str, Any] = {
            "scene": scene,
            "distance_cm": round(distance_cm, 2),
            "background_cm": round(max(background_cm, distance_cm * 1.001), 2),
            "target_size_cm": round(size_cm, 3),
            "illuminance_lux": round(lux, 2),
        }
        if self.variation is not None:
            conditions["variation"] = self.variation.draw(rng).to_dict()
        return conditions


def library_sampler(
    split: str,
    scenes: Sequence[str] | None = None,
    mismatch: bool = False,
    illuminance_levels: int | None = None,
) -> LibrarySampler:
    """The sampler of the ``full`` / ``mismatch`` set on one split (or on the given scenes)."""
    if scenes:
        for name in scenes:
            other = photo_splits(name) - {split}
            if other:
                raise ConfigError(
                    f"scene {name!r} has photos of the {', '.join(sorted(other))} split, "
                    f"not only {split}: a photo is used only in its own split"
                )
        chosen = tuple(scenes)
    else:
        chosen = split_scenes(split)
    if not chosen:
        raise ConfigError(f"the scene library has no well-posed scene in the {split} split")
    ranges = VariationRanges() if mismatch else None
    return LibrarySampler(chosen, ranges, illuminance_levels=illuminance_levels)


@dataclass(frozen=True)
class LibraryConditions:
    """The ``full`` (``mismatch=False``) or ``mismatch`` condition set (module docstring).

    Of a training grid only ``illuminance_levels`` applies: distances are drawn
    continuously in dioptres (a 10 cm grid means nothing from 30 cm to infinity).
    """

    name: str
    mismatch: bool = False
    splits: tuple[str, ...] = SPLITS

    def scenes(self, split: str | None) -> tuple[str, ...]:
        if split is None:
            return tuple(s for sp in SPLITS for s in split_scenes(sp))
        return split_scenes(split)

    def sampler(
        self, split: str | None, scenes: Sequence[str] | None, grid: ConditionGrid | None
    ) -> LibrarySampler:
        if split is None:
            raise ConfigError(f"condition set {self.name!r} needs a split: train, val or test")
        levels = None if grid is None else grid.illuminance_levels
        return library_sampler(split, scenes, self.mismatch, levels)
