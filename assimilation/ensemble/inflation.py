"""Covariance inflation of ensemble anomalies.

* :func:`multiplicative` -- ``x_i = xbar + lambda (x_i - xbar)`` (Anderson & Anderson 1999);
  ``lambda`` multiplies the *anomalies* (1.02 -> variance x 1.0404, DAPPER's convention)
  and may be per variable (e.g. a separate factor for augmented parameters).
* :func:`rtpp` -- relaxation to prior perturbations (Zhang et al. 2004, MWR 132:1238):
  ``A_a <- (1 - alpha) A_a + alpha A_f``.
* :func:`rtps` -- relaxation to prior spread (Whitaker & Hamill 2012, MWR 140:3078):
  ``A_a <- A_a (alpha (sigma_f - sigma_a)/sigma_a + 1)`` per variable; alpha is a weight,
  not a factor (DART issue #775).
* :class:`AdaptiveInflation` / :func:`adaptive_update` -- adaptive multiplicative
  (variance) inflation estimated from innovations (Li, Kalnay & Miyoshi 2009, QJRMS
  135:523; temporal smoothing as Miyoshi 2011, MWR 139:1519):
  observed estimate ``lambda_o = (d^T d - p) / tr(S^T S)`` in whitened space (d innovation,
  S scaled forecast anomalies of the predicted obs, p observations), with variance
  ``v_o = 2/p ((lambda_b tr(S^T S)/p + 1) / (tr(S^T S)/p))^2``, combined with the prior
  ``N(lambda_b, v_b)`` by the Gaussian product; ``v_b`` is kept fixed (the "forgetting").
  The factor is a *variance* factor, applied to forecast anomalies as ``sqrt(lambda)``.
"""
from __future__ import annotations

from typing import NamedTuple

import jax.numpy as jnp

__all__ = ["multiplicative", "rtpp", "rtps", "AdaptiveInflation", "adaptive_update"]


def multiplicative(X, factor):
    """Inflate anomalies of ``(N, Nx)`` ``X`` by ``factor`` (scalar or ``(Nx,)``)."""
    xbar = X.mean(0)
    return xbar + jnp.asarray(factor, X.dtype) * (X - xbar)


def rtpp(X_prior, X_post, alpha):
    """Relaxation to prior perturbations; ``alpha`` in [0, 1] (0: no change)."""
    mp, ma = X_prior.mean(0), X_post.mean(0)
    return ma + (1.0 - alpha) * (X_post - ma) + alpha * (X_prior - mp)


def rtps(X_prior, X_post, alpha):
    """Relaxation to prior spread; ``alpha`` in [0, 1]. Variables with zero analysis
    spread are left unchanged (no division by zero)."""
    ma = X_post.mean(0)
    sf = X_prior.std(0, ddof=1)
    sa = X_post.std(0, ddof=1)
    safe = sa > 0
    factor = jnp.where(safe, alpha * (sf - sa) / jnp.where(safe, sa, 1.0) + 1.0, 1.0)
    return ma + factor * (X_post - ma)


class AdaptiveInflation(NamedTuple):
    """State and settings of the adaptive inflation (Li et al. 2009; Miyoshi 2011)."""
    mean: float = 1.0         # current variance-inflation estimate lambda_b
    prior_var: float = 0.05 ** 2
    minimum: float = 1.0
    maximum: float = 3.0


def adaptive_update(state: AdaptiveInflation, S, d, mask):
    """Update the inflation estimate from one analysis' whitened innovation ``d`` (Ny,)
    and *un-inflated* scaled forecast anomalies ``S`` (N, Ny); returns the new state."""
    p = jnp.maximum(mask.sum(), 1.0)
    tr = jnp.maximum(jnp.sum(S * S), 1e-12)
    lam_o = (d @ d - mask.sum()) / tr
    v_o = 2.0 / p * ((state.mean * tr / p + 1.0) / (tr / p)) ** 2
    v_b = state.prior_var
    lam = (state.mean * v_o + lam_o * v_b) / (v_o + v_b)
    lam = jnp.where(mask.sum() > 0, lam, state.mean)
    return state._replace(mean=jnp.clip(lam, state.minimum, state.maximum))
