"""The daily mode of the map engine (assimilation.maps.daily) on the real Romania window:
config validation, the daily CF store, tile-split invariance, resume, budgets = sums of the
map, the upscaling adapter's features = the training table's, the coupled-emulator adapter."""
import dataclasses
import hashlib

import jax
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from assimilation.maps import open_map, run_map
from assimilation.maps.config import config_from_dict
from assimilation.maps.daily import (G_C_PER_UMOL_M2_S_DAY, CoupledDailyMapModel, UpscalingMapModel, balance_fluxes,
                                     compute_daily_tile, daily_meteorology, daily_tile_inputs, upscaling_features)
from process_models.units import DataValidationError

from .conftest import ADAM, CONFIG


def _toy_tree_model():
    """A small LightGBM model fitted on a synthetic table with the training table's
    feature columns (emulator.upscaling.FEATURES, built by add_derived_features as
    tables.daily_table does): GPP a light-use-efficiency function of EVI x PPFD, Reco
    exponential in temperature, NEE = Reco - GPP. Cheap; the shipped towers are the
    study's training set (experiments/upscaling_maps.py)."""
    from emulator.upscaling import FEATURES, TreeConfig, TreeModel, add_derived_features
    rng = np.random.default_rng(0)
    days = pd.date_range("2015-01-01", periods=730, freq="D")
    doy = days.day_of_year.values
    season = np.sin(2 * np.pi * (doy - 110) / 365.25)
    t = 8 + 10 * season + rng.normal(0, 2, doy.size)
    ppfd = np.clip(350 + 250 * season + rng.normal(0, 60, doy.size), 20, None)
    evi = np.clip(0.35 + 0.2 * season + rng.normal(0, 0.03, doy.size), 0.05, 0.8)
    ds = xr.Dataset({"air_temperature": ("time", t), "air_temperature_range": ("time", np.full(doy.size, 8.0)),
                     "ppfd_in": ("time", ppfd), "vpd": ("time", np.clip(4 + 4 * season, 0.5, None)),
                     "evi": ("time", evi), "lswi": ("time", 0.2 + 0.05 * season)},
                    coords={"time": days}, attrs={"latitude": 45.0, "vprm_class": 2})
    ds = add_derived_features(ds)
    gpp = 0.025 * evi * ppfd
    reco = 1.5 * np.exp(0.07 * t)
    tab = ds[list(FEATURES)].rename(time="sample")
    tab = tab.assign(gpp=("sample", gpp), reco=("sample", reco), nee=("sample", reco - gpp),
                     weight=("sample", np.ones(doy.size)))
    return TreeModel(TreeConfig(n_estimators=30, bags=2)).fit(tab)


@pytest.fixture(scope="module")
def daily_context(romania_context, tmp_path_factory):
    """The shared Romania context switched to the daily upscaling model (the pivot fit is
    the hourly engine's, unchanged), 2 July 2019 days."""
    ctx = romania_context
    cfg = ctx.config.replace(model__name="upscaling", output__store=str(tmp_path_factory.mktemp("d") / "d.zarr"))
    met = daily_meteorology(cfg, ctx.hours)
    model = UpscalingMapModel(_toy_tree_model())
    out = dataclasses.replace(ctx, config=cfg, model=model, met=met)
    out.fingerprint = hashlib.sha256(model.fingerprint().encode()).hexdigest()[:16]
    return out


@pytest.fixture(scope="module")
def daily_reference(daily_context):
    return run_map(daily_context.config, context=daily_context, progress=False)


def _raw():
    import tomllib
    return tomllib.loads(CONFIG.read_text())


@pytest.mark.parametrize("section, key, value, named", [
    ("model", "name", "lpj", "model.name"),
    ("daily", "upscaling", "forest", "daily.upscaling"),
    ("daily", "nope", 1, "daily.nope"),
    ("run", "start", "2019-07-01T06:00", "run.start"),
])
def test_daily_config_errors_name_the_key(section, key, value, named):
    raw = _raw()
    raw["model"]["name"] = "upscaling"
    raw.setdefault(section, {})[key] = value
    with pytest.raises(DataValidationError) as e:
        config_from_dict(raw)
    assert e.value.variable == named


