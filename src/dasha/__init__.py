"""DASHA: Decentralized Autofocusing System with Hierarchical Agents.

Layers, data flowing one way:  hardware -> perception -> envs -> agents;
``sim`` is the embedded camera behind the ``sim`` hardware backend, and
``baselines`` / ``bench`` reuse the same hardware and perception layers.
"""

from dasha.errors import ConfigError, DashaError, HardwareError, MissingExtraError

__version__ = "0.1.0"
__all__ = ["ConfigError", "DashaError", "HardwareError", "MissingExtraError", "__version__"]
