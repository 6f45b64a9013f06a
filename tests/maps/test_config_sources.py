"""Map configuration and input checks on the real Romania Sentinel-2 cube, CH-Dav and the
Copernicus tree-cover raster: every bad input raises an error that names the variable."""
import dataclasses

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from assimilation.maps import config_from_dict, load_config, read_geotiff, satellite_observations
from assimilation.maps.sources import _same_crs, check_meteorology, class_fractions, read_sentinel2_l2a
from process_models.io import data_path
from process_models.units import DataValidationError

from .conftest import CONFIG, small_config

S2 = "s2-l2a_cubes_nrt_romania-france"


def _raw():
    import tomllib
    return tomllib.loads(CONFIG.read_text())


def test_config_loads_and_fingerprint_ignores_the_scheduler(tmp_path):
    cfg = small_config(tmp_path / "a.zarr")
    assert cfg.run.tile == (5, 5) and cfg.satellite.indices == ("evi", "ndvi", "lswi", "nirv")
    assert cfg.fingerprint() == cfg.replace(run__scheduler="local", run__workers=7).fingerprint()
    assert cfg.fingerprint() != cfg.replace(run__end="2019-07-04").fingerprint()


@pytest.mark.parametrize("edit, key", [
    (lambda r: r["run"].update(tiles=[3, 3]), "run.tiles"),
    (lambda r: r.pop("output"), "output"),
    (lambda r: r["run"].update(scheduler="threads"), "run.scheduler"),
    (lambda r: r["run"].update(end="2018-01-01"), "run.end"),
    (lambda r: r["meteorology"].update(reader="diive"), "meteorology.reader"),
    (lambda r: r["satellite"].update(indices=["evi"]), "satellite.indices"),
    (lambda r: r["satellite"].update(scale_factor=10000), "satellite.scale_factor"),
    (lambda r: r.update(regions={"bad": [1, 0, 0, 1]}), "regions.bad"),
])
def test_bad_config_names_the_key(edit, key):
    raw = _raw()
    edit(raw)
    with pytest.raises(DataValidationError) as e:
        config_from_dict(raw)
    assert e.value.variable == key and e.value.fix


def test_romania_indices_match_the_provenance_medians():
    """PROVENANCE.md: clear-pixel median EVI 0.515 (10 m B2/B4/B8) and LSWI(B8A, B11) 0.328,
    clear (SCL 4/5/6) fraction 0.564; we also mask water and snow."""
    obs = satellite_observations(load_config(CONFIG))
    assert obs["evi"].dims == ("time", "y", "x") and obs.sizes == {"time": 140, "y": 50, "x": 50}
    assert abs(float(obs["evi"].median()) - 0.515) < 0.02
    assert abs(float(obs["lswi"].median()) - 0.328) < 0.01
    assert 0.50 < float(obs["evi"].notnull().mean()) < 0.564


def test_digital_numbers_and_double_scaling_are_refused(tmp_path):
    p = data_path(S2, "sentinel2_cube_subset_romania_20m.nc.gz")
    with pytest.raises(DataValidationError, match="digital numbers") as e:
        read_sentinel2_l2a([p], scale_factor=1.0, needed=("nir08", "swir16"))
    assert "0.0001" in e.value.fix
    # a cube already in reflectance, read with the DN scale factor
    from assimilation.maps.sources import _open_nc
    ds = _open_nc(p).isel(time=slice(0, 10))
    for b in ("B3", "B4", "B8A", "B11"):
        ds[b] = ds[b] / 1e4
    ds.to_netcdf(tmp_path / "refl.nc")
    with pytest.raises(DataValidationError, match="already scaled"):
        read_sentinel2_l2a([tmp_path / "refl.nc"], scale_factor=1e-4, needed=("nir08", "swir16"))


def test_missing_band_and_crs_mismatch():
    p20 = data_path(S2, "sentinel2_cube_subset_romania_20m.nc.gz")
    with pytest.raises(DataValidationError, match="B2") as e:
        read_sentinel2_l2a([p20], needed=("blue", "red", "nir"))
    assert e.value.variable == "B2"
    with pytest.raises(DataValidationError, match="CRS"):
        read_sentinel2_l2a([p20], crs="EPSG:32634", needed=("nir08", "swir16"))
    # the cube's WKT (with a zero TOWGS84) is EPSG:3035 operationally, not by definition
    from assimilation.maps.sources import _open_nc
    wkt = _open_nc(p20)["spatial_ref"].attrs["spatial_ref"]
    assert _same_crs(wkt, "EPSG:3035") and not _same_crs(wkt, "EPSG:3034")


