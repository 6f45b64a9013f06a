"""Psychrometrics, aerodynamic conductance and Penman-Monteith evaporation.

Constants and formulas of FAO-56 (Allen, Pereira, Raes & Smith 1998, FAO Irrigation and
Drainage Paper 56, chapter 3) and Monteith (1965)::

    lambda = 2.501e6 - 2361 T                       J kg-1   (Harrison 1963, FAO-56 annex 3)
    e_s(T) = 0.6108 exp(17.27 T / (T + 237.3))      kPa      (Tetens 1930, FAO-56 eq. 11)
    Delta  = 4098 e_s / (T + 237.3)^2               kPa K-1  (FAO-56 eq. 13)
    gamma  = c_p P / (0.622 lambda)                 kPa K-1  (FAO-56 eq. 8, c_p = 1013 J kg-1 K-1)
    rho_a  = P / (1.01 (T + 273) 0.287)             kg m-3   (FAO-56 annex 3, virtual T approx.)
    lambda E = [Delta A + rho_a c_p D g_a] / [Delta + gamma (1 + g_a / g_s)]   (Monteith 1965)

written here in the conductance form ``g_s [Delta A + rho c_p D g_a] / [g_s (Delta + gamma) + gamma g_a]``
so that g_s = 0 gives lambda E = 0 exactly. Aerodynamic conductance for neutral stability,
log profile (FAO-56 eq. 4) with d = 0.67 h, z_om = 0.123 h, z_oh = 0.1 z_om, k = 0.41.

Units: temperature degC, pressure kPa, VPD hPa (canonical, converted to kPa inside),
energy W m-2, conductances m s-1, evaporation kg m-2 s-1 (= mm s-1).
"""
from __future__ import annotations

import jax.numpy as jnp

__all__ = [
    "CP_AIR", "VON_KARMAN", "latent_heat_vaporization", "saturation_vapour_pressure",
    "saturation_slope", "psychrometric_constant", "air_density", "aerodynamic_conductance",
    "penman_monteith", "equilibrium_evaporation", "priestley_taylor",
    "soil_evaporation_potential", "molar_to_velocity_conductance",
]

CP_AIR = 1013.0
"""Specific heat of moist air at constant pressure. Units: J kg-1 K-1 (FAO-56)."""
VON_KARMAN = 0.41
"""von Karman constant. Units: 1 (FAO-56)."""
EPSILON = 0.622
"""Ratio of molecular weights of water vapour and dry air. Units: 1."""
R_GAS = 8.314462618
MIN_WIND = 0.5
"""Smooth lower bound of wind speed in the log profile (FAO-56 recommends u2 >= 0.5 m s-1)."""


def _smooth_floor(x, floor):
    """Smooth lower bound: x + floor exp(-x/floor) for x >= 0 (x < 0 treated as 0). Equals
    floor at 0, increases monotonically and differs from x by < 0.25 % of floor for x > 6 floor."""
    x = jnp.maximum(x, 0.0)
    return x + floor * jnp.exp(-x / floor)


def latent_heat_vaporization(air_temperature):
    """Latent heat of vaporisation (Harrison 1963). degC -> J kg-1."""
    return 2.501e6 - 2361.0 * air_temperature


def saturation_vapour_pressure(air_temperature):
    """Saturation vapour pressure over water, Tetens (FAO-56 eq. 11). degC -> kPa."""
    return 0.6108 * jnp.exp(17.27 * air_temperature / (air_temperature + 237.3))


def saturation_slope(air_temperature):
    """Slope Delta of e_s(T) (FAO-56 eq. 13). degC -> kPa K-1."""
    return 4098.0 * saturation_vapour_pressure(air_temperature) / (air_temperature + 237.3) ** 2


def psychrometric_constant(air_pressure, air_temperature=20.0):
    """gamma = c_p P / (0.622 lambda(T)) (FAO-56 eq. 8). kPa, degC -> kPa K-1 (0.0673 at 101.3 kPa, 20 degC)."""
    return CP_AIR * air_pressure / (EPSILON * latent_heat_vaporization(air_temperature))


