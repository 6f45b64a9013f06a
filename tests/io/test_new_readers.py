"""Readers for MOD13A1 site series, ORNL MCD15A2H LAI/FPAR, ISMN .stm soil moisture and the
bigleaf FLUXNET2015 month subsets: values from each folder's PROVENANCE.md, and bad input."""
from __future__ import annotations

import gzip

import numpy as np
import pytest

from process_models.io import (data_path, read_bigleaf_month, read_ismn_stm,
                               read_modis_lai_fapar_ornl, read_modis_sites_mod13a1)
from process_models.units import DataValidationError

MOD13 = ("modis-mod13a1_10-fluxsites_phenofit", "MOD13A1_10sites_2000-2018.csv")
LAI = ("at-neu_modis-mcd15a2h_fluxdatakit", "AT-Neu_MCD15A2H_5x5px_2002-2022.csv.gz")
ISMN = ("ismn_fr-aqui_smosmania",
        "FR-Aqui_FR-Aqui_fraye_sm_0.050000_0.050000_ThetaProbe-ML2X_19500101_20210131.stm.gz")
NARB = ("ismn_fr-aqui_smosmania",
        "SMOSMANIA_SMOSMANIA_Narbonne_sm_0.050000_0.050000_ThetaProbe-ML2X_20070101_20070131.stm")
BIGLEAF = "fluxnet2015_month-subsets_bigleaf"


@pytest.fixture(scope="module")
def mod13():
    return read_modis_sites_mod13a1(data_path(*MOD13))


@pytest.fixture(scope="module")
def lai():
    return read_modis_lai_fapar_ornl(data_path(*LAI))


@pytest.fixture(scope="module")
def ismn():
    return read_ismn_stm(data_path(*ISMN))


# ------------------------------------------------------------------------------ MOD13A1

def test_mod13a1_shape_and_provenance_values(mod13):
    assert mod13.sizes == {"site": 10, "time": 422}
    assert str(mod13.time.values[0])[:10] == "2000-02-18" and str(mod13.time.values[-1])[:10] == "2018-06-10"
    # SummaryQA counts 0: 2172, 1: 1093, 2: 415, 3: 530 (PROVENANCE.md)
    sq = mod13.summary_qa.values.ravel()
    assert [int((sq == k).sum()) for k in range(4)] == [2172, 1093, 415, 530]
    # missing fraction 0.0024 for EVI (10 of 4220)
    assert int(np.isnan(mod13.evi.values).sum()) == 10
    at = mod13.sel(site="AT-Neu")
    assert float(at.evi.median()) == pytest.approx(0.4431, abs=1e-9)
    assert float((at.summary_qa == 0).mean()) == pytest.approx(0.35, abs=0.005)
    assert float(at.latitude) == pytest.approx(47.1167) and str(at.igbp.values) == "GRA"
    # ranges x1e-4: EVI -853 ... 8402
    assert float(mod13.evi.min()) == pytest.approx(-0.0853) and float(mod13.evi.max()) == pytest.approx(0.8402)
    assert mod13.evi.attrs["units"] == "1"


def test_mod13a1_single_site_july_2010_and_valid_mask():
    at = read_modis_sites_mod13a1(data_path(*MOD13), site="AT-Neu")
    assert at.evi.dims == ("time",) and at.attrs["site_id"] == "AT-Neu"
    jul = at.sel(time="2010-07")
    np.testing.assert_allclose(jul.evi.values, [0.6368, 0.6667])
    assert jul.valid.values.all()
    # Jan-Feb 2010: snow composites (SummaryQA 2) are not valid
    winter = at.sel(time=slice("2010-01-01", "2010-02-28"))
    assert (winter.summary_qa == 2).any() and not winter.valid.values[winter.summary_qa.values == 2].any()
    # valid implies good/marginal SummaryQA and finite EVI
    assert np.all(np.isin(at.summary_qa.values[at.valid.values], [0, 1]))
    assert np.all(np.isfinite(at.evi.values[at.valid.values]))
    # EVI recomputed from the bands matches the product on valid composites (median 6e-5)
    b1, b2, b3 = at.red.values, at.nir.values, at.blue.values
    evi = 2.5 * (b2 - b1) / (b2 + 6 * b1 - 7.5 * b3 + 1)
    v = at.valid.values
    assert np.median(np.abs(evi[v] - at.evi.values[v])) < 2e-4


def test_mod13a1_bad_input(tmp_path):
    text = data_path(*MOD13).read_text()
    lines = text.splitlines()
    bad = tmp_path / "a.csv"
    bad.write_text("\n".join(lines[:50]) + "\n" + lines[50][:20] + "\n")
    with pytest.raises(DataValidationError, match="truncated"):
        read_modis_sites_mod13a1(bad)
    bad.write_text(lines[0].replace("EVI,", "XEVI,", 1) + "\n" + "\n".join(lines[1:20]))
    with pytest.raises(DataValidationError, match="EVI"):
        read_modis_sites_mod13a1(bad)
    bad.write_text("\n".join(lines[:20] + lines[19:21]))
    with pytest.raises(DataValidationError, match="duplicated"):
        read_modis_sites_mod13a1(bad)
    with pytest.raises(DataValidationError, match="not in the file"):
        read_modis_sites_mod13a1(data_path(*MOD13), site="XX-Xxx")
    # a garbage QA value
    head = lines[0].split(",")
    row = lines[5].split(",")
    row[head.index("SummaryQA")] = "7"
    bad.write_text("\n".join([lines[0]] + lines[1:5] + [",".join(row)]))
    with pytest.raises(DataValidationError, match="SummaryQA"):
        read_modis_sites_mod13a1(bad)


