"""Real-data ensemble data assimilation with the coupled model at CH-Dav (2018 drought):
daily tower NEE and soil-water content at 0.15 m, joint state-parameter estimation.

Site choice
-----------
CH-Dav (subalpine ENF, 1639 m) has, in one file, measured half-hourly NEE, LE, partitioned
GPP (night-time method, CUT_REF) and SWC at a *known* depth (0.15 m); 2018 is the drought
year of the decade. FR-Hes 2016 has an SWC profile but the sensor depths are not in the
file, so its SWC cannot be mapped onto model layers without guessing; CH-Dav is used.

Set-up
------
* Model: ``process_models.coupled`` (ENF, loam), 30-min steps, default parameters except
  four log-multipliers estimated by augmentation (Anderson 2001; DAPPER ``param_estim``):
  ``vcmax25`` (x exp(p0)), Medlyn ``g1`` (x exp(p1)), a heterotrophic-respiration
  base-rate multiplier (litter / fast / slow turnover rates x exp(p2), so Rh x exp(p2) at
  fixed pools) and the root closing potential ``psi_close`` (x exp(p3), drought tolerance).
  Priors N(0, s^2) on the log-multipliers, s = (0.25, 0.3, 0.3, 0.2).
* Members: perturbed parameters and perturbed initial soil water (all layers x exp(N(0,
  0.1^2)), clipped to [theta_res, theta_sat]).
* Forecast: ``vmap`` of ``coupled.step`` over members inside a ``lax.scan`` over the 48
  half-hours of one day; the whole run is one outer ``lax.scan`` over days (one jitted
  call; no Python loop over members, steps or cycles).
* Analysis: once per day, ETKF (``assimilation.ensemble.ETKF`` with ``obs_space`` and
  ``apply_transform``) on the augmented vector (soil water, snow, soil temperature,
  carbon pools, parameters, daily diagnostics); posterior RTPS (Whitaker & Hamill 2012,
  ``assimilation.ensemble.rtps``) with separate weights: 0.7 for the state, 0.3 for the
  parameters; additive soil-water model noise (sd 0.005 m3 m-3 per day); soil water is
  clipped to [theta_res + 0.005, theta_sat], pools to >= 0 and the log-multipliers to the
  parameter-table bounds (``LOG_BOUNDS``) after the analysis.
* Observations (daily): y1 = mean of the measured NEE half-hours of the day (>= 12 of 48);
  the operator is the model mean over the *same* half-hours. Half-hourly random error
  from the flux-magnitude model (Richardson et al. 2006, AFM 136:1, forests):
  sigma = 0.62 + 0.63 F (F > 0), 1.42 - 0.19 F (F < 0) [coefficients marked [M] in
  ``shared/reference/flux_processing_and_calibration.md`` section 4]; independent errors
  aggregate as sigma_day = sqrt(sum sigma_i^2) / n; plus a model/representativeness error
  of 1.0 umol m-2 s-1 (added in variance; ``--nee-rep-sd``). y2 = daily mean SWC at 0.15 m (model: linear
  interpolation between layer centres), sd = sqrt(0.02^2 + 0.02^2) (sensor + point vs
  column representativeness).
* Validation: every 4th week both observation types are withheld; GPP (night-time
  partitioning) and LE are never assimilated. Scores use the *forecast* (prior) ensemble
  of each day, i.e. before that day's observations are used.
* Reference runs with the same jitted function and no observations: the default-parameter
  model (all members identical) and the free-running prior ensemble (mean).

Run: ``python -m experiments.da_coupled_real [--quick] [--members N] [--out DIR]``.
``--quick``: 1-28 June 2018, 16 members, no spin-up (< 60 s). Full: 2017 spin-up with
default parameters, then 1 April - 31 October 2018 with 48 members.
"""
from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path
from typing import NamedTuple

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax.flatten_util import ravel_pytree  # noqa: E402

from assimilation.ensemble import ETKF, apply_transform, member_ok, obs_space  # noqa: E402
from assimilation.ensemble import replace_failed_members, rtps  # noqa: E402
from assimilation.observations.synthetic import FLUX_ERROR_MODELS  # noqa: E402
from experiments.metrics import skill  # noqa: E402
from process_models import coupled  # noqa: E402
from process_models.bmi._forcing import fill_gaps  # noqa: E402
from process_models.io import data_path, read_diive_parquet  # noqa: E402

