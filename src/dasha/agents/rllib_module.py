"""``PolicyNet`` as an RLlib RLModule for PPO (new API stack), so training and running share one network."""

from __future__ import annotations

from typing import Any

from dasha.agents.policy import PolicySpec, action_sizes_of, build_net
from dasha.errors import require

_torch_rl = require("ray.rllib.core.rl_module.torch", "rl")
_apis = require("ray.rllib.core.rl_module.apis", "rl")
_columns = require("ray.rllib.core.columns", "rl")
Columns = _columns.Columns


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
        )
        self.net = build_net(self.spec)
        if len(self.spec.action_sizes) > 1:  # MultiDiscrete: one categorical per head
            dists = require("ray.rllib.core.distribution.torch.torch_distribution", "rl")
            self.action_dist_cls = dists.TorchMultiCategorical.get_partial_dist_cls(
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
