"""Training (RLlib PPO), exporting and running the two DASHA agents.

``policy`` is plain torch and is all that running a trained agent needs; ``rllib_module``
wraps the same network for RLlib training.
"""

from __future__ import annotations

from pathlib import Path

# The policy pairs that ship (``--policy NAME``), by name: their folder under
# ``data/policies/<encoder>/``. "pretrained", the default: ``dasha pretrain`` on the scene
# library's train split, any scene and distance; "ppo": ``dasha train``'s RLlib PPO pair of
# the paper's conditions (the four photographs at 140-200 cm).
SHIPPED_POLICIES = {"pretrained": "", "ppo": "ppo"}


def shipped_name(directory: str | Path) -> str | None:
    """``directory`` as the name of a shipped pair (``--policy ppo``), where no such
    directory exists; ``None``: a path."""
    name = str(directory)
    return name if name in SHIPPED_POLICIES and not Path(directory).exists() else None