jax.config.update("jax_enable_x64", True)

SITE = dict(name="CH-Dav", lat=46.8153, lon=9.8559, pft="ENF", soil="loam",
            folder="ch-dav_2013-2022_diive",
            file="exampledata_PARQUET_CH-DAV_FP2022.5_2013-2022_ID20230206154316_30MIN.parquet")
DRIVERS = ("air_temperature", "vpd", "shortwave_in", "precipitation", "air_pressure",
           "wind_speed", "co2", "lai")
PARAM_NAMES = ("vcmax25 multiplier", "g1 multiplier", "Rh base-rate multiplier",
               "psi_close multiplier")
PRIOR_SD = np.array([0.25, 0.3, 0.3, 0.2])
SWC_DEPTH = 0.15          # m
NEE_REP_SD = 1.0          # umol m-2 s-1, model/representativeness error of a daily mean
SWC_NOISE_SD = 0.005      # m3 m-3 per day, additive model noise on every soil layer
RTPS_STATE, RTPS_PARAMS = 0.7, 0.3
# physical bounds of the log-multipliers (clipped after each analysis): vcmax25, g1 and
# psi_close from the ENF parameter table bounds (10-150, 0.5-10, -150..-500 m), Rh x/÷ 4
LOG_BOUNDS = np.log(np.array([[10 / 62.5, 150 / 62.5], [0.5 / 2.35, 10 / 2.35],
                              [0.25, 4.0], [150 / 255, 500 / 255]]))
SWC_SD = float(np.hypot(0.02, 0.02))   # m3 m-3
MIN_HH = 12               # measured half-hours per day for a daily NEE observation
DIAG = ("nee_at_obs", "le_at_obs", "gpp_day", "swc_at_obs", "nee_day", "water_stress")


class Member(NamedTuple):
    """Augmented ensemble member: model state, log-parameter multipliers, and the daily
    diagnostics of the last forecast (observation-operator inputs, overwritten each day)."""
    state: object
    log_mult: jax.Array    # (4,)
    diag: jax.Array        # (len(DIAG),)


def richardson_sigma(nee):
    """Half-hourly NEE random-error sd (umol m-2 s-1), forests (Richardson et al. 2006,
    AFM 136:1-18): 0.62 + 0.63 F for F > 0, 1.42 - 0.19 F for F < 0."""
    c = FLUX_ERROR_MODELS["richardson2006_forest"]
    nee = np.asarray(nee, float)
    return np.where(nee > 0, c["a_pos"] + c["b_pos"] * nee, c["a_neg"] + c["b_neg"] * np.abs(nee))


def apply_multipliers(params, log_mult):
    """Default parameters with the four log-multipliers applied (see module doc)."""
    m = jnp.exp(log_mult)
    leaf = params.leaf.replace(vcmax25=params.leaf.vcmax25 * m[0], g1=params.leaf.g1 * m[1])
    c = params.carbon
    carbon = c.replace(tau_litter=c.tau_litter / m[2], tau_soil_fast=c.tau_soil_fast / m[2],
                       tau_soil_slow=c.tau_soil_slow / m[2])
    roots = params.roots.replace(psi_close=params.roots.psi_close * m[3])
    return params.replace(leaf=leaf, carbon=carbon, roots=roots)


# ------------------------------------------------------------------------------ data

