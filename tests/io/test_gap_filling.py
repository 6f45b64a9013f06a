"""The driver gap filler (process_models.io.fill_gaps) used by the BMI configs and the studies."""
import numpy as np
import pandas as pd
import xarray as xr

from process_models.io import fill_gaps


def _series(days=40):
    t = pd.date_range("2016-06-01", periods=days * 48, freq="30min")
    hour = t.hour + t.minute / 60
    temp = 15 + 8 * np.sin(2 * np.pi * (np.asarray(hour) - 9) / 24)   # exact diurnal cycle
    return t, temp


def test_short_gaps_linear_long_gaps_diurnal_cycle_precip_zero():
    t, temp = _series()
    x = temp.copy()
    x[100:103] = np.nan           # 1.5 h: linear
    x[1000:1000 + 96] = np.nan    # two days: mean diurnal cycle of the neighbouring days
    p = np.ones(t.size)
    p[5:8] = np.nan
    ds = xr.Dataset({"air_temperature": ("time", x, {"units": "degC"}),
                     "precipitation": ("time", p, {"units": "mm"})}, coords={"time": t})
    out, notes = fill_gaps(ds, ["air_temperature", "precipitation", "absent"])
    y = out.air_temperature.values
    assert np.isfinite(y).all() and out.air_temperature.attrs["units"] == "degC"
    np.testing.assert_allclose(y[100:103], np.interp(np.arange(100, 103), [99, 103], temp[[99, 103]]))
    # a pure diurnal cycle is reproduced exactly by the mean diurnal cycle
    np.testing.assert_allclose(y[1000:1096], temp[1000:1096], atol=1e-9)
    np.testing.assert_array_equal(out.precipitation.values[5:8], 0.0)
    assert any("3 interpolated, 96 mean diurnal" in n for n in notes)
    assert any("precipitation: 3 missing records set to 0 mm" in n for n in notes)
    np.testing.assert_array_equal(ds.air_temperature.values[np.isfinite(x)], y[np.isfinite(x)])


def test_hourly_step_and_all_period_fallback():
    """A gap longer than the window gets the all-period diurnal mean; the interpolation
    limit is counted in steps of the record length (hourly here: 2 steps)."""
    t = pd.date_range("2016-06-01", periods=10 * 24, freq="h")
    temp = 10 + 5 * np.sin(2 * np.pi * (np.asarray(t.hour) - 9) / 24)
    x = temp.copy()
    x[30:32] = np.nan                 # 2 h: linear
    x[48:48 + 6 * 24] = np.nan        # 6 days of 10, window 3 d: the window finds no data
    ds = xr.Dataset({"air_temperature": ("time", x, {"units": "degC"})}, coords={"time": t})
    out, notes = fill_gaps(ds, ["air_temperature"], window_days=3)
    y = out.air_temperature.values
    assert np.isfinite(y).all()
    np.testing.assert_allclose(y[30:32], np.interp([30, 31], [29, 32], temp[[29, 32]]))
    # a pure cycle is reproduced exactly, except at the hours whose mean includes the two
    # linearly interpolated values (06:00, 07:00)
    hours = np.asarray(t.hour)
    gap = np.isnan(x) & ~np.isin(hours, [6, 7])
    gap[30:32] = False
    np.testing.assert_allclose(y[gap], temp[gap], atol=1e-9)
    assert np.abs(y[np.isnan(x)] - temp[np.isnan(x)]).max() < 0.25   # linear vs sine, 2 h
    assert "2 interpolated" in notes[0] and "all-period" in notes[0]
    assert int(notes[0].split(" ")[1]) == int(np.isnan(x).sum())


def test_no_gaps_no_notes():
    t = pd.date_range("2016-06-01", periods=48, freq="30min")
    ds = xr.Dataset({"vpd": ("time", np.ones(48), {"units": "hPa"})}, coords={"time": t})
    out, notes = fill_gaps(ds, ["vpd"])
    assert notes == [] and out.vpd.equals(ds.vpd)
