"""Posterior diagnostics and outputs: ArviZ InferenceData (NetCDF), convergence
summary, stratified posterior predictive checks and figures.

Convergence (Vehtari et al. 2021, Bayesian Analysis 16, 667): rank-normalised split
R-hat < 1.01, bulk and tail ESS >= 400, no divergent transitions after warm-up.
Posterior predictive coverage: share of observations inside the central 50/80/90 %
predictive intervals, overall and split by day/night and season (Gelman et al. 2013,
Bayesian Data Analysis, 3rd ed., ch. 6); a calibrated error model gives nominal coverage
in every stratum.
"""
from __future__ import annotations

from pathlib import Path

import arviz as az
import jax
import numpy as np
import pandas as pd

SEASONS = {12: "DJF", 1: "DJF", 2: "DJF", 3: "MAM", 4: "MAM", 5: "MAM", 6: "JJA", 7: "JJA",
           8: "JJA", 9: "SON", 10: "SON", 11: "SON"}


def to_inference_data(samples: dict, *, diverging=None, names=None, posterior_predictive=None,
                      observed=None, attrs=None) -> az.InferenceData:
    """InferenceData from draws shaped (chains, draws, ...) (a :class:`NUTSResult`'s
    ``samples``; SVI draws: add a leading chain axis). ``names`` restricts the posterior
    variables (default: all)."""
    post = {k: np.asarray(v) for k, v in samples.items() if names is None or k in names}
    kw = {"posterior": post}
    if diverging is not None:
        kw["sample_stats"] = {"diverging": np.asarray(diverging)}
    if posterior_predictive is not None:
        kw["posterior_predictive"] = posterior_predictive
    if observed is not None:
        kw["observed_data"] = observed
    idata = az.from_dict(**kw)
    if attrs:
        idata.posterior.attrs.update({k: str(v) for k, v in attrs.items()})
    return idata


