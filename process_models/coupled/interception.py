"""Canopy interception (Rutter-type bucket, CLM4.5 form) and the cold-season acclimation
of photosynthetic capacity (Makela et al. 2004, 2008).

Canopy interception (per model step, amounts in mm = kg m-2)
-----------------------------------------------------------
A canopy water store W (mm) with capacity (Rutter et al. 1971, Agric. Meteorol. 9:367;
CLM4.5 tech. note, Oleson et al. 2013, section 7.1, eqs. 7.2-7.8, with dewmx = 0.1 mm)::

    S     = c (L + SAI)                                   storage capacity, mm
    I     = alpha (1 - exp(-0.5 (L + SAI))) P              intercepted precipitation, mm
    W1    = W + I
    W2    = smooth_min(W1, S),  drip = W1 - W2 (>= 0)      excess drips (CLM eq. 7.7; the smooth
                                                           cap of order 8 also drips 0.2 % of W
                                                           per step at W = 0.6 S, 8 % at W = S)
    f_wet = (W2 / S)^(2/3)                                 wetted leaf fraction (Deardorff 1978,
                                                           JGR 83:1889; CLM eq. 7.11)
    E_int = smooth_min(f_wet E_wet dt / lambda, W2)        wet-canopy evaporation, mm
    W'    = W2 - E_int
    throughfall = P - I + drip                             reaches the snow pack / soil

with E_wet the Penman (1948) / Penman-Monteith latent heat at zero canopy resistance
(g_s -> inf: ``(Delta A + rho c_p D g_a) / (Delta + gamma)``, W m-2, >= 0) for the canopy
available energy A and the canopy aerodynamic conductance g_a. Transpiration comes from
the dry fraction only: the transpiration demand is multiplied by (1 - f_wet) (CLM4.5
eq. 5.101, fdry). The store closes exactly: ``W' - W = I - drip - E_int``, so
``P = throughfall + E_int + (W' - W)``. Intercepted snow is treated as water (evaporated
with the latent heat of vaporisation; documented simplification).
alpha = 1 is the Rutter/Gash free-throughfall form (p = exp(-0.5 (L + SAI))); CLM4.5 used
alpha = 0.25, which Lawrence et al. (2007, J. Hydrometeorol. 8:862) found to underestimate
interception (CLM5 raised it, fpi = tanh(L + SAI)).

Cold-season acclimation (evergreens)
------------------------------------
Delayed-temperature state S (degC) of Makela et al. (2004, Tree Physiol. 24:369; form and
parameter ranges of Makela et al. 2008, Glob. Change Biol. 14:92)::

    dS/dt = (T_air - S) / tau      ->  S' = S + (T_air - S)(1 - exp(-dt / tau))   (exact for
                                                                              step-constant T)
    f_S   = clip((S - X0) / S_max, 0, 1)

smoothed here as ``f_S = [softplus(k x) - softplus(k (x - 1))] / k``, x = (S - X0)/S_max,
k = :data:`ACCLIMATION_SHARPNESS` (error <= ln 2 / k = 0.028 at the kinks, 0 far from them).
f_S multiplies Vcmax together with the water-stress factor. Makela et al. (2008) ranges:
tau 1-20 d (median ~5), X0 -15 to 1 degC (median ~-5), S_max 11-30 degC (median ~20).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from . import evapotranspiration as et
from .soil_water import smooth_min

INTERCEPTION_EXTINCTION = 0.5
"""Extinction of precipitation by leaf + stem area in the intercepted fraction (CLM4.5 eq. 7.2). Units: 1."""
WET_FRACTION_EXPONENT = 2.0 / 3.0
"""Exponent of the wetted fraction (W/S)^(2/3) (Deardorff 1978; CLM4.5 eq. 7.11). Units: 1."""
ACCLIMATION_SHARPNESS = 25.0
"""k of the smooth ramp of the acclimation factor (per unit of (S - X0)/S_max). Units: 1."""


def storage_capacity(lai, canopy):
    """S = c (L + SAI), mm (floored at 1e-6 mm so that f_wet stays finite at L = 0)."""
    area = jnp.maximum(lai, 0.0) + canopy.stem_area_index
    return jnp.maximum(canopy.interception_capacity * area, 1e-6)


def intercepted_fraction(lai, canopy):
    """alpha (1 - exp(-0.5 (L + SAI))). Units: 1."""
    area = jnp.maximum(lai, 0.0) + canopy.stem_area_index
    return canopy.interception_efficiency * -jnp.expm1(-INTERCEPTION_EXTINCTION * area)


def wet_canopy_evaporation_potential(available_energy, air_temperature, vpd, air_pressure,
                                     aerodynamic_conductance):
    """Latent heat of a fully wet canopy (Penman-Monteith with zero canopy resistance,
    Penman 1948): (Delta A + rho c_p D g_a) / (Delta + gamma), floored at 0. Units: W m-2."""
    delta = et.saturation_slope(air_temperature)
    gamma = et.psychrometric_constant(air_pressure, air_temperature)
    rho = et.air_density(air_temperature, air_pressure)
    num = delta * available_energy + rho * et.CP_AIR * (vpd / 10.0) * aerodynamic_conductance
    return jnp.maximum(num / (delta + gamma), 0.0)


def interception_step(canopy_water, precipitation, lai, canopy, evaporation_potential, dt):
    """Advance the canopy water store by one step (module docstring).

    Parameters: canopy_water W (mm); precipitation P (mm per step); lai (m2 m-2); canopy
    (:class:`~process_models.coupled.canopy.CanopyParams`); evaporation_potential: wet-canopy
    latent heat (W m-2, :func:`wet_canopy_evaporation_potential`) divided by lambda, i.e.
    kg m-2 s-1; dt (s).

    Returns (canopy_water_new, throughfall, evaporation, wet_fraction) in (mm, mm, mm, 1),
    with ``canopy_water_new - canopy_water = P - throughfall - evaporation`` exactly.
    """
    cap = storage_capacity(lai, canopy)
    p = jnp.maximum(precipitation, 0.0)
    intercepted = intercepted_fraction(lai, canopy) * p
    w1 = canopy_water + intercepted                  # W >= -round-off; no clamp (exact budget)
    w2 = smooth_min(w1, cap)
    drip = w1 - w2
    wet = jnp.clip(jnp.maximum(w2, 1e-30) / cap, 0.0, 1.0) ** WET_FRACTION_EXPONENT
    wet = jnp.where(w2 > 0, wet, 0.0)
    evaporation = smooth_min(wet * jnp.maximum(evaporation_potential, 0.0) * dt, w2)
    w_new = w2 - evaporation
    throughfall = p - intercepted + drip
    return w_new, throughfall, evaporation, wet


def acclimation_update(acclimation_temperature, air_temperature, canopy, dt):
    """Makela et al. (2004) delayed temperature S, exact exponential step. Units: degC."""
    decay = -jnp.expm1(-dt / (canopy.acclimation_tau * 86400.0))
    return acclimation_temperature + (air_temperature - acclimation_temperature) * decay


def acclimation_factor(acclimation_temperature, canopy):
    """Smooth clip((S - X0)/S_max, 0, 1) of Makela et al. (2004, 2008). Units: 1."""
    x = (acclimation_temperature - canopy.acclimation_x0) / canopy.acclimation_smax
    k = ACCLIMATION_SHARPNESS
    f = (jax.nn.softplus(k * x) - jax.nn.softplus(k * (x - 1.0))) / k
    return jnp.clip(f, 0.0, 1.0)
