"""Particle filters (sequential importance resampling) under ``lax.scan``.

One cycle k (the DAPPER convention of :mod:`.cycling`: no observation at t = 0, every cycle
starts with a forecast):

1. **proposal**: each particle ``x_i`` moves to ``x'_i ~ q(x' | x_i, y_k)`` and its
   log-weight gains ``log p(y_k | x'_i) + log p(x'_i | x_i) - log q(x'_i | x_i, y_k)``:

   * :class:`Bootstrap` (Gordon, Salmond & Smith 1993, IEE Proc. F 140, 107): ``q`` is the
     model transition, ``x' = f(x) + Q^(1/2) eta``; the increment is the likelihood
     ``log N(y_k; h(x'), R)``.
   * :class:`OptimalProposal` (Doucet, Godsill & Andrieu 2000, Stat. Comput. 10, 197;
     Snyder et al. 2015, MWR 143, 4750) for a linear observation operator ``H`` and
     additive Gaussian model noise ``Q``: ``q = p(x' | x, y_k) = N(f(x) + K (y - H f(x)),
     (I - K H) Q)`` with ``K = Q H^T (H Q H^T + R)^-1``; the increment is
     ``log N(y_k; H f(x), H Q H^T + R)``, independent of the sampled ``x'``.

2. normalise; the per-cycle log-likelihood estimate is
   ``log sum_i w_(k-1),i p(y_k | ...)_i`` (the marginal likelihood of the observations
   given the past, unbiased in ``exp`` for the bootstrap filter; Del Moral 2004);
3. **resample** when the effective sample size ``N_eff = 1 / sum_i w_i^2`` falls to or below
   ``threshold x N`` (Liu & Chen 1998; DAPPER's ``NER``): systematic (Kitagawa 1996,
   JCGS 5, 1; the default: least resampling noise) or multinomial; weights reset to 1/N;
4. **regularise** (Musso, Oudjane & Le Gland 2001, in Doucet et al. eds., Sequential Monte
   Carlo Methods in Practice, ch. 12): after a resampling the duplicated particles are
   jittered with a Gaussian kernel of covariance ``(reg x h)^2 C``, ``C`` the weighted
   covariance of the particles before resampling and ``h = N^(-1/(Nx + 4))`` (Scott's rule
   of thumb, as in DAPPER's ``PartFilt(reg=...)``); ``reg = 0`` switches it off. ``reg``
   may be a vector (one factor per flattened variable, 0 = not jittered), e.g. to jitter
   only the parameters of augmented members (:func:`~assimilation.ensemble.member_vector`);
   the jitter of variable j is then ``reg_j h (L z)_j`` with ``L L^T = C``, so the jittered
   block keeps the weighted covariance of its own variables (and their correlations);
5. **kernel shrinkage** (``shrinkage=True``; Liu & West 2001, in Doucet et al. eds., ch. 10,
   for static parameters): every resampled particle is first pulled towards the weighted
   mean, ``x <- a x + (1 - a) xbar`` with ``a = sqrt(1 - (reg h)^2)`` per variable, then
   jittered with the kernel above (all particles, not only duplicates), so that the
   kernel adds no variance: mean and covariance of the jittered variables are kept (a
   plain regularisation inflates the spread of a static parameter by ``1 + (reg h)^2`` at
   every resampling);
6. ``postprocess(particles) -> particles`` (e.g.
   :func:`~assimilation.ensemble.clip_augmented`: parameters and states back inside their
   bounds) after every cycle, as in :func:`~assimilation.ensemble.ensemble_filter`.

Particles are a pytree with a leading particle axis N (flattened internally, as in
:func:`~assimilation.ensemble.ensemble_filter`); ``model(particle, inputs_k) -> particle``
propagates one particle over one cycle (e.g.
:func:`~assimilation.ensemble.interface.interface_forecast` of a model's ``step``).
Observations are an :class:`~assimilation.observations.Observations` or arrays
``(observations, obs_var, obs_mask)`` with diagonal ``R``; masked entries do not enter the
weights. Non-finite likelihoods or particles give a particle zero weight (it is left out
of the weighted moments and disappears at the next resampling).

Stored per cycle (:class:`PFResult`): the weighted mean and sd of the particles after the
reweighting (before resampling: DAPPER's ``.a`` statistics), the effective sample size, the
resampling flag and the log-likelihood increment.
"""
from __future__ import annotations

import math
from functools import partial
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree

from .analysis import flatten_ensemble, unflatten_ensemble
from .cycling import _is_zero, unpack_observations

__all__ = ["Bootstrap", "OptimalProposal", "PFResult", "effective_sample_size",
           "multinomial_resample", "particle_filter", "regularisation_bandwidth",
           "systematic_resample", "weighted_mean_and_cov"]

