"""Global ensemble analysis steps: stochastic EnKF, ETKF, DEnKF and serial EnSRF.

All schemes are written in *ensemble space* with whitened observations (Hunt et al. 2007,
Physica D 230:112; Sakov & Oke 2008, Tellus A 60:361). Notation (members first):

* ``X`` (N, Nx): forecast ensemble (flattened members), ``xbar`` its mean,
  ``A = X - xbar`` the anomalies.
* ``Y = h(X)`` (N, Ny): predicted observations (``h`` vmapped over members).
* whitened, masked, scaled observation anomalies ``S = m (Y - ybar) / (sigma sqrt(N-1))``
  and innovation ``d = m (y - ybar) / sigma`` (``m`` = 0/1 observation mask, ``sigma`` =
  observation-error standard deviation). A masked observation contributes a zero row
  and column, so it changes nothing (zero-weight trick; no dynamic shapes).
* ``C = S S^T`` (N, N); Kalman gain in ensemble space (Woodbury identity)
  ``K d = A^T/sqrt(N-1) (I + C)^-1 S d``.

Every scheme returns an :class:`EnsembleTransform` ``(w, T)`` with
``xbar_a = xbar + w^T A`` and ``A_a = T A``: the analysis is a linear combination of the
forecast members. The same transform applied to earlier ensembles gives the ensemble
Kalman smoother (:mod:`.smoothers`).

Schemes
-------
* :class:`EnKF` -- stochastic EnKF with perturbed observations (Burgers et al. 1998,
  MWR 126:1719), perturbations centred (as DAPPER ``'PertObs'``):
  ``W = (I + C)^-1 S D^T`` with D_j = d + z_j - sqrt(N-1) S_j, z_j ~ N(0, I), T = I + W^T/sqrt(N-1) (centred).
* :class:`ETKF` -- symmetric square root (Bishop et al. 2001; Hunt et al. 2007):
  ``w = (I + C)^-1 S d / sqrt(N-1)``, ``T = (I + C)^-1/2``; optional mean-preserving
  random rotation (Sakov & Oke 2008b).
* :class:`DEnKF` -- deterministic EnKF (Sakov & Oke 2008): half-gain anomaly update
  ``T = I - 1/2 C (I + C)^-1``.
* :class:`EnSRF` -- serial square-root filter (Whitaker & Hamill 2002, MWR 130:1913),
  observations one at a time under ``lax.scan`` with ``alpha = 1/(1 + sqrt(r/(s + r)))``;
  requires diagonal R.

For linear ``h`` ETKF, DEnKF-mean and EnSRF give exactly the Kalman-filter mean; ETKF and
EnSRF also its covariance ``A^T (I + C)^-1 A / (N - 1)``.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.flatten_util import ravel_pytree

__all__ = [
    "EnsembleTransform", "ObsSpace", "AnalysisResult", "EnKF", "ETKF", "DEnKF", "EnSRF",
    "analyse", "obs_space", "apply_transform", "flatten_ensemble", "unflatten_ensemble",
    "replace_failed_members", "member_ok", "random_rotation", "ensemble_mean_and_spread",
]


# ----------------------------------------------------------------------------- containers

class EnsembleTransform(NamedTuple):
    """Analysis as a member-space transform: ``xbar_a = xbar + mean_weights @ A``,
    ``A_a = anomaly_transform @ A`` (A = forecast anomalies, members first)."""
    mean_weights: jax.Array       # (N,)
    anomaly_transform: jax.Array  # (N, N)


class ObsSpace(NamedTuple):
    """Whitened, masked observation-space quantities of one analysis (see module doc)."""
    S: jax.Array          # (N, Ny) scaled whitened anomalies of the predicted obs
    d: jax.Array          # (Ny,) whitened innovation y - ybar
    mask: jax.Array       # (Ny,) 1.0 used, 0.0 missing
    ybar: jax.Array       # (Ny,) ensemble-mean predicted observation
    log_det_r: jax.Array  # () log det R over the used observations
    n_obs: jax.Array      # () number of used observations


class AnalysisResult(NamedTuple):
    """Result of :func:`analyse`."""
    ensemble: Any                         # analysis ensemble, same pytree as the input
    transform: Optional[EnsembleTransform]  # None for local (LETKF) analyses
    log_likelihood: jax.Array             # log N(y; ybar_f, S_f + R) of the forecast
    innovation: jax.Array                 # (Ny,) y - ybar_f (0 where masked)
    n_obs: jax.Array                      # used observations
    n_failed: jax.Array                   # members replaced because they were non-finite


# ----------------------------------------------------------------------------- helpers

def flatten_ensemble(ensemble):
    """Members-first pytree -> ``(N, Nx)`` array and the ``unravel`` of one member."""
    member0 = jax.tree_util.tree_map(lambda leaf: leaf[0], ensemble)
    _, unravel = ravel_pytree(member0)
    flat = jax.vmap(lambda m: ravel_pytree(m)[0])(ensemble)
    return flat, unravel


def unflatten_ensemble(flat, unravel):
    """Inverse of :func:`flatten_ensemble`."""
    return jax.vmap(unravel)(flat)


def ensemble_mean_and_spread(X):
    """Mean and standard deviation (ddof = 1) over the member axis of ``(N, Nx)``."""
    return X.mean(0), X.std(0, ddof=1)


def apply_transform(X, tr: EnsembleTransform):
    """Apply a member-space transform to an ``(N, Nx)`` ensemble (any time's ensemble)."""
    xbar = X.mean(0)
    A = X - xbar
    return xbar + tr.mean_weights @ A + tr.anomaly_transform @ A


def member_ok(X, Y=None, mask=None):
    """``(N,)`` True where the member state (and its used predicted observations) is finite."""
    ok = jnp.all(jnp.isfinite(X), axis=1)
    if Y is not None:
        used = jnp.ones(Y.shape[1], bool) if mask is None else mask > 0
        ok = ok & jnp.all(jnp.isfinite(Y) | ~used, axis=1)
    return ok


def replace_failed_members(key, X, ok, Y=None):
    """Replace failed (``ok == False``) members by copies of randomly drawn healthy ones.

    Keeps every array finite and shapes static (no boolean indexing). When every member
    failed nothing can be done: the ensemble is returned unchanged (non-finite), which
    the caller sees in ``n_failed == N``.
    """
    n = X.shape[0]
    okf = ok.astype(X.dtype)
    any_ok = okf.sum() > 0
    p = jnp.where(any_ok, okf / jnp.maximum(okf.sum(), 1.0), jnp.full((n,), 1.0 / n, X.dtype))
    idx = jax.random.choice(key, n, shape=(n,), p=p)
    keep = ok | ~any_ok
    Xn = jnp.where(keep[:, None], X, X[idx])
    if Y is None:
        return Xn
    return Xn, jnp.where(keep[:, None], Y, Y[idx])


def random_rotation(key, n, dtype=jnp.float32):
    """Haar-random ``(n, n)`` orthogonal matrix Q with ``Q 1 = 1`` (mean-preserving; the
    "genOG_1" of DAPPER, Sakov & Oke 2008b)."""
    basis = np.linalg.qr(np.concatenate([np.ones((n, 1)), np.eye(n)[:, : n - 1]], 1))[0]
    U = jnp.asarray(basis, dtype)
    Z = jax.random.normal(key, (n - 1, n - 1), dtype)
    Q0, R0 = jnp.linalg.qr(Z)
    Q0 = Q0 * jnp.sign(jnp.diag(R0))[None, :]
    Q = jnp.zeros((n, n), dtype).at[0, 0].set(1.0).at[1:, 1:].set(Q0)
    return U @ Q @ U.T


def obs_space(Y, obs, obs_var, mask=None) -> ObsSpace:
    """Whitened observation-space quantities from predicted observations ``Y`` (N, Ny).

    ``obs_var``: (Ny,) error variances (diagonal R) or (Ny, Ny) full R (then whitened
    with its Cholesky factor; a mask then only zeroes the whitened components, exact for
    diagonal R). Non-finite observations are treated as missing.
    """
    n = Y.shape[0]
    dtype = Y.dtype
    obs = jnp.asarray(obs, dtype)
    m = jnp.isfinite(obs).astype(dtype)
    if mask is not None:
        m = m * (jnp.asarray(mask) > 0).astype(dtype)
    used = m > 0
    y0 = jnp.where(used, obs, 0.0)
    Yc = jnp.where(used[None, :], Y, 0.0)
    ybar = Yc.mean(0)
    R = jnp.asarray(obs_var, dtype)
    if R.ndim == 2:
        L = jnp.linalg.cholesky(R)
        white = lambda v: jax.scipy.linalg.solve_triangular(L, v, lower=True)  # noqa: E731
        S = jax.vmap(white)(Yc - ybar) * m / jnp.sqrt(n - 1.0)
        d = white(y0 - ybar) * m
        log_det_r = 2.0 * jnp.sum(jnp.log(jnp.diag(L)) * m)
    else:
        r = jnp.broadcast_to(R, obs.shape)
        r_safe = jnp.where(used, r, 1.0)
        scale = m / jnp.sqrt(r_safe)
        S = (Yc - ybar) * scale / jnp.sqrt(n - 1.0)
        d = (y0 - ybar) * scale
        log_det_r = jnp.sum(jnp.log(r_safe) * m)
    return ObsSpace(S, d, m, ybar, log_det_r, m.sum())


def _eig_ensemble_space(S):
    C = S @ S.T
    lam, V = jnp.linalg.eigh(C)
    return jnp.clip(lam, 0.0, None), V


def _spectral(S):
    """Eigenpairs (lam, U) of C = S S^T: full eigh when N <= Ny, else the thin SVD of S
    (U has Ny columns; C is zero on the complement), O(N Ny^2)."""
    n, ny = S.shape
    if n > ny:
        U, sig, _ = jnp.linalg.svd(S, full_matrices=False)
        return sig ** 2, U
    return _eig_ensemble_space(S)


def _matfun(lam, U, f, f0):
    """f(C) = f(0) I + U (f(lam) - f(0)) U^T for a symmetric C = U diag(lam) U^T (+ 0)."""
    n = U.shape[0]
    return f0 * jnp.eye(n, dtype=U.dtype) + (U * (f(lam) - f0)[None, :]) @ U.T


def gaussian_log_likelihood(os: ObsSpace):
    """log N(y; ybar, Y_cov + R) with the low-rank-plus-diagonal identities
    det(I + S^T S) = det(I + S S^T) and (I + S^T S)^-1 = I - S^T (I + S S^T)^-1 S."""
    n, ny = os.S.shape
    if n > ny:      # observation space is smaller: (I + S^T S) directly
        M = jnp.eye(ny, dtype=os.S.dtype) + os.S.T @ os.S
        Lc = jnp.linalg.cholesky(M)
        z = jax.scipy.linalg.solve_triangular(Lc, os.d, lower=True)
        return -0.5 * (os.n_obs * jnp.log(2.0 * jnp.pi) + os.log_det_r
                       + 2.0 * jnp.sum(jnp.log(jnp.diag(Lc))) + z @ z)
    lam, V = _eig_ensemble_space(os.S)
    Sd = V.T @ (os.S @ os.d)
    quad = os.d @ os.d - jnp.sum(Sd ** 2 / (1.0 + lam))
    return -0.5 * (os.n_obs * jnp.log(2.0 * jnp.pi) + os.log_det_r
                   + jnp.sum(jnp.log1p(lam)) + quad)


# ----------------------------------------------------------------------------- schemes

@struct.dataclass
class ETKF:
    """Ensemble transform Kalman filter, symmetric square root (Hunt et al. 2007).
    ``rotate``: apply a mean-preserving random rotation to the anomalies (needs a key)."""
    rotate: bool = struct.field(pytree_node=False, default=False)

    def transform(self, key, os: ObsSpace) -> EnsembleTransform:
        n = os.S.shape[0]
        lam, V = _spectral(os.S)
        w = V @ ((V.T @ (os.S @ os.d)) / (1.0 + lam))
        T = _matfun(lam, V, lambda l: 1.0 / jnp.sqrt(1.0 + l), 1.0)
        if self.rotate:
            T = random_rotation(key, n, T.dtype) @ T
        return EnsembleTransform(w / jnp.sqrt(n - 1.0), T)


@struct.dataclass
class DEnKF:
    """Deterministic EnKF (Sakov & Oke 2008): Kalman mean, half-gain anomaly update."""

    def transform(self, key, os: ObsSpace) -> EnsembleTransform:
        n = os.S.shape[0]
        lam, V = _spectral(os.S)
        w = V @ ((V.T @ (os.S @ os.d)) / (1.0 + lam))
        T = _matfun(lam, V, lambda l: 1.0 - 0.5 * l / (1.0 + l), 1.0)
        return EnsembleTransform(w / jnp.sqrt(n - 1.0), T)


@struct.dataclass
class EnKF:
    """Stochastic EnKF with perturbed observations (Burgers et al. 1998); perturbations
    drawn from N(0, R) and centred (their ensemble mean removed); needs a key."""
    centred: bool = struct.field(pytree_node=False, default=True)

    def transform(self, key, os: ObsSpace) -> EnsembleTransform:
        n, ny = os.S.shape
        z = jax.random.normal(key, (n, ny), os.S.dtype)
        if self.centred:
            z = (z - z.mean(0)) * jnp.sqrt(n / (n - 1.0))
        D = (os.d[None, :] + z * os.mask[None, :]) - jnp.sqrt(n - 1.0) * os.S   # (N, Ny)
        if n > ny:   # push-through identity: (I + S S^T)^-1 S = S (I + S^T S)^-1
            M = jnp.eye(ny, dtype=os.S.dtype) + os.S.T @ os.S
            G = jnp.linalg.solve(M, os.S.T).T
        else:
            lam, V = _eig_ensemble_space(os.S)
            G = V @ ((V.T @ os.S) / (1.0 + lam)[:, None])                        # (I+C)^-1 S
        W = G @ D.T / jnp.sqrt(n - 1.0)                                         # (N, N)
        wm = W.mean(1)     # Pi W^T = W^T - 1 wm^T (O(N^2), no N^3 product)
        return EnsembleTransform(wm, jnp.eye(n, dtype=W.dtype) + W.T - wm[None, :])


@struct.dataclass
class EnSRF:
    """Serial ensemble square-root filter (Whitaker & Hamill 2002): scalar updates of the
    state and predicted observations, one observation at a time (``lax.scan``). Tracked as
    a member-space transform, so the cost is O(Ny N^2) plus one O(N^2 Nx) application.
    Requires diagonal R (whitened observations are independent)."""

    def transform(self, key, os: ObsSpace) -> EnsembleTransform:
        n = os.S.shape[0]
        dt = os.S.dtype

        def body(carry, col):
            w, T = carry
            s_col, d_i = col
            s = T @ s_col                   # current scaled whitened anomalies of obs i
            var = s @ s
            delta = d_i - w @ s_col         # current innovation (whitened)
            w = w + T.T @ s * delta / (var + 1.0)
            alpha = 1.0 / (1.0 + jnp.sqrt(1.0 / (var + 1.0)))
            T = T - (alpha / (var + 1.0)) * jnp.outer(s, s @ T)
            return (w, T), None

        (w, T), _ = jax.lax.scan(body, (jnp.zeros(n, dt), jnp.eye(n, dtype=dt)),
                                 (os.S.T, os.d))
        return EnsembleTransform(w / jnp.sqrt(n - 1.0), T)


# ----------------------------------------------------------------------------- driver

@partial(jax.jit, static_argnames=("obs_operator", "replace_failed"))
def analyse(method, ensemble, obs, obs_var, obs_operator: Callable, *, mask=None, key=None,
            transform=None, replace_failed: bool = True) -> AnalysisResult:
    """One ensemble analysis.

    Parameters
    ----------
    method : ETKF, EnKF, DEnKF, EnSRF or :class:`~assimilation.ensemble.letkf.LETKF`.
    ensemble : pytree with a leading member axis ``N`` (or an ``(N, Nx)`` array).
    obs : (Ny,) observations (NaN = missing).
    obs_var : (Ny,) error variances (diagonal R) or (Ny, Ny) covariance.
    obs_operator : function of *one* member (pytree) -> (Ny,) predicted observations;
        may be nonlinear; vmapped over members.
    mask : optional (Ny,) 1/0 (or bool) observation mask.
    key : PRNG key (EnKF perturbations, rotations, failed-member replacement).
    transform : optional :class:`~assimilation.ensemble.transforms.BoundedTransform`;
        the analysis is then done on the unbounded variables z = forward(x).
    replace_failed : replace non-finite members by copies of healthy ones first.
    """
    key = jax.random.key(0) if key is None else key
    k_fail, k_method = jax.random.split(key)
    X, unravel = flatten_ensemble(ensemble)
    fwd = (lambda x: x) if transform is None else transform.forward
    inv = (lambda z: z) if transform is None else transform.inverse
    Z = jax.vmap(fwd)(X)
    h = lambda z: jnp.asarray(obs_operator(unravel(inv(z))))  # noqa: E731
    Y = jax.vmap(h)(Z)
    ok = member_ok(Z, Y, mask)
    n_failed = jnp.sum(~ok)
    if replace_failed:
        Z, Y = replace_failed_members(k_fail, Z, ok, Y)
    os = obs_space(Y, obs, obs_var, mask)
    ll = gaussian_log_likelihood(os)
    innovation = jnp.where(os.mask > 0, jnp.asarray(obs, Y.dtype), 0.0) - os.ybar * os.mask
    if hasattr(method, "local_update"):
        Za = method.local_update(k_method, Z, os)
        tr = None
    else:
        tr = method.transform(k_method, os)
        Za = apply_transform(Z, tr)
    Xa = jax.vmap(inv)(Za)
    return AnalysisResult(unflatten_ensemble(Xa, unravel), tr, ll, innovation, os.n_obs,
                          n_failed)
