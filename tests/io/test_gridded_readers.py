"""Readers for MODIS MOD09A1 crops, ERA5 single levels and the US-PFa (Park Falls)
RData, on the shipped files, plus bad-input checks."""
from __future__ import annotations

import gzip
import shutil

import netCDF4
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from process_models.io._common import data_path
from process_models.io.era5 import interpolate_to_grid, read_era5_single_levels
from process_models.io.modis import read_mod09a1, sinusoidal_to_latlon
from process_models.io.park_falls import read_park_falls, read_vprm_parameter_tables
from process_models.units import DataValidationError

MUNICH = "munich_2022_modis-era5_pyvprm"
REFL = ["red", "nir", "blue", "green", "nir_1240", "swir16", "swir21"]
ONE_061 = "MOD09A1.A2022193.h18v04.061.2022202060719_crop.nc.gz"


@pytest.fixture(scope="module")
def modis_dir():
    return data_path(MUNICH, "modis")


@pytest.fixture(scope="module")
def modis(modis_dir):
    return read_mod09a1(modis_dir)


@pytest.fixture(scope="module")
def era5_path():
    return data_path(MUNICH, "era5", "2022_7.nc.gz")


@pytest.fixture(scope="module")
def era5(era5_path):
    return read_era5_single_levels(era5_path)


@pytest.fixture(scope="module")
def park_falls():
    return read_park_falls()


def _open_xr(path_gz) -> xr.Dataset:
    raw = gzip.decompress(open(path_gz, "rb").read())
    nc = netCDF4.Dataset("mem.nc", memory=raw)
    return xr.open_dataset(xr.backends.NetCDF4DataStore(nc)).load()


# ---------------------------------------------------------------- MODIS
def test_modis_time_axis_and_collections(modis):
    t = pd.DatetimeIndex(modis.time.values)
    assert t.size == 47 and t.is_unique and t.is_monotonic_increasing
    assert t[0] == pd.Timestamp("2021-12-27") and t[-1] == pd.Timestamp("2023-01-01")
    assert pd.Timestamp("2022-10-16") not in t  # A2022289 is missing in the data
    coll = dict(zip(t, modis.collection.values))
    assert coll[pd.Timestamp("2022-01-01")] == "061"
    assert coll[pd.Timestamp("2021-12-27")] == "006"  # only 006 exists
    assert "A2022001.h18v04.006" in modis.attrs["dropped_files"]
    assert modis.attrs["utc_offset_hours"] == 0
    assert "doi:10.5067/MODIS/MOD09A1.061" in modis.attrs["citation"]
    assert "Sinusoidal" in modis.attrs["crs_wkt"]


def test_modis_prefer_006(modis_dir):
    files = sorted(modis_dir.glob("MOD09A1.A2022001*"))
    ds = read_mod09a1(files, prefer_collection="006")
    assert ds.sizes["time"] == 1 and ds.collection.item() == "006"
    # the 006 and 061 versions differ (b01 minimum -0.0011 vs 0.0040)
    assert float(ds.red.min()) == pytest.approx(-0.0011, abs=1e-6)


def test_modis_variables_units_dtypes(modis):
    assert modis.red.dims == ("time", "y", "x")
    assert modis.red.shape == (47, 108, 110)
    for v in REFL:
        assert modis[v].dtype == np.float32
        assert modis[v].attrs["units"] == "1"
        assert modis[v].attrs["source_name"].startswith("sur_refl_b0")
    assert modis.state_qa.dtype == np.uint16 and modis.qc_500m.dtype == np.uint32
    for v in ("state_qa", "qc_500m"):
        assert modis[v].attrs["units"] == "1" and "bit" in modis[v].attrs["flag_meanings"]
    for v in modis.data_vars:
        if not np.issubdtype(modis[v].dtype, np.datetime64):
            assert "units" in modis[v].attrs, v
    for c in ("x", "y", "lat", "lon"):
        assert "units" in modis[c].attrs
    # bit fields: first file, state value 72 = land, aerosol climatology... low bits 0
    assert int(modis.qc_500m[0].min()) == 1073741824


