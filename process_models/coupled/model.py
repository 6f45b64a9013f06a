"""The coupled model: one time step and the scanned simulation.

Order of operations in :func:`step` (all quantities of one site/member; vmap adds
members and sites)::

    0. acclimation   S' = S + (T_air - S)(1 - e^{-dt/tau}), f_S = clip((S - X0)/S_max, 0, 1)
                     (Makela et al. 2004, smooth; interception.py)
    1. water stress  beta_t = sum_i r_i w_i(psi(theta_i))                (roots.py)
    2. LAI           forcing.lai, or SLA x C_leaf                          (carbon.py)
    3. canopy        canopy_fluxes(leaf, canopy, ..., lai, water_stress=beta_t f_S)
                     -> GPP, leaf respiration, transpiration demand, ground energy, g_a, SIF
    3b. interception canopy store W: I = alpha (1 - e^{-0.5(L+SAI)}) P, capacity c (L+SAI),
                     drip, f_wet = (W/S)^(2/3), E_int at the zero-resistance Penman-Monteith
                     potential x f_wet (Rutter et al. 1971; CLM4.5; interception.py)
    4. snow          degree-day pack; throughfall + melt reach the soil    (soil_water.py)
    5. sinks         T_demand x (1 - f_wet) (dry canopy transpires);
                     uptake_i = smooth_min(T_demand r_i w_i / beta_t, water above wilting)
                     E_pot   = Penman-Monteith at the ground: soil-to-air conductance (g_a in
                               series with the Choudhury & Monteith 1988 within-canopy
                               resistance), Sellers et al. (1992) surface resistance r_ss(theta_1)
                     E_soil  = smooth_min(E_pot x (1 - snow cover),
                                          top-layer water above residual - uptake_1)
    6. Richards      linearised backward Euler, n_substeps, limiter   -> runoff, drainage
    7. carbon        Ra = Rm + Rg, Rh(Lloyd-Taylor x CENTURY moisture), pools update
    8. outputs       NEE = Ra + Rh - GPP, ET = T + E_soil + E_int, LE = lambda ET / dt

Water closes exactly: P = ET + runoff + drainage + d(soil water + snow + canopy water)
(float64 round-off),
carbon closes exactly: sum(GPP - Ra - Rh) dt = d(sum of pools).

Memory and cost of gradients: by default :func:`simulate` puts ``jax.checkpoint`` on every
step (the steps still scanned in days, so the forward run is bit for bit the former one),
so reverse mode stores one state per step (a year hourly: 8760 states of ~20 numbers)
and recomputes each step's linearisation just before its transpose, instead of stacking
the residuals of a whole chunk. Measured (CH-Dav hourly site-year, float32, XLA:CPU):
748 executed kernels per step for the gradient against 1094 with the former one-day
chunk checkpoints, for 167 per forward step (``experiments/benchmarks/coupled_throughput.py
--kernel-counts``); 10-25 % less CPU time in same-run comparisons. ``checkpoint_every=k``
restores chunks of k steps (one state per chunk).
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from ..units import DataValidationError
from .canopy import canopy_fluxes
from .carbon import (carbon_step, lloyd_taylor, moisture_factor,
                     steady_state_pools)
from .evapotranspiration import latent_heat_vaporization, penman_monteith
from .interception import (acclimation_factor, acclimation_update, interception_step,
                           wet_canopy_evaporation_potential)
from .params import CarbonPools, CoupledForcing, CoupledOutputs, CoupledParams, CoupledState
from .roots import uptake_demand, water_stress_factor
from .soil_water import (WATER_DENSITY, field_capacity, layer_geometry, smooth_min,
                         snow_step, soil_aerodynamic_conductance,
                         soil_surface_resistance, soil_water_step,
                         theta_from_head)

DECOMPOSITION_DEPTH = 0.3
"""Depth (m) over which the relative water content of the Rh moisture factor is averaged."""
SNOW_COVER_SCALE = 10.0
"""Snow water equivalent (mm) at which half of the ground is snow covered (no soil evaporation)."""


def _depth_weights(layer_thickness, depth=DECOMPOSITION_DEPTH):
    """Static per-layer weights of the top ``depth`` metres (NumPy, sums to 1)."""
    dz = np.asarray(layer_thickness, float)
    top = np.concatenate([[0.0], np.cumsum(dz)[:-1]])
    overlap = np.clip(np.minimum(top + dz, depth) - top, 0.0, None)
    return overlap / overlap.sum()


def relative_water_topsoil(theta, params: CoupledParams):
    """Relative water content (theta - res)/(sat - res) of the top 0.3 m, in [0, 1]."""
    soil = params.soil
    w = jnp.asarray(_depth_weights(params.layer_thickness), theta.dtype)
    rel = (theta - soil.theta_res) / (soil.theta_sat - soil.theta_res)
    return jnp.clip(jnp.sum(w * rel, axis=-1), 0.0, 1.0)


@struct.dataclass
class SurfaceState:
    """State of the surface (canopy) phase: snow, canopy water, acclimation temperature."""

    snow_water_equivalent: jax.Array
    """Units: mm."""
    canopy_water: jax.Array
    """Units: mm."""
    acclimation_temperature: jax.Array
    """Units: degC."""


@struct.dataclass
class SoilState:
    """State of the soil phase: soil water per layer, soil temperature, carbon pools."""

    soil_water_content: jax.Array
    """Units: m3 m-3, shape (n_layers,)."""
    soil_temperature: jax.Array
    """Units: degC."""
    carbon: CarbonPools
    """Units: g C m-2."""


@struct.dataclass
class SurfaceFluxes:
    """What the surface phase computes in one step: the exchange with the soil phase
    (``water_in``, ``sinks``, ``gpp``, ``leaf_respiration``) and its diagnostics."""

    water_in: jax.Array
    """Throughfall + drip + snowmelt reaching the soil surface. Units: mm per step."""
    sinks: jax.Array
    """Root water uptake per layer plus soil evaporation in the top layer. Units: mm per
    step, shape (n_layers,)."""
    gpp: jax.Array
    """Units: umol m-2 s-1."""
    leaf_respiration: jax.Array
    """Units: umol m-2 s-1."""
    transpiration: jax.Array
    """Units: mm per step."""
    soil_evaporation: jax.Array
    """Units: mm per step."""
    interception_evaporation: jax.Array
    """Units: mm per step."""
    et: jax.Array
    """Evapotranspiration T + E_soil + E_int. Units: mm per step."""
    le: jax.Array
    """Latent heat flux lambda ET / dt. Units: W m-2."""
    water_stress: jax.Array
    """Units: 1."""
    lai: jax.Array
    """Units: m2 m-2."""
    sif: jax.Array
    """Units: W m-2 sr-1 um-1."""
    acclimation_factor: jax.Array
    """Units: 1."""


@struct.dataclass
class SoilFluxes:
    """What the soil phase computes in one step."""

    runoff: jax.Array
    """Units: mm per step."""
    drainage: jax.Array
    """Units: mm per step."""
    ra: jax.Array
    """Units: umol m-2 s-1."""
    rh: jax.Array
    """Units: umol m-2 s-1."""


def split_state(state: CoupledState) -> tuple[SurfaceState, SoilState]:
    """A complete :class:`CoupledState` as its surface and soil parts."""
    state = complete_state(state)
    return (SurfaceState(state.snow_water_equivalent, state.canopy_water,
                         state.acclimation_temperature),
            SoilState(state.soil_water_content, state.soil_temperature, state.carbon))


def merge_state(surface: SurfaceState, soil: SoilState) -> CoupledState:
    """Inverse of :func:`split_state`."""
    return CoupledState(soil_water_content=soil.soil_water_content,
                        snow_water_equivalent=surface.snow_water_equivalent,
                        soil_temperature=soil.soil_temperature, carbon=soil.carbon,
                        canopy_water=surface.canopy_water,
                        acclimation_temperature=surface.acclimation_temperature)


def surface_step(state: SurfaceState, forcing_t: CoupledForcing, params: CoupledParams,
                 soil_water_content, leaf_carbon, *, canopy=canopy_fluxes):
    """Steps 0-5 of :func:`step` (acclimation, water stress, LAI, canopy, interception,
    snow, sinks) given the soil water per layer (m3 m-3) and the leaf carbon pool
    (g C m-2) at the start of the step. Returns ``(SurfaceState, SurfaceFluxes)``."""
    dt = forcing_t.dt_seconds
    soil, roots, carbon = params.soil, params.roots, params.carbon
    f = forcing_t
    theta = soil_water_content
    dz, _, _, _ = layer_geometry(params.layer_thickness)
    dz = dz.astype(theta.dtype)
    cp = params.canopy

    # 0: cold-season acclimation (Makela et al. 2004)
    s_acc = acclimation_update(state.acclimation_temperature, f.air_temperature, cp, dt)
    f_cold = acclimation_factor(s_acc, cp)

    # 1-3: stress, leaf area, canopy (Vcmax x beta_t x f_S)
    beta_t, weights = water_stress_factor(theta, soil, roots, params.layer_thickness)
    lai = carbon.sla * leaf_carbon if f.lai is None else f.lai
    cf = canopy(params.leaf, cp, shortwave_in=f.shortwave_in,
                cos_zenith=f.cos_zenith, air_temperature=f.air_temperature, vpd=f.vpd,
                co2=f.co2, air_pressure=f.air_pressure, wind_speed=f.wind_speed,
                lai=lai, water_stress=beta_t * f_cold)
    lam = latent_heat_vaporization(f.air_temperature)

    # 3b: canopy interception (Rutter / CLM4.5): wet-canopy evaporation at zero resistance
    e_wet = wet_canopy_evaporation_potential(cf.canopy_available_energy, f.air_temperature,
                                             f.vpd, f.air_pressure, cf.aerodynamic_conductance)
    canopy_water, throughfall, e_int, f_wet = interception_step(
        state.canopy_water, f.precipitation, lai, cp, e_wet / lam, dt)

    # 4: snow (throughfall + drip)
    swe, water_in = snow_step(state.snow_water_equivalent, throughfall, f.air_temperature,
                              soil, dt)

    # 5: sinks (mm per step), limited by the available water; transpiration from the dry
    #    fraction of the canopy only (CLM4.5 fdry)
    t_demand = jnp.maximum(cf.transpiration_demand, 0.0) * dt * (1.0 - f_wet)
    wilt = jnp.maximum(theta_from_head(roots.psi_close, soil), soil.theta_res)
    avail_uptake = jnp.maximum(theta - wilt, 0.0) * dz * WATER_DENSITY
    uptake = smooth_min(uptake_demand(t_demand, weights), avail_uptake)
    g_soil = soil_aerodynamic_conductance(f.wind_speed, params.canopy.canopy_height,
                                          params.canopy.reference_height,
                                          cf.aerodynamic_conductance)
    g_surface = 1.0 / soil_surface_resistance(theta[0], soil)
    e_pot = jnp.maximum(penman_monteith(cf.soil_available_energy, f.air_temperature, f.vpd,
                                        f.air_pressure, g_soil, g_surface), 0.0)
    snow_free = SNOW_COVER_SCALE / (SNOW_COVER_SCALE + swe)
    e_demand = e_pot / latent_heat_vaporization(f.air_temperature) * dt * snow_free
    res_top = jnp.asarray(soil.theta_res)
    res_top = res_top[0] if res_top.ndim else res_top
    avail_top = jnp.maximum((theta[0] - res_top) * dz[0] * WATER_DENSITY - uptake[0], 0.0)
    e_soil = smooth_min(e_demand, avail_top)
    sinks = uptake.at[0].add(e_soil)

    transpiration = jnp.sum(uptake)
    et = transpiration + e_soil + e_int
    new = SurfaceState(swe, canopy_water, s_acc + jnp.zeros_like(state.acclimation_temperature))
    return new, SurfaceFluxes(
        water_in=water_in, sinks=sinks, gpp=cf.gpp, leaf_respiration=cf.leaf_respiration,
        transpiration=transpiration, soil_evaporation=e_soil, interception_evaporation=e_int,
        et=et, le=lam * et / dt, water_stress=beta_t,
        lai=jnp.asarray(lai, theta.dtype) + jnp.zeros_like(beta_t), sif=cf.sif,
        acclimation_factor=f_cold + jnp.zeros_like(beta_t))


def soil_step(state: SoilState, air_temperature, params: CoupledParams, water_in, sinks, gpp,
              leaf_respiration, dt: float):
    """Steps 6-7 of :func:`step`: Richards soil water with the surface input ``water_in``
    and the layer ``sinks`` (mm per step), the soil-temperature proxy (air temperature in
    degC), and the carbon pools with ``gpp`` and ``leaf_respiration`` (umol m-2 s-1) over
    ``dt`` seconds. Returns ``(SoilState, SoilFluxes)``."""
    carbon = params.carbon
    theta_new, runoff, drainage = soil_water_step(
        state.soil_water_content, water_in, sinks, params.soil, params.layer_thickness, dt,
        n_substeps=params.n_substeps, bottom_boundary=params.bottom_boundary)
    decay = -jnp.expm1(-dt / (carbon.soil_temperature_tau * 86400.0))
    t_soil = state.soil_temperature + (air_temperature - state.soil_temperature) * decay
    rel_w = relative_water_topsoil(theta_new, params)
    pools, ra, rh = carbon_step(state.carbon, gpp, leaf_respiration, t_soil, rel_w, carbon, dt)
    return SoilState(theta_new, t_soil, pools), SoilFluxes(runoff, drainage, ra, rh)


def combine_outputs(surface: SurfaceFluxes, soil: SoilFluxes, surface_state: SurfaceState,
                    soil_state: SoilState) -> CoupledOutputs:
    """Step 8 of :func:`step`: the model outputs from the two phases' fluxes and the new
    states (NEE = Ra + Rh - GPP; ET and LE from the surface phase)."""
    reco = soil.ra + soil.rh
    return CoupledOutputs(
        gpp=surface.gpp, reco=reco, nee=reco - surface.gpp, ra=soil.ra, rh=soil.rh, et=surface.et,
        transpiration=surface.transpiration, soil_evaporation=surface.soil_evaporation,
        runoff=soil.runoff, drainage=soil.drainage,
        le=surface.le,
        soil_water_content=soil_state.soil_water_content, water_stress=surface.water_stress,
        lai=surface.lai, sif=surface.sif,
        snow_water_equivalent=surface_state.snow_water_equivalent,
        total_carbon=soil_state.carbon.total(),
        interception_evaporation=surface.interception_evaporation,
        canopy_water=surface_state.canopy_water,
        acclimation_factor=surface.acclimation_factor)


def step(state: CoupledState, forcing_t: CoupledForcing, params: CoupledParams, *,
         canopy=canopy_fluxes):
    """One time step ``(state, forcing_t, params) -> (state, outputs_t)`` (scalars per
    site; ``forcing_t`` fields are scalars, ``dt_seconds`` static).

    The step is the composition of a surface phase (:func:`surface_step`: steps 0-5 of
    the module docstring, given the soil water and leaf carbon at the start of the step)
    and a soil phase (:func:`soil_step`: Richards, soil temperature, carbon pools, given
    the surface input, the layer sinks, GPP and leaf respiration), joined by
    :func:`combine_outputs`; the two BMI components of :mod:`process_models.bmi.split`
    run the same two phases and exchange exactly these variables.

    ``canopy`` is the canopy-flux function, called as
    ``canopy(leaf_params, canopy_params, shortwave_in=..., cos_zenith=..., air_temperature=...,
    vpd=..., co2=..., air_pressure=..., wind_speed=..., lai=..., water_stress=...)`` and
    returning :class:`~process_models.coupled.canopy.CanopyFluxes`; default the two-big-leaf
    :func:`~process_models.coupled.canopy.canopy_fluxes`. A surrogate canopy (the hybrid
    emulator) is passed here; everything else in the step stays the process model's own.
    """
    dt = forcing_t.dt_seconds
    surface, soil = split_state(state)
    surface, sf = surface_step(surface, forcing_t, params, soil.soil_water_content,
                               soil.carbon.leaf, canopy=canopy)
    soil, so = soil_step(soil, forcing_t.air_temperature, params, sf.water_in, sf.sinks, sf.gpp,
                         sf.leaf_respiration, dt)
    return merge_state(surface, soil), combine_outputs(sf, so, surface, soil)


def initial_state(params: CoupledParams, forcing: CoupledForcing, *, npp=None,
                  theta=None) -> CoupledState:
    """Initial state: soil water at field capacity (psi = -33 kPa) in every layer, no
    snow, soil temperature = mean air temperature of the first day, and carbon pools at
    the analytic steady state (:func:`process_models.coupled.carbon.steady_state_pools`)
    for ``npp`` (g C m-2 yr-1; default: the NPP that sustains ``carbon.initial_lai``) with
    the mean decomposition scalar <f_T(T_air) f_W(field capacity)> of the forcing.
    """
    soil, carbon = params.soil, params.carbon
    dtype = jnp.result_type(soil.theta_sat)
    n = params.n_layers
    if theta is None:
        theta = jnp.broadcast_to(field_capacity(soil), (n,)).astype(dtype)
    t_air = jnp.asarray(forcing.air_temperature)
    per_day = max(1, int(round(86400.0 / forcing.dt_seconds)))
    t0 = jnp.mean(t_air[:per_day])
    rel = relative_water_topsoil(theta, params)
    env = jnp.mean(lloyd_taylor(t_air, carbon.e0)) * moisture_factor(rel)
    pools = steady_state_pools(carbon, npp, env)
    pools = jax.tree_util.tree_map(lambda x: jnp.asarray(x, dtype), pools)
    return CoupledState(soil_water_content=theta, snow_water_equivalent=jnp.zeros((), dtype),
                        soil_temperature=t0.astype(dtype), carbon=pools,
                        canopy_water=jnp.zeros((), dtype),
                        acclimation_temperature=t0.astype(dtype))


def complete_state(state: CoupledState) -> CoupledState:
    """Fill the optional state fields of older callers (``canopy_water`` None -> 0 mm,
    ``acclimation_temperature`` None -> ``soil_temperature``), so that ``lax.scan`` gets
    the same pytree structure in and out."""
    if state.canopy_water is None:
        state = state.replace(canopy_water=jnp.zeros_like(state.snow_water_equivalent))
    if state.acclimation_temperature is None:
        state = state.replace(acclimation_temperature=state.soil_temperature)
    return state


def check_forcing(forcing: CoupledForcing, source: str = "CoupledForcing"):
    """Raise :class:`DataValidationError` when the time-varying fields differ in length
    or a field has no time axis (checked at trace time: shapes are static)."""
    lengths = {}
    for name in ("air_temperature", "shortwave_in", "vpd", "precipitation", "air_pressure",
                 "co2", "wind_speed", "cos_zenith", "lai"):
        x = getattr(forcing, name)
        if x is None:
            continue
        shape = jnp.shape(x)
        if len(shape) == 0:
            raise DataValidationError("has no time axis (scalar).", source=source, variable=name,
                                      fix="broadcast it to the time axis (time-major arrays).")
        lengths[name] = shape[0]
    if len(set(lengths.values())) > 1:
        raise DataValidationError(
            f"time axes of different lengths: {lengths}.", source=source,
            variable=next(k for k, v in lengths.items() if v != lengths["air_temperature"]),
            fix="give every forcing field the same number of time steps.")
    if not forcing.dt_seconds > 0:
        raise DataValidationError(f"dt_seconds = {forcing.dt_seconds}.", source=source,
                                  variable="dt_seconds", fix="set a positive step length in s.")


def _steps_per_day(forcing):
    return max(1, int(round(86400.0 / forcing.dt_seconds)))


CHECKPOINT_POLICIES = {
    None: None,
    "everything_saveable": jax.checkpoint_policies.everything_saveable,
    "nothing_saveable": jax.checkpoint_policies.nothing_saveable,
    "dots_with_no_batch_dims_saveable": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
}
"""Names accepted by ``simulate(..., checkpoint_policy=)`` (``jax.checkpoint_policies``)."""


@partial(jax.jit, static_argnames=("checkpoint_every", "return_state", "checkpoint_policy",
                                   "unroll", "canopy"))
def simulate(params: CoupledParams, forcing: CoupledForcing, initial_state=None,
             checkpoint_every=None, return_state: bool = False, checkpoint_policy=None,
             unroll: int = 1, canopy=canopy_fluxes):
    """Run the model over the leading (time) axis of ``forcing`` with ``lax.scan``.

    Parameters
    ----------
    params : CoupledParams (one site/member; ``jax.vmap`` for ensembles).
    forcing : CoupledForcing, time-major arrays of length T.
    initial_state : CoupledState or None (None -> :func:`initial_state`).
    checkpoint_every : steps per ``jax.checkpoint`` chunk (static). None or 1 -> every
        step is its own checkpoint (the default: reverse mode keeps one state per step
        and recomputes each step's linearisation just before its transpose); k > 1 ->
        chunks of k steps (24 = one day hourly: one state per chunk plus one chunk of
        intermediates); 0 -> no checkpointing (every step's residuals stacked over T).
    return_state : also return the final state.
    checkpoint_policy : key of :data:`CHECKPOINT_POLICIES` (static): what ``jax.checkpoint``
        may keep of each chunk for reverse mode (None: JAX default, recompute everything).
    unroll : ``lax.scan`` unroll of the inner (per-step) scan (static).
    canopy : canopy-flux function passed to :func:`step` (static; default the
        two-big-leaf :func:`~process_models.coupled.canopy.canopy_fluxes`).

    Returns
    -------
    CoupledOutputs with time-major arrays (or ``(outputs, final_state)``).
    """
    check_forcing(forcing)
    state = _initial_state(params, forcing) if initial_state is None else initial_state
    state = complete_state(state)
    body = lambda s, x: step(s, x, params, canopy=canopy)
    n_steps = forcing.n_steps
    policy = CHECKPOINT_POLICIES[checkpoint_policy]
    per_step = checkpoint_every is None
    chunk = _steps_per_day(forcing) if per_step else int(checkpoint_every)
    if per_step:     # every step its own checkpoint; scanned in days as before (same forward)
        body = jax.checkpoint(body, policy=policy)
    if chunk <= 0 or chunk >= n_steps:
        state, out = jax.lax.scan(body, state, forcing)
    else:
        n_chunks = n_steps // chunk
        main = jax.tree_util.tree_map(
            lambda x: x[:n_chunks * chunk].reshape((n_chunks, chunk) + x.shape[1:]), forcing)
        rest = jax.tree_util.tree_map(lambda x: x[n_chunks * chunk:], forcing)

        def chunk_body(s, xs):
            return jax.lax.scan(body, s, xs, unroll=unroll)
        if not per_step:
            chunk_body = jax.checkpoint(chunk_body, policy=policy)

        state, out = jax.lax.scan(chunk_body, state, main)
        out = jax.tree_util.tree_map(lambda x: x.reshape((n_chunks * chunk,) + x.shape[2:]), out)
        if n_steps > n_chunks * chunk:
            state, out_rest = jax.lax.scan(body, state, rest)
            out = jax.tree_util.tree_map(lambda a, b: jnp.concatenate([a, b]), out, out_rest)
    return (out, state) if return_state else out


_initial_state = initial_state
