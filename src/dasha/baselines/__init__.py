"""Classical autofocus and auto-exposure baselines (the comparisons of Table I).

``run_af(name, camera, lens)`` with ``name`` in ``AF_METHODS`` (sweep, hill-climb,
coarse-fine, golden) and ``run_ae(name, camera)`` with ``name`` in ``AE_METHODS``
(agc, once). They use the same ``Camera``/``Lens`` interfaces and perception measures as
the agents, and never the simulator's ground truth.
"""

from dasha.baselines.ae import (
    AE_METHODS,
    AeMethod,
    AeResult,
    Agc,
    AutoOnce,
    BracketMeter,
    run_ae,
)
from dasha.baselines.af import (
    AF_METHODS,
    AfMethod,
    AfResult,
    CoarseFineScan,
    FullSweep,
    GoldenSection,
    HillClimb,
    af_method,
    run_af,
)

__all__ = [
    "AE_METHODS",
    "AF_METHODS",
    "AeMethod",
    "AeResult",
    "AfMethod",
    "AfResult",
    "Agc",
    "AutoOnce",
    "BracketMeter",
    "CoarseFineScan",
    "FullSweep",
    "GoldenSection",
    "HillClimb",
    "af_method",
    "run_ae",
    "run_af",
]
