"""Sun/shade two-big-leaf canopy: radiation, photosynthesis, conductance and transpiration.

Radiation (de Pury & Farquhar 1997, Plant Cell Environ. 20:537, appendix; Wang & Leuning
1998, Agric. For. Meteorol. 91:89), with clumping Omega applied to leaf area (L -> Omega L)::

    k_b  = G(z) / cos z,  G = phi1 + phi2 cos z, phi1 = 0.5 - 0.633 chi - 0.33 chi^2,
           phi2 = 0.877 (1 - 2 phi1)                        (Ross-Goudriaan; CLM5 tech note eq. 4.9)
    k_b' = k_b sqrt(1 - sigma),  k_d' = k_d sqrt(1 - sigma),  k_d = 0.78, sigma = rho_leaf + tau_leaf
    rho_h = (1 - sqrt(1 - sigma)) / (1 + sqrt(1 - sigma));  rho_cb = 1 - exp(-2 rho_h k_b / (1 + k_b))
    rho_cd = 1 - exp(-2 rho_h k_d / (1 + k_d))              (0.035 for PAR with sigma = 0.15)
    I_c    = (1 - rho_cb) I_b (1 - e^{-k_b' W L}) + (1 - rho_cd) I_d (1 - e^{-k_d' W L})       canopy
    I_sun  = I_b (1 - sigma)(1 - e^{-k_b W L})
           + I_d (1 - rho_cd)(1 - e^{-(k_d' + k_b) W L}) k_d' / (k_d' + k_b)
           + I_b [(1 - rho_cb)(1 - e^{-(k_b' + k_b) W L}) k_b' / (k_b' + k_b) - (1 - sigma)(1 - e^{-2 k_b W L}) / 2]
    I_shade = I_c - I_sun;   L_sun = (1 - e^{-k_b W L}) / (k_b W),  L_shade = L - L_sun

(W = Omega.) These are the pyrealm 2.0 ``pmodel.two_leaf`` functions (tested against them
with Omega = 1). Photosynthetic capacity follows an exponential nitrogen profile
Vcmax(l) = Vcmax0 e^{-k_n l} (k_n default from CLM5: exp(0.00963 Vcmax25 - 2.43)), so the
big-leaf capacities are ``capacity_sun = (1 - e^{-(k_n + k_b W) L}) / (k_n + k_b W)`` and
``capacity_total = (1 - e^{-k_n L}) / k_n`` (de Pury & Farquhar 1997 eqs. 30-31); each big
leaf is run through :func:`leaf.leaf_photosynthesis` at air temperature (no leaf energy
balance). GPP = sum of the gross rates (>= 0).

Energy: shortwave is split into direct/diffuse (Erbs 1982) and into PAR (0.46) / NIR (0.54); each band
is absorbed by the canopy as I_c above and the rest, (1 - rho_c) I e^{-k' W L}, reaches the
ground, which absorbs (1 - soil_albedo) of it (multiple canopy-soil reflections ignored), so
canopy + ground absorbed <= incoming. Net longwave loss from a clear-sky Brutsaert (1975)
emissivity at air temperature is shared between canopy and ground as 1 - e^{-k_d W L} : e^{-k_d W L}.
Canopy conductance is the sum of the sun/shade stomatal conductances (mol m-2 s-1) converted
to m s-1 with R T / P; transpiration demand is Penman-Monteith with the canopy available
energy, the canopy conductance and the neutral log-profile aerodynamic conductance.
"""
from __future__ import annotations

from dataclasses import fields

import jax
import jax.numpy as jnp
from flax import struct

from . import evapotranspiration as et
from . import radiation as rad
from ._vegetation_table import leaf_canopy_table, pft_values
from .leaf import LeafParams, leaf_photosynthesis
from .sif import sif_740