def air_density(air_temperature, air_pressure):
    """Mean air density at constant pressure (FAO-56 annex 3, eq. 3-5). degC, kPa -> kg m-3."""
    return air_pressure / (1.01 * (air_temperature + 273.15) * 0.287)


def molar_to_velocity_conductance(conductance_mol, air_temperature, air_pressure):
    """Convert a conductance from mol m-2 s-1 to m s-1 with the ideal-gas molar volume
    R T / P (0.0245 m3 mol-1 at 25 degC, 101.3 kPa; Jones 2014, Plants and Microclimate)."""
    return conductance_mol * R_GAS * (air_temperature + 273.15) / (air_pressure * 1000.0)


def aerodynamic_conductance(wind_speed, canopy_height, reference_height):
    """Neutral-stability aerodynamic conductance for heat/vapour (FAO-56 eq. 4).

    g_a = k^2 u / [ln((z_m - d)/z_om) ln((z_h - d)/z_oh)], d = 0.67 h, z_om = 0.123 h,
    z_oh = 0.1 z_om, with z_m = z_h = reference_height (m above ground, smoothly kept at
    least 0.1 h above d + z_om) and u smoothly floored at 0.5 m s-1 (``u + 0.5 exp(-u/0.5)``). Units: m s-1.
    """
    h = jnp.maximum(canopy_height, 0.01)
    d = 0.67 * h
    z_om = 0.123 * h
    z_oh = 0.1 * z_om
    z = d + z_om + _smooth_floor(reference_height - d - z_om, 0.1 * h)
    u = _smooth_floor(wind_speed, MIN_WIND)
    return VON_KARMAN ** 2 * u / (jnp.log((z - d) / z_om) * jnp.log((z - d) / z_oh))


def penman_monteith(available_energy, air_temperature, vpd, air_pressure,
                    aerodynamic_conductance, surface_conductance):
    """Latent heat flux by Penman-Monteith (Monteith 1965; FAO-56 eq. 3). Units: W m-2.

    Parameters: available_energy A (W m-2), air_temperature (degC), vpd D (hPa),
    air_pressure (kPa), aerodynamic_conductance g_a and surface_conductance g_s (m s-1).
    May be negative (dew/condensation) when A < 0 and D is small; callers clip.
    """
    delta = saturation_slope(air_temperature)
    gamma = psychrometric_constant(air_pressure, air_temperature)
    rho = air_density(air_temperature, air_pressure)
    d_kpa = vpd / 10.0
    num = delta * available_energy + rho * CP_AIR * d_kpa * aerodynamic_conductance
    return surface_conductance * num / (surface_conductance * (delta + gamma)
                                        + gamma * aerodynamic_conductance)


def equilibrium_evaporation(available_energy, air_temperature, air_pressure):
    """Equilibrium latent heat Delta A / (Delta + gamma) (Slatyer & McIlroy 1961; the g_s -> inf,
    g_a -> 0 limit of Penman-Monteith). Units: W m-2."""
    delta = saturation_slope(air_temperature)
    gamma = psychrometric_constant(air_pressure, air_temperature)
    return delta * available_energy / (delta + gamma)


def priestley_taylor(available_energy, air_temperature, air_pressure, alpha=1.26):
    """Priestley & Taylor (1972) latent heat, alpha x equilibrium. Units: W m-2."""
    return alpha * equilibrium_evaporation(available_energy, air_temperature, air_pressure)


def soil_evaporation_potential(available_energy, air_temperature, vpd, air_pressure,
                               aerodynamic_conductance):
    """Potential soil evaporation (wet surface, no surface resistance: Penman 1948 form of
    Penman-Monteith, g_s -> inf). Returns kg m-2 s-1 (= mm s-1), >= 0.

    The soil module limits it by the top-layer water (e.g. a surface resistance or beta
    factor). Inputs: available energy at the ground (W m-2), degC, hPa, kPa, m s-1.
    """
    delta = saturation_slope(air_temperature)
    gamma = psychrometric_constant(air_pressure, air_temperature)
    rho = air_density(air_temperature, air_pressure)
    le = (delta * available_energy + rho * CP_AIR * (vpd / 10.0) * aerodynamic_conductance) / (delta + gamma)
    return jnp.maximum(le, 0.0) / latent_heat_vaporization(air_temperature)
