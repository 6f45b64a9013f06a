"""CASA-like carbon pools, autotrophic and heterotrophic respiration, leaf area.

Pools (g C m-2): leaf, wood, root (vegetation), litter, soil_fast, soil_slow
(Potter et al. 1993, GBC 7, 811; Randerson et al. 1996, GBC 10, 585: a reduced CASA).

Autotrophic respiration (Ryan 1991, Ecol. Appl. 1, 157)::

    Rm = R_leaf (from the leaf model) + (m_wood C_wood + m_root C_root) Q10^((T_s - 20)/10)
    Rg = g_frac * max(GPP - Rm, 0)               (smoothed: softplus, width 0.01 umol m-2 s-1)
    Ra = Rm + Rg,   NPP = GPP - Ra

Allocation: positive NPP goes to leaf/wood/root with fractions (a_leaf, a_wood,
1 - a_leaf - a_wood); a carbon deficit (NPP < 0, e.g. at night) is drawn from the three
vegetation pools in proportion to their size (non-structural reserves).

Turnover and decomposition (exact exponential decay over the step, so pools stay
positive)::

    flux_p = C_p (1 - exp(-k_p s dt)),  k_p = 1 / tau_p,  s = 1 for vegetation pools
    s = f_T f_W for litter and soil pools
    f_T = exp(E0 (1/(T_ref - T0) - 1/(T_s - T0)))     (Lloyd & Taylor 1994, T_ref = 283.15 K,
                                                          T0 = 227.13 K, E0 = 308.56 K)
    f_W = 1 / (1 + 30 exp(-8.5 W))                     (CENTURY, Parton et al. 1987/1993;
                                                          W = relative water content of the top 0.3 m)

Vegetation turnover -> litter; decomposed litter -> soil_fast (fraction eff_litter, the rest
respired); decomposed soil_fast -> soil_slow (fraction eff_fast, rest respired);
decomposed soil_slow -> respired. Rh = all respired decomposition fluxes.

Closure (exact by construction): d(sum of pools) = (GPP - Ra - Rh) dt.

Leaf area: LAI = SLA x C_leaf when no LAI forcing is given.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .params import G_C_PER_UMOL_CO2, CarbonParams, CarbonPools

SECONDS_PER_YEAR = 365.25 * 86400.0
T_REF_LT = 283.15
"""Lloyd & Taylor (1994) reference temperature (K)."""
T0_LT = 227.13
"""Lloyd & Taylor (1994) temperature of zero respiration (K)."""


def lloyd_taylor(soil_temperature, e0):
    """Lloyd & Taylor (1994, eq. 11) temperature factor, 1 at 10 degC. ``soil_temperature``
    in degC; T - T0 is kept >= 5 K by a softplus (no blow-up below -41 degC)."""
    t_k = soil_temperature + 273.15
    t_eff = T0_LT + 5.0 + jax.nn.softplus(t_k - T0_LT - 5.0)
    return jnp.exp(e0 * (1.0 / (T_REF_LT - T0_LT) - 1.0 / (t_eff - T0_LT)))


def moisture_factor(relative_water):
    """CENTURY decomposition moisture factor 1 / (1 + 30 exp(-8.5 W)), W in [0, 1]."""
    return 1.0 / (1.0 + 30.0 * jnp.exp(-8.5 * relative_water))


def maintenance_respiration(pools: CarbonPools, leaf_respiration, soil_temperature,
                            carbon: CarbonParams):
    """Rm (umol m-2 s-1): leaf respiration from the leaf model plus wood and root
    maintenance with Q10 (Ryan 1991), evaluated at the soil-temperature proxy."""
    f = carbon.q10_maintenance ** ((soil_temperature - 20.0) / 10.0)
    gc_per_s = (carbon.rm_wood * pools.wood + carbon.rm_root * pools.root) * f / SECONDS_PER_YEAR
    return leaf_respiration + gc_per_s / G_C_PER_UMOL_CO2


def leaf_area_index(pools: CarbonPools, carbon: CarbonParams):
    """LAI = SLA x C_leaf. Units: m2 m-2."""
    return carbon.sla * pools.leaf


def carbon_step(pools: CarbonPools, gpp, leaf_respiration, soil_temperature, relative_water,
                carbon: CarbonParams, dt):
    """Advance the pools by one step of ``dt`` seconds.

    Parameters: gpp, leaf_respiration in umol m-2 s-1 (canopy totals); soil_temperature
    degC; relative_water in [0, 1] (top 0.3 m).

    Returns (pools_new, ra, rh) with ra, rh in umol m-2 s-1.
    """
    conv = G_C_PER_UMOL_CO2 * dt                         # g C per (umol m-2 s-1) over the step
    rm = maintenance_respiration(pools, leaf_respiration, soil_temperature, carbon)
    w = 0.01                                              # umol m-2 s-1, softplus width
    rg = carbon.growth_resp_frac * w * jax.nn.softplus((gpp - rm) / w)
    ra = rm + rg
    npp = (gpp - ra) * conv                               # g C m-2 per step
    npp_pos = w * conv * jax.nn.softplus(npp / (w * conv))
    npp_neg = npp_pos - npp                               # >= 0, deficit
    veg = jnp.maximum(pools.leaf + pools.wood + pools.root, 1e-9)
    a_root = 1.0 - carbon.alloc_leaf - carbon.alloc_wood

    def decay(c, tau, s=1.0):
        return c * (-jnp.expm1(-s * dt / (tau * SECONDS_PER_YEAR)))

    turn_leaf = decay(pools.leaf, carbon.tau_leaf)
    turn_wood = decay(pools.wood, carbon.tau_wood)
    turn_root = decay(pools.root, carbon.tau_root)
    env = lloyd_taylor(soil_temperature, carbon.e0) * moisture_factor(relative_water)
    dec_lit = decay(pools.litter, carbon.tau_litter, env)
    dec_fast = decay(pools.soil_fast, carbon.tau_soil_fast, env)
    dec_slow = decay(pools.soil_slow, carbon.tau_soil_slow, env)

    def veg_new(c, alloc, turn):
        return c + alloc * npp_pos - npp_neg * c / veg - turn

    new = CarbonPools(
        leaf=veg_new(pools.leaf, carbon.alloc_leaf, turn_leaf),
        wood=veg_new(pools.wood, carbon.alloc_wood, turn_wood),
        root=veg_new(pools.root, a_root, turn_root),
        litter=pools.litter + turn_leaf + turn_wood + turn_root - dec_lit,
        soil_fast=pools.soil_fast + carbon.eff_litter * dec_lit - dec_fast,
        soil_slow=pools.soil_slow + carbon.eff_fast * dec_fast - dec_slow,
    )
    rh_g = ((1.0 - carbon.eff_litter) * dec_lit + (1.0 - carbon.eff_fast) * dec_fast + dec_slow)
    return new, ra, rh_g / conv


def steady_state_pools(carbon: CarbonParams, npp=None, env_mean=1.0):
    """Analytic steady state of the pools for a mean NPP (g C m-2 yr-1) and a mean
    decomposition scalar ``env_mean`` = <f_T f_W>::

        C_veg,p = a_p NPP tau_p;   C_litter = NPP tau_litter / env;
        C_fast = eff_litter NPP tau_fast / env;   C_slow = eff_fast eff_litter NPP tau_slow / env

    With ``npp=None`` the NPP is the one that sustains ``initial_lai``:
    NPP = (initial_lai / SLA) / (a_leaf tau_leaf).
    """
    if npp is None:
        npp = carbon.initial_lai / carbon.sla / (carbon.alloc_leaf * carbon.tau_leaf)
    a_root = 1.0 - carbon.alloc_leaf - carbon.alloc_wood
    return CarbonPools(
        leaf=carbon.alloc_leaf * npp * carbon.tau_leaf,
        wood=carbon.alloc_wood * npp * carbon.tau_wood,
        root=a_root * npp * carbon.tau_root,
        litter=npp * carbon.tau_litter / env_mean,
        soil_fast=carbon.eff_litter * npp * carbon.tau_soil_fast / env_mean,
        soil_slow=carbon.eff_fast * carbon.eff_litter * npp * carbon.tau_soil_slow / env_mean,
    )