def test_a_daily_model_that_is_not_given_is_named(tmp_path):
    from assimilation.maps import prepare
    raw = _raw()
    raw["model"]["name"] = "coupled_daily"
    with pytest.raises(DataValidationError) as e:
        prepare(config_from_dict(raw))
    assert e.value.variable == "daily.emulator_dir"
    with pytest.raises(DataValidationError) as e:
        prepare(config_from_dict(raw), model=object())
    assert e.value.variable == "model.name"


def test_hourly_fingerprint_ignores_the_daily_section():
    """The [daily] options enter the fingerprint of daily runs only: hourly stores written
    before the daily mode existed still resume."""
    raw = _raw()
    hourly = config_from_dict(raw)
    text = repr((hourly.satellite, hourly.meteorology, hourly.land_cover, hourly.model,
                 dataclasses.replace(hourly.run, scheduler="-", workers=0), hourly.regions))
    assert hourly.fingerprint() == hashlib.sha256(text.encode()).hexdigest()[:16]
    raw["daily"] = {"upscaling": "hybrid"}
    assert config_from_dict(raw).fingerprint() == hourly.fingerprint() and hourly.step == "hourly"
    raw["model"]["name"] = "upscaling"
    a = config_from_dict(raw)
    raw["daily"] = {"upscaling": "trees"}
    assert a.step == "daily" and a.fingerprint() != config_from_dict(raw).fingerprint()


def test_daily_store_has_a_daily_cf_time_axis(daily_reference):
    ds = open_map(daily_reference.store)
    assert ds.sizes["time"] == 2 and ds.sizes["y"] == 10
    assert list(pd.DatetimeIndex(ds["time"].values)) == [pd.Timestamp("2019-07-01"), pd.Timestamp("2019-07-02")]
    assert ds["time"].encoding["units"].startswith("days since")
    assert ds["time"].attrs["bounds"] == "time_bnds" and "daily" in ds["time"].attrs["long_name"]
    width = np.diff(ds["time_bnds"].values, axis=1).ravel()
    assert (width == np.timedelta64(1, "D")).all()
    for v in ("nee", "gpp_sd"):
        assert ds[v].attrs["units"] == "umol m-2 s-1" and ds[v].attrs["cell_methods"] == "time: mean"
    assert ds["nee_total"].attrs["units"] == "g C m-2" and ds.attrs["title"].startswith("ecoflux daily")


def test_daily_fluxes_are_finite_balanced_and_sum_to_the_totals(daily_reference):
    ds = open_map(daily_reference.store).load()
    for v in ("gpp", "reco", "nee", "gpp_sd", "nee_sd", "nee_total_sd"):
        assert np.isfinite(ds[v]).all(), v
    assert float(ds["gpp"].min()) >= 0 and float(ds["reco"].min()) >= 0
    np.testing.assert_allclose(ds["nee"], ds["reco"] - ds["gpp"], atol=1e-5)
    assert float(ds["gpp"].mean()) > 1.0                          # July, forest and grass
    np.testing.assert_allclose(ds["gpp_total"], ds["gpp"].sum("time") * G_C_PER_UMOL_M2_S_DAY, rtol=1e-5)
    assert float(ds["gpp_sd"].min()) > 0


def test_budgets_equal_the_sums_of_the_map(daily_reference):
    b = daily_reference.budgets
    ds = open_map(daily_reference.store).load()
    area = 20.0 * 20.0
    dom = b[b.region == "domain"].set_index("class")
    np.testing.assert_allclose(dom.loc["all", "nee_t_c"], float(ds["nee_total"].sum()) * area / 1e6, rtol=1e-5)
    np.testing.assert_allclose(dom.drop("all")["gpp_t_c"].sum(), dom.loc["all", "gpp_t_c"], rtol=1e-5)
    np.testing.assert_allclose(dom.loc["all", "reco_g_c_m2_yr"], dom.loc["all", "reco_g_c_m2"] * 365.25 / 2)