__all__ = ["CanopyParams", "CanopyFluxes", "canopy_fluxes", "beam_extinction",
           "absorbed_par_sun_shade", "sunlit_leaf_area", "big_leaf_capacity", "canopy_shortwave_partition",
           "default_canopy_params", "default_leaf_params", "leaf_canopy_table",
           "DIFFUSE_EXTINCTION", "check_canopy_inputs", "INPUT_RANGES"]

DIFFUSE_EXTINCTION = 0.78
"""Extinction coefficient of diffuse light by black leaves, spherical distribution
(de Pury & Farquhar 1997, Table A2). Units: 1."""
MIN_COS_ZENITH = 0.05
"""Floor of cos z in k_b = G / cos z (beam fluxes are zero below the horizon anyway)."""


@struct.dataclass
class CanopyParams:
    """Canopy structure, optics, aerodynamics and SIF parameters (one PFT)."""

    clumping: jax.Array
    """Foliage clumping index Omega. Units: 1. Range (0.4, 1); He et al. (2012) biome means."""
    leaf_angle_index: jax.Array
    """Ross-Goudriaan leaf angle index chi_L (0 spherical, -1 vertical, +1 horizontal).
    Units: 1. CLM5 per PFT."""
    leaf_reflectance_par: jax.Array
    """Leaf reflectance, PAR (400-700 nm). Units: 1. CLM5 per PFT."""
    leaf_transmittance_par: jax.Array
    """Leaf transmittance, PAR. Units: 1. CLM5 per PFT."""
    leaf_reflectance_nir: jax.Array
    """Leaf reflectance, NIR (700-2500 nm). Units: 1. CLM5 per PFT."""
    leaf_transmittance_nir: jax.Array
    """Leaf transmittance, NIR. Units: 1. CLM5 per PFT."""
    soil_albedo: jax.Array
    """Broadband shortwave albedo of the ground. Units: 1. Range (0.05, 0.35)."""
    nitrogen_extinction: jax.Array
    """k_n of the canopy Vcmax profile, per unit cumulative LAI. Units: 1.
    Default exp(0.00963 Vcmax25 - 2.43) (Lloyd et al. 2010; CLM5)."""
    canopy_height: jax.Array
    """Canopy height h (d = 0.67 h, z0m = 0.123 h). Units: m."""
    reference_height: jax.Array
    """Height of the wind/temperature/humidity measurements above ground. Units: m."""
    fluorescence_yield: jax.Array
    """Leaf fluorescence yield Phi_F, photons per absorbed photon. Units: 1. About 0.01."""
    sif_escape: jax.Array
    """Fraction of fluorescence photons escaping the canopy towards the sensor (~NIRv/fPAR). Units: 1."""
    interception_capacity: jax.Array = 0.1
    """Canopy water storage per unit leaf + stem area, c in S = c (L + SAI) (CLM4.5 dewmx,
    Oleson et al. 2013 eq. 7.8). Units: mm (per m2 m-2). Range (0.05, 0.5)."""
    stem_area_index: jax.Array = 1.0
    """Stem (and branch) area index SAI for interception. Units: m2 m-2. Range (0, 3)."""
    interception_efficiency: jax.Array = 1.0
    """alpha in I = alpha (1 - exp(-0.5 (L + SAI))) P (1 = Rutter/Gash free-throughfall form;
    CLM4.5: 0.25). Units: 1. Range (0.25, 1)."""
    acclimation_tau: jax.Array = 5.0
    """Time constant tau of the delayed temperature S (Makela et al. 2004, 2008). Units: d."""
    acclimation_x0: jax.Array = -5.0
    """Threshold X0 of S below which photosynthetic capacity is zero (Makela et al. 2008).
    Units: degC. (Very low, e.g. -40, disables the limitation.)"""
    acclimation_smax: jax.Array = 20.0
    """S - X0 at which capacity saturates, S_max (Makela et al. 2008). Units: degC."""