def test_modis_reflectance_ranges(modis):
    first = modis.isel(time=0)
    assert float(first.red.min()) == pytest.approx(-0.0011, abs=1e-6)
    assert float(first.red.max()) == pytest.approx(0.2138, abs=1e-4)
    assert float(first.nir.min()) == pytest.approx(0.0005, abs=2e-4)
    assert float(first.nir.max()) == pytest.approx(0.359, abs=2e-3)
    assert float(first.swir16.min()) == pytest.approx(0.002, abs=1e-3)
    assert float(first.swir16.max()) == pytest.approx(0.293, abs=2e-3)
    for v in ("red", "nir", "blue", "swir16"):
        assert int(modis[v].isnull().sum()) == 0
    assert float(modis.swir21.isnull().mean()) < 0.005
    assert float(modis.red.min()) >= -0.011 and float(modis.red.max()) <= 1.6


def test_modis_latlon(modis):
    assert modis.lat.dims == ("y", "x")
    assert 47.9 < float(modis.lat.min()) < float(modis.lat.max()) < 48.4
    assert 11.1 < float(modis.lon.min()) < float(modis.lon.max()) < 12.0
    # sinusoidal inverse: y = R * lat; x = R * lon * cos(lat)
    lat, lon = sinusoidal_to_latlon(modis.x.values[5], modis.y.values[7])
    assert modis.lat.values[7, 5] == pytest.approx(float(lat))
    assert modis.lon.values[7, 5] == pytest.approx(float(lon))
    R = 6371007.181
    assert np.deg2rad(lat) * R == pytest.approx(modis.y.values[7])
    assert np.deg2rad(lon) * R * np.cos(np.deg2rad(lat)) == pytest.approx(modis.x.values[5])
    # latitude decreases with row (north-up grid)
    assert np.all(np.diff(modis.lat.values[:, 0]) < 0)


def test_modis_obs_time_within_window(modis):
    start = modis.time.values[:, None, None]
    obs = modis.obs_time.values
    ok = np.isnat(obs) | ((obs >= start) & (obs < start + np.timedelta64(8, "D")))
    assert ok.all()
    # year wrap: A2021361 holds DOY 361..365 (2021) and DOY 1 (2022)
    first = pd.DatetimeIndex(obs[0].ravel())
    assert first.min() == pd.Timestamp("2021-12-27") and first.max() == pd.Timestamp("2022-01-02")
    last22 = pd.DatetimeIndex(obs[-2].ravel())  # A2022361
    assert last22.max().year == 2023


def test_modis_dask(modis_dir):
    files = sorted(modis_dir.glob("MOD09A1.A20220[0-4]*"))
    ds = read_mod09a1(files, chunks={"time": 1})
    assert ds.red.chunks is not None
    assert float(ds.red.mean().compute()) == pytest.approx(float(ds.red.load().mean()))


def test_modis_truncated_gzip(tmp_path, modis_dir):
    raw = (modis_dir / ONE_061).read_bytes()
    bad = tmp_path / ONE_061
    bad.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataValidationError, match=r"A2022193.*gzip"):
        read_mod09a1([bad])


def test_modis_corrupt_netcdf(tmp_path):
    bad = tmp_path / "MOD09A1.A2022193.h18v04.061.2022202060719_crop.nc"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 200)
    with pytest.raises(DataValidationError, match=r"A2022193.*not a readable netCDF"):
        read_mod09a1([bad])


def _write_modified(modis_dir, tmp_path, name, fn):
    ds = _open_xr(modis_dir / ONE_061)
    ds = fn(ds)
    out = tmp_path / name
    ds.to_netcdf(out, engine="netcdf4")
    return out


def test_modis_unscaled_dn(tmp_path, modis_dir):
    def scale(ds):
        ds["sur_refl_b01"] = (ds["sur_refl_b01"] * 1e4).round()
        return ds
    bad = _write_modified(modis_dir, tmp_path, ONE_061[:-3], scale)
    with pytest.raises(DataValidationError,
                       match=r"A2022193.*sur_refl_b01.*unscaled.*multiply by 1e-4"):
        read_mod09a1([bad])


