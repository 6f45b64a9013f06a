"""Flux-tower readers: every shipped file, canonical names/units, PROVENANCE.md values,
and every kind of bad input raising DataValidationError naming the file and variable."""
from __future__ import annotations

import gzip
import re

import numpy as np
import pandas as pd
import pytest

from process_models.io._common import data_path
from process_models.io.diive import read_diive_parquet
from process_models.io.efd import read_europe_fluxdata
from process_models.io.fluxnet import read_fluxnet2015
from process_models.io.pyrealm import read_pyrealm_merged
from process_models.io.reddyproc import read_reddyproc_text
from process_models.units import CANONICAL, DataValidationError, check_time_axis

from tests._files import CHA, DAV, HES, THA, THA_GF, VIE


# --------------------------------------------------------------------------- fixtures

@pytest.fixture(scope="module")
def cha():
    return read_fluxnet2015(data_path(*CHA))


@pytest.fixture(scope="module")
def hes():
    return read_europe_fluxdata(data_path(*HES))


@pytest.fixture(scope="module")
def tha():
    return read_reddyproc_text(data_path(*THA))


@pytest.fixture(scope="module")
def tha_gf():
    return read_reddyproc_text(data_path(*THA_GF))


@pytest.fixture(scope="module")
def dav():
    return read_diive_parquet(data_path(*DAV))


@pytest.fixture(scope="module")
def vie():
    return read_pyrealm_merged(data_path(*VIE))


ALL = ["cha", "hes", "tha", "tha_gf", "dav", "vie"]


@pytest.fixture(scope="module")
def hes_text():
    """First 400 records of FR-Hes as text (small copies for the bad-input tests)."""
    lines = gzip.decompress(data_path(*HES).read_bytes()).decode().splitlines()
    return lines[:401]


# --------------------------------------------------------------------------- common

@pytest.mark.parametrize("name", ALL)
def test_common_contract(name, request):
    ds = request.getfixturevalue(name)
    assert list(ds.dims) == ["time"]
    assert ds.time.dtype == np.dtype("datetime64[ns]")
    check_time_axis(ds.time.values)
    assert ds.attrs["time_convention"] == "interval start"
    assert ds.attrs["time_step_seconds"] == 1800.0
    for key in ("site_id", "source_file", "format", "time_zone", "utc_offset_hours",
                "citation", "licence"):
        assert key in ds.attrs, key
    assert isinstance(ds.attrs["utc_offset_hours"], float)
    for v, da in ds.data_vars.items():
        for key in ("units", "long_name", "source_name", "source_units"):
            assert key in da.attrs, (v, key)
        assert da.dtype == np.float64, v
        if v in CANONICAL:
            assert da.attrs["units"] == CANONICAL[v].units, v
        if v.endswith("_qc") or v == "night":
            assert da.attrs["units"] == "1"
    # the -9999 code never survives
    assert not any(bool((ds[v] == -9999).any()) for v in ds.data_vars)


@pytest.mark.parametrize("name,site", [("cha", "CH-Cha"), ("hes", "FR-Hes"), ("tha", "DE-Tha"),
                                       ("dav", "CH-Dav"), ("vie", "BE-Vie")])
def test_site_and_utc_offset_defaults(name, site, request):
    ds = request.getfixturevalue(name)
    assert ds.attrs["site_id"] == site
    assert ds.attrs["utc_offset_hours"] == 1.0
    assert "UTC+01:00" in ds.attrs["time_zone"]


def _night_mean(ds, nee="nee"):
    night = ds["shortwave_in"] < 5
    return float(ds[nee].where(night).mean())


# --------------------------------------------------------------------------- FLUXNET

def test_fluxnet_cha_shape_time(cha):
    assert cha.sizes["time"] == 99
    assert cha.time.values[0] == np.datetime64("2005-01-01T00:00")
    assert cha.time.values[-1] == np.datetime64("2005-01-03T01:00")
    assert set(np.diff(cha.time.values)) == {np.timedelta64(30, "m")}


