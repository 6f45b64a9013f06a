"""Training data, training and held-out evaluation of the daily flux-form emulator
(:mod:`emulator.daily_emulator`).

* :func:`daily_design`: Sobol parameter vectors of a :class:`~emulator.generate.StatefulSpec`
  box, one-year half-hourly forcing windows of real tower years starting at seeded days,
  and one weather perturbation per window (warming, precipitation factor:
  :func:`~emulator.daily.perturb_forcing`);
* :func:`generate_daily`: the process model's own step (:func:`~emulator.daily.daily_process_run`,
  vmapped over windows) -> ``chunk_*.npz`` (states at day boundaries, daily forcing
  statistics, daily fluxes, parameters); re-running skips written chunks;
* :func:`train_daily_emulator`: K-day rollouts from process-model states, loss = mean
  squared error of the day's fluxes (GPP, Reco, ET and its parts, runoff, drainage) and of
  the end-of-day states (soil water per layer, top layer x3; SWE; log carbon pools), each
  scaled by its training standard deviation; :func:`emulator.train.fit` (AdamW, early
  stopping on held-out trajectories, Orbax checkpoints with exact resume);
* :func:`daily_rollout_skill`, :func:`daily_speed_table`, :func:`daily_gradient_table`:
  1-year free rollouts (R2 of daily values against the process model's day means / sums),
  process model vs emulator time at a batch of site-years in one run, and
  parameter-gradient cosine (unit-box coordinates) of annual objectives.
"""
from __future__ import annotations

import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from flax import nnx
from tqdm.auto import tqdm

from .daily import (DAILY_FIELDS, CARBON_FLUXES, WATER_FLUXES, DailyForcing, cast_floats, daily_forcing,
                    daily_process_run, perturb_forcing, state_from_vector, state_to_vector, NO_PERTURBATION)
from .daily_emulator import (N_LAYERS, DailyCoupledEmulator, DailyNetwork, daily_step, features)
from .design import sample
from .evaluate import regression_metrics
from .normalise import Normaliser
from .train import TrainConfig, fit

FLUXES = CARBON_FLUXES + WATER_FLUXES
LOSS_FLUXES = ("gpp", "reco", "et", "transpiration", "soil_evaporation", "interception_evaporation", "runoff",
               "drainage")
POOL_SLICE = slice(N_LAYERS + 3, N_LAYERS + 9)


