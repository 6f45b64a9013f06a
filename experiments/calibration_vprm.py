"""Bayesian calibration of VPRM against flux towers with NUTS (NumPyro), single-site
and hierarchical multi-site (issue 7).

Sites (real data, each with satellite indices):

* **US-PFa Park Falls 2005** (mixed forest, class 3): hourly NEE, MODIS EVI (MOD13Q1) and
  LSWI (MCD43A4). Temporal cross-validation: calibrate on odd months, validate on even
  months (one year only).
* **AT-Neu Neustift July 2010** (grassland, class 7): half-hourly FLUXNET2015 NEE
  (QC 0 only) with MOD13A1 EVI and the SWIR2 LSWI variant (band 6 is not in the extract);
  night-time partitioned GPP/Reco for component checks.
* **FR-Pue Puechabon May 2012** (evergreen broadleaf, class 1): half-hourly NEE (QC 0)
  with satellite fAPAR (rsofun/FluxDataKit daily series) in VPRM's fAPAR light mode;
  no LSWI is shipped, so Wscale = 1.
* **BE-Vie Vielsalm 2014** (mixed forest, class 3): no NEE in the shipped file; the
  daytime-partitioned GPP (GPP_DT_CUT_REF) is the (soft) target, fAPAR light mode.

Priors: Mahadevan et al. (2008) table for the class (log-normal lam, alpha, PAR0 with
log-sd >= 1, normal beta; ``process_models.vprm.parameter_table``). Likelihood: Gaussian
with per-record sigma = a + b+ F+ + b- F- (F = the mean diurnal course of the
observations, a/b from the 24-h paired-difference fit or Richardson/Neustift
coefficients), an AR(1) model-error term (rho learned) and a learned sigma inflation.

Run: ``python -m experiments.calibration_vprm [--quick] [--out DIR]``. ``--quick``
(< 60 s, ``make demo``): SVI on Park Falls only.

Stages (``--stages single,cv,hier``, default all): ``single`` = the four single-site NUTS
fits (MAP start, 2 chains x 400 warm-up, ``--blocks`` x 400 draws; checkpoints in
``ckpt_<site>``: re-running with more blocks only draws the missing blocks); ``cv`` =
temporal cross-validation at US-PFa (checkpoint ``ckpt_US-PFa_cv``); ``hier`` = the
hierarchical 4-site fit, started at the single-site posterior medians (checkpoint
``ckpt_hierarchical``). Each stage writes ``parts/<stage>.md`` and ``parts/<stage>.csv``;
``REPORT.md`` and ``metrics.csv`` are assembled from the parts present after every run,
so stages can run in separate (background) processes and be resumed independently.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

jax.config.update("jax_enable_x64", True)

from assimilation.calibration import (ErrorModel, FluxObservations, build_model,  # noqa: E402
                                      convergence_summary, expected_flux, find_map,
                                      fit_flux_error_model, flux_sigma, interface_model_fn,
                                      plot_pairs, plot_predictive, plot_traces, ppc_coverage,
                                      predictive_draws, priors_from_table, run_nuts, run_svi,
                                      save_netcdf, to_inference_data)
from assimilation.calibration.hierarchical import HierSite, build_hierarchical_model  # noqa: E402
from experiments.metrics import daily_means, skill  # noqa: E402
from process_models.io import (data_path, park_falls_vprm_forcing, read_bigleaf_month, read_modis_sites_mod13a1,  # noqa: E402
                               read_park_falls, read_pyrealm_merged)
from process_models.satellite import interpolate_to_times, lswi, yearly_statistics  # noqa: E402
from process_models.vprm import (VPRMForcing, VPRMOptions, load_parameters,  # noqa: E402
                                 parameter_table, simulate)

NAMES = ("lam", "par0", "alpha", "beta")
PRIOR_TABLE = "mahadevan2008"


@dataclass
class Site:
    """One calibration site: forcing at every model step, observed stream, references."""
    name: str
    class_id: int
    forcing: VPRMForcing
    times: np.ndarray
    obs: np.ndarray                 # observed quantity, NaN where not used
    variable: str                   # "nee" or "gpp"
    options: VPRMOptions
    sigma_coef: tuple               # (a, b_pos, b_neg), umol m-2 s-1
    sigma_source: str
    steps_per_day: int
    gpp_ref: np.ndarray | None = None
    reco_ref: np.ndarray | None = None
    note: str = ""

    @property
    def base(self):
        return load_parameters(PRIOR_TABLE, temperatures="mahadevan2008", classes=[self.class_id])


def _forcing(t, par, evi, lsw, stats, fapar=None):
    n = len(t)
    return VPRMForcing(temperature=jnp.asarray(t), par=jnp.asarray(par), evi=jnp.asarray(evi),
                       lswi=jnp.asarray(lsw), evi_threshold=jnp.full(n, stats["evi_threshold"]),
                       lswi_min=jnp.full(n, stats["lswi_min"]), lswi_max=jnp.full(n, stats["lswi_max"]),
                       class_fractions=jnp.ones((n, 1)),
                       fapar=None if fapar is None else jnp.asarray(fapar))


def _days(times, ref):
    return (np.asarray(times, "datetime64[ns]") - np.datetime64(ref)) / np.timedelta64(1, "D")


def park_falls_site() -> Site:
    """US-PFa 2005 hourly (inputs as in experiments.vprm_first_study)."""
    tower = read_park_falls()["tower"]
    forcing = park_falls_vprm_forcing()
    nee = tower.nee.values
    fit = fit_flux_error_model(nee, tower.ppfd_in.values, tower.air_temperature.values, steps_per_day=24)
    return Site("US-PFa", 3, forcing,
                tower.time.values, nee, "nee", VPRMOptions(mode="smooth"),
                (fit["a"], fit["b_pos"], fit["b_neg"]),
                f"24-h paired differences ({fit['n_pairs']} pairs)", 24,
                note="hourly FC (no storage term), 2005")


def at_neu_site() -> Site:
    """AT-Neu July 2010 half-hourly, MOD13A1 EVI + SWIR2 LSWI, QC-0 NEE."""
    tw = read_bigleaf_month(data_path("fluxnet2015_month-subsets_bigleaf", "AT_Neu_Jul_2010.csv"))
    m = read_modis_sites_mod13a1(site="AT-Neu")
    m = m.sel(time=slice("2009-12-01", "2011-01-31"))
    ok = np.asarray(m["valid"].values, bool)
    t_sat = m.time.values[ok]
    evi = m["evi"].values[ok]
    lsw = np.asarray(lswi(m["nir"].values[ok], m["swir21"].values[ok]))
    hours = _days(tw.time.values, "2010-01-01")
    sd = _days(t_sat, "2010-01-01")
    evi_h = np.asarray(interpolate_to_times(evi[:, None], sd, hours).values[:, 0])
    lswi_h = np.asarray(interpolate_to_times(lsw[:, None], sd, hours).values[:, 0])
    grid = np.arange(0, 365, 8.0)
    stats = {k: float(v[0]) for k, v in yearly_statistics(
        interpolate_to_times(evi[:, None], sd, grid).values,
        interpolate_to_times(lsw[:, None], sd, grid).values).items()}
    nee = np.where(tw["nee_qc"].values == 0, tw["nee_filled"].values, np.nan)
    return Site("AT-Neu", 7, _forcing(tw.air_temperature.values, tw.ppfd_in.values, evi_h, lswi_h, stats),
                tw.time.values, nee, "nee", VPRMOptions(mode="smooth"),
                (2.48, 0.19, 0.08), "Neustift closed-path fit (Richardson-Hollinger method, AFM 149, 291)",
                48, gpp_ref=tw["gpp"].values, reco_ref=tw["reco"].values,
                note="July 2010, QC 0 half-hours; LSWI from SWIR2 (b07)")


def _rsofun_fapar(times):
    f = pd.read_csv(data_path("fr-pue_2007-2012_daily_rsofun", "p_model_drivers_forcing.csv"),
                    parse_dates=["date"])
    d = _days(f["date"].values + np.timedelta64(12, "h"), "2007-01-01")
    return np.interp(_days(times, "2007-01-01"), d, f["fapar"].values)


def fr_pue_site() -> Site:
    """FR-Pue May 2012 half-hourly NEE (QC 0), daily satellite fAPAR, fAPAR light mode."""
    tw = read_bigleaf_month(data_path("fluxnet2015_month-subsets_bigleaf", "FR_Pue_May_2012.csv"))
    par = tw.ppfd_in.values.copy()
    par = np.where(np.isfinite(par) & (par > 20.0), par, 0.0)   # night-time sensor offset (PROVENANCE)
    fap = _rsofun_fapar(tw.time.values)
    n = len(par)
    stats = {"evi_threshold": 0.0, "lswi_min": 0.0, "lswi_max": 0.5}
    nee = np.where(tw["nee_qc"].values == 0, tw["nee_filled"].values, np.nan)
    return Site("FR-Pue", 1, _forcing(tw.air_temperature.values, par, fap, np.full(n, 0.5), stats, fapar=fap),
                tw.time.values, nee, "nee", VPRMOptions(mode="smooth", light="fapar"),
                (0.62, 0.63, 0.19), "forest coefficients quoted for Richardson et al. 2006 (unverified, note section 4)",
                48, gpp_ref=tw["gpp"].values, reco_ref=tw["reco"].values,
                note="May 2012; fAPAR light mode; PPFD <= 20 set to 0 (night offset); Wscale = 1")


def be_vie_site() -> Site:
    """BE-Vie 2014 half-hourly, daytime-partitioned GPP as a soft target, fAPAR mode."""
    ds = read_pyrealm_merged(data_path("be-vie_2014_pyrealm", "merged_BE-Vie_data.csv"))
    names = list(ds.data_vars)
    pick = lambda *c: next(x for x in c if x in names)
    t = ds[pick("air_temperature", "tc")].values
    par = ds[pick("ppfd_in", "ppfd")].values
    gpp = ds[pick("gpp", "gpp_fluxnet")].values
    fap = ds["fapar"].values
    n = len(t)
    day = par > 50.0
    stats = {"evi_threshold": 0.0, "lswi_min": 0.0, "lswi_max": 0.5}
    obs = np.where(day & np.isfinite(gpp), gpp, np.nan)
    obs[1::2] = np.nan            # every second half-hour: halves the cost, keeps the coverage
    return Site("BE-Vie", 3, _forcing(t, par, fap, np.full(n, 0.5), stats, fapar=fap), ds.time.values,
                obs, "gpp", VPRMOptions(mode="smooth", light="fapar"), (1.0, 0.15, 0.0),
                "assumed: 1 + 0.15 GPP (partitioning + representativeness, note section 4)", 48,
                gpp_ref=gpp, note="2014 daytime GPP (PPFD > 50), every 2nd half-hour")


# ----------------------------------------------------------------------------- fitting
def site_problem(site: Site, *, months=None, ar1=True):
    """(model_fn on used records, observations, error model, index of used records)."""
    times = pd.DatetimeIndex(site.times)
    use = np.isfinite(site.obs)
    if months is not None:
        use &= np.isin(times.month, months)
    idx = np.flatnonzero(use)
    sub = jax.tree_util.tree_map(lambda x: x[idx], site.forcing)
    exp_f = expected_flux(site.obs, site.times)
    sig = flux_sigma(exp_f, *site.sigma_coef)
    obs = FluxObservations.from_arrays(site.obs[idx], sigma=sig[idx], time_index=idx,
                                       variable=site.variable, source=site.name)
    em = ErrorModel(family="gaussian", sigma_from="record", ar1=ar1, learn_inflation=True)
    fn = interface_model_fn(simulate, site.base, sub, site.options)
    return fn, obs, em, idx


def site_priors(site: Site):
    return priors_from_table(parameter_table(PRIOR_TABLE), class_id=site.class_id, names=NAMES)


def predict(site: Site, theta_draws: dict, n_max=200):
    """Model outputs at every step for posterior draws: dict var -> (draws, T)."""
    fn = interface_model_fn(simulate, site.base, site.forcing, site.options)
    th = {k: jnp.asarray(np.asarray(v).reshape(-1)[:n_max]) for k, v in theta_draws.items() if k in NAMES}
    out = jax.jit(jax.vmap(fn))(th)
    return {k: np.asarray(getattr(out, k)) for k in ("nee", "gpp", "reco")}


def skill_rows(site: Site, label: str, pred: dict, months=None) -> list[dict]:
    t = pd.DatetimeIndex(site.times)
    sel = np.ones(len(t), bool) if months is None else np.isin(t.month, months)
    o = pd.Series(np.where(sel, site.obs, np.nan), index=t)
    rows = []
    var = site.variable
    m = pd.Series(pred[var], index=t)
    h = skill(m, o)
    dd = daily_means(m, o, min_records=max(4, site.steps_per_day // 4))
    d = skill(dd["model"], dd["obs"])
    rows.append({"site": site.name, "run": label, "target": var, **{f"hourly_{k}": v for k, v in h.items()},
                 **{f"daily_{k}": v for k, v in d.items()}})
    for ref_name, ref in (("gpp", site.gpp_ref), ("reco", site.reco_ref)):
        if ref is None or ref_name == var:
            continue
        r = pd.Series(np.where(sel, ref, np.nan), index=t)
        h = skill(pd.Series(pred[ref_name], index=t), r)
        rows.append({"site": site.name, "run": label, "target": f"{ref_name} (partitioned)",
                     **{f"hourly_{k}": v for k, v in h.items()}})
    return rows


def fit_site(site: Site, key, *, quick=False, months=None, warmup=400, samples=400, out=None,
             blocks=1, ckpt_name=None):
    """Calibrate one site: SVI (``quick``) or MAP by L-BFGS then NUTS, 2 vectorised chains,
    ``blocks`` blocks of ``samples`` draws each. With ``out`` the NUTS state is
    checkpointed in ``out/ckpt_<site>`` (or ``ckpt_name``); a later call with more
    ``blocks`` resumes from it and only draws the missing blocks (no new warm-up)."""
    fn, obs, em, idx = site_problem(site, months=months)
    pri = site_priors(site)
    model = build_model(fn, pri, obs, em)
    t0 = time.perf_counter()
    if quick:
        svi = run_svi(model, key, guide="mvn", num_steps=600, num_samples=200, progress_bar=False,
                      optimizer=__import__("optax").adam(2e-2))
        draws = {k: v[None] for k, v in svi.samples.items()}
        diverging = None
    else:
        ckdir = None if out is None else out / (ckpt_name or f"ckpt_{site.name}")
        from numpyro.infer import init_to_value
        if ckdir is not None and (ckdir / "nuts_state.pkl").exists():
            init = init_to_value(values={})          # resumed: the saved state is the start
        else:
            mp = find_map(model, key)
            init = init_to_value(values={k: v for k, v in mp.values.items()
                                         if k.startswith(("log_", "z_")) or k.endswith(("_rho", "_inflation"))})
        res = run_nuts(model, key, num_warmup=warmup, num_samples=samples, num_chains=2,
                       init_strategy=init, progress_bar=False, num_blocks=blocks, checkpoint_dir=ckdir)
        draws, diverging = res.samples, res.diverging
    wall = time.perf_counter() - t0
    keep = [k for k in draws if k in NAMES or k.endswith(("_rho", "_inflation"))]
    idata = to_inference_data(draws, diverging=diverging, names=keep,
                              attrs={"site": site.name, "prior_table": PRIOR_TABLE})
    return idata, model, (fn, obs, em, idx), wall


# ---------------------------------------------------------------------------- reporting
def _md(df: pd.DataFrame, fmt="{:.3g}") -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(str(c) for c in cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():      # R-hat with 3 decimals (1.007 must not print as 1.01)
        lines.append("| " + " | ".join(("{:.3f}" if c == "r_hat" else fmt).format(v)
                                       if isinstance(v, (float, np.floating)) else str(v)
                                       for c, v in zip(cols, r.values)) + " |")
    return "\n".join(lines)


def study_site(site, key, out, figs, report, metrics, *, quick, blocks=1):
    prior_pred = predict(site, {k: np.asarray(getattr(site.base, k)) for k in NAMES})
    metrics += skill_rows(site, "prior (Mahadevan 2008)", {k: v[0] for k, v in prior_pred.items()})
    idata, model, (fn, obs, em, idx), wall = fit_site(site, key, quick=quick, out=out, blocks=blocks)
    summ = convergence_summary(idata)
    post = {k: idata.posterior[k].values for k in NAMES}
    pp = predict(site, post)
    metrics += skill_rows(site, "posterior mean", {k: v.mean(0) for k, v in pp.items()})
    save_netcdf(idata, out / f"posterior_{site.name}.nc")
    theta = {k: idata.posterior[k].values.reshape(-1)[:200] for k in NAMES}
    rho = idata.posterior[[v for v in idata.posterior.data_vars if v.endswith("_rho")][0]].values.reshape(-1)[:200]
    infl = idata.posterior[[v for v in idata.posterior.data_vars if v.endswith("_inflation")][0]].values.reshape(-1)[:200]
    # predictive: white error with the posterior inflation (hourly intervals)
    em_w = ErrorModel(family="gaussian", sigma_from="record")
    obs_w = obs.replace(sigma=obs.sigma * float(np.median(infl)))
    f_draws, y_draws = predictive_draws(fn, theta, key, em_w, obs_w, variable=site.variable)
    t_used = site.times[idx]
    cov = ppc_coverage(y_draws, np.asarray(obs.values), np.asarray(obs.mask), t_used,
                       is_day=np.asarray(site.forcing.par)[idx] > 10.0)
    cov.insert(0, "site", site.name)
    names = [n for n in NAMES] + [v for v in idata.posterior.data_vars if v.endswith(("_rho", "_inflation"))]
    if not quick:
        figs.append(plot_traces(idata, names, out / f"trace_{site.name}.png"))
        figs.append(plot_pairs(idata, list(NAMES), out / f"pairs_{site.name}.png"))
    figs.append(plot_predictive(t_used, np.asarray(obs.values), np.asarray(obs.mask), f_draws, y_draws,
                                out / f"predictive_{site.name}.png",
                                title=f"{site.name}: posterior predictive vs observed {site.variable.upper()}"))
    report += [f"### {site.name} (class {site.class_id}; {site.note})", "",
               f"{int(obs.n_used)} records used; error model sigma = {site.sigma_coef[0]:.2f} + "
               f"{site.sigma_coef[1]:.2f} F+ + {site.sigma_coef[2]:.2f} F- ({site.sigma_source}), "
               f"AR(1) rho median {np.median(rho):.2f}, sigma inflation median {np.median(infl):.2f}. "
               f"Fit time {wall:.0f} s ({'SVI, full-rank Gaussian' if quick else f'MAP by L-BFGS, then NUTS 2 chains x 400 warm-up + {400 * blocks} draws'}).",
               "", _md(summ.reset_index().rename(columns={"index": "parameter"})), "",
               "Posterior predictive coverage (white error x inflation; hourly records):", "",
               _md(cov.pivot_table(index="stratum", columns="level", values="coverage").reset_index()), ""]
    return idata, cov


def temporal_cv(site, key, out, report, metrics, *, quick, blocks=1):
    cal, val = [1, 3, 5, 7, 9, 11], [2, 4, 6, 8, 10, 12]
    idata, *_ = fit_site(site, key, quick=quick, months=cal, out=out, blocks=blocks,
                         ckpt_name=f"ckpt_{site.name}_cv")
    summ = convergence_summary(idata)
    post = {k: idata.posterior[k].values for k in NAMES}
    pp = {k: v.mean(0) for k, v in predict(site, post).items()}
    prior = {k: v[0] for k, v in predict(site, {k: np.asarray(getattr(site.base, k)) for k in NAMES}).items()}
    rows = []
    for label, p in (("prior", prior), ("calibrated on odd months", pp)):
        for split, months in (("calibration (odd months)", cal), ("validation (even months)", val)):
            r = skill_rows(site, f"CV {label}; {split}", p, months=months)[0]
            rows.append(r)
    metrics += rows
    df = pd.DataFrame(rows)[["run", "hourly_n", "hourly_r2", "hourly_rmse", "hourly_bias", "daily_r2", "daily_rmse"]]
    report += ["## Temporal cross-validation, US-PFa 2005 (odd months calibrate, even months validate)", "",
               "NUTS on the odd months only (MAP start, 2 chains); skill of the prior and of the "
               "posterior-mean prediction on the calibration and on the held-out months:", "",
               _md(df), "", "Convergence of the odd-month fit:", "",
               _md(summ.reset_index().rename(columns={"index": "parameter"})), ""]


def _single_site_medians(out, site):
    """Posterior medians of a finished single-site fit (``posterior_<site>.nc``) or None."""
    import arviz as az
    f = out / f"posterior_{site.name}.nc"
    if not f.exists():
        return None
    post = az.from_netcdf(f).posterior
    return {k: float(np.median(post[k].values)) for k in post.data_vars}, post


def hierarchical_init(sites, pri, out):
    """Initial values of the hierarchy from the single-site posterior medians: class means
    mu of the transformed medians, tau = half the prior sd, z = (T(theta_s) - mu) / tau;
    error-model parameters from the same fits. None if a single-site fit is missing."""
    med = [_single_site_medians(out, s) for s in sites]
    if any(m is None for m in med):
        return None
    vals = {}
    for p in NAMES:
        t = {s.name: float(pri[s.class_id][p].forward(m[0][p])) for s, m in zip(sites, med)}
        tau = 0.5 * pri[sites[0].class_id][p].scale
        mu = {c: float(np.mean([t[s.name] for s in sites if s.class_id == c])) for c in pri}
        vals[f"tau_{p}"] = tau
        vals.update({f"mu_{p}_c{c}": v for c, v in mu.items()})
        vals[f"z_site_{p}"] = np.array([(t[s.name] - mu[s.class_id]) / tau for s in sites])
    for s, m in zip(sites, med):
        for suf in ("rho", "inflation"):
            v = [x for k, x in m[0].items() if k.endswith("_" + suf)]
            if v:
                vals[f"obs_{s.name}_{suf}"] = min(max(v[0], 1e-3), 0.999) if suf == "rho" else v[0]
    return vals


def hierarchical_study(sites, key, out, figs, report, metrics, *, warmup=300, samples=100, blocks=3):
    """Partially pooled fit of all sites (``assimilation.calibration.hierarchical``),
    started at the single-site posterior medians; shrinkage table against the single-site
    posteriors."""
    from numpyro.infer import init_to_value
    hs = []
    for s in sites:
        fn, obs, em, idx = site_problem(s)
        hs.append(HierSite(name=s.name, class_id=s.class_id, model_fn=fn, observations=obs,
                           error_model=em))
    pri = {c: priors_from_table(parameter_table(PRIOR_TABLE), class_id=c, names=NAMES)
           for c in sorted({s.class_id for s in sites})}
    model = build_hierarchical_model(hs, pri)
    t0 = time.perf_counter()
    init = hierarchical_init(sites, pri, out)
    start = "single-site posterior medians"
    if init is None:
        init, start = find_map(model, key).values, "MAP"
    res = run_nuts(model, key, num_warmup=warmup, num_samples=samples, num_blocks=blocks, num_chains=2,
                   progress_bar=False, target_accept_prob=0.9, init_strategy=init_to_value(values=init),
                   checkpoint_dir=out / "ckpt_hierarchical")
    wall = time.perf_counter() - t0
    keep = [k for k in res.samples if not k.startswith(("z_site", "log_", "z_"))
            or k.startswith(("mu_", "tau_"))]
    idata = to_inference_data(res.samples, diverging=res.diverging, names=keep)
    save_netcdf(idata, out / "posterior_hierarchical.nc")
    summ = convergence_summary(idata, names=[k for k in keep if k.startswith(tuple(f"{n}_" for n in NAMES))
                                             or k.startswith(("tau_", "mu_"))])
    # population means in physical units and shrinkage of the site parameters
    pop, shr = [], []
    for p in NAMES:
        for c in pri:
            v = np.asarray(pri[c][p].inverse(res.samples[f"mu_{p}_c{c}"])).reshape(-1)
            pop.append({"parameter": p, "class": c, "prior median": float(pri[c][p].inverse(pri[c][p].loc)),
                        "population median": np.median(v), "5%": np.quantile(v, 0.05),
                        "95%": np.quantile(v, 0.95)})
        for s in sites:
            h = np.asarray(res.samples[f"{p}_{s.name}"]).reshape(-1)
            ss = _single_site_medians(out, s)
            row = {"parameter": p, "site": s.name, "hier median": np.median(h),
                   "hier 5%": np.quantile(h, 0.05), "hier 95%": np.quantile(h, 0.95)}
            if ss is not None:
                x = ss[1][p].values.reshape(-1)
                row.update({"single median": np.median(x), "single 5%": np.quantile(x, 0.05),
                            "single 95%": np.quantile(x, 0.95),
                            "width ratio hier/single": (np.quantile(h, 0.95) - np.quantile(h, 0.05))
                            / (np.quantile(x, 0.95) - np.quantile(x, 0.05))})
            shr.append(row)
    pop, shr = pd.DataFrame(pop), pd.DataFrame(shr)
    pop.to_csv(out / "hierarchical_population.csv", index=False)
    shr.to_csv(out / "hierarchical_shrinkage.csv", index=False)
    rows = []
    for s in sites:
        th = {n: res.samples[f"{n}_{s.name}"] for n in NAMES}
        pp = {k: v.mean(0) for k, v in predict(s, th).items()}
        for r in skill_rows(s, "hierarchical posterior mean", pp):
            rows.append(r)
    metrics += rows
    n_draws = res.samples[keep[0]].shape[1]
    report += ["## Hierarchical calibration (per-class population means, non-centred site deviations)", "",
               f"Sites: {', '.join(f'{s.name} (class {s.class_id})' for s in sites)}. "
               f"NUTS 2 chains x {n_draws} draws after {warmup} warm-up, target acceptance 0.9, "
               f"started at the {start}; {wall:.0f} s (this call; resumed runs count only their new "
               f"blocks). {int(res.diverging.sum())} divergent transitions.", "",
               "Population (class) medians in physical units with 90 % intervals:", "", _md(pop), "",
               "Site parameters: hierarchical vs single-site posterior (median and 5-95 %); "
               "width ratio < 1 = the pooled fit is tighter, medians move towards the class mean "
               "(shrinkage):", "", _md(shr), "", "Convergence:", "",
               _md(summ.reset_index().rename(columns={"index": "parameter"})), "",
               "Skill of the hierarchical posterior-mean prediction:", "",
               _md(pd.DataFrame(rows)[["site", "target", "hourly_r2", "hourly_rmse", "hourly_bias",
                                       "daily_r2", "daily_rmse"]]), ""]


STAGES = ("single", "cv", "hier")


def assemble(out: Path, figs=()):
    """Write ``REPORT.md`` and ``metrics.csv`` from the stage parts in ``out/parts``."""
    parts = out / "parts"
    header = ["# VPRM Bayesian calibration against flux towers", "",
              "NumPyro NUTS on the differentiable (smooth) VPRM; priors from Mahadevan et al. (2008) "
              "(log-normal lam/alpha/PAR0 with log-sd >= 1 for PAR0, normal beta), Gaussian likelihood with "
              "flux-magnitude sigma from the mean diurnal course of the observations, AR(1) model error and a "
              "learned sigma inflation. Skill: R2 = squared Pearson correlation, RMSE and bias in "
              "umol m-2 s-1; 'hourly' = every used record (hourly or half-hourly), daily = means over "
              "the used records of each day.", ""]
    body, tables = [], []
    for st in STAGES:
        if (parts / f"{st}.md").exists():
            body.append((parts / f"{st}.md").read_text())
        else:
            body.append(f"_(stage '{st}' has not been run into this folder)_\n")
        if (parts / f"{st}.csv").exists():
            tables.append(pd.read_csv(parts / f"{st}.csv"))
    pngs = sorted(p.name for p in out.glob("*.png"))
    text = "\n".join(header) + "\n" + "\n".join(body) + "\n## Figures\n\n" + "\n".join(
        f"![{Path(f).stem}]({f})" for f in pngs) + "\n"
    (out / "REPORT.md").write_text(text)
    mt = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    mt.to_csv(out / "metrics.csv", index=False)
    return mt


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="experiments/output/calibration_vprm")
    ap.add_argument("--quick", action="store_true", help="SVI on Park Falls only (< 60 s)")
    ap.add_argument("--sites", default="US-PFa,AT-Neu,FR-Pue,BE-Vie")
    ap.add_argument("--stages", default=",".join(STAGES),
                    help="comma list of single (single-site NUTS), cv (temporal CV at US-PFa), "
                         "hier (hierarchical); each writes out/parts/<stage>.md/.csv, and REPORT.md + "
                         "metrics.csv are assembled from the parts present, so stages can run separately")
    ap.add_argument("--blocks", type=int, default=3,
                    help="single-site and CV NUTS: blocks of 400 draws per chain (resumes checkpoints)")
    ap.add_argument("--hier-warmup", type=int, default=300)
    ap.add_argument("--hier-samples", type=int, default=100, help="draws per chain per block")
    ap.add_argument("--hier-blocks", type=int, default=3)
    ap.add_argument("--no-hierarchical", action="store_true")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    out = Path(args.out)
    (out / "parts").mkdir(parents=True, exist_ok=True)
    key = jax.random.PRNGKey(args.seed)
    builders = {"US-PFa": park_falls_site, "AT-Neu": at_neu_site, "FR-Pue": fr_pue_site, "BE-Vie": be_vie_site}
    wanted = ["US-PFa"] if args.quick else [s for s in args.sites.split(",") if s]
    stages = ["single"] if args.quick else [s for s in args.stages.split(",") if s]
    if args.no_hierarchical and "hier" in stages:
        stages.remove("hier")
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise SystemExit(f"unknown stages {bad}; choose from {STAGES}")
    sites = [builders[s]() for s in wanted]
    cols = ["site", "run", "target", "hourly_n", "hourly_r2", "hourly_rmse", "hourly_bias", "daily_r2", "daily_rmse"]
    if "single" in stages:
        figs, metrics, covs, report = [], [], [], ["## Single-site calibrations", ""]
        for i, s in enumerate(sites):
            _, cov = study_site(s, jax.random.fold_in(key, i), out, figs, report, metrics, quick=args.quick,
                                blocks=args.blocks)
            covs.append(cov)
        mt = pd.DataFrame(metrics)
        pd.concat(covs).to_csv(out / "ppc_coverage.csv", index=False)
        report[2:2] = ["Skill before (prior = Mahadevan 2008 class parameters) and after calibration "
                       "(posterior-mean prediction):", "", _md(mt[[c for c in cols if c in mt]]), ""]
        (out / "parts" / "single.md").write_text("\n".join(report) + "\n")
        mt.to_csv(out / "parts" / "single.csv", index=False)
    if "cv" in stages:
        report, metrics = [], []
        temporal_cv(sites[0], jax.random.fold_in(key, 99), out, report, metrics, quick=False, blocks=args.blocks)
        (out / "parts" / "cv.md").write_text("\n".join(report) + "\n")
        pd.DataFrame(metrics).to_csv(out / "parts" / "cv.csv", index=False)
    if "hier" in stages and len(sites) >= 3:
        report, metrics = [], []
        hierarchical_study(sites, jax.random.fold_in(key, 7), out, [], report, metrics,
                           warmup=args.hier_warmup, samples=args.hier_samples, blocks=args.hier_blocks)
        (out / "parts" / "hier.md").write_text("\n".join(report) + "\n")
        pd.DataFrame(metrics).to_csv(out / "parts" / "hier.csv", index=False)
    mt = assemble(out)
    if len(mt):
        print(mt[[c for c in cols if c in mt]].to_string())
    return mt


if __name__ == "__main__":
    main()
