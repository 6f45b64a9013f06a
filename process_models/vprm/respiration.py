"""Ecosystem respiration models of VPRM.

* Linear model, Mahadevan et al. (2008) eq. 5: Reco = alpha * max(T, Tlow) + beta, and
  pyVPRM's per-class floor max(f_c * Reco_c, 0).
* Gourdji et al. (2022), JGR Biogeosciences 127, e2021JG006290,
  doi:10.1029/2021JG006290, in the form implemented by pyVPRM (``vprm_modified_model``)
  and emiproc: a quadratic temperature response with damped cold temperatures, a
  greenness (EVI) term for foliage-dependent respiration and water-index terms.

Temperatures in degC, fluxes in umol m-2 s-1.
"""
from __future__ import annotations

import jax.numpy as jnp

from .._switches import safe_div, softplus_w


def respiration_temperature(t, floor, w=None):
    """Temperature used for respiration: max(T, floor) (floor = Tlow, or Tmin in
    pyVPRM's site path). Smooth: floor + softplus_w(T - floor)."""
    if w is None:
        return jnp.maximum(t, floor)
    return floor + softplus_w(t - floor, w["temperature"])


def reco_linear(t_resp, alpha, beta):
    """Mahadevan 2008 eq. 5 before the non-negativity floor: alpha * T + beta."""
    return alpha * t_resp + beta


def damped_temperature(t, tcrit, tmult, w=None):
    """Gourdji 2022 T': T for T >= Tcrit, else Tcrit - Tmult (Tcrit - T).

    Written as T' = T - (1 - Tmult) * min(T - Tcrit, 0); smooth: min -> -softplus."""
    if w is None:
        below = jnp.minimum(t - tcrit, 0.0)
    else:
        below = -softplus_w(tcrit - t, w["temperature"])
    return t - (1.0 - tmult) * below


def reco_gourdji(t, evi, lswi, lswi_min, lswi_max, g, w=None):
    """Gourdji et al. (2022) respiration (before the non-negativity floor).

    Reco = beta + a1 T' + a2 T'^2 + gamma EVI + th1 W + th2 W T' + th3 W T'^2 with
    W = (LSWI - LSWImin)/(LSWImax - LSWImin) (denominator floored at 0.01 as in
    pyVPRM's ``get_w_scale``).
    """
    tp = damped_temperature(t, g.tcrit, g.tmult, w)
    diff = lswi_max - lswi_min
    diff = jnp.maximum(diff, 0.01) if w is None else 0.01 + softplus_w(diff - 0.01, w["index"])
    wsc = safe_div(lswi - lswi_min, diff)
    return (g.beta + g.a1 * tp + g.a2 * tp ** 2 + g.gamma * evi
            + g.th1 * wsc + g.th2 * wsc * tp + g.th3 * wsc * tp ** 2)


def nonnegative(x, w=None):
    """The Reco >= 0 floor: max(x, 0), smooth softplus."""
    if w is None:
        return jnp.maximum(x, 0.0)
    return softplus_w(x, w["flux"])


__all__ = ["respiration_temperature", "reco_linear", "damped_temperature", "reco_gourdji",
           "nonnegative"]