@struct.dataclass
class CanopyFluxes:
    """Output of :func:`canopy_fluxes` (per m2 ground, same shape as the forcing)."""

    gpp: jax.Array
    """Gross primary production (>= 0). Units: umol m-2 s-1."""
    leaf_respiration: jax.Array
    """Canopy leaf (dark) respiration, all leaf area. Units: umol m-2 s-1."""
    net_assimilation: jax.Array
    """gpp - leaf_respiration. Units: umol m-2 s-1."""
    canopy_conductance: jax.Array
    """Canopy (stomatal) conductance to H2O. Units: m s-1."""
    canopy_conductance_molar: jax.Array
    """Canopy conductance to H2O. Units: mol m-2 s-1."""
    aerodynamic_conductance: jax.Array
    """Neutral log-profile aerodynamic conductance. Units: m s-1."""
    transpiration_demand: jax.Array
    """Penman-Monteith transpiration at the canopy conductance (>= 0). Units: kg m-2 s-1 (= mm s-1)."""
    latent_heat_canopy: jax.Array
    """lambda x transpiration_demand. Units: W m-2."""
    canopy_available_energy: jax.Array
    """Net radiation absorbed by the canopy. Units: W m-2."""
    soil_available_energy: jax.Array
    """Net radiation reaching and absorbed by the ground (ground heat flux not removed). Units: W m-2."""
    net_radiation: jax.Array
    """canopy + soil available energy. Units: W m-2."""
    absorbed_shortwave_canopy: jax.Array
    """Units: W m-2."""
    absorbed_shortwave_ground: jax.Array
    """Units: W m-2."""
    apar: jax.Array
    """PAR absorbed by the canopy. Units: umol m-2 s-1."""
    apar_sunlit: jax.Array
    """Units: umol m-2 s-1."""
    apar_shaded: jax.Array
    """Units: umol m-2 s-1."""
    lai_sunlit: jax.Array
    """Sunlit leaf area. Units: m2 m-2."""
    lai_shaded: jax.Array
    """Shaded leaf area. Units: m2 m-2."""
    gpp_sunlit: jax.Array
    """Units: umol m-2 s-1."""
    gpp_shaded: jax.Array
    """Units: umol m-2 s-1."""
    diffuse_fraction: jax.Array
    """Diffuse fraction of incoming shortwave. Units: 1."""
    sif: jax.Array
    """Top-of-canopy SIF at 740 nm (:func:`sif.sif_740`). Units: W m-2 sr-1 um-1."""


# ----------------------------------------------------------------------------- radiation
def beam_extinction(cos_zenith, leaf_angle_index):
    """k_b = G(z) / cos z for black leaves (Ross 1975; Goudriaan 1977; CLM5 eq. 4.9-4.11). Units: 1."""
    chi = jnp.clip(leaf_angle_index, -0.4, 0.6)
    phi1 = 0.5 - 0.633 * chi - 0.33 * chi * chi
    phi2 = 0.877 * (1.0 - 2.0 * phi1)
    mu = jnp.maximum(cos_zenith, MIN_COS_ZENITH)
    return (phi1 + phi2 * mu) / mu


def sunlit_leaf_area(lai, kb, clumping):
    """L_sun = (1 - exp(-k_b Omega L)) / (k_b Omega). Units: m2 m-2."""
    return -jnp.expm1(-kb * clumping * lai) / (kb * clumping)


def _band_coefficients(kb, sigma):
    s = jnp.sqrt(1.0 - sigma)
    rho_h = (1.0 - s) / (1.0 + s)
    rho_cb = 1.0 - jnp.exp(-2.0 * rho_h * kb / (1.0 + kb))
    rho_cd = 1.0 - jnp.exp(-2.0 * rho_h * DIFFUSE_EXTINCTION / (1.0 + DIFFUSE_EXTINCTION))
    return kb * s, DIFFUSE_EXTINCTION * s, rho_cb, rho_cd


