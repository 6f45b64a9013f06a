"""Simulation-based calibration (SBC; Talts et al. 2018, arXiv:1804.06788).

If data are simulated from the model's own prior predictive, theta* ~ p(theta),
y ~ p(y | theta*), and the inference returns exact posterior draws theta_1..L, then the
rank r = #{l : theta_l < theta*} is uniform on {0, ..., L}. Departures reveal bias
(slanted histogram), over-confidence (U shape) or under-confidence (hump).

Vectorised SBC: the N replicates are independent, so their joint posterior is the
product of the N single-replicate posteriors. :func:`replicated_model` writes that
product as *one* NumPyro model (parameters with a leading replicate axis under a
``numpyro.plate``, the model vmapped over it), and one NUTS run samples all replicates
at once (a diagonal mass matrix adapts per replicate and parameter). Each replicate's
marginal draws are exact posterior draws of its own problem, which is all SBC needs.

Uniformity test: ranks are binned into ``n_bins`` equal bins of {0..L} (L + 1 must be a
multiple of ``n_bins``) and compared with the uniform by Pearson's chi-square; the test
passes at level ``alpha`` per parameter.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
from numpyro.infer import Predictive
from scipy import stats

from process_models.interface import output
from .error_models import ErrorModel, FluxObservations
from .inference import run_nuts
from .priors import ParamPrior


def replicated_model(model_fn: Callable, param_spec: dict[str, ParamPrior],
                     observations: FluxObservations, error_model: ErrorModel,
                     n_replicates: int) -> Callable:
    """Product of ``n_replicates`` independent single-site problems sharing the forcing
    and the observation mask: ``model(obs_values=None, observed=True)`` with
    ``obs_values`` of shape (n_replicates, T)."""
    def model(obs_values=None, observed=True):
        with numpyro.plate("replicate", n_replicates):
            theta = {n: p.sample() for n, p in param_spec.items()}
        out = jax.vmap(model_fn)(theta)
        o = observations
        if obs_values is not None:
            o = o.replace(values=jnp.where(o.mask, obs_values, 0.0))
        with numpyro.plate("replicate", n_replicates):
            error_model.observe(f"obs_{o.variable}", output(out, o.variable), o, observed=observed)
    model.param_spec = param_spec
    return model


@dataclass
class SBCResult:
    """Ranks (n_replicates, n_params), the number of posterior draws per rank ``L``,
    the true values, chi-square statistics and p-values per parameter."""

    names: list
    ranks: np.ndarray
    L: int
    truth: np.ndarray
    chi2: np.ndarray
    p_values: np.ndarray
    n_bins: int

    def passed(self, alpha: float) -> bool:
        return bool(np.all(self.p_values > alpha))


def rank_uniformity(ranks: np.ndarray, L: int, n_bins: int):
    """Pearson chi-square of binned ranks against the uniform on {0..L}, per column."""
    ranks = np.asarray(ranks)
    if (L + 1) % n_bins:
        raise ValueError(f"L + 1 = {L + 1} must be a multiple of n_bins = {n_bins}.")
    width = (L + 1) // n_bins
    chi2, p = [], []
    for col in ranks.reshape(ranks.shape[0], -1).T:
        counts = np.bincount(col // width, minlength=n_bins)
        c, pv = stats.chisquare(counts)
        chi2.append(c)
        p.append(pv)
    return np.asarray(chi2), np.asarray(p)


def run_sbc(model_fn: Callable, param_spec: dict[str, ParamPrior], observations: FluxObservations,
            error_model: ErrorModel, key, *, n_replicates: int = 100, L: int = 99,
            thin: int = 4, num_warmup: int = 500, n_bins: int = 10,
            fit_error_model: ErrorModel | None = None, progress_bar: bool = False) -> SBCResult:
    """Vectorised SBC of NUTS on a model (see module docstring).

    ``fit_error_model`` (default: ``error_model``) is the likelihood used for fitting;
    giving a different one (e.g. too small a sigma) shows what a miscalibrated inference
    looks like. Posterior: one chain of ``num_warmup`` + ``L * thin`` draws, thinned by
    ``thin`` to ``L`` draws per replicate.
    """
    k_sim, k_fit = jax.random.split(key)
    sim = replicated_model(model_fn, param_spec, observations, error_model, n_replicates)
    prior = Predictive(sim, num_samples=1)(k_sim, observed=False)
    y = prior[f"obs_{observations.variable}"][0]
    fit = replicated_model(model_fn, param_spec, observations, fit_error_model or error_model,
                           n_replicates)
    res = run_nuts(fit, k_fit, num_warmup=num_warmup, num_samples=L * thin, num_chains=1,
                   progress_bar=progress_bar, model_kwargs={"obs_values": y})
    names = list(param_spec)
    truth = np.stack([np.asarray(prior[n][0]) for n in names], axis=-1)          # (N, P)
    draws = np.stack([res.samples[n][0, thin - 1::thin] for n in names], axis=-1)  # (L, N, P)
    ranks = (draws < truth[None]).sum(0)
    chi2, p = rank_uniformity(ranks, L, n_bins)
    return SBCResult(names=names, ranks=ranks, L=L, truth=truth, chi2=chi2, p_values=p,
                     n_bins=n_bins)


def plot_rank_histograms(result: SBCResult, path):
    """Rank histograms with the 99 % band of the uniform (binomial) per bin."""
    import matplotlib.pyplot as plt
    n, b = result.ranks.shape[0], result.n_bins
    lo, hi = stats.binom.ppf([0.005, 0.995], n, 1 / b)
    fig, axes = plt.subplots(1, len(result.names), figsize=(3.2 * len(result.names), 2.8))
    for ax, name, col, p in zip(np.atleast_1d(axes), result.names, result.ranks.T, result.p_values):
        ax.axhspan(lo, hi, color="grey", alpha=0.3)
        ax.hist(col, bins=np.linspace(0, result.L + 1, b + 1), color="C0", edgecolor="w")
        ax.set(title=f"{name} (chi2 p = {p:.2f})", xlabel="rank")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path
