"""Baseline gap fillers on a daily grid, behind the same interface as the Kalman fusion.

Each function takes one pixel's daily series ``y`` (T,) with its validity ``mask`` (T,)
and returns a :class:`Baseline` (mean, sd of the filled value, sd of the observation
noise; NaN where the method has none). Several sensors are first merged into one series
by :func:`merge_sensors` (same-day mean), which is what a user of these methods does:
they know nothing of sensor biases.

* :func:`linear` -- linear interpolation between the nearest valid days, constant beyond
  the ends (the "linear" gap filling of the Orfeo ToolBox / iota2 processing chains;
  Inglada et al. 2017, Remote Sens. 9, 95).
* :func:`whittaker` -- Whittaker smoother (Eilers 2003, Anal. Chem. 75, 3631), order 2:
  minimise ``sum_i w_i (y_i - z_i)^2 + lambda sum_t (Delta^2 z_t)^2``, computed in O(T) as
  the RTS smoother of the integrated random walk (second differences ~ N(0, sigma^2 /
  lambda), diffuse start, observation variance sigma^2 / w_i), which has exactly this
  posterior mean (Wahba 1978, JRSS-B 40, 364). lambda by generalised cross-validation
  (Craven & Wahba 1979) ``GCV = n RSS / (n - tr H)^2`` with ``H_ii = Var_post(z_i) w_i /
  sigma^2`` from the same smoother. Its sd is the Bayesian posterior sd with
  ``sigma^2 = RSS / (n - tr H)``.
* :func:`savgol` -- Savitzky-Golay on the linearly pre-filled daily series (scipy's
  coefficients; edges padded with the end values).
* :func:`pyvprm` -- pyVPRM 6.0.1 ``do_kalman_smoothing``: scalar random walk on the daily
  grid, ``transition_covariance Q = 0.01``, ``observation_covariance R = 0.05``, initial mean
  the first valid daily value, initial variance 1 (pykalman ``KalmanFilter.smooth``);
  same-day observations averaged. A special case of :mod:`.kalman`.
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import scipy.signal

from .kalman import StateSpace, rts_smoother

__all__ = ["Baseline", "merge_sensors", "linear", "whittaker", "whittaker_gcv", "savgol", "pyvprm",
           "WHITTAKER_LAMBDAS"]

WHITTAKER_LAMBDAS = tuple(float(v) for v in 10.0 ** np.arange(-1.0, 7.01, 0.25))
"""Default lambda grid for GCV (daily grid; 1e-1 ... 1e7)."""


class Baseline(NamedTuple):
    mean: jax.Array
    """Filled daily value, (T,), unit of the input."""
    sd: jax.Array
    """Sd of the filled value (NaN when the method gives none), (T,)."""
    noise_sd: jax.Array
    """Sd of one observation about the filled value (NaN when none), scalar."""


def merge_sensors(y, mask):
    """(T, S) -> (T,) same-day mean of the valid sensors, and its (T,) mask."""
    y = jnp.asarray(y)
    mask = jnp.asarray(mask, bool)
    n = jnp.sum(mask, axis=-1)
    s = jnp.sum(jnp.where(mask, y, 0.0), axis=-1)
    return jnp.where(n > 0, s / jnp.maximum(n, 1).astype(s.dtype), 0.0), n > 0


def linear(y, mask) -> Baseline:
    """Linear interpolation in time between valid days; held constant past the ends."""
    T = y.shape[0]
    t = jnp.arange(T, dtype=jnp.result_type(float))
    key = jnp.where(mask, t, jnp.inf)
    order = jnp.argsort(key)
    ts, vs = key[order], jnp.where(mask, y, 0.0)[order]
    n = jnp.sum(mask)
    last = jnp.maximum(n - 1, 0)
    ts = jnp.where(jnp.arange(T) < n, ts, ts[last])               # pad with the last valid day
    vs = jnp.where(jnp.arange(T) < n, vs, vs[last])
    mean = jnp.interp(t, ts, vs)
    nan = jnp.full_like(mean, jnp.nan)
    return Baseline(jnp.where(n > 0, mean, jnp.nan), nan, jnp.asarray(jnp.nan, mean.dtype))


def _irw_model(T, y_scale, lam, mask, weights, diffuse):
    r = y_scale**2 / jnp.where(mask, weights, 1.0)
    dt = y_scale.dtype
    return StateSpace(transition=jnp.array([[1.0, 1.0], [0.0, 1.0]], dt),
                      process_cov=jnp.diag(jnp.stack([jnp.zeros((), dt), y_scale**2 / lam])),
                      observation=jnp.array([[1.0, 0.0]], dt), offset=jnp.zeros((T, 1), dt),
                      obs_var=r[:, None], initial_mean=jnp.zeros(2, dt),
                      initial_cov=jnp.eye(2, dtype=dt) * diffuse * y_scale**2)


def whittaker(y, mask, lam, weights=None, diffuse: float = 1e8):
    """Order-2 Whittaker smoother for one lambda; returns (Baseline, gcv, tr H).

    ``diffuse``: prior variance of the initial level and slope in units of the data
    variance (the exact smoother is the limit ``diffuse -> inf``; 1e8 agrees with the
    dense solve to ~1e-7 in float64; use ~1e4 in float32)."""
    y = jnp.asarray(y)
    dt = jnp.result_type(y.dtype, float)
    y = y.astype(dt)
    T = y.shape[0]
    mask = jnp.asarray(mask, bool)
    w = jnp.ones(T, dt) if weights is None else jnp.asarray(weights, dt)
    lam = jnp.asarray(lam, dt)
    n = jnp.sum(mask).astype(dt)
    mu = jnp.sum(jnp.where(mask, y, 0.0)) / jnp.maximum(n, 1)
    sc = jnp.sqrt(jnp.sum(jnp.where(mask, (y - mu) ** 2, 0.0)) / jnp.maximum(n, 1))
    sc = jnp.where(sc > 0, sc, 1.0)
    model = _irw_model(T, sc, lam, mask, w, diffuse)
    res = rts_smoother(model, (y - mu)[:, None], mask[:, None])
    z = res.smoothed_mean[:, 0] + mu
    var = res.smoothed_cov[:, 0, 0]
    trH = jnp.sum(jnp.where(mask, var * w / sc**2, 0.0))
    rss = jnp.sum(jnp.where(mask, w * (y - z) ** 2, 0.0))
    dof = jnp.maximum(n - trH, 1e-9)
    gcv = n * rss / dof**2
    sigma2 = rss / dof
    sd = jnp.sqrt(jnp.maximum(var, 0.0) * sigma2 / sc**2)
    return Baseline(z, sd, jnp.sqrt(sigma2)), gcv, trH


def whittaker_gcv(y, mask, lambdas=WHITTAKER_LAMBDAS, weights=None, diffuse: float = 1e8):
    """Whittaker smoother with lambda minimising GCV over ``lambdas`` (vmapped);
    returns (Baseline, chosen lambda, GCV curve)."""
    lams = jnp.asarray(lambdas)
    fits, gcv, _ = jax.vmap(lambda l: whittaker(y, mask, l, weights, diffuse))(lams)
    gcv = jnp.where(jnp.isfinite(gcv), gcv, jnp.inf)
    k = jnp.argmin(gcv)
    best = jax.tree.map(lambda a: a[k], fits)
    return best, lams[k], gcv


def savgol(y, mask, window_days: int = 31, polyorder: int = 2) -> Baseline:
    """Savitzky-Golay (Savitzky & Golay 1964, Anal. Chem. 36, 1627) of the linearly
    pre-filled daily series; window in days (odd)."""
    if window_days % 2 == 0 or window_days <= polyorder:
        raise ValueError("window_days must be odd and larger than polyorder")
    base = linear(y, mask).mean
    coeffs = jnp.asarray(scipy.signal.savgol_coeffs(window_days, polyorder), base.dtype)
    h = window_days // 2
    padded = jnp.concatenate([jnp.full(h, base[0]), base, jnp.full(h, base[-1])])
    mean = jnp.convolve(padded, coeffs[::-1], mode="valid")
    nan = jnp.full_like(mean, jnp.nan)
    return Baseline(mean, nan, jnp.asarray(jnp.nan, mean.dtype))


def pyvprm(y, mask, transition_covariance: float = 0.01, observation_covariance: float = 0.05) -> Baseline:
    """pyVPRM's random-walk Kalman smoother (``pyVPRM.lib.functions.do_kalman_smoothing``)."""
    T = y.shape[0]
    mask = jnp.asarray(mask, bool)
    dt = jnp.result_type(float)
    first = jnp.argmax(mask)
    y0 = jnp.where(jnp.any(mask), y[first], 0.0)
    model = StateSpace(transition=jnp.ones((1, 1), dt), process_cov=jnp.full((1, 1), transition_covariance, dt),
                       observation=jnp.ones((1, 1), dt), offset=jnp.zeros((T, 1), dt),
                       obs_var=jnp.full((1,), observation_covariance, dt), initial_mean=jnp.reshape(y0, (1,)).astype(dt),
                       initial_cov=jnp.ones((1, 1), dt))
    res = rts_smoother(model, y[:, None], mask[:, None])
    ok = jnp.any(mask)
    return Baseline(jnp.where(ok, res.smoothed_mean[:, 0], jnp.nan),
                    jnp.where(ok, jnp.sqrt(res.smoothed_cov[:, 0, 0]), jnp.nan),
                    jnp.sqrt(jnp.asarray(observation_covariance, dt)))
