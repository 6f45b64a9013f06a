"""Maximum-likelihood estimation of sensor and process parameters through the
differentiable Kalman log-likelihood (Harvey 1989, ch. 3.4; Shumway & Stoffer 2017,
*Time Series Analysis and Its Applications*, ch. 6.3).

The negative log-likelihood of :func:`.kalman.log_likelihood`, summed over pixels
(``pooled=True``: one parameter set for all pixels) or per pixel (``pooled=False``: the
whole optimisation is vmapped over pixels), is minimised with Adam (optax) over
unconstrained parameters: ``log`` of every standard deviation, ``logit`` of the damping
``phi``; sensor 0 is the reference (``a_0 = 0``, ``b_0 = 1``), the other sensors' bias and
gain are free. Optimisation steps run in :func:`jax.lax.scan` (one compilation).
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from process_models.units import DataValidationError

from .kalman import log_likelihood
from .sensors import ProcessParams, SensorParams, build_state_space

__all__ = ["FitResult", "fit_mle", "default_initial", "to_unconstrained", "from_unconstrained"]


class FitResult(NamedTuple):
    process: ProcessParams
    """Fitted process parameters (leading pixel axis if not pooled)."""
    sensors: SensorParams
    """Fitted sensor parameters ((S,) or (P, S))."""
    log_likelihood: jax.Array
    """Final log-likelihood (summed over the pooled pixels, or per pixel)."""
    loss_history: jax.Array
    """Negative log-likelihood per observation at each step, (steps,) or (P, steps)."""


def to_unconstrained(process: ProcessParams, sensors: SensorParams) -> dict:
    phi = jnp.clip(process.phi, 1e-4, 1 - 1e-6)
    return {"log_process_sd": jnp.log(process.process_sd), "logit_phi": jnp.log(phi / (1 - phi)),
            "log_slope_sd": jnp.log(process.slope_sd), "log_noise_sd": jnp.log(sensors.noise_sd),
            "bias": sensors.bias[..., 1:], "gain": sensors.gain[..., 1:]}


def from_unconstrained(u: dict, kind: str, initial_sd) -> tuple[ProcessParams, SensorParams]:
    phi = jax.nn.sigmoid(u["logit_phi"]) if kind != "random_walk" else jnp.ones_like(u["logit_phi"])
    process = ProcessParams(process_sd=jnp.exp(u["log_process_sd"]), phi=phi,
                            slope_sd=jnp.exp(u["log_slope_sd"]), initial_sd=initial_sd, kind=kind)
    z = jnp.zeros_like(u["log_noise_sd"][..., :1])
    sensors = SensorParams(bias=jnp.concatenate([z, u["bias"]], -1),
                           gain=jnp.concatenate([z + 1.0, u["gain"]], -1),
                           noise_sd=jnp.exp(u["log_noise_sd"]))
    return process, sensors


def default_initial(y, mask, kind: str = "damped", initial_sd: float = 1.0):
    """Starting values from the data: sensor noise from the spread of day-to-day
    differences of the reference sensor, small daily process noise."""
    y = np.asarray(y, float)
    ref = np.where(np.asarray(mask)[..., 0], y[..., 0], np.nan).reshape(-1, y.shape[-2])
    scale = np.nanstd(ref) if np.isfinite(ref).any() else 0.1
    scale = float(scale) if np.isfinite(scale) and scale > 0 else 0.1
    S = y.shape[-1]
    sensors = SensorParams(bias=jnp.zeros(S), gain=jnp.ones(S), noise_sd=jnp.full(S, 0.2 * scale))
    process = ProcessParams(process_sd=jnp.asarray(0.02 * scale if kind != "trend" else 0.002 * scale),
                            phi=jnp.asarray(0.97 if kind == "damped" else (0.95 if kind == "trend" else 1.0)),
                            slope_sd=jnp.asarray(2e-4 * scale), initial_sd=jnp.asarray(initial_sd),
                            kind=kind)
    return process, sensors


def _neg_ll(u, y, mask, clim, kind, initial_sd, fixed_sensors):
    process, sensors = from_unconstrained(u, kind, initial_sd)
    if fixed_sensors is not None:
        sensors = fixed_sensors
    ll = jax.vmap(lambda yy, mm, cc: log_likelihood(build_state_space(process, sensors, cc), yy, mm))(
        y, mask, clim)
    n = jnp.maximum(jnp.sum(mask), 1).astype(ll.dtype)
    return -jnp.sum(ll) / n, ll


@partial(jax.jit, static_argnames=("kind", "steps", "learning_rate", "fit_sensors"))
def _optimize(u0, y, mask, clim, initial_sd, kind, steps, learning_rate, fit_sensors, sensors0):
    opt = optax.adam(learning_rate)
    fixed = None if fit_sensors else sensors0
    loss = lambda u: _neg_ll(u, y, mask, clim, kind, initial_sd, fixed)

    def _step(carry, _):
        u, state = carry
        (value, _), g = jax.value_and_grad(loss, has_aux=True)(u)
        g = jax.tree.map(lambda x: jnp.where(jnp.isfinite(x), x, 0.0), g)
        upd, state = opt.update(g, state, u)
        return (optax.apply_updates(u, upd), state), value

    (u, _), hist = jax.lax.scan(_step, (u0, opt.init(u0)), None, length=steps)
    _, ll = loss(u)
    return u, jnp.sum(ll), hist


def fit_mle(y, mask, climatology, *, kind: str = "damped", process: ProcessParams | None = None,
            sensors: SensorParams | None = None, pooled: bool = True, steps: int = 300,
            learning_rate: float = 0.05, fit_sensors: bool = True) -> FitResult:
    """Fit process (and sensor) parameters by maximum likelihood.

    Parameters
    ----------
    y, mask : (P, T, S) observations (unit of the index) and their validity.
    climatology : (P, T) prior mean of each pixel.
    kind : process kind (:data:`.sensors.PROCESS_KINDS`).
    process, sensors : starting values (default :func:`default_initial`).
    pooled : one parameter set for all pixels (True) or one per pixel (vmapped).
    fit_sensors : False keeps ``sensors`` fixed (fit the process only).
    """
    y = jnp.asarray(y)
    mask = jnp.asarray(mask, bool)
    if y.ndim != 3 or mask.shape != y.shape:
        raise DataValidationError(f"y and mask must both have shape (pixels, days, sensors); got "
                                  f"{y.shape} and {mask.shape}", variable="y",
                                  fix="add a leading pixel axis (y[None]) and a trailing sensor axis")
    clim = jnp.broadcast_to(jnp.asarray(climatology, y.dtype), y.shape[:2])
    counts = np.asarray(mask.sum(axis=(1, 2)))
    if counts.sum() == 0 or (not pooled and (counts == 0).any()):
        raise DataValidationError("no valid observation to fit" + ("" if pooled else " in some pixels"),
                                  variable="mask", fix="drop all-missing pixels before fitting "
                                  "(fuse() flags them) or fit pooled over pixels")
    p0, s0 = default_initial(y, mask, kind)
    process = process or p0
    sensors = sensors or s0
    if not fit_sensors and sensors is None:
        raise ValueError("fit_sensors=False needs sensors")
    u0 = to_unconstrained(process, sensors)
    initial_sd = jnp.asarray(process.initial_sd, y.dtype)
    if pooled:
        u, ll, hist = _optimize(u0, y, mask, clim, initial_sd, kind, steps, learning_rate,
                                fit_sensors, sensors)
    else:
        opt1 = lambda yy, mm, cc: _optimize(u0, yy[None], mm[None], cc[None], initial_sd, kind, steps,
                                            learning_rate, fit_sensors, sensors)
        u, ll, hist = jax.vmap(opt1)(y, mask, clim)
    proc, sens = from_unconstrained(u, kind, initial_sd)
    proc = proc.replace(initial_sd=jnp.broadcast_to(initial_sd, proc.process_sd.shape))
    if not fit_sensors:
        sens = sensors
    return FitResult(proc, sens, ll, hist)