def save_netcdf(idata: az.InferenceData, path: str | Path) -> Path:
    """Write InferenceData to NetCDF (groups as NetCDF4 groups)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    idata.to_netcdf(str(path))
    return path


def convergence_summary(idata: az.InferenceData, names=None) -> pd.DataFrame:
    """Mean, sd, 5/95 % quantiles, R-hat, bulk and tail ESS per variable, and the number
    of divergent transitions (same for every row)."""
    names = names or list(idata.posterior.data_vars)
    s = az.summary(idata, var_names=names, kind="all", hdi_prob=0.9, round_to="none")
    s = s[["mean", "sd", "hdi_5%", "hdi_95%", "r_hat", "ess_bulk", "ess_tail"]]
    div = (int(np.asarray(idata.sample_stats["diverging"]).sum())
           if "sample_stats" in idata.groups() and "diverging" in idata.sample_stats else 0)
    s["divergences"] = div
    return s


def converged(summary: pd.DataFrame, *, rhat: float = 1.01, ess: float = 400) -> bool:
    """R-hat < ``rhat``, bulk and tail ESS >= ``ess``, no divergences."""
    return bool((summary["r_hat"] < rhat).all() and (summary["ess_bulk"] >= ess).all()
                and (summary["ess_tail"] >= ess).all() and (summary["divergences"] == 0).all())


def simulate_draws(model_fn, theta_draws: dict, names=None, *, n_max: int = 200,
                   variables=("nee", "gpp", "reco")) -> dict:
    """Model outputs for (the first ``n_max``) parameter draws: ``{variable: (draws, T)}``.

    ``theta_draws``: label -> array of draws (any shape, flattened; a single value gives one
    draw); ``names``: the labels passed to ``model_fn`` (default: all). One vmapped call."""
    import jax.numpy as jnp
    from process_models.interface import output
    names = list(theta_draws) if names is None else list(names)
    th = {k: jnp.asarray(np.asarray(theta_draws[k]).reshape(-1)[:n_max]) for k in names}
    out = jax.jit(jax.vmap(model_fn))(th)
    return {v: np.asarray(output(out, v)) for v in variables}


def predictive_draws(model_fn, theta_draws: dict, key, error_model, observations,
                     variable: str = "nee", batch: int = 100):
    """Posterior predictive draws of the *observed* quantity (model + observation error)
    and of the model output, shape (draws, T). ``theta_draws``: name -> (draws,)."""
    import jax.numpy as jnp
    from process_models.interface import output
    from .error_models import FluxLikelihood
    names = list(theta_draws)
    th = {k: jnp.asarray(np.asarray(v).reshape(-1)) for k, v in theta_draws.items()}
    n = th[names[0]].shape[0]

    @jax.jit
    def one(theta, k):
        f = output(model_fn(theta), variable)
        sig = error_model.sigma(f, observations)
        d = FluxLikelihood(f, sig, observations.mask, observations.prev_index, observations.lag,
                           family=error_model.family, df=error_model.df or 5.0,
                           rho=error_model.rho or 0.0, ar1=error_model.ar1 and error_model.rho is not None)
        return f, d.sample(k)

    keys = jax.random.split(key, n)
    fs, ys = [], []
    for i in range(0, n, batch):   # batches of draws (memory), each batch one vmapped call
        sl = slice(i, i + batch)
        f, y = jax.vmap(one)({k: v[sl] for k, v in th.items()}, keys[sl])
        fs.append(np.asarray(f))
        ys.append(np.asarray(y))
    return np.concatenate(fs), np.concatenate(ys)


def ppc_coverage(pred: np.ndarray, obs, mask, times, *, is_day=None,
                 levels=(0.5, 0.8, 0.9)) -> pd.DataFrame:
    """Coverage of observations by central predictive intervals, by stratum.

    pred : (draws, T) posterior predictive draws of the observations.
    obs, mask : (T,) observations and the records used.
    times : (T,) datetime64 (season strata); is_day : (T,) bool (e.g. PAR > 10).
    Returns rows (stratum, n, level, coverage).
    """
    obs, mask = np.asarray(obs, float), np.asarray(mask, bool)
    t = pd.DatetimeIndex(times)
    strata = {"all": np.ones_like(mask)}
    if is_day is not None:
        strata["day"] = np.asarray(is_day, bool)
        strata["night"] = ~np.asarray(is_day, bool)
    season = np.array([SEASONS[m] for m in t.month])
    for s in ("DJF", "MAM", "JJA", "SON"):
        strata[s] = season == s
    rows = []
    for lv in levels:
        lo, hi = np.quantile(pred, [(1 - lv) / 2, (1 + lv) / 2], axis=0)
        inside = (obs >= lo) & (obs <= hi)
        for name, sel in strata.items():
            m = mask & sel
            if m.sum() >= 10:
                rows.append({"stratum": name, "n": int(m.sum()), "level": lv,
                             "coverage": float(inside[m].mean())})
    return pd.DataFrame(rows)


def plot_traces(idata, names, path):
    import matplotlib.pyplot as plt
    axes = az.plot_trace(idata, var_names=names, compact=False)
    fig = np.asarray(axes).ravel()[0].figure
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_pairs(idata, names, path):
    import matplotlib.pyplot as plt
    axes = az.plot_pair(idata, var_names=names, kind="kde" if False else "scatter",
                        marginals=True, scatter_kwargs={"alpha": 0.2, "s": 2})
    fig = np.asarray(axes).ravel()[0].figure
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_predictive(times, obs, mask, pred_model, pred_obs, path, *, title=""):
    """Observed vs posterior predictive: daily means with the 90 % band of the model
    output and of the predictive (model + error), and an hourly scatter."""
    import matplotlib.pyplot as plt
    t = pd.DatetimeIndex(times)
    o = pd.Series(np.where(mask, obs, np.nan), index=t)
    med = pd.Series(np.median(pred_model, 0), index=t)
    q = {p: pd.Series(np.quantile(pred_obs, p, axis=0), index=t) for p in (0.05, 0.95)}
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(13, 4), gridspec_kw={"width_ratios": [3, 1]})
    ok = o.notna()
    day = lambda s: s[ok].groupby(s[ok].index.floor("D")).mean()
    a1.fill_between(day(q[0.05]).index, day(q[0.05]), day(q[0.95]), color="C0", alpha=0.25,
                    label="90 % predictive (daily mean of hourly bounds)")
    a1.plot(day(med).index, day(med), "C0", lw=1, label="posterior median model")
    a1.plot(day(o).index, day(o), "k.", ms=3, label="observed (daily mean of used records)")
    a1.set(ylabel="NEE (umol m-2 s-1)", title=title)
    a1.legend(fontsize=7)
    a2.plot(o[ok], med[ok], ".", ms=1, alpha=0.3)
    lim = [float(min(o[ok].min(), med[ok].min())), float(max(o[ok].max(), med[ok].max()))]
    a2.plot(lim, lim, "k--", lw=1)
    a2.set(xlabel="observed", ylabel="posterior median model")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return path


def plot_marginals(names, prior_draws, path, *, posterior_draws=None, default=None, point=None,
                   title=""):
    """Histograms of prior (grey) and posterior (green) draws per parameter, shape (n, P),
    with vertical lines at the default (orange) and a point estimate such as the MAP
    (black)."""
    import matplotlib.pyplot as plt
    P = len(names)
    fig, ax = plt.subplots(1, P, figsize=(3 * P, 2.8), squeeze=False)
    for i, n in enumerate(names):
        a = ax[0, i]
        a.hist(np.asarray(prior_draws)[:, i], bins=40, density=True, color="C7", alpha=0.6, label="prior")
        if posterior_draws is not None and len(posterior_draws) > 1:
            a.hist(np.asarray(posterior_draws)[:, i], bins=30, density=True, color="C2", alpha=0.6,
                   label="posterior")
        if default is not None:
            a.axvline(default[i], color="C1", lw=1, label="default")
        if point is not None:
            a.axvline(point[i], color="k", lw=1, label="MAP")
        a.set_title(n, fontsize=8)
    ax[0, 0].legend(fontsize=6)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
