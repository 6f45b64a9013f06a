"""Cheap canopy solar-induced fluorescence (coupled.md section 3.7, option 2).

    F_photons = APAR * Phi_F * f_esc                     (umol m-2 s-1 of fluorescence photons)
    SIF_740   = F_photons * E_740 * s_740 / pi           (W m-2 sr-1 um-1)

APAR is the canopy-absorbed PAR (umol m-2 s-1); Phi_F the leaf fluorescence yield (photons
emitted per absorbed photon, about 0.01-0.014 in SCOPE's Kn model, van der Tol et al. 2014);
f_esc the fraction of emitted photons that leave the canopy towards the sensor (about
NIRv/fPAR, Zeng et al. 2019, Remote Sens. Environ. 232:111209). The conversion to a spectral
radiance at 740 nm uses the photon energy E_740 = h c / 740 nm = 0.1617 J umol-1 and a fixed
spectral density s_740 = 6 um-1 (fraction of fluorescence photons per um of wavelength at the
far-red peak, a typical SCOPE leaf spectrum), and an isotropic (Lambertian) canopy (1/pi).
The result is of the order of TROPOMI/OCO-2 SIF740 (0.5-2 W m-2 sr-1 um-1 = mW m-2 sr-1 nm-1
at midday for crops). It ignores the dependence of Phi_F on photochemistry and stress; use it
as an observation operator whose scale (Phi_F f_esc) is calibrated.
"""
from __future__ import annotations

import jax.numpy as jnp

__all__ = ["PHOTON_ENERGY_740", "SPECTRAL_DENSITY_740", "fluorescence_photons", "sif_740"]

PHOTON_ENERGY_740 = 6.62607015e-34 * 2.99792458e8 / 740e-9 * 6.02214076e17
"""Energy of a micromole of 740 nm photons. Units: J umol-1 (0.1617)."""
SPECTRAL_DENSITY_740 = 6.0
"""Fraction of fluorescence photons per micrometre at 740 nm. Units: um-1 (approximate)."""


def fluorescence_photons(apar, fluorescence_yield, escape_fraction):
    """Escaping fluorescence photon flux APAR Phi_F f_esc. Units: umol m-2 s-1 (>= 0)."""
    return jnp.maximum(apar, 0.0) * fluorescence_yield * escape_fraction


def sif_740(apar, fluorescence_yield, escape_fraction):
    """Top-of-canopy SIF radiance at 740 nm. Units: W m-2 sr-1 um-1 (= mW m-2 sr-1 nm-1)."""
    return (fluorescence_photons(apar, fluorescence_yield, escape_fraction)
            * PHOTON_ENERGY_740 * SPECTRAL_DENSITY_740 / jnp.pi)
