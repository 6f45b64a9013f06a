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

from dataclasses import dataclass
from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from process_models.interface import output

from .error_models import FluxObservations, gaussian_log_likelihood
from .subset import ParameterSubset

__all__ = ["Hyperparameter", "SubsetPosterior", "discrepancy_log_likelihood", "laplace_covariance",
           "lbfgsb_map"]


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
