"""Hard and smooth switches shared by the process models.

Every hard operation of an `exact` model (``max(x, 0)``, ``clip``, ``x > c``) has a
smooth twin controlled by a *width* ``w`` (same unit as ``x``): the twin is C-infinity,
has finite gradients everywhere, and converges to the hard operation as ``w -> 0``
(error O(w)). Divisions that can meet a zero denominator use the "double-where" pattern
so that neither the value nor the gradient becomes NaN (JAX FAQ, "gradients contain NaN
where using where").
"""
from __future__ import annotations

import jax.numpy as jnp
from jax.nn import sigmoid


def softplus_w(x, w):
    """Smooth ``max(x, 0)``: ``w * log(1 + exp(x / w))``; error <= w log 2."""
    return w * jnp.logaddexp(0.0, x / w)


def step_w(x, w):
    """Smooth Heaviside step ``1[x > 0]``: the logistic ``sigmoid(x / w)``."""
    return sigmoid(x / w)


def soft_clip01(x, w):
    """Smooth ``clip(x, 0, 1)`` = softplus_w(x) - softplus_w(x - 1)."""
    return softplus_w(x, w) - softplus_w(x - 1.0, w)


def safe_div(num, den, eps=1e-12):
    """``num / den`` with ``den`` replaced by ``eps`` (keeping its sign) where
    ``|den| < eps``; gradients stay finite (double-where)."""
    small = jnp.abs(den) < eps
    den_safe = jnp.where(small, jnp.where(den < 0, -eps, eps), den)
    return num / den_safe
