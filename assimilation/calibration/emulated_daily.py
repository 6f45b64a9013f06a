"""Emulator-accelerated calibration of the coupled model on daily fluxes: NUTS on the
daily flux-form emulator (:class:`emulator.daily_emulator.DailyCoupledEmulator`), then
Pareto-smoothed importance reweighting (PSIS) against the half-hourly process model.

Both models are run from the same state (the process model's ``initial_state`` of the
parameters: field capacity, steady-state pools) over the same whole days of a sub-daily
:class:`~process_models.coupled.CoupledForcing`, and give the same daily observables:
day-mean NEE and GPP (umol m-2 s-1, the process model averages its 48 half-hours,
:func:`emulator.daily.daily_process_run`) and day-sum ET (mm per day). The two NumPyro
models share the priors, the latent sites and the likelihood; they differ only in
``model_fn``. With emulator-posterior draws theta_i (NUTS),

    log w_i = log p_process(y, theta_i) - log p_emulator(y, theta_i)

(:func:`assimilation.calibration.emulated.importance_reweight`; PSIS, Vehtari et al. 2024,
JMLR 25, 1-58: k-hat < 0.7 reliable; ESS = 1 / sum w_i^2).

Cost accounting (:class:`EmulatedCalibration`): NUTS costs one gradient of the log density
per leapfrog step, so the process-model NUTS time is extrapolated as the emulator run's
leapfrog steps x the process model's measured gradient time (compile excluded; the
process model would need about as many steps, its posterior being the target the emulator
approximates). The measured emulator-NUTS wall time includes its compile; the PSIS step
costs one vmapped process-model forward run per draw.

Tower observations (:func:`daily_tower_observations`): day mean of gap-filled NEE and day
sum of ET from gap-filled LE (lambda(T_air), Harrison 1963, as the coupled model),
used on days whose measured NEE half-hours (QC flag <= ``qc_max``: 0 best, 1 acceptable in
the ETH/diive scheme; gap-filled records have no flag) cover at least
``min_measured_fraction`` of the day (the FLUXNET daily ``NEE_QC`` idea: the fraction of
measured data).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from numpyro import handlers

from .builder import build_model, parameter_labels
from .diagnostics import convergence_summary, to_inference_data
from .emulated import ReweightResult, importance_reweight
from .error_models import ErrorModel, FluxObservations
from .inference import NUTSResult, run_nuts, unconstrained_potential

__all__ = ["EmulatedCalibration", "calibrate_daily_emulated", "daily_model_fns", "daily_tower_observations",
           "latent_sites", "gradient_seconds"]

DAILY_OUTPUTS = ("nee", "gpp", "et")
"""Daily observables of :func:`daily_model_fns`: NEE, GPP (day means, umol m-2 s-1), ET
(day sum, mm per day)."""


def daily_model_fns(emulator, process_model, parameters, forcing, *, base_params=None):
    """``(emulator_fn, process_fn)``: ``theta -> {nee, gpp, et}`` daily (module docstring).

    ``emulator`` a :class:`~emulator.daily_emulator.DailyCoupledEmulator`, ``process_model`` a
    :class:`~process_models.coupled.CoupledModel`, ``parameters`` the calibrated parameters
    (labels -> dotted names, or a prior spec; they must be emulated parameters),
    ``forcing`` a sub-daily ``CoupledForcing`` (its whole days are used). Both functions are
    jitted, differentiable and vmap-able in ``theta``."""
    from emulator.daily import daily_forcing, daily_process_run
    from process_models.coupled.model import complete_state
    labels = parameter_labels(parameters)
    emulated = set(emulator.parameter_table()["name"])
    outside = [n for n in labels.values() if n not in emulated]
    if outside:
        raise KeyError(f"parameters {outside} are not emulated by this emulator (it emulates {sorted(emulated)}); "
                       "calibrate emulated parameters only, or retrain the emulator with them in its spec.")
    base = process_model.default_params() if base_params is None else base_params
    dtype = jnp.result_type(forcing.air_temperature)
    base = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype) if jnp.issubdtype(jnp.result_type(a), jnp.floating)
                                  else a, base)
    df = daily_forcing(forcing)

    def params_of(model, theta):
        return model.set_parameters(base, {labels[k]: jnp.asarray(theta[k], dtype) for k in labels})

    @jax.jit
    def emulator_fn(theta):
        p = params_of(process_model, theta)
        out = emulator.simulate(p, df, complete_state(process_model.initial_state(p, forcing)))
        return {k: getattr(out, k) for k in DAILY_OUTPUTS}

    @jax.jit
    def process_fn(theta):
        _, daily = daily_process_run(process_model, params_of(process_model, theta), forcing)
        return {k: daily[k] for k in DAILY_OUTPUTS}

    emulator_fn.labels = process_fn.labels = labels
    return emulator_fn, process_fn


def daily_tower_observations(ds_hh, *, min_measured_fraction: float = 0.5, qc_max: int = 1, source: str = "<tower>"):
    """Daily NEE and ET streams of a half-hourly tower Dataset (module docstring).

    Needs ``nee_filled`` (umol m-2 s-1), ``nee_qc``, ``le_filled`` (W m-2) and
    ``air_temperature`` (degC) (e.g. :func:`process_models.io.read_diive_parquet`). Returns
    ``(nee FluxObservations, et FluxObservations, days DatetimeIndex)``; only whole days are
    kept (``len(days)`` = the model's days of the same record)."""
    from process_models.coupled.evapotranspiration import latent_heat_vaporization
    from process_models.units import DataValidationError
    need = ("nee_filled", "nee_qc", "le_filled", "air_temperature")
    missing = [v for v in need if v not in ds_hh]
    if missing:
        raise DataValidationError(f"missing {missing} for daily NEE / ET observations.", source=source,
                                  variable=",".join(missing), fix="use a reader that gives gap-filled NEE and LE "
                                  "with the NEE QC flag (e.g. read_diive_parquet).")
    dt = float(ds_hh.attrs.get("time_step_seconds", 1800.0))
    per_day = int(round(86400.0 / dt))
    n = (ds_hh.sizes["time"] // per_day) * per_day
    get = lambda v: np.asarray(ds_hh[v].values[:n], float).reshape(-1, per_day)      # noqa: E731
    nee, le, qc, ta = get("nee_filled"), get("le_filled"), get("nee_qc"), get("air_temperature")
    et = np.sum(le * dt / np.asarray(latent_heat_vaporization(jnp.asarray(ta))), 1)   # kg m-2 = mm per day
    measured = np.mean(qc <= qc_max, 1)                  # NaN flag (gap-filled) -> False
    use = (measured >= min_measured_fraction) & np.all(np.isfinite(nee), 1) & np.all(np.isfinite(le), 1)
    days = pd.DatetimeIndex(ds_hh.time.values[:n:per_day])
    return (FluxObservations.from_arrays(np.nanmean(nee, 1), mask=use, variable="nee", source=source),
            FluxObservations.from_arrays(et, mask=use, variable="et", source=source), days)


def latent_sites(model: Callable, key=None) -> list[str]:
    """Names of the latent (unobserved sample) sites of a NumPyro model."""
    tr = handlers.trace(handlers.seed(model, key if key is not None else jax.random.key(0))).get_trace()
    return [k for k, s in tr.items() if s["type"] == "sample" and not s.get("is_observed", False)]


def gradient_seconds(model: Callable, *, repeats: int = 3, key=None) -> tuple[float, float]:
    """``(compile + first call s, best of repeats s)`` of one gradient of the model's
    potential (what NUTS evaluates at every leapfrog step), at the prior median."""
    potential, x0, _, _ = unconstrained_potential(model, key if key is not None else jax.random.key(0))
    g = jax.jit(jax.value_and_grad(potential))
    t0 = time.perf_counter()
    jax.block_until_ready(g(x0))
    first = time.perf_counter() - t0
    best = np.inf
    for i in range(repeats):
        x = x0 + 1e-3 * (i + 1)
        t0 = time.perf_counter()
        jax.block_until_ready(g(x))
        best = min(best, time.perf_counter() - t0)
    return first, float(best)


@dataclass
class EmulatedCalibration:
    """Result of :func:`calibrate_daily_emulated`.

    ``nuts``: the NUTS run on the emulator posterior; ``reweight``: PSIS weights, k-hat,
    ESS and the per-parameter table (emulator / reweighted mean and sd, shift in emulator
    sd); ``summary``: convergence of the emulator chains (R-hat, bulk/tail ESS);
    ``timings`` (s): ``emulator_nuts`` (wall, compile included), ``leapfrog_steps`` (total,
    all chains), ``emulator_gradient`` / ``process_gradient`` (one gradient, compile
    excluded), ``process_gradient_compile``, ``reweight`` (process-model forward runs of
    all draws, compile included), ``process_nuts_extrapolated`` (leapfrog steps x process
    gradient), ``emulator_total`` (NUTS + reweighting) and ``speedup``
    (``process_nuts_extrapolated / emulator_total``)."""

    nuts: NUTSResult
    reweight: ReweightResult
    summary: pd.DataFrame
    timings: dict = field(default_factory=dict)

    def table(self) -> pd.DataFrame:
        """Per parameter: emulator-posterior and PSIS-corrected mean and sd, the bias of the
        emulator posterior mean (emulator - corrected, in corrected-posterior sd), R-hat and
        bulk ESS of the emulator chains."""
        t = self.reweight.table.set_index("parameter")
        t["bias_in_corrected_sd"] = (t["surrogate_mean"] - t["reweighted_mean"]) / t["reweighted_sd"]
        s = self.summary.reindex(t.index)
        t["r_hat"], t["ess_bulk"] = s["r_hat"], s["ess_bulk"]
        return t.reset_index()


def calibrate_daily_emulated(emulator, process_model, priors: Mapping, forcing, observations: Sequence[FluxObservations],
                             error_models, key, *, base_params=None, num_warmup: int = 500, num_samples: int = 500,
                             num_chains: int = 2, reweight_batch: int = 256, gradient_repeats: int = 2,
                             progress_bar: bool = False, **nuts_kwargs) -> EmulatedCalibration:
    """NUTS on the daily emulator, PSIS reweighting against the process model (module docstring).

    ``priors``: :class:`~assimilation.calibration.ParamPrior` spec of emulated parameters
    (e.g. ``priors_from_model(emulator, names)``: the emulator's training box as bounds);
    ``observations``: daily streams of ``nee``, ``gpp`` or ``et`` (one value per whole day of
    ``forcing``); ``error_models``: one :class:`ErrorModel` per stream (or one for all).
    ``nuts_kwargs`` go to :func:`~assimilation.calibration.run_nuts`."""
    obs = list(observations)
    from emulator.daily import steps_per_day
    n_days = forcing.n_steps // steps_per_day(forcing)
    for o in obs:
        if o.variable not in DAILY_OUTPUTS:
            raise ValueError(f"observation stream {o.variable!r}: the daily models give {DAILY_OUTPUTS}.")
        if o.values.shape[0] != n_days:
            raise ValueError(f"observation stream {o.variable!r} has {o.values.shape[0]} days, the forcing "
                             f"{n_days} whole days: give one value (masked where missing) per day of the forcing.")
    emu_fn, proc_fn = daily_model_fns(emulator, process_model, priors, forcing, base_params=base_params)
    emu_model = build_model(emu_fn, dict(priors), obs, error_models)
    proc_model = build_model(proc_fn, dict(priors), obs, error_models)
    res = run_nuts(emu_model, key, num_warmup=num_warmup, num_samples=num_samples, num_chains=num_chains,
                   progress_bar=progress_bar, **nuts_kwargs)
    latent = {k: res.samples[k] for k in latent_sites(emu_model)}
    physical = {n: res.samples[n] for n in priors}
    t0 = time.perf_counter()
    rw = importance_reweight(emu_model, proc_model, latent, physical, batch=reweight_batch)
    t_rw = time.perf_counter() - t0
    _, g_emu = gradient_seconds(emu_model, repeats=gradient_repeats)
    c_proc, g_proc = gradient_seconds(proc_model, repeats=gradient_repeats)
    steps = float(np.sum(res.num_steps))
    summary = convergence_summary(to_inference_data(res.samples, diverging=res.diverging, names=list(priors)))
    total = res.wall_time + t_rw
    timings = {"emulator_nuts": res.wall_time, "leapfrog_steps": steps, "emulator_gradient": g_emu,
               "process_gradient": g_proc, "process_gradient_compile": c_proc, "reweight": t_rw,
               "process_nuts_extrapolated": steps * g_proc, "emulator_total": total,
               "speedup": steps * g_proc / total, "draws": int(np.size(next(iter(latent.values()))))}
    return EmulatedCalibration(nuts=res, reweight=rw, summary=summary, timings=timings)
