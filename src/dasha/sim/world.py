"""The simulated world: a scene at a distance under some light, seen through the optics.

``SimWorld.render(focus_v, exposure_us, gain_db)`` is the whole physical chain:

    layers (linear reflectance)  --disk PSF per layer-->  composite irradiance
    --camera equation + EMVA 1288 sensor-->  noisy digital frame

Defocus blur depends only on the scene, the distances and the focus voltage, never on the
exposure, so blurred layers are cached by their quantised blur diameter: the expensive
convolutions run once per distinct blur, and a frame then costs the sensor model alone.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from dasha.errors import ConfigError
from dasha.sim.optics import Optics, defocus_blur
from dasha.sim.scenes import SceneLayers, frame_scene, load_scene
from dasha.sim.sensor import Sensor
from dasha.sim.variation import NOMINAL, Variation

# Conditions of the paper's training schedule.
DISTANCE_RANGE_CM = (140.0, 200.0)
ILLUMINANCE_RANGE_LUX = (13.0, 300.0)
DEFAULT_BACKGROUND_CM = 500.0


@dataclass(frozen=True)
class Conditions:
    """What the camera looks at: which scene, how far, how much light."""

    scene: str = "motorcycle"
    distance_cm: float = 170.0
    illuminance_lux: float = 100.0
    background_cm: float = DEFAULT_BACKGROUND_CM
    target_size_cm: float | None = None
    """The target's physical height; its image then follows the thin lens (f / (d - f)).
    ``None``: the scene's own framing, whatever the distance (the paper rig's)."""
    variation: Variation = NOMINAL
    """How this lens and sensor differ from their nominal model (calibration, f-number,
    PSF, noise, gain): the truth of the world, never known to the agents."""

    def __post_init__(self) -> None:
        if self.target_size_cm is not None and not 0.1 <= self.target_size_cm <= 1e5:
            raise ConfigError(
                f"target_size_cm={self.target_size_cm} must be between 0.1 and 100000 cm"
            )
        if not 10.0 <= self.distance_cm <= 1e5:
            raise ConfigError(f"distance_cm={self.distance_cm} must be between 10 and 100000 cm")
        if not 10.0 <= self.background_cm <= 1e7:
            raise ConfigError(f"background_cm={self.background_cm} must be between 10 and 1e7 cm")
        if not 0.0 < self.illuminance_lux <= 2e5:
            raise ConfigError(f"illuminance_lux={self.illuminance_lux} must be in (0, 200000] lux")


def _quantise_blur_px(blur_px: float) -> float:
    """Blur diameters closer than the eye (or a detector) can tell share one cache entry.

    0.05 px steps below 4 px (where focus is decided), 2 % relative steps above.
    """
    if blur_px < 4.0:
        return round(blur_px * 20.0) / 20.0
    return float(round(4.0 * 1.02 ** round(np.log(blur_px / 4.0) / np.log(1.02)), 3))


def _quantise_height_px(height_px: float | None) -> float | None:
    """Target image heights within 1 % share one framing (and its blurred layers)."""
    if height_px is None:
        return None
    return float(round(1.01 ** round(np.log(max(height_px, 1.0)) / np.log(1.01)), 2))


# Keyed by (scene, width, height, target height px or None): what fixes the framing.
LayersKey = tuple[str, int, int, float | None]


@functools.lru_cache(maxsize=64)
def _layers(key: LayersKey) -> SceneLayers:
    scene, width, height, target_height_px = key
    return frame_scene(load_scene(scene), width, height, target_height_px=target_height_px)


@functools.lru_cache(maxsize=384)
def _blurred(key: LayersKey, layer: str, blur_px: float, psf: str, sign: int) -> np.ndarray:
    image: np.ndarray = getattr(_layers(key), layer)
    out = defocus_blur(image, blur_px, psf=psf, sign=sign)
    out.setflags(write=False)
    return out


@dataclass
class SimWorld:
    """Scene + optics + sensor + seeded noise. Same seed and same calls give the same frames."""

    conditions: Conditions = field(default_factory=Conditions)
    optics: Optics = field(default_factory=Optics)
    sensor: Sensor = field(default_factory=Sensor)
    width: int = 417
    height: int = 404
    seed: int | None = None

    def __post_init__(self) -> None:
        if not (8 <= self.width <= 4096 and 8 <= self.height <= 4096):
            raise ConfigError(
                f"sensor region {self.width}x{self.height} px must be 8..4096 on each side"
            )
        self.rng = np.random.default_rng(self.seed)
        self.nominal_optics, self.nominal_sensor = self.optics, self.sensor
        self._apply_variation()
        _ = self.layers  # load (and validate) the scene now, not at the first frame

    def _apply_variation(self) -> None:
        # ``optics`` / ``sensor`` are the world's truth: the nominal models as varied.
        variation = self.conditions.variation
        self.optics, self.sensor = variation.apply(self.nominal_optics, self.nominal_sensor)

    def reseed(self, seed: int | None) -> None:
        self.seed = seed
        self.rng = np.random.default_rng(seed)

    def set_conditions(self, **changes: Any) -> Conditions:
        """Change scene / distance_cm / illuminance_lux / background_cm (validated)."""
        if isinstance(changes.get("scene"), Path):
            changes["scene"] = str(changes["scene"])
        if isinstance(changes.get("variation"), dict):
            changes["variation"] = Variation.from_dict(changes["variation"])
        self.conditions = replace(self.conditions, **changes)
        self._apply_variation()
        _ = self.layers  # fail early on a bad scene
        return self.conditions

    @property
    def target_height_px(self) -> float | None:
        """The target's image height by the thin lens, or ``None`` (the scene's framing)."""
        size_cm = self.conditions.target_size_cm
        if size_cm is None:
            return None
        return self.optics.image_height_px(size_cm, self.conditions.distance_cm)

    @property
    def layers_key(self) -> LayersKey:
        c = self.conditions
        return (c.scene, self.width, self.height, _quantise_height_px(self.target_height_px))

    @property
    def layers(self) -> SceneLayers:
        return _layers(self.layers_key)

    # ------------------------------------------------------------ ground truth
    def target_blur_px(self, focus_v: float) -> float:
        return self.optics.blur_px(focus_v, self.conditions.distance_cm)

    def background_blur_px(self, focus_v: float) -> float:
        return self.optics.blur_px(focus_v, self.conditions.background_cm)

    def in_focus_v(self) -> float:
        return self.optics.in_focus_v(self.conditions.distance_cm)

    def truth(self, focus_v: float) -> dict[str, Any]:
        """Ground truth for evaluation (never for rewards)."""
        blur = self.target_blur_px(focus_v)
        c = self.conditions
        return {
            "scene": c.scene,
            "target_class": self.layers.target_class,
            "target_box": list(self.layers.target_box),
            "distance_cm": c.distance_cm,
            "background_cm": c.background_cm,
            "target_size_cm": c.target_size_cm,
            "variation": None if c.variation.nominal else c.variation.to_dict(),
            "illuminance_lux": c.illuminance_lux,
            "in_focus_v": self.in_focus_v(),
            "blur_px": blur,
            "background_blur_px": self.background_blur_px(focus_v),
            "in_focus": self.optics.is_in_focus(blur),
        }

    # ------------------------------------------------------------ rendering
    def reflectance_at(self, focus_v: float) -> np.ndarray:
        """Composite seen reflectance: each layer blurred by its own defocus (linear light).

        ``I = blur_t(alpha * R) + (1 - blur_t(alpha)) * blur_b(R_background)``: the target
        occludes the background with its own (blurred) silhouette.
        """
        key, c, psf = self.layers_key, self.conditions, self.optics.psf
        bt = _quantise_blur_px(self.target_blur_px(focus_v))
        bb = _quantise_blur_px(self.background_blur_px(focus_v))
        # Only an aberrated PSF tells front from back focus; the others share one cache entry.
        st = self._psf_sign(focus_v, c.distance_cm)
        sb = self._psf_sign(focus_v, c.background_cm)
        target = _blurred(key, "target", bt, psf, st)
        alpha = _blurred(key, "alpha", bt, psf, st)
        background = _blurred(key, "background", bb, psf, sb)
        return target + (1.0 - alpha) * background

    def _psf_sign(self, focus_v: float, distance_cm: float) -> int:
        if self.optics.psf != "disk-sa":
            return 1
        return 1 if self.optics.defocus_dpt(focus_v, distance_cm) >= 0 else -1

    def electron_rate(self, focus_v: float) -> np.ndarray:
        """Mean photo-electrons per second per pixel."""
        per_lux = self.sensor.electron_rate_per_lux(self.optics.f_number)
        scale = np.float32(per_lux * self.conditions.illuminance_lux)
        return self.reflectance_at(focus_v) * scale

    def exposure_for_mean_dn(self, focus_v: float, mean_dn: float, gain_db: float = 0.0) -> float:
        """The exposure (us) whose noise-free frame averages ``mean_dn``: exact metering for
        checks and figures that want a good exposure without a metering loop (not clamped
        to any camera's range)."""
        rate = float(self.electron_rate(focus_v).mean())
        true_gain_db = gain_db + self.conditions.variation.gain_offset_db
        return mean_dn / max(rate * self.sensor.system_gain_dn_per_e(true_gain_db), 1e-9) * 1e6

    def render(self, focus_v: float, exposure_us: float, gain_db: float) -> np.ndarray:
        """One frame; the sensor's true gain is the commanded one plus the variation's offset."""
        true_gain_db = gain_db + self.conditions.variation.gain_offset_db
        return self.sensor.expose(self.electron_rate(focus_v), exposure_us, true_gain_db, self.rng)
