"""Readers of the ddeq-shipped NO2 / NOx data (process_models.io.tropomi)."""
import numpy as np
import pytest
import xarray as xr

T = pytest.importorskip("process_models.io.tropomi")
try:
    T.ddeq_data_dir()
except FileNotFoundError:  # pragma: no cover - the ddeq wheel is a data dependency
    pytest.skip("ddeq==1.1 not installed", allow_module_level=True)

from process_models.units import DataValidationError  # noqa: E402


def test_tropomi_matimba_crop_units_masks_and_values():
    s = T.read_tropomi_no2_l2()
    assert s["no2"].attrs["units"] == "mol m-2" and s["no2_std"].attrs["units"] == "mol m-2"
    assert s["no2"].shape == (132, 169) and s["averaging_kernel"].shape == (132, 169, 34)
    assert s.attrs["time"].startswith("2021-07-25T11:44")
    valid = s["valid"].values == 1
    assert 0.4 < valid.mean() < 0.8                      # qa > 0.75 and clouds <= 0.3
    assert np.all(np.isfinite(s["no2"].values[valid]))
    assert np.all(s["cloud_fraction"].values[valid] <= 0.3)
    # Matimba/Medupi plume: within 30 km of the plants the columns reach > 5x the crop median
    # (the crop maximum itself is the Highveld power plants, 320 km to the south-east)
    d = np.hypot((s["lon"].values - 27.61) * 102.0, (s["lat"].values + 23.67) * 111.0)
    near = np.nanmax(np.where(valid & (d < 30.0), s["no2"].values, np.nan))
    assert near > 5 * np.nanmedian(np.where(valid, s["no2"].values, np.nan))


def test_era5_boundary_layer_wind_between_surface_and_100m_and_errors():
    w = T.read_era5_boundary_layer_winds("2021-07-25T11:44")
    for v in ("u_bl", "v_bl", "blh"):
        assert w[v].attrs["units"] in ("m s-1", "m") and np.all(np.isfinite(w[v].values))
    # easterly flow over Matimba at the overpass; the BL mean is within 3 m/s of the 100 m wind
    assert float(w["u_bl"].mean()) < -3.0
    assert float(np.abs(w["u_bl"] - w["u100"]).max()) < 3.0
    with pytest.raises(DataValidationError, match="outside the ERA5 records"):
        T.read_era5_boundary_layer_winds("2021-07-27T12:00")


def test_smartcarb_fields_time_from_name_and_fill_values():
    f = T.read_smartcarb_fields(tracers=("NO2_JV",))
    assert f.attrs["time"] == "2015-04-23 11:00:00"          # not the 9.97e36 fill value
    assert f["NO2_JV"].attrs["units"] == "mol m-2" and float(f["NO2_JV"].max()) < 1e-1
    da = xr.DataArray(np.array([1.0, 9.969209968386869e36, -9.97e36]))
    assert np.isnan(T.unflag_fill(da).values[1:]).all() and T.unflag_fill(da).values[0] == 1.0
    w = T.read_smartcarb_winds()
    assert w["u"].shape == (600, 700) and float(np.abs(w["u"]).max()) < 40.0


def test_smartcarb_true_emissions_and_sources():
    e = T.read_smartcarb_true_emissions("Janschwalde", "2015-04-23 11:00")
    # 3.42e-2 Mt NO2/yr in the CSV at that hour -> kg s-1 (Julian year)
    assert e.attrs["units"] == "kg s-1" and 1.0 < float(e) < 1.2
    src = T.read_smartcarb_sources()
    assert {"Berlin", "Janschwalde"} <= set(src.index)
    assert 0.5 < src.loc["Janschwalde", "nox_emission"] < 1.2
    with pytest.raises(DataValidationError, match="no source"):
        T.read_smartcarb_true_emissions("Atlantis")


def test_coco2_catalogue_matimba_medupi():
    c = T.read_point_source_catalogue(27.610556, -23.668333, radius_km=10.0)
    assert len(c) == 9                        # 6 Matimba units + 3 Medupi units in v1.1
    np.testing.assert_allclose(c["nox_emission"].sum(), 30355.716 * 1e3 / T.SECONDS_PER_YEAR, rtol=1e-6)


def test_missing_variable_is_a_clear_error(tmp_path):
    p = tmp_path / "bad.nc"
    xr.Dataset({"NO2": (("nrows", "nobs"), np.zeros((2, 2)), {"units": "mol m-2"})}).to_netcdf(p)
    with pytest.raises(DataValidationError, match="missing variables"):
        T.read_tropomi_no2_l2(p)
