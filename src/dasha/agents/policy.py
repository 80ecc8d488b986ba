"""The agents' networks in plain torch, and policies exported to files that run without Ray.

One ``PolicyNet`` per agent: an MLP trunk over the observation, an action-logits head
(Discrete: n logits; MultiDiscrete: the heads' logits concatenated) and a value head
used only in training. An exported policy is a single ``torch.save`` file holding the
state dict and everything needed to rebuild and use it (observation size, action
sizes, the encoder it was trained with); it loads with ``weights_only=True``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dasha.errors import ConfigError, require
from dasha.io import atomic_open

FORMAT_VERSION = 1


@dataclass(frozen=True)
class PolicySpec:
    """What a policy file must describe to be rebuilt and checked against an env."""

    agent: str  # "exposure" or "focus"
    obs_dim: int
    action_sizes: tuple[int, ...]  # (n,) for Discrete, (coarse, fine) for MultiDiscrete
    encoder: str
    hidden: tuple[int, ...] = (256, 256)
    extra: dict[str, Any] = field(default_factory=dict)  # training facts (steps, seed, ...)


def build_net(spec: PolicySpec) -> Any:
    torch = require("torch", "perception")
    nn = torch.nn

    class PolicyNet(nn.Module):  # type: ignore[name-defined]
        def __init__(self) -> None:
            super().__init__()
            layers: list[Any] = []
            width = spec.obs_dim
            for size in spec.hidden:
                layers += [nn.Linear(width, size), nn.Tanh()]
                width = size
            self.trunk = nn.Sequential(*layers)
            self.logits = nn.Linear(width, int(sum(spec.action_sizes)))
            self.value = nn.Linear(width, 1)
            nn.init.orthogonal_(self.logits.weight, gain=0.01)
            nn.init.zeros_(self.logits.bias)

        def forward(self, obs: Any) -> tuple[Any, Any]:
            hidden = self.trunk(obs)
            return self.logits(hidden), self.value(hidden).squeeze(-1)

    return PolicyNet()


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
            spec = PolicySpec(
                **{
                    **payload["spec"],
                    "action_sizes": tuple(payload["spec"]["action_sizes"]),
                    "hidden": tuple(payload["spec"]["hidden"]),
                }
            )
        except Exception as exc:
            raise ConfigError(f"{path} is not a DASHA policy file ({exc})") from exc
        if payload.get("format") != FORMAT_VERSION:
            raise ConfigError(
                f"{path} has policy format {payload.get('format')}, this DASHA reads {FORMAT_VERSION}"
            )
        return cls(spec, payload["state_dict"])


def _spec_to_dict(spec: PolicySpec) -> dict[str, Any]:
    data = asdict(spec)
    data["action_sizes"] = list(spec.action_sizes)
    data["hidden"] = list(spec.hidden)
    return data


def action_sizes_of(space: Any) -> tuple[int, ...]:
    """(n,) for a Discrete space, nvec for a MultiDiscrete one."""
    if hasattr(space, "nvec"):
        return tuple(int(n) for n in space.nvec)
    return (int(space.n),)
