"""``EpisodeConfig``: everything that defines a DASHA episode, in one typed, frozen value.

Every env (``Exposure-v0``, ``Focus-v0``, the hierarchical episode), training
(``TrainConfig.episode``), the policy files (``PolicySpec.episode``), ``dasha evaluate``,
``dasha focus`` and ``dasha bench`` take their episode options from it, so each option
has its default here and nowhere else. What cannot be written to a file (a rig factory,
shared ``Senses``) is passed beside it.

The defaults are the paper's episode: any detection ends A_L's search, A_L sees E(I)
only, conditions of the ``paper`` set at the evaluation grid.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from dasha.envs.actions import check_focus_action
from dasha.envs.conditions import (
    ConditionGrid,
    ConditionSet,
    RigFactory,
    Sampler,
    check_split,
    condition_set,
)
from dasha.envs.stop import DEFOCUS_STOP, PEAK_BRACKET, check_stop_rule
from dasha.errors import ConfigError, check_choice
from dasha.hardware.base import Camera, Lens
from dasha.perception.detectors import DEFAULT_DETECTOR, DETECTORS
from dasha.perception.encoder import DEFAULT_ENCODER
from dasha.perception.onnx_runtime import DEFAULT_BACKEND
from dasha.perception.senses import Senses

EXPOSURE_OBSERVATIONS = ("paper", "bracket")
# When A_H hands over to A_L: only from a suitable histogram (Fig. 2), or always, once its
# moves are spent (an autofocus focuses whatever its exposure gave it).
HANDOVERS = ("suitable", "always")
MAX_EXPOSURE_MOVES = 10  # as many as A_L's horizon: past that an exposure loop is hunting


@dataclass(frozen=True)
class EpisodeConfig:
    conditions: str = "paper"
    """Name of the condition set (``dasha.envs.conditions.CONDITION_SETS``)."""
    split: str | None = None
    """Split of the set (train / val / test); ``None``: a set without splits, or all of one."""
    scenes: tuple[str, ...] | None = None
    """Draw only these scenes (built-in names or image paths with a sidecar JSON)."""
    encoder: str = DEFAULT_ENCODER
    detector: str = DEFAULT_DETECTOR
    backend: str = DEFAULT_BACKEND
    """Inference backend of the perception: auto (per model the fastest installed that keeps
    the agents' results), onnxruntime, onnxruntime-int8 or reference (torch / cv2.dnn / the
    brisque package's features); ``perception.onnx_runtime``."""
    target: str | None = None
    """Class the detector looks for; ``None``: the scene's own target."""
    cache_size: int = 50_000
    """Perception cache entries (``dasha.perception.senses``; 0: perceive every frame afresh)."""
    sharp_brisque_max: float | None = None
    """A_L's stop rule: the target counts as found only when its box's BRISQUE is at most
    this, plus an allowance for clipped highlights (``envs.rewards.target_found``);
    ``None``: any detection, the paper's eq. 12."""
    stop_rule: str = "detection"
    """When A_L's search ends (``envs.stop``): ``"detection"``, the paper's (with the
    optional ``sharp_brisque_max`` gate); ``"peak"``, once the sharpest detected frame is
    bracketed by less sharp ones within ``peak_bracket`` (threshold-free on the scene);
    ``"defocus"``, the peak rule or a detected frame where depth from defocus puts focus."""
    peak_bracket: float = PEAK_BRACKET
    """The peak rule's bracket, as a fraction of the lens's range (two depths of focus of
    the default optics on the Varioptic; ``envs.stop.PEAK_BRACKET``)."""
    defocus_stop: float = DEFOCUS_STOP
    """The defocus rule ends a search where depth from defocus puts focus at most this far
    from the frame (a fraction of the lens's range; half a depth of focus,
    ``envs.stop.DEFOCUS_STOP``)."""
    observe_lens: bool = False
    """A_L also observes where it set the lens (``envs.focus.FocusSearch.observe``)."""
    observe_previous: bool = False
    """A_L also observes the previous frame: its E(I), lens position, and how much sharper
    this frame is (two frames at known positions carry the blur's sign and size)."""
    observe_defocus: bool = False
    """A_L also observes where depth from defocus puts focus, from this search's frames and
    their lens positions (``perception.defocus``): the estimate, its offset from here and
    its confidence."""
    blur_px_per_range: float | None = None
    """The blur diameter (frame pixels) of a defocus as large as the lens's whole range,
    which depth from defocus needs; ``None``: the simulator's nominal optics and lens."""
    fit_blur_scale: bool = False
    """Depth from defocus also fits the blur scale over a detected box (a lens whose
    f-number or calibration is not the assumed ``blur_px_per_range``;
    ``envs.stop.SearchMemory.focus_estimate``): better on the ``mismatch`` lenses, worse on
    the nominal one."""
    exposure_observation: str = "paper"
    """What A_H observes (``envs.exposure.exposure_observation``): ``"paper"``, E(I) and the
    histogram; ``"bracket"``, the histogram and a virtual exposure bracket over the table
    (the peak a linear sensor's frame predicts at every exposure), without E(I), so that what
    the training scenes are cannot stand in for how bright they are."""
    exposure_moves: int = 1
    """A_H's moves before an unsuitable histogram ends the episode: the paper's one (eq. 11
    ends it at once); with more, A_H looks again from the frame its last move gave, as an
    auto-exposure loop does. Every move is counted."""
    handover: str = "suitable"
    """When A_L takes over: ``"suitable"``, only from a suitable histogram (Fig. 2; otherwise
    the episode ends once A_H's moves are spent); ``"always"``, also from an unsuitable one,
    once A_H's moves are spent (A_H still takes eq. 11's penalty): what a camera's autofocus
    does, since the detector may find the target on such a frame all the same."""
    focus_action: str = "volts"
    """A_L's action units (``envs.actions``): ``"volts"``, the paper's grid of the lens's
    volts; ``"normalised"``, a fixed grid over the lens's own range (any lens)."""
    condition_grid: ConditionGrid | None = None
    """How finely conditions are drawn (``None``: the evaluation grid, 1 cm and 10 lx)."""
    randomize: bool = True
    """Draw fresh conditions every episode; ``False`` keeps the rig's own (a user's scene)."""

    def __post_init__(self) -> None:
        # Normalise what gym.make kwargs and the CLI hand over (lists, a single scene, dicts),
        # so that equal configs compare equal and the value stays immutable.
        scenes = self.scenes
        if isinstance(scenes, (str, Path)):
            scenes = (str(scenes),)
        elif scenes is not None:
            scenes = tuple(str(s) for s in scenes) or None
        object.__setattr__(self, "scenes", scenes)
        if isinstance(self.condition_grid, Mapping):
            object.__setattr__(self, "condition_grid", _grid(self.condition_grid))
        if self.cache_size < 0:
            raise ConfigError(f"cache_size={self.cache_size} must be 0 or more")
        check_split(self.condition_set, self.split)
        check_focus_action(self.focus_action)
        check_stop_rule(self.stop_rule)
        check_choice("exposure_observation", self.exposure_observation, EXPOSURE_OBSERVATIONS)
        check_choice("handover", self.handover, HANDOVERS)
        check_choice("detector", self.detector, DETECTORS)
        if self.stop_rule != "detection" and self.sharp_brisque_max is not None:
            raise ConfigError(
                f"the {self.stop_rule} stop rule needs no BRISQUE gate: drop sharp_brisque_max "
                "(--sharp-brisque-max) or use stop_rule='detection'"
            )
        if self.blur_px_per_range is not None and not self.blur_px_per_range > 0:
            raise ConfigError(
                f"blur_px_per_range={self.blur_px_per_range} must be a positive number of pixels"
            )
        if not 1 <= self.exposure_moves <= MAX_EXPOSURE_MOVES:
            raise ConfigError(
                f"exposure_moves={self.exposure_moves} must be a whole number from 1 to "
                f"{MAX_EXPOSURE_MOVES} (A_H's moves before an unsuitable histogram ends the episode)"
            )
        if not 0.0 < self.defocus_stop < 1.0:
            raise ConfigError(
                f"defocus_stop={self.defocus_stop} must be a fraction of the lens range in (0, 1)"
            )
        if not 0.0 < self.peak_bracket < 1.0:
            raise ConfigError(
                f"peak_bracket={self.peak_bracket} must be a fraction of the lens range in (0, 1)"
            )

    @property
    def condition_set(self) -> ConditionSet:
        return condition_set(self.conditions)

    def sampler(self) -> Sampler | None:
        """The conditions sampler of this episode (``None`` when it keeps the rig's own)."""
        if not self.randomize:
            return None
        return self.condition_set.sampler(self.split, self.scenes, self.condition_grid)

    def with_options(self, **options: Any) -> EpisodeConfig:
        """This config with some fields changed; an unknown name is an error."""
        unknown = set(options) - EPISODE_FIELDS
        if unknown:
            raise ConfigError(
                f"unknown episode option(s) {', '.join(sorted(unknown))}: "
                f"choose among {', '.join(sorted(EPISODE_FIELDS))}"
            )
        return replace(self, **options)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON / ``torch.save(weights_only)`` types."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["scenes"] = None if self.scenes is None else list(self.scenes)
        data["condition_grid"] = (
            None if self.condition_grid is None else self.condition_grid.to_dict()
        )
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> EpisodeConfig:
        return cls().with_options(**data)


EPISODE_FIELDS = frozenset(f.name for f in fields(EpisodeConfig))


def _grid(data: Mapping[str, Any]) -> ConditionGrid:
    try:
        return ConditionGrid(**data)
    except TypeError as exc:
        raise ConfigError(f"condition grid {dict(data)}: {exc}") from exc


def episode_config(config: EpisodeConfig | None, options: Mapping[str, Any]) -> EpisodeConfig:
    """An env's config: ``config`` (default: ``EpisodeConfig()``) with keyword options over it,
    so ``gym.make("dasha/Focus-v0", scenes=["cameraman"])`` keeps working."""
    return (config or EpisodeConfig()).with_options(**options)


def senses_for(config: EpisodeConfig, with_detector: bool = True) -> Senses:
    """The perception an episode config asks for."""
    return Senses(
        encoder=config.encoder,
        detector=config.detector if with_detector else None,
        target=config.target,
        cache_size=config.cache_size,
        backend=config.backend,
    )


class EnvParts(NamedTuple):
    senses: Senses
    camera: Camera
    lens: Lens
    sampler: Sampler | None
    table_us: np.ndarray


def build_env(
    config: EpisodeConfig,
    *,
    rig: RigFactory | None = None,
    sim_options: dict[str, Any] | None = None,
    senses: Senses | None = None,
    with_detector: bool = True,
) -> EnvParts:
    """What every DASHA env is made of: perception, a rig (default: the simulator with
    ``sim_options``), a condition sampler and the exposure table.

    ``with_detector=False``: the exposure agent needs no detector (BRISQUE of the frame is
    its only judge).
    """
    from dasha.envs.actions import exposure_table_us
    from dasha.hardware.sim import sim_rig

    senses = senses if senses is not None else senses_for(config, with_detector)
    camera, lens = (rig or (lambda: sim_rig(**(sim_options or {}))))()
    return EnvParts(
        senses, camera, lens, config.sampler(), exposure_table_us(camera.exposure_range_us)
    )
