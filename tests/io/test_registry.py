"""The reader registry: one set of format names (= reader names), detection on every shipped
example by name and by content, read() dispatch, clear errors."""
import gzip

import numpy as np
import pandas as pd
import pytest
import xarray as xr

import process_models.io as pio
from process_models.io import FORMATS, data_path, detect_format, format_names, read, reader
from process_models.units import DataValidationError

SHIPPED = [f for f in FORMATS.values() if f.example is not None]


def test_names_are_the_reader_names():
    for name, f in FORMATS.items():
        assert f.name == name
        if name == "netcdf":
            assert f.reader is xr.load_dataset
        else:
            assert f.reader_name == f"read_{name}" and f.reader is getattr(pio, f.reader_name)
            assert f.reader_name in pio.__all__
    assert format_names() == tuple(FORMATS)
    # every public reader of the package is in the registry
    readers = {n for n in pio.__all__ if n.startswith("read_") and n != "read_table_text"}
    assert readers == {f.reader_name for f in FORMATS.values() if f.name != "netcdf"}


@pytest.mark.parametrize("fmt", SHIPPED, ids=lambda f: f.name)
def test_shipped_example_is_detected(fmt):
    assert detect_format(data_path(*fmt.example)) == fmt.name


@pytest.mark.parametrize("name", ["bigleaf_month", "modis_sites_mod13a1", "modis_lai_fapar_ornl",
                                  "ismn_static_variables", "fluxnet2015"])
def test_detected_by_content_under_another_name(tmp_path, name):
    src = data_path(*FORMATS[name].example)
    raw = src.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    p = tmp_path / "renamed.csv"
    p.write_bytes(raw[:200000])
    assert detect_format(p) == name


@pytest.mark.parametrize("name", ["bigleaf_month", "modis_sites_mod13a1", "modis_lai_fapar_ornl",
                                  "ismn_stm", "ismn_static_variables", "vprm_parameter_tables"])
def test_read_dispatches_to_the_reader(name):
    path = data_path(*FORMATS[name].example)
    got = read(path)
    if isinstance(got, pd.DataFrame):
        pd.testing.assert_frame_equal(got, FORMATS[name].reader(path))
    else:
        assert isinstance(got, xr.Dataset)
        xr.testing.assert_identical(got, FORMATS[name].reader(path))


def test_canonical_netcdf_round_trip(tmp_path):
    ds = xr.Dataset({"air_temperature": ("time", np.arange(4.0), {"units": "degC"})},
                    coords={"time": pd.date_range("2020-01-01", periods=4, freq="30min")})
    p = tmp_path / "canonical.nc"
    ds.to_netcdf(p)
    assert detect_format(p) == "netcdf"
    xr.testing.assert_identical(read(p), ds)
    era = tmp_path / "era5_copy.nc"
    era.write_bytes(gzip.decompress(data_path("munich_2022_modis-era5_pyvprm", "era5", "2022_7.nc.gz").read_bytes()))
    assert detect_format(era) == "era5_single_levels"


def test_errors_name_the_file_and_the_choices(tmp_path):
    p = tmp_path / "weird.csv"
    p.write_bytes(b"a;b;c\n1;2;3\n")
    with pytest.raises(DataValidationError, match=r"weird.csv.*columns: a, b, c.*fluxnet2015"):
        detect_format(p)
    bad_nc = tmp_path / "broken.nc"
    bad_nc.write_bytes(b"CDF\x01garbage")
    with pytest.raises(DataValidationError, match="broken.nc.*could not be opened"):
        detect_format(bad_nc)
    folder = tmp_path / "folder"
    folder.mkdir()
    with pytest.raises(DataValidationError, match="directory without MOD09A1"):
        detect_format(folder)
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        detect_format(tmp_path / "nope.csv")
    with pytest.raises(ValueError, match=r"unknown format \(reader\) 'nope'.*europe_fluxdata"):
        reader("nope")
    with pytest.raises(ValueError, match="unknown format"):
        read(tmp_path / "missing.csv", "nope")        # the name is checked before the path
    with pytest.raises(FileNotFoundError):
        read(tmp_path / "absent.csv", "pyrealm_merged")