def canopy_shortwave_partition(beam, diffuse, kb, lai, clumping, sigma):
    """(absorbed by canopy, reaching the ground) for one band, same units as beam/diffuse."""
    kbp, kdp, rho_cb, rho_cd = _band_coefficients(kb, sigma)
    wl = clumping * lai
    tb = jnp.exp(-kbp * wl)
    td = jnp.exp(-kdp * wl)
    canopy = (1.0 - rho_cb) * beam * (1.0 - tb) + (1.0 - rho_cd) * diffuse * (1.0 - td)
    ground = (1.0 - rho_cb) * beam * tb + (1.0 - rho_cd) * diffuse * td
    return canopy, ground


def absorbed_par_sun_shade(beam, diffuse, kb, lai, clumping, sigma):
    """Absorbed PAR of the sunlit and shaded big leaves (de Pury & Farquhar 1997 eqs. A20-A27).
    Returns (sunlit, shaded), in the units of beam/diffuse (per m2 ground)."""
    kbp, kdp, rho_cb, rho_cd = _band_coefficients(kb, sigma)
    wl = clumping * lai
    total = ((1.0 - rho_cb) * beam * -jnp.expm1(-kbp * wl)
             + (1.0 - rho_cd) * diffuse * -jnp.expm1(-kdp * wl))
    sun_beam = beam * (1.0 - sigma) * -jnp.expm1(-kb * wl)
    sun_diffuse = diffuse * (1.0 - rho_cd) * -jnp.expm1(-(kdp + kb) * wl) * kdp / (kdp + kb)
    sun_scattered = beam * ((1.0 - rho_cb) * -jnp.expm1(-(kbp + kb) * wl) * kbp / (kbp + kb)
                            - (1.0 - sigma) * -jnp.expm1(-2.0 * kb * wl) / 2.0)
    sun = sun_beam + sun_diffuse + sun_scattered
    return sun, total - sun


def big_leaf_capacity(lai, kb, clumping, kn):
    """N-profile-weighted leaf area of the sunlit and shaded big leaves (de Pury & Farquhar 1997
    eqs. 30-31 with clumping): the multipliers of the top-leaf Vcmax25/Jmax25/Rd25. Units: m2 m-2.

    sun = (1 - exp(-(k_n + k_b W) L)) / (k_n + k_b W),  total = (1 - exp(-k_n L)) / k_n,
    shade = total - sun.
    """
    total = -jnp.expm1(-kn * lai) / kn
    sun = -jnp.expm1(-(kn + kb * clumping) * lai) / (kn + kb * clumping)
    return sun, total - sun