def load_site(start: str, end: str, spinup: str | None):
    """Forcing (days, 48) and daily observations/masks for [start, end]; spun-up state."""
    raw = read_diive_parquet(data_path(SITE["folder"], SITE["file"]))
    params = coupled.load_parameters(SITE["pft"], SITE["soil"])
    notes = []

    def forcing_of(ds):
        ds, n = fill_gaps(ds, [v for v in DRIVERS if v in ds])
        notes.extend(n)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return coupled.forcing_from_dataset(ds, SITE["lat"], SITE["lon"], lai=False)

    state0 = None
    if spinup:
        f_spin = forcing_of(raw.sel(time=slice(spinup, start)).isel(time=slice(0, -1)))
        _, state0 = coupled.simulate(params, f_spin, return_state=True)
    ds = raw.sel(time=slice(start, end))
    forcing = forcing_of(ds)
    per_day = int(round(86400 / forcing.dt_seconds))
    n_days = forcing.n_steps // per_day
    if state0 is None:
        state0 = coupled.initial_state(params, forcing)
    idx = pd.DatetimeIndex(ds.time.values)[:n_days * per_day]

    def daily(x):
        return np.asarray(x, float)[:n_days * per_day].reshape(n_days, per_day)

    nee, le, swc, gpp = (daily(ds[v].values) for v in ("nee", "le", "soil_water_content", "gpp"))
    masks = np.stack([np.isfinite(nee), np.isfinite(le), np.isfinite(swc)], -1).astype(float)
    n_nee = masks[..., 0].sum(1)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        nee_day = np.where(n_nee >= MIN_HH, np.nanmean(np.where(masks[..., 0] > 0, nee, np.nan), 1), np.nan)
        sig = richardson_sigma(np.nan_to_num(nee))
        nee_sd = np.sqrt(np.sum(np.where(masks[..., 0] > 0, sig ** 2, 0.0), 1)) / np.maximum(n_nee, 1)
        swc_day = np.where(masks[..., 2].sum(1) >= per_day // 2, np.nanmean(swc, 1), np.nan)
        le_day = np.where(masks[..., 1].sum(1) >= per_day // 2, np.nanmean(le, 1), np.nan)
    obs = pd.DataFrame({"nee": nee_day, "nee_sd_random": nee_sd, "swc": swc_day, "le": le_day,
                        "gpp": gpp.mean(1), "n_nee_hh": n_nee},
                       index=idx[::per_day])
    forcing_days = jax.tree_util.tree_map(
        lambda x: x[:n_days * per_day].reshape((n_days, per_day) + x.shape[1:]), forcing)
    return params, forcing_days, state0, obs, masks, notes


# ------------------------------------------------------------------------------ filter

def build_run(params, centres, n_members):
    """Jitted whole-run function ``run(key, ens0, forcing_days, masks, y, r, use, noise_sd,
    rtps_vec) -> dict`` (one outer ``lax.scan`` over days)."""
    theta_res = params.soil.theta_res
    theta_sat = params.soil.theta_sat

    def forecast_member(member: Member, f_day, m_day):
        p = apply_multipliers(params, member.log_mult)

        def body(s, f_t):
            s, o = coupled.step(s, f_t, p)
            return s, (o.nee, o.le, o.gpp, jnp.interp(SWC_DEPTH, centres, o.soil_water_content),
                       o.water_stress)

        s, (nee, le, gpp, swc, ws) = jax.lax.scan(body, member.state, f_day)

        def at(x, w):  # mean over the observed half-hours; whole-day mean if none
            sw = jnp.sum(w)
            return jnp.where(sw > 0, jnp.sum(x * w) / jnp.maximum(sw, 1.0), jnp.mean(x))

        diag = jnp.stack([at(nee, m_day[:, 0]), at(le, m_day[:, 1]), gpp.mean(),
                          at(swc, m_day[:, 2]), nee.mean(), ws.mean()])
        return Member(s, member.log_mult, diag.astype(member.diag.dtype))

    def h(member: Member):
        return member.diag[jnp.array([0, 3])]

    @jax.jit
    def run(key, ens0, forcing_days, masks, y, r, use, noise_sd, rtps_vec):
        X0, unravel = jax.vmap(lambda m: ravel_pytree(m)[0])(ens0), ravel_pytree(
            jax.tree_util.tree_map(lambda a: a[0], ens0))[1]
        nx = X0.shape[1]
        # index vector of the soil-water entries in the flattened member (for noise/clip)
        probe = jax.tree_util.tree_map(lambda a: jnp.zeros_like(a[0]), ens0)
        probe = probe._replace(state=probe.state.replace(
            soil_water_content=jnp.ones_like(probe.state.soil_water_content)))
        is_swc = ravel_pytree(probe)[0] > 0
        dtype = X0.dtype

        def cycle(carry, xs):
            X, k = carry
            f_day, m_day, y_k, r_k, u_k = xs
            k, k_noise, k_fail = jax.random.split(k, 3)
            Xf = jax.vmap(lambda x: ravel_pytree(
                forecast_member(unravel(x), f_day, m_day))[0])(X)
            Xf = Xf + jnp.where(is_swc, noise_sd, 0.0) * jax.random.normal(k_noise, Xf.shape, dtype)
            Y = jax.vmap(lambda x: h(unravel(x)))(Xf)
            ok = member_ok(Xf, Y)
            Xf, Y = replace_failed_members(k_fail, Xf, ok, Y)
            os = obs_space(Y, y_k, r_k, u_k)
            tr = ETKF().transform(None, os)
            Xa = apply_transform(Xf, tr)
            Xa = rtps(Xf, Xa, rtps_vec)
            lo = theta_res + 0.005
            Xa = jnp.where(is_swc, jnp.clip(Xa, lo, theta_sat), Xa)
            ma = jax.vmap(unravel)(Xa)
            ma = ma._replace(log_mult=jnp.clip(ma.log_mult, LOG_BOUNDS[:, 0], LOG_BOUNDS[:, 1]))
            pools = jax.tree_util.tree_map(lambda a: jnp.maximum(a, 0.0), ma.state.carbon)
            ma = ma._replace(state=ma.state.replace(carbon=pools))
            Xa = jax.vmap(lambda m: ravel_pytree(m)[0])(ma)
            fdiag = jax.vmap(lambda x: unravel(x).diag)(Xf)
            out = dict(forecast_diag=fdiag, forecast_y=Y,
                       analysis_params=jax.vmap(lambda x: unravel(x).log_mult)(Xa),
                       analysis_swc=jax.vmap(lambda x: unravel(x).state.soil_water_content)(Xa),
                       n_failed=jnp.sum(~ok), n_obs=os.n_obs)
            return (Xa, k), out

        (_, _), outs = jax.lax.scan(cycle, (X0, key), (forcing_days, masks, y, r, use))
        del nx
        return outs

    return run


def initial_ensemble(key, params, state0, n, *, perturb=True):
    k1, k2 = jax.random.split(key)
    sd = jnp.asarray(PRIOR_SD) * (1.0 if perturb else 0.0)
    log_mult = sd * jax.random.normal(k1, (n, 4))
    fac = jnp.exp((0.1 if perturb else 0.0) * jax.random.normal(k2, (n, 1)))
    theta = jnp.clip(state0.soil_water_content[None, :] * fac,
                     params.soil.theta_res + 0.005, params.soil.theta_sat)
    states = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (n,) + jnp.shape(a)), state0)
    states = states.replace(soil_water_content=theta)
    return Member(states, log_mult, jnp.zeros((n, len(DIAG))))


