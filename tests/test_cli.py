"""The ``ecoflux`` command line (experiments/cli.py): help texts, format auto-detection
and summaries on every shipped file, NetCDF output, clean errors (exit 2, no traceback),
parameter tables, VPRM on a forcing NetCDF, and the study/benchmark launchers."""
from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from experiments import cli
from experiments.cli import main
from process_models.io import FORMATS, data_path, detect_format, netcdf_safe

from tests._files import CHA, DAV, ERA5, HES, MODIS, PFA, THA, THA_GF, VIE


def _run(capsys, *argv):
    rc = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return rc, out, err


# --------------------------------------------------------------------------- help

@pytest.mark.parametrize("argv,words", [
    ([], ["read", "vprm", "tables", "study", "bench", "examples"]),
    (["read"], ["summary", "Auto-detection", "fluxnet2015", "example"]),
    (["vprm"], ["VPRM", "forcing", "--chunks", "example"]),
    (["tables"], ["parameter tables", "citation", "example"]),
    (["study"], ["vprm-first", "coupled", "flux-processing", "fusion", "calibration-vprm", "--quick", "example"]),
    (["bench"], ["pixel-hours", "coupled", "ESS", "--write-results", "example"]),
])
def test_help_exits_zero_and_explains(capsys, argv, words):
    with pytest.raises(SystemExit) as exc:
        main(argv + ["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    for w in words:
        assert w.lower() in out.lower(), (argv, w)


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("ecoflux ")


def test_no_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2


def test_console_script_installed():
    exe = Path(sys.executable).parent / "ecoflux"
    assert exe.exists(), f"console script missing: {exe} (pip install -e .)"
    res = subprocess.run([str(exe), "--help"], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "vprm" in res.stdout and "read" in res.stdout


# --------------------------------------------------------------------------- read

@pytest.mark.parametrize("parts,fmt,expect", [
    (CHA, "fluxnet2015", ["air_temperature", "degC", "umol m-2 s-1", "+1 h"]),
    (HES, "europe_fluxdata", ["air_temperature", "degC", "kPa"]),
    (THA, "reddyproc_text", ["nee", "umol m-2 s-1", "1998-01-01T00:00:00", "+1 h"]),
    (THA_GF, "reddyproc_text", ["nee_qc", "W m-2", "utc offset: unknown"]),
    (VIE, "pyrealm_merged", ["ppfd_in", "hPa", "2014-12-31T23:30:00"]),
    (DAV, "diive_parquet", ["nee_filled", "umol m-2 s-1"]),
    (PFA, "park_falls", ["tower", "evi", "phenology", "-6 h", "umol m-2 s-1"]),
    (MODIS, "mod09a1", ["red", "state_qa", "step 8 d"]),
    (ERA5, "era5_single_levels", ["shortwave_in", "W m-2", "+0 h"]),
])
def test_read_autodetects_and_summarises(capsys, parts, fmt, expect):
    path = data_path(*parts)
    assert detect_format(path) == fmt
    rc, out, err = _run(capsys, "read", path)
    assert rc == 0, err
    assert f"format: {fmt}" in out and "[auto-detected]" in out
    for col in ("variable", "units", "long_name", "% missing", "min", "max"):
        assert col in out
    assert "time span:" in out and "time convention:" in out and "utc offset:" in out
    for word in expect:
        assert word in out, word


def test_park_falls_na_values_do_not_hide_min_max(capsys):
    """R's NA is a signalling NaN that defeats np.nanmin; the summary still gives numbers."""
    rc, out, _ = _run(capsys, "read", data_path(*PFA))
    line = next(ln for ln in out.splitlines() if ln.startswith("nee "))
    assert "nan" not in line and "48.1" in line


def test_detect_by_content_not_name(tmp_path):
    cha = tmp_path / "tower.csv"
    shutil.copy(data_path(*CHA), cha)
    assert detect_format(cha) == "fluxnet2015"
    hes = tmp_path / "site.csv"
    hes.write_bytes(gzip.decompress(data_path(*HES).read_bytes())[:20000])
    assert detect_format(hes) == "europe_fluxdata"
    tha = tmp_path / "input.txt"
    shutil.copy(data_path(*THA), tha)  # old-Mac CR line endings
    assert detect_format(tha) == "reddyproc_text"
    vie = tmp_path / "bench.csv.gz"
    vie.write_bytes(gzip.compress(data_path(*VIE).read_bytes()))
    assert detect_format(vie) == "pyrealm_merged"
    era = tmp_path / "t2m.nc"
    era.write_bytes(gzip.decompress(data_path(*ERA5).read_bytes()))
    assert detect_format(era) == "era5_single_levels"


def test_read_output_writes_netcdf_with_units(capsys, tmp_path):
    out_nc = tmp_path / "vie.nc"
    rc, out, err = _run(capsys, "read", data_path(*VIE), "--output", out_nc)
    assert rc == 0, err
    assert f"wrote {out_nc}" in out
    with xr.open_dataset(out_nc) as ds:
        assert ds["air_temperature"].attrs["units"] == "degC"
        assert ds["ppfd_in"].attrs["units"] == "umol m-2 s-1"
        assert all("units" in ds[v].attrs for v in ds.data_vars)
        assert ds.attrs["utc_offset_hours"] == 1.0
        assert ds.sizes["time"] == 17520


def test_read_output_gridded_and_park_falls_groups(capsys, tmp_path):
    rc, _, err = _run(capsys, "read", data_path(*ERA5), "-o", tmp_path / "era5.nc")
    assert rc == 0, err
    with xr.open_dataset(tmp_path / "era5.nc") as ds:
        assert ds["air_temperature"].attrs["units"] == "degC"
        assert ds.sizes == {"time": 744, "lat": 14, "lon": 20}
    rc, _, err = _run(capsys, "read", data_path(*PFA), "-o", tmp_path / "pfa.nc")
    assert rc == 0, err
    with xr.open_dataset(tmp_path / "pfa.nc", group="tower") as ds:
        assert ds["nee"].attrs["units"] == "umol m-2 s-1"
    with xr.open_dataset(tmp_path / "pfa.nc", group="phenology") as ph:
        assert set(ph["phen"].values) <= {"ginc", "gmax", "gdec", "gmin"}


def test_netcdf_safe_attrs(tmp_path):
    ds = xr.Dataset({"a": ("time", np.arange(3.0), {"units": "1", "when": pd.Timestamp("2020-01-01"),
                                                   "ok": True})},
                    coords={"time": pd.date_range("2020-01-01", periods=3, freq="30min")},
                    attrs={"created": np.datetime64("2021-05-01T12:00"), "missing": None,
                           "meta": {"k": 1}, "offsets": [1, 2], "names": ["x", "y"]})
    p = tmp_path / "safe.nc"
    netcdf_safe(ds).to_netcdf(p)
    with xr.open_dataset(p) as back:
        assert back.attrs["created"].startswith("2021-05-01T12:00")
        assert back.attrs["missing"] == "none"
        assert back["a"].attrs["when"].startswith("2020-01-01")
        assert back["a"].attrs["ok"] == 1
        assert list(back.attrs["offsets"]) == [1, 2]
        assert back.attrs["names"] == "x, y"


def test_read_corrupted_copy_exits_2_with_message(capsys, tmp_path):
    src = data_path(*CHA)
    bad = tmp_path / src.name
    raw = src.read_bytes()
    bad.write_bytes(raw[: len(raw) - 200])  # cut inside the last record
    rc, out, err = _run(capsys, "read", bad)
    assert rc == 2
    assert err.startswith("error: ")
    assert bad.name in err and "Traceback" not in err


def test_read_truncated_gzip_exits_2(capsys, tmp_path):
    src = data_path(*HES)
    bad = tmp_path / src.name
    raw = src.read_bytes()
    bad.write_bytes(raw[: len(raw) // 3])
    rc, _, err = _run(capsys, "read", bad)
    assert rc == 2 and err.startswith("error: ") and bad.name in err
    assert "gzip" in err


@pytest.mark.parametrize("content,fmt", [
    (b"a;b;c\n1;2;3\n", "auto"),                  # unknown layout
    (b"TIMESTAMP_START,TA_F\n200501010000,abc\n", "auto"),  # corrupt cell
    (b"\x00\x01\x02garbage", "pyrealm_merged"),          # binary
])
def test_read_bad_inputs_exit_2(capsys, tmp_path, content, fmt):
    p = tmp_path / "weird_input.csv"
    p.write_bytes(content)
    rc, _, err = _run(capsys, "read", p, "--format", fmt)
    assert rc == 2 and err.startswith("error: ") and "weird_input.csv" in err


def test_read_missing_file_exits_2(capsys, tmp_path):
    rc, _, err = _run(capsys, "read", tmp_path / "nope.csv")
    assert rc == 2 and "error:" in err and "nope.csv" in err


# --------------------------------------------------------------------------- tables

def test_tables_lists_with_citations(capsys):
    rc, out, _ = _run(capsys, "tables")
    assert rc == 0
    assert "eu2007" in out and "pyvprm_modis" in out
    assert "Kountouris" in out and "Glauch" in out


def test_tables_eu2007_prints_priors(capsys):
    rc, out, _ = _run(capsys, "tables", "eu2007")
    assert rc == 0
    assert "LogNormal(" in out and "Normal(" in out
    for col in ("class", "name", "units", "value", "prior"):
        assert col in out
    assert "umol m-2 s-1 degC-1" in out and "evergreen forest" in out


def test_tables_unknown_exits_2(capsys):
    rc, _, err = _run(capsys, "tables", "no_such_table")
    assert rc == 2 and "error:" in err and "eu2007" in err


# --------------------------------------------------------------------------- vprm

def _forcing(T=48, Y=3, X=2, seed=0) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    d3, d2 = ("time", "y", "x"), ("y", "x")
    return xr.Dataset({
        "air_temperature": (d3, rng.uniform(-5, 30, (T, Y, X)), {"units": "degC"}),
        "par": (d3, rng.uniform(0, 1800, (T, Y, X)), {"units": "umol m-2 s-1"}),
        "evi": (d3, rng.uniform(0.1, 0.7, (T, Y, X)), {"units": "1"}),
        "lswi": (d3, rng.uniform(-0.1, 0.5, (T, Y, X)), {"units": "1"}),
        "evi_threshold": (d2, np.full((Y, X), 0.4), {"units": "1"}),
        "lswi_min": (d2, np.zeros((Y, X)), {"units": "1"}),
        "lswi_max": (d2, np.full((Y, X), 0.45), {"units": "1"}),
        "class_fractions": (d2 + ("vprm_class",), rng.dirichlet(np.ones(9), (Y, X)),
                            {"units": "1"}),
    }, coords={"vprm_class": np.arange(1, 10),
               "time": pd.date_range("2022-07-01", periods=T, freq="h")})


@pytest.fixture
def forcing_nc(tmp_path):
    ds = _forcing()
    p = tmp_path / "forcing.nc"
    ds.to_netcdf(p)
    return ds, p


def test_vprm_writes_fluxes_equal_to_run(capsys, tmp_path, forcing_nc):
    from process_models.vprm import VPRMOptions, load_parameters, run
    ds, p = forcing_nc
    out_nc = tmp_path / "fluxes.nc"
    rc, out, err = _run(capsys, "vprm", p, "--output", out_nc, "--table", "eu2007")
    assert rc == 0, err
    assert "wrote" in out and "nee" in out
    ref = run(ds, load_parameters("eu2007", classes=ds.vprm_class.values), VPRMOptions())
    with xr.open_dataset(out_nc) as res:
        for v in ("gpp", "reco", "nee"):
            assert res[v].attrs["units"] == "umol m-2 s-1"
            np.testing.assert_allclose(res[v].values, ref[v].values, rtol=1e-12, atol=1e-12)
        assert res["nee"].dims == ("time", "y", "x")
        assert res.attrs["parameter_table"] == "eu2007"


def test_vprm_options_chunks_and_smooth(capsys, tmp_path, forcing_nc):
    from process_models.vprm import VPRMOptions, load_parameters, run
    ds, p = forcing_nc
    out_nc = tmp_path / "smooth.nc"
    rc, _, err = _run(capsys, "vprm", p, "-o", out_nc, "--mode", "smooth", "--sharpness", "4",
                      "--temperatures", "wrf", "--chunks", "time=16,y=2")
    assert rc == 0, err
    opts = VPRMOptions(mode="smooth", sharpness=4.0)
    ref = run(ds, load_parameters("pyvprm_modis", temperatures="wrf",
                                  classes=ds.vprm_class.values), opts)
    with xr.open_dataset(out_nc) as res:
        np.testing.assert_allclose(res["nee"].values, ref["nee"].values, rtol=1e-12, atol=1e-12)
        assert "smooth" in res.attrs["vprm_options"]


def test_vprm_gourdji_and_pyvprm_compat_run(capsys, tmp_path, forcing_nc):
    _, p = forcing_nc
    rc, _, err = _run(capsys, "vprm", p, "-o", tmp_path / "g.nc", "--respiration", "gourdji")
    assert rc == 0, err
    rc, _, err = _run(capsys, "vprm", p, "-o", tmp_path / "c.nc", "--pyvprm-compat")
    assert rc == 0, err


def test_vprm_kelvin_labelled_degc_exits_2(capsys, tmp_path):
    ds = _forcing()
    ds["air_temperature"] = (ds.air_temperature + 273.15).assign_attrs(units="degC")
    p = tmp_path / "kelvin_forcing.nc"
    ds.to_netcdf(p)
    out_nc = tmp_path / "never.nc"
    rc, _, err = _run(capsys, "vprm", p, "-o", out_nc)
    assert rc == 2
    assert err.startswith("error: ") and "air_temperature" in err and "Traceback" not in err
    assert not out_nc.exists()


@pytest.mark.parametrize("mutate,extra,match", [
    (lambda ds: ds.drop_vars("lswi"), [], "lswi"),
    (lambda ds: ds.rename(vprm_class="klass"), [], "vprm_class"),
    (lambda ds: ds, ["--chunks", "time=abc"], "--chunks"),
    (lambda ds: ds, ["--chunks", "depth=3"], "depth"),
    (lambda ds: ds, ["--table", "nope"], "nope"),
    (lambda ds: ds, ["--mode", "smooth", "--pyvprm-compat"], "pyvprm_compat"),
])
def test_vprm_bad_inputs_exit_2(capsys, tmp_path, mutate, extra, match):
    p = tmp_path / "bad_forcing.nc"
    mutate(_forcing(T=4)).to_netcdf(p)
    rc, _, err = _run(capsys, "vprm", p, "-o", tmp_path / "x.nc", *extra)
    assert rc == 2, err
    assert err.startswith("error: ") and match in err


# --------------------------------------------------------------------------- study / bench

def _fake_module(monkeypatch, name, ret=0):
    calls = []
    mod = types.ModuleType(name)
    mod.main = lambda argv=None: calls.append(list(argv)) or ret
    monkeypatch.setitem(sys.modules, name, mod)
    return calls


def test_study_vprm_first_calls_main(capsys, monkeypatch, tmp_path):
    calls = _fake_module(monkeypatch, "experiments.vprm_first_study")
    rc, _, _ = _run(capsys, "study", "vprm-first", "--out", tmp_path, "--quick")
    assert rc == 0
    assert calls == [["--out", str(tmp_path), "--quick"]]
    rc, _, _ = _run(capsys, "study", "vprm-first")
    assert calls[-1] == []


def test_bench_vprm_calls_main(capsys, monkeypatch):
    calls = _fake_module(monkeypatch, "experiments.benchmarks.vprm_throughput", ret={"ok": 1})
    rc, _, _ = _run(capsys, "bench", "vprm", "--quick", "--write-results")
    assert rc == 0  # a non-int return value (the results dict) means success
    assert calls == [["--quick", "--write-results"]]


def test_study_nonzero_status_is_returned(capsys, monkeypatch):
    _fake_module(monkeypatch, "experiments.vprm_first_study", ret=3)
    rc, _, _ = _run(capsys, "study", "vprm-first", "--quick")
    assert rc == 3


def test_format_choices_are_the_registry_names(capsys):
    """One set of names: the --format choices and the help list are process_models.io.FORMATS."""
    with pytest.raises(SystemExit):
        main(["read", "--help"])
    out = capsys.readouterr().out
    for name, f in FORMATS.items():
        assert name in out and f.description in out
    with pytest.raises(SystemExit) as exc:
        main(["read", str(data_path(*FORMATS["bigleaf_month"].example)), "--format", "park-falls"])
    assert exc.value.code == 2 and "invalid choice" in capsys.readouterr().err
    assert set(cli.__all__) == {"main", "build_parser", "STUDIES", "BENCHMARKS"}


def test_read_new_formats_and_parameter_table(capsys, tmp_path):
    rc, out, err = _run(capsys, "read", data_path(*FORMATS["bigleaf_month"].example))
    assert rc == 0, err
    assert "format: bigleaf_month" in out and "nee_filled" in out
    rc, out, err = _run(capsys, "read", data_path(*FORMATS["vprm_parameter_tables"].example),
                        "-o", tmp_path / "par.nc")
    assert rc == 0, err
    assert "(table," in out and "lambda" in out
    with xr.open_dataset(tmp_path / "par.nc") as ds:
        assert "lambda" in ds


def test_vprm_chunked_run_still_catches_unit_errors(capsys, tmp_path):
    """prepare_forcing skips range checks on dask data; the CLI spot-checks a sample."""
    ds = _forcing()
    ds["air_temperature"] = (ds.air_temperature + 273.15).assign_attrs(units="degC")
    p = tmp_path / "kelvin_chunked.nc"
    ds.to_netcdf(p)
    rc, _, err = _run(capsys, "vprm", p, "-o", tmp_path / "x.nc", "--chunks", "time=8")
    assert rc == 2 and "air_temperature" in err and "kelvin" in err
