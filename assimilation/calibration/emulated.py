"""Emulator-accelerated calibration: sample on a cheap surrogate, then correct against
the process model by importance reweighting.

With draws theta_i from the surrogate posterior q(theta | y) (NUTS on a model built with
the surrogate's ``model_fn``), the process-model posterior p(theta | y) is reached with
importance weights

    log w_i = log p(y, theta_i) - log q(y, theta_i)

(both joint densities in the same coordinates, so Jacobians cancel). The raw weights are
stabilised by Pareto-smoothed importance sampling (PSIS; Vehtari et al. 2024, JMLR 25,
1-58): k-hat < 0.7 means the correction is reliable; above it the surrogate is too far
from the process model and a short final NUTS run on the process model is needed. The
effective sample size of the weights is ESS = 1 / sum(w_i^2) for normalised w.

The report gives, per parameter, surrogate and reweighted posterior mean and sd and their
difference in surrogate-sd units: how much the emulator moved the answer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import arviz as az
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from numpyro.infer.util import log_density

from .inference import run_nuts


def joint_log_density(model: Callable, model_kwargs: dict | None = None) -> Callable:
    """Jitted, vmapped ``{latent site: (n,) values} -> (n,) log joint density``."""
    kw = model_kwargs or {}

    def one(params):
        return log_density(model, (), kw, params)[0]
    return jax.jit(jax.vmap(one))


@dataclass
class ReweightResult:
    """Importance-reweighting result: normalised weights (n,), PSIS k-hat, ESS of the
    weights, and the comparison table (parameter, surrogate/reweighted mean and sd,
    shift in surrogate sd)."""

    weights: np.ndarray
    k_hat: float
    ess: float
    table: pd.DataFrame

    @property
    def reliable(self) -> bool:
        return self.k_hat < 0.7


def importance_reweight(surrogate_model: Callable, process_model: Callable, latent: dict,
                        physical: dict | None = None, *, model_kwargs: dict | None = None,
                        batch: int = 500) -> ReweightResult:
    """Reweight surrogate-posterior draws towards the process-model posterior.

    latent : latent site -> (n,) draws (the sites both models sample, e.g. ``log_lam``).
    physical : parameter -> (n,) draws to summarise (default: ``latent``).
    """
    lat = {k: jnp.asarray(np.asarray(v).reshape(-1)) for k, v in latent.items()}
    n = next(iter(lat.values())).shape[0]
    lp_p, lp_q = joint_log_density(process_model, model_kwargs), joint_log_density(surrogate_model, model_kwargs)
    lw = []
    for i in range(0, n, batch):    # batches of draws bound the memory of the vmapped model
        sl = {k: v[i:i + batch] for k, v in lat.items()}
        lw.append(np.asarray(lp_p(sl)) - np.asarray(lp_q(sl)))
    lw = np.concatenate(lw)
    lw = np.where(np.isfinite(lw), lw, -np.inf)
    if np.ptp(lw) < 1e-10:                       # identical models: uniform weights
        slw, k_hat = np.zeros_like(lw), 0.0
    else:
        slw, k_hat = az.psislw(lw - lw.max())
    w = np.exp(np.asarray(slw) - np.max(slw))
    w /= w.sum()
    ess = float(1.0 / np.sum(w ** 2))
    phys = physical if physical is not None else latent
    rows = []
    for k, v in phys.items():
        v = np.asarray(v).reshape(-1)
        m0, s0 = float(v.mean()), float(v.std())
        m1 = float(np.sum(w * v))
        s1 = float(np.sqrt(np.sum(w * (v - m1) ** 2)))
        rows.append({"parameter": k, "surrogate_mean": m0, "surrogate_sd": s0,
                     "reweighted_mean": m1, "reweighted_sd": s1,
                     "shift_in_sd": (m1 - m0) / s0 if s0 > 0 else 0.0})
    return ReweightResult(weights=w, k_hat=float(k_hat), ess=ess, table=pd.DataFrame(rows))


def calibrate_with_surrogate(surrogate_model: Callable, process_model: Callable, key, *,
                             names=None, **nuts_kwargs):
    """NUTS on the surrogate, then :func:`importance_reweight` against the process model.

    Returns ``(NUTSResult on the surrogate, ReweightResult)``. ``names``: physical
    parameters to summarise (default: the surrogate model's ``param_spec``).
    """
    res = run_nuts(surrogate_model, key, **nuts_kwargs)
    spec = getattr(surrogate_model, "param_spec", {})
    latent = {p.latent_name: res.samples[p.latent_name] for p in spec.values()}
    names = list(spec) if names is None else names
    phys = {n: res.samples[n] for n in names}
    return res, importance_reweight(surrogate_model, process_model, latent, phys)
