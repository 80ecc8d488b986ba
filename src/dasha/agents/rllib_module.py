"""``PolicyNet`` as an RLlib RLModule for PPO (new API stack), so training and running share one network."""

from __future__ import annotations

from typing import Any

from dasha.agents.policy import (
    GRID_HEADS,
    PolicySpec,
    action_sizes_of,
    build_net,
    grid_logits,
    grid_move,
)
from dasha.errors import require

_torch_rl = require("ray.rllib.core.rl_module.torch", "rl")
_apis = require("ray.rllib.core.rl_module.apis", "rl")
_columns = require("ray.rllib.core.columns", "rl")
_dists = require("ray.rllib.core.distribution.torch.torch_distribution", "rl")
Columns = _columns.Columns


class TorchGridGaussian(_dists.TorchCategorical):  # type: ignore[name-defined]
    """The grid heads (``grid-gaussian``, ``jump-step``) as an RLlib distribution: a
    categorical over the joint (coarse, fine) grid whose logits are discretised Gaussians
    (``policy.grid_logits``); actions go in and out as (coarse, fine) pairs, as the
    MultiDiscrete space has them."""

    def __init__(self, params: Any, action_sizes: tuple[int, int], head: str) -> None:
        super().__init__(logits=grid_logits(params, action_sizes, head))
        self.params, self.action_sizes, self.head = params, action_sizes, head
        self.fine_steps = int(action_sizes[1])

    @classmethod
    def from_logits(
        cls, logits: Any, action_sizes: tuple[int, int], head: str, **kwargs: Any
    ) -> TorchGridGaussian:
        return cls(logits, action_sizes, head)

    def _pair(self, joint: Any) -> Any:
        torch = require("torch", "perception")
        return torch.stack([joint // self.fine_steps, joint % self.fine_steps], dim=-1)

    def sample(self, *, sample_shape: Any = None) -> Any:
        return self._pair(super().sample(sample_shape=sample_shape))

    def rsample(self, *, sample_shape: Any = None) -> Any:
        raise NotImplementedError("PPO samples lens moves; it never differentiates through them")

    def logp(self, value: Any, **kwargs: Any) -> Any:
        joint = value[..., 0].long() * self.fine_steps + value[..., 1].long()
        return super().logp(joint)

    def kl(self, other: Any) -> Any:
        # torch's Categorical KL is inf wherever the other's probability underflows to 0;
        # a narrow Gaussian on 4700 points does that, and an inf KL term blows up PPO's
        # adaptive KL coefficient. From log-probabilities it stays finite.
        torch = require("torch", "perception")
        log_p = torch.log_softmax(self.logits, -1)
        log_q = torch.log_softmax(other.logits, -1)
        return (log_p.exp() * (log_p - log_q)).sum(-1)

    def to_deterministic(self) -> Any:
        return _dists.TorchDeterministic(
            loc=self._pair(grid_move(self.params, self.action_sizes, self.head))
        )


class DashaPPOModule(_torch_rl.TorchRLModule, _apis.ValueFunctionAPI):  # type: ignore[name-defined]
    """Logits for the action distribution (RLlib picks Categorical / MultiCategorical) and values."""

    def setup(self) -> None:
        config = self.model_config or {}
        self.spec = PolicySpec(
            agent=str(config.get("agent", "")),
            obs_dim=int(self.observation_space.shape[0]),
            action_sizes=action_sizes_of(self.action_space),
            encoder=str(config.get("encoder", "")),
            hidden=tuple(config.get("hidden", (256, 256))),
            head=str(config.get("head", "categorical")),
            observe_lens=bool(config.get("observe_lens", False)),
        )
        self.net = build_net(self.spec)
        if self.spec.head in GRID_HEADS:
            self.action_dist_cls = TorchGridGaussian.get_partial_dist_cls(
                action_sizes=self.spec.action_sizes, head=self.spec.head
            )
        elif len(self.spec.action_sizes) > 1:  # MultiDiscrete: one categorical per head
            self.action_dist_cls = _dists.TorchMultiCategorical.get_partial_dist_cls(
                input_lens=list(self.spec.action_sizes)
            )

    def _forward(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        logits, _ = self.net(batch[Columns.OBS])
        return {Columns.ACTION_DIST_INPUTS: logits}

    def _forward_train(self, batch: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        logits, values = self.net(batch[Columns.OBS])
        return {Columns.ACTION_DIST_INPUTS: logits, Columns.VF_PREDS: values}

    def compute_values(self, batch: dict[str, Any], embeddings: Any = None) -> Any:
        _, values = self.net(batch[Columns.OBS])
        return values