def daily_design(space, forcing_matrix: np.ndarray, per_day: int, n: int, days: int, end_step: int, *, seed=0,
                 warming=(-1.0, 5.0), precipitation_sd=0.25, co2=(-20.0, 60.0), pressure=(0.95, 1.2), wind_sd=0.4):
    """``n`` Sobol parameter vectors, ``n`` windows (n, days x per_day, 8) of the forcing
    matrix starting at midnight before ``end_step - window``, and ``n`` perturbations
    (n, 5) of :func:`~emulator.daily.perturb_forcing`: warming (degC, uniform in
    ``warming``), precipitation factor (log-normal, sd ``precipitation_sd``), CO2 offset
    (uniform), pressure factor (uniform), wind factor (log-normal)."""
    params = sample(space, n, seed=seed)
    rng = np.random.default_rng([seed, 17])
    length = days * per_day
    starts = rng.integers(0, (end_step - length) // per_day, n) * per_day
    windows = np.stack([forcing_matrix[a:a + length] for a in starts])
    pert = np.stack([rng.uniform(*warming, n), np.exp(rng.normal(0.0, precipitation_sd, n)), rng.uniform(*co2, n),
                     rng.uniform(*pressure, n), np.exp(rng.normal(0.0, wind_sd, n))], -1)
    return params, windows, pert


_RUNNERS: dict = {}


def process_runner(spec):
    """Jitted (cached per ``spec``, so equal shapes compile once) ``(theta (N, P), windows (N, T, 8), perturbations (N, 5)) -> (states
    (N, D + 1, 17), daily dict of (N, D), daily forcing (N, D, 15))`` of the process
    model of ``spec``."""
    def one(theta, fm, pert):
        f = perturb_forcing(spec.forcing_from_matrix(fm), pert)
        p = cast_floats(spec.params_from_vector(theta), fm.dtype)
        return daily_process_run(spec.model, p, f) + (daily_forcing(f).to_matrix(),)
    if id(spec) not in _RUNNERS:
        _RUNNERS[id(spec)] = (spec, jax.jit(jax.vmap(one)))
    return _RUNNERS[id(spec)][1]


def no_perturbation(n, dtype):
    return jnp.broadcast_to(jnp.asarray(NO_PERTURBATION, dtype), (n, 5))


def generate_daily(out_dir, spec, params, windows, perturbations, *, per_chunk: int = 16, progress=True):
    """Write daily process-model runs in ``chunk_*.npz`` (resumable). Returns the folder."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    run = process_runner(spec)
    n_chunks = int(np.ceil(len(params) / per_chunk))
    for k in tqdm(range(n_chunks), desc="coupled model, daily training runs", disable=not progress):
        path = out / f"chunk_{k:05d}.npz"
        if path.exists():
            continue
        sl = slice(k * per_chunk, (k + 1) * per_chunk)
        states, daily, forcing = run(*(jnp.asarray(a[sl]) for a in (params, windows, perturbations)))
        arrays = {"states": np.asarray(states), "forcing": np.asarray(forcing), "params": np.asarray(params[sl]),
                  "fluxes": np.stack([np.asarray(daily[k_]) for k_ in FLUXES], -1)}
        if not all(np.all(np.isfinite(a)) for a in arrays.values()):
            raise FloatingPointError(f"non-finite process-model output in chunk {k}.")
        tmp = out / f".chunk_{k:05d}.tmp.npz"
        np.savez(tmp, **arrays)
        tmp.replace(path)
    return out


def load_daily(directory) -> dict:
    """All chunks of :func:`generate_daily` concatenated along the trajectory axis."""
    files = sorted(Path(directory).glob("chunk_*.npz"))
    if not files:
        raise FileNotFoundError(f"{directory}: no chunk_*.npz (run generate_daily first).")
    parts = [dict(np.load(f)) for f in files]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _input_normaliser(spec, data, n_rows=4096, seed=0):
    """Normaliser of the network inputs on a seeded sample of training days."""
    rng = np.random.default_rng(seed)
    n, d = data["forcing"].shape[:2]
    tr, t = rng.integers(0, n, n_rows), rng.integers(0, d, n_rows)
    space = spec.param_space
    lo, hi = np.asarray(space.lower), np.asarray(space.upper)

    def feat(s, f, th):
        p = cast_floats(spec.params_from_vector(th), th.dtype)
        return features(state_from_vector(s), DailyForcing.from_matrix(f), p, (th - lo) / (hi - lo))[0]

    x = jax.jit(jax.vmap(feat))(jnp.asarray(data["states"][tr, t]), jnp.asarray(data["forcing"][tr, t]),
                                jnp.asarray(data["params"][tr]))
    return Normaliser.fit(np.asarray(x))


DEFAULT_LOSS_WEIGHTS = {"soil_water_top": 3.0}
"""Loss-term weights of :func:`rollout_loss` (1 for every term not named): the fluxes of
:data:`LOSS_FLUXES`, ``nee`` (0: NEE is not a separate term, it is Reco - GPP), the top
soil layer ``soil_water_top`` (other layers 1)."""


def _loss_weights(weights):
    w = {**DEFAULT_LOSS_WEIGHTS, **(weights or {})}
    bad = sorted(set(w) - set(LOSS_FLUXES) - {"nee", "soil_water_top"})
    if bad:
        raise KeyError(f"loss_weights {bad}: the weighted terms are {list(LOSS_FLUXES)}, 'nee' and "
                       "'soil_water_top'.")
    return w


def rollout_loss(spec, scales, sd, window: int, loss_weights=None):
    """Loss of K-day rollouts from process-model states (module docstring); ``loss_weights``
    multiply the terms (:data:`DEFAULT_LOSS_WEIGHTS`; a ``nee`` weight > 0 adds the day's NEE
    scaled by its training sd)."""
    w = _loss_weights(loss_weights)
    names = LOSS_FLUXES + (("nee",) if w.get("nee", 0.0) > 0 else ())
    lo = jnp.asarray(spec.param_space.lower, jnp.float32)
    span = jnp.asarray(np.subtract(spec.param_space.upper, spec.param_space.lower), jnp.float32)
    flux_idx = jnp.asarray([FLUXES.index(k) for k in names])
    flux_sd = jnp.asarray(sd["fluxes"] + ([sd["nee"]] if "nee" in names else []), jnp.float32)
    flux_w = jnp.asarray([w.get(k, 1.0) for k in names], jnp.float32)
    n_flux = float(np.sum([w.get(k, 1.0) for k in names]))
    theta_sd = jnp.asarray(sd["theta"], jnp.float32)
    layer_w = jnp.asarray([w["soil_water_top"]] + [1.0] * (N_LAYERS - 1), jnp.float32)
    swe_sd = jnp.float32(sd["swe"])

    def one(net, s0, f, th, ts, tf):
        params = cast_floats(spec.params_from_vector(th), jnp.float32)
        unit = (th - lo) / span

        def body(s, fm):
            s1, out = daily_step(net, s, DailyForcing.from_matrix(fm), params, unit, scales)
            return s1, (state_to_vector(s1), jnp.stack([out[k] for k in names]))

        _, (states, fluxes) = jax.lax.scan(body, state_from_vector(s0), f)
        e_flux = (fluxes - tf[:, flux_idx]) / flux_sd
        e_theta = (states[:, :N_LAYERS] - ts[:, :N_LAYERS]) / theta_sd
        e_swe = (states[:, N_LAYERS] - ts[:, N_LAYERS]) / swe_sd
        e_pool = (jnp.log(jnp.maximum(states[:, POOL_SLICE], 1e-6)) - jnp.log(ts[:, POOL_SLICE])) / 0.02
        # with the default weights: (mean of the 8 flux terms x 8 + ...), as before the weights existed
        return (jnp.mean(flux_w * e_flux ** 2) * len(names) + jnp.mean(layer_w * e_theta ** 2) * N_LAYERS
                + jnp.mean(e_swe ** 2) + 0.2 * jnp.mean(e_pool ** 2) * 6) / (n_flux + N_LAYERS + 2.2)

    def loss(net, batch):
        per = jax.vmap(lambda s0, f, th, ts, tf: one(net, s0, f, th, ts, tf))(
            batch["state0"], batch["forcing"], batch["params"], batch["states"], batch["fluxes"])
        return jnp.mean(per)

    return loss


class DailyWindows:
    """K-day windows of daily training runs; batch ``step`` is a pure function of
    ``(seed, step)`` (exact resume)."""

    def __init__(self, data: dict, batch_size: int, window: int, seed: int = 0):
        self.d, self.b, self.k, self.seed = data, batch_size, window, seed

    def __call__(self, step: int) -> dict:
        rng = np.random.default_rng([self.seed, step, 5])
        n, d = self.d["forcing"].shape[:2]
        tr, t0 = rng.integers(0, n, self.b), rng.integers(0, d - self.k + 1, self.b)
        ti = t0[:, None] + np.arange(self.k)[None]
        f32 = lambda a: np.asarray(a, np.float32)               # noqa: E731
        return {"state0": f32(self.d["states"][tr, t0]), "forcing": f32(self.d["forcing"][tr[:, None], ti]),
                "params": f32(self.d["params"][tr]), "states": f32(self.d["states"][tr[:, None], ti + 1]),
                "fluxes": f32(self.d["fluxes"][tr[:, None], ti])}


def train_daily_emulator(data_dir, spec, *, hidden=(128, 128), window: int = 16, config: TrainConfig = TrainConfig(),
                         n_val: int = 8, checkpoint_dir=None, metrics_path=None, seed: int = 0, loss_weights=None):
    """Train the daily emulator on the runs of :func:`generate_daily` (last ``n_val``
    trajectories held out for early stopping; ``loss_weights`` see :func:`rollout_loss`).
    Returns ``(DailyCoupledEmulator, TrainResult)``."""
    data = load_daily(data_dir)
    n = data["params"].shape[0]
    tr = {k: v[: n - n_val] for k, v in data.items()}
    va = {k: v[n - n_val:] for k, v in data.items()}
    norm = _input_normaliser(spec, tr, seed=seed)
    fl = tr["fluxes"]
    sd = {"fluxes": [max(float(fl[..., FLUXES.index(k)].std()), 1e-3) for k in LOSS_FLUXES],
          "theta": list(np.maximum(tr["states"][..., :N_LAYERS].std((0, 1)), 1e-3)),
          "swe": max(float(tr["states"][..., N_LAYERS].std()), 1.0),
          "nee": max(float(fl[..., FLUXES.index("nee")].std()), 1e-3)}
    sd = {k: ([float(x) for x in v] if isinstance(v, list) else float(v)) for k, v in sd.items()}
    mean = lambda k: float(fl[..., FLUXES.index(k)].mean())    # noqa: E731
    scales = {"gpp": max(mean("gpp"), 0.5) / np.log(2), "transpiration": max(mean("transpiration"), 0.1) / np.log(2),
              "evaporation": max(mean("soil_evaporation"), 0.05) / np.log(2),
              "drainage": max(mean("drainage"), 0.05) / np.log1p(np.exp(-1.0))}
    scales = {k: float(v) for k, v in scales.items()}
    net = DailyNetwork(len(spec.param_space.names), tuple(hidden), norm, rngs=nnx.Rngs(seed))
    loss = rollout_loss(spec, scales, sd, window, loss_weights)
    val = DailyWindows(va, 256, window, seed=seed + 99)(0)
    res = fit(net, loss, DailyWindows(tr, config.batch_size, window, seed=seed), val, config,
              checkpoint_dir=checkpoint_dir, metrics_path=metrics_path)
    cfg = {"hidden": list(hidden), "input_normaliser": norm.to_dict(), "scales": scales, "window": window,
           "spec": dict(spec.metadata.get("spec_kwargs", {})), "loss_sd": sd, "trained_steps": res.steps_done,
           "loss_weights": _loss_weights(loss_weights)}
    return DailyCoupledEmulator(res.model, spec, cfg), res


# ------------------------------------------------------------------ evaluation
EVAL_OUTPUTS = ("gpp", "et", "nee", "reco", "soil_water_top")


def daily_rollout_skill(emulator: DailyCoupledEmulator, spec, params, windows: dict, dtype=jnp.float64):
    """1-year free rollouts from the process model's initial state: per window ``{name:
    (T, 8) forcing matrix}`` and parameter vectors ``params`` (H, P), R2/RMSE/bias of the
    emulator's daily GPP, ET, NEE, Reco and top-layer soil water against the process
    model's day means (fluxes), day sums (ET) and end-of-day values (soil water).

    Returns (table, residuals {water_mm, carbon_gC}: largest |daily balance residual|,
    example dict of the first member of the first window)."""
    from .daily_emulator import carbon_balance_residual, water_balance_residual
    run = process_runner(spec)
    emu = jax.jit(jax.vmap(emulator.simulate_vectors))
    rows, wb, cb, example = [], 0.0, 0.0, None
    for name, fm in windows.items():
        h = len(params)
        fmb = np.broadcast_to(fm, (h,) + fm.shape)
        states, daily, dforc = run(jnp.asarray(params, dtype), jnp.asarray(fmb, dtype), no_perturbation(h, dtype))
        es, ef = emu(jnp.asarray(params, dtype), dforc, states[:, 0])
        pred = {k: np.asarray(ef[k]) for k in ("gpp", "et", "nee", "reco")}
        pred["soil_water_top"] = np.asarray(es[..., 0])
        true = {k: np.asarray(daily[k]) for k in ("gpp", "et", "nee", "reco")}
        true["soil_water_top"] = np.asarray(states[:, 1:, 0])
        for k in EVAL_OUTPUTS:
            rows.append({"window": name, "output": k, **regression_metrics(pred[k], true[k])})
        prev = jnp.concatenate([states[:, :1], es[:, :-1]], 1)
        params_t = cast_floats(spec.params_from_vector(jnp.asarray(params[0], dtype)), dtype)

        def resid(s0, s1, f, o):
            a, b = state_from_vector(s0), state_from_vector(s1)
            return (water_balance_residual(a, b, DailyForcing.from_matrix(f), o, params_t.layer_thickness),
                    carbon_balance_residual(a, b, o))
        r_w, r_c = jax.vmap(jax.vmap(resid))(prev, es, dforc, ef)
        wb, cb = max(wb, float(jnp.max(jnp.abs(r_w)))), max(cb, float(jnp.max(jnp.abs(r_c))))
        if example is None:
            example = {"window": name, "pred": {k: v[0] for k, v in pred.items()},
                       "true": {k: v[0] for k, v in true.items()}}
    return pd.DataFrame(rows), {"water_mm": wb, "carbon_gC": cb}, example


def daily_speed_table(emulator, spec, params, forcing_matrix, batch: int = 1024, process_days: int = 365,
                      emulator_days: int = 365, dtype=jnp.float32, repeats: int = 2):
    """Process model (half-hourly ``step`` scanned over days, vmapped over ``batch``
    site-years) vs the emulator (daily, vmapped) in the same run, compile excluded (each
    jitted function is run once before timing; best of ``repeats``). Process and emulator
    times are per simulated year (``process_days`` may be shorter than a year to keep the
    benchmark short: time scaled linearly, stated in the table)."""
    per_day = int(round(86400.0 / spec.metadata["dt_seconds"]))
    pb = jnp.asarray(np.resize(params, (batch, params.shape[1])), dtype)
    fm = jnp.asarray(np.broadcast_to(forcing_matrix[:process_days * per_day],
                                     (batch, process_days * per_day, forcing_matrix.shape[1])), dtype)
    pert = no_perturbation(batch, dtype)
    run = process_runner(spec)

    def timed(fn, *a):
        t0 = time.perf_counter()
        jax.block_until_ready(fn(*a))
        c = time.perf_counter() - t0
        best = np.inf
        for _ in range(repeats):
            t0 = time.perf_counter()
            jax.block_until_ready(fn(*a))
            best = min(best, time.perf_counter() - t0)
        return c, best

    proc = jax.jit(lambda p, f: run(p, f, pert)[0])
    c_p, t_p = timed(proc, pb, fm)
    f_year = jnp.asarray(np.broadcast_to(forcing_matrix[:emulator_days * per_day],
                                         (1, emulator_days * per_day, forcing_matrix.shape[1])), dtype)
    dforc = jnp.broadcast_to(jax.jit(jax.vmap(lambda f: daily_forcing(spec.forcing_from_matrix(f)).to_matrix()))(
        f_year), (batch, emulator_days, len(DAILY_FIELDS)))
    s0 = run(pb[:1], fm[:1, :per_day], pert[:1])[0][:, 0]
    s0 = jnp.broadcast_to(s0, (batch, s0.shape[-1]))
    emu = jax.jit(jax.vmap(emulator.simulate_vectors))
    c_e, t_e = timed(emu, pb, dforc, s0)
    tp_year, te_year = t_p * 365 / process_days, t_e * 365 / emulator_days
    return pd.DataFrame([
        {"model": "process model (half-hourly step)", "site_years": batch, "days_timed": process_days,
         "compile_s": c_p, "run_s": t_p, "s_per_batch_year": tp_year, "ratio": 1.0},
        {"model": "daily flux-form emulator", "site_years": batch, "days_timed": emulator_days,
         "compile_s": c_e, "run_s": t_e, "s_per_batch_year": te_year, "ratio": tp_year / te_year}])


def daily_gradient_table(emulator, spec, forcing_matrix, unit_points, objectives=("mean_nee", "mean_gpp", "total_et"),
                         dtype=jnp.float64):
    """Cosine of d objective / d u (unit-box coordinates of the emulated parameters) of the
    emulator vs the process model over the window ``forcing_matrix`` (T, 8), at
    ``unit_points`` (n, P). Objectives on daily values: mean NEE, mean GPP, total ET."""
    from .evaluate import gradient_agreement
    from process_models.coupled.model import complete_state
    fm = jnp.asarray(forcing_matrix, dtype)
    f = spec.forcing_from_matrix(fm)
    df = daily_forcing(f)

    def objective(name, daily):
        return {"mean_nee": lambda: jnp.mean(daily["nee"]), "mean_gpp": lambda: jnp.mean(daily["gpp"]),
                "total_et": lambda: jnp.sum(daily["et"])}[name]()

    rows, details = [], {}
    for name in objectives:
        def proc(theta):
            p = cast_floats(spec.params_from_vector(theta), dtype)
            return objective(name, daily_process_run(spec.model, p, f)[1])

        def emu(theta):
            p = cast_floats(spec.params_from_vector(theta), dtype)
            s0 = complete_state(spec.model.initial_state(p, f))
            out = emulator.simulate(p, df, s0)
            return objective(name, {"nee": out.nee, "gpp": out.gpp, "et": out.et})
        g = gradient_agreement(emu, proc, unit_points, spec.param_space)
        details[name] = g
        rows.append({"objective": name, "median_cosine": float(np.median(g["cosine"])),
                     "min_cosine": float(np.min(g["cosine"])),
                     "median_relative_error": float(np.median(g["relative_error"]))})
    return pd.DataFrame(rows), details


def daily_rollout_figure(example, title: str):
    """Process model vs emulator daily series of one held-out rollout (matplotlib figure)."""
    import matplotlib.pyplot as plt
    labels = {"gpp": "GPP (umol m-2 s-1)", "et": "ET (mm day-1)", "nee": "NEE (umol m-2 s-1)",
              "soil_water_top": "top-layer soil water (m3 m-3)"}
    fig, axes = plt.subplots(len(labels), 1, figsize=(10, 8), sharex=True)
    for ax, (k, lab) in zip(axes, labels.items()):
        ax.plot(example["true"][k], lw=1.0, label="process model (half-hourly, day aggregate)")
        ax.plot(example["pred"][k], lw=1.0, ls="--", label="daily flux-form emulator")
        ax.set_ylabel(lab)
    axes[0].legend(fontsize=8)
    axes[-1].set_xlabel("day of the held-out year")
    fig.suptitle(title)
    fig.tight_layout()
    return fig