_LOG_2PI = math.log(2.0 * math.pi)


class Bootstrap(NamedTuple):
    """Bootstrap proposal: the model transition (plus ``model_noise`` of the filter)."""


class OptimalProposal(NamedTuple):
    """Optimal proposal for ``y = H x + v``, ``v ~ N(0, R)``, and additive model noise
    ``x' = f(x) + w``, ``w ~ N(0, Q)``.

    ``obs_matrix``: H, shape (Ny, Nx), in the flattened particle order (the observation
    operator ``h`` must equal ``H @ x``); ``model_noise_cov``: Q, shape (Nx, Nx) or (Nx,)
    (diagonal), in squared state units."""

    obs_matrix: Any
    model_noise_cov: Any


class PFResult(NamedTuple):
    mean: jax.Array             # (T, Nx) weighted mean after reweighting (flattened order)
    sd: jax.Array               # (T, Nx) weighted sd after reweighting
    ess: jax.Array              # (T,) effective sample size after reweighting (particles)
    resampled: jax.Array        # (T,) True where the cycle resampled
    log_likelihood: jax.Array   # (T,) log p(y_k | y_1:k-1) estimates
    particles: Any              # final particles (pytree, leading axis N)
    log_weights: jax.Array      # (N,) final normalised log-weights
    stored_particles: Optional[jax.Array] = None   # (T, N, Nx) after each cycle, if stored
    stored_log_weights: Optional[jax.Array] = None  # (T, N) after each cycle, if stored


def effective_sample_size(log_w):
    """``1 / sum_i w_i^2`` of normalised log-weights ``log_w`` (..., N)."""
    return jnp.exp(-jax.nn.logsumexp(2.0 * log_w, axis=-1))


def _normalise(log_w):
    return log_w - jax.nn.logsumexp(log_w, axis=-1, keepdims=True)


def systematic_resample(key, log_w, n: Optional[int] = None):
    """Systematic resampling (Kitagawa 1996): ``n`` sorted indices, particle i drawn
    ``floor(n w_i)`` or ``ceil(n w_i)`` times. ``log_w`` normalised, shape (N,)."""
    n = log_w.shape[-1] if n is None else n
    dtype = log_w.dtype
    u = (jax.random.uniform(key, (), dtype) + jnp.arange(n, dtype=dtype)) / n
    cdf = jnp.cumsum(jnp.exp(log_w))
    cdf = cdf / cdf[-1]
    return jnp.clip(jnp.searchsorted(cdf, u), 0, log_w.shape[-1] - 1)


def multinomial_resample(key, log_w, n: Optional[int] = None):
    """Multinomial resampling: ``n`` i.i.d. draws from the weights, returned sorted."""
    n = log_w.shape[-1] if n is None else n
    return jnp.sort(jax.random.categorical(key, log_w, shape=(n,)))


RESAMPLERS = {"systematic": systematic_resample, "multinomial": multinomial_resample}


def weighted_mean_and_cov(X, log_w):
    """Weighted mean (Nx,) and unbiased weighted covariance (Nx, Nx) of particles X (N, Nx)
    with normalised log-weights (the reliability-weights correction ``1 / (1 - sum w^2)``).
    With all weight on one particle the unweighted covariance is returned (as DAPPER)."""
    w = jnp.exp(log_w)
    degenerate = (1.0 - jnp.max(w)) < 1e-10
    w = jnp.where(degenerate, jnp.full_like(w, 1.0 / w.shape[0]), w)
    mu = w @ X
    A = X - mu
    unbias = 1.0 / (1.0 - jnp.sum(w ** 2))
    return mu, unbias * (A * w[:, None]).T @ A


def regularisation_bandwidth(n: int, nx: int) -> float:
    """Scott's rule-of-thumb kernel bandwidth ``N^(-1/(Nx + 4))`` (not squared)."""
    return float(n) ** (-1.0 / (nx + 4))


def _diag_gaussian_loglik(y, m, r, yhat):
    """sum over used entries of log N(y; yhat, r) (diagonal)."""
    z = (y - yhat) ** 2 / r + jnp.log(r) + _LOG_2PI
    return -0.5 * jnp.sum(jnp.where(m, z, 0.0), axis=-1)