# ------------------------------------------------------------------------- ORNL LAI/FPAR

def test_ornl_lai_fapar_provenance_values(lai):
    assert lai.sizes["time"] == 909
    assert str(lai.time.values[0])[:10] == "2002-07-04" and str(lai.time.values[-1])[:10] == "2022-03-30"
    jul = lai.sel(time="2010-07")
    np.testing.assert_allclose(jul.lai.values, [6.4, 6.4, 4.6, 4.9])
    np.testing.assert_allclose(jul.fapar.values, [0.93, 0.93, 0.87, 0.89])
    np.testing.assert_array_equal(jul.qc.values, [34, 32, 34, 34])
    assert (jul.scf_qc == 1).all() and jul.valid.all()      # main RT with saturation
    assert lai.lai.attrs["units"] == "m2 m-2" and lai.fapar.attrs["units"] == "1"
    assert int(lai.pixel) == 13


def test_ornl_all_pixels_and_fill_codes(lai):
    allp = read_modis_lai_fapar_ornl(data_path(*LAI), pixel="all")
    assert allp.lai.shape == (909, 25)
    np.testing.assert_allclose(allp.lai.sel(pixel=13).values, lai.lai.values, equal_nan=True)
    assert float(allp.lai.median()) == pytest.approx(1.5)
    assert float(allp.fapar.median()) == pytest.approx(0.64)
    # 5206 LaiStdDev fill codes (248-255) -> NaN
    assert int(np.isnan(allp.lai_std.values).sum()) == 5206
    assert allp.lai.notnull().all()          # no fill codes in Lai_500m
    # valid implies main algorithm and MODLAND good
    v = allp.valid.values
    assert np.all(np.isin(allp.scf_qc.values[v], [0, 1])) and np.all(allp.qc.values[v].astype(int) % 2 == 0)
    with pytest.raises(ValueError, match="pixel"):
        read_modis_lai_fapar_ornl(data_path(*LAI), pixel=99)


def test_ornl_bad_input(tmp_path):
    lines = gzip.decompress(data_path(*LAI).read_bytes()).decode().splitlines()[:400]
    bad = tmp_path / "x.csv"
    bad.write_text("\n".join(lines[:100] + lines[99:101]))
    with pytest.raises(DataValidationError, match="duplicated"):
        read_modis_lai_fapar_ornl(bad)
    bad.write_text("\n".join([ln for ln in lines if "Fpar_500m" not in ln]))
    with pytest.raises(DataValidationError, match="Fpar_500m"):
        read_modis_lai_fapar_ornl(bad)
    bad.write_text("\n".join(lines[:10]).replace(",25\n", ",2500\n", 1))
    with pytest.raises(DataValidationError, match="0-255"):
        read_modis_lai_fapar_ornl(bad)
    (tmp_path / "t.csv.gz").write_bytes(data_path(*LAI).read_bytes()[:5000])
    with pytest.raises(DataValidationError, match="gzip"):
        read_modis_lai_fapar_ornl(tmp_path / "t.csv.gz")


# ------------------------------------------------------------------------------- ISMN

def test_ismn_fr_aqui_provenance_values(ismn):
    sm = ismn.soil_water_content
    assert sm.sizes["time"] == 52045 and sm.attrs["units"] == "m3 m-3"
    assert str(ismn.time.values[0]) == "2013-08-13T10:00:00.000000000"
    assert str(ismn.time.values[-1]) == "2020-01-01T00:00:00.000000000"
    assert float(sm.min()) == pytest.approx(0.0345) and float(sm.max()) == pytest.approx(0.3891)
    assert float(sm.mean()) == pytest.approx(0.161, abs=5e-4)
    assert sm.attrs["depth_from"] == 0.05 and sm.attrs["depth_to"] == 0.05
    assert int(ismn.valid.sum()) == 50089
    flags, counts = np.unique(ismn.ismn_flag.values, return_counts=True)
    got = dict(zip(flags, counts))
    assert got["D10"] == 881 and got["D05"] == 736 and got["D05,D10"] == 4 and got["D03,D05"] == 3
    assert ismn.attrs["latitude"] == pytest.approx(44.467) and ismn.attrs["longitude"] == pytest.approx(-0.7269)
    # static variables (HWSD): sandy soil, saturation 0.49 / 0.42
    np.testing.assert_allclose(ismn.saturation.values, [0.49, 0.42])
    np.testing.assert_allclose(ismn.sand_fraction.values, [87.0, 88.0])
    assert "needleleaved" in ismn.attrs["land_cover"]