# ------------------------------------------------------------------------------ scoring

def _score_rows(name, fd, obs, held):
    """Skill of the ensemble-mean daily diagnostics ``fd`` (T, N, 6) against observations."""
    mean = fd.mean(1)
    series = {"NEE": (mean[:, 0], obs["nee"].values), "LE": (mean[:, 1], obs["le"].values),
              "GPP (NT partitioned)": (mean[:, 2], obs["gpp"].values),
              "SWC 0.15 m": (mean[:, 3], obs["swc"].values)}
    rows = []
    for var, (m, o) in series.items():
        for subset, sel in (("all days", np.ones_like(held)), ("withheld weeks", held),
                            ("assimilated weeks", ~held)):
            sk = skill(np.where(sel, m, np.nan), o)
            if sk["n"] < 5:   # too few days for a score
                sk = dict(sk, r2=np.nan, rmse=np.nan, bias=np.nan)
            rows.append({"run": name, "variable": var, "days": subset, "n": sk["n"],
                         "r2": sk["r2"], "rmse": sk["rmse"], "bias": sk["bias"]})
    return rows


def _coverage(fd, obs, r_nee, held):
    """Spread-skill and 90 % interval coverage of daily NEE (forecast ensemble)."""
    ens = fd[:, :, 0]
    m, s = ens.mean(1), ens.std(1, ddof=1)
    o = obs["nee"].values
    ok = np.isfinite(o)
    lo, hi = np.quantile(ens, 0.05, axis=1), np.quantile(ens, 0.95, axis=1)
    tot = np.sqrt(s ** 2 + r_nee)
    rows = []
    for subset, sel in (("all days", ok), ("withheld weeks", ok & held), ("assimilated weeks", ok & ~held)):
        if sel.sum() < 3:
            continue
        err = m[sel] - o[sel]
        rows.append({"days": subset, "n": int(sel.sum()), "rmse": float(np.sqrt(np.mean(err ** 2))),
                     "mean_spread": float(np.sqrt(np.mean(s[sel] ** 2))),
                     "mean_total_sd": float(np.sqrt(np.mean(tot[sel] ** 2))),
                     "coverage90_ensemble": float(np.mean((o[sel] >= lo[sel]) & (o[sel] <= hi[sel]))),
                     "coverage90_with_obs_error": float(np.mean(np.abs(err) <= 1.645 * tot[sel]))})
    return rows


