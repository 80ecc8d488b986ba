"""The ``full`` and ``mismatch`` condition sets' draws."""

from __future__ import annotations

import numpy as np
import pytest

from dasha.envs.library_conditions import (
    FAR_VERGENCE_DPT,
    FRAME_HEIGHT_PX,
    NEAR_DISTANCE_CM,
    height_fractions,
    library_sampler,
)
from dasha.errors import ConfigError
from dasha.sim.library import catalogue
from dasha.sim.optics import Optics


def _draws(split: str, mismatch: bool, n: int = 400) -> list[dict]:
    sampler = library_sampler(split, mismatch=mismatch)
    rng = np.random.default_rng(0)
    return [sampler.sample(rng) for _ in range(n)]


def test_full_covers_30_cm_to_infinity_uniformly_in_dioptres() -> None:
    draws = _draws("train", mismatch=False)
    vergence = np.array([100.0 / d["distance_cm"] for d in draws])
    assert vergence.min() >= FAR_VERGENCE_DPT - 1e-9
    assert vergence.max() <= 100.0 / NEAR_DISTANCE_CM + 1e-9
    # Uniform in dioptres: each third of the range holds about a third of the draws.
    thirds = np.histogram(vergence, bins=3, range=(FAR_VERGENCE_DPT, 100 / NEAR_DISTANCE_CM))[0]
    assert thirds.min() > 0.25 * len(draws)
    assert all(d["background_cm"] > d["distance_cm"] for d in draws)
    lux = np.array([d["illuminance_lux"] for d in draws])
    assert lux.min() >= 13.0 and lux.max() <= 1000.0
    assert "variation" not in draws[0]


def test_target_size_puts_its_image_inside_the_scenes_well_posed_range() -> None:
    optics = Optics()
    for d in _draws("val", mismatch=False, n=200):
        lo, hi = height_fractions(d["scene"])
        px = optics.image_height_px(d["target_size_cm"], d["distance_cm"])
        assert lo - 1e-3 <= px / FRAME_HEIGHT_PX <= hi + 1e-3


def test_splits_draw_only_their_own_scenes() -> None:
    for split in ("train", "val", "test"):
        assert {catalogue().scenes[d["scene"]].split for d in _draws(split, False, 100)} == {split}


def test_mismatch_draws_the_optics_off_nominal() -> None:
    draws = _draws("test", mismatch=True, n=50)
    offsets = [d["variation"]["calibration_offset_v"] for d in draws]
    assert max(offsets) > 0.2 and min(offsets) < -0.2
    assert all(abs(o) <= 0.5 for o in offsets)


def test_a_scene_of_another_split_is_refused() -> None:
    cat = catalogue()
    test_scene = cat.select("test")[0].id
    with pytest.raises(ConfigError, match="test split"):
        library_sampler("train", scenes=[test_scene])
    # A pairing the catalogue never made, across splits, is refused too.
    train_target = next(
        p.id for p in cat.photos.values() if p.role == "cutout" and p.split == "train"
    )
    test_background = next(
        p.id for p in cat.photos.values() if p.role == "background" and p.split == "test"
    )
    with pytest.raises(ConfigError, match="test split"):
        library_sampler("train", scenes=[f"{train_target}@{test_background}"])