def test_ismn_cr_line_endings_and_good_flags():
    n = read_ismn_stm(data_path(*NARB))
    assert n.sizes["time"] == 741 and n.attrs["station"] == "Narbonne"
    assert not n.valid.any()             # every row is U (undefined), not G
    nu = read_ismn_stm(data_path(*NARB), good_flags=("G", "U"))
    assert int(nu.valid.sum()) == 736    # the 5 D05 rows stay invalid
    assert float(n.soil_water_content.min()) == pytest.approx(0.150, abs=1e-3)
    assert float(n.soil_water_content.max()) == pytest.approx(0.215, abs=1e-3)


def test_ismn_bad_input(tmp_path):
    lines = data_path(*NARB).read_text().replace("\r", "\n").splitlines()[:100]
    bad = tmp_path / "x.stm"
    bad.write_text("\n".join(lines[:-1] + [lines[-1][:60]]))
    with pytest.raises(DataValidationError, match="truncated"):
        read_ismn_stm(bad)
    bad.write_text("\n".join(lines[:10] + [lines[10].replace(" U M", " Q9 M")]))
    with pytest.raises(DataValidationError, match="flag"):
        read_ismn_stm(bad)
    pct = []
    for ln in lines:
        f = ln.split()
        f[12] = f"{float(f[12]) * 100:.2f}"
        pct.append(" ".join(f))
    bad.write_text("\n".join(pct))
    with pytest.raises(DataValidationError, match="percent"):
        read_ismn_stm(bad)
    bad.write_text("\n".join(lines[:10] + lines[9:12]))
    with pytest.raises(DataValidationError, match="duplicated"):
        read_ismn_stm(bad)
    bad.write_text("\n".join(lines[:10] + [lines[10].replace("0.05    0.05", "0.10    0.10")]))
    with pytest.raises(DataValidationError, match="one station and one depth"):
        read_ismn_stm(bad)


# ---------------------------------------------------------------------------- bigleaf

@pytest.mark.parametrize("name,n,nee,gpp", [("AT_Neu_Jul_2010", 1488, 0.29, 13.16),
                                             ("DE_Tha_Jun_2014", 1440, -4.92, 11.46),
                                             ("FR_Pue_May_2012", 1488, -0.19, 4.72)])
def test_bigleaf_month_provenance_values(name, n, nee, gpp):
    ds = read_bigleaf_month(data_path(BIGLEAF, name + ".csv.gz"))
    assert ds.sizes["time"] == n and ds.attrs["time_step_seconds"] == 1800.0
    assert float(ds.nee_filled.mean()) == pytest.approx(nee, abs=0.005)
    assert float(ds.gpp.mean()) == pytest.approx(gpp, abs=0.005)
    assert ds.vpd.attrs["units"] == "hPa" and ds.vpd.attrs["source_units"] == "kPa"
    assert ds.attrs["site_id"] == name[:2] + "-" + name[3:6]
    assert ds.attrs["utc_offset_hours"] == 1.0


def test_bigleaf_time_and_units():
    ds = read_bigleaf_month(data_path(BIGLEAF, "AT_Neu_Jul_2010.csv.gz"))
    assert str(ds.time.values[0]) == "2010-07-01T00:00:00.000000000"
    assert str(ds.time.values[-1]) == "2010-07-31T23:30:00.000000000"
    # first record: Tair 12.04 degC, VPD 0.1483 kPa -> 1.483 hPa, NEE 15.17
    assert float(ds.air_temperature[0]) == pytest.approx(12.04, abs=1e-4)
    assert float(ds.vpd[0]) == pytest.approx(1.483, abs=1e-4)
    assert float(ds.nee_filled[0]) == pytest.approx(15.1744, abs=1e-4)
    assert int(ds.nee_qc.isin([0]).sum()) == 682
    assert float(ds.ustar.isnull().mean()) == pytest.approx(0.108, abs=0.001)


def test_bigleaf_bad_input(tmp_path):
    lines = gzip.decompress(data_path(BIGLEAF, "AT_Neu_Jul_2010.csv.gz").read_bytes()).decode().splitlines()
    bad = tmp_path / "AT_Neu_Jul_2010.csv"
    bad.write_text("\n".join(lines[:30]).replace(",VPD,", ",VPDX,", 1))
    with pytest.raises(DataValidationError, match="VPD"):
        read_bigleaf_month(bad)
    bad.write_text("\n".join(lines[:30] + [lines[30][:25]]))
    with pytest.raises(DataValidationError, match="truncated"):
        read_bigleaf_month(bad)
    head = lines[0].split(",")
    rows = [ln.split(",") for ln in lines[1:30]]
    for r in rows:
        r[head.index("Tair")] = str(float(r[head.index("Tair")]) + 273.15)
    bad.write_text("\n".join([lines[0]] + [",".join(r) for r in rows]))
    with pytest.raises(DataValidationError, match="kelvin"):
        read_bigleaf_month(bad)