def test_tree_cover_geotiff_is_on_the_cube_grid_and_in_laea():
    values, x, y, crs = read_geotiff(data_path(S2, "tree_cover_density_2018_romania.tif"))
    obs = satellite_observations(load_config(CONFIG))
    assert values.shape == (50, 50) and values.max() <= 100
    np.testing.assert_allclose(x, obs["x"], atol=0.01)
    np.testing.assert_allclose(y, obs["y"], atol=0.01)
    assert _same_crs(crs, "EPSG:3035")


def test_land_cover_on_another_grid_is_refused(tmp_path):
    cfg = load_config(CONFIG)
    obs = satellite_observations(cfg)
    frac = class_fractions(cfg, obs, (1, 2, 3, 4, 6, 7, 9))
    np.testing.assert_allclose(frac.sum("vprm_class"), 1.0)
    shifted = obs.assign_coords(x=obs["x"].values + 10.0)
    with pytest.raises(DataValidationError, match="grid"):
        class_fractions(cfg, shifted, (1, 2, 3, 4, 6, 7, 9))


def test_lc100_table_is_pyvprms():
    yaml = pytest.importorskip("yaml")
    import importlib.util
    from pathlib import Path

    from process_models.vprm.tables import copernicus_lc100_to_vprm
    spec = importlib.util.find_spec("pyVPRM")
    if spec is None:
        pytest.skip("pyVPRM not installed")
    cfg = yaml.safe_load((Path(spec.submodule_search_locations[0]) / "vprm_configs" /
                          "copernicus_land_cover.yaml").read_text())
    ref = {int(c): int(v["vprm_class"]) for v in cfg.values() for c in v["class_numbers"] if c != 999}
    assert copernicus_lc100_to_vprm() == ref


def _met(hours, t=15.0, sw=300.0):
    return xr.Dataset({"air_temperature": ("time", np.full(len(hours), t), {"units": "degC"}),
                       "shortwave_in": ("time", np.full(len(hours), sw), {"units": "W m-2"})},
                      coords={"time": hours})


def test_meteorology_checks():
    hours = pd.date_range("2019-07-01", periods=48, freq="h")
    with pytest.raises(DataValidationError, match="spans") as e:
        check_meteorology(_met(hours[:24]), hours)
    assert e.value.variable == "time"
    with pytest.raises(DataValidationError, match="not degC"):
        check_meteorology(_met(hours, t=290.0), hours)
    m = _met(hours)
    m["air_temperature"][10:20] = np.nan
    with pytest.raises(DataValidationError, match="gap of 10 h"):
        check_meteorology(m, hours, max_gap_hours=6)
    m["air_temperature"][:] = np.linspace(10, 20, 48)
    m["air_temperature"][10:14] = np.nan
    filled = check_meteorology(m, hours, max_gap_hours=6)
    np.testing.assert_allclose(filled["air_temperature"], np.linspace(10, 20, 48))
    with pytest.raises(DataValidationError, match="units"):
        check_meteorology(_met(hours).assign(air_temperature=lambda d: d.air_temperature.assign_attrs(units="K")),
                          hours)


def test_map_period_outside_the_records(tmp_path):
    from assimilation.maps import prepare
    with pytest.raises(DataValidationError, match="statistics year"):
        prepare(small_config(tmp_path / "s.zarr", run__start="2023-07-01", run__end="2023-07-02"))
    cfg = small_config(tmp_path / "s.zarr")
    cfg = dataclasses.replace(cfg, meteorology=dataclasses.replace(cfg.meteorology, paths=("nope.parquet",)))
    with pytest.raises(FileNotFoundError):
        prepare(cfg)


def test_france_series_without_blue_uses_evi2():
    """The France cube has no B2 (and no B8): EVI is refused naming B2, EVI2 from B8A works."""
    from pathlib import Path
    cfg = load_config(Path(CONFIG).with_name("france_s2.toml"))
    with pytest.raises(DataValidationError) as e:
        satellite_observations(cfg.replace(satellite__indices=("evi", "lswi")))
    assert e.value.variable == "B2"
    obs = satellite_observations(cfg)
    assert set(obs.data_vars) >= {"evi2", "lswi"} and obs.sizes["y"] == obs.sizes["x"] == 10
    # PROVENANCE.md: France median LSWI (B8A, B11) of clear pixels 0.339
    assert abs(float(obs["lswi"].median()) - 0.339) < 0.02
