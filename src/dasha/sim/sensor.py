"""EMVA 1288 linear camera model: scene illuminance -> photo-electrons -> digital numbers.

For each pixel (EMVA 1288, release 4, section 2):

    photons   mu_p = E_sensor * PHOTONS_PER_LUX_S_M2 * pixel_area * t_exp
    signal    mu_e = QE * mu_p                       (+ dark current * t_exp)
    noise     shot noise ~ Poisson(mu_e), read noise ~ Normal(0, sigma_d)
    clipping  electrons limited to the full-well capacity
    output    DN = round(K * electrons) + black level, clipped to [0, 2**bits - 1]

with the system gain ``K = (2**bits - 1) / full_well_e * 10**(gain_db / 20)`` so that 0 dB
maps the full well to full scale. Irradiance on the sensor from a Lambertian scene of
illuminance ``E`` and reflectance ``R`` through an f/N lens of transmission T:
``E_sensor = E * R * T / (4 N^2)`` (the camera equation; vignetting ignored).

``noise_variance_scale`` multiplies the variance of that temporal noise (shot and read
alike) and leaves its mean alone: ``mu_e + sqrt(scale) * (noise draw - mu_e)``.

Shot noise is drawn exactly from a Poisson law below ``_EXACT_POISSON_BELOW_E`` electrons
and from its Gaussian limit (same mean and variance) above, which is 4x faster and
indistinguishable at those counts.

Defaults are near a CMOSIS CMV2000 (acA2000-50gm) and are *defaults*, not datasheet
values: override them with your sensor's EMVA 1288 report.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dasha.errors import ConfigError

# Photons per second per m^2 for 1 lux of 555 nm light: (1/683 W/m^2) / (h c / 555 nm).
# White light carries more photons per lux; the default QE absorbs that difference.
PHOTONS_PER_LUX_S_M2 = 4.09e15
_EXACT_POISSON_BELOW_E = 30.0


@dataclass(frozen=True)
class Sensor:
    """A linear image sensor. Every parameter carries its unit in its name."""

    quantum_efficiency: float = 0.6
    full_well_e: float = 13_500.0
    read_noise_e: float = 13.0
    dark_current_e_per_s: float = 125.0
    pixel_pitch_um: float = 5.5
    bit_depth: int = 8
    black_level_dn: float = 0.0
    lens_transmission: float = 0.9
    gamma: float = 1.0
    # Multiplies the variance of the temporal noise (shot + dark shot + read): a knob for
    # training across sensors noisier or cleaner than the model, the mean left unchanged.
    noise_variance_scale: float = 1.0

    def __post_init__(self) -> None:
        if self.bit_depth not in (8, 10, 12, 16):
            raise ConfigError(f"bit_depth must be 8, 10, 12 or 16, not {self.bit_depth}")
        if not 0 < self.quantum_efficiency <= 1:
            raise ConfigError("quantum_efficiency must be in (0, 1]")
        if self.full_well_e <= 0 or self.read_noise_e < 0:
            raise ConfigError("full_well_e must be positive and read_noise_e non-negative")
        if not 0.25 <= self.gamma <= 4.0:
            raise ConfigError(
                f"gamma must be in [0.25, 4] (Basler's Gamma range), not {self.gamma}"
            )
        if not (np.isfinite(self.noise_variance_scale) and self.noise_variance_scale > 0):
            raise ConfigError(
                f"noise_variance_scale must be a finite number > 0, not {self.noise_variance_scale}"
            )

    @property
    def max_dn(self) -> int:
        return (1 << self.bit_depth) - 1

    @property
    def pixel_area_m2(self) -> float:
        return (self.pixel_pitch_um * 1e-6) ** 2

    def system_gain_dn_per_e(self, gain_db: float) -> float:
        return self.max_dn / self.full_well_e * 10 ** (gain_db / 20.0)

    def electron_rate_per_lux(self, f_number: float) -> float:
        """Mean photo-electrons per second per pixel, per lux of scene illuminance at R = 1."""
        sensor_lux = self.lens_transmission / (4.0 * f_number**2)
        return self.quantum_efficiency * sensor_lux * PHOTONS_PER_LUX_S_M2 * self.pixel_area_m2

    def mean_dn(self, electrons: np.ndarray | float, gain_db: float) -> np.ndarray:
        """Noise-free output level for a given mean electron count (clipped like a frame)."""
        e = np.minimum(np.asarray(electrons, dtype=np.float64), self.full_well_e)
        return np.clip(e * self.system_gain_dn_per_e(gain_db) + self.black_level_dn, 0, self.max_dn)

    def expose(
        self,
        electron_rate: np.ndarray,
        exposure_us: float,
        gain_db: float,
        rng: np.random.Generator,
    ) -> np.ndarray:
        """One noisy frame. ``electron_rate``: mean photo-electrons per second per pixel."""
        if exposure_us <= 0:
            raise ConfigError(f"exposure_us must be positive, got {exposure_us}")
        t_s = exposure_us * 1e-6
        mean_e = np.maximum(
            electron_rate * t_s + self.dark_current_e_per_s * t_s, 0, dtype=np.float32
        )
        z = rng.standard_normal(mean_e.shape, dtype=np.float32)
        scaled = self.noise_variance_scale != 1.0
        # sqrt(scale) on the noise terms only: the variance scales, the mean does not.
        # Unscaled frames skip the multiplication so they stay bit-identical to before.
        noise_sd = np.sqrt(mean_e + np.float32(self.read_noise_e**2))
        if scaled:
            noise_sd *= np.float32(np.sqrt(self.noise_variance_scale))
        electrons = mean_e + noise_sd * z
        low = mean_e < _EXACT_POISSON_BELOW_E
        if low.any():
            shot = rng.poisson(mean_e[low])
            read = self.read_noise_e * z[low]
            if scaled:
                root = np.sqrt(self.noise_variance_scale)
                electrons[low] = mean_e[low] + root * (shot - mean_e[low]) + root * read
            else:
                electrons[low] = shot + read
        np.minimum(electrons, self.full_well_e, out=electrons)
        dn = electrons * np.float32(self.system_gain_dn_per_e(gain_db))
        if self.gamma != 1.0:  # the camera's gamma LUT, on the digital signal before output
            np.clip(dn, 0, self.max_dn, out=dn)
            dn = np.float32(self.max_dn) * (dn / np.float32(self.max_dn)) ** np.float32(self.gamma)
        dn += np.float32(self.black_level_dn)
        np.clip(np.rint(dn, out=dn), 0, self.max_dn, out=dn)
        return dn.astype(np.uint8 if self.bit_depth == 8 else np.uint16)