def test_tiles_do_not_change_a_pixel(daily_context, daily_reference, tmp_path):
    """One 10 x 10 tile gives the store of four 5 x 5 tiles."""
    ctx = dataclasses.replace(daily_context, config=daily_context.config.replace(
        run__tile=(10, 10), output__store=str(tmp_path / "one.zarr")))
    one = run_map(ctx.config, context=ctx, progress=False)
    a, b = open_map(daily_reference.store), open_map(one.store)
    for v in ("nee", "gpp_sd", "reco_total", "nee_total_sd", "evi"):
        np.testing.assert_allclose(a[v].values, b[v].values, rtol=1e-6, atol=1e-6, err_msg=v)


def test_interrupted_daily_run_resumes_to_the_identical_store(daily_context, daily_reference, tmp_path):
    ctx = dataclasses.replace(daily_context, config=daily_context.config.replace(output__store=str(tmp_path / "r.zarr")))
    first = run_map(ctx.config, context=ctx, progress=False, stop_after=1)
    assert not first.info["complete"]
    second = run_map(ctx.config, context=ctx, progress=False)
    assert second.resumed and second.info["tiles_run"] == 3
    a, b = open_map(daily_reference.store), open_map(second.store)
    for v in a.data_vars:
        assert np.array_equal(a[v].values, b[v].values, equal_nan=True), v


@pytest.mark.slow   # ~40 s: two dask worker processes import jax and lightgbm
@pytest.mark.standard_promotion(ADAM)
def test_daily_localcluster_equals_in_process(daily_context, daily_reference, tmp_path):
    ctx = dataclasses.replace(daily_context, config=daily_context.config.replace(
        run__scheduler="local", run__workers=2, output__store=str(tmp_path / "lc.zarr")))
    res = run_map(ctx.config, context=ctx, progress=False)
    a, b = open_map(daily_reference.store), open_map(res.store)
    for v in ("nee", "gpp_sd", "nee_total"):
        np.testing.assert_array_equal(a[v].values, b[v].values, err_msg=v)


def test_upscaling_features_are_the_training_tables(daily_context):
    """The adapter's feature Dataset gives every column the training table holds
    (emulator.upscaling.FEATURES, kept by training_table), finite, with the flags saying
    which inputs the map has: EVI and LSWI from the pivot, no soil moisture, no fAPAR."""
    from emulator.upscaling import FEATURES, add_derived_features, feature_matrix
    inp, *_ = daily_tile_inputs(daily_context, slice(0, 5), slice(0, 5))
    feats = add_derived_features(upscaling_features(inp, inp.greenness, inp.lswi, 2))
    rows = feats.stack(sample=("time", "pixel"))
    x = feature_matrix(rows.drop_vars(["time", "pixel", "sample"]), FEATURES)
    assert x.shape == (2 * 25, len(FEATURES)) and np.isfinite(x).all()
    assert (rows["has_soil_water"] == 0).all() and (rows["has_fapar"] == 0).all()
    assert (rows["has_evi"] == 1).all() and (rows["has_lswi"] == 1).all() and (rows["class_2"] == 1).all()
    # daily meteorology: units checked, PPFD = SW / 0.505, range = max - min
    m = inp.met
    np.testing.assert_allclose(m["ppfd_in"], m["shortwave_in"] / 0.505)
    assert (m["air_temperature_range"] >= 0).all() and 5 < float(m["air_temperature"].mean()) < 30
    assert (m["precipitation"] >= 0).all() and (m["vpd"] >= 0).all()


def test_balance_fluxes_enforces_nee_equals_reco_minus_gpp():
    rng = np.random.default_rng(1)
    g, r, n = rng.uniform(0, 10, 50), rng.uniform(0, 10, 50), rng.normal(0, 3, 50)
    s = rng.uniform(0.1, 2, (3, 50))
    m, sd = balance_fluxes(g, r, n, *s)
    np.testing.assert_allclose(m[2], m[1] - m[0], atol=1e-12)
    assert (m[:2] >= 0).all() and (sd <= s + 1e-12).all()
    same, _ = balance_fluxes(g, r, r - g, *s)             # consistent predictions are kept
    np.testing.assert_allclose(same, np.stack([g, r, r - g]), atol=1e-9)


