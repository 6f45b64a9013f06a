"""Real-data ensemble data assimilation with the coupled model at CH-Dav (2018 drought):
daily tower NEE and soil water at 0.15 m, joint state-parameter estimation.

CH-Dav (subalpine ENF, 1639 m) has, in one file, measured half-hourly NEE, LE, partitioned
GPP (night-time method, CUT_REF) and SWC at a known depth (0.15 m); 2018 is the drought year
of the decade. Model: ``CoupledModel("ENF", "loam")``, 30-min steps, members propagated by
its ``step`` through ``assimilation.ensemble.interface_forecast`` (one cycle = one day).
Four log-multipliers are estimated by augmentation (Anderson 2001, Mon. Wea. Rev. 129,
2884): Vcmax25, Medlyn g1, a heterotrophic-respiration rate (litter, fast and slow soil
turnover times x exp(-m), so Rh x exp(m) at fixed pools) and the root closing potential
psi_close; priors N(0, s^2), s = (0.25, 0.3, 0.3, 0.2), clipped to the parameter-table
bounds. Members also perturb the initial soil water (x exp(N(0, 0.1^2))).
Analysis: daily ETKF (Hunt et al. 2007, Physica D 230, 112) with RTPS (Whitaker & Hamill
2012, Mon. Wea. Rev. 140, 3078) 0.7 for the state and 0.3 for the parameters, additive
soil-water noise 0.005 m3 m-3 per day, soil water clipped to [theta_res + 0.005,
theta_sat] and carbon pools to >= 0.
Observations: y1 = mean of the measured NEE half-hours of a day (>= 12 of 48), the model
averaged over the same half-hours; error sd sqrt(sum sigma_i^2)/n with the forest random
error sigma = 0.62 + 0.63 F (F > 0), 1.42 + 0.19 |F| (F < 0) (Richardson et al. 2006,
Agric. For. Meteorol. 136, 1), plus a representativeness error of 1 umol m-2 s-1 (added
in variance). y2 = daily mean SWC at 0.15 m (linear between layer centres), sd
sqrt(0.02^2 + 0.02^2) (sensor + point vs column). Every 4th week is withheld; GPP and LE
are never assimilated. Scores use the forecast ensemble of each day (before its
analysis). Reference runs: default parameters (all members equal) and the free prior
ensemble.

Run: ``python -m experiments.da_coupled_real [--quick] [--members N] [--out DIR]``.
``--quick``: 1-28 June 2018, 16 members, no spin-up (< 1 min). Full: 2017 spin-up with
default parameters, then 1 April - 31 October 2018 with 48 members.
"""
from __future__ import annotations

from dataclasses import dataclass

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from experiments.metrics import skill
from experiments.report import (Expected, enable_float64, markdown_table, parse_settings,
                                save_figure, write_metrics, write_report)
from experiments.sites import get_site


@dataclass(frozen=True)
class Settings:
    out: str = "experiments/output/da_coupled_real"
    start: str = "2018-04-01"
    end: str = "2018-10-31"
    spin_up: str = "2017-01-01"      # "" = none (field capacity, steady-state pools)
    members: int = 48
    seed: int = 0
    nee_rep_sd: float = 1.0          # umol m-2 s-1, representativeness error of daily NEE
    swc_noise_sd: float = 0.005      # m3 m-3 per day, additive noise on every soil layer
    rtps_state: float = 0.7
    rtps_params: float = 0.3

    @classmethod
    def quick(cls) -> "Settings":
        return cls(start="2018-06-01", end="2018-06-28", spin_up="", members=16)


GROUPS = {"vcmax25 multiplier": {"leaf.vcmax25": 1.0}, "g1 multiplier": {"leaf.g1": 1.0},
          "Rh base-rate multiplier": {"carbon.tau_litter": -1.0, "carbon.tau_soil_fast": -1.0,
                                      "carbon.tau_soil_slow": -1.0},
          "psi_close multiplier": {"roots.psi_close": 1.0}}
PRIOR_SD = np.array([0.25, 0.3, 0.3, 0.2])
SWC_DEPTH, SWC_SD, MIN_HH = 0.15, float(np.hypot(0.02, 0.02)), 12
# record of a forecast day: (label, model output, column of the day's measured mask)
COLUMNS = (("nee_at_obs", "nee", 0), ("le_at_obs", "le", 1), ("gpp_day", "gpp", None),
           ("swc_at_obs", "soil_water_content", 2), ("nee_day", "nee", None),
           ("water_stress", "water_stress", None))