# ------------------------------------------------------------------------------ main

def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="experiments/output/da_coupled_real")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--members", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--nee-rep-sd", type=float, default=NEE_REP_SD,
                    help="model/representativeness error sd of daily NEE (umol m-2 s-1)")
    a = ap.parse_args(argv)
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    if a.quick:
        start, end, spin, n = "2018-06-01", "2018-06-28", None, a.members or 16
    else:
        start, end, spin, n = "2018-04-01", "2018-10-31", "2017-01-01", a.members or 48
    params, forcing_days, state0, obs, masks, notes = load_site(start, end, spin)
    t_data = time.perf_counter() - t_start
    _, _, centres, _ = coupled.soil_water.layer_geometry(params.layer_thickness)
    T = len(obs)
    week = np.arange(T) // 7
    held = (week % 4) == 3
    y = np.stack([obs["nee"].values, obs["swc"].values], 1)
    r = np.stack([obs.nee_sd_random.values ** 2 + a.nee_rep_sd ** 2, np.full(T, SWC_SD ** 2)], 1)
    use = np.isfinite(y) & ~held[:, None]
    run = build_run(params, centres, n)
    key = jax.random.PRNGKey(a.seed)
    k_ens, k_run = jax.random.split(key)
    ens = initial_ensemble(k_ens, params, state0, n)
    ens_default = initial_ensemble(k_ens, params, state0, n, perturb=False)
    ex = jax.eval_shape(lambda: ravel_pytree(jax.tree_util.tree_map(lambda v: v[0], ens))[0])
    probe = jax.tree_util.tree_map(lambda v: jnp.zeros_like(v[0]), ens)
    probe = probe._replace(log_mult=jnp.ones(4))
    is_par = np.asarray(ravel_pytree(probe)[0] > 0)
    rtps_vec = jnp.where(is_par, RTPS_PARAMS, RTPS_STATE)
    assert rtps_vec.shape == ex.shape
    args = (jnp.asarray(masks), jnp.asarray(np.nan_to_num(y)), jnp.asarray(r))
    timings, res = {}, {}
    only_nee, only_swc = use.copy(), use.copy()
    only_nee[:, 1] = False
    only_swc[:, 0] = False
    for name, e0, u, noise in (("default", ens_default, np.zeros_like(use), 0.0),
                               ("free ensemble", ens, np.zeros_like(use), 0.0),
                               ("ETKF analysis", ens, use, SWC_NOISE_SD),
                               ("ETKF NEE only", ens, only_nee, SWC_NOISE_SD),
                               ("ETKF SWC only", ens, only_swc, SWC_NOISE_SD)):
        t0 = time.perf_counter()
        o = run(k_run, e0, forcing_days, *args, jnp.asarray(u, float), noise,
                rtps_vec if noise else jnp.zeros_like(rtps_vec))
        o = jax.tree_util.tree_map(np.asarray, o)
        timings[name] = time.perf_counter() - t0
        res[name] = o
    rows = []
    for name, o in res.items():
        rows += _score_rows(name, o["forecast_diag"], obs, held)
    metrics = pd.DataFrame(rows)
    metrics.to_csv(out / "metrics.csv", index=False)
    cov = pd.DataFrame([dict(run=nm, **c) for nm in ("free ensemble", "ETKF analysis",
                                                      "ETKF NEE only", "ETKF SWC only")
                        for c in _coverage(res[nm]["forecast_diag"], obs, r[:, 0], held)])
    cov.to_csv(out / "nee_spread_skill.csv", index=False)
    pa = res["ETKF analysis"]["analysis_params"]            # (T, N, 4) log-multipliers
    mult = np.exp(pa)
    par = pd.DataFrame({"parameter": PARAM_NAMES, "prior_median": 1.0,
                        "prior_90": [f"{np.exp(-1.645 * s):.2f}-{np.exp(1.645 * s):.2f}" for s in PRIOR_SD],
                        "final_median": np.exp(np.median(pa[-1], 0)),
                        "final_5": np.exp(np.quantile(pa[-1], 0.05, 0)),
                        "final_95": np.exp(np.quantile(pa[-1], 0.95, 0)),
                        "final_log_sd": pa[-1].std(0, ddof=1)})
    par.to_csv(out / "parameters.csv", index=False)
    abl = pd.DataFrame({nm: np.exp(np.median(res[nm]["analysis_params"][-1], 0))
                        for nm in ("ETKF analysis", "ETKF NEE only", "ETKF SWC only")},
                       index=list(PARAM_NAMES))
    abl.to_csv(out / "parameters_by_run.csv")

    # figures
    days = obs.index
    fig, ax = plt.subplots(4, 1, figsize=(11, 10), sharex=True)
    for i, nm in enumerate(PARAM_NAMES):
        q = np.quantile(mult[:, :, i], [0.05, 0.5, 0.95], axis=1)
        ax[i].fill_between(days, q[0], q[2], alpha=0.3, label="analysis 5-95 %")
        ax[i].plot(days, q[1], label="analysis median")
        ax[i].axhline(1.0, color="k", lw=0.6, ls="--", label="default")
        ax[i].set_ylabel(nm.replace(" multiplier", "\nmultiplier"))
        ax[i].set_yscale("log")
    ax[0].legend(fontsize=8, ncol=3)
    ax[0].set_title(f"CH-Dav {start[:4]}: parameter trajectories (ETKF, {n} members)")
    fig.tight_layout()
    fig.savefig(out / "parameter_trajectories.png", dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(4, 1, figsize=(11, 11), sharex=True)
    labels = {"NEE": 0, "GPP": 2, "LE": 1, "SWC 0.15 m": 3}
    obs_cols = {"NEE": "nee", "GPP": "gpp", "LE": "le", "SWC 0.15 m": "swc"}
    for a_, (lab, j) in zip(ax, labels.items()):
        for nm, c in (("default", "C7"), ("free ensemble", "C1"), ("ETKF analysis", "C0")):
            fd = res[nm]["forecast_diag"][:, :, j]
            a_.plot(days, fd.mean(1), color=c, lw=0.9, label=nm + (" (forecast mean)" if nm == "ETKF analysis" else ""))
            if nm != "default":
                lo, hi = np.quantile(fd, [0.05, 0.95], axis=1)
                a_.fill_between(days, lo, hi, color=c, alpha=0.15)
        a_.plot(days, obs[obs_cols[lab]], "k.", ms=3, label="tower")
        for d0 in days[held][::7]:
            a_.axvspan(d0, d0 + pd.Timedelta("7D"), color="0.9", zorder=0)
        a_.set_ylabel(lab)
    ax[0].legend(fontsize=8, ncol=2)
    ax[0].set_title("daily means; grey = withheld weeks; GPP and LE never assimilated")
    fig.tight_layout()
    fig.savefig(out / "daily_series.png", dpi=110)
    plt.close(fig)

    fd = res["ETKF analysis"]["forecast_diag"][:, :, 0]
    ok = np.isfinite(obs["nee"].values)
    z = (obs["nee"].values[ok] - fd.mean(1)[ok]) / np.sqrt(fd.std(1, ddof=1)[ok] ** 2 + r[ok, 0])
    # rank histogram with observation error added to the members (Hamill 2001, MWR 129:550)
    noisy = fd[ok] + np.sqrt(r[ok, 0])[:, None] * np.random.default_rng(a.seed).standard_normal(fd[ok].shape)
    rank = (noisy < obs["nee"].values[ok, None]).sum(1)
    fig, ax = plt.subplots(1, 2, figsize=(10, 3.5))
    ax[0].hist(z, bins=20)
    ax[0].set_xlabel("normalised NEE innovation (y - mean)/sqrt(spread^2 + R)")
    ax[0].set_title(f"mean {z.mean():.2f}, sd {z.std():.2f} (ideal 0, 1)")
    ax[1].hist(rank, bins=np.arange(n + 2) - 0.5)
    ax[1].set_xlabel("rank of the observation in the forecast ensemble (+ obs. error)")
    fig.tight_layout()
    fig.savefig(out / "nee_spread_skill.png", dpi=110)
    plt.close(fig)

    total = time.perf_counter() - t_start
    n_failed = int(res["ETKF analysis"]["n_failed"].sum())
    info = {"site": SITE["name"], "period": f"{start}..{end}", "members": n, "days": T,
            "nee_obs_days": int(np.isfinite(obs["nee"]).sum()), "swc_obs_days": int(np.isfinite(obs["swc"]).sum()),
            "assimilated_nee": int(use[:, 0].sum()), "assimilated_swc": int(use[:, 1].sum()),
            "failed_members_replaced": n_failed, "timings_s": timings, "data_s": t_data,
            "total_s": total, "spinup": spin or "none", "innovation_z_mean": float(z.mean()),
            "innovation_z_sd": float(z.std())}
    (out / "summary.json").write_text(json.dumps(info, indent=2))
    piv = metrics[metrics.days != "assimilated weeks"].pivot_table(
        index=["variable", "days", "run"], values=["rmse", "r2", "bias"], sort=False).round(3)
    lines = [f"# Ensemble DA with the coupled model at CH-Dav ({start} to {end})", "",
             f"{n} members, daily ETKF analysis of tower NEE and SWC at 0.15 m, joint "
             "estimation of four log-parameter multipliers (augmentation, RTPS "
             f"{RTPS_STATE} state / {RTPS_PARAMS} parameters, bounds clipped). Every 4th week withheld; GPP and LE never assimilated. "
             "Scores of the daily *forecast* ensemble mean (before the day's analysis). "
             f"Spin-up: {spin or 'none (field capacity)'}. See the module docstring of "
             "`experiments/da_coupled_real.py` for the error model.", "",
             f"Observation days: NEE {info['nee_obs_days']} (assimilated {info['assimilated_nee']}), "
             f"SWC {info['swc_obs_days']} (assimilated {info['assimilated_swc']}). "
             f"Failed members replaced: {n_failed}.", "",
             "## Skill (daily means)", "", piv.to_markdown(), "",
             "## NEE spread-skill and 90 % interval coverage (forecast)", "",
             cov.round(3).to_markdown(index=False), "",
             f"Normalised NEE innovations: mean {z.mean():.2f}, sd {z.std():.2f} (ideal 0 and 1).", "",
             "## Parameters (final analysis ensemble, multipliers of the ENF defaults)", "",
             par.round(3).to_markdown(index=False), "",
             "Final median multipliers when only one observation type is assimilated:", "",
             abl.round(3).to_markdown(), "",
             "## Run time", "",
             f"data + spin-up {t_data:.1f} s; " + "; ".join(f"{k} {v:.1f} s" for k, v in timings.items())
             + f" (first call includes compilation); total {total:.1f} s.", "",
             "Figures: `parameter_trajectories.png`, `daily_series.png`, `nee_spread_skill.png`.", "",
             "Limitations: Richardson 2006 coefficients from memory ([M] in the reference note); "
             f"the NEE representativeness error ({a.nee_rep_sd}) and RTPS weights are chosen, not tuned; "
             "daily means of measured half-hours are daytime-weighted (the operator uses the "
             "same half-hours); SWC at one point vs a 1-D column."]
    if notes:
        lines += ["", "Driver gap filling: " + "; ".join(dict.fromkeys(notes))]
    (out / "REPORT.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return info


if __name__ == "__main__":
    main()
