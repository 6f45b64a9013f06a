"""Skill scores used by the studies (model vs observation, NaN-aware; R2 = squared Pearson r,
NSE of Nash & Sutcliffe 1970, J. Hydrol. 10, 282)."""
from __future__ import annotations

import numpy as np
import pandas as pd


def skill(model, obs) -> dict:
    """R2 (squared Pearson correlation), NSE (1 - SSE/SST), RMSE, bias (model - obs)
    and the number of pairs, over the records where both are finite."""
    m, o = np.asarray(model, float), np.asarray(obs, float)
    ok = np.isfinite(m) & np.isfinite(o)
    m, o = m[ok], o[ok]
    if m.size < 3:
        return {"n": int(m.size), "r2": np.nan, "nse": np.nan, "rmse": np.nan, "bias": np.nan}
    r = np.corrcoef(m, o)[0, 1]
    return {"n": int(m.size), "r2": float(r * r),
            "nse": float(1 - np.sum((m - o) ** 2) / np.sum((o - o.mean()) ** 2)),
            "rmse": float(np.sqrt(np.mean((m - o) ** 2))), "bias": float(np.mean(m - o))}


def daily_means(model: pd.Series, obs: pd.Series, *, min_records: int) -> pd.DataFrame:
    """Daily means of model and obs over the records where obs exists (so both see the
    same hours); days with fewer than ``min_records`` observed records are dropped."""
    df = pd.DataFrame({"model": model, "obs": obs}).dropna()
    g = df.groupby(df.index.floor("D"))
    out = g.mean()
    return out[g.size() >= min_records]


def skill_rows(pairs, index, **labels) -> list[dict]:
    """Half-hourly and daily :func:`skill` of ``{variable: (model, obs)}`` series on the
    DatetimeIndex ``index``; daily means over days with at least half of their records
    observed. One dict per (variable, resolution) with ``labels`` (e.g. site, period),
    ``variable``, ``resolution``, n, r2, rmse, bias (model - obs) and the obs/model means
    over the scored records (units of the series)."""
    index = pd.DatetimeIndex(index)
    per_day = max(1, int(round(86400 / ((index[1] - index[0]) / pd.Timedelta("1s")))))
    rows = []
    for var, (m, o) in pairs.items():
        ms = pd.Series(np.asarray(m, float), index=index)
        os_ = pd.Series(np.asarray(o, float), index=index)
        df = pd.DataFrame({"m": ms, "o": os_}).dropna()
        g = df.groupby(df.index.floor("D"))
        dd = g.mean()[g.size() >= per_day // 2]
        means = {"half-hourly": (float(os_[ms.notna()].mean()), float(ms[os_.notna()].mean())),
                 "daily": (float(dd["o"].mean()), float(dd["m"].mean()))}
        for res, sk in (("half-hourly", skill(ms, os_)), ("daily", skill(dd["m"], dd["o"]))):
            rows.append({**labels, "variable": var, "resolution": res, "n": sk["n"], "r2": sk["r2"],
                         "rmse": sk["rmse"], "bias": sk["bias"], "obs_mean": means[res][0],
                         "model_mean": means[res][1]})
    return rows
