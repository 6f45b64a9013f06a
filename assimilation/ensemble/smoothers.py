"""Ensemble smoothers: EnKS (full and fixed-lag), ES-MDA and an iterative ensemble
smoother (iEnKS / IES, Gauss-Newton in ensemble space).

EnKS (Evensen & van Leeuwen 2000, MWR 128:1852)
    Each analysis is a member-space transform G_j (``xbar + w^T A``, ``T A``). The smoothed
    ensemble at cycle k is the analysis ensemble updated by all later transforms,
    ``X_s[k] = G_{k+L} ... G_{k+1} X_a[k]`` (L = lag; L = T - 1 - k for the full smoother).
    Needs ``ensemble_filter(..., store=True)`` with a global method; scalar posterior
    inflation is included in G, per-variable inflation/RTPS are not (as in DAPPER, smoothed
    states are not inflated).

ES-MDA (Emerick & Reynolds 2013, Comput. Geosci. 55:3)
    Assimilate the same data N_a times with R inflated by alpha_i, sum 1/alpha_i = 1; each
    step is a perturbed-observation ES update with the forward model re-run:
    m_j <- m_j + C_md (C_dd + alpha_i R)^-1 (y + sqrt(alpha_i) e_j - g(m_j)).
    Gauss-linear: equals one ES update, i.e. the analytic posterior for large N.

iEnKS / IES (Sakov, Oliver & Bertino 2012, MWR 140:1988; Bocquet & Sakov 2014,
Nonlin. Proc. Geophys. 21:803)
    Deterministic Gauss-Newton minimisation in ensemble space of
    J(w) = 1/2 |w|^2 + 1/2 |R^-1/2 (y - g(xbar0 + A0^T w / sqrt(N-1)))|^2,
    with sensitivities from the ensemble: ``transform`` variant (ensemble rescaled by the
    current T, S = T^-1 Y_anom) or ``bundle`` variant (finite differences of size eps).
    Update ``w <- w - (I + S S^T)^-1 (w - S d)``; at convergence T = (I + S S^T)^-1/2.
    For linear g one iteration gives the Kalman/ES posterior; the bundle variant converges
    to the MAP of the Gaussian-prior (ensemble mean and covariance) posterior.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp

from .analysis import (EnKF, EnsembleTransform, apply_transform, flatten_ensemble, obs_space,
                       unflatten_ensemble)

__all__ = ["enks", "ESMDAResult", "esmda", "normalise_alphas", "IESResult",
           "iterative_ensemble_smoother"]


# ----------------------------------------------------------------------------- EnKS

def enks(analysis_ensembles, transforms: EnsembleTransform, lag: Optional[int] = None):
    """Ensemble Kalman smoother from stored filter output.

    analysis_ensembles : (T, N, Nx) filter analyses (``FilterResult.analysis_ensembles``).
    transforms : stacked :class:`EnsembleTransform` (``FilterResult.transforms``).
    lag : fixed lag in cycles (None = full fixed-interval smoother).
    Returns the smoothed ensembles, (T, N, Nx).
    """
    T = analysis_ensembles.shape[0]
    if lag is None:          # full smoother = fixed lag T - 1
        lag = T - 1
    lag = int(min(lag, T - 1))
    ks = jnp.arange(T)

    def one_lag(Xs, l):
        # X_s[k] <- G_{k+l} X_s[k] where k + l <= T - 1
        j = jnp.minimum(ks + l, T - 1)
        tr = jax.tree_util.tree_map(lambda a: a[j], transforms)
        upd = jax.vmap(apply_transform)(Xs, tr)
        valid = (ks + l <= T - 1)[:, None, None]
        return jnp.where(valid, upd, Xs), None

    if lag == 0:
        return analysis_ensembles
    Xs, _ = jax.lax.scan(one_lag, analysis_ensembles, jnp.arange(1, lag + 1))
    return Xs


# ----------------------------------------------------------------------------- ES-MDA

class ESMDAResult(NamedTuple):
    ensemble: Any            # posterior ensemble (pytree, members first)
    predicted: jax.Array     # (N, Ny) g(m) of the posterior ensemble
    alphas: jax.Array        # the normalised inflation schedule


def normalise_alphas(alphas):
    """Int n -> n equal steps alpha = n; an array is scaled so that sum 1/alpha = 1."""
    if isinstance(alphas, int):
        return jnp.full((alphas,), float(alphas))
    a = jnp.asarray(alphas, float)
    return a * jnp.sum(1.0 / a)


def esmda(key, forward: Callable, prior_ensemble, obs, obs_var, *, alphas=4, mask=None,
          transform=None) -> ESMDAResult:
    """ES-MDA (Emerick & Reynolds 2013).

    forward : ``g(member) -> (Ny,)`` (one member pytree; vmapped).
    prior_ensemble : pytree with leading member axis.
    obs, obs_var, mask : as in :func:`~assimilation.ensemble.analysis.analyse`
        (obs_var (Ny,) diagonal or (Ny, Ny) full).
    alphas : int (equal steps) or array of inflation factors (normalised, sum 1/a = 1).
    transform : optional BoundedTransform; the update acts on unbounded variables.
    """
    X, unravel = flatten_ensemble(prior_ensemble)
    fwd = (lambda x: x) if transform is None else transform.forward
    inv = (lambda z: z) if transform is None else transform.inverse
    g = lambda z: jnp.asarray(forward(unravel(inv(z))), X.dtype)  # noqa: E731
    a = normalise_alphas(alphas).astype(X.dtype)
    R = jnp.asarray(obs_var, X.dtype)
    method = EnKF()

    def step(Z, xs):
        alpha, k = xs
        Y = jax.vmap(g)(Z)
        os = obs_space(Y, obs, alpha * R, mask)
        return apply_transform(Z, method.transform(k, os)), None

    Z, _ = jax.lax.scan(step, jax.vmap(fwd)(X), (a, jax.random.split(key, a.shape[0])))
    Y = jax.vmap(g)(Z)
    return ESMDAResult(unflatten_ensemble(jax.vmap(inv)(Z), unravel), Y, a)


# ----------------------------------------------------------------------------- IES

class IESResult(NamedTuple):
    ensemble: Any            # posterior ensemble
    mean: Any                # posterior mean (x(w) at convergence), one member pytree
    weights: jax.Array       # (N,) final w
    cost: jax.Array          # (n_iter,) J(w) before each iteration's update
    step_norm: jax.Array     # (n_iter,) |dw|
    n_iter: jax.Array        # iterations actually used (until |dw| < tol)


def iterative_ensemble_smoother(forward: Callable, prior_ensemble, obs, obs_var, *,
                                mask=None, n_iter: int = 10, bundle: Optional[float] = None,
                                tol: float = 1e-8) -> IESResult:
    """Deterministic iterative ensemble smoother (iEnKS/IEnKF Gauss-Newton, see module).

    forward : ``g(member) -> (Ny,)``; for a smoother window g runs the model from the
        window's initial state and returns all observations of the window.
    bundle : None for the transform variant, or a finite-difference scale eps (e.g.
        1e-4) for the bundle variant (converges to the MAP).
    tol : stop when |dw| < tol (iterations after that are frozen; fixed-length scan).
    """
    X0, unravel = flatten_ensemble(prior_ensemble)
    n, _ = X0.shape
    dtype = X0.dtype
    sqn = jnp.sqrt(n - 1.0)
    xbar0 = X0.mean(0)
    A0 = X0 - xbar0                      # (N, Nx) unscaled
    g = lambda x: jnp.asarray(forward(unravel(x)), dtype)  # noqa: E731
    eye = jnp.eye(n, dtype=dtype)

    def ensemble_at(w, T):
        centre = xbar0 + w @ A0 / sqn
        if bundle is None:
            return centre + T @ A0
        return centre + bundle * A0

    def sens(w, T):
        E = ensemble_at(w, T)
        Y = jax.vmap(g)(E)
        os = obs_space(Y, obs, obs_var, mask)
        S = os.S / bundle if bundle is not None else jnp.linalg.solve(T, os.S)
        return S, os.d

    def body(carry, _):
        w, T, done, it = carry
        S, d = sens(w, T)
        H = eye + S @ S.T
        grad = w - S @ d
        dw = jnp.linalg.solve(H, grad)
        cost = 0.5 * (w @ w + d @ d)
        lam, V = jnp.linalg.eigh(H)
        T_new = (V / jnp.sqrt(lam)[None, :]) @ V.T
        step_norm = jnp.sqrt(dw @ dw)
        w_new = jnp.where(done, w, w - dw)
        T_new = jnp.where(done, T, T_new)
        it = it + jnp.where(done, 0, 1)
        done = done | (step_norm < tol)
        return (w_new, T_new, done, it), (cost, step_norm)

    (w, T, _, it), (cost, steps) = jax.lax.scan(
        body, (jnp.zeros(n, dtype), eye, jnp.array(False), jnp.array(0)), None,
        length=n_iter)
    if bundle is not None:
        S, _ = sens(w, T)
        lam, V = jnp.linalg.eigh(eye + S @ S.T)
        T = (V / jnp.sqrt(lam)[None, :]) @ V.T
    mean = xbar0 + w @ A0 / sqn
    Xa = mean + T @ A0
    return IESResult(unflatten_ensemble(Xa, unravel), unravel(mean), w, cost, steps, it)
