"""Training (RLlib PPO), exporting and running the two DASHA agents.

``policy`` is plain torch and is all that running a trained agent needs; ``rllib_module``
wraps the same network for RLlib training.
"""
