"""Cross-validation bookkeeping and metrics: exact values on constructed cases."""
import numpy as np
import pandas as pd
import xarray as xr

from emulator.upscaling.evaluate import (annual_nee_error, anomalies, leave_one_site_out,
                                         mean_seasonal_cycle, r2, skill)
from emulator.upscaling.models import TARGETS, Z90
from emulator.upscaling.tables import UMOL_TO_GC_DAY


def _table(values, sites, times):
    t = xr.Dataset({k: ("sample", np.asarray(values, float)) for k in TARGETS},
                   coords={"site": ("sample", sites), "time": ("sample", times)})
    return t


def test_r2_and_seasonal_cycle():
    assert r2([1, 2, 3, 4], [1, 2, 3, 4]) == 1.0
    assert np.isclose(r2([1, 2, 3, 4], [2.5] * 4), 0.0)
    days = pd.date_range("2001-01-01", "2003-12-31", freq="D")
    doy = np.minimum(days.day_of_year.values, 365)
    seasonal = np.sin(2 * np.pi * doy / 365.0)
    msc = mean_seasonal_cycle(days, seasonal, window=1)
    assert np.allclose(msc, seasonal)                           # window 1: exact day-of-year mean
    noise = np.random.default_rng(0).normal(0, 0.1, days.size)
    t = _table(seasonal + noise, ["A"] * days.size, days.values)
    a = anomalies(t, t["nee"].values)
    # removing the 15-day-smoothed MSC leaves the noise (up to the smoothing of the sine
    # and the 3-year mean of the noise: corr > 0.95)
    assert np.corrcoef(a, noise)[0, 1] > 0.95


def test_annual_error_and_coverage():
    days = pd.date_range("2010-01-01", "2010-12-31", freq="D")
    t = _table(np.ones(days.size), ["A"] * days.size, days.values)
    pred = xr.Dataset({k: ("sample", np.full(days.size, 1.1)) for k in TARGETS})
    for k in TARGETS:
        pred[f"{k}_sd"] = ("sample", np.full(days.size, 0.1 / Z90 * 1.0000001))
    ann = annual_nee_error(t, pred)
    assert np.isclose(ann.obs.iloc[0], UMOL_TO_GC_DAY * 365)           # 1 umol m-2 s-1 = 378.8 g C m-2 yr-1
    assert np.isclose(ann.error.iloc[0], 0.1 * UMOL_TO_GC_DAY * 365)
    m = skill(t, pred)
    assert m["nee"]["coverage90"] == 1.0 and np.isclose(m["nee"]["bias"], 0.1)
    pred["nee_sd"] = pred["nee_sd"] * 0.9
    assert skill(t, pred)["nee"]["coverage90"] == 0.0


class _Recorder:
    seen: list = []

    def fit(self, table, checkpoint_dir=None):
        _Recorder.seen.append(sorted(set(table["site"].values)))
        self.mean = float(np.nanmean(table["nee"].values))
        return self

    def predict(self, table):
        n = table.sizes["sample"]
        d = xr.Dataset({k: ("sample", np.full(n, self.mean)) for k in TARGETS})
        for k in TARGETS:
            d[f"{k}_sd"] = ("sample", np.ones(n))
        return d


def test_loso_never_trains_on_the_held_out_site():
    sites = np.array(["A"] * 3 + ["B"] * 3 + ["C"] * 3)
    t = _table([1, 1, 1, 2, 2, 2, 3, 3, 3], sites, pd.date_range("2000-01-01", periods=9).values)
    _Recorder.seen = []
    p = leave_one_site_out(t, _Recorder)
    assert _Recorder.seen == [["B", "C"], ["A", "C"], ["A", "B"]]
    assert np.allclose(p["nee"].values, [2.5] * 3 + [2.0] * 3 + [1.5] * 3)
