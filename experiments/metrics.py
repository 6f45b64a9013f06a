"""Skill scores used by the studies (model vs observation, NaN-aware)."""
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
