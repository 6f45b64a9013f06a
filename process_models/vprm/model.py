"""VPRM: the Vegetation Photosynthesis and Respiration Model, in JAX.

Mahadevan, P. et al. (2008) A satellite-based biosphere parameterization for net
ecosystem CO2 exchange: Vegetation Photosynthesis and Respiration Model (VPRM).
Global Biogeochem. Cycles 22, GB2005, doi:10.1029/2006GB002735; operational rules of
pyVPRM 6.0.1 (Glauch, T. et al. 2025, GMD 18, 4713-4742, doi:10.5194/gmd-18-4713-2025).

For a pixel with land-cover fractions f_c (class axis last):

    GPP  = sum_c f_c * lam_c * Tscale_c * Wscale_c * Pscale_c * EVI * PAR / (1 + PAR/PAR0_c)
    Reco = sum_c max(f_c * (alpha_c * max(T, Tlow_c) + beta_c), 0)
         = sum_c f_c * max(alpha_c * max(T, Tlow_c) + beta_c, 0)      (f_c >= 0)
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
from .._switches import safe_div, softplus_w
from .scalars import (light_response, pscale_forms, tscale, wscale_forms,
                      wscale_soil_moisture)

# Base widths of the smooth switches (divided by VPRMOptions.sharpness).
BASE_WIDTHS = {"temperature": 1.0, "index": 0.02, "flux": 0.05}
"""temperature: degC; index: 1 (EVI, LSWI, scalars); flux: umol m-2 s-1."""


def _widths(options: VPRMOptions):
    if options.mode == "exact":
        return None
    return {k: v / options.sharpness for k, v in BASE_WIDTHS.items()}


def _hoisted(params: VPRMParams, forcing: VPRMForcing, options: VPRMOptions, w):
    """Terms that do not depend on the vegetation class, computed once per pixel and
    time step (shape ``S``); the class loop only selects and scales them."""
    clip = not options.pyvprm_compat
    h = {"t": jnp.asarray(forcing.temperature), "par": jnp.asarray(forcing.par),
         "evi": jnp.asarray(forcing.evi), "lswi": jnp.asarray(forcing.lswi),
         "lswi_min": jnp.asarray(forcing.lswi_min), "lswi_max": jnp.asarray(forcing.lswi_max),
         "inv_par0": safe_div(1.0, params.par0)}
    if options.water_stress in ("lswi", "lswi_soil_moisture"):
        h["ws_mesic"], h["ws_xeric"] = wscale_forms(h["lswi"], h["lswi_min"], h["lswi_max"],
                                                    clip=clip, w=w)
    if options.water_stress in ("soil_moisture", "lswi_soil_moisture"):
        if forcing.soil_water_content is None or params.theta_wilt is None:
            raise ValueError("water_stress uses soil moisture: give forcing.soil_water_content "
                             "(m3 m-3) and params.theta_wilt / theta_crit.")
        h["theta"] = jnp.asarray(forcing.soil_water_content)
    if options.light == "evi":
        h["leaf"], h["ps_threshold"] = pscale_forms(h["evi"], h["lswi"],
                                                    jnp.asarray(forcing.evi_threshold),
                                                    clip=clip, w=w)
        green = h["evi"]
        if clip:   # GPP >= 0: a negative greenness index gives no uptake
            green = jnp.maximum(green, 0.0) if w is None else softplus_w(green, w["index"])
        h["green"] = green
    else:
        if forcing.fapar is None:
            raise ValueError("light='fapar' needs forcing.fapar (fraction of absorbed PAR, 1).")
        h["fapar"] = jnp.asarray(forcing.fapar)
    return h


def _class_flux(params: VPRMParams, h: dict, c: int, options: VPRMOptions, w):
    """GPP and Reco (before the non-negativity floor) of class number ``c`` (index on
    the class axis), shape ``S``."""
    p, r = params, params.rules
    k = lambda a: a[..., c]
    clip = not options.pyvprm_compat
    if w is None and clip:
        # exact default mode: Tscale * PAR/(1 + PAR/PAR0) with one division. Inside
        # [Tmin, Tmax] the Tscale denominator is < 0 (strictly), outside Tscale = 0, so
        # the guarded denominator keeps values and gradients finite.
        t = h["t"]
        num = (t - k(p.tmin)) * (t - k(p.tmax))
        den = num - (t - k(p.topt)) ** 2
        inside = (t >= k(p.tmin)) & (t <= k(p.tmax))
        light_ts = jnp.where(inside, num * h["par"] / (jnp.where(inside, den, -1.0)
                                                        * (1.0 + h["par"] * k(h["inv_par0"]))), 0.0)
    else:
        light_ts = (tscale(h["t"], k(p.tmin), k(p.topt), k(p.tmax), w, zero_above_tmax=clip)
                    * light_response(h["par"], inv_par0=k(h["inv_par0"])))
    ws = 1.0
    if "ws_mesic" in h:
        ws = jnp.where(k(r.xeric) > 0.5, h["ws_xeric"], h["ws_mesic"])
    if "theta" in h:
        ws = ws * wscale_soil_moisture(h["theta"], k(p.theta_wilt), k(p.theta_crit), w)
    if options.light == "evi":
        ps = jnp.where(k(r.pscale_always_one) > 0.5, 1.0,
                       jnp.where(k(r.pscale_always_lswi) > 0.5, h["leaf"], h["ps_threshold"]))
        absorbed = ps * h["green"]
    else:
        absorbed = h["fapar"]
    gpp = k(p.lam) * ws * absorbed * light_ts
    if options.respiration == "linear":
        floor = k(p.tlow) if options.respiration_temperature_floor == "tlow" else k(p.tmin)
        reco = resp.reco_linear(resp.respiration_temperature(h["t"], floor, w), k(p.alpha),
                                k(p.beta))
    else:
        if p.gourdji is None:
            raise ValueError("respiration='gourdji' needs params.gourdji (GourdjiParams).")
        g = jax.tree_util.tree_map(k, p.gourdji)
        reco = resp.reco_gourdji(h["t"], h["evi"], h["lswi"], h["lswi_min"], h["lswi_max"], g, w)
    on = k(r.has_flux)
    return gpp * on, reco * on


def class_fluxes(params: VPRMParams, forcing: VPRMForcing, options: VPRMOptions = VPRMOptions()):
    """Per-class GPP and Reco before land-cover weighting, shape ``S + (C,)`` (for
    diagnostics; :func:`simulate` never forms these arrays).

    Returns ``(gpp_c, reco_c)`` where ``reco_c`` is *before* the non-negativity floor
    (pyVPRM applies the floor after multiplying by the class fraction).
    """
    w = _widths(options)
    h = _hoisted(params, forcing, options, w)
    per_class = [_class_flux(params, h, c, options, w) for c in range(params.n_classes)]
    return (jnp.stack([g for g, _ in per_class], axis=-1),
            jnp.stack([r for _, r in per_class], axis=-1))


def simulate(params: VPRMParams, forcing: VPRMForcing,
             options: VPRMOptions = VPRMOptions(), *,
             fractions_class_first: bool = False) -> VPRMOutputs:
    """Run VPRM on forcing of any leading shape ``S`` (time, pixels, members, ...).

    Parameters
    ----------
    params : VPRMParams with per-class arrays of shape (C,) (or broadcastable
        ``S + (C,)`` for per-pixel or per-member parameters).
    forcing : VPRMForcing; temperature degC, par umol m-2 s-1, indices 1,
        class_fractions ``S' + (C,)``.
    options : VPRMOptions (static).
    fractions_class_first : bool
        True if ``forcing.class_fractions`` is laid out ``(C,) + S'`` (contiguous rows
        per class, as :data:`simulate_jit` passes them).

    Returns
    -------
    VPRMOutputs with gpp, reco, nee of shape ``S`` in umol m-2 s-1.

    Notes
    -----
    The (small, static) class axis is a Python loop unrolled at trace time that
    accumulates into arrays of shape ``S``: no ``S + (C,)`` intermediates, so XLA fuses
    the whole model into one pass over the forcing (measured 6-15x faster on CPU than
    a class-axis formulation; ``experiments/benchmarks/RESULTS.md``). Class-independent
    terms (both Wscale forms, leaf development, the EVI clamp, 1/PAR0) are computed once.
    """
    w = _widths(options)
    h = _hoisted(params, forcing, options, w)
    f = jnp.asarray(forcing.class_fractions)
    gpp = reco = 0.0
    for c in range(params.n_classes):
        gpp_c, reco_c = _class_flux(params, h, c, options, w)
        fc = f[c] if fractions_class_first else f[..., c]
        gpp = gpp + fc * gpp_c
        reco = reco + fc * resp.nonnegative(reco_c, w)   # = max(f Reco_c, 0) for f >= 0
    frac_shape = jnp.shape(f)[1:] if fractions_class_first else jnp.shape(f)[:-1]
    shape = jnp.broadcast_shapes(jnp.shape(h["t"]), frac_shape)
    gpp, reco = jnp.broadcast_to(gpp, shape), jnp.broadcast_to(reco, shape)
    return VPRMOutputs(gpp=gpp, reco=reco, nee=reco - gpp)


_simulate_jitted = jax.jit(simulate, static_argnames=("options", "fractions_class_first"))


@jax.jit
def _class_first(fractions):
    return jnp.moveaxis(fractions, -1, 0)


def simulate_jit(params: VPRMParams, forcing: VPRMForcing,
                 options: VPRMOptions = VPRMOptions()) -> VPRMOutputs:
    """Jitted :func:`simulate` (``options`` static). The class fractions are first laid
    out class-first in a separate small call: read per class inside the fused kernel,
    ``(..., C)`` fractions are a stride-C gather that does not vectorise (measured 2-3x
    slower); inside one jit XLA folds the transpose back into the loop."""
    f = _class_first(jnp.asarray(forcing.class_fractions))
    return _simulate_jitted(params, forcing.replace(class_fractions=f), options,
                            fractions_class_first=True)


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
