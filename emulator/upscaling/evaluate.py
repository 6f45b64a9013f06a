"""Leave-one-site-out cross-validation, skill metrics and the drought test for the
upscaling models (all models on the same folds).

Metrics (daily values, umol m-2 s-1; pooled over the held-out predictions of all folds,
and per site):

* R2 = 1 - SSE/SST, RMSE, bias;
* anomaly R2: the same after removing each site's mean seasonal cycle (MSC) from the
  observations and, separately, the MSC of the predictions from the predictions. The
  MSC is the day-of-year mean over the site's years, smoothed with a circular 15-day
  moving mean (Tramontana et al. 2016 use 8-day MSCs). At a one-year site the anomaly is
  the deviation from the smoothed seasonal course (synoptic variability);
  ``anomaly_r2_multiyear`` keeps the sites with >= 2 years (interannual + synoptic);
* annual NEE error: |sum of predicted - observed daily NEE| over each site-year with
  >= 360 days of NEE, g C m-2 yr-1 (mean over site-years);
* coverage of the 90 % interval ``mean +- 1.645 sd``.

Drought test (:func:`drought_anomalies`): train on every row except the site's drought
years, predict them; JJA mean anomaly of each drought year against the mean JJA of the
site's other years, observed (data) and predicted (the model's own predictions of the
other years as its baseline, so a constant bias cancels).
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import xarray as xr
from tqdm.auto import tqdm

from .models import TARGETS, Z90
from .tables import UMOL_TO_GC_DAY

__all__ = ["leave_one_site_out", "mean_seasonal_cycle", "anomalies", "skill", "skill_table",
           "annual_nee_error", "drought_anomalies", "r2"]


def r2(obs, pred) -> float:
    """1 - SSE/SST over finite pairs (NaN if fewer than 3)."""
    o, p = np.asarray(obs, float), np.asarray(pred, float)
    ok = np.isfinite(o) & np.isfinite(p)
    if ok.sum() < 3:
        return float("nan")
    sst = np.sum((o[ok] - o[ok].mean()) ** 2)
    return float(1.0 - np.sum((o[ok] - p[ok]) ** 2) / sst) if sst > 0 else float("nan")


def leave_one_site_out(table: xr.Dataset, factory: Callable[[], object], *, sites=None,
                       checkpoint_dir=None, name: str = "model", progress: bool = False) -> xr.Dataset:
    """Held-out predictions of every row: the model of fold ``s`` (``factory().fit`` on
    all other sites, checkpoints under ``checkpoint_dir/name/s``) predicts site ``s``.
    Returns the prediction Dataset on ``sample`` aligned with ``table``."""
    site = np.asarray(table["site"].values)
    sites = list(dict.fromkeys(site)) if sites is None else list(sites)
    parts = {}
    for s in tqdm(sites, desc=f"LOSO {name}", disable=not progress):
        train = table.isel(sample=np.flatnonzero(site != s))
        test_idx = np.flatnonzero(site == s)
        ck = None if checkpoint_dir is None else Path(checkpoint_dir) / name / s
        model = factory().fit(train, checkpoint_dir=ck)
        parts[s] = (test_idx, model.predict(table.isel(sample=test_idx)))
    n = table.sizes["sample"]
    out = xr.Dataset({v: ("sample", np.full(n, np.nan), {"units": "umol m-2 s-1"})
                      for v in [*TARGETS, *(f"{k}_sd" for k in TARGETS)]})
    for idx, p in parts.values():
        for v in out.data_vars:
            out[v].values[idx] = p[v].values
    return out.assign_coords(site=table["site"], time=table["time"])


def mean_seasonal_cycle(times, values, window: int = 15) -> np.ndarray:
    """MSC at each of ``times``: day-of-year mean over years (NaN-aware), circular
    ``window``-day moving mean; NaN where the site has no value near that day."""
    doy = np.minimum(pd.DatetimeIndex(times).day_of_year.values, 365) - 1
    v = np.asarray(values, float)
    ok = np.isfinite(v)
    s = np.bincount(doy[ok], v[ok], 365)
    c = np.bincount(doy[ok], minlength=365).astype(float)
    k = np.ones(window)
    ext = lambda a: np.concatenate([a[-(window // 2):], a, a[:window // 2]])
    ss, cc = np.convolve(ext(s), k, "valid"), np.convolve(ext(c), k, "valid")
    msc = np.where(cc > 0, ss / np.maximum(cc, 1), np.nan)
    return msc[doy]


def anomalies(table: xr.Dataset, values, site=None) -> np.ndarray:
    """``values`` minus the MSC of ``values`` per site (rows aligned with ``table``)."""
    v = np.asarray(values, float).copy()
    sites = np.asarray(table["site"].values)
    t = np.asarray(table["time"].values)
    out = np.full_like(v, np.nan)
    for s in np.unique(sites):
        i = np.flatnonzero(sites == s)
        out[i] = v[i] - mean_seasonal_cycle(t[i], v[i])
    return out


def annual_nee_error(table: xr.Dataset, pred: xr.Dataset, min_days: int = 360) -> pd.DataFrame:
    """Observed and predicted annual NEE (g C m-2 yr-1) per site-year with >= ``min_days``
    days of NEE (sums over the observed days, scaled to 365 d)."""
    df = pd.DataFrame({"site": table["site"].values, "year": pd.DatetimeIndex(table["time"].values).year,
                       "obs": table["nee"].values, "pred": pred["nee"].values})
    df = df[np.isfinite(df.obs) & np.isfinite(df.pred)]
    g = df.groupby(["site", "year"])
    res = pd.DataFrame({"days": g.size(), "obs": g.obs.mean() * UMOL_TO_GC_DAY * 365,
                        "pred": g.pred.mean() * UMOL_TO_GC_DAY * 365}).reset_index()
    res = res[res.days >= min_days]
    return res.assign(error=res.pred - res.obs)


def skill(table: xr.Dataset, pred: xr.Dataset, rows=None) -> dict:
    """Pooled metrics of ``pred`` against ``table`` (see the module docstring)."""
    rows = np.arange(table.sizes["sample"]) if rows is None else np.asarray(rows)
    t, p = table.isel(sample=rows), pred.isel(sample=rows)
    sites = np.asarray(t["site"].values)
    years = pd.Series(pd.DatetimeIndex(t["time"].values).year).groupby(sites).nunique()
    out = {}
    for k in TARGETS:
        o, m, sd = (np.asarray(x, float) for x in (t[k].values, p[k].values, p[f"{k}_sd"].values))
        ok = np.isfinite(o) & np.isfinite(m)
        ao, am = anomalies(t, np.where(ok, o, np.nan)), anomalies(t, np.where(ok, m, np.nan))
        multi = np.isin(sites, years.index[years >= 2])
        out[k] = {"n": int(ok.sum()), "r2": r2(o, m),
                  "rmse": float(np.sqrt(np.mean((o[ok] - m[ok]) ** 2))) if ok.any() else float("nan"),
                  "bias": float(np.mean(m[ok] - o[ok])) if ok.any() else float("nan"),
                  "anomaly_r2": r2(ao, am), "anomaly_r2_multiyear": r2(ao[multi], am[multi]),
                  "coverage90": float(np.mean(np.abs(o[ok] - m[ok]) <= Z90 * sd[ok])) if ok.any() else float("nan")}
    ann = annual_nee_error(t, p)
    out["annual_nee"] = {"site_years": int(len(ann)),
                         "mean_abs_error": float(np.mean(np.abs(ann.error))) if len(ann) else float("nan"),
                         "median_abs_error": float(np.median(np.abs(ann.error))) if len(ann) else float("nan")}
    return out


def skill_table(table: xr.Dataset, preds: dict) -> pd.DataFrame:
    """Per-site (and ``all``) metrics of each model in ``preds`` (name -> predictions)."""
    rows = []
    sites = np.asarray(table["site"].values)
    for name, p in preds.items():
        for s in ["all", *dict.fromkeys(sites)]:
            idx = np.arange(sites.size) if s == "all" else np.flatnonzero(sites == s)
            m = skill(table, p, idx)
            row = {"model": name, "site": s, "days": idx.size}
            for k in TARGETS:
                row.update({f"{k}_r2": m[k]["r2"], f"{k}_rmse": m[k]["rmse"],
                            f"{k}_anom_r2": m[k]["anomaly_r2"], f"{k}_cov90": m[k]["coverage90"]})
            row["annual_nee_mae"] = m["annual_nee"]["mean_abs_error"]
            rows.append(row)
    return pd.DataFrame(rows)


def drought_anomalies(table: xr.Dataset, factory: Callable[[], object], *, site: str = "CH-Dav",
                      years=(2018, 2022), months=(6, 7, 8), checkpoint_dir=None, name: str = "model") -> pd.DataFrame:
    """JJA anomalies of NEE and GPP of ``years`` at ``site``, observed and predicted by a
    model trained with those years withheld (see the module docstring). Columns: year,
    flux, observed, predicted (umol m-2 s-1, JJA means minus the other years' mean),
    fraction = predicted / observed, sign_ok, and ``heldout_r2``: daily R2 of that flux
    over the withheld years (a temporal hold-out at a tower seen in training)."""
    sites = np.asarray(table["site"].values)
    t = pd.DatetimeIndex(table["time"].values)
    at = sites == site
    held = at & np.isin(t.year, years)
    ck = None if checkpoint_dir is None else Path(checkpoint_dir) / name / f"drought_{site}"
    model = factory().fit(table.isel(sample=np.flatnonzero(~held)), checkpoint_dir=ck)
    idx = np.flatnonzero(at)
    p = model.predict(table.isel(sample=idx))
    summer = np.isin(t.month[idx], months)
    yr = t.year[idx]
    rows = []
    withheld = np.isin(yr, years)
    for k in ("nee", "gpp"):
        o, m = np.asarray(table[k].values[idx], float), np.asarray(p[k].values, float)
        r2_held = r2(o[withheld], m[withheld])
        jja = pd.DataFrame({"year": yr[summer], "o": o[summer], "m": m[summer]}).groupby("year").mean()
        for y in years:
            if y not in jja.index:
                continue
            other = jja.drop(index=[v for v in years if v in jja.index])
            ao, am = jja.o[y] - other.o.mean(), jja.m[y] - other.m.mean()
            rows.append({"year": y, "flux": k, "observed": ao, "predicted": am, "fraction": am / ao,
                         "sign_ok": bool(np.sign(ao) == np.sign(am)), "heldout_r2": r2_held})
    return pd.DataFrame(rows)
