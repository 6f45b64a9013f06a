"""MAP by L-BFGS-B and the Laplace approximation in the unconstrained space of a
:class:`~assimilation.calibration.ParameterSubset`, for models too costly for NUTS.

The unknowns are ``x = [s, h]``: ``s`` (P,) the unconstrained values of the calibrated
parameters (``theta = subset.to_physical(s)``, always inside the table bounds) and ``h``
(H,) unconstrained error-model hyperparameters (e.g. ``h = log sigma_disc``) with
independent normal priors. The log posterior is

    log p(x | y) = log p_subset(s) + sum_j log N(h_j; m_j, sd_j) + log L(params(s), h) + c

(``ParameterSubset.log_prior`` includes the log-Jacobian of the map). The MAP is found by
L-BFGS-B (Byrd et al. 1995, SIAM J. Sci. Comput. 16, 1190; SciPy) on the jitted value and
exact gradient; the Laplace approximation (Tierney & Kadane 1986, JASA 81, 82; MacKay 2003,
ch. 27) is the Gaussian N(x_map, H^-1) with H the Hessian of -log p at the MAP, here by
central differences of the exact gradient (2 (P + H) gradients; eigenvalues floored so the
covariance is positive definite). Draws of ``s`` map to parameters inside the bounds.

:func:`discrepancy_log_likelihood` is the usual likelihood of such fits: Gaussian on
operator outputs (e.g. daily means at the observed hours) with the stream's random-error
variance plus a calibrated discrepancy variance ``exp(2 h_j)`` per stream (Kennedy &
O'Hagan 2001, JRSS B 63, 425).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from process_models.interface import output

from .error_models import FluxObservations, gaussian_log_likelihood
from .subset import ParameterSubset

__all__ = ["Hyperparameter", "LaplaceFit", "SubsetPosterior", "discrepancy_log_likelihood",
           "fit_laplace", "laplace_covariance", "lbfgsb_map", "rms_residual_start"]


@dataclass(frozen=True)
class Hyperparameter:
    """An unconstrained error-model parameter ``h ~ Normal(loc, scale)``; its physical
    value is ``exp(h)`` (``transform="log"``) or ``h``. ``unit``: of the physical value."""

    name: str
    loc: float
    scale: float
    unit: str = ""
    transform: str = "log"

    def to_physical(self, h):
        return np.exp(h) if self.transform == "log" else h

    def quantile(self, q: float) -> float:
        """Prior quantile of the physical value."""
        from scipy.stats import norm
        return float(self.to_physical(self.loc + self.scale * norm.ppf(q)))


class SubsetPosterior:
    """Jitted log posterior of ``x = [s, h]`` (module docstring).

    Parameters
    ----------
    subset : the calibrated parameters.
    base_params : the model's parameter pytree; ``subset.apply(base_params, s)`` is passed
        to the likelihood.
    log_likelihood : ``(params, h) -> scalar`` log likelihood (pure, differentiable).
    hyper : the hyperparameters (their order is the order of ``h``).

    Attributes ``log_post(x)`` and ``neg_value_and_grad(x) -> (-log p, -grad)`` are jitted.
    """

    def __init__(self, subset: ParameterSubset, base_params, log_likelihood: Callable,
                 hyper: Sequence[Hyperparameter] = ()):
        self.subset, self.base_params, self.hyper = subset, base_params, tuple(hyper)
        P = subset.size
        loc = jnp.asarray([hp.loc for hp in self.hyper], float)
        scale = jnp.asarray([hp.scale for hp in self.hyper], float)

        def log_post(x):
            s, h = x[:P], x[P:]
            lp = subset.log_prior(s)
            for j in range(len(self.hyper)):
                lp += -0.5 * ((h[j] - loc[j]) / scale[j]) ** 2
            return lp + log_likelihood(subset.apply(base_params, s), h)

        self.log_post = jax.jit(log_post)
        self.neg_value_and_grad = jax.jit(jax.value_and_grad(lambda x: -log_post(x)))

    @property
    def size(self) -> int:
        return self.subset.size + len(self.hyper)

    def x0(self) -> np.ndarray:
        """Start: the subset's table defaults and the hyperparameters' prior means."""
        s0 = np.asarray(self.subset.to_unconstrained(self.subset.defaults))
        return np.concatenate([s0, [hp.loc for hp in self.hyper]]).astype(float)

    def to_physical(self, x) -> np.ndarray:
        """(..., P + H) unconstrained -> physical parameters and hyperparameters."""
        x = np.asarray(x)
        P = self.subset.size
        theta = np.asarray(self.subset.to_physical(jnp.asarray(x[..., :P])))
        hyp = [hp.to_physical(x[..., P + j]) for j, hp in enumerate(self.hyper)]
        return np.concatenate([theta] + [np.asarray(v)[..., None] for v in hyp], axis=-1)

    def sensitivity(self, x) -> np.ndarray:
        """Local sensitivity of the calibrated parameters at ``x``: d(-log p)/dt x prior sd
        (t the transformed parameter: log theta for log-normal priors), shape (P,)."""
        P = self.subset.size
        _, g = self.neg_value_and_grad(jnp.asarray(x))
        lo, hi = self.subset.t_bounds
        sg = jax.nn.sigmoid(np.asarray(x)[:P])
        return np.asarray(g[:P]) / ((hi - lo) * sg * (1 - sg)) * self.subset.scale


def lbfgsb_map(posterior: SubsetPosterior, x0, *, maxiter: int, bound: float = 5.0):
    """MAP by SciPy L-BFGS-B on ``posterior.neg_value_and_grad``, each unconstrained
    coordinate in ``[-bound, bound]`` (sigmoid(5) = 0.993 of the parameter box).

    Returns ``(x_map, history of -log p at every evaluation, scipy OptimizeResult)``."""
    from scipy.optimize import minimize
    hist = []

    def f(x):
        v, g = posterior.neg_value_and_grad(jnp.asarray(x))
        hist.append(float(v))
        return float(v), np.asarray(g, float)

    x0 = np.asarray(x0, float)
    res = minimize(f, x0, jac=True, method="L-BFGS-B", bounds=[(-bound, bound)] * len(x0),
                   options={"maxiter": maxiter, "maxfun": int(maxiter * 1.5) + 2})
    return np.asarray(res.x), hist, res


def laplace_covariance(posterior: SubsetPosterior, x_map, *, step: float = 1e-3,
                       eig_floor: float = 1e-6):
    """Covariance of the Laplace approximation at ``x_map``: the inverse of the Hessian of
    -log p (central differences of the exact gradient with ``step``, symmetrised,
    eigenvalues floored at ``eig_floor``). Returns ``(covariance, hessian)``."""
    x_map = np.asarray(x_map, float)
    n = len(x_map)
    H = np.zeros((n, n))
    for i in range(n):                      # 2 gradients per unknown
        e = np.zeros(n)
        e[i] = step
        gp = np.asarray(posterior.neg_value_and_grad(jnp.asarray(x_map + e))[1])
        gm = np.asarray(posterior.neg_value_and_grad(jnp.asarray(x_map - e))[1])
        H[i] = (gp - gm) / (2 * step)
    H = 0.5 * (H + H.T)
    w, V = np.linalg.eigh(H)
    w = np.maximum(w, eig_floor)
    return (V / w) @ V.T, H


def discrepancy_log_likelihood(model, forcing, operator: Callable,
                               streams: Sequence[FluxObservations], *, initial_state=None) -> Callable:
    """``(params, h) -> sum_j log N(y_j; H(f)_j, sigma_j^2 + exp(2 h_j))``.

    ``f = model.simulate(params, forcing, initial_state)``, ``H = operator`` (outputs ->
    outputs at the observation times, e.g. :func:`assimilation.calibration.operators.period_mean`
    of each observed variable), ``y_j`` the stream observing ``H(f).<stream.variable>``
    with its random-error sd (none: 0) and ``h_j`` the log discrepancy sd of stream j."""
    streams = tuple(streams)

    def log_likelihood(params, h):
        pred = operator(model.simulate(params, forcing, initial_state))
        ll = 0.0
        for j, o in enumerate(streams):
            ll += gaussian_log_likelihood(output(pred, o.variable), o, jnp.exp(2 * h[j]))
        return ll
    return log_likelihood


def rms_residual_start(predicted: dict, streams: Sequence[FluxObservations | None], default, *,
                       floor: float = 0.1, min_used: int = 3) -> np.ndarray:
    """Start values of log discrepancy sds: ``log max(RMS(f - y), floor)`` of each stream
    over its used records, given the predictions ``predicted[stream.variable]`` of the
    start parameters; ``default[j]`` where stream j is None or has <= ``min_used``
    records. (A start at the prior median can make the first L-BFGS steps overshoot.)"""
    h = np.array(default, float)
    for j, o in enumerate(streams):
        if o is not None and o.n_used > min_used:
            ok = np.asarray(o.mask)
            r = np.asarray(output(predicted, o.variable))[ok] - np.asarray(o.values)[ok]
            h[j] = np.log(max(np.sqrt(np.mean(r ** 2)), floor))
    return h


@dataclass
class LaplaceFit:
    """Result of :func:`fit_laplace`: start, MAP, -log p at every MAP evaluation, Laplace
    covariance (NaN when not computed), sensitivity at the start
    (:meth:`SubsetPosterior.sensitivity`) and wall times in seconds."""

    x0: np.ndarray
    x_map: np.ndarray
    history: list
    covariance: np.ndarray
    sensitivity: np.ndarray
    timings: dict = field(default_factory=dict)

    @property
    def has_covariance(self) -> bool:
        return bool(np.isfinite(self.covariance).all())

    def draws(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n, P + H) unconstrained draws of the Laplace posterior (the MAP alone, (1, P + H),
        without a covariance)."""
        if not self.has_covariance or n < 1:
            return self.x_map[None]
        return rng.multivariate_normal(self.x_map, self.covariance, size=n)


