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
* held-out experiments of the emulator study: :func:`pointwise_skill` and
  :func:`simulate_skill` (VPRM surrogate on new parameters / a new site), the parameter
  gradients of calibration-like objectives (:func:`vprm_gradient_table`), speed
  (:func:`vprm_speed_table`, :func:`rollout_speed_table`) and free rollouts of stateful
  surrogates on held-out years (:func:`rollout_skill`).
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


def table_dict(table: pd.DataFrame, columns=("r2", "rmse", "bias")) -> dict:
    """``{output: {r2, rmse, bias}}`` of a metrics table (one experiment)."""
    return {r["output"]: {c: float(r[c]) for c in columns} for _, r in table.iterrows()}


# ------------------------------------------------------------------- VPRM surrogate
def pointwise_skill(surrogate, x, model=None, **labels):
    """The pointwise network of a :class:`~emulator.surrogate.VPRMSurrogate` against the
    targets of ``model.simulate`` (:func:`~emulator.generate.vprm_targets`) on raw inputs
    ``x`` (n_sets, points, 18). Returns (metrics table, predictions, targets) (dicts of
    gpp/reco/nee, umol m-2 s-1)."""
    from .generate import vprm_targets
    x = jnp.asarray(x)
    gpp, reco = (np.asarray(a) for a in vprm_targets(x, model))
    pred = {k: np.asarray(v) for k, v in jax.jit(surrogate.network(x.dtype))(x).items()}
    true = {"gpp": gpp, "reco": reco, "nee": reco - gpp}
    return metrics_table(pred, true, **labels), pred, true


def simulate_skill(surrogate, model, params, forcing, outputs=("gpp", "reco", "nee"), **labels):
    """Jitted ``simulate(params, forcing)`` of a surrogate against its process model (any
    two models of the interface with the same pytrees). Returns (metrics table, emulated,
    process-model outputs as dicts of arrays)."""
    from process_models.interface import output
    run = lambda m: jax.jit(m.simulate)(params, forcing)  # noqa: E731
    emulated, true = ({k: np.asarray(output(o, k)) for k in outputs} for o in (run(surrogate), run(model)))
    return metrics_table(emulated, true, **labels), emulated, true


VPRM_OBJECTIVES = {"mean_nee": "mean NEE", "mean_gpp": "mean GPP",
                   "nee_misfit": "NEE misfit to tower (calibration loss)"}
"""Scalar objectives of :func:`vprm_gradient_table` (key: label)."""


def vprm_gradient_table(surrogate, model, forcing, observed_nee, space, unit_points,
                        objectives=tuple(VPRM_OBJECTIVES), rules=(0.0, 0.0, 0.0)):
    """Parameter gradients of scalar objectives of a one-class VPRM run, surrogate vs
    ``model`` (both through ``simulate``), at ``unit_points`` (n, 8) of ``space``: the
    mean NEE, the mean GPP and the mean squared NEE misfit to ``observed_nee`` (NaN =
    missing) over ``forcing``; class rules ``rules`` (default: deciduous/mixed forest).
    Returns (summary table, {objective: per-point :func:`gradient_agreement` table})."""
    from .generate import vprm_class_params
    obs = jnp.asarray(np.nan_to_num(observed_nee))
    mask = jnp.asarray(np.isfinite(observed_nee).astype(float))
    rules = jnp.asarray(rules)

    def objective(run, key):
        def f(theta):
            out = run(vprm_class_params(model, rules, theta), forcing)
            if key == "mean_nee":
                return jnp.mean(out.nee)
            if key == "mean_gpp":
                return jnp.mean(out.gpp)
            return jnp.sum(mask * (out.nee - obs) ** 2) / jnp.sum(mask)
        return f

    rows, detail = [], {}
    for key in objectives:
        g = gradient_agreement(objective(surrogate.simulate, key), objective(model.simulate, key),
                               unit_points, space)
        detail[key] = g
        rows.append({"objective": VPRM_OBJECTIVES[key], "key": key, "median_cosine": float(g["cosine"].median()),
                     "p10_cosine": float(g["cosine"].quantile(0.1)),
                     "median_relative_error": float(g["relative_error"].median()), "n_parameter_sets": len(g)})
    return pd.DataFrame(rows), detail


