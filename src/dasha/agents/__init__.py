"""Training (RLlib PPO), exporting and running the two DASHA agents.

``policy`` is plain torch and is all that running a trained agent needs; ``rllib_module``
wraps the same network for RLlib training.
"""

# The policy pairs that ship (``--policy NAME``), by name: their folder under
# ``data/policies/<encoder>/``. "pretrained", the default: ``dasha pretrain`` on the scene
# library's train split, any scene and distance; "ppo": ``dasha train``'s RLlib PPO pair of
# the paper's conditions (the four photographs at 140-200 cm).
SHIPPED_POLICIES = {"pretrained": "", "ppo": "ppo"}
