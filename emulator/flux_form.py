"""Flux-form bookkeeping of the daily coupled-model emulator: the network predicts fluxes,
these functions turn them into new states so that water and carbon close by construction.

Water (mm per day; W_i = 1000 dz_i (theta_i - theta_res) the water above residual of layer
i, C_i = 1000 dz_i (theta_sat - theta_res) its capacity)::

    snowfall = P s,  rain = P - snowfall                s in (0, 1) (logistic of the
                                                          precipitation-weighted temperature
                                                          + network correction)
    melt     = smooth_min(DDF D+ m, SWE + snowfall)     degree-day melt (Hock 2003), D+ the
                                                          day's mean softplus(T_air) (degC),
                                                          m in (e^-0.5, e^0.5) network factor
    E_int    = f_i rain,  throughfall = rain - E_int     f_i in (0, 1)
    runoff   = f_r (throughfall + melt),  I = throughfall + melt - runoff
    u_i      = smooth_min(T_d w_i, 1000 dz_i (theta_i - theta_wilt)^+)     root uptake,
               w = softmax(log(r_i w_i(psi_i)) + z_i) (CLM4.5 root x wilting weights + network)
    E_soil   = smooth_min(E_d, (W_0 - u_0)^+)
    cascade  A_0 = W_0 - s_0 + I;  q_i = clip(q_i*, max(A_i - C_i, -(W_{i+1} - s_{i+1})), A_i),
             A_{i+1} = W_{i+1} - s_{i+1} + q_i;  drainage = clip(d*, (A_n - C_n)^+, A_n)
    W_i'     = A_i - q_i

so that ``sum_i 1000 dz_i (theta_i' - theta_i) + (SWE' - SWE) = P - ET - runoff - drainage``
with ``ET = sum_i u_i + E_soil + E_int`` exactly (float round-off), and every layer stays in
``[theta_res, theta_sat]`` for any network output (the clips keep each layer between empty
and full; ``smooth_min`` is never above its arguments).

Carbon (g C m-2 per day; the pool structure and turnover of
:mod:`process_models.coupled.carbon`, Potter et al. 1993 / Ryan 1991)::

    Ra     = R_c + (m_wood C_wood + m_root C_root) Q10^((T_s - 20)/10)     R_c = network
             (leaf + growth respiration); wood and root maintenance exact
    NPP    = (GPP - Ra) dt;   N- = min(max(N*, -NPP), V/2) >= 0 (the day's summed deficit,
             network; V = C_leaf + C_wood + C_root, R_c capped by smooth_min so that
             NPP >= -V/2); N+ = NPP + N- >= 0, so pools stay positive for any network output
    C_veg' = C_veg + a_p N+ - N- C_veg / (C_leaf + C_wood + C_root) - C_veg (1 - e^{-dt/tau})
    litter, soil_fast, soil_slow: exact exponential decay with the Lloyd & Taylor (1994) x
             CENTURY moisture scalar averaged over the day's start and end
    Rh     = respired decomposition

so that ``d(sum of pools) = (GPP - Ra - Rh) dt`` exactly.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from process_models.coupled.carbon import SECONDS_PER_YEAR, lloyd_taylor, moisture_factor
from process_models.coupled.params import G_C_PER_UMOL_CO2, CarbonParams, CarbonPools
from process_models.coupled.soil_water import WATER_DENSITY, smooth_min

DAY_SECONDS = 86400.0


def snow_day(swe, precipitation, precipitation_temperature, positive_degrees, snow_temperature,
             degree_day_factor, snow_logit, melt_factor_logit):
    """Daily snow pack: ``(swe_new, rain, melt)`` (mm); ``swe_new - swe = snowfall - melt``.

    ``precipitation_temperature`` (degC) is the precipitation-weighted air temperature of
    the day, ``positive_degrees`` (degC) the day's mean softplus(T_air) and
    ``degree_day_factor`` in mm degC-1 day-1 (Hock 2003, J. Hydrol. 282, 104)."""
    snow_fraction = jax.nn.sigmoid(-(precipitation_temperature - snow_temperature) + snow_logit)
    snowfall = precipitation * snow_fraction
    rain = precipitation - snowfall
    potential = degree_day_factor * positive_degrees * jnp.exp(0.5 * jnp.tanh(melt_factor_logit))
    melt = smooth_min(potential, swe + snowfall)
    return swe + snowfall - melt, rain, melt


def soil_column_day(theta, infiltration, transpiration_demand, uptake_weights, evaporation_demand,
                    layer_flux, drainage_demand, theta_res, theta_sat, theta_wilt, layer_thickness):
    """One day of the flux-form soil-water column (module docstring).

    Parameters
    ----------
    theta : (n,) water content, m3 m-3.
    infiltration : water entering the top layer, mm per day (>= 0).
    transpiration_demand : mm per day (>= 0); ``uptake_weights`` (n,) sum to 1.
    evaporation_demand : soil evaporation demand of the top layer, mm per day (>= 0).
    layer_flux : (n - 1,) downward flux between layers i and i + 1 proposed by the network,
        mm per day (signed; clipped to what the layers hold and can take).
    drainage_demand : proposed bottom drainage, mm per day (>= 0).
    theta_res, theta_sat, theta_wilt : scalars or (n,), m3 m-3.

    Returns ``(theta_new (n,), fluxes)`` with ``uptake`` (n,), ``transpiration``,
    ``soil_evaporation``, ``drainage``, ``layer_flux`` (n - 1,) (all mm per day).
    """
    dz_mm = WATER_DENSITY * jnp.asarray(layer_thickness, theta.dtype)
    n = dz_mm.shape[0]
    res = jnp.broadcast_to(theta_res, (n,)).astype(theta.dtype)
    cap = (jnp.broadcast_to(theta_sat, (n,)) - res) * dz_mm
    water = jnp.clip((theta - res) * dz_mm, 0.0, cap)
    avail = jnp.maximum(theta - jnp.broadcast_to(theta_wilt, (n,)), 0.0) * dz_mm
    uptake = smooth_min(transpiration_demand * uptake_weights, jnp.minimum(avail, water))
    e_soil = smooth_min(evaporation_demand, jnp.maximum(water[0] - uptake[0], 0.0))
    left = water - uptake.at[0].add(e_soil)           # >= 0 in every layer
    new, fluxes, inflow = [], [], infiltration
    for i in range(n):                                  # static loop over layers (n = 8)
        a = left[i] + inflow
        if i < n - 1:
            q = jnp.clip(layer_flux[i], jnp.maximum(a - cap[i], -left[i + 1]), a)
        else:
            q = jnp.clip(drainage_demand, jnp.maximum(a - cap[i], 0.0), a)
        new.append(a - q)
        fluxes.append(q)
        inflow = q
    w_new = jnp.stack(new)
    theta_new = res + w_new / dz_mm
    return theta_new, {"uptake": uptake, "transpiration": jnp.sum(uptake), "soil_evaporation": e_soil,
                       "drainage": fluxes[-1], "layer_flux": jnp.stack(fluxes[:-1])}


def relax_day(value, target, tau_days):
    """First-order relaxation over one day: ``x' = x + (target - x)(1 - e^{-1/tau})``
    (the daily form of the process model's running means of air temperature)."""
    return value + (target - value) * (-jnp.expm1(-1.0 / tau_days))


def carbon_day(pools: CarbonPools, gpp, canopy_respiration, npp_deficit, soil_temperature,
               environment, carbon: CarbonParams, dt: float = DAY_SECONDS):
    """Advance the carbon pools by one day in flux form (module docstring).

    ``gpp`` and ``canopy_respiration`` (leaf + growth respiration) are daily means in
    umol m-2 s-1, ``npp_deficit`` the day's summed carbon deficit proposed by the network
    (g C m-2, >= 0), ``soil_temperature`` degC, ``environment`` the decomposition scalar
    f_T f_W of the day. Returns ``(pools_new, ra, rh)`` with ra, rh in umol m-2 s-1."""
    conv = G_C_PER_UMOL_CO2 * dt
    q10 = carbon.q10_maintenance ** ((soil_temperature - 20.0) / 10.0)
    rm_struct = (carbon.rm_wood * pools.wood + carbon.rm_root * pools.root) * q10 / SECONDS_PER_YEAR
    rm_struct = rm_struct / G_C_PER_UMOL_CO2
    veg = jnp.maximum(pools.leaf + pools.wood + pools.root, 1e-9)
    # the day's deficit may draw at most half of the vegetation carbon: R_c is capped so
    # that NPP >= -veg/2 (inactive for realistic fluxes; keeps pools positive for any weights)
    deficit_cap = 0.5 * veg
    rc = smooth_min(canopy_respiration, jnp.maximum(gpp + deficit_cap / conv - rm_struct, 0.0))
    ra = rc + rm_struct
    npp = (gpp - ra) * conv
    npp_neg = jnp.minimum(jnp.maximum(npp_deficit, -npp), deficit_cap)
    npp_pos = npp + npp_neg
    a_root = 1.0 - carbon.alloc_leaf - carbon.alloc_wood

    def decay(c, tau, s=1.0):
        return c * (-jnp.expm1(-s * dt / (tau * SECONDS_PER_YEAR)))

    turn = [decay(pools.leaf, carbon.tau_leaf), decay(pools.wood, carbon.tau_wood),
            decay(pools.root, carbon.tau_root)]
    dec_lit = decay(pools.litter, carbon.tau_litter, environment)
    dec_fast = decay(pools.soil_fast, carbon.tau_soil_fast, environment)
    dec_slow = decay(pools.soil_slow, carbon.tau_soil_slow, environment)
    veg_new = [c + a * npp_pos - npp_neg * c / veg - t for c, a, t in
               zip((pools.leaf, pools.wood, pools.root), (carbon.alloc_leaf, carbon.alloc_wood, a_root), turn)]
    new = CarbonPools(leaf=veg_new[0], wood=veg_new[1], root=veg_new[2],
                      litter=pools.litter + turn[0] + turn[1] + turn[2] - dec_lit,
                      soil_fast=pools.soil_fast + carbon.eff_litter * dec_lit - dec_fast,
                      soil_slow=pools.soil_slow + carbon.eff_fast * dec_fast - dec_slow)
    rh_g = (1.0 - carbon.eff_litter) * dec_lit + (1.0 - carbon.eff_fast) * dec_fast + dec_slow
    return new, ra, rh_g / conv


def decomposition_scalar(soil_temperature, relative_water, carbon: CarbonParams):
    """f_T f_W: Lloyd & Taylor (1994) x CENTURY moisture factor (Parton et al. 1987)."""
    return lloyd_taylor(soil_temperature, carbon.e0) * moisture_factor(relative_water)
