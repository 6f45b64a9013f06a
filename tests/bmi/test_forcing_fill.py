"""The driver gap filler used by the BMI configs and the coupled study."""
import numpy as np
import pandas as pd
import xarray as xr

from process_models.bmi._forcing import fill_gaps, read_with
from process_models.io import data_path


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


def test_reader_registry_reads_real_files():
    ds = read_with("bigleaf_month", data_path("fluxnet2015_month-subsets_bigleaf", "AT_Neu_Jul_2010.csv.gz"))
    assert ds.attrs["site_id"] == "AT-Neu"
    try:
        read_with("nope", "x")
    except ValueError as err:
        assert "unknown reader" in str(err)
    else:
        raise AssertionError("unknown reader accepted")
