"""The VPRM scalars Tscale, Wscale and Pscale, in exact and smooth form.

Equations: Mahadevan et al. (2008), Global Biogeochem. Cycles 22, GB2005,
doi:10.1029/2006GB002735, eqs. 2-4, with the operational rules of pyVPRM 6.0.1
(Glauch et al. 2025, GMD 18:4713; ``vprm_models/vprm_base_model.py``) and WRF-Chem
(``chem/module_ghg_fluxes.F``). Temperatures in degC; indices dimensionless.

Each function takes arrays that broadcast against each other (the class axis last) and
a ``w`` argument: ``None`` for the hard (exact) switches, or a dict of widths for the
smooth twins (see :mod:`process_models._switches`).
"""
from __future__ import annotations

import jax.numpy as jnp

from .._switches import safe_div, soft_clip01, softplus_w, step_w


def tscale(t, tmin, topt, tmax, w=None, *, zero_above_tmax=True):
    """Temperature scalar (Raich et al. 1991 TEM form; Mahadevan 2008 eq. 2).

    Tscale = (T - Tmin)(T - Tmax) / [(T - Tmin)(T - Tmax) - (T - Topt)^2],
    set to 0 where the ratio is negative or T < Tmin (pyVPRM). Tscale(Topt) = 1 and
    0 <= Tscale <= 1 on [Tmin, Tmax]. Above Tmax the ratio is negative only up to the
    root of the denominator (T* = (Topt^2 - Tmin Tmax)/(2 Topt - Tmin - Tmax), e.g.
    54 degC for pyVPRM's wetland constants, 101 degC for deciduous), beyond which
    pyVPRM's formula gives Tscale > 1 (and a division by zero at T*). With
    ``zero_above_tmax=True`` (default; WRF-Chem's rule) Tscale = 0 for T > Tmax;
    ``False`` reproduces pyVPRM. The division is guarded so values and gradients stay
    finite.

    Parameters
    ----------
    t : air temperature, degC.  tmin, topt, tmax : degC.
    w : None (exact) or dict with key ``"temperature"`` (degC) and ``"index"`` (1).
    """
    num = (t - tmin) * (t - tmax)
    ratio = safe_div(num, num - (t - topt) ** 2)
    if w is None:
        off = (ratio < 0) | (t < tmin)
        if zero_above_tmax:
            off = off | (t > tmax)
        return jnp.where(off, 0.0, ratio)
    gate = step_w(t - tmin, w["temperature"])
    if zero_above_tmax:
        gate = gate * step_w(tmax - t, w["temperature"])
    return softplus_w(ratio, w["index"]) * gate


def wscale_lswi(lswi, lswi_min, lswi_max, xeric, *, clip=True, w=None):
    """Water scalar from LSWI (Mahadevan 2008 eq. 3; xeric form of WRF-Chem/pyVPRM).

    mesic:  Wscale = (1 + LSWI) / (1 + LSWImax)
    xeric (shrubland, grassland): Wscale = (LSWI - LSWImin) / (LSWImax - LSWImin)

    pyVPRM 6.0.1 (``vprm_base_model``) and WRF-Chem (``module_ghg_fluxes.F``) clip
    neither, so xeric Wscale < 0 when LSWI < LSWImin; with ``clip=True`` both are
    limited to [0, 1].
    ``xeric`` is a 0/1 mask per class.
    """
    mesic, xer = wscale_forms(lswi, lswi_min, lswi_max, clip=clip, w=w)
    return jnp.where(xeric > 0.5, xer, mesic)


def wscale_forms(lswi, lswi_min, lswi_max, *, clip=True, w=None):
    """Both Wscale forms ``(mesic, xeric)`` (see :func:`wscale_lswi`), computed once per
    pixel and time so that a class loop only selects between them."""
    mesic = safe_div(1.0 + lswi, 1.0 + lswi_max)
    xer = safe_div(lswi - lswi_min, lswi_max - lswi_min)
    if not clip:
        return mesic, xer
    if w is None:
        return jnp.clip(mesic, 0.0, 1.0), jnp.clip(xer, 0.0, 1.0)
    return soft_clip01(mesic, w["index"]), soft_clip01(xer, w["index"])


def wscale_soil_moisture(theta, theta_wilt, theta_crit, w=None):
    """Soil-moisture water-stress scalar (enhanced VPRM; linear beta function of
    Granier et al. 1999 / CLM-style):

    Wscale_sm = clip((theta - theta_wilt) / (theta_crit - theta_wilt), 0, 1),
    theta in m3 m-3.
    """
    x = safe_div(theta - theta_wilt, theta_crit - theta_wilt)
    if w is None:
        return jnp.clip(x, 0.0, 1.0)
    return soft_clip01(x, w["index"])


def pscale(evi, lswi, evi_threshold, always_one, always_lswi, *, clip=True, w=None):
    """Phenology scalar (Mahadevan 2008 eq. 4, operational pyVPRM/WRF form).

    Pscale = 1 if EVI > threshold (leaf-on, after full expansion), else (1 + LSWI)/2;
    always 1 for evergreen classes; always (1 + LSWI)/2 for savanna and grassland.
    The threshold is EVImin + 0.55 (EVImax - EVImin) per pixel. pyVPRM compares with a
    strict ``>`` (WRF with ``>=``); the smooth form is a logistic blend.
    """
    leaf_dev, ps_threshold = pscale_forms(evi, lswi, evi_threshold, clip=clip, w=w)
    return jnp.where(always_one > 0.5, 1.0, jnp.where(always_lswi > 0.5, leaf_dev, ps_threshold))


def pscale_forms(evi, lswi, evi_threshold, *, clip=True, w=None):
    """``(leaf development (1 + LSWI)/2, threshold-rule Pscale)`` of :func:`pscale`,
    computed once per pixel and time for a class loop."""
    leaf_dev = (1.0 + lswi) / 2.0
    if clip:
        leaf_dev = jnp.clip(leaf_dev, 0.0, 1.0) if w is None else soft_clip01(leaf_dev, w["index"])
    if w is None:
        above = jnp.where(evi > evi_threshold, 1.0, 0.0)
    else:
        above = step_w(evi - evi_threshold, w["index"])
    return leaf_dev, above + (1.0 - above) * leaf_dev


def light_response(par, par0=None, *, inv_par0=None):
    """Rectangular-hyperbola light term PAR / (1 + PAR/PAR0) (Mahadevan 2008 eq. 1);
    PAR and PAR0 in umol m-2 s-1. ``inv_par0`` (1/PAR0, precomputed per class) saves a
    division per pixel and time."""
    if inv_par0 is None:
        inv_par0 = safe_div(1.0, par0)
    return par / (1.0 + par * inv_par0)