def particle_filter(key, model: Callable, particles, observations, obs_var=None,
                    obs_operator: Optional[Callable] = None, *, proposal=Bootstrap(),
                    threshold: float = 1.0, resampling: str = "systematic",
                    regularisation: float = 0.0, jitter_duplicates_only: bool = True,
                    shrinkage: bool = False, model_noise=None, obs_mask=None, inputs=None,
                    log_weights=None, postprocess: Optional[Callable] = None,
                    store: bool = False) -> PFResult:
    """Cycle a particle filter over T observation times (module docstring).

    Parameters
    ----------
    key : PRNG key (``jax.random.key``); a fixed key makes the run deterministic.
    model : ``model(particle, inputs_k) -> particle`` for one cycle (deterministic part).
    particles : initial particles, pytree with leading axis N (equal weights unless
        ``log_weights`` is given).
    observations : :class:`~assimilation.observations.Observations` (T, Ny), or a (T, Ny)
        array (NaN = missing) with ``obs_var``.
    obs_var : (Ny,) or (T, Ny) observation-error variances (array form only).
    obs_operator : ``h(particle) -> (Ny,)``.
    proposal : :class:`Bootstrap` or :class:`OptimalProposal`.
    threshold : resample when ``N_eff <= threshold * N`` (1.0: every cycle; 0: never).
    resampling : "systematic" or "multinomial".
    regularisation : kernel width factor ``reg`` (0: no jitter), scalar or (Nx,) per
        flattened variable (0 entries are not jittered).
    jitter_duplicates_only : jitter only particles that were duplicated by the resampling
        (DAPPER's ``nuj``); must be False with ``shrinkage``.
    shrinkage : Liu & West (2001) kernel shrinkage towards the weighted mean before the
        jitter (module docstring, item 5); needs ``regularisation``.
    model_noise : additive Gaussian model-noise sd of the bootstrap proposal, scalar or
        (Nx,) (flattened order), or None (deterministic model). The optimal proposal takes
        its noise from ``proposal.model_noise_cov``.
    obs_mask : optional (T, Ny) 0/1 mask (combined with an Observations' mask).
    inputs : optional pytree with leading axis T passed to ``model``.
    log_weights : optional (N,) initial log-weights.
    postprocess : optional ``postprocess(particles) -> particles`` (pytree with leading
        axis N) applied at the end of every cycle (e.g. clipping to bounds).
    store : keep the particles and log-weights of every cycle.
    """
    observations, obs_var, obs_operator, obs_mask = unpack_observations(
        "particle_filter", observations, obs_var, obs_operator, obs_mask)
    if resampling not in RESAMPLERS:
        raise ValueError(f"resampling must be one of {sorted(RESAMPLERS)}, got {resampling!r}")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1] (fraction of N), got {threshold}")
    if isinstance(proposal, OptimalProposal) and model_noise is not None:
        raise ValueError("OptimalProposal takes the model noise from model_noise_cov; "
                         "leave model_noise=None.")
    jitter = not _is_zero(regularisation)
    if shrinkage and not jitter:
        raise ValueError("shrinkage=True needs a regularisation kernel (regularisation > 0).")
    if shrinkage and jitter_duplicates_only:
        raise ValueError("shrinkage=True jitters every resampled particle; pass "
                         "jitter_duplicates_only=False.")
    return _particle_filter(key, model, particles, observations, obs_var, obs_operator,
                            proposal=proposal, threshold=threshold, resampling=resampling,
                            regularisation=regularisation, jitter=jitter,
                            jitter_duplicates_only=jitter_duplicates_only, shrinkage=shrinkage,
                            model_noise=model_noise, obs_mask=obs_mask, inputs=inputs,
                            log_weights=log_weights, postprocess=postprocess, store=store)


@partial(jax.jit, static_argnames=("model", "obs_operator", "resampling", "jitter",
                                   "jitter_duplicates_only", "shrinkage", "postprocess",
                                   "store"))
