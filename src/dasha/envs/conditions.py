"""Episode conditions and the rig an env runs on.

Every episode of a simulated env draws a scene, a target distance and an illuminance
from the env's ``np_random``: distances 140..200 cm on a 1 cm grid and illuminances
13..300 lx on the paper's 10 lx schedule (13, 23, ..., 293, and 300), as the paper trained.
A real rig cannot change its conditions; its envs are registered ``nondeterministic``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from dasha.hardware.base import Camera, Lens
from dasha.hardware.sim import sim_rig
from dasha.sim.scenes import BUILTIN_SCENES
from dasha.sim.world import DISTANCE_RANGE_CM, ILLUMINANCE_RANGE_LUX


@dataclass(frozen=True)
class ConditionSampler:
    """Draws scene, distance and illuminance from grids over the paper's ranges.

    ``illuminance_levels=None`` uses the paper's 10 lx schedule; ``N`` uses N levels evenly
    spaced in log illuminance (what exposure cares about). Training uses coarse grids so
    that perception results are reused (``dasha.envs.senses``); evaluation uses 1 cm and
    the full schedule, with seeds training never saw.
    """

    scenes: tuple[str, ...] = tuple(BUILTIN_SCENES)
    distance_range_cm: tuple[float, float] = DISTANCE_RANGE_CM
    illuminance_range_lux: tuple[float, float] = ILLUMINANCE_RANGE_LUX
    distance_step_cm: float = 1.0
    illuminance_step_lux: float = 10.0
    illuminance_levels: int | None = None

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        d0, d1 = self.distance_range_cm
        l0, l1 = self.illuminance_range_lux
        distances = np.arange(d0, d1 + 1e-9, self.distance_step_cm)
        if self.illuminance_levels:
            lux = np.round(np.geomspace(l0, l1, self.illuminance_levels), 1)
        else:
            lux = np.unique(np.append(np.arange(l0, l1 + 1e-9, self.illuminance_step_lux), l1))
        return {
            "scene": str(self.scenes[int(rng.integers(len(self.scenes)))]),
            "distance_cm": float(distances[int(rng.integers(len(distances)))]),
            "illuminance_lux": float(lux[int(rng.integers(len(lux)))]),
        }


RigFactory = Callable[[], tuple[Camera, Lens]]


def reset_rig(
    camera: Camera,
    lens: Lens,
    rng: np.random.Generator,
    sampler: ConditionSampler | None,
) -> dict[str, Any]:
    """Factory settings (exposure 20000 us, lens 24 V, as the original), and on the simulator
    fresh conditions and a fresh noise seed."""
    from dasha.hardware.sim import FACTORY_EXPOSURE_US, FACTORY_FOCUS_V, SimCamera

    conditions: dict[str, Any] = {}
    if isinstance(camera, SimCamera):
        conditions = sampler.sample(rng) if sampler is not None else {}
        camera.reset(seed=int(rng.integers(2**31)), **conditions)
    camera.set_exposure_us(camera.exposure_range_us.clamp(FACTORY_EXPOSURE_US))
    lens.set_focus(lens.focus_range.clamp(FACTORY_FOCUS_V))
    return conditions


def scenes_from(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return tuple(BUILTIN_SCENES)
    return (value,) if isinstance(value, str) else tuple(value)


def make_sampler(
    scenes: str | Sequence[str] | None, grid: dict[str, Any] | None
) -> ConditionSampler:
    """The env's sampler: its scenes, and optional grid settings (see ``ConditionSampler``)."""
    return ConditionSampler(scenes=scenes_from(scenes), **(grid or {}))


def build_env(
    *,
    encoder: str,
    detector: str | None,
    target: str | None,
    cache_size: int,
    rig: RigFactory | None,
    sim_options: dict[str, Any] | None,
    senses: Any,
    scenes: str | Sequence[str] | None,
    condition_grid: dict[str, Any] | None,
    randomize: bool = True,
) -> tuple[Any, Camera, Lens, ConditionSampler | None, np.ndarray]:
    """What every DASHA env is made of: perception, a rig, a condition sampler, the exposure table.

    ``randomize=False`` keeps the rig's own conditions (running on a user's scene).
    """
    from dasha.envs.actions import exposure_table_us
    from dasha.envs.senses import Senses

    if senses is None:
        senses = Senses(encoder=encoder, detector=detector, target=target, cache_size=cache_size)
    camera, lens = (rig or (lambda: sim_rig(**(sim_options or {}))))()
    sampler = make_sampler(scenes, condition_grid) if randomize else None
    return senses, camera, lens, sampler, exposure_table_us(camera.exposure_range_us)
