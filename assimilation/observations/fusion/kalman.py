"""Linear-Gaussian Kalman filter, Rauch-Tung-Striebel smoother and log-likelihood on a
daily grid with several sensors and missing observations.

State-space model (one pixel; ``T`` days, state dimension ``d``, ``S`` sensors)::

    z_0 ~ N(m0, P0)
    z_t = F z_{t-1} + w_t,            w_t ~ N(0, Q)                  (t >= 1)
    y_{t,s} = c_{t,s} + H_s z_t + v,  v ~ N(0, r_{t,s})              (if mask[t, s])

``c`` carries the sensor bias and (for a climatological prior) the gain times the
climatology: see :mod:`.sensors`. Missing observations (``mask == False``) are handled
exactly by skipping their update: the sensors of one day are assimilated one after the
other as scalar observations (exact for independent sensor errors, no matrix
factorisation), and days without any observation are pure predictions.

Filter (Kalman 1960), smoother (Rauch, Tung & Striebel 1965, AIAA J. 3, 1445) and the
prediction-error decomposition of the log-likelihood (Harvey 1989, *Forecasting,
Structural Time Series Models and the Kalman Filter*, eq. 3.4.7):
``log p(y) = sum_t -1/2 (n_t log 2pi + log|S_t| + e_t' S_t^-1 e_t)``.
Pure functions in the dynamax style: a ``_step`` under :func:`jax.lax.scan`, the
smoother a reverse scan; results are :class:`typing.NamedTuple`. Pixels are a leading
axis added with :func:`jax.vmap` (see :func:`smooth_pixels`).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

__all__ = ["StateSpace", "FilterResult", "SmootherResult", "kalman_filter",
           "rts_smoother", "log_likelihood", "smooth_pixels"]

_LOG_2PI = 1.8378770664093453


class StateSpace(NamedTuple):
    """Time-invariant dynamics and sensor matrices, time-varying offsets and noise.

    Shapes: ``d`` state dimension, ``S`` sensors, ``T`` days. Units: those of the
    observed quantity (an index such as EVI: unit 1), per day.
    """

    transition: jax.Array
    """F, (d, d)."""
    process_cov: jax.Array
    """Q, (d, d): covariance of the daily state increment."""
    observation: jax.Array
    """H, (S, d): row s maps the state to sensor s (gain times level)."""
    offset: jax.Array
    """c, (T, S): sensor bias (plus gain x climatology), per day."""
    obs_var: jax.Array
    """r, (T, S) or (S,): observation-error variance of each sensor (per day)."""
    initial_mean: jax.Array
    """m0, (d,): prior mean of the state on day 0."""
    initial_cov: jax.Array
    """P0, (d, d): prior covariance of the state on day 0."""


class FilterResult(NamedTuple):
    filtered_mean: jax.Array
    """E[z_t | y_1..t], (T, d)."""
    filtered_cov: jax.Array
    """Cov[z_t | y_1..t], (T, d, d)."""
    predicted_mean: jax.Array
    """E[z_t | y_1..t-1], (T, d)."""
    predicted_cov: jax.Array
    """Cov[z_t | y_1..t-1], (T, d, d)."""
    log_likelihood: jax.Array
    """log p(y_1..T), scalar (prediction-error decomposition)."""


class SmootherResult(NamedTuple):
    smoothed_mean: jax.Array
    """E[z_t | y_1..T], (T, d)."""
    smoothed_cov: jax.Array
    """Cov[z_t | y_1..T], (T, d, d)."""
    log_likelihood: jax.Array
    """log p(y_1..T), scalar."""


def _obs_var(model: StateSpace, T: int):
    r = jnp.asarray(model.obs_var)
    return jnp.broadcast_to(r, (T, model.observation.shape[0]))


def _inv_small(A):
    """Inverse of a symmetric positive-definite d x d matrix, closed form for d <= 2."""
    d = A.shape[0]
    if d == 1:
        return 1.0 / A
    if d == 2:
        det = A[0, 0] * A[1, 1] - A[0, 1] * A[1, 0]
        return jnp.array([[A[1, 1], -A[0, 1]], [-A[1, 0], A[0, 0]]]) / det
    return jnp.linalg.inv(A)


def kalman_filter(model: StateSpace, y: jax.Array, mask: jax.Array) -> FilterResult:
    """Forward Kalman filter.

    Parameters
    ----------
    model : StateSpace
    y : (T, S) observations (any value where ``mask`` is False, NaN allowed).
    mask : (T, S) bool, True where sensor s observed day t.
    """
    T = y.shape[0]
    mask = jnp.asarray(mask, bool)
    y = jnp.where(mask, y, 0.0)
    r_all = _obs_var(model, T)
    F, Q, H = model.transition, model.process_cov, model.observation

    def _step(carry, inp):
        m_pred, P_pred = carry
        y_t, c_t, r_t, k_t = inp
        m, P, ll = m_pred, P_pred, jnp.zeros((), m_pred.dtype)
        for s in range(H.shape[0]):      # sensors one at a time (diagonal R): scalar updates, exact
            h = H[s]
            Ph = P @ h
            var = h @ Ph + r_t[s]
            e = y_t[s] - c_t[s] - h @ m
            K = Ph / var
            upd = k_t[s]
            m = jnp.where(upd, m + K * e, m)
            P_new = P - jnp.outer(K, Ph)
            P = jnp.where(upd, 0.5 * (P_new + P_new.T), P)
            ll = ll + jnp.where(upd, -0.5 * (_LOG_2PI + jnp.log(var) + e * e / var), 0.0)
        m_next = F @ m
        P_next = F @ P @ F.T + Q
        return (m_next, 0.5 * (P_next + P_next.T)), (m, P, m_pred, P_pred, ll)

    init = (jnp.asarray(model.initial_mean), jnp.asarray(model.initial_cov))
    _, (mf, Pf, mp, Pp, ll) = jax.lax.scan(_step, init, (y, model.offset, r_all, mask))
    return FilterResult(mf, Pf, mp, Pp, jnp.sum(ll))


def rts_smoother(model: StateSpace, y: jax.Array, mask: jax.Array) -> SmootherResult:
    """Rauch-Tung-Striebel smoother: filter forward, then a reverse scan
    ``G_t = P_t|t F' P_t+1|t^-1``, ``m_t|T = m_t|t + G_t (m_t+1|T - m_t+1|t)``,
    ``P_t|T = P_t|t + G_t (P_t+1|T - P_t+1|t) G_t'``."""
    f = kalman_filter(model, y, mask)
    F = model.transition

    def _step(carry, inp):
        m_next_s, P_next_s = carry
        m_f, P_f, m_p_next, P_p_next = inp
        G = P_f @ F.T @ _inv_small(P_p_next)
        m_s = m_f + G @ (m_next_s - m_p_next)
        P_s = P_f + G @ (P_next_s - P_p_next) @ G.T
        P_s = 0.5 * (P_s + P_s.T)
        return (m_s, P_s), (m_s, P_s)

    inputs = (f.filtered_mean[:-1], f.filtered_cov[:-1], f.predicted_mean[1:], f.predicted_cov[1:])
    last = (f.filtered_mean[-1], f.filtered_cov[-1])
    _, (ms, Ps) = jax.lax.scan(_step, last, inputs, reverse=True)
    ms = jnp.concatenate([ms, last[0][None]], axis=0)
    Ps = jnp.concatenate([Ps, last[1][None]], axis=0)
    return SmootherResult(ms, Ps, f.log_likelihood)


def log_likelihood(model: StateSpace, y: jax.Array, mask: jax.Array) -> jax.Array:
    """log p(y | model) by the prediction-error decomposition (differentiable)."""
    return kalman_filter(model, y, mask).log_likelihood


def smooth_pixels(model: StateSpace, y: jax.Array, mask: jax.Array, model_axes=None) -> SmootherResult:
    """:func:`rts_smoother` vmapped over a leading pixel axis of ``y`` and ``mask``
    (``(P, T, S)``). ``model_axes`` is the ``in_axes`` of the model (None: shared; a
    :class:`StateSpace` of 0/None per field for per-pixel offsets or parameters)."""
    return jax.vmap(rts_smoother, in_axes=(model_axes, 0, 0))(model, y, mask)