def vprm_speed_table(surrogate, model, rules, theta, forcing, batches=(1, 1024), repeats: int = 20):
    """Median time of jitted ``simulate`` calls, process model vs surrogate, one class,
    float32 for both, ``batch`` points cut from ``forcing`` (a one-site VPRMForcing)."""
    from .generate import vprm_class_params
    f32 = lambda t: jax.tree.map(lambda a: jnp.asarray(a, jnp.float32), t)  # noqa: E731
    proc, emu = jax.jit(model.simulate), jax.jit(surrogate.simulate)
    p1 = f32(vprm_class_params(model, jnp.asarray(rules), jnp.asarray(theta)))
    rows = []
    for b in batches:
        one = forcing.replace(class_fractions=np.ones(1))
        fb = jax.tree.map(lambda a: jnp.asarray(np.resize(np.asarray(a), b)), one)
        fb = f32(fb.replace(class_fractions=jnp.ones((b, 1))))
        tp, te = time_call(proc, p1, fb, repeats=repeats), time_call(emu, p1, fb, repeats=repeats)
        rows.append({"batch": b, "process_model_s": tp, "emulator_s": te, "speedup": tp / te})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ stateful surrogates
def rollout_skill(spec, surrogate, params, windows: dict, *, dtype=None, states=None,
                  state_labels=None, fluxes=None, label: str = "rollout"):
    """Free rollouts of a stateful surrogate (``simulate_vectors``) against the model of
    ``spec`` (:func:`~emulator.generate.simulate_vectors`) for parameter vectors ``params``
    (N, P) on each forcing window of ``windows`` ({name: (T, F)}), both from the model's
    initial state. ``dtype``: precision of the surrogate's inputs (default: as given);
    ``states`` / ``state_labels``: state components scored (default all); ``fluxes``:
    flux names scored (default all).

    Returns (per-window table, mean over windows, example (name, true states, emulated
    states, true fluxes, emulated fluxes) of the first window and member, largest |water
    balance residual| of an emulated step in the units of ``spec.water_balance``)."""
    from .generate import simulate_vectors
    idx = list(range(len(spec.state_names))) if states is None else list(states)
    labels = [spec.state_names[i] for i in idx] if state_labels is None else list(state_labels)
    proc = jax.jit(lambda p, f: simulate_vectors(spec, p, f))
    emu = jax.jit(jax.vmap(surrogate.simulate_vectors))
    cast = (lambda a: jnp.asarray(a)) if dtype is None else (lambda a: jnp.asarray(a, dtype))  # noqa: E731
    tabs, example, wb = [], None, 0.0
    for name, f in windows.items():
        F = np.broadcast_to(f, (len(params),) + f.shape)
        true_s, true_f = (np.asarray(a) for a in proc(jnp.asarray(params), jnp.asarray(F)))
        es, ef = emu(cast(params), cast(F), cast(true_s[:, 0]))
        es, ef = np.asarray(es), {k: np.asarray(v) for k, v in ef.items()}
        if spec.water_balance is not None:
            prev = np.concatenate([true_s[:, :1], es[:, :-1]], 1)
            wb = max(wb, float(np.max(np.abs(np.asarray(spec.water_balance(prev, es, F, ef))))))
        tf = {k: true_f[..., i] for i, k in enumerate(spec.flux_names) if fluxes is None or k in fluxes}
        ef = {k: v for k, v in ef.items() if k in tf}
        tabs.append(rollout_metrics(es[..., idx], true_s[:, 1:, idx], ef, tf, labels,
                                    experiment=f"{label}, {name} (held out)"))
        if example is None:
            example = (name, true_s[0, 1:, idx[0]], es[0, :, idx[0]], {k: v[0] for k, v in tf.items()},
                       {k: v[0] for k, v in ef.items()})
    tab = pd.concat(tabs, ignore_index=True)
    mean = tab.groupby("output", sort=True)[["r2", "rmse", "bias"]].mean().reset_index()
    mean["experiment"] = f"{label}, mean over held-out windows"
    return tab, mean, example, wb


def rollout_speed_table(spec, surrogate, params, forcing, cases=((1, 365),), steps_per_day: int = 48,
                        repeats: int = 2):
    """Median time of jitted vmapped rollouts, model of ``spec`` vs ``surrogate``, for
    (members, days) ``cases`` on the first days of ``forcing`` (T, F); times also scaled
    to a year."""
    from .generate import simulate_vectors
    proc = jax.jit(lambda p, f: simulate_vectors(spec, p, f))
    emu = jax.jit(jax.vmap(surrogate.simulate_vectors))
    rows = []
    for b, days in cases:
        f = forcing[:days * steps_per_day]
        pb = jnp.asarray(np.resize(params, (b, params.shape[1])))
        fb = jnp.asarray(np.broadcast_to(f, (b,) + f.shape))
        s0 = jax.vmap(lambda p, f: spec.state_to_vector(spec.initial_state(
            spec.params_from_vector(p), spec.forcing_from_matrix(f))))(pb, fb)
        tp, te = time_call(proc, pb, fb, repeats=repeats), time_call(emu, pb, fb, s0, repeats=repeats)
        rows.append({"trajectories": b, "days": days, "process_model_s": tp, "emulator_s": te,
                     "process_model_s_per_year": tp * 365 / days, "emulator_s_per_year": te * 365 / days,
                     "speedup": tp / te})
    return pd.DataFrame(rows)