def test_modis_renamed_file(tmp_path, modis_dir):
    """A file whose name's AYYYYDDD disagrees with its contents is refused."""
    bad = tmp_path / ONE_061.replace("A2022193", "A2022201")
    shutil.copy(modis_dir / ONE_061, bad)
    with pytest.raises(DataValidationError, match=r"A2022201.*RANGEBEGINNINGDATE is 2022-07-12"):
        read_mod09a1([bad])


def test_modis_missing_band(tmp_path, modis_dir):
    bad = _write_modified(modis_dir, tmp_path, ONE_061[:-3], lambda ds: ds.drop_vars("sur_refl_b06"))
    with pytest.raises(DataValidationError, match=r"A2022193.*sur_refl_b06.*missing"):
        read_mod09a1([bad])


def test_modis_inconsistent_grid(tmp_path, modis_dir):
    name = "MOD09A1.A2022201.h18v04.061.2022215030351_crop.nc"
    ds = _open_xr(modis_dir / (name + ".gz")).assign_coords(x=lambda d: d.x + 463.3)
    shifted = tmp_path / name
    ds.to_netcdf(shifted, engine="netcdf4")
    good = tmp_path / ONE_061
    shutil.copy(modis_dir / ONE_061, good)
    with pytest.raises(DataValidationError, match=r"A2022201.*variable 'x'.*differs.*Fix: crop"):
        read_mod09a1([good, shifted])


# ---------------------------------------------------------------- ERA5
def test_era5_contract(era5):
    assert era5.air_temperature.dims == ("time", "lat", "lon")
    assert era5.sizes == {"time": 744, "lat": 14, "lon": 20}
    assert np.all(np.diff(era5.lat.values) > 0) and np.all(np.diff(era5.lon.values) > 0)
    assert era5.air_temperature.attrs["units"] == "degC"
    assert era5.shortwave_in.attrs["units"] == "W m-2"
    assert era5.attrs["utc_offset_hours"] == 0
    assert "10.24381/cds.adbb2d47" in era5.attrs["citation"]
    assert "Contains modified Copernicus Climate Change Service information" in era5.attrs["citation"]
    # interval-start convention: first valid time 2022-07-01 00:00 -> time 2022-06-30 23:00
    assert pd.Timestamp(era5.time.values[0]) == pd.Timestamp("2022-06-30 23:00")
    assert pd.Timestamp(era5.valid_time.values[0]) == pd.Timestamp("2022-07-01 00:00")
    assert np.all(np.diff(era5.time.values) == np.timedelta64(1, "h"))


def test_era5_values(era5, era5_path):
    t = era5.air_temperature.values
    assert 0.5 <= t.min() < 1.0 and 36.0 < t.max() <= 36.6
    sw = era5.shortwave_in.values
    # the shipped file has exactly one NaN in ssrd (PROVENANCE says none): kept as NaN
    assert era5.shortwave_in.attrs["missing_count"] == 1
    (i, j, k), = np.argwhere(np.isnan(sw))
    assert pd.Timestamp(era5.valid_time.values[i]) == pd.Timestamp("2022-07-18 04:00")
    assert era5.lat.values[j] == pytest.approx(47.916, abs=1e-3)
    assert np.nanmin(sw) >= 0 and np.nanmean(sw) >= 0
    assert np.nanmax(sw) == pytest.approx(3.53e6 / 3600, rel=2e-3)
    # flip: the reader's lat[0] is the file's last (southernmost) row
    raw = _open_xr(era5_path)
    assert era5.lat.values[0] == pytest.approx(raw.lat.values[-1])
    np.testing.assert_allclose(era5.shortwave_in.values[:, 0, :], raw.ssrd.values[:, -1, :] / 3600)
    end = read_era5_single_levels(era5_path, temperature="end")
    np.testing.assert_allclose(end.air_temperature.values[:, 0, :], raw.t2m.values[:, -1, :] - 273.15)
    # interval mean is the average of the end values of consecutive records
    np.testing.assert_allclose(t[1:], 0.5 * (end.air_temperature.values[1:]
                                             + end.air_temperature.values[:-1]))
    # sunlit hours in July in Bavaria (UTC): shortwave mostly 04-19 UTC intervals
    hours = pd.DatetimeIndex(era5.time.values).hour
    night = sw[(hours >= 20) | (hours <= 2)]
    assert night.max() < 5.0


