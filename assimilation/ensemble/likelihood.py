"""Ensemble-filter likelihood for static-parameter inference.

Per cycle the Gaussian approximation of the predictive density of the observations
(e.g. Evensen 2009, ch. 10; cd_dynamax ``ensemble_kalman_filter``):

    log p(y_k | y_{1:k-1}, theta) ~ log N(y_k; ybar_f, Y_f Y_f^T/(N-1) + R),

evaluated in ensemble space with the matrix determinant lemma and Woodbury identity
(O(N^2 Ny), masked observations excluded). Summed over cycles it is a (biased for small
N, consistent as N -> inf) estimate of log p(y_{1:T} | theta). With a *fixed* PRNG key
(common random numbers) it is a smooth deterministic function of theta, so it can be
used as a NumPyro factor for SVI/NUTS, or with a fresh key per evaluation for
pseudo-marginal MCMC.
"""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp

from .analysis import gaussian_log_likelihood, obs_space
from .cycling import ensemble_filter

__all__ = ["ensemble_log_likelihood", "filter_log_likelihood", "numpyro_factor"]


def ensemble_log_likelihood(predicted_obs, obs, obs_var, mask=None):
    """log N(y; mean(Y), cov(Y) + R) from predicted observations ``Y`` (N, Ny) of the
    forecast ensemble; obs_var (Ny,) or (Ny, Ny); masked/NaN observations excluded."""
    return gaussian_log_likelihood(obs_space(predicted_obs, obs, obs_var, mask))


def filter_log_likelihood(key, model: Callable, ensemble, observations, obs_var=None,
                          obs_operator: Callable | None = None, **filter_kwargs):
    """Total log-likelihood sum_k log p(y_k | y_{1:k-1}) of an ensemble filter run
    (arguments as :func:`~assimilation.ensemble.cycling.ensemble_filter`, also with
    ``Observations``)."""
    res = ensemble_filter(key, model, ensemble, observations, obs_var, obs_operator,
                          **filter_kwargs)
    return jnp.sum(res.log_likelihood)


def numpyro_factor(name: str, key, model: Callable, ensemble, observations, obs_var=None,
                   obs_operator: Callable | None = None, **filter_kwargs):
    """Add the ensemble-filter log-likelihood to a NumPyro model as ``numpyro.factor``.

    Example::

        def model(obs):
            forcing = numpyro.sample("F", dist.Normal(8.0, 2.0))
            step = lambda x, _: lorenz96.step(x, 0.05, forcing)
            numpyro_factor("enkf", jax.random.key(0), step, ens0, obs, 1.0, h)
    """
    import numpyro

    ll = filter_log_likelihood(key, model, ensemble, observations, obs_var, obs_operator,
                               **filter_kwargs)
    numpyro.factor(name, ll)
    return ll