def _untrained_emulator():
    from flax import nnx

    from emulator.coupled import coupled_spec
    from emulator.daily_emulator import N_INPUTS, DailyCoupledEmulator, DailyNetwork
    from emulator.normalise import Normaliser
    spec = coupled_spec(dt_seconds=3600.0)
    n = N_INPUTS + len(spec.param_space.names)
    norm = Normaliser((0.0,) * n, (1.0,) * n)
    net = DailyNetwork(len(spec.param_space.names), (8, 8), norm, rngs=nnx.Rngs(0))
    return DailyCoupledEmulator(net, spec, {"hidden": [8, 8], "input_normaliser": norm.to_dict()})


def _check_tile(ctx):
    arrays, _ = compute_daily_tile(ctx, slice(0, 5), slice(0, 5))
    gpp, reco, nee = (arrays[k][1] for k in ("gpp", "reco", "nee"))
    assert np.isfinite(nee).all() and (gpp >= 0).all() and (reco >= 0).all()
    np.testing.assert_allclose(nee, reco - gpp, atol=1e-4)
    assert np.isfinite(arrays["gpp_sd"][1]).all() and (arrays["gpp_sd"][1] >= 0).all()
    return gpp


def test_coupled_adapter_takes_each_pixels_parameters_from_its_land_cover(daily_context):
    """Per-pixel parameters of the dominant class's PFT (deciduous forest -> DBF, grassland
    -> GRA), the emulated ones inside the emulator's training box."""
    from process_models.coupled import CoupledModel
    emu = _untrained_emulator()
    inp, *_ = daily_tile_inputs(daily_context, slice(0, 5), slice(0, 5))
    params, none = CoupledDailyMapModel(emu).pixel_parameters(inp)
    dom = np.asarray(inp.class_ids)[np.argmax(inp.fractions, 1)]
    ref = {c: CoupledModel(p, "loam").default_params() for c, p in ((2, "DBF"), (7, "GRA"))}
    np.testing.assert_allclose(np.asarray(params.carbon.sla), [float(ref[int(c)].carbon.sla) for c in dom], rtol=1e-6)
    assert not none.any() and len(set(dom.tolist())) == 2
    space = emu.spec.param_space
    g1 = np.asarray(params.leaf.g1)
    i = space.names.index("leaf.g1")
    assert (g1 >= space.lower[i] - 1e-6).all() and (g1 <= space.upper[i] + 1e-6).all()


@pytest.mark.slow   # ~30 s: compiles the emulator's daily scan over the tile
def test_coupled_emulator_adapter_gives_finite_balanced_daily_maps(daily_context):
    """The daily flux-form emulator (untrained weights: the plumbing, not the skill) on one
    5 x 5 tile: finite, GPP, Reco >= 0, NEE = Reco - GPP."""
    _check_tile(dataclasses.replace(daily_context, model=CoupledDailyMapModel(_untrained_emulator())))


@pytest.mark.slow   # ~25 s: compiles the hourly process model over the tile
def test_coupled_process_reference_on_the_same_pixels(daily_context):
    gpp = _check_tile(dataclasses.replace(daily_context, model=CoupledDailyMapModel(_untrained_emulator(),
                                                                                     process=True)))
    assert float(gpp.mean()) > 1.0                       # the process model in July


@pytest.mark.slow   # ~2-4 min on 2 cores: the training tables of four towers, two maps
@pytest.mark.standard_promotion(ADAM)
def test_upscaling_maps_quick_run(tmp_path):
    """experiments/upscaling_maps.py quick: 10 m Romania and 20 m France daily maps from the
    trees, finite, balanced, with budgets that add up over the classes."""
    from experiments.upscaling_maps import run
    m = run(tmp_path, quick=True)
    ro, fr = m["maps"]["romania/trees"], m["maps"]["france/trees"]
    assert ro["grid_m"] == 10.0 and ro["shape"] == [40, 40] and fr["grid_m"] == 20.0
    for r in (ro, fr):
        assert r["finite"] and r["max_balance_residual"] < 1e-5 and r["days"] == 14
        b = r["budgets"]
        classes = [k for k in b if k != "all"]
        np.testing.assert_allclose(sum(b[c]["nee_t_c"] for c in classes), b["all"]["nee_t_c"], rtol=1e-5)
        assert b["all"]["gpp_g_c_m2"] > 0 and b["all"]["reco_g_c_m2"] > 0
    assert (tmp_path / "REPORT.md").exists() and (tmp_path / "map_romania_trees.png").exists()
