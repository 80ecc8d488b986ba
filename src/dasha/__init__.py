"""DASHA: Decentralized Autofocusing System with Hierarchical Agents.

Layers, data flowing one way:  hardware -> perception -> envs -> agents;
``sim`` is the embedded camera behind the ``sim`` hardware backend, and
``baselines`` / ``bench`` reuse the same hardware and perception layers.
"""

from typing import Any

from dasha.errors import ConfigError, DashaError, HardwareError, MissingExtraError

__version__ = "0.1.0"
__all__ = [
    "ConfigError",
    "DashaError",
    "HardwareError",
    "MissingExtraError",
    "__version__",
    "open_camera",
]


def __getattr__(name: str) -> Any:
    """``dasha.open_camera`` is imported on first use (``import dasha`` stays light)."""
    if name == "open_camera":
        from dasha.camera.api import open_camera

        return open_camera
    raise AttributeError(f"module 'dasha' has no attribute {name!r}")