def fit_laplace(posterior: SubsetPosterior, x0, *, maxiter: int, laplace: bool = True,
                checkpoint: str | Path | None = None, key: str = "", log: Callable = print) -> LaplaceFit:
    """MAP by :func:`lbfgsb_map` from ``x0``, then the Laplace covariance
    (:func:`laplace_covariance`) when ``laplace``; times the first (compiling) and a
    repeated gradient. With ``checkpoint`` (``.npz``) the fit is saved, and a later call
    with the same ``key`` (a string naming the problem) loads it without compiling."""
    ck = None if checkpoint is None else Path(checkpoint)
    if ck is not None and ck.exists():
        z = np.load(ck, allow_pickle=True)
        if str(z["key"]) == key:
            log(f"resumed MAP/Laplace from {ck.name}")
            return LaplaceFit(z["x0"], z["x_map"], list(z["hist"]), z["cov"], z["sens"], z["timings"].item())
    x0 = np.asarray(x0, float)
    timings = {}
    t0 = time.time()
    v0 = float(posterior.neg_value_and_grad(jnp.asarray(x0))[0])
    timings["compile+first gradient (s)"] = time.time() - t0
    t0 = time.time()
    jax.block_until_ready(posterior.neg_value_and_grad(jnp.asarray(x0)))
    timings["one gradient (s)"] = time.time() - t0
    sens = posterior.sensitivity(x0)
    log(f"-log post at the start {v0:.1f}; gradient {timings['one gradient (s)']:.1f} s")
    t0 = time.time()
    x_map, hist, _ = lbfgsb_map(posterior, x0, maxiter=maxiter)
    timings["MAP (s)"] = time.time() - t0
    log(f"MAP {timings['MAP (s)']:.0f} s, {len(hist)} evaluations, -log post {hist[0]:.1f} -> {min(hist):.1f}")
    cov = np.full((len(x0), len(x0)), np.nan)
    if laplace:
        t0 = time.time()
        cov, _ = laplace_covariance(posterior, x_map)
        timings["Laplace (s)"] = time.time() - t0
        log(f"Laplace {timings['Laplace (s)']:.0f} s")
    fit = LaplaceFit(x0, x_map, hist, cov, sens, timings)
    if ck is not None:
        ck.parent.mkdir(parents=True, exist_ok=True)
        np.savez(ck, key=key, x0=x0, x_map=x_map, hist=np.asarray(hist), cov=cov, sens=sens,
                 timings=np.asarray(timings, dtype=object))
    return fit
