"""Twin experiment: joint state-parameter ETKF with the coupled model at CH-Dav, synthetic
observations from a truth run with hidden parameters.

Forcing: real CH-Dav half-hourly meteorology (driver gaps filled), ``CoupledModel("ENF",
"loam")``, LAI prognostic (SLA x leaf carbon). Truth: the model with three hidden
log-multipliers (Vcmax25 x 1.30, Medlyn g1 x 0.75, heterotrophic rate x 1.35 -- litter,
fast and slow soil turnover times / 1.35, so Rh x 1.35 at fixed pools), about one prior sd
from the prior mean 1. Prior: log-multipliers ~ N(0, s^2), s = (0.25, 0.3, 0.3), initial
soil water x exp(N(0, 0.1^2)) per member (the truth starts unperturbed).

Synthetic observations (``assimilation.observations.synthetic``): half-hourly NEE of the
truth with instrument outages (6 per year, 1-14 d), 60 % of night and 15 % of day records
removed and Laplace errors of the forest model sigma = a + b|F| (Richardson et al. 2006,
Agric. For. Meteorol. 136, 1), assimilated as the daily mean of the measured half-hours
(>= 12 of 48; error sd sqrt(sum sigma_i^2)/n plus 0.3 umol m-2 s-1 in variance; the model
is averaged over the same half-hours); daily soil water at 0.15 m + N(0, 0.025^2), 10 %
of days missing; satellite-like LAI every 8th day, 40 % lost to clouds, sd max(0.2, 0.1 LAI).

Filter: ``ensemble_filter`` (ETKF, Hunt et al. 2007, Physica D 230, 112; one cycle = one
day) on members propagated by the model's ``step`` (``interface_forecast``) with
augmentation (Anderson 2001, Mon. Wea. Rev. 129, 2884): RTPS (Whitaker & Hamill 2012)
0.6 parameters / 0.7 state, soil-water noise 0.001 per day, soil water, carbon pools and
multipliers clipped to their bounds. ES-MDA (Emerick & Reynolds 2013, Comput. Geosci. 55,
3; 4 equal steps) on the same prior members (multipliers + initial soil water) and all
observations at once. References: the prior-mean ("default") parameters and the free
prior ensemble (the same filter with every observation masked). Scores: parameter recovery
(90 % interval = mean +/- 1.645 sd of the final log-multipliers) and daily RMSE against the
truth of NEE, GPP, SWC 0.15 m and LAI.

Particle filter on the same truth, observations and prior (``particle_filter``, bootstrap
proposal: the model plus the same soil-water noise; Gordon et al. 1993, IEE Proc. F 140,
107) with ``pf_particles`` members: systematic resampling when N_eff <= 0.5 N; after each
resampling the log-multipliers (only they) get the Liu & West (2001) shrinkage kernel
(a = sqrt(1 - b^2), b = ``pf_reg`` x N^(-1/(Nx+4))), so static parameters keep their
weighted mean and spread instead of collapsing onto a few particles; the same clipping
as the ETKF. PF and ETKF are scored alike (``assimilation.ensemble.scores.twin_scores``):
daily RMSE of the analysis mean, RMS spread and coverage of the mean +/- 1.645 sd interval
of NEE, GPP, SWC and LAI against the truth, parameter recovery, and the PF's effective
sample size history.

Run: ``python -m experiments.da_twin_coupled [--quick] [--members N] [--out DIR]``.
``--quick``: 1-28 June 2018, 16 members (PF 256 particles), no spin-up (< 1 min). Full: 2017
spin-up, then 1 April - 31 October 2018 with 48 members (PF 1024 particles).
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from experiments.report import (Expected, enable_float64, markdown_table, parse_settings,
                                save_figure, write_metrics, write_report)
from experiments.sites import get_site


@dataclass(frozen=True)
class Settings:
    out: str = "experiments/output/da_twin_coupled"
    start: str = "2018-04-01"
    end: str = "2018-10-31"
    spin_up: str = "2017-01-01"      # "" = none
    members: int = 48
    seed: int = 0
    rtps_state: float = 0.7
    rtps_params: float = 0.6
    nee_rep_sd: float = 0.3          # umol m-2 s-1, extra error of daily NEE
    swc_obs_sd: float = 0.025        # m3 m-3
    swc_noise_sd: float = 0.001      # m3 m-3 per day
    pf_particles: int = 1024         # 0 = no particle filter
    pf_threshold: float = 0.5        # resample when N_eff <= threshold x N
    pf_reg: float = 0.3              # kernel factor of the parameters' Liu-West kernel

    @classmethod
    def quick(cls) -> "Settings":
        return cls(start="2018-06-01", end="2018-06-28", spin_up="", members=16,
                   pf_particles=256)


GROUPS = {"vcmax25 multiplier": {"leaf.vcmax25": 1.0}, "g1 multiplier": {"leaf.g1": 1.0},
          "Rh base-rate multiplier": {"carbon.tau_litter": -1.0, "carbon.tau_soil_fast": -1.0,
                                      "carbon.tau_soil_slow": -1.0}}
TRUTH_LOG = np.log(np.array([1.30, 0.75, 1.35]))
PRIOR_SD = np.array([0.25, 0.3, 0.3])
SWC_DEPTH, MIN_HH = 0.15, 12
COLUMNS = (("nee_at_obs", "nee", 0), ("gpp_day", "gpp", None), ("swc_day", "soil_water_content", None),
           ("nee_day", "nee", None), ("lai_day", "lai", None))
SERIES = {"NEE": "nee_day", "GPP": "gpp_day", "SWC 0.15 m": "swc_day", "LAI": "lai_day"}

# Measured in the quick configuration (float64, 2 CPU cores); the earlier version of this
# study (hand-written forecast and multipliers) gives the same numbers to 1e-14.
# Tolerances: about 2 % of each value, 0.01 for log-multipliers (round-off of the
# eigen-decompositions across platforms over 28 cycles and 4 ES-MDA steps).
EXPECTED_QUICK = (
    Expected("parameters/vcmax25 multiplier/posterior_log_mean", 0.1356, 0.01, "ETKF log Vcmax25 multiplier (truth 0.262)"),
    Expected("parameters/vcmax25 multiplier/posterior_log_sd", 0.0805, 0.005, "its posterior sd (prior 0.25)"),
    Expected("parameters/g1 multiplier/posterior_log_mean", 0.0509, 0.01, "ETKF log g1 multiplier (truth -0.288)"),
    Expected("parameters/Rh base-rate multiplier/posterior_log_mean", -0.0102, 0.01, "ETKF log Rh multiplier (truth 0.300)"),
    Expected("parameters/vcmax25 multiplier/esmda_log_mean", 0.1461, 0.01, "ES-MDA log Vcmax25 multiplier"),
    Expected("truth_in_90", 3, 0, "parameters with the truth in the ETKF 90 % interval"),
    Expected("rmse/GPP/default", 1.465, 0.03, "daily GPP RMSE, prior-mean parameters (umol m-2 s-1)"),
    Expected("rmse/GPP/analysis", 0.7549, 0.015, "daily GPP RMSE, ETKF analysis (umol m-2 s-1)"),
    Expected("rmse/NEE/analysis", 0.2295, 0.005, "daily NEE RMSE, ETKF analysis (umol m-2 s-1)"),
    Expected("rmse/LAI/analysis", 0.01329, 0.0005, "daily LAI RMSE, ETKF analysis (m2 m-2)"),
    # particle filter (256 particles): resampling is a discontinuous function of the weights,
    # so a round-off change can move one index; tolerances about 5-10 %, coverage +- 2 days
    Expected("pf_vs_etkf/PF/ess_mean", 173.3, 12.0, "PF mean effective sample size (of 256)"),
    Expected("pf_vs_etkf/PF/resampled_days", 3, 1, "PF days with resampling (of 28)"),
    Expected("pf_vs_etkf/PF/series/GPP/rmse", 0.6762, 0.04, "daily GPP RMSE, PF (umol m-2 s-1)"),
    Expected("pf_vs_etkf/PF/series/NEE/rmse", 0.2752, 0.015, "daily NEE RMSE, PF (umol m-2 s-1)"),
    Expected("pf_vs_etkf/PF/series/GPP/coverage", 0.679, 0.08, "PF GPP 90 % interval coverage"),
    Expected("pf_vs_etkf/ETKF/series/GPP/coverage", 0.893, 0.04, "ETKF GPP 90 % interval coverage"),
    Expected("pf_vs_etkf/PF/parameters/vcmax25 multiplier/log_mean", 0.1186, 0.02, "PF log Vcmax25 multiplier (truth 0.262)"),
    Expected("pf_vs_etkf/PF/parameters/vcmax25 multiplier/log_sd", 0.0647, 0.006, "its PF posterior sd (prior 0.25)"),
)


def synthetic_observations(nee_hh, truth, times, is_night, st: Settings):
    """Daily observations (T, 3) [NEE at measured half-hours, SWC, LAI] with NaN gaps, their
    error variances (T, 3), the half-hourly NEE measurement mask (T, S) and counts."""
    from assimilation.observations.synthetic import synthetic_flux_nee
    from assimilation.operators import window_mean_observations
    import xarray as xr
    T, S = nee_hh.shape
    fl = synthetic_flux_nee(xr.DataArray(nee_hh.reshape(-1), dims="time", coords={"time": times}),
                            is_night=is_night, error_model="richardson2006_forest", seed=st.seed)
    nee_day, nee_sd, m = window_mean_observations(fl["nee"].values, S, sigma=fl["nee_sigma"].values,
                                                  min_count=MIN_HH)
    rng = np.random.default_rng(st.seed + 1)
    swc = truth["swc_day"] + st.swc_obs_sd * rng.standard_normal(T)
    swc[rng.random(T) < 0.1] = np.nan
    lai_sd = np.maximum(0.2, 0.1 * truth["lai_day"])
    lai = truth["lai_day"] + lai_sd * rng.standard_normal(T)
    lai[(np.arange(T) % 8 != 7) | (rng.random(T) < 0.4)] = np.nan
    y = np.stack([nee_day, swc, lai], 1)
    r = np.stack([nee_sd ** 2 + st.nee_rep_sd ** 2, np.full(T, st.swc_obs_sd ** 2), lai_sd ** 2], 1)
    info = dict(nee_hh_measured_fraction=float(m.mean()), nee_days=int(np.isfinite(nee_day).sum()),
                swc_days=int(np.isfinite(swc).sum()), lai_days=int(np.isfinite(lai).sum()),
                outages=int(fl.attrs["outages"]))
    return y, r, m, info


def rmse(a, b):
    ok = np.isfinite(a) & np.isfinite(b)
    return float(np.sqrt(np.mean((a[ok] - b[ok]) ** 2)))


def main(argv=None) -> dict:
    st = parse_settings(Settings, argv, __doc__.split("\n")[0])
    enable_float64()
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree
    from assimilation.ensemble import (Augmented, CycleInputs, ETKF, LogMultipliers,
                                       augmented_ensemble, clip_augmented, coupled_tower_cycles,
                                       ensemble_filter, esmda, interface_forecast, member_vector)
    from assimilation.ensemble.particle import particle_filter
    from assimilation.observations import Observations
    from assimilation.operators import CycleMeans
    from process_models.coupled import CoupledModel
    from process_models.io import data_path, read_diive_parquet

    site = get_site("CH-Dav")
    model = CoupledModel(site.pft, site.soil_texture)
    params = model.default_params()
    tc = coupled_tower_cycles(read_diive_parquet(data_path(*site.path)), site.latitude,
                              site.longitude, st.start, st.end, model=model, spin_up=st.spin_up or None)
    T, S = tc.forcing.air_temperature.shape[:2]
    flat = jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), tc.forcing)
    mult = LogMultipliers.from_groups(model, GROUPS)
    record = CycleMeans(COLUMNS, tuple(np.asarray(params.layer_thickness)), SWC_DEPTH)

    def daily_truth(log_mult):
        out = model.simulate(mult.apply(params, jnp.asarray(log_mult)), flat, tc.state0)
        rec = jax.vmap(record)(jax.tree_util.tree_map(lambda x: x.reshape((T, S) + x.shape[1:]), out))
        return np.asarray(out.nee).reshape(T, S), {c: np.asarray(rec[:, record.index(c)]) for c in SERIES.values()}

    nee_hh, truth = daily_truth(TRUTH_LOG)
    default = daily_truth(np.zeros(len(GROUPS)))[1]
    y, r, m_nee, obs_info = synthetic_observations(nee_hh, truth, tc.times,
                                                   np.asarray(flat.cos_zenith) <= 0, st)
    obs = Observations.from_arrays(y, r, names=("nee", "swc", "lai"),
                                   units=("umol m-2 s-1", "m3 m-3", "m2 m-2"))

    swc_box = {"soil_water_content": (params.soil.theta_res + 0.005, params.soil.theta_sat)}
    bounds = mult.bounds()
    forecast = interface_forecast(model, subset=mult, record=record)
    h = record.operator("nee_at_obs", "swc_day", "lai_day")
    k_ens, k_run = jax.random.split(jax.random.key(st.seed))
    ens0 = augmented_ensemble(k_ens, tc.state0, st.members, PRIOR_SD, record.size,
                              lognormal_fields={"soil_water_content": 0.1}, clip_fields=swc_box)
    one = jax.tree_util.tree_map(lambda a: a[0], ens0)
    inputs = CycleInputs(tc.forcing, jnp.asarray(m_nee[..., None]))
    kw = dict(method=ETKF(), inputs=inputs, rtps=member_vector(one, st.rtps_state, st.rtps_params, 0.0),
              model_noise=member_vector(one, state_fields={"soil_water_content": st.swc_noise_sd}),
              postprocess=clip_augmented(bounds, swc_box, ("carbon",)), store=True)
    res = ensemble_filter(k_run, forecast, ens0, obs, h, **kw)
    free = ensemble_filter(k_run, forecast, ens0, obs, h, obs_mask=jnp.zeros(y.shape), **kw)
    pf = None
    if st.pf_particles:     # same prior distribution, more members; parameters-only kernel
        k_pe, k_pf = jax.random.split(jax.random.fold_in(k_run, 1))
        parts0 = augmented_ensemble(k_pe, tc.state0, st.pf_particles, PRIOR_SD, record.size,
                                    lognormal_fields={"soil_water_content": 0.1}, clip_fields=swc_box)
        pf = particle_filter(k_pf, forecast, parts0, obs, h, inputs=inputs, threshold=st.pf_threshold,
                             regularisation=member_vector(one, 0.0, st.pf_reg, 0.0), shrinkage=True,
                             jitter_duplicates_only=False, model_noise=kw["model_noise"],
                             postprocess=kw["postprocess"])

    # ES-MDA over the whole window: multipliers and initial soil water of the same members
    def forward(mem):
        m0 = Augmented(one.state.replace(soil_water_content=mem[1]),
                       jnp.clip(mem[0], bounds[:, 0], bounds[:, 1]), jnp.zeros(record.size))
        return jax.lax.scan(lambda mm, x: (lambda n: (n, h(n)))(forecast(mm, x)), m0, inputs)[1].reshape(-1)

    es = esmda(k_run, forward, (ens0.params, ens0.state.soil_water_content),
               jnp.asarray(obs.values).reshape(-1), jnp.asarray(obs.variance).reshape(-1),
               alphas=4, mask=jnp.asarray(obs.mask).reshape(-1).astype(float))
    es_final = np.asarray(es.ensemble[0])
    unravel = jax.vmap(jax.vmap(ravel_pytree(one)[1]))
    lm_a = np.asarray(unravel(res.analysis_ensembles).params)      # (T, N, 3)
    final = lm_a[-1]
    mu, sd = final.mean(0), final.std(0, ddof=1)
    inside = np.abs(TRUTH_LOG - mu) <= 1.645 * sd
    par = pd.DataFrame({"parameter": list(GROUPS), "truth": np.exp(TRUTH_LOG), "prior_log_sd": PRIOR_SD,
                        "posterior_median": np.exp(np.median(final, 0)), "posterior_log_mean": mu,
                        "posterior_log_sd": sd, "truth_log": TRUTH_LOG, "z_truth": (TRUTH_LOG - mu) / sd,
                        "post_90_lo": np.exp(mu - 1.645 * sd), "post_90_hi": np.exp(mu + 1.645 * sd),
                        "truth_in_90": inside, "esmda_log_mean": es_final.mean(0),
                        "esmda_log_sd": es_final.std(0, ddof=1)})
    runs = {"free": np.asarray(free.forecast_mean.record), "forecast": np.asarray(res.forecast_mean.record),
            "analysis": np.asarray(res.analysis_mean.record)}
    rm = {v: {"default": rmse(default[c], truth[c])}
          | {k: rmse(a[:, record.index(c)], truth[c]) for k, a in runs.items()} for v, c in SERIES.items()}
    metrics = {"parameters": par.set_index("parameter").to_dict("index"), "rmse": rm,
               "truth_in_90": int(inside.sum()), "members": st.members, "days": T,
               "n_failed": int(np.asarray(res.n_failed).sum()), **obs_info}
    figs = _figures(st, tc.times[::S], lm_a, truth, default, runs, y, record)
    pf_text = []
    if pf is not None:
        unravel1 = jax.vmap(ravel_pytree(one)[1])
        moments = {"ETKF": (res.analysis_mean, res.analysis_spread),
                   "PF": (unravel1(pf.mean), unravel1(pf.sd))}
        metrics["pf_vs_etkf"], table = _pf_vs_etkf(moments, truth, record)
        metrics["pf_vs_etkf"]["PF"] |= {"ess_mean": float(pf.ess.mean()), "ess_min": float(pf.ess.min()),
                                        "ess_final": float(pf.ess[-1]), "particles": st.pf_particles,
                                        "resampled_days": int(pf.resampled.sum())}
        figs += _pf_figure(st, tc.times[::S], pf, moments)
        pf_text = [f"## Particle filter vs ETKF on the same truth\n\nPF: {st.pf_particles} particles, "
                   f"bootstrap proposal, resampling at N_eff <= {st.pf_threshold} N "
                   f"({metrics['pf_vs_etkf']['PF']['resampled_days']} of {T} days), Liu-West kernel on "
                   f"the log-multipliers (reg {st.pf_reg}); ETKF: {st.members} members. Effective "
                   f"sample size: mean {float(pf.ess.mean()):.1f}, min {float(pf.ess.min()):.1f}. "
                   "Daily analysis mean vs truth: RMSE, RMS spread and coverage of the mean +/- "
                   "1.645 sd interval (nominal 0.90); parameters: final log-multiplier mean and sd.\n\n"
                   + markdown_table(table)]
    write_metrics(st.out, metrics)
    par.to_csv(f"{st.out}/parameters.csv", index=False)
    write_report(st.out, f"Twin experiment: coupled model at CH-Dav ({st.start} to {st.end})", [
        f"Truth with hidden multipliers (Vcmax25 x1.30, g1 x0.75, Rh x1.35); {st.members}-member daily "
        f"ETKF with augmentation (RTPS {st.rtps_state} state / {st.rtps_params} parameters). Synthetic "
        f"daily NEE on {obs_info['nee_days']} days ({obs_info['nee_hh_measured_fraction']:.0%} of "
        f"half-hours, {obs_info['outages']} outages), SWC on {obs_info['swc_days']} days, LAI on "
        f"{obs_info['lai_days']} days. Failed members: {metrics['n_failed']}.",
        "## Parameter recovery (final analysis ensemble; ES-MDA on the same members)\n\n" + markdown_table(par),
        f"Truth inside the 90 % interval: {int(inside.sum())} of {len(GROUPS)} parameters.",
        "## Daily RMSE against the truth\n\n" + markdown_table(pd.DataFrame(rm).T, index=True),
        "forecast = the day's forecast from the previous analysis; analysis = after the day's "
        "update. NEE is the all-hours daily mean (only measured half-hours are observed).",
        *pf_text],
        figs, EXPECTED_QUICK, metrics, settings=st)
    return metrics


def _pf_vs_etkf(moments, truth, record):
    """Scores of each method (metrics dict) and one comparison table."""
    from assimilation.ensemble.scores import twin_scores
    out, rows = {}, []
    for method, (mean, sd) in moments.items():
        m_rec, s_rec = np.asarray(mean.record), np.asarray(sd.record)
        sc = {v: twin_scores(m_rec[:, record.index(c)], s_rec[:, record.index(c)], truth[c])
              for v, c in SERIES.items()}
        mu, sdp = np.asarray(mean.params)[-1], np.asarray(sd.params)[-1]
        inside = np.abs(TRUTH_LOG - mu) <= 1.645 * sdp
        out[method] = {"series": sc, "truth_in_90": int(inside.sum()),
                       "parameters": {nm: {"log_mean": float(mu[i]), "log_sd": float(sdp[i])}
                                      for i, nm in enumerate(GROUPS)}}
        row = {"method": method}
        for v, d in sc.items():
            row[f"{v} RMSE / spread / cov."] = f"{d['rmse']:.3g} / {d['spread']:.3g} / {d['coverage']:.2f}"
        for i, nm in enumerate(GROUPS):
            row[nm.split()[0] + " log (truth %.2f)" % TRUTH_LOG[i]] = f"{mu[i]:.3f} +/- {sdp[i]:.3f}"
        rows.append(row)
    return out, pd.DataFrame(rows)


def _pf_figure(st, days, pf, moments):
    figs = []
    fig, ax = plt.subplots(1 + len(GROUPS), 1, figsize=(10, 9), sharex=True)
    ess = np.asarray(pf.ess) / st.pf_particles
    ax[0].plot(days, ess, "C0.-", label="N_eff / N after reweighting")
    rs = np.asarray(pf.resampled)
    ax[0].plot(days[rs], ess[rs], "rv", ms=5, label="resampled")
    ax[0].axhline(st.pf_threshold, color="k", lw=0.6, ls="--", label="threshold")
    ax[0].set_ylabel("ESS fraction")
    ax[0].legend(fontsize=8, ncol=3)
    for i, nm in enumerate(GROUPS):
        a = ax[1 + i]
        for c, (method, (mean, sd)) in zip(("C1", "C0"), moments.items()):
            mu, s = np.asarray(mean.params)[:, i], np.asarray(sd.params)[:, i]
            a.fill_between(days, np.exp(mu - 1.645 * s), np.exp(mu + 1.645 * s), color=c, alpha=0.25)
            a.plot(days, np.exp(mu), c, label=f"{method} mean and 90 %")
        a.axhline(np.exp(TRUTH_LOG[i]), color="r", lw=1.2, label="truth")
        a.set_yscale("log")
        a.set_ylabel(nm.replace(" multiplier", "\nmultiplier"))
    ax[1].legend(fontsize=8, ncol=3)
    save_figure(fig, st.out, "pf_vs_etkf.png", figs)
    return figs


def _figures(st, days, lm_a, truth, default, runs, y, record):
    figs = []
    fig, ax = plt.subplots(len(GROUPS), 1, figsize=(10, 8), sharex=True)
    for i, nm in enumerate(GROUPS):
        q = np.exp(np.quantile(lm_a[:, :, i], [0.05, 0.5, 0.95], axis=1))
        ax[i].fill_between(days, q[0], q[2], alpha=0.3, label="analysis 5-95 %")
        ax[i].plot(days, q[1], label="analysis median")
        ax[i].axhline(np.exp(TRUTH_LOG[i]), color="r", lw=1.2, label="truth")
        ax[i].axhline(1.0, color="k", lw=0.6, ls="--", label="prior mean")
        ax[i].set_yscale("log")
        ax[i].set_ylabel(nm.replace(" multiplier", "\nmultiplier"))
    ax[0].legend(fontsize=8, ncol=4)
    save_figure(fig, st.out, "parameter_recovery.png", figs)
    fig, ax = plt.subplots(4, 1, figsize=(10, 10), sharex=True)
    yobs = {"NEE": y[:, 0], "SWC 0.15 m": y[:, 1], "LAI": y[:, 2]}
    for a, (v, c) in zip(ax, SERIES.items()):
        a.plot(days, truth[c], "k", lw=1.5, label="truth")
        a.plot(days, default[c], "C7", lw=0.9, label="default params")
        a.plot(days, runs["free"][:, record.index(c)], "C1", lw=0.9, label="free ensemble mean")
        a.plot(days, runs["analysis"][:, record.index(c)], "C0", lw=0.9, label="ETKF analysis mean")
        if v in yobs:
            a.plot(days, yobs[v], "k.", ms=3, label="observations")
        a.set_ylabel(v)
    ax[0].legend(fontsize=8, ncol=3)
    save_figure(fig, st.out, "daily_series.png", figs)
    return figs


if __name__ == "__main__":
    main()
