"""The agents' networks in plain torch, and policies exported to files that run without Ray.

One ``PolicyNet`` per agent: an MLP trunk over the observation, an action head and a
value head used only in training. Two action heads:

- ``categorical`` (A_H's exposure table, and any Discrete/MultiDiscrete space): n logits
  per categorical, concatenated;
- ``grid-gaussian`` (A_L's lens): coarse logits plus two numbers, a mean offset and a
  log-width, making one distribution over the joint coarse x fine voltage grid
  (``grid_logits``). Independent coarse and fine categoricals cannot say "near 37.0 V"
  (that is coarse 36 with fine 98, or coarse 37 with fine 2) and know nothing of fine 40
  being closer to 41 than to 90; a Gaussian on the ordered grid does both, so PPO learns
  the precise jump (a tenth of a volt) as a regression;
- ``jump-step`` (A_L when it observes its lens position): a mixture of that jump and a
  *step*, a discretised Gaussian around where the lens is now (``grid_components``). A
  jump from an absolute grid explores a small correction with ~1 % chance; a step makes
  "a little further" the natural move, so the precise second move is found early;
- ``jump-step-defocus`` (A_L when it also observes depth from defocus on the normalised
  grid): the jump, the step, and a third component around where depth from defocus puts
  focus (``envs.focus.DEFOCUS_ESTIMATE_INDEX`` of the observation). The estimate is often
  within a fraction of a bracket; read through a tanh MLP from among 2 x 1280 features it
  would come out a few brackets off, while as the component's centre it needs only to be
  trusted (its weight) and nudged (its offset).

An exported policy is a single ``torch.save`` file holding the state dict and everything
needed to rebuild and use it (observation size, action sizes, head, the encoder it was
trained with, the episode it was trained on); it loads with ``weights_only=True``.

File formats: 2 stores the ``EpisodeConfig`` of training as ``spec["episode"]``. Format 1
(the policies shipped before it) kept the stop rule in ``extra["sharp_brisque_max"]`` and
said nothing else of the episode; it reads as ``EpisodeConfig(encoder=spec encoder,
sharp_brisque_max=that, observe_lens=the network's observe_lens)``, the options it ran
with (``legacy_episode``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from dasha.envs.config import EpisodeConfig
from dasha.envs.focus import DEFOCUS_ESTIMATE_INDEX
from dasha.errors import ConfigError, require
from dasha.io import atomic_open

FORMAT_VERSION = 2
READABLE_FORMATS = (1, 2)
HEADS = ("categorical", "grid-gaussian", "jump-step", "jump-step-defocus")
GRID_HEADS = ("grid-gaussian", "jump-step", "jump-step-defocus")
STEP_HEADS = ("jump-step", "jump-step-defocus")  # the heads that step from the lens position


def head_episode_needs(head: str) -> dict[str, Any]:
    """The episode options a head reads its observation by: the step heads the lens position
    (the last entry); jump-step-defocus also the estimate (``DEFOCUS_ESTIMATE_INDEX``), as a
    fraction of the range that is a grid point only on the normalised grid."""
    if head == "jump-step-defocus":
        return {"observe_lens": True, "observe_defocus": True, "focus_action": "normalised"}
    if head in STEP_HEADS:
        return {"observe_lens": True}
    return {}


def missing_episode_needs(head: str, episode: EpisodeConfig) -> list[str]:
    """``head_episode_needs`` that ``episode`` does not meet, as ``option=value``."""
    return [f"{k}={v!r}" for k, v in head_episode_needs(head).items() if getattr(episode, k) != v]


# grid-gaussian (see grid_logits): the mean's offset moves this many grid steps per unit of
# network output; the width starts as wide as the grid and stays above a few steps (some
# exploration around the precise point, which is +-10 steps wide).
GRID_MEAN_STEPS_PER_UNIT = 100.0
GRID_INITIAL_WIDTH = 1.0
GRID_MIN_WIDTH = 4.0
# jump-step: the step's width starts at half a volt (steps around the current position find
# the target's detectable +-0.4 V and its sharp +-0.1 V often), and the jump and step
# components start equally likely.
STEP_INITIAL_WIDTH = 50.0


@dataclass(frozen=True)
class PolicySpec:
    """What a policy file must describe to be rebuilt and checked against an env."""

    agent: str  # "exposure" or "focus"
    obs_dim: int
    action_sizes: tuple[int, ...]  # (n,) for Discrete, (coarse, fine) for MultiDiscrete
    encoder: str
    hidden: tuple[int, ...] = (256, 256)
    extra: dict[str, Any] = field(default_factory=dict)  # training facts (steps, seed, lr, ...)
    head: str = "categorical"  # see HEADS; the grid heads need (coarse, fine) sizes
    observe_lens: bool = False  # the last observation entry is the lens position (grid fraction)
    episode: EpisodeConfig = field(default_factory=EpisodeConfig)  # what it was trained on

    def __post_init__(self) -> None:
        sizes = (self.obs_dim, *self.action_sizes, *self.hidden)
        if not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in sizes):
            raise ConfigError(
                "obs_dim, action_sizes and hidden must be positive whole numbers, got "
                f"{self.obs_dim!r}, {self.action_sizes!r}, {self.hidden!r}"
            )
        if not self.hidden or not self.action_sizes:
            raise ConfigError("a policy needs at least one hidden layer and one action head")
        if self.head not in HEADS:
            raise ConfigError(
                f"unknown action head {self.head!r}: choose one of {', '.join(HEADS)}"
            )
        if self.head in GRID_HEADS and len(self.action_sizes) != 2:
            raise ConfigError(f"the {self.head} head needs a (coarse, fine) MultiDiscrete action")
        if self.head in STEP_HEADS and not self.observe_lens:
            raise ConfigError(
                f"the {self.head} head steps from the lens position: it needs observe_lens "
                "(dasha train --observe-lens)"
            )

    @property
    def head_outputs(self) -> int:
        if self.head == "grid-gaussian":  # coarse logits, the Gaussian's offset and width
            return int(self.action_sizes[0]) + 2
        if self.head == "jump-step":  # the jump's, then the step's weight, offset and width
            return int(self.action_sizes[0]) + 5
        if self.head == "jump-step-defocus":  # and the defocus component's weight, offset, width
            return int(self.action_sizes[0]) + 8
        return int(sum(self.action_sizes))

    @property
    def value_trunk(self) -> bool:
        """The value head on its own MLP: with the grid-gaussian head, so that the value
        loss cannot shift the features a precise lens move is read from."""
        return self.head in GRID_HEADS


def build_net(spec: PolicySpec) -> Any:
    torch = require("torch", "perception")
    nn = torch.nn

    def mlp() -> Any:
        layers: list[Any] = []
        width = spec.obs_dim
        for size in spec.hidden:
            layers += [nn.Linear(width, size), nn.Tanh()]
            width = size
        return nn.Sequential(*layers)

    class PolicyNet(nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            self.trunk = mlp()
            self.value_trunk = mlp() if spec.value_trunk else None
            self.logits = nn.Linear(spec.hidden[-1], spec.head_outputs)
            self.value = nn.Linear(spec.hidden[-1], 1)
            nn.init.orthogonal_(self.logits.weight, gain=0.01)
            nn.init.zeros_(self.logits.bias)

        def forward(self, obs: Any) -> tuple[Any, Any]:
            hidden = self.trunk(obs)
            value_hidden = hidden if self.value_trunk is None else self.value_trunk(obs)
            logits = self.logits(hidden)
            grid_n = int(np.prod(spec.action_sizes))
            if spec.head == "jump-step":  # the distribution needs where the lens is (grid steps)
                logits = torch.cat([logits, obs[..., -1:] * grid_n], -1)
            elif spec.head == "jump-step-defocus":  # and where the estimate is (grid steps)
                estimate = obs[..., DEFOCUS_ESTIMATE_INDEX : DEFOCUS_ESTIMATE_INDEX + 1]
                logits = torch.cat([logits, obs[..., -1:] * grid_n, estimate * (grid_n - 1)], -1)
            return logits, self.value(value_hidden).squeeze(-1)

    return PolicyNet()


def _gaussian(steps: Any, mean: Any, log_width: Any, initial: float) -> Any:
    width = (np.log(initial) + log_width).clamp(np.log(GRID_MIN_WIDTH)).exp()
    return -0.5 * ((steps - mean) / width) ** 2


def grid_components(params: Any, action_sizes: tuple[int, ...], head: str) -> list[Any]:
    """Log-probabilities over the lens grid, ``[..., h]`` for ``h = coarse * fine_n + fine``,
    one per mixture component (one for grid-gaussian; jump then step for jump-step), each
    already weighted by its log mixture weight.

    The *jump* (``params = [coarse logits (coarse_n), mean offset, log-width, ...]``): the
    logit of grid point h (ordered: monotonic in volts, ``dasha.envs.actions``) is

        coarse_logit[coarse(h)] - (h - mean)^2 / (2 width^2),
        mean = fine_n * (E[coarse] + 1/2) + GRID_MEAN_STEPS_PER_UNIT * offset,

    a coarse categorical times a discretised Gaussian centred on the coarse choice's
    expectation. At the start the Gaussian is as wide as the grid, so the coarse logits
    explore and find the right volt as fast as a plain categorical does; the Gaussian then
    narrows on the precise point, and it can straddle a volt boundary (36.98 V and 37.02 V
    are neighbours here, not fine 98 and fine 2 of different volts).

    The *step* (jump-step only; ``params[..., coarse_n + 2:] = [step weight logit, offset,
    log-width, lens position in grid steps]``): a discretised Gaussian centred on the lens
    position plus ``GRID_MEAN_STEPS_PER_UNIT * offset``, mixed with the jump by
    ``sigmoid(step weight logit)``.

    The *defocus* component (jump-step-defocus: ``params[..., coarse_n + 2:] = [step weight
    logit, offset, log-width, defocus weight logit, offset, log-width, lens position,
    estimate]``, positions in grid steps): the same around depth from defocus's estimate;
    the three are mixed by ``softmax(0, step weight logit, defocus weight logit)``, which is
    the two-component mixture when the defocus weight is -inf.
    """
    torch = require("torch", "perception")
    coarse_n, fine_n = int(action_sizes[0]), int(action_sizes[1])
    n = coarse_n * fine_n
    steps = torch.arange(n, dtype=params.dtype, device=params.device)
    coarse_logits = params[..., :coarse_n]
    offset, log_width = (
        params[..., coarse_n : coarse_n + 1],
        params[..., coarse_n + 1 : coarse_n + 2],
    )
    volts = torch.arange(coarse_n, dtype=params.dtype, device=params.device)
    expected = (torch.softmax(coarse_logits, -1) * volts).sum(-1, keepdim=True)
    mean = fine_n * (expected + 0.5) + GRID_MEAN_STEPS_PER_UNIT * offset
    jump = torch.log_softmax(
        coarse_logits.repeat_interleave(fine_n, dim=-1)
        + _gaussian(steps, mean, log_width, GRID_INITIAL_WIDTH * n),
        -1,
    )
    if head not in STEP_HEADS:
        return [jump]

    def around(centre: Any, offset: Any, log_width: Any) -> Any:
        mean = centre + GRID_MEAN_STEPS_PER_UNIT * offset
        return torch.log_softmax(_gaussian(steps, mean, log_width, STEP_INITIAL_WIDTH), -1)

    rest = params[..., coarse_n + 2 :]
    if head == "jump-step":
        weight, step_offset, step_log_width, position = rest.split(1, -1)
        weights = torch.cat([torch.zeros_like(weight), weight], -1)
        components = [jump, around(position, step_offset, step_log_width)]
    else:
        step_w, step_offset, step_log_width, defocus_w, defocus_offset, defocus_log_width = rest[
            ..., :6
        ].split(1, -1)
        position, estimate = rest[..., 6:7], rest[..., 7:8]
        weights = torch.cat([torch.zeros_like(step_w), step_w, defocus_w], -1)
        components = [
            jump,
            around(position, step_offset, step_log_width),
            around(estimate, defocus_offset, defocus_log_width),
        ]
    log_weights = torch.log_softmax(weights, -1)
    return [log_weights[..., i : i + 1] + c for i, c in enumerate(components)]


def grid_logits(params: Any, action_sizes: tuple[int, ...], head: str = "grid-gaussian") -> Any:
    """Joint logits (log-probabilities) over the lens grid: the mixture of ``grid_components``."""
    torch = require("torch", "perception")
    return torch.logsumexp(torch.stack(grid_components(params, action_sizes, head)), 0)


def grid_median(logits: Any) -> Any:
    """The deterministic lens move of one grid distribution: its median grid point.

    Not the joint argmax: where the coarse logits step from one volt to the next, the
    argmax sits on the volt's edge (x.99 V) although the mass lies around the Gaussian's
    mean; on the ordered grid the median is where the distribution actually is.
    """
    torch = require("torch", "perception")
    below = torch.softmax(logits, -1).cumsum(-1) < 0.5
    return below.sum(-1).clamp(max=logits.shape[-1] - 1)


def grid_move(params: Any, action_sizes: tuple[int, ...], head: str) -> Any:
    """The deterministic lens move: the median of the more likely component (the median of
    a jump-or-step mixture could fall between the two)."""
    torch = require("torch", "perception")
    components = grid_components(params, action_sizes, head)
    medians = torch.stack([grid_median(c) for c in components], -1)
    weights = torch.stack([c.logsumexp(-1) for c in components], -1)
    return medians.gather(-1, weights.argmax(-1, keepdim=True)).squeeze(-1)


def greedy_action(logits: np.ndarray, action_sizes: tuple[int, ...]) -> np.ndarray:
    """The most likely action of each categorical head."""
    heads = np.split(np.asarray(logits), np.cumsum(action_sizes)[:-1], axis=-1)
    return np.array([int(np.argmax(h, axis=-1)) for h in heads], dtype=np.int64)


class Policy:
    """A trained agent: observation (numpy) -> action, deterministic, no Ray."""

    def __init__(self, spec: PolicySpec, state_dict: dict[str, Any]) -> None:
        torch = require("torch", "perception")
        self.spec = spec
        self.net = build_net(spec)
        self.net.load_state_dict(state_dict)
        self.net.eval()
        self._torch = torch

    def act(self, obs: np.ndarray) -> np.ndarray | int:
        if obs.shape != (self.spec.obs_dim,):
            raise ConfigError(
                f"the {self.spec.agent} policy expects observations of {self.spec.obs_dim} numbers "
                f"(encoder {self.spec.encoder!r}), got shape {obs.shape}"
            )
        with self._torch.inference_mode():
            logits, _ = self.net(self._torch.as_tensor(obs, dtype=self._torch.float32)[None])
            if self.spec.head in GRID_HEADS:
                best = int(grid_move(logits, self.spec.action_sizes, self.spec.head)[0])
                return np.array(divmod(best, self.spec.action_sizes[1]), dtype=np.int64)
        action = greedy_action(logits[0].numpy(), self.spec.action_sizes)
        return int(action[0]) if len(self.spec.action_sizes) == 1 else action

    def save(self, path: str | Path) -> None:
        torch = require("torch", "perception")
        payload = {
            "format": FORMAT_VERSION,
            "spec": _spec_to_dict(self.spec),
            "state_dict": self.net.state_dict(),
        }
        with atomic_open(path, "wb") as handle:
            torch.save(payload, handle)

    @classmethod
    def load(cls, path: str | Path) -> Policy:
        torch = require("torch", "perception")
        path = Path(path)
        if not path.is_file():
            raise ConfigError(
                f"no policy file at {path}: train one with `dasha train --out DIR` or omit --policy for the shipped ones"
            )
        try:
            payload = torch.load(path, map_location="cpu", weights_only=True)
            version = payload.get("format")
        except Exception as exc:
            raise ConfigError(f"{path} is not a DASHA policy file ({exc})") from exc
        if version not in READABLE_FORMATS:
            raise ConfigError(
                f"{path} has policy format {version}, this DASHA reads {READABLE_FORMATS}"
            )
        try:
            spec = spec_from_dict(payload["spec"], version)
        except Exception as exc:
            raise ConfigError(f"{path} is not a DASHA policy file ({exc})") from exc
        state = payload.get("state_dict")
        if not isinstance(state, dict) or not all(
            isinstance(v, torch.Tensor) for v in state.values()
        ):
            raise ConfigError(f"{path} is not a DASHA policy file (no state_dict of tensors)")
        bad = [
            k for k, v in state.items() if v.is_floating_point() and not bool(v.isfinite().all())
        ]
        if bad:
            # A diverged run saves NaN weights; its actions would be arbitrary, not an error.
            raise ConfigError(f"{path}: weights {', '.join(bad[:3])} are not finite (NaN or inf)")
        try:
            return cls(spec, state)
        except RuntimeError as exc:  # load_state_dict: missing keys or mismatched shapes
            first = str(exc).strip().splitlines()
            raise ConfigError(
                f"{path}: the weights do not fit the network its spec describes "
                f"({' '.join(first[:3])[:300]})"
            ) from exc


def spec_from_dict(data: dict[str, Any], version: int = FORMAT_VERSION) -> PolicySpec:
    """A ``PolicySpec`` from a policy file's ``spec`` (see the module docstring on formats)."""
    known = {f.name for f in fields(PolicySpec)}
    unknown = set(data) - known
    if unknown:
        raise ConfigError(f"unknown policy spec field(s) {', '.join(sorted(unknown))}")
    values = {
        **data,
        "action_sizes": tuple(data["action_sizes"]),
        "hidden": tuple(data["hidden"]),
        "extra": dict(data.get("extra", {})),
    }
    if version == 1:
        values["episode"] = legacy_episode(values)
        values["extra"].pop("sharp_brisque_max", None)  # now part of the episode
    else:
        values["episode"] = EpisodeConfig.from_dict(data["episode"])
    return PolicySpec(**values)


def legacy_episode(spec: dict[str, Any]) -> EpisodeConfig:
    """The episode options a format-1 file recorded (the rest are the defaults it ran with)."""
    gate = spec.get("extra", {}).get("sharp_brisque_max")
    return EpisodeConfig(
        encoder=str(spec["encoder"]),
        sharp_brisque_max=None if gate is None else float(gate),
        observe_lens=bool(spec.get("observe_lens", False)),
    )


def _spec_to_dict(spec: PolicySpec) -> dict[str, Any]:
    data = asdict(spec)
    data["action_sizes"] = list(spec.action_sizes)
    data["hidden"] = list(spec.hidden)
    data["episode"] = spec.episode.to_dict()
    return data


def action_sizes_of(space: Any) -> tuple[int, ...]:
    """(n,) for a Discrete space, nvec for a MultiDiscrete one."""
    if hasattr(space, "nvec"):
        return tuple(int(n) for n in space.nvec)
    return (int(space.n),)
