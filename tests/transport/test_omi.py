"""OMI L3 Romania NO2 reader (units, orientation, fill values, the monthly file's units
trap) and the OMI steady-state mass balance on a field with a known answer."""
import numpy as np
import pytest
import xarray as xr

from process_models.io.omi import MOLEC_CM2_TO_MOL_M2, read_omi_no2_l3
from process_models.units import DataValidationError


def _have(kind):
    try:
        read_omi_no2_l3(kind)
        return True
    except FileNotFoundError:
        return False


@pytest.mark.parametrize("kind,column", [("monthly", "tropospheric"), ("climatology", "total")])
def test_shipped_files_read_in_mol_m2_on_ascending_grids(kind, column):
    if not _have(kind):
        pytest.skip("shared OMI data not present")
    d = read_omi_no2_l3(kind)
    x = d["no2_column"]
    assert x.attrs["units"] == "mol m-2" and d.attrs["column"] == column
    assert np.all(np.diff(d["lat"].values) > 0) and np.all(np.diff(d["lon"].values) > 0)
    # PROVENANCE: monthly 7.78e14-9.48e15, climatology 1.85e15-1.06e16 molec cm-2 (the monthly
    # file's "10^15molec/cm2" label is not applied)
    lo, hi = {"monthly": (7.78e14, 9.48e15), "climatology": (1.85e15, 1.06e16)}[kind]
    np.testing.assert_allclose([float(x.min()), float(x.max())], np.array([lo, hi]) * MOLEC_CM2_TO_MOL_M2,
                               rtol=5e-3)
    assert x.shape[0] == (7 if kind == "monthly" else 12)


def _write(tmp_path, values, units, fill=-3.4e38):
    lat = np.array([45.0, 44.75])
    ds = xr.Dataset({"no2": (("time", "latitude", "longitude"), values.astype(np.float32), {"units": units})},
                    coords={"time": np.array(["2020-01-01"], "datetime64[ns]"), "latitude": lat,
                            "longitude": np.array([20.0, 20.25, 20.5])})
    ds["no2"].encoding["_FillValue"] = np.float32(fill)
    p = tmp_path / "omi.nc"
    ds.to_netcdf(p)
    return p


def test_fill_values_become_nan_and_bad_units_are_clear_errors(tmp_path):
    v = np.full((1, 2, 3), 3e15)
    v[0, 0, 1] = np.nan                                   # written as the _FillValue
    v[0, 1, 2] = -1.0
    d = read_omi_no2_l3("monthly", _write(tmp_path, v, "10^15molec/cm2"))
    x = d["no2_column"].values
    assert np.isnan(x).sum() == 2
    np.testing.assert_allclose(np.nanmax(x), 3e15 * MOLEC_CM2_TO_MOL_M2)
    assert d["lat"].values[0] < d["lat"].values[1]
    with pytest.raises(DataValidationError, match="units"):
        read_omi_no2_l3("monthly", _write(tmp_path, v, "DU"))
    with pytest.raises(DataValidationError, match="implausible"):
        read_omi_no2_l3("monthly", _write(tmp_path, v * 1e6, "molec/cm2"))
    with pytest.raises(ValueError, match="kind"):
        read_omi_no2_l3("daily")


def test_mass_balance_recovers_a_known_burden():
    """A Gaussian NO2 blob (sigma 30 km) of known burden B on a uniform background:
    E = L M_NO2 B / tau / f_in within 2 % (0.25-deg discretisation of the disk)."""
    from assimilation.inversion.real import local_xy, omi_mass_balance
    from process_models.transport import M_NO2
    lat = np.arange(40.125, 49.0, 0.25)
    lon = np.arange(19.125, 28.0, 0.25)
    LON, LAT = np.meshgrid(lon, lat)
    x, y = local_xy(LON, LAT, 23.5, 44.6)
    B = 1.0e5                                                        # mol
    blob = B / (2 * np.pi * 30e3**2) * np.exp(-(x**2 + y**2) / (2 * 30e3**2))
    V = np.stack([8e-5 + blob * (1 + 0.1 * k) for k in range(3)])   # three months
    ds = xr.Dataset({"no2_column": (("time", "lat", "lon"), V)},
                    coords={"time": np.arange(3), "month": ("time", np.array([6, 7, 8])), "lat": lat, "lon": lon})
    r = omi_mass_balance(23.5, 44.6, data=ds, months=(6, 7, 8), lifetime=4 * 3600.0)
    f_in = 1 - np.exp(-100e3 / (4.0 * 4 * 3600.0))
    expect = 1.32 * M_NO2 * 1.1 * B / (4 * 3600.0) / f_in
    assert r["estimate"] == pytest.approx(expect, rel=0.02)
    assert r["sd"] > 0.4 * r["estimate"]            # lifetime 40 %, column 25 %, ratio 10 %: >= 48 %
    assert r["reference"] > 0 and r["reference_units"] >= 4    # the Oltenia CoCO2 units