# ----------------------------------------------------------------------------- entry point
def canopy_fluxes(leaf: LeafParams, canopy: CanopyParams, *, shortwave_in, cos_zenith,
                  air_temperature, vpd, co2, air_pressure, wind_speed, lai,
                  water_stress) -> CanopyFluxes:
    """Two-big-leaf canopy photosynthesis, conductance, transpiration demand and energy split.

    Parameters (scalars or same-shape arrays, elementwise; vmap-able)
    ----------
    leaf, canopy : parameter pytrees (fields broadcast against the forcing).
    shortwave_in : global incoming shortwave, W m-2.   cos_zenith : cos solar zenith, 1.
    air_temperature : degC (also used as leaf temperature).   vpd : hPa.
    co2 : umol mol-1.   air_pressure : kPa.   wind_speed : m s-1.   lai : m2 m-2.
    water_stress : beta in [0, 1], multiplies Vcmax (see :mod:`.leaf`).
    """
    sw = jnp.maximum(shortwave_in, 0.0)
    lai = jnp.maximum(lai, 0.0)
    sw_beam, sw_diffuse = rad.split_shortwave(sw, cos_zenith)
    kb = beam_extinction(cos_zenith, canopy.leaf_angle_index)
    omega = canopy.clumping

    # --- PAR band: photons for photosynthesis, energy for the budget
    sigma_par = canopy.leaf_reflectance_par + canopy.leaf_transmittance_par
    sigma_nir = canopy.leaf_reflectance_nir + canopy.leaf_transmittance_nir
    to_photons = rad.UMOL_PER_JOULE
    par_beam = rad.PAR_FRACTION * sw_beam
    par_diffuse = rad.PAR_FRACTION * sw_diffuse
    apar_sun_w, apar_shade_w = absorbed_par_sun_shade(par_beam, par_diffuse, kb, lai, omega, sigma_par)
    apar_sun = jnp.maximum(apar_sun_w, 0.0) * to_photons
    apar_shade = jnp.maximum(apar_shade_w, 0.0) * to_photons

    lai_sun = sunlit_leaf_area(lai, kb, omega)
    lai_shade = lai - lai_sun
    cap_sun, cap_shade = big_leaf_capacity(lai, kb, omega, canopy.nitrogen_extinction)

    common = dict(leaf_temperature=air_temperature, vpd=vpd, co2=co2, air_pressure=air_pressure,
                  water_stress=water_stress)
    # sunlit and shaded big leaves stacked on a leading axis of 2: one traced leaf model
    shape = jnp.broadcast_shapes(*(jnp.shape(x) for x in (
        apar_sun, cap_sun, lai_sun, air_temperature, vpd, co2, air_pressure, water_stress,
        *jax.tree_util.tree_leaves(leaf))))
    stack = lambda a, b: jnp.stack([jnp.broadcast_to(a, shape), jnp.broadcast_to(b, shape)])
    both = leaf_photosynthesis(leaf, absorbed_par=stack(apar_sun, apar_shade),
                               capacity=stack(cap_sun, cap_shade), leaf_area=stack(lai_sun, lai_shade),
                               **common)
    gpp_sun, gpp_shade = both.gross_assimilation[0], both.gross_assimilation[1]
    gpp = gpp_sun + gpp_shade
    resp = both.respiration[0] + both.respiration[1]
    gs_mol = both.stomatal_conductance[0] + both.stomatal_conductance[1]
    gc = et.molar_to_velocity_conductance(gs_mol, air_temperature, air_pressure)

    # --- energy
    par_can, par_gnd = canopy_shortwave_partition(par_beam, par_diffuse, kb, lai, omega, sigma_par)
    nir_can, nir_gnd = canopy_shortwave_partition((1 - rad.PAR_FRACTION) * sw_beam,
                                                  (1 - rad.PAR_FRACTION) * sw_diffuse,
                                                  kb, lai, omega, sigma_nir)
    sw_canopy = par_can + nir_can
    sw_ground = (1.0 - canopy.soil_albedo) * (par_gnd + nir_gnd)
    lw_loss = rad.net_longwave(air_temperature, vpd)
    f_lw = -jnp.expm1(-DIFFUSE_EXTINCTION * omega * lai)
    a_canopy = sw_canopy - f_lw * lw_loss
    a_ground = sw_ground - (1.0 - f_lw) * lw_loss

    ga = et.aerodynamic_conductance(wind_speed, canopy.canopy_height, canopy.reference_height)
    le = jnp.maximum(et.penman_monteith(a_canopy, air_temperature, vpd, air_pressure, ga, gc), 0.0)
    lam = et.latent_heat_vaporization(air_temperature)
    apar = apar_sun + apar_shade
    return CanopyFluxes(
        gpp=gpp, leaf_respiration=resp, net_assimilation=gpp - resp,
        canopy_conductance=gc, canopy_conductance_molar=gs_mol, aerodynamic_conductance=ga,
        transpiration_demand=le / lam, latent_heat_canopy=le,
        canopy_available_energy=a_canopy, soil_available_energy=a_ground,
        net_radiation=a_canopy + a_ground, absorbed_shortwave_canopy=sw_canopy,
        absorbed_shortwave_ground=sw_ground, apar=apar, apar_sunlit=apar_sun,
        apar_shaded=apar_shade, lai_sunlit=lai_sun, lai_shaded=lai_shade,
        gpp_sunlit=gpp_sun, gpp_shaded=gpp_shade,
        diffuse_fraction=jnp.where(sw > 0, sw_diffuse / jnp.maximum(sw, 1e-9), 1.0),
        sif=sif_740(apar, canopy.fluorescence_yield, canopy.sif_escape),
    )


