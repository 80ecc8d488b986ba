from __future__ import annotations

import os

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture
def sim_rig():
    """A seeded simulated camera + lens looking at the motorcycle at 170 cm, 100 lx."""
    from dasha.hardware import open_camera, open_lens

    camera = open_camera(
        "sim", scene="motorcycle", distance_cm=170.0, illuminance_lux=100.0, seed=0
    )
    lens = open_lens("sim", camera=camera)
    return camera, lens


@pytest.fixture(scope="module")
def uncached_senses():
    """The default perception with no cache: every frame perceived afresh."""
    from dasha.perception.senses import Senses

    return Senses(cache_size=0)
