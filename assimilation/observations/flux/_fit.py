"""Batched, masked, weighted Levenberg-Marquardt least squares in JAX (private).

Windows of a flux series become rows of padded ``(B, L)`` arrays with a mask; one
:func:`levenberg_marquardt` call fits every window at once (``vmap`` over rows,
``lax.scan`` over a fixed number of iterations), so no Python loop touches windows or
records. Parameters can be held fixed per window (``free`` mask) and are clipped to box
bounds after each step.
"""
from __future__ import annotations

from functools import partial
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["FitResult", "levenberg_marquardt", "gather_windows", "masked_quantile"]


class FitResult(NamedTuple):
    """Per-window fit (leading axis = windows)."""

    params: jax.Array
    """(B, P) best parameters."""
    se: jax.Array
    """(B, P) standard errors from s^2 (J^T W J)^-1 (0 for fixed parameters)."""
    sse: jax.Array
    """(B,) weighted residual sum of squares."""
    n: jax.Array
    """(B,) number of records used."""


@partial(jax.jit, static_argnames=("model", "n_iter"))
def levenberg_marquardt(model: Callable, p0, x, y, weight, mask, free, lower, upper, *,
                        model_args=(), n_iter: int = 60) -> FitResult:
    """Minimise ``sum(mask * weight * (y - model(p, x))**2)`` per window.

    Parameters
    ----------
    model : ``model(p, x, *model_args) -> (L,)`` for one window; ``p`` (P,), ``x`` (K, L).
    p0 : (B, P) start values.
    x : (B, K, L) drivers; y, weight : (B, L); mask : (B, L) bool.
    free : (B, P) bool, parameters fitted (others stay at ``p0``).
    lower, upper : (P,) box bounds (clipping).
    model_args : extra arrays with a leading window axis, passed to ``model``.
    """
    def one(p0_, x_, y_, w_, m_, f_, *margs):
        w = jnp.where(m_, w_, 0.0)
        y0 = jnp.where(m_, y_, 0.0)

        def resid(p):
            r = jnp.sqrt(w) * (y0 - model(p, x_, *margs))
            return jnp.where(m_, r, 0.0)

        def cost(p):
            r = resid(p)
            return jnp.sum(r * r)

        fmask = f_.astype(p0_.dtype)

        def step(carry, _):
            p, lam, c = carry
            r = resid(p)
            jac = jax.jacfwd(resid)(p) * fmask[None, :]
            jtj = jac.T @ jac
            g = jac.T @ r
            # Marquardt scaling with a floor: a parameter without influence in this window
            # (e.g. k when VPD <= VPD0 throughout) must not make the system singular
            dj = jnp.diag(jtj)
            diag = jnp.maximum(dj, 1e-6 * jnp.max(dj) + 1e-30) * fmask + (1.0 - fmask)
            a = jtj + lam * jnp.diag(diag) + jnp.diag(1.0 - fmask)
            delta = -jnp.linalg.solve(a, g) * fmask
            delta = jnp.where(jnp.isfinite(delta), delta, 0.0)
            p_new = jnp.clip(p + delta, lower, upper)
            c_new = cost(p_new)
            better = jnp.isfinite(c_new) & (c_new < c)
            p = jnp.where(better, p_new, p)
            c = jnp.where(better, c_new, c)
            lam = jnp.where(better, lam / 3.0, lam * 4.0)
            lam = jnp.clip(lam, 1e-9, 1e9)
            return (p, lam, c), None

        p_start = jnp.clip(p0_, lower, upper)
        init = (p_start, jnp.asarray(1e-2, p0_.dtype), cost(p_start))
        (p, _, c), _ = jax.lax.scan(step, init, None, length=n_iter)
        jac = jax.jacfwd(resid)(p) * fmask[None, :]
        jtj = jac.T @ jac + jnp.diag(1.0 - fmask)
        n = jnp.sum(m_)
        dof = jnp.maximum(n.astype(c.dtype) - jnp.sum(fmask), 1.0)
        cov = jnp.linalg.pinv(jtj) * (c / dof)
        se = jnp.sqrt(jnp.clip(jnp.diag(cov), 0.0, None)) * fmask
        return p, se, c, n

    p, se, c, n = jax.vmap(one)(p0, x, y, weight, mask, free, *model_args)
    return FitResult(p, se, c, n)


def gather_windows(n_records: int, centres, before: int, after: int):
    """Index matrix ``(B, before + after)`` of the records ``[c - before, c + after)``
    around each centre, and a bool matrix saying which indices lie inside the series
    (NumPy; indices outside are clipped)."""
    c = np.asarray(centres, dtype=np.int64)[:, None]
    idx = c + np.arange(-before, after)[None, :]
    inside = (idx >= 0) & (idx < n_records)
    return np.clip(idx, 0, n_records - 1), inside


def masked_quantile(values, mask, q):
    """Row-wise quantile ``q`` of ``values`` where ``mask`` (NaN for empty rows)."""
    v = jnp.where(mask, values, jnp.nan)
    return jnp.nanquantile(v, q, axis=-1)