def test_fluxnet_cha_values(cha):
    raw = pd.read_csv(data_path(*CHA))
    np.testing.assert_allclose(cha.air_temperature, raw.TA_F)
    np.testing.assert_allclose(cha.gpp, raw.GPP_NT_VUT_REF)
    np.testing.assert_allclose(cha.gpp_dt, raw.GPP_DT_VUT_REF)
    np.testing.assert_allclose(cha.reco, raw.RECO_NT_VUT_REF)
    np.testing.assert_allclose(cha.nee_filled, raw.NEE_VUT_REF)
    np.testing.assert_allclose(cha.air_pressure, raw.PA_F)          # already kPa
    np.testing.assert_allclose(cha.vpd, raw.VPD_F)                  # already hPa
    assert cha.nee_filled.attrs["source_name"] == "NEE_VUT_REF"
    assert "nighttime" in cha.gpp.attrs["partitioning"]
    # complete columns (PROVENANCE) vs all--9999 ones
    for v in ("air_temperature", "shortwave_in", "vpd", "le", "h", "nee_filled", "gpp", "reco"):
        assert int(cha[v].isnull().sum()) == 0, v
    for v in ("soil_water_content", "soil_temperature", "ustar", "ppfd_in"):
        assert bool(cha[v].isnull().all()), v
    # every NEE_VUT_REF_QC is 3 (gap-filled, poor) -> no measured NEE
    assert set(np.unique(cha.nee_qc)) == {3.0}
    assert bool(cha.nee.isnull().all())
    # sign convention: night NEE is respiration (> 0), NEE ~ Reco - GPP
    assert float(cha.nee_filled.where(cha.night == 1).mean()) > 0
    # (GPP_NT_VUT_REF / RECO_NT_VUT_REF come from the REF u* member, so NEE = Reco - GPP
    # holds only approximately)
    assert float(np.median(np.abs(cha.nee_filled - (cha.reco - cha.gpp)))) < 2.0


def test_fluxnet_variables_subset(tmp_path):
    ds = read_fluxnet2015(data_path(*CHA), variables=["air_temperature", "nee", "gpp"])
    assert set(ds.data_vars) == {"air_temperature", "nee", "gpp"}
    with pytest.raises(ValueError, match="unknown variable"):
        read_fluxnet2015(data_path(*CHA), variables=["nonsense"])


def test_fluxnet_utc_offset_override():
    ds = read_fluxnet2015(data_path(*CHA), utc_offset_hours=0.0, variables=["gpp"])
    assert ds.attrs["utc_offset_hours"] == 0.0


# bad inputs -----------------------------------------------------------------

@pytest.fixture(scope="module")
def cha_df():
    return pd.read_csv(data_path(*CHA))


def _write(df, tmp_path, name="FLX_XX-Bad_FLUXNET2015_FULLSET_HH_2005-2005_1-3.csv"):
    p = tmp_path / name
    df.to_csv(p, index=False)
    return p


def test_fluxnet_kelvin(cha_df, tmp_path):
    df = cha_df.copy()
    df["TA_F"] = df["TA_F"] + 273.15
    p = _write(df, tmp_path)
    with pytest.raises(DataValidationError, match=rf"{re.escape(p.name)}.*'TA_F'.*kelvin"):
        read_fluxnet2015(p)


def test_fluxnet_vpd_in_pa(cha_df, tmp_path):
    df = cha_df.copy()
    df["VPD_F"] = df["VPD_F"] * 100 + 300
    p = _write(df, tmp_path)
    with pytest.raises(DataValidationError, match=rf"{re.escape(p.name)}.*'VPD_F'.*Pa"):
        read_fluxnet2015(p)


def test_fluxnet_pressure_in_hpa(cha_df, tmp_path):
    df = cha_df.copy()
    df["PA_F"] = df["PA_F"] * 10
    p = _write(df, tmp_path)
    with pytest.raises(DataValidationError, match=r"'PA_F'.*hPa or Pa"):
        read_fluxnet2015(p)


def test_fluxnet_duplicated_timestamp(cha_df, tmp_path):
    df = pd.concat([cha_df.iloc[:10], cha_df.iloc[9:]], ignore_index=True)
    p = _write(df, tmp_path)
    with pytest.raises(DataValidationError, match=rf"{re.escape(p.name)}.*'time'.*duplicated"):
        read_fluxnet2015(p)


def test_fluxnet_unsorted(cha_df, tmp_path):
    df = cha_df.iloc[[0, 1, 3, 2] + list(range(4, len(cha_df)))]
    p = _write(df, tmp_path)
    with pytest.raises(DataValidationError, match=rf"{re.escape(p.name)}.*not sorted"):
        read_fluxnet2015(p)