def _particle_filter(key, model, particles, observations, obs_var, obs_operator, *, proposal,
                     threshold, resampling, regularisation, jitter, jitter_duplicates_only,
                     shrinkage, model_noise, obs_mask, inputs, log_weights, postprocess,
                     store) -> PFResult:
    X0, unravel = flatten_ensemble(particles)
    n, nx = X0.shape
    dtype = X0.dtype
    T = observations.shape[0]
    y_all = jnp.asarray(observations, dtype)
    ny = y_all.shape[1]
    finite = jnp.isfinite(y_all)
    m_all = finite if obs_mask is None else finite & jnp.asarray(obs_mask).astype(bool)
    y_all = jnp.where(m_all, y_all, 0.0)
    r_all = jnp.where(m_all, jnp.broadcast_to(jnp.asarray(obs_var, dtype), (T, ny)), 1.0)
    h = lambda x: jnp.asarray(obs_operator(unravel(x)), dtype)  # noqa: E731
    lw0 = (jnp.full((n,), -math.log(n), dtype) if log_weights is None
           else _normalise(jnp.asarray(log_weights, dtype)))
    resample = RESAMPLERS[resampling]
    bandwidth = jnp.asarray(regularisation, dtype) * regularisation_bandwidth(n, nx)
    optimal = isinstance(proposal, OptimalProposal)
    if optimal:
        H = jnp.asarray(proposal.obs_matrix, dtype)
        Q = jnp.asarray(proposal.model_noise_cov, dtype)
        Q = jnp.diag(Q) if Q.ndim == 1 else Q

    def forecast(X, inp):
        return jax.vmap(lambda x: ravel_pytree(model(unravel(x), inp))[0].astype(dtype))(X)

    def cycle(carry, xs):
        X, lw, k = carry
        y, m, r, inp = xs
        k, k_prop, k_res, k_jit = jax.random.split(k, 4)
        Xf = forecast(X, inp)
        if optimal:
            Hm = jnp.where(m[:, None], H, 0.0)
            S = Hm @ Q @ Hm.T + jnp.diag(r)
            Ls = jnp.linalg.cholesky(S)
            K = jax.scipy.linalg.cho_solve((Ls, True), Hm @ Q).T          # (Nx, Ny)
            innov = jnp.where(m, y, 0.0) - Xf @ Hm.T                       # (N, Ny)
            Xn = Xf + innov @ K.T
            P = Q - K @ Hm @ Q
            Lp = jnp.linalg.cholesky(0.5 * (P + P.T) + 1e-12 * jnp.eye(nx, dtype=dtype))
            Xn = Xn + jax.random.normal(k_prop, (n, nx), dtype) @ Lp.T
            z = jax.scipy.linalg.solve_triangular(Ls, innov.T, lower=True)
            # masked entries: unit variance on a zero innovation, their constant removed
            inc = (-0.5 * jnp.sum(z ** 2, axis=0) - jnp.sum(jnp.log(jnp.diag(Ls)))
                   - 0.5 * jnp.sum(m.astype(dtype)) * _LOG_2PI)
        else:
            Xn = Xf
            if model_noise is not None:
                Xn = Xn + jnp.asarray(model_noise, dtype) * jax.random.normal(k_prop, (n, nx),
                                                                              dtype)
            inc = jax.vmap(lambda x: _diag_gaussian_loglik(y, m, r, h(x)))(Xn)
        ok = jnp.isfinite(inc) & jnp.all(jnp.isfinite(Xn), axis=1)
        inc = jnp.where(ok, inc, -jnp.inf)
        lw_un = lw + inc
        ll = jax.nn.logsumexp(lw_un)
        lw_a = _normalise(lw_un)
        ess = effective_sample_size(lw_a)
        w = jnp.exp(lw_a)
        Xn = jnp.where(ok[:, None], Xn, 0.0)     # zero-weight rows: no NaN in the moments
        mean = w @ Xn
        sd = jnp.sqrt(jnp.maximum(w @ (Xn - mean) ** 2, 0.0))
        do = ess <= threshold * n

        def resampled(_):
            idx = resample(k_res, lw_a)
            Xr = Xn[idx]
            if not jitter:          # no regularisation: skip the kernel covariance
                return Xr, jnp.full((n,), -math.log(n), dtype)
            _, C = weighted_mean_and_cov(Xn, lw_a)
            L = jnp.linalg.cholesky(C + 1e-12 * jnp.trace(C) / nx * jnp.eye(nx, dtype=dtype)
                                    + jnp.finfo(dtype).tiny * jnp.eye(nx, dtype=dtype))
            eps = jax.random.normal(k_jit, (n, nx), dtype) @ L.T * bandwidth
            if shrinkage:           # Liu & West (2001): a x + (1 - a) xbar, a^2 + b^2 = 1
                a = jnp.sqrt(jnp.clip(1.0 - bandwidth ** 2, 0.0, 1.0))
                Xr = a * Xr + (1.0 - a) * mean
            elif jitter_duplicates_only:
                dup = (idx == jnp.roll(idx, 1)) | (idx == jnp.roll(idx, -1))
                eps = jnp.where(dup[:, None], eps, 0.0)
            return Xr + eps, jnp.full((n,), -math.log(n), dtype)

        Xo, lwo = jax.lax.cond(do, resampled, lambda _: (Xn, lw_a), None)
        if postprocess is not None:
            Xo = flatten_ensemble(postprocess(unflatten_ensemble(Xo, unravel)))[0].astype(dtype)
        out = (mean, sd, ess, do, ll) + ((Xo, lwo) if store else ())
        return (Xo, lwo, k), out

    (X, lw, _), outs = jax.lax.scan(cycle, (X0, lw0, key), (y_all, m_all, r_all, inputs))
    mean, sd, ess, res, ll = outs[:5]
    stored = outs[5:] if store else (None, None)
    return PFResult(mean, sd, ess, res, ll, unflatten_ensemble(X, unravel), lw, *stored)
