"""Time-major scalar Kalman/RTS smoother for the one-dimensional fusion processes (``damped``
anomaly and ``random_walk`` level), for many pixels at once.

The same model and the same recursions as :func:`.kalman.rts_smoother` with the state space
of :func:`.sensors.build_state_space` (d = 1): state z_t (the anomaly around the prior mean
clim_t), z_{t+1} = phi z_t + w_t, w_t ~ N(0, q^2); sensor s observes
y_{t,s} = a_s + b_s (clim_t + z_t) + v, v ~ N(0, sd_s^2), sensors assimilated one at a time
(diagonal R). The filter (Kalman 1960) and the Rauch-Tung-Striebel smoother (Rauch, Tung &
Striebel 1965) are written on arrays of shape (pixels,) per day, so each ``lax.scan`` step
is a handful of element-wise operations over all pixels (no per-pixel 1 x 1 matrices); it
agrees with the general smoother to round-off (``tests/observations/test_fusion_scalar.py``)
and is what the map engine's pivot runs.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from .sensors import ProcessParams, SensorParams

__all__ = ["scalar_smoother"]


def _initial_var(process: ProcessParams):
    q2 = process.process_sd ** 2
    if process.kind == "damped":
        return q2 / (1.0 - process.phi ** 2), process.phi
    if process.kind == "random_walk":
        return process.initial_sd ** 2, jnp.ones_like(process.phi)
    raise ValueError(f"scalar_smoother needs a one-dimensional process ('damped', 'random_walk'), "
                     f"got {process.kind!r}")


@jax.jit
def _smooth(y, mask, clim, phi, q2, p0, bias, gain, r):
    S = y.shape[1]

    def fstep(carry, inp):
        m, P = carry                                   # predicted state (pixels,)
        y_t, k_t, c_t = inp
        mp, Pp = m, P
        for s in range(S):
            h = gain[s]
            var = h * h * P + r[s]
            e = y_t[s] - (bias[s] + h * c_t) - h * m
            K = P * h / var
            m = jnp.where(k_t[s], m + K * e, m)
            P = jnp.where(k_t[s], P - K * P * h, P)
        return (phi * m, phi * phi * P + q2), (m, P, mp, Pp)

    zero = jnp.zeros_like(clim[0])
    _, (mf, Pf, mpred, Ppred) = jax.lax.scan(fstep, (zero, zero + p0), (y, mask, clim))

    def bstep(carry, inp):
        ms_next, Ps_next = carry
        m_f, P_f, mp_next, Pp_next = inp
        G = P_f * phi / Pp_next
        ms = m_f + G * (ms_next - mp_next)
        Ps = P_f + G * G * (Ps_next - Pp_next)
        return (ms, Ps), (ms, Ps)

    last = (mf[-1], Pf[-1])
    _, (ms, Ps) = jax.lax.scan(bstep, last, (mf[:-1], Pf[:-1], mpred[1:], Ppred[1:]), reverse=True)
    ms = jnp.concatenate([ms, last[0][None]], axis=0)
    Ps = jnp.concatenate([Ps, last[1][None]], axis=0)
    return ms + clim, jnp.sqrt(jnp.maximum(Ps, 0.0))


def scalar_smoother(y, mask, clim, process: ProcessParams, sensors: SensorParams):
    """Smoothed daily index and its sd, time-major.

    Parameters
    ----------
    y : (T, S, P) daily observations (any value where ``mask`` is False).
    mask : (T, S, P) bool, True where sensor s observed pixel p on day t.
    clim : (T, P) prior mean (unit of the index).
    process, sensors : fitted parameters (scalars / (S,) arrays, pooled over pixels).

    Returns
    -------
    (mean, sd), each (T, P), unit of the index.
    """
    p0, phi = _initial_var(process)
    dt = jnp.asarray(clim).dtype
    y = jnp.where(jnp.asarray(mask, bool), jnp.asarray(y, dt), 0.0)
    as_dt = lambda a: jnp.asarray(a, dt)
    return _smooth(y, jnp.asarray(mask, bool), as_dt(clim), as_dt(phi), as_dt(process.process_sd ** 2),
                   as_dt(p0), as_dt(sensors.bias), as_dt(sensors.gain), as_dt(sensors.noise_sd ** 2))
