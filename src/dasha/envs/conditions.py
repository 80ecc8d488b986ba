"""Condition sets: the worlds an episode can be drawn from, by name, for training,
``dasha evaluate`` and ``dasha bench`` alike.

A condition set has a name, its splits (``train``/``val``/``test``, or none), the scenes of
each split, and a sampler. A sampler draws one episode's conditions from an
``np.random.Generator``: a dict of keyword arguments of ``dasha.sim.world.Conditions``
(``scene``, ``distance_cm``, ``illuminance_lux``, ...). Those dicts go to the simulated
rig as they are (``SimCamera.reset(**conditions)``), so a set may draw any field the
simulator knows without this module listing them.

``paper``: the paper's four built-in photographs, distances 140..200 cm on a 1 cm grid,
illuminances 13..300 lx on the paper's 10 lx schedule (13, 23, ..., 293, and 300),
nominal optics. It has no splits.

``full`` and ``mismatch`` (``dasha.envs.library_conditions``): the scene library's scenes
of one split, 30 cm .. infinity, 13..1000 lx, the target's physical size drawn; nominal
optics, or optics and sensor drawn off-nominal. A real rig cannot change its conditions;
its envs are registered ``nondeterministic``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

from dasha.errors import ConfigError
from dasha.hardware.base import Camera, Lens
from dasha.sim.scenes import BUILTIN_SCENES
from dasha.sim.world import DISTANCE_RANGE_CM, ILLUMINANCE_RANGE_LUX

SPLITS = ("train", "val", "test")


class Sampler(Protocol):
    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """One episode's conditions: keyword arguments of ``dasha.sim.world.Conditions``."""
        ...


@dataclass(frozen=True)
class ConditionGrid:
    """How finely a sampler draws: training uses coarse grids so that perception results
    are reused (``dasha.perception.senses``); evaluation the default (1 cm, 10 lx steps).

    ``illuminance_levels=None`` uses the 10 lx schedule; ``N`` uses N levels evenly spaced
    in log illuminance (what exposure cares about).
    """

    distance_step_cm: float = 1.0
    illuminance_step_lux: float = 10.0
    illuminance_levels: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class ConditionSet(Protocol):
    """A named world of episodes (see the module docstring)."""

    @property
    def name(self) -> str: ...

    @property
    def splits(self) -> tuple[str, ...]:
        """The set's splits, among ``SPLITS``; ``()`` for a set without splits."""
        ...

    def scenes(self, split: str | None) -> tuple[str, ...]:
        """The scenes of one split (``None``: the whole set)."""
        ...

    def sampler(
        self, split: str | None, scenes: Sequence[str] | None, grid: ConditionGrid | None
    ) -> Sampler:
        """A sampler over one split; ``scenes`` (when given) replace the split's scenes."""
        ...


@dataclass(frozen=True)
class ConditionSampler:
    """Draws scene, distance and illuminance from grids over given ranges."""

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


@dataclass(frozen=True)
class PaperConditions:
    """The paper's training conditions (see the module docstring)."""

    name: str = "paper"
    splits: tuple[str, ...] = ()

    def scenes(self, split: str | None) -> tuple[str, ...]:
        check_split(self, split)
        return tuple(BUILTIN_SCENES)

    def sampler(
        self, split: str | None, scenes: Sequence[str] | None, grid: ConditionGrid | None
    ) -> Sampler:
        chosen = tuple(scenes) if scenes else self.scenes(split)
        return ConditionSampler(scenes=chosen, **(grid or ConditionGrid()).to_dict())


CONDITION_SETS: dict[str, ConditionSet] = {}


def register_condition_set(conditions: ConditionSet) -> ConditionSet:
    """Make a set available by its name (to ``EpisodeConfig``, ``--conditions``, the bench)."""
    if conditions.name in CONDITION_SETS:
        raise ConfigError(f"a condition set named {conditions.name!r} is already registered")
    unknown = set(conditions.splits) - set(SPLITS)
    if unknown:
        raise ConfigError(f"condition set {conditions.name!r}: splits must be among {SPLITS}")
    CONDITION_SETS[conditions.name] = conditions
    return conditions


def condition_set(name: str) -> ConditionSet:
    try:
        return CONDITION_SETS[name]
    except KeyError:
        raise ConfigError(
            f"unknown condition set {name!r}: choose one of {', '.join(CONDITION_SETS)}"
        ) from None


def check_split(conditions: ConditionSet, split: str | None) -> None:
    """``split`` must be one of the set's splits, or ``None``; a set without splits takes none."""
    if split is None:
        return
    if not conditions.splits:
        raise ConfigError(
            f"condition set {conditions.name!r} has no splits (it draws from all its scenes): "
            "drop --split"
        )
    if split not in conditions.splits:
        raise ConfigError(
            f"split {split!r} of condition set {conditions.name!r}: "
            f"choose one of {', '.join(conditions.splits)}"
        )


def resolve_split(name: str, given: str | None, default: str) -> str | None:
    """The split a command runs on: the given one, else ``default`` where the set has splits.

    An explicitly given split on a set without splits is an error, never ignored.
    """
    conditions = condition_set(name)
    split = given if given is not None or not conditions.splits else default
    check_split(conditions, split)
    return split


register_condition_set(PaperConditions())


def _register_library_sets() -> None:
    # The library's sets live beside (they need the scene catalogue, not this module).
    from dasha.envs.library_conditions import LibraryConditions

    register_condition_set(LibraryConditions("full"))
    register_condition_set(LibraryConditions("mismatch", mismatch=True))


_register_library_sets()


RigFactory = Callable[[], tuple[Camera, Lens]]


def reset_rig(
    camera: Camera,
    lens: Lens,
    rng: np.random.Generator,
    sampler: Sampler | None,
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