def test_fluxnet_truncated_mid_line(tmp_path):
    raw = data_path(*CHA).read_bytes()
    cut = raw.rfind(b"\n", 0, len(raw) // 2) + 200
    p = tmp_path / "FLX_CH-Cha_cut.csv"
    p.write_bytes(raw[:cut])
    with pytest.raises(DataValidationError, match=rf"{re.escape(p.name)}.*last line.*truncated"):
        read_fluxnet2015(p)


def test_fluxnet_truncated_gzip(tmp_path):
    gz = gzip.compress(data_path(*CHA).read_bytes())
    p = tmp_path / "FLX_CH-Cha.csv.gz"
    p.write_bytes(gz[: len(gz) // 2])
    with pytest.raises(DataValidationError, match=rf"{re.escape(p.name)}.*gzip"):
        read_fluxnet2015(p)
    # an intact gzip reads
    p.write_bytes(gz)
    assert read_fluxnet2015(p, variables=["gpp"]).sizes["time"] == 99


def test_fluxnet_missing_timestamp_column(cha_df, tmp_path):
    p = _write(cha_df.drop(columns=["TIMESTAMP_START"]), tmp_path)
    with pytest.raises(DataValidationError, match=rf"{re.escape(p.name)}.*'TIMESTAMP_START'.*missing"):
        read_fluxnet2015(p)


def test_fluxnet_requested_variable_missing(cha_df, tmp_path):
    p = _write(cha_df.drop(columns=["GPP_NT_VUT_REF"]), tmp_path)
    assert "gpp" not in read_fluxnet2015(p)
    with pytest.raises(DataValidationError, match=r"'GPP_NT_VUT_REF'.*missing"):
        read_fluxnet2015(p, variables=["gpp"])


def test_fluxnet_garbage_cell(tmp_path):
    lines = data_path(*CHA).read_text().splitlines()
    fields = lines[5].split(",")
    names = lines[0].split(",")
    fields[names.index("SW_IN_F")] = "1#x7"
    lines[5] = ",".join(fields)
    p = tmp_path / "garbage.csv"
    p.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataValidationError, match=r"garbage.csv.*'SW_IN_F'.*non-numeric.*data row 5"):
        read_fluxnet2015(p)


def test_binary_garbage(tmp_path):
    raw = bytearray(data_path(*CHA).read_bytes())
    raw[5000:5016] = bytes(range(16))
    p = tmp_path / "binary.csv"
    p.write_bytes(bytes(raw))
    with pytest.raises(DataValidationError, match=r"binary.csv.*garbage"):
        read_fluxnet2015(p)


@pytest.mark.parametrize("reader,suffix", [
    (read_fluxnet2015, ".csv"), (read_europe_fluxdata, ".txt"), (read_reddyproc_text, ".txt"),
    (read_pyrealm_merged, ".csv"), (read_diive_parquet, ".parquet"),
])
def test_empty_file(reader, suffix, tmp_path):
    p = tmp_path / f"empty{suffix}"
    p.write_bytes(b"")
    with pytest.raises(DataValidationError, match=rf"empty{re.escape(suffix)}.*empty"):
        reader(p)


@pytest.mark.parametrize("reader", [read_fluxnet2015, read_europe_fluxdata,
                                    read_pyrealm_merged])
def test_header_only(reader, tmp_path):
    p = tmp_path / "header_only.csv"
    p.write_text("TIMESTAMP_START,TIMESTAMP_END,time,ppfd,vpd,tc,co2,patm,TA_F\n")
    with pytest.raises(DataValidationError, match=r"header_only.csv.*no data records"):
        reader(p)


# --------------------------------------------------------------------------- EFD

def test_efd_hes_shape_time(hes):
    assert hes.sizes["time"] == 17568
    assert hes.time.values[0] == np.datetime64("2016-01-01T00:00")      # END 00:30 - 30 min
    assert hes.time.values[-1] == np.datetime64("2016-12-31T23:30")     # END 2017-01-01 00:00
    check_time_axis(hes.time.values, expected_step=np.timedelta64(30, "m"), allow_gaps=False)


def test_efd_soil_water_profiles(hes):
    """Five vertical positions, each the mean of the seven SWC_H_V_1 profiles (% -> m3 m-3),
    on the time axis of the main reader; position 1 mean equals the mean of its columns."""
    from process_models.io import europe_fluxdata_soil_water_profiles
    path = data_path("fr-hes_2016_europe-fluxdata", "FR-Hes_europe-fluxdata_2016.txt.gz")
    sw = europe_fluxdata_soil_water_profiles(path)
    assert list(sw.data_vars) == [f"swc_position_{v}" for v in range(1, 6)]
    np.testing.assert_array_equal(sw.time.values, hes.time.values)
    for v in sw.data_vars:
        assert sw[v].attrs["units"] == "m3 m-3" and len(sw[v].attrs["source_name"].split(",")) == 7
        x = sw[v].values
        assert np.isfinite(x).mean() > 0.9 and 0.02 < np.nanmin(x) and np.nanmax(x) < 0.6
    # the top-profile column of the main reader is one of the seven averaged at position 1
    assert "SWC_1_1_1" in sw.swc_position_1.attrs["source_name"]
    assert abs(float(sw.swc_position_1.mean()) - float(hes.soil_water_content.mean())) < 0.1


def test_efd_hes_values(hes):
    assert hes.air_temperature.attrs["source_name"] == "TA_1_1_1"
    assert float(hes.air_temperature.min()) == pytest.approx(-10.2, abs=0.05)
    assert float(hes.air_temperature.max()) == pytest.approx(33.1, abs=0.05)
    assert hes.soil_water_content.attrs["source_units"] == "%"
    assert float(hes.soil_water_content.min()) == pytest.approx(0.103, abs=0.001)
    assert float(hes.soil_water_content.max()) == pytest.approx(0.386, abs=0.001)
    assert hes.air_pressure.attrs["source_units"] == "kPa"
    assert 94.5 < float(hes.air_pressure.min()) < 94.7
    assert 100.4 < float(hes.air_pressure.max()) < 100.6
    assert float(hes.vpd.max()) == pytest.approx(34.5, abs=0.05)
    assert float(hes.shortwave_in.max()) == pytest.approx(1064, abs=1)
    # missing fractions (PROVENANCE)
    for v, frac in {"co2_flux": 0.206, "nee": 0.206, "h": 0.134, "le": 0.408, "ustar": 0.050,
                    "air_temperature": 0.0002, "ppfd_in": 0.431, "nee_qc": 0.009,
                    "co2_storage_flux": 0.001}.items():
        assert float(hes[v].isnull().mean()) == pytest.approx(frac, abs=0.0015), v
    q = hes.nee_qc.to_series().value_counts()
    assert (q[0.0], q[1.0], q[2.0]) == (10333, 4473, 2604)
    assert _night_mean(hes) > 0
    # NEE_PI = FC + SC where all are present
    both = hes.nee.notnull() & hes.co2_flux.notnull() & hes.co2_storage_flux.notnull()
    np.testing.assert_allclose(hes.nee.where(both), (hes.co2_flux + hes.co2_storage_flux).where(both),
                               atol=0.02)
    assert "nee_filled" not in hes and "gpp" not in hes      # not partitioned


def _efd_file(tmp_path, lines, name="XX-Bad_europe-fluxdata.txt", gz=False):
    p = tmp_path / (name + (".gz" if gz else ""))
    data = ("\n".join(lines) + "\n").encode()
    p.write_bytes(gzip.compress(data) if gz else data)
    return p


def _edit_column(lines, column, func):
    names = lines[0].split(",")
    j = names.index(column)
    out = [lines[0]]
    for ln in lines[1:]:
        f = ln.split(",")
        v = float(f[j])
        if v != -9999:
            f[j] = f"{func(v):.4f}"
        out.append(",".join(f))
    return out


def test_efd_small_copy_reads(hes_text, tmp_path):
    ds = read_europe_fluxdata(_efd_file(tmp_path, hes_text, gz=True))
    assert ds.sizes["time"] == 400
    assert np.isnan(ds.attrs["utc_offset_hours"])
    assert ds.attrs["site_id"] == "XX-Bad"


def test_efd_kelvin(hes_text, tmp_path):
    p = _efd_file(tmp_path, _edit_column(hes_text, "TA_1_1_1", lambda v: v + 273.15))
    with pytest.raises(DataValidationError, match=r"XX-Bad_europe-fluxdata.txt.*'TA_1_1_1'.*kelvin"):
        read_europe_fluxdata(p)


def test_efd_vpd_in_pa(hes_text, tmp_path):
    p = _efd_file(tmp_path, _edit_column(hes_text, "VPD_PI_1_1_1", lambda v: v * 100 + 300))
    with pytest.raises(DataValidationError, match=r"europe-fluxdata.txt.*'VPD_PI_1_1_1'.*Pa"):
        read_europe_fluxdata(p)


def test_efd_swc_as_percent_times_100(hes_text, tmp_path):
    p = _efd_file(tmp_path, _edit_column(hes_text, "SWC_1_1_1", lambda v: v * 100))
    with pytest.raises(DataValidationError, match=r"'SWC_1_1_1'.*plausible range"):
        read_europe_fluxdata(p)


def test_efd_duplicated_and_unsorted(hes_text, tmp_path):
    dup = hes_text[:50] + [hes_text[49]] + hes_text[50:]
    with pytest.raises(DataValidationError, match=r"europe-fluxdata.txt.*duplicated timestamp"):
        read_europe_fluxdata(_efd_file(tmp_path, dup))
    uns = hes_text[:50] + [hes_text[51], hes_text[50]] + hes_text[52:]
    with pytest.raises(DataValidationError, match=r"europe-fluxdata.txt.*not sorted"):
        read_europe_fluxdata(_efd_file(tmp_path, uns))


def test_efd_truncated_last_line(hes_text, tmp_path):
    lines = hes_text[:-1] + [hes_text[-1][: len(hes_text[-1]) // 2]]
    p = _efd_file(tmp_path, lines, gz=True)
    with pytest.raises(DataValidationError, match=r"europe-fluxdata.txt.gz.*last line.*fields"):
        read_europe_fluxdata(p)


def test_efd_truncated_gzip_real_file(tmp_path):
    raw = data_path(*HES).read_bytes()
    p = tmp_path / "FR-Hes_europe-fluxdata_2016.txt.gz"
    p.write_bytes(raw[: len(raw) // 3])
    with pytest.raises(DataValidationError, match=r"FR-Hes_europe-fluxdata_2016.txt.gz.*gzip"):
        read_europe_fluxdata(p)


def test_efd_missing_timestamp(hes_text, tmp_path):
    lines = [ln.split(",", 1)[1] for ln in hes_text]
    with pytest.raises(DataValidationError, match=r"europe-fluxdata.txt.*'TIMESTAMP_END'.*missing"):
        read_europe_fluxdata(_efd_file(tmp_path, lines))


# --------------------------------------------------------------------------- REddyProc

def test_reddyproc_tha_shape_time(tha):
    assert tha.sizes["time"] == 17520
    assert tha.time.values[0] == np.datetime64("1998-01-01T00:00")
    assert tha.time.values[-1] == np.datetime64("1998-12-31T23:30")
    check_time_axis(tha.time.values, expected_step=np.timedelta64(30, "m"), allow_gaps=False)
    assert "REddyProc" in tha.attrs["format"]


def test_reddyproc_tha_values(tha):
    for v, frac in {"nee": 0.357, "le": 0.140, "h": 0.143, "shortwave_in": 0.009,
                    "air_temperature": 0.005, "soil_temperature": 0.005,
                    "relative_humidity": 0.007, "vpd": 0.0, "ustar": 0.0}.items():
        assert float(tha[v].isnull().mean()) == pytest.approx(frac, abs=0.001), v
    # first record: 1998 DoY 1 Hour 0.5 (end) -> 00:00 start
    first = tha.isel(time=0)
    assert float(first.nee) == -1.21 and float(first.air_temperature) == 7.4
    assert float(first.vpd) == 4.6 and float(first.ustar) == 0.72
    assert tha.nee.attrs["source_units"] == "umol m-2 s-1"       # parsed 'umolm-2s-1'
    assert tha.ustar.attrs["source_units"] == "m s-1"
    assert _night_mean(tha) > 0
    # daytime summer uptake
    summer_day = tha.nee.where((tha.shortwave_in > 300) & (tha.time.dt.month.isin([6, 7, 8])))
    assert float(summer_day.mean()) < -5


def test_reddyproc_gapfill_variant(tha, tha_gf):
    assert tha_gf.sizes["time"] == 17520
    np.testing.assert_array_equal(tha.time.values, tha_gf.time.values)
    for v in tha.data_vars:
        np.testing.assert_array_equal(tha[v].values, tha_gf[v].values)
    # flags carry the same information as the -9999 mask (PROVENANCE)
    assert bool(((tha_gf.nee_qc == 1) == tha_gf.nee.notnull()).all())
    q = tha_gf.nee_qc.to_series().value_counts()
    assert (q[1.0], q[2.0]) == (11263, 6257)
    assert int((tha_gf.le_qc == 3).sum()) == 6
    assert tha_gf.attrs["site_id"] == "unknown" and np.isnan(tha_gf.attrs["utc_offset_hours"])


def test_reddyproc_gapfill_year_and_site_keywords():
    ds = read_reddyproc_text(data_path(*THA_GF), year=2001, site_id="DE-Tha")
    assert ds.time.values[0] == np.datetime64("2001-01-01T00:00")
    assert ds.attrs["site_id"] == "DE-Tha" and ds.attrs["utc_offset_hours"] == 1.0


def _tha_lines():
    return data_path(*THA).read_bytes().decode().split("\r")


def _tha_write(tmp_path, lines, name="bad_reddyproc.txt"):
    p = tmp_path / name
    p.write_bytes("\r".join(lines).encode())      # keep the old-Mac CR endings
    return p


def _tha_edit(lines, column, func, unit=None):
    names = lines[0].split("\t")
    j = names.index(column)
    out = lines[:2]
    if unit is not None:
        u = out[1].split("\t")
        u[j] = unit
        out[1] = "\t".join(u)
    for ln in lines[2:]:
        f = ln.split("\t")
        v = float(f[j])
        if v != -9999:
            f[j] = f"{func(v):.2f}"
        out.append("\t".join(f))
    return out


def test_reddyproc_kelvin_and_declared_units(tmp_path):
    lines = _tha_lines()[:1000]
    kel = _tha_edit(lines, "Tair", lambda v: v + 273.15)
    with pytest.raises(DataValidationError, match=r"bad_reddyproc.txt.*'Tair'.*kelvin"):
        read_reddyproc_text(_tha_write(tmp_path, kel))
    # the same values with the units row saying K are converted
    ds = read_reddyproc_text(_tha_write(tmp_path, _tha_edit(lines, "Tair", lambda v: v + 273.15,
                                                            unit="K"), "k.txt"))
    assert ds.air_temperature.attrs["source_units"] == "K"
    assert float(ds.air_temperature[0]) == pytest.approx(7.4)


def test_reddyproc_vpd_in_pa(tmp_path):
    lines = _tha_lines()[:1000]
    pa = _tha_edit(lines, "VPD", lambda v: v * 100)
    with pytest.raises(DataValidationError, match=r"bad_reddyproc.txt.*'VPD'.*look like Pa"):
        read_reddyproc_text(_tha_write(tmp_path, pa))
    ds = read_reddyproc_text(_tha_write(tmp_path, _tha_edit(lines, "VPD", lambda v: v * 100,
                                                            unit="Pa"), "pa.txt"))
    assert float(ds.vpd[0]) == pytest.approx(4.6)


def test_reddyproc_truncated_last_line(tmp_path):
    raw = data_path(*THA).read_bytes()
    p = tmp_path / "Example_DETha98_cut.txt"
    p.write_bytes(raw[:-25])
    with pytest.raises(DataValidationError, match=r"Example_DETha98_cut.txt.*last line.*truncated"):
        read_reddyproc_text(p)


def test_reddyproc_duplicated_unsorted_and_missing(tmp_path):
    lines = _tha_lines()[:300]
    with pytest.raises(DataValidationError, match=r"bad_reddyproc.txt.*duplicated"):
        read_reddyproc_text(_tha_write(tmp_path, lines[:100] + [lines[99]] + lines[100:]))
    with pytest.raises(DataValidationError, match=r"bad_reddyproc.txt.*not sorted"):
        read_reddyproc_text(_tha_write(tmp_path, lines[:100] + [lines[101], lines[100]]
                                       + lines[102:]))
    nohour = ["\t".join(f for k, f in enumerate(ln.split("\t")) if k != 2) for ln in lines]
    with pytest.raises(DataValidationError, match=r"bad_reddyproc.txt.*'Hour'.*missing"):
        read_reddyproc_text(_tha_write(tmp_path, nohour))


def test_reddyproc_crlf_and_lf_line_endings(tmp_path):
    lines = _tha_lines()[:300]
    for nl, name in (("\r\n", "crlf.txt"), ("\n", "lf.txt")):
        p = tmp_path / name
        p.write_bytes((nl.join(lines) + nl).encode())
        assert read_reddyproc_text(p).sizes["time"] == 298


# --------------------------------------------------------------------------- diive

def test_diive_dav_shape_time(dav):
    assert dav.sizes["time"] == 175296
    assert dav.time.values[0] == np.datetime64("2013-01-01T00:00")     # 00:15 middle - 15 min
    assert dav.time.values[-1] == np.datetime64("2022-12-31T23:30")
    check_time_axis(dav.time.values, expected_step=np.timedelta64(30, "m"), allow_gaps=False)


def test_diive_dav_values(dav):
    assert dav.air_pressure.attrs["source_units"] == "hPa"
    assert float(dav.air_pressure.mean()) == pytest.approx(83.56, abs=0.01)     # ~836 hPa
    assert float(dav.soil_water_content.min()) == pytest.approx(0.12436)
    assert float(dav.soil_water_content.max()) == pytest.approx(0.41451)
    assert float(dav.nee_filled.min()) == pytest.approx(-40.811)
    assert float(dav.nee_filled.max()) == pytest.approx(25.290)
    assert float(dav.gpp_dt.max()) == pytest.approx(25.895)
    assert float(dav.reco.min()) == pytest.approx(0.017)
    assert float(dav.air_temperature.min()) == pytest.approx(-23.096)
    for v, frac in {"nee": 0.668, "nee_cut_16": 0.600, "nee_cut_84": 0.772, "le": 0.292,
                    "nee_qc": 0.175, "longwave_in": 0.119, "soil_water_content": 0.061,
                    "air_pressure": 0.031, "nee_filled": 0.0, "gpp": 0.0, "vpd": 0.0}.items():
        assert float(dav[v].isnull().mean()) == pytest.approx(frac, abs=0.001), v
    assert float(dav.ustar_threshold[0]) == pytest.approx(0.288)
    assert _night_mean(dav) > 0
    # measured NEE equals the filled one where it exists
    m = dav.nee.notnull()
    np.testing.assert_array_equal(dav.nee.values[m], dav.nee_filled.values[m])


@pytest.fixture(scope="module")
def dav_small():
    df = pd.read_parquet(data_path(*DAV))
    return df.iloc[:2000].copy()


def test_diive_kelvin_and_vpd_pa(dav_small, tmp_path):
    df = dav_small.copy()
    df["Tair_f"] += 273.15
    p = tmp_path / "kelvin.parquet"
    df.to_parquet(p)
    with pytest.raises(DataValidationError, match=r"kelvin.parquet.*'Tair_f'.*kelvin"):
        read_diive_parquet(p)
    df = dav_small.copy()
    df["VPD_f"] = df["VPD_f"] * 100 + 300
    p = tmp_path / "vpdpa.parquet"
    df.to_parquet(p)
    with pytest.raises(DataValidationError, match=r"vpdpa.parquet.*'VPD_f'.*Pa"):
        read_diive_parquet(p)


def test_diive_time_errors(dav_small, tmp_path):
    df = pd.concat([dav_small.iloc[:10], dav_small.iloc[9:]])
    p = tmp_path / "dup.parquet"
    df.to_parquet(p)
    with pytest.raises(DataValidationError, match=r"dup.parquet.*duplicated"):
        read_diive_parquet(p)
    df = dav_small.iloc[[0, 2, 1] + list(range(3, 2000))]
    p = tmp_path / "unsorted.parquet"
    df.to_parquet(p)
    with pytest.raises(DataValidationError, match=r"unsorted.parquet.*not sorted"):
        read_diive_parquet(p)
    p = tmp_path / "noindex.parquet"
    dav_small.reset_index(drop=True).to_parquet(p)
    with pytest.raises(DataValidationError, match=r"noindex.parquet.*TIMESTAMP_MIDDLE"):
        read_diive_parquet(p)
    # TIMESTAMP_START is accepted and not shifted
    df = dav_small.copy()
    df.index = df.index - pd.Timedelta("15min")
    df.index.name = "TIMESTAMP_START"
    p = tmp_path / "start.parquet"
    df.to_parquet(p)
    assert read_diive_parquet(p).time.values[0] == np.datetime64("2013-01-01T00:00")


def test_diive_truncated_and_garbage(dav_small, tmp_path):
    p = tmp_path / "small.parquet"
    dav_small.to_parquet(p)
    raw = p.read_bytes()
    cut = tmp_path / "truncated.parquet"
    cut.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(DataValidationError, match=r"truncated.parquet.*parquet"):
        read_diive_parquet(cut)
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"this is not parquet at all\n" * 20)
    with pytest.raises(DataValidationError, match=r"junk.parquet.*parquet"):
        read_diive_parquet(junk)
    df = dav_small.copy()
    df["PA"] = df["PA"].astype(str)
    p = tmp_path / "strings.parquet"
    df.to_parquet(p)
    with pytest.raises(DataValidationError, match=r"strings.parquet.*'PA'.*non-numeric"):
        read_diive_parquet(p)


# --------------------------------------------------------------------------- pyrealm

def test_pyrealm_vie(vie):
    assert vie.sizes["time"] == 17520
    assert vie.time.values[0] == np.datetime64("2014-01-01T00:00")
    assert vie.time.values[-1] == np.datetime64("2014-12-31T23:30")
    assert vie.vpd.attrs["source_units"] == "Pa"
    assert float(vie.vpd.max()) == pytest.approx(27.97, abs=0.005)
    assert float(vie.vpd[0]) == pytest.approx(0.522)
    assert float(vie.air_pressure.min()) == pytest.approx(93.1)
    assert float(vie.air_pressure.max()) == pytest.approx(97.4)
    assert float(vie.co2.min()) == pytest.approx(368.434)
    assert float(vie.lai.min()) == pytest.approx(1.7017, abs=1e-4)
    assert float(vie.fapar.max()) == pytest.approx(0.8307, abs=1e-4)
    assert float(vie.gpp.max()) == pytest.approx(36.83, abs=0.01)
    assert "daytime" in vie.gpp.attrs["partitioning"]
    assert float(vie.gpp_pmodel.isnull().mean()) == pytest.approx(0.0114, abs=0.0005)
    assert int(vie.ppfd_in.isnull().sum()) == 0


@pytest.fixture(scope="module")
def vie_df():
    return pd.read_csv(data_path(*VIE))


def test_pyrealm_bad_inputs(vie_df, tmp_path):
    small = vie_df.iloc[:1000]
    df = small.copy()
    df["vpd"] = df["vpd"] * 100 + 300
    p = tmp_path / "merged_XX-Bad_data.csv"
    df.to_csv(p, index=False)
    with pytest.raises(DataValidationError, match=r"merged_XX-Bad_data.csv.*'vpd'.*Pa"):
        read_pyrealm_merged(p)
    df = small.copy()
    df["tc"] += 273.15
    df.to_csv(p, index=False)
    with pytest.raises(DataValidationError, match=r"merged_XX-Bad_data.csv.*'tc'.*kelvin"):
        read_pyrealm_merged(p)
    small.drop(columns=["patm"]).to_csv(p, index=False)
    with pytest.raises(DataValidationError, match=r"merged_XX-Bad_data.csv.*'patm'.*missing"):
        read_pyrealm_merged(p)
    df = small.copy()
    df.loc[5, "time"] = "2014-01-01 25:00:00"
    df.to_csv(p, index=False)
    with pytest.raises(DataValidationError, match=r"merged_XX-Bad_data.csv.*'time'.*row 6"):
        read_pyrealm_merged(p)
    pd.concat([small.iloc[:10], small.iloc[9:]]).to_csv(p, index=False)
    with pytest.raises(DataValidationError, match=r"merged_XX-Bad_data.csv.*duplicated"):
        read_pyrealm_merged(p)
    raw = data_path(*VIE).read_bytes()
    p.write_bytes(raw[: raw.rfind(b"\n", 0, 50000) + 20])
    with pytest.raises(DataValidationError, match=r"merged_XX-Bad_data.csv.*last line"):
        read_pyrealm_merged(p)
