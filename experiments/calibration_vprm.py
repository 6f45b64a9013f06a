"""Bayesian calibration of VPRM (Mahadevan et al. 2008, GBC 22, GB2005) against flux towers
with NUTS (Hoffman & Gelman 2014), single-site and hierarchical multi-site (Kuppel et al.
2012, Biogeosciences 9, 3757).

Sites: US-PFa Park Falls 2005 (mixed forest, class 3; hourly NEE, MODIS EVI/LSWI; temporal
cross-validation odd/even months), AT-Neu July 2010 (grassland, class 7; QC-0 NEE, MOD13A1
EVI, SWIR2 LSWI), FR-Pue May 2012 (evergreen broadleaf, class 1; QC-0 NEE, satellite fAPAR
light mode), BE-Vie 2014 (mixed forest; daytime-partitioned GPP as a soft target, fAPAR).
Priors: the Mahadevan et al. (2008) class rows of ``VPRMModel.parameter_table()``. Likelihood:
Gaussian with per-record sigma = a + b+ F+ + b- F- of the mean diurnal course (Richardson et
al. 2006), AR(1) model error (Schoups & Vrugt 2010) and a learned sigma inflation.

Run: ``python -m experiments.calibration_vprm [--quick] [--out DIR] [--stages single,cv,hier]``.
``--quick``: SVI at US-PFa only. Stages write ``parts/<stage>.md|csv``; ``REPORT.md`` is
assembled from the parts present, and every NUTS run checkpoints (``ckpt_*``; more
``--blocks`` only draws the missing blocks), so stages can run separately and resume.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

DOC = __doc__
from assimilation.calibration.vprm_sites import (NAMES, PRIOR_TABLE, VPRMSite, build_vprm_site,
                                                 predict, site_priors, site_problem)

STAGES = ("single", "cv", "hier")
SKILL = ["site", "run", "target", "hourly_n", "hourly_r2", "hourly_rmse", "hourly_bias", "daily_r2",
         "daily_rmse"]


@dataclass(frozen=True)
class Settings:
    out: str = "experiments/output/calibration_vprm"
    sites: str = "US-PFa,AT-Neu,FR-Pue,BE-Vie"
    stages: str = "single,cv,hier"
    inference: str = "nuts"           # "svi": full-rank Gaussian SVI (quick)
    blocks: int = 3                   # single-site / CV NUTS: blocks of 400 draws per chain
    hier_warmup: int = 300
    hier_samples: int = 100           # hierarchical draws per chain per block
    hier_blocks: int = 3
    seed: int = 0

    @classmethod
    def quick(cls) -> "Settings":
        return cls(sites="US-PFa", stages="single", inference="svi")


def _expected():
    from experiments.report import Expected
    u = "umol m-2 s-1"
    prior = [("hourly_r2", 0.522685, "1"), ("hourly_rmse", 6.423282, u), ("hourly_bias", -3.137988, u),
             ("daily_r2", 0.668645, "1"), ("daily_rmse", 5.164678, u)]
    post = [("hourly_r2", 0.469342, 0.01, "1"), ("hourly_rmse", 3.999921, 0.05, u),
            ("hourly_bias", 0.472874, 0.05, u), ("daily_r2", 0.639684, 0.02, "1"),
            ("daily_rmse", 1.222572, 0.05, u)]
    # SVI posterior means; tolerance 0.25 posterior sd (Monte-Carlo error of 200 draws ~0.1 sd)
    par = [("lam", 0.055268, 0.001, "umol umol-1"), ("par0", 228.77, 5.0, u), ("alpha", 0.120237, 0.0033,
           "umol m-2 s-1 degC-1"), ("beta", -0.080918, 0.046, u), ("rho", 0.480759, 0.0055, "1"),
           ("inflation", 1.636788, 0.02, "1")]
    return tuple([Expected(f"US-PFa/prior/{k}", v, 1e-5, f"US-PFa prior NEE {k} ({un})") for k, v, un in prior]
                 + [Expected(f"US-PFa/posterior/{k}", v, t, f"US-PFa posterior-mean NEE {k} ({un})")
                    for k, v, t, un in post]
                 + [Expected(f"US-PFa/mean/{k}", v, t, f"US-PFa posterior mean of {k} ({un})")
                    for k, v, t, un in par]
                 + [Expected("US-PFa/coverage90", 0.917546, 0.02, "US-PFa 90 % predictive coverage (1)")])


EXPECTED_QUICK = _expected()


def skill_rows(site: VPRMSite, label: str, pred: dict, months=None) -> list[dict]:
    from experiments.metrics import daily_means, skill
    t = pd.DatetimeIndex(site.times)
    sel = np.ones(len(t), bool) if months is None else np.isin(t.month, months)
    o = pd.Series(np.where(sel, site.obs, np.nan), index=t)
    m = pd.Series(pred[site.variable], index=t)
    dd = daily_means(m, o, min_records=max(4, site.steps_per_day // 4))
    rows = [{"site": site.name, "run": label, "target": site.variable,
             **{f"hourly_{k}": v for k, v in skill(m, o).items()},
             **{f"daily_{k}": v for k, v in skill(dd["model"], dd["obs"]).items()}}]
    for ref_name, ref in (("gpp", site.gpp_ref), ("reco", site.reco_ref)):
        if ref is not None and ref_name != site.variable:
            h = skill(pd.Series(pred[ref_name], index=t), pd.Series(np.where(sel, ref, np.nan), index=t))
            rows.append({"site": site.name, "run": label, "target": f"{ref_name} (partitioned)",
                         **{f"hourly_{k}": v for k, v in h.items()}})
    return rows


def fit_site(site: VPRMSite, key, s: Settings, out: Path, *, months=None, ckpt=None):
    """SVI (full-rank Gaussian) or NUTS from the MAP (2 vectorised chains, 400 warm-up,
    ``s.blocks`` x 400 draws, checkpointed in ``out/ckpt_<site>``)."""
    import optax
    from assimilation.calibration import build_model, run_nuts_from_map, run_svi, to_inference_data
    fn, obs, em, idx = site_problem(site, months=months)
    model = build_model(fn, site_priors(site), obs, em)
    t0 = time.perf_counter()
    if s.inference == "svi":
        svi = run_svi(model, key, guide="mvn", num_steps=600, num_samples=200, progress_bar=False,
                      optimizer=optax.adam(2e-2))
        draws, diverging = {k: v[None] for k, v in svi.samples.items()}, None
    else:
        res = run_nuts_from_map(model, key, num_warmup=400, num_samples=400, num_chains=2,
                                num_blocks=s.blocks, progress_bar=False,
                                checkpoint_dir=out / (ckpt or f"ckpt_{site.name}"))
        draws, diverging = res.samples, res.diverging
    keep = [k for k in draws if k in NAMES or k.endswith(("_rho", "_inflation"))]
    idata = to_inference_data(draws, diverging=diverging, names=keep,
                              attrs={"site": site.name, "prior_table": PRIOR_TABLE})
    return idata, (fn, obs, idx), time.perf_counter() - t0


def study_site(site: VPRMSite, key, s: Settings, out: Path, figs: list, report: list, metrics: dict):
    from assimilation.calibration import (ErrorModel, convergence_summary, plot_pairs, plot_predictive,
                                          plot_traces, ppc_coverage, predictive_draws, save_netcdf)
    from experiments.report import markdown_table
    base = site.model.default_params()
    prior = predict(site, {k: np.asarray(site.model.get_parameter(base, v)) for k, v in site.names.items()})
    rows = skill_rows(site, "prior (Mahadevan 2008)", {k: v[0] for k, v in prior.items()})
    idata, (fn, obs, idx), wall = fit_site(site, key, s, out)
    post = idata.posterior
    rows += skill_rows(site, "posterior mean", {k: v.mean(0) for k, v in predict(site, {
        k: post[k].values for k in NAMES}).items()})
    save_netcdf(idata, out / f"posterior_{site.name}.nc")
    err = [next(v for v in post.data_vars if v.endswith(suf)) for suf in ("_rho", "_inflation")]
    infl = post[err[1]].values.reshape(-1)[:200]
    # predictive: white error with the posterior inflation (hourly intervals)
    f_draws, y_draws = predictive_draws(
        fn, {k: post[k].values.reshape(-1)[:200] for k in NAMES}, key,
        ErrorModel(family="gaussian", sigma_from="record"),
        obs.replace(sigma=obs.sigma * float(np.median(infl))), variable=site.variable)
    t_used = site.times[idx]
    cov = ppc_coverage(y_draws, np.asarray(obs.values), np.asarray(obs.mask), t_used,
                       is_day=np.asarray(site.forcing.par)[idx] > 10.0)
    if s.inference != "svi":
        figs.append(plot_traces(idata, list(NAMES) + err, out / f"trace_{site.name}.png").name)
        figs.append(plot_pairs(idata, list(NAMES), out / f"pairs_{site.name}.png").name)
    figs.append(plot_predictive(t_used, np.asarray(obs.values), np.asarray(obs.mask), f_draws, y_draws,
                                out / f"predictive_{site.name}.png",
                                title=f"{site.name}: posterior predictive vs observed {site.variable.upper()}").name)
    by = {r["run"]: r for r in rows if r["target"] == site.variable}
    cols = ("hourly_r2", "hourly_rmse", "hourly_bias", "daily_r2", "daily_rmse")
    metrics[site.name] = {"prior": {c: by["prior (Mahadevan 2008)"][c] for c in cols},
                          "posterior": {c: by["posterior mean"][c] for c in cols},
                          "mean": {**{k: float(post[k].mean()) for k in NAMES},
                                   "rho": float(post[err[0]].mean()), "inflation": float(post[err[1]].mean())},
                          "coverage90": float(cov[(cov.stratum == "all") & (cov.level == 0.9)].coverage.iloc[0])}
    method = ("SVI, full-rank Gaussian" if s.inference == "svi"
              else f"MAP by L-BFGS, then NUTS 2 chains x 400 warm-up + {400 * s.blocks} draws")
    a, bp, bn = site.sigma_coef
    report += [f"### {site.name} (class {site.class_id}; {site.note})", "",
               f"{obs.n_used} records used; error model sigma = {a:.2f} + {bp:.2f} F+ + {bn:.2f} F- "
               f"({site.sigma_source}), AR(1) rho median {np.median(post[err[0]].values):.2f}, sigma "
               f"inflation median {np.median(infl):.2f}. Fit time {wall:.0f} s ({method}).", "",
               markdown_table(convergence_summary(idata), index=True), "",
               "Posterior predictive coverage (white error x inflation; hourly records):", "",
               markdown_table(cov.pivot_table(index="stratum", columns="level", values="coverage"), index=True), ""]
    return rows, cov.assign(site=site.name)


def temporal_cv(site: VPRMSite, key, s: Settings, out: Path, report: list) -> list:
    from assimilation.calibration import convergence_summary
    from experiments.report import markdown_table
    cal, val = [1, 3, 5, 7, 9, 11], [2, 4, 6, 8, 10, 12]
    idata, _, _ = fit_site(site, key, s, out, months=cal, ckpt=f"ckpt_{site.name}_cv")
    base = site.model.default_params()
    prior = {k: v[0] for k, v in predict(site, {k: np.asarray(site.model.get_parameter(base, v))
                                                for k, v in site.names.items()}).items()}
    pp = {k: v.mean(0) for k, v in predict(site, {k: idata.posterior[k].values for k in NAMES}).items()}
    rows = [skill_rows(site, f"CV {label}; {split}", p, months=months)[0]
            for label, p in (("prior", prior), ("calibrated on odd months", pp))
            for split, months in (("calibration (odd months)", cal), ("validation (even months)", val))]
    report += [f"## Temporal cross-validation, {site.name} (odd months calibrate, even months validate)", "",
               markdown_table(pd.DataFrame(rows)[SKILL[1:2] + SKILL[3:]]), "", "Convergence:", "",
               markdown_table(convergence_summary(idata), index=True), ""]
    return rows


def hierarchical_study(sites, key, s: Settings, out: Path, report: list) -> list:
    import arviz as az
    from numpyro.infer import init_to_value
    from assimilation.calibration import (HierSite, build_hierarchical_model, convergence_summary,
                                          find_map, init_from_site_medians, run_nuts, save_netcdf,
                                          shrinkage_tables, to_inference_data)
    from experiments.report import markdown_table
    hs = [HierSite(x.name, x.class_id, fn, obs, em) for x in sites for fn, obs, em, _ in [site_problem(x)]]
    pri = {c: site_priors(next(x for x in sites if x.class_id == c)) for c in sorted({x.class_id for x in sites})}
    model = build_hierarchical_model(hs, pri)
    files = [out / f"posterior_{x.name}.nc" for x in sites]
    single = [az.from_netcdf(f).posterior if f.exists() else None for f in files]
    t0 = time.perf_counter()
    if all(p is not None for p in single):
        init, start = init_from_site_medians(hs, pri, [{k: float(np.median(p[k].values)) for k in p.data_vars}
                                                       for p in single]), "single-site posterior medians"
    else:
        init, start = find_map(model, key).values, "MAP"
    res = run_nuts(model, key, num_warmup=s.hier_warmup, num_samples=s.hier_samples, num_blocks=s.hier_blocks,
                   num_chains=2, progress_bar=False, target_accept_prob=0.9,
                   init_strategy=init_to_value(values=init), checkpoint_dir=out / "ckpt_hierarchical")
    keep = [k for k in res.samples if not k.startswith(("z_site", "log_", "z_")) or k.startswith(("mu_", "tau_"))]
    idata = to_inference_data(res.samples, diverging=res.diverging, names=keep)
    save_netcdf(idata, out / "posterior_hierarchical.nc")
    pop, shr = shrinkage_tables(res.samples, hs, pri, [None if p is None else {k: p[k].values for k in NAMES}
                                                      for p in single])
    pop.to_csv(out / "hierarchical_population.csv", index=False)
    shr.to_csv(out / "hierarchical_shrinkage.csv", index=False)
    rows = [r for x in sites for r in skill_rows(x, "hierarchical posterior mean", {
        k: v.mean(0) for k, v in predict(x, {n: res.samples[f"{n}_{x.name}"] for n in NAMES}).items()})]
    summ = convergence_summary(idata, names=[k for k in keep if k.startswith(tuple(f"{n}_" for n in NAMES))
                                             or k.startswith(("tau_", "mu_"))])
    report += ["## Hierarchical calibration (per-class population means, non-centred site deviations)", "",
               f"Sites: {', '.join(f'{x.name} (class {x.class_id})' for x in sites)}. NUTS 2 chains x "
               f"{res.samples[keep[0]].shape[1]} draws after {s.hier_warmup} warm-up, target acceptance 0.9, "
               f"started at the {start}; {time.perf_counter() - t0:.0f} s (this call). "
               f"{int(res.diverging.sum())} divergent transitions.", "",
               "Population (class) medians, physical units, 90 % intervals:", "", markdown_table(pop), "",
               "Site parameters, hierarchical vs single-site posterior (width ratio < 1: pooled fit "
               "tighter; medians move towards the class mean):", "", markdown_table(shr), "",
               "Convergence:", "", markdown_table(summ, index=True), "",
               "Skill of the hierarchical posterior-mean prediction:", "",
               markdown_table(pd.DataFrame(rows)[[c for c in SKILL if c != "run"]]), ""]
    return rows


def assemble(out: Path, settings: Settings | None = None, metrics: dict | None = None) -> pd.DataFrame:
    """``REPORT.md`` and ``metrics.csv`` from the stage parts in ``out/parts``."""
    from experiments.report import write_report
    parts = out / "parts"
    body = [(parts / f"{st}.md").read_text() if (parts / f"{st}.md").exists()
            else f"_(stage '{st}' has not been run into this folder)_" for st in STAGES]
    tables = [pd.read_csv(parts / f"{st}.csv") for st in STAGES if (parts / f"{st}.csv").exists()]
    intro = ("NumPyro on the differentiable (smooth) VPRM; priors from Mahadevan et al. (2008); Gaussian "
             "likelihood with the flux-magnitude sigma of the mean diurnal course, AR(1) model error and a "
             "learned sigma inflation. R2 = squared Pearson correlation, RMSE and bias in umol m-2 s-1; "
             "'hourly' = every used record, daily = means over the used records of each day.")
    write_report(out, "VPRM Bayesian calibration against flux towers", [intro] + body,
                 sorted(p.name for p in out.glob("*.png")), EXPECTED_QUICK if settings is not None else (), metrics or {},
                 settings=settings)
    mt = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    mt.to_csv(out / "metrics.csv", index=False)
    return mt


def main(argv=None) -> dict:
    import jax
    from experiments.report import enable_float64, parse_settings, write_metrics
    s = parse_settings(Settings, argv, DOC)
    enable_float64()
    out = Path(s.out)
    (out / "parts").mkdir(parents=True, exist_ok=True)
    key = jax.random.key(s.seed)
    stages = [x for x in s.stages.split(",") if x]
    if set(stages) - set(STAGES):
        raise SystemExit(f"unknown stages {sorted(set(stages) - set(STAGES))}; choose from {STAGES}")
    sites = [build_vprm_site(x) for x in s.sites.split(",") if x]
    metrics: dict = {}
    if "single" in stages:
        figs, rows, covs, report = [], [], [], []
        for i, site in enumerate(sites):
            r, c = study_site(site, jax.random.fold_in(key, i), s, out, figs, report, metrics)
            rows += r
            covs.append(c)
        mt = pd.DataFrame(rows)
        pd.concat(covs).to_csv(out / "ppc_coverage.csv", index=False)
        text = ["## Single-site calibrations", "", "Skill of the prior (Mahadevan 2008 class parameters) and "
                "of the posterior-mean prediction:", "", _table(mt), ""] + report
        (out / "parts" / "single.md").write_text("\n".join(text) + "\n")
        mt.to_csv(out / "parts" / "single.csv", index=False)
    for st, run in (("cv", lambda r: temporal_cv(sites[0], jax.random.fold_in(key, 99), s, out, r)),
                    ("hier", lambda r: hierarchical_study(sites, jax.random.fold_in(key, 7), s, out, r))):
        if st in stages and (st == "cv" or len(sites) >= 3):
            report = []
            pd.DataFrame(run(report)).to_csv(out / "parts" / f"{st}.csv", index=False)
            (out / "parts" / f"{st}.md").write_text("\n".join(report) + "\n")
    write_metrics(out, metrics)
    mt = assemble(out, s, metrics)
    if len(mt):
        print(mt[[c for c in SKILL if c in mt]].to_string())
    return metrics


def _table(mt: pd.DataFrame) -> str:
    from experiments.report import markdown_table
    return markdown_table(mt[[c for c in SKILL if c in mt]])


if __name__ == "__main__":
    main()
