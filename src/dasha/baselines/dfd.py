"""``dfd``: depth from defocus with the detector's stop, scripted, nothing learned.

The search A_L's pre-training imitates (``agents.expert``), run as an autofocus of its own:
probe frames at fixed fractions of the lens's range, then the lens goes where depth from
defocus over the search's frames puts focus (over the detected box, or while nothing is
detected over the frame, on the nearest plane no frame has ruled out:
``envs.stop.open_focus_estimate``), and the defocus rule (``envs.stop``) ends the search on
a detected frame where the estimate agrees. It reads no ground truth: the probes and the
blur per range are calibrations of the lens and the optics, as a camera's DFD lens
profile is. It is the bench's measure of what A_L's observation and stop rule allow
without a network, and what the figures in ``envs.stop``'s docstrings were measured with.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from dasha.agents.expert import expert_move
from dasha.envs.actions import focus_fraction_to_action
from dasha.envs.config import EpisodeConfig
from dasha.envs.focus import HORIZON, FocusSearch
from dasha.envs.stop import MEMORY_RULES
from dasha.errors import ConfigError
from dasha.hardware.base import Camera, Frame, Lens
from dasha.perception.senses import Senses

DFD_EPISODE = EpisodeConfig(stop_rule="defocus", focus_action="normalised")
# The 0.25 and 0.75 quantiles of the in-focus position (fraction of the range) over 200
# train conditions of ``full`` on the default lens: what ``dasha pretrain`` measures
# (``agents.pretrain.focus_probes``) and records in its policy's extra["pretrain"].
DEFAULT_PROBES = (0.2956, 0.3685)


@dataclass(frozen=True)
class DfdConfig:
    """One scripted search: its probe positions (fractions of the lens's range), the most
    lens moves it may make (A_L's horizon) and the episode options its search runs with
    (stop rule, optics)."""

    probes: tuple[float, ...] = DEFAULT_PROBES
    max_moves: int = HORIZON
    episode: EpisodeConfig = DFD_EPISODE

    def __post_init__(self) -> None:
        if not all(0.0 <= p <= 1.0 for p in self.probes):
            raise ConfigError(f"dfd probes {self.probes} must be fractions of the range in [0, 1]")
        if self.max_moves < 1:
            raise ConfigError(f"dfd max_moves must be at least 1, got {self.max_moves}")
        if self.episode.stop_rule not in MEMORY_RULES:
            raise ConfigError(
                f"the dfd search needs a stop rule that remembers its frames "
                f"({', '.join(MEMORY_RULES)}), got {self.episode.stop_rule!r}"
            )


@dataclass(frozen=True)
class DfdResult:
    """Where the search ended: its last frame, the lens moves it made, whether the target
    was detected there, and whether the stop rule ended it (``False``: out of moves,
    i.e. ``failed``). ``positions``: every frame's lens position, a fraction of the range."""

    frame: Frame
    lens_moves: int
    detected: bool
    stopped: bool
    positions: list[float] = field(default_factory=list)

    @property
    def state(self) -> str:
        return "focused" if self.stopped else "failed"


def dfd_search(
    camera: Camera, lens: Lens, senses: Senses, config: DfdConfig | None = None
) -> DfdResult:
    """Focus once from where the lens is now (``DfdConfig``)."""
    config = config or DfdConfig()
    search = FocusSearch(camera, lens, senses, config.episode)
    frame = camera.grab()
    search.begin(frame)
    moves, detected, stopped = 0, search.memory.seen[-1].detected, False
    while moves < config.max_moves and not stopped:
        target = expert_move(search, config.probes)
        move = search.step(np.asarray(focus_fraction_to_action(target)))
        frame, detected, stopped = move.frame, move.seen.detected, move.over
        moves += move.lens_moves
    return DfdResult(frame, moves, detected, stopped, list(search.memory.positions))
