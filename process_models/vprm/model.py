"""VPRM: the Vegetation Photosynthesis and Respiration Model, in JAX.

Mahadevan, P. et al. (2008) A satellite-based biosphere parameterization for net
ecosystem CO2 exchange: Vegetation Photosynthesis and Respiration Model (VPRM).
Global Biogeochem. Cycles 22, GB2005, doi:10.1029/2006GB002735; operational rules of
pyVPRM 6.0.1 (Glauch, T. et al. 2025, GMD 18, 4713-4742, doi:10.5194/gmd-18-4713-2025).

For a pixel with land-cover fractions f_c (class axis last):

    GPP  = sum_c f_c * lam_c * Tscale_c * Wscale_c * Pscale_c * EVI * PAR / (1 + PAR/PAR0_c)
    Reco = sum_c max(f_c * (alpha_c * max(T, Tlow_c) + beta_c), 0)
    NEE  = Reco - GPP            (umol m-2 s-1; positive = source to the atmosphere)

VPRM has no state: :func:`simulate` evaluates every time step and pixel at once and is
pure, jit-able, vmap-able and differentiable (``mode="smooth"`` everywhere,
``mode="exact"`` almost everywhere). :func:`step` gives the stateful interface
``step(state, forcing_t, params) -> (state, outputs_t)`` that ensemble filters use.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp

from . import respiration as resp
from .params import VPRMForcing, VPRMOptions, VPRMOutputs, VPRMParams
from .scalars import light_response, pscale, tscale, wscale_lswi, wscale_soil_moisture

# Base widths of the smooth switches (divided by VPRMOptions.sharpness).
BASE_WIDTHS = {"temperature": 1.0, "index": 0.02, "flux": 0.05}
"""temperature: degC; index: 1 (EVI, LSWI, scalars); flux: umol m-2 s-1."""


def _widths(options: VPRMOptions):
    if options.mode == "exact":
        return None
    return {k: v / options.sharpness for k, v in BASE_WIDTHS.items()}


def class_fluxes(params: VPRMParams, forcing: VPRMForcing, options: VPRMOptions = VPRMOptions()):
    """Per-class GPP and Reco before land-cover weighting, shape ``S + (C,)``.

    Returns ``(gpp_c, reco_c)`` where ``reco_c`` is *before* the non-negativity floor
    (pyVPRM applies the floor after multiplying by the class fraction).
    """
    w = _widths(options)
    clip = not options.pyvprm_compat
    ex = lambda a: jnp.asarray(a)[..., None]   # add the class axis to a forcing field
    t = ex(forcing.temperature)
    par = ex(forcing.par)
    evi = ex(forcing.evi)
    lswi = ex(forcing.lswi)
    lswi_min, lswi_max = ex(forcing.lswi_min), ex(forcing.lswi_max)
    p, r = params, params.rules

    ts = tscale(t, p.tmin, p.topt, p.tmax, w, zero_above_tmax=clip)
    if options.water_stress in ("lswi", "lswi_soil_moisture"):
        ws = wscale_lswi(lswi, lswi_min, lswi_max, r.xeric, clip=clip, w=w)
    else:
        ws = 1.0
    if options.water_stress in ("soil_moisture", "lswi_soil_moisture"):
        if forcing.soil_water_content is None or p.theta_wilt is None:
            raise ValueError("water_stress uses soil moisture: give forcing.soil_water_content "
                             "(m3 m-3) and params.theta_wilt / theta_crit.")
        ws = ws * wscale_soil_moisture(ex(forcing.soil_water_content), p.theta_wilt,
                                       p.theta_crit, w)
    if options.light == "evi":
        ps = pscale(evi, lswi, ex(forcing.evi_threshold), r.pscale_always_one,
                    r.pscale_always_lswi, clip=clip, w=w)
        green = evi
        if clip:   # GPP >= 0: a negative greenness index gives no uptake
            green = jnp.maximum(evi, 0.0) if w is None else resp.softplus_w(evi, w["index"])
        absorbed = ps * green
    else:
        if forcing.fapar is None:
            raise ValueError("light='fapar' needs forcing.fapar (fraction of absorbed PAR, 1).")
        absorbed = ex(forcing.fapar)
    gpp_c = p.lam * ts * ws * absorbed * light_response(par, p.par0)
    gpp_c = gpp_c * r.has_flux

    if options.respiration == "linear":
        floor = p.tlow if options.respiration_temperature_floor == "tlow" else p.tmin
        reco_c = resp.reco_linear(resp.respiration_temperature(t, floor, w), p.alpha, p.beta)
    else:
        if p.gourdji is None:
            raise ValueError("respiration='gourdji' needs params.gourdji (GourdjiParams).")
        reco_c = resp.reco_gourdji(t, evi, lswi, lswi_min, lswi_max, p.gourdji, w)
    reco_c = reco_c * r.has_flux
    return gpp_c, reco_c


def simulate(params: VPRMParams, forcing: VPRMForcing,
             options: VPRMOptions = VPRMOptions()) -> VPRMOutputs:
    """Run VPRM on forcing of any leading shape ``S`` (time, pixels, members, ...).

    Parameters
    ----------
    params : VPRMParams with per-class arrays of shape (C,) (or broadcastable
        ``S + (C,)`` for per-pixel or per-member parameters).
    forcing : VPRMForcing; temperature degC, par umol m-2 s-1, indices 1,
        class_fractions ``S' + (C,)``.
    options : VPRMOptions (static).

    Returns
    -------
    VPRMOutputs with gpp, reco, nee of shape ``S`` in umol m-2 s-1.
    """
    w = _widths(options)
    gpp_c, reco_c = class_fluxes(params, forcing, options)
    f = jnp.asarray(forcing.class_fractions)
    gpp = jnp.sum(f * gpp_c, axis=-1)
    reco = jnp.sum(resp.nonnegative(f * reco_c, w), axis=-1)
    return VPRMOutputs(gpp=gpp, reco=reco, nee=reco - gpp)


simulate_jit = jax.jit(simulate, static_argnames=("options",))
"""Jitted :func:`simulate` (``options`` is static)."""


def initial_state(params: VPRMParams, forcing: VPRMForcing):
    """VPRM is stateless: the state is an empty tuple (common model interface)."""
    return ()


def step(state, forcing_t: VPRMForcing, params: VPRMParams,
         options: VPRMOptions = VPRMOptions()):
    """One time step in the common ``step(state, forcing_t, params)`` shape."""
    return state, simulate(params, forcing_t, options)


@partial(jax.jit, static_argnames=("options",))
def simulate_scan(params: VPRMParams, forcing: VPRMForcing,
                  options: VPRMOptions = VPRMOptions()) -> VPRMOutputs:
    """:func:`simulate` as a ``lax.scan`` of :func:`step` over the leading (time) axis.

    Same result as :func:`simulate`. Fields without the time axis (per-pixel statistics,
    class fractions) are broadcast to it first.
    """
    shape = jnp.shape(forcing.temperature)

    def full(name, x):
        if x is None:
            return None
        if name == "class_fractions":
            return jnp.broadcast_to(x, shape + jnp.shape(x)[-1:])
        return jnp.broadcast_to(x, shape)

    forcing = forcing.replace(**{k: full(k, getattr(forcing, k))
                                 for k in forcing.__dataclass_fields__})
    _, out = jax.lax.scan(lambda s, f: step(s, f, params, options), (), forcing)
    return out
