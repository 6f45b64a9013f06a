"""Regional VPRM forcing from the shipped Munich MOD09A1 + ERA5 pair, and the phenology
land-cover stand-in on synthetic EVI series."""
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from process_models.io import (data_path, munich_vprm_forcing, phenology_land_cover, read_era5_single_levels,
                               read_mod09a1, vprm_grid_forcing)
from process_models.units import DataValidationError


@pytest.fixture(scope="module")
def small():
    return munich_vprm_forcing(pixels=12, hours=48)


def test_forcing_layout_units_and_ranges(small):
    ds, cls, info = small
    assert ds["air_temperature"].dims == ("time", "y", "x") and ds.sizes == {"time": 48, "y": 12, "x": 12,
                                                                              "vprm_class": 9}
    assert info["pixels"] == 144 and info["hours"] == 48 and 0 < info["clear_fraction"] < 1
    for v in ds.data_vars:
        assert "units" in ds[v].attrs, v
    assert ds["shortwave_in"].attrs["units"] == "W m-2" and float(ds["shortwave_in"].min()) >= 0
    assert float(ds["evi"].min()) >= 0 and float(ds["evi"].max()) <= 1
    assert float(np.abs(ds["lswi"]).max()) <= 1
    frac = ds["class_fractions"]
    np.testing.assert_array_equal(frac.sum("vprm_class").values, 1.0)          # one-hot
    np.testing.assert_array_equal(frac.argmax("vprm_class").values + 1, cls.values)
    assert (ds["lswi_min"] <= ds["lswi_max"]).all()
    for v in ds.data_vars:
        assert not ds[v].isnull().any(), v


def test_statistics_of_one_pixel_by_hand(small):
    """EVI threshold of a pixel = EVImin + 0.55 (EVImax - EVImin) over its clear 2022 composites."""
    from process_models.satellite import compute_indices, modis_state_mask
    ds, cls, _ = small
    m = read_mod09a1(data_path("munich_2022_modis-era5_pyvprm", "modis")).isel(y=slice(0, 12), x=slice(0, 12))
    clear = np.asarray(modis_state_mask(m.state_qa.values))
    evi = compute_indices(m, ("evi",))["evi"].values
    j, i = 5, 7
    e = evi[:, j, i][clear[:, j, i] & (m.time.dt.year.values == 2022)]
    # rel 1e-6: the indices of the library path are computed from float32 reflectances
    assert float(ds["evi_threshold"][j, i]) == pytest.approx(e.min() + 0.55 * (e.max() - e.min()), rel=1e-6)


def test_met_gaps_are_counted_filled_or_refused():
    m = read_mod09a1(data_path("munich_2022_modis-era5_pyvprm", "modis")).isel(y=slice(0, 4), x=slice(0, 4))
    met = read_era5_single_levels(data_path("munich_2022_modis-era5_pyvprm", "era5", "2022_7.nc.gz")
                                  ).isel(time=slice(0, 24))
    gappy = met.copy()
    gappy["air_temperature"] = gappy["air_temperature"].where(gappy.time != gappy.time[5])
    n = int(gappy["air_temperature"].isnull().sum())
    ds, _, info = vprm_grid_forcing(m, gappy, year=2022, max_met_gaps=n)
    assert info["era5_gaps_filled"] == n and not ds["air_temperature"].isnull().any()
    with pytest.raises(DataValidationError, match="missing values"):
        vprm_grid_forcing(m, gappy, year=2022, max_met_gaps=n - 1)
    with pytest.raises(DataValidationError, match="no composite in 2030"):
        vprm_grid_forcing(m, met, year=2030)


def test_phenology_rules_on_synthetic_series():
    t = pd.date_range("2022-01-01", "2022-12-31", freq="8D")
    doy = np.asarray(t.day_of_year, float)
    bump = lambda peak_doy, width: np.exp(-0.5 * ((doy - peak_doy) / width) ** 2)  # noqa: E731
    series = {
        "evergreen": 0.45 + 0.1 * bump(190, 60),       # high in winter and summer -> 1
        "crop": 0.2 + 0.6 * bump(170, 25),             # June peak, harvested in July -> 6
        "grass": 0.2 + 0.4 * bump(200, 50),            # summer peak -> 7
        "urban": 0.1 + 0.05 * bump(190, 60),           # low summer EVI -> 8
    }
    evi = xr.DataArray(np.stack(list(series.values()), axis=1), dims=("time", "x"),
                       coords={"time": t, "x": list(series)})
    got = dict(zip(series, phenology_land_cover(evi).values.tolist()))
    assert got == {"evergreen": 1, "crop": 6, "grass": 7, "urban": 8}