RUNS = {"default": ("default", (0, 0)), "free": ("free ensemble", (0, 0)),   # (label, use NEE, SWC)
        "etkf": ("ETKF analysis", (1, 1)), "etkf_nee_only": ("ETKF NEE only", (1, 0)),
        "etkf_swc_only": ("ETKF SWC only", (0, 1))}
VARIABLES = {"nee": ("nee_at_obs", "nee"), "le": ("le_at_obs", "le"), "gpp": ("gpp_day", "gpp"),
             "swc": ("swc_at_obs", "swc")}

# Measured in the quick configuration (float64, 2 CPU cores); the hand-written filter this
# study used before gives the same numbers to 1e-12. Tolerances: about 1 % of each value
# (round-off of the eigen-decompositions and BLAS across platforms, 28 ETKF cycles).
EXPECTED_QUICK = (
    Expected("skill/default/nee/assimilated/rmse", 3.622, 0.03, "default NEE RMSE, assimilated weeks (umol m-2 s-1)"),
    Expected("skill/free/nee/assimilated/rmse", 3.700, 0.03, "free ensemble NEE RMSE (umol m-2 s-1)"),
    Expected("skill/etkf/nee/assimilated/rmse", 1.470, 0.015, "ETKF forecast NEE RMSE (umol m-2 s-1)"),
    Expected("skill/default/le/all/rmse", 55.87, 0.5, "default LE RMSE, never assimilated (W m-2)"),
    Expected("skill/etkf/le/all/rmse", 38.89, 0.4, "ETKF forecast LE RMSE (W m-2)"),
    Expected("skill/etkf/gpp/withheld/rmse", 0.536, 0.01, "ETKF GPP RMSE, withheld weeks (umol m-2 s-1)"),
    Expected("skill/etkf/swc/all/rmse", 0.00963, 0.0001, "ETKF SWC 0.15 m RMSE (m3 m-3)"),
    Expected("parameters/vcmax25 multiplier/final_median", 0.653, 0.007, "final Vcmax25 multiplier"),
    Expected("parameters/g1 multiplier/final_median", 0.777, 0.008, "final g1 multiplier"),
    Expected("innovation_z_sd", 0.963, 0.01, "sd of normalised NEE innovations (ideal 1)"),
)


