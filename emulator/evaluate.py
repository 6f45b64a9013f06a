"""Evaluation of emulators against their process model.

* :func:`regression_metrics`: R2 = 1 - SSE/SST (the coefficient of determination, not the
  squared correlation), RMSE and bias (emulator - process model), per output.
* :func:`gradient_agreement`: gradients of scalar objectives with respect to the
  parameters, emulator vs process model, per parameter set: cosine similarity and
  relative error ||g_e - g_p|| / ||g_p||. Gradients are taken in unit-box coordinates
  (d/du with theta = lower + u (upper - lower)), so parameters with large units (PAR0 in
  umol m-2 s-1) do not dominate the cosine.
* :func:`time_call`: median wall time of a jitted call (block_until_ready), for the
  speed-up table.
* :func:`rollout_metrics`: free-rollout skill of a step emulator per state and flux.
"""
from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd


def regression_metrics(pred, true) -> dict:
    """R2 (1 - SSE/SST), RMSE, bias, n over finite pairs."""
    p, t = np.asarray(pred, float).ravel(), np.asarray(true, float).ravel()
    ok = np.isfinite(p) & np.isfinite(t)
    p, t = p[ok], t[ok]
    sst = np.sum((t - t.mean()) ** 2)
    return {"n": int(p.size), "r2": float(1 - np.sum((p - t) ** 2) / sst) if sst > 0 else np.nan,
            "rmse": float(np.sqrt(np.mean((p - t) ** 2))), "bias": float(np.mean(p - t))}


def metrics_table(pred: dict, true: dict, **labels) -> pd.DataFrame:
    """One row per output name present in both dicts."""
    return pd.DataFrame([{**labels, "output": k, **regression_metrics(pred[k], true[k])}
                         for k in pred if k in true])


def gradient_agreement(objective_emulator, objective_process, unit_points, space) -> pd.DataFrame:
    """Cosine similarity and relative error of d objective / d u at ``unit_points``
    (n, d) in the unit box of ``space`` (``objective_*(theta (d,)) -> scalar``)."""
    lo, hi = jnp.asarray(space.lower), jnp.asarray(space.upper)
    lg = jnp.asarray(space.log)

    def to_theta(u):
        lin = lo + u * (hi - lo)
        logv = jnp.exp(jnp.log(jnp.where(lg, lo, 1.0)) + u * (jnp.log(jnp.where(lg, hi, 2.0))
                                                             - jnp.log(jnp.where(lg, lo, 1.0))))
        return jnp.where(lg, logv, lin)

    ge = jax.jit(jax.vmap(jax.grad(lambda u: objective_emulator(to_theta(u)))))(jnp.asarray(unit_points))
    gp = jax.jit(jax.vmap(jax.grad(lambda u: objective_process(to_theta(u)))))(jnp.asarray(unit_points))
    ge, gp = np.asarray(ge, float), np.asarray(gp, float)
    cos = np.sum(ge * gp, 1) / (np.linalg.norm(ge, axis=1) * np.linalg.norm(gp, axis=1) + 1e-30)
    rel = np.linalg.norm(ge - gp, axis=1) / (np.linalg.norm(gp, axis=1) + 1e-30)
    df = pd.DataFrame({"cosine": cos, "relative_error": rel})
    for i, n in enumerate(space.names):
        df[f"d_{n}_emulator"], df[f"d_{n}_process"] = ge[:, i], gp[:, i]
    return df


def time_call(fn, *args, repeats: int = 20) -> float:
    """Median seconds of ``fn(*args)`` (already jitted; compiled by a first call)."""
    jax.block_until_ready(fn(*args))
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*args))
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def rollout_metrics(pred_states, true_states, pred_fluxes: dict, true_fluxes: dict,
                    state_names, **labels) -> pd.DataFrame:
    """Skill of a free rollout: per state component and per flux."""
    rows = [{**labels, "output": n, **regression_metrics(np.asarray(pred_states)[..., i],
                                                         np.asarray(true_states)[..., i])}
            for i, n in enumerate(state_names)]
    rows += [{**labels, "output": k, **regression_metrics(pred_fluxes[k], true_fluxes[k])}
             for k in pred_fluxes if k in true_fluxes]
    return pd.DataFrame(rows)