def _write_era5(era5_path, tmp_path, fn, name="bad_era5.nc"):
    ds = _open_xr(era5_path).isel(time=slice(0, 48))
    ds = fn(ds)
    out = tmp_path / name
    ds.to_netcdf(out, engine="netcdf4")
    return out


def test_era5_degC_without_units(tmp_path, era5_path):
    def to_c(ds):
        ds["t2m"] = ds.t2m - 273.15
        ds["t2m"].attrs = {}
        return ds
    bad = _write_era5(era5_path, tmp_path, to_c)
    with pytest.raises(DataValidationError, match=r"bad_era5\.nc.*'t2m'.*units"):
        read_era5_single_levels(bad)
    # declaring the unit makes it readable
    with netCDF4.Dataset(bad, "a") as nc:
        nc["t2m"].units = "degC"
    ok = read_era5_single_levels(bad)
    assert 5 < float(ok.air_temperature.mean()) < 30


def test_era5_duplicated_time(tmp_path, era5_path):
    bad = _write_era5(era5_path, tmp_path,
                      lambda ds: ds.isel(time=[0, 1, 2, 2, 3, 4]))
    with pytest.raises(DataValidationError, match=r"bad_era5\.nc.*'time'.*duplicated"):
        read_era5_single_levels(bad)


def test_era5_missing_variable_and_negative_ssrd(tmp_path, era5_path):
    bad = _write_era5(era5_path, tmp_path, lambda ds: ds.drop_vars("ssrd"))
    with pytest.raises(DataValidationError, match=r"bad_era5\.nc.*'ssrd'.*missing"):
        read_era5_single_levels(bad)

    def negative(ds):
        ds["ssrd"] = ds.ssrd - 1e5
        return ds
    bad2 = _write_era5(era5_path, tmp_path, negative, name="neg.nc")
    with pytest.raises(DataValidationError, match=r"neg\.nc.*'ssrd'.*negative"):
        read_era5_single_levels(bad2)


def test_interpolation_exact_at_nodes_and_bounded(era5, modis):
    met = era5.isel(time=slice(10, 14))
    la, lo = np.meshgrid(met.lat.values[2:5], met.lon.values[3:7], indexing="ij")
    out = interpolate_to_grid(met, la, lo)
    assert out.air_temperature.dims == ("time", "y", "x")
    np.testing.assert_allclose(out.air_temperature.values,
                               met.air_temperature.values[:, 2:5, 3:7], rtol=0, atol=1e-10)
    # midpoint of a cell = mean of its four corners
    lat_m = 0.5 * (met.lat.values[2] + met.lat.values[3])
    lon_m = 0.5 * (met.lon.values[3] + met.lon.values[4])
    mid = interpolate_to_grid(met, [[lat_m]], [[lon_m]])
    corners = met.shortwave_in.values[:, 2:4, 3:5].mean(axis=(1, 2))
    np.testing.assert_allclose(mid.shortwave_in.values[:, 0, 0], corners, rtol=1e-12)
    # onto the MODIS grid: bounded by the min/max of the surrounding nodes
    g = interpolate_to_grid(met, modis.lat, modis.lon)
    assert g.air_temperature.shape == (4, 108, 110)
    assert "x" in g.coords and "lat" in g.coords and g.lat.dims == ("y", "x")
    assert g.air_temperature.attrs["units"] == "degC"
    sub = met.sel(lat=slice(47.5, 48.8), lon=slice(10.9, 12.3))
    for v in ("air_temperature", "shortwave_in"):
        lo_, hi_ = sub[v].min(("lat", "lon")), sub[v].max(("lat", "lon"))
        assert bool(((g[v] >= lo_ - 1e-9) & (g[v] <= hi_ + 1e-9)).all())
    with pytest.raises(DataValidationError, match="outside the met grid"):
        interpolate_to_grid(met, [[55.0]], [[11.0]])