# ----------------------------------------------------------------------------- validation
INPUT_RANGES = {
    # name: (lower, upper, unit, hint when out of range)
    "shortwave_in": (-20.0, 1500.0, "W m-2", "pass global shortwave in W m-2 (not J m-2 per step or MJ)."),
    "cos_zenith": (-1.0, 1.0, "1", "pass the cosine of the solar zenith angle (process_models.solar.cos_solar_zenith)."),
    "air_temperature": (-70.0, 60.0, "degC", "convert from K: subtract 273.15."),
    "vpd": (0.0, 150.0, "hPa", "pass VPD in hPa (Pa / 100, kPa x 10)."),
    "co2": (100.0, 3000.0, "umol mol-1", "pass the CO2 mole fraction in ppm."),
    "air_pressure": (40.0, 110.0, "kPa", "pass air pressure in kPa (hPa / 10, Pa / 1000)."),
    "wind_speed": (0.0, 80.0, "m s-1", "pass the horizontal wind speed in m s-1."),
    "lai": (0.0, 15.0, "m2 m-2", "pass one-sided leaf area index."),
    "water_stress": (0.0, 1.0, "1", "the water stress factor must lie in [0, 1]."),
}
"""Plausible ranges of the :func:`canopy_fluxes` inputs (canonical units)."""


def check_canopy_inputs(*, source: str = "<memory>", **inputs) -> None:
    """Raise :class:`~process_models.units.DataValidationError` when an input of
    :func:`canopy_fluxes` is missing-valued (NaN/inf) or outside :data:`INPUT_RANGES` (a sign of
    wrong units). Call it at the data edge, outside ``jit`` (it reads values)."""
    import numpy as np
    from ..units import DataValidationError
    for name, value in inputs.items():
        if name not in INPUT_RANGES:
            raise DataValidationError(f"unknown canopy input {name!r}.", source=source, variable=name,
                                      fix=f"use one of {sorted(INPUT_RANGES)}.")
        v = np.asarray(value, dtype=float)
        lo, hi, unit, hint = INPUT_RANGES[name]
        bad = ~np.isfinite(v)
        if bad.any():
            raise DataValidationError(f"{int(bad.sum())} non-finite value(s) (NaN/inf).", source=source,
                                      variable=name, fix="gap-fill the forcing before running the model.")
        if v.size and (v.min() < lo or v.max() > hi):
            raise DataValidationError(
                f"values in [{v.min():.4g}, {v.max():.4g}] outside the plausible range [{lo}, {hi}] {unit}.",
                source=source, variable=name, fix=hint)


# ----------------------------------------------------------------------------- defaults
def default_canopy_params(pft: str, dtype=None) -> CanopyParams:
    """Default :class:`CanopyParams` of a PFT from ``tables/leaf_canopy.csv`` (scalars of
    ``dtype``, default the JAX default float)."""
    v = pft_values(pft)
    dtype = dtype or jnp.result_type(float)
    return CanopyParams(**{f.name: jnp.asarray(v[f.name], dtype=dtype) for f in fields(CanopyParams)})


def default_leaf_params(pft: str, dtype=None) -> LeafParams:
    """Default :class:`LeafParams` of a PFT from ``tables/leaf_canopy.csv`` (scalars of
    ``dtype``; ``c4`` a Python bool)."""
    v = pft_values(pft)
    dtype = dtype or jnp.result_type(float)
    return LeafParams(**{f.name: jnp.asarray(v[f.name], dtype=dtype) for f in fields(LeafParams)
                         if f.name != "c4"}, c4=bool(v["c4"]))