def daily_observations(ds, steps: int, nee_rep_sd: float):
    """Daily observations of the tower Dataset (module docstring): ``(y (T, 2), var (T, 2),
    weights (T, S, 3) measured masks of NEE, LE, SWC, table of daily means)``."""
    from assimilation.observations.synthetic import flux_random_error_sd
    from assimilation.operators import window_mean_observations
    nee = ds["nee"].values
    nee_day, nee_sd, w_nee = window_mean_observations(
        nee, steps, sigma=flux_random_error_sd(nee, "richardson2006_forest"), min_count=MIN_HH)
    le_day, _, w_le = window_mean_observations(ds["le"].values, steps, min_count=steps // 2)
    swc_day, _, w_swc = window_mean_observations(ds["soil_water_content"].values, steps,
                                                 min_count=steps // 2)
    gpp_day = window_mean_observations(ds["gpp"].values, steps, min_count=steps)[0]
    y = np.stack([nee_day, swc_day], 1)
    var = np.stack([nee_sd ** 2 + nee_rep_sd ** 2, np.full(len(y), SWC_SD ** 2)], 1)
    daily = pd.DataFrame({"nee": nee_day, "le": le_day, "gpp": gpp_day, "swc": swc_day})
    return y, var, np.stack([w_nee, w_le, w_swc], -1), daily


def _skill(record, daily, held, labels):
    """{variable: {days: {rmse, r2, bias, n}}} of the forecast ensemble-mean record."""
    out = {}
    for v, (lab, col) in VARIABLES.items():
        m, o = record[:, :, labels.index(lab)].mean(1), daily[col].values
        out[v] = {}
        for days, sel in (("all", np.ones_like(held)), ("withheld", held), ("assimilated", ~held)):
            s = skill(np.where(sel, m, np.nan), o)
            out[v][days] = {k: (s[k] if s["n"] >= 5 else np.nan) for k in ("rmse", "r2", "bias")} | {"n": s["n"]}
    return out


def main(argv=None) -> dict:
    st = parse_settings(Settings, argv, __doc__.split("\n")[0])
    enable_float64()
    import jax
    import jax.numpy as jnp
    from jax.flatten_util import ravel_pytree
    from assimilation.ensemble import (CycleInputs, ETKF, LogMultipliers, augmented_ensemble,
                                       clip_augmented, coupled_tower_cycles, ensemble_filter,
                                       interface_forecast, member_vector)
    from assimilation.observations import Observations
    from assimilation.operators import CycleMeans
    from process_models.coupled import CoupledModel
    from process_models.io import data_path, read_diive_parquet

    site = get_site("CH-Dav")
    model = CoupledModel(site.pft, site.soil_texture)
    params = model.default_params()
    raw = read_diive_parquet(data_path(*site.path))
    tc = coupled_tower_cycles(raw, site.latitude, site.longitude, st.start, st.end, model=model,
                              spin_up=st.spin_up or None)
    T, S = tc.forcing.air_temperature.shape[:2]
    y, var, weights, daily = daily_observations(tc.data, S, st.nee_rep_sd)
    held = (np.arange(T) // 7) % 4 == 3
    obs = Observations.from_arrays(y, var, mask=~held[:, None], names=("nee", "swc"),
                                   units=("umol m-2 s-1", "m3 m-3"))
    mult = LogMultipliers.from_groups(model, GROUPS)
    record = CycleMeans(COLUMNS, tuple(np.asarray(params.layer_thickness)), SWC_DEPTH)
    labels = record.labels
    forecast = interface_forecast(model, subset=mult, record=record)
    h = record.operator("nee_at_obs", "swc_at_obs")
    swc_box = {"soil_water_content": (params.soil.theta_res + 0.005, params.soil.theta_sat)}
    clip = clip_augmented(mult.bounds(), swc_box, nonnegative=("carbon",))

    def ensemble(key, n, perturb):      # priors of the multipliers, initial soil water x exp(N(0, 0.1^2))
        return augmented_ensemble(key, tc.state0, n, PRIOR_SD * perturb, record.size,
                                  lognormal_fields={"soil_water_content": 0.1 * perturb},
                                  clip_fields=swc_box)

    k_ens, k_run = jax.random.split(jax.random.key(st.seed))
    ens = ensemble(k_ens, st.members, True)
    one = jax.tree_util.tree_map(lambda a: a[0], ens)
    unravel = jax.vmap(jax.vmap(ravel_pytree(one)[1]))
    rtps = member_vector(one, st.rtps_state, st.rtps_params)
    noise = member_vector(one, state_fields={"soil_water_content": st.swc_noise_sd})
    res = {}
    for run, (_, use) in RUNS.items():
        filtered = run.startswith("etkf")
        r = ensemble_filter(k_run, forecast, ensemble(k_ens, st.members, run != "default"), obs, h,
                            obs_mask=jnp.broadcast_to(jnp.asarray(use, bool), (T, 2)),
                            inputs=CycleInputs(tc.forcing, jnp.asarray(weights)), method=ETKF(),
                            rtps=rtps if filtered else 0.0, model_noise=noise if filtered else None,
                            postprocess=clip, store=True)
        res[run] = dict(fc=unravel(r.forecast_ensembles), an=unravel(r.analysis_ensembles),
                        n_failed=int(np.sum(r.n_failed)))
    fd = {k: np.asarray(v["fc"].record) for k, v in res.items()}
    pa = np.asarray(res["etkf"]["an"].params)                      # (T, N, 4) log-multipliers
    last = {k: np.asarray(res[k]["an"].params)[-1] for k in ("etkf_nee_only", "etkf_swc_only")}
    metrics = {"skill": {k: _skill(fd[k], daily, held, labels) for k in RUNS},
               "parameters": {p: {"final_median": np.exp(np.median(pa[-1, :, i])),
                                  "final_5": np.exp(np.quantile(pa[-1, :, i], 0.05)),
                                  "final_95": np.exp(np.quantile(pa[-1, :, i], 0.95)),
                                  "final_log_sd": pa[-1, :, i].std(ddof=1)}
                              | {f"median_{k}": np.exp(np.median(v[:, i])) for k, v in last.items()}
                              for i, p in enumerate(GROUPS)},
               "members": st.members, "days": T, "failed_members_replaced": res["etkf"]["n_failed"],
               "nee_obs_days": int(np.isfinite(y[:, 0]).sum()), "swc_obs_days": int(np.isfinite(y[:, 1]).sum()),
               "assimilated_nee": int(np.asarray(obs.mask[:, 0]).sum()),
               "assimilated_swc": int(np.asarray(obs.mask[:, 1]).sum())}
    # spread-skill of daily NEE: normalised innovations and 90 % coverage with obs. error
    ens_nee = fd["etkf"][:, :, labels.index("nee_at_obs")]
    ok = np.isfinite(y[:, 0])
    tot = np.sqrt(ens_nee.std(1, ddof=1) ** 2 + var[:, 0])
    z = (y[ok, 0] - ens_nee.mean(1)[ok]) / tot[ok]
    metrics |= {"innovation_z_mean": float(z.mean()), "innovation_z_sd": float(z.std()),
                "nee_coverage90": float(np.mean(np.abs(z) <= 1.645))}
    par = pd.DataFrame(metrics["parameters"]).T.rename_axis("parameter").reset_index()
    par.insert(1, "prior_90", [f"{np.exp(-1.645 * s):.2f}-{np.exp(1.645 * s):.2f}" for s in PRIOR_SD])
    figs = _figures(st, tc, daily, held, fd, pa, labels)
    write_metrics(st.out, metrics)
    par.to_csv(f"{st.out}/parameters.csv", index=False)
    rows = [{"run": RUNS[k][0], "variable": v, "days": d, **metrics["skill"][k][v][d]}
            for k in RUNS for v in VARIABLES for d in ("all", "withheld", "assimilated")]
    write_report(st.out, f"Ensemble DA with the coupled model at CH-Dav ({st.start} to {st.end})", [
        f"{st.members} members, daily ETKF of tower NEE and SWC at 0.15 m with four log-parameter "
        f"multipliers (RTPS {st.rtps_state} state / {st.rtps_params} parameters, table bounds). "
        f"Spin-up: {st.spin_up or 'none'}. NEE days {metrics['nee_obs_days']} (assimilated "
        f"{metrics['assimilated_nee']}), SWC days {metrics['swc_obs_days']} (assimilated "
        f"{metrics['assimilated_swc']}); failed members replaced: {metrics['failed_members_replaced']}.",
        "## Skill of the daily forecast ensemble mean\n\n" + markdown_table(pd.DataFrame(rows)),
        f"Normalised NEE innovations: mean {z.mean():.2f}, sd {z.std():.2f} (ideal 0, 1); 90 % "
        f"coverage with observation error {metrics['nee_coverage90']:.2f}.",
        "## Parameters (final analysis ensemble, multipliers of the ENF defaults)\n\n" + markdown_table(par),
        "NEE and soil water pull g1 in opposite directions in the full run: the multipliers "
        "compensate structural error and are not site values. Driver gap filling: "
        + ("; ".join(tc.notes) or "none")], figs, EXPECTED_QUICK, metrics, settings=st)
    return metrics


def _figures(st, tc, daily, held, fd, pa, labels):
    figs, days = [], tc.times[::tc.forcing.air_temperature.shape[1]]
    fig, ax = plt.subplots(len(GROUPS), 1, figsize=(11, 10), sharex=True)
    for i, nm in enumerate(GROUPS):
        q = np.exp(np.quantile(pa[:, :, i], [0.05, 0.5, 0.95], axis=1))
        ax[i].fill_between(days, q[0], q[2], alpha=0.3, label="analysis 5-95 %")
        ax[i].plot(days, q[1], label="analysis median")
        ax[i].axhline(1.0, color="k", lw=0.6, ls="--", label="default")
        ax[i].set_ylabel(nm.replace(" multiplier", "\nmultiplier"))
        ax[i].set_yscale("log")
    ax[0].legend(fontsize=8, ncol=3)
    save_figure(fig, st.out, "parameter_trajectories.png", figs)
    fig, ax = plt.subplots(4, 1, figsize=(11, 11), sharex=True)
    for a, (v, (lab, col)) in zip(ax, VARIABLES.items()):
        for k, c in (("default", "C7"), ("free", "C1"), ("etkf", "C0")):
            e = fd[k][:, :, labels.index(lab)]
            a.plot(days, e.mean(1), color=c, lw=0.9, label=RUNS[k][0])
            a.fill_between(days, *np.quantile(e, [0.05, 0.95], axis=1), color=c, alpha=0.15)
        a.plot(days, daily[col], "k.", ms=3, label="tower")
        for d0 in days[held][::7]:
            a.axvspan(d0, d0 + pd.Timedelta("7D"), color="0.9", zorder=0)
        a.set_ylabel(v.upper())
    ax[0].legend(fontsize=8, ncol=2)
    ax[0].set_title("daily means (forecast); grey = withheld weeks; GPP and LE never assimilated")
    save_figure(fig, st.out, "daily_series.png", figs)
    return figs


if __name__ == "__main__":
    main()