# ---------------------------------------------------------------- Park Falls
def test_park_falls_tower(park_falls):
    tow = park_falls["tower"]
    assert tow.sizes["time"] == 8756
    t = pd.DatetimeIndex(tow.time.values)
    assert t[0] == pd.Timestamp("2005-01-02 04:00") and t[-1] == pd.Timestamp("2006-01-01 23:00")
    assert (t.minute == 0).all() and np.all(np.diff(tow.time.values) == np.timedelta64(1, "h"))
    assert float(tow.nee.isnull().mean()) == pytest.approx(0.481, abs=1e-3)
    assert int(tow.air_temperature.isnull().sum()) == 0 and int(tow.ppfd_in.isnull().sum()) == 0
    assert tow.air_temperature.attrs["units"] == "degC"
    assert tow.ppfd_in.attrs["units"] == "umol m-2 s-1"
    assert tow.nee.attrs["units"] == "umol m-2 s-1"
    assert tow.attrs["utc_offset_hours"] == -6
    assert tow.attrs["time_step_seconds"] == 3600


def test_park_falls_time_convention_evidence(park_falls):
    """PAR centroid of the mean diurnal cycle sits ~0.5 h before local solar noon
    (interval-start labels in UTC-6), and night-time PAR is zero."""
    tow = park_falls["tower"]
    par = tow.ppfd_in.to_series()
    hour = par.index.hour
    prof = par.groupby(hour).mean()
    centroid = float((prof * prof.index).sum() / prof.sum())
    solar_noon_lst = 12.0 + (-90.0 - tow.attrs["longitude"]) * -1 / 15.0  # ~12:01
    assert -0.7 < centroid - solar_noon_lst < -0.2
    assert prof.loc[[0, 1, 2, 3, 21, 22, 23]].max() == 0.0
    # daytime uptake: NEE negative around noon in summer (sign: positive = source)
    summer = tow.nee.sel(time=slice("2005-06-01", "2005-08-31")).to_series()
    assert summer[summer.index.hour.isin([10, 11, 12, 13])].mean() < -5
    assert summer[summer.index.hour.isin([0, 1, 2, 3])].mean() > 0


def test_park_falls_modis_tables(park_falls):
    evi = park_falls["evi"]
    assert evi.sizes["time"] == 304 and evi.evi.attrs["units"] == "1"
    assert pd.Timestamp(evi.time.values[0]) == pd.Timestamp("2000-02-18")
    assert pd.Timestamp(evi.time.values[-1]) == pd.Timestamp("2013-09-30")
    assert int(evi.evi.isnull().sum()) == 0
    ref = park_falls["reflectance"]
    assert ref.sizes["time"] == 614
    for v in ("red", "nir", "blue", "swir"):
        assert ref[v].attrs["units"] == "1"
    assert float(ref.red.isnull().mean()) == pytest.approx(0.508, abs=1e-3)
    phen = park_falls["phenology"]
    assert list(phen.columns) == ["date", "phen"] and len(phen) == 31
    assert set(phen.phen) == {"ginc", "gmax", "gdec", "gmin"}
    assert phen.date.iloc[0].date() == pd.Timestamp("2002-06-20").date()


def test_vprm_parameter_tables():
    df = read_vprm_parameter_tables()
    assert list(df.columns) == ["lambda", "alpha", "beta", "par0"]
    assert list(df.index) == ["all", "ENF", "GRA", "WET", "CRO", "DBF", "MF", "CS", "OS", "WS"]
    a = df.loc["all"]
    assert a["lambda"] == pytest.approx(0.0694, abs=1e-4)
    assert a["alpha"] == pytest.approx(0.0467, abs=1e-4)
    assert a["beta"] == pytest.approx(0.526, abs=1e-3)
    assert a["par0"] == pytest.approx(1104.8, abs=0.1)
    assert df.attrs["units"]["par0"] == "umol m-2 s-1"


def test_corrupt_rdata(tmp_path):
    src = data_path("us-pfa_park-falls_vprm", "Park_Falls.RData").read_bytes()
    bad = tmp_path / "Park_Falls.RData"
    bad.write_bytes(src[: len(src) // 3])
    with pytest.raises(DataValidationError, match=r"Park_Falls\.RData.*could not read"):
        read_park_falls(bad)
    bad2 = tmp_path / "VPRM_parameters.RData"
    bad2.write_bytes(b"not an RData file at all")
    with pytest.raises(DataValidationError, match=r"VPRM_parameters\.RData"):
        read_vprm_parameter_tables(bad2)
