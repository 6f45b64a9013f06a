"""Cross-pollination of the physical and the learned pivot.

Physics -> learning
    :func:`physics_informed_series` attaches the multi-resolution Kalman pivot (mean, sd) to
    the learned model's input so that :mod:`.learned` is initialised from it
    (``pretrain_steps``: regression on the physical pivot) and regularised by it
    (``phys_weight``: a Gaussian prior on every day, strongest where the physical sd is
    small). What it buys: the learned model inherits the Kalman smoother's behaviour in long
    gaps, where the masked-autoencoding loss has no data.

Learning -> physics
    :func:`fit_coarse_residual` learns a residual correction ``g(doy, x)`` of the coarse
    sensor's linear operator ``y_c = a + b X + g + v`` (a small NNX MLP on the date encoding
    and the state) from the days where both the coarse sensor and the fine aggregate see a
    cell; :func:`correct_coarse` subtracts it before the multi-resolution fusion is run
    again. What it buys: the part of the inter-sensor difference that a gain and a bias
    cannot represent (the synthetic proxy has a seasonal term of amplitude 0.02 by design).
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from .learned import PixelSeries, date_encoding

__all__ = ["physics_informed_series", "CoarseResidual", "fit_coarse_residual", "correct_coarse"]


def physics_informed_series(series: PixelSeries, phys_mean, phys_sd) -> PixelSeries:
    """``series`` with the physical pivot (P, T, targets) attached."""
    return series._replace(phys_mean=np.asarray(phys_mean, np.float32), phys_sd=np.asarray(phys_sd, np.float32))


class CoarseResidual(nnx.Module):
    """g(doy, x): 4 date features + x -> residual (unit of the index)."""

    def __init__(self, width: int = 16, *, rngs: nnx.Rngs):
        self.l1 = nnx.Linear(5, width, rngs=rngs, param_dtype=jnp.float32)
        self.l2 = nnx.Linear(width, 1, rngs=rngs, param_dtype=jnp.float32)

    def __call__(self, doy, x):
        f = jnp.concatenate([date_encoding(doy), x.astype(jnp.float32)[:, None]], 1)
        return self.l2(jnp.tanh(self.l1(f)))[:, 0]


@partial(jax.jit, static_argnames=("graphdef", "steps"))
def _train(graphdef, state, doy, x, r, steps, lr):
    opt = optax.adam(lr)

    def loss(s):
        return jnp.mean((nnx.merge(graphdef, s)(doy, x) - r) ** 2)

    def step(carry, _):
        s, o = carry
        v, g = jax.value_and_grad(loss)(s)
        u, o = opt.update(g, o, s)
        return (optax.apply_updates(s, u), o), v

    (state, _), hist = jax.lax.scan(step, (state, opt.init(state)), None, length=steps)
    return state, hist


def fit_coarse_residual(y_cell, mask_cell, sensors, doy, *, steps: int = 400, learning_rate: float = 0.01,
                        seed: int = 0):
    """Fit g on the cell-level observations (C, T, 2) of :func:`.multires.cell_observations`
    (sensor 0 fine aggregate, 1 coarse) and the cell level's fitted linear operator
    ``sensors`` (bias, gain of sensor 1): residual ``y_1 - (a + b y_0)`` where both observed.
    Returns (model, training MSE history)."""
    both = mask_cell[..., 0] & mask_cell[..., 1]
    a, b = float(np.asarray(sensors.bias)[1]), float(np.asarray(sensors.gain)[1])
    x = y_cell[..., 0][both]
    r = y_cell[..., 1][both] - (a + b * x)
    d = np.broadcast_to(np.asarray(doy, float), both.shape)[both]
    model = CoarseResidual(rngs=nnx.Rngs(seed))
    graphdef, state = nnx.split(model)
    state, hist = _train(graphdef, state, jnp.asarray(d, jnp.float32), jnp.asarray(x, jnp.float32),
                         jnp.asarray(r, jnp.float32), steps, learning_rate)
    return nnx.merge(graphdef, state), np.asarray(hist)


def correct_coarse(model: CoarseResidual, y_coarse, mask_coarse, state_estimate, doy):
    """Coarse observations (C, T) minus the learned residual at the state estimate (C, T)."""
    C, T = y_coarse.shape
    d = jnp.asarray(np.broadcast_to(np.asarray(doy, float), (C, T)).reshape(-1), jnp.float32)
    g = np.asarray(model(d, jnp.asarray(np.asarray(state_estimate).reshape(-1), jnp.float32))).reshape(C, T)
    return np.where(mask_coarse, y_coarse - g, 0.0)
