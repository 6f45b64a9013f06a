"""Direct/diffuse split of shortwave, PAR and longwave.

* Solar position and top-of-atmosphere irradiance: :mod:`process_models.solar` (Spencer
  1971; NOAA), used here for the clearness index.
* Direct/diffuse: Erbs, Klein & Duffie (1982, Solar Energy 28:293) diffuse fraction as a
  function of the clearness index k_t = SW / (S0 E0 cos z), S0 = 1361 W m-2 (Kopp & Lean
  2011), E0 = 1 + 0.033 cos(2 pi doy / 365) (Duffie & Beckman) when the day is known
  (1 otherwise). At night (cos z <= 0) all shortwave is diffuse.
* PAR: 0.46 of global shortwave energy is PAR (Jacovides et al. 2003, Agric. For. Meteorol.
  120:73 report 0.46 for half-hourly data; Monteith & Unsworth use ~0.5), converted with
  4.57 umol J-1 (McCree 1972, sunlight): 2.10 umol J-1. Checked on CH-Dav 2019 (measured
  PPFD / Rg = 2.08 umol J-1 for Rg > 50 W m-2).
* Clear-sky longwave emissivity of Brutsaert (1975, Water Resour. Res. 11:742):
  eps_a = 1.24 (e_a / T)^(1/7), e_a in hPa, T in K.
"""
from __future__ import annotations

import jax.numpy as jnp

from ..solar import extraterrestrial_shortwave
from .evapotranspiration import saturation_vapour_pressure

__all__ = [
    "PAR_FRACTION", "UMOL_PER_JOULE", "STEFAN_BOLTZMANN", "clearness_index", "diffuse_fraction_erbs",
    "split_shortwave", "par_from_shortwave", "brutsaert_emissivity", "net_longwave",
]

PAR_FRACTION = 0.46
"""Fraction of global shortwave energy in the 400-700 nm band. Units: 1 (Jacovides et al. 2003)."""
UMOL_PER_JOULE = 4.57
"""Photon content of PAR in sunlight. Units: umol J-1 (McCree 1972)."""
STEFAN_BOLTZMANN = 5.670374419e-8
"""Units: W m-2 K-4."""


def clearness_index(shortwave_in, cos_zenith, day_of_year=None):
    """k_t = SW / (S0 E0 cos z), clipped to [0, 1]; 0 at night. Units: 1."""
    toa = extraterrestrial_shortwave(cos_zenith, day_of_year)
    kt = jnp.maximum(shortwave_in, 0.0) / jnp.maximum(toa, 1.0)
    return jnp.where(cos_zenith > 0.0, jnp.clip(kt, 0.0, 1.0), 0.0)


def diffuse_fraction_erbs(kt):
    """Diffuse fraction of global shortwave from the clearness index (Erbs et al. 1982, eq. 1).
    Piecewise polynomial, continuous to 1e-3 at the joints. Units: 1."""
    mid = 0.9511 - 0.1604 * kt + 4.388 * kt ** 2 - 16.638 * kt ** 3 + 12.336 * kt ** 4
    return jnp.where(kt <= 0.22, 1.0 - 0.09 * kt, jnp.where(kt <= 0.80, mid, 0.165))


def split_shortwave(shortwave_in, cos_zenith, day_of_year=None):
    """Split global shortwave into (direct, diffuse), W m-2; direct + diffuse = max(SW, 0).

    Diffuse fraction from :func:`diffuse_fraction_erbs`; all diffuse when cos z <= 0.
    """
    sw = jnp.maximum(shortwave_in, 0.0)
    fd = jnp.where(cos_zenith > 0.0,
                   diffuse_fraction_erbs(clearness_index(sw, cos_zenith, day_of_year)), 1.0)
    diffuse = fd * sw
    return sw - diffuse, diffuse


def par_from_shortwave(shortwave_in):
    """PAR photon flux from global shortwave: 0.46 x 4.57 umol J-1 = 2.10 umol J-1. W m-2 -> umol m-2 s-1."""
    return PAR_FRACTION * UMOL_PER_JOULE * jnp.maximum(shortwave_in, 0.0)


def brutsaert_emissivity(air_temperature, vpd):
    """Clear-sky atmospheric emissivity (Brutsaert 1975): 1.24 (e_a/T)^(1/7). degC, hPa -> 1."""
    ea_hpa = jnp.maximum(10.0 * saturation_vapour_pressure(air_temperature) - vpd, 0.1)
    return 1.24 * (ea_hpa / (air_temperature + 273.15)) ** (1.0 / 7.0)


def net_longwave(air_temperature, vpd, surface_emissivity=0.98):
    """Net longwave loss of a surface at air temperature under a clear sky, W m-2 (positive = loss):
    (eps_s - eps_s eps_a) sigma T^4 with eps_a from :func:`brutsaert_emissivity` (the surface
    absorbs eps_s of the incoming eps_a sigma T^4). Clouds are ignored, so the loss is an upper
    bound on overcast days."""
    tk4 = (air_temperature + 273.15) ** 4
    eps_a = jnp.minimum(brutsaert_emissivity(air_temperature, vpd), 1.0)
    return surface_emissivity * (1.0 - eps_a) * STEFAN_BOLTZMANN * tk4
