"""Synthetic twin (emulator.upscaling.twin): the LAI relation, the parameter fields, the
tower draw, the training-table layout, the spatial-skill metrics and the daily reduction of
the coupled-model truth."""
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from emulator.upscaling import FEATURES, make_model
from emulator.upscaling.tables import UMOL_TO_GC_DAY
from emulator.upscaling.twin import (feature_dataset, lai_from_evi, smooth_field, spatial_skill,
                                     tower_pixels, training_rows)


def fake_twin(n_days=40, ny=3, nx=4, seed=0):
    """A twin-layout Dataset whose 'truth' is a simple light-use function of EVI."""
    rng = np.random.default_rng(seed)
    p = ny * nx
    days = pd.date_range("2019-05-01", periods=n_days, freq="D")
    hours = np.arange(24)
    t_h = 15.0 + 5.0 * np.cos(np.pi * (hours - 15.0) / 12.0)[None, :] + rng.normal(0, 1, (n_days, 1))
    ppfd_h = np.clip(1500.0 * np.sin(np.pi * (hours - 6.0) / 12.0), 0, None)[None, :] * rng.uniform(0.4, 1, (n_days, 1))
    evi = np.clip(0.2 + 0.5 * rng.random(p)[None, :] + 0.02 * rng.normal(size=(n_days, p)), 0.05, 0.9)
    gpp = 20.0 * evi * ppfd_h.mean(1, keepdims=True) / 1000.0
    reco = 2.0 + 0.1 * t_h.mean(1, keepdims=True) + 0.0 * evi
    iy, ix = np.divmod(np.arange(p), nx)
    tc = rng.random(p)
    return xr.Dataset({
        "nee": (("time", "pixel"), reco - gpp), "gpp": (("time", "pixel"), gpp), "reco": (("time", "pixel"), reco),
        "evi": (("time", "pixel"), evi), "lswi": (("time", "pixel"), evi * 0.5),
        "soil_water_relative": (("time", "pixel"), rng.random((n_days, p))),
        "vprm_class": ("pixel", np.where(tc >= 0.5, 2, 7)), "tree_cover": ("pixel", tc),
        "air_temperature": ("time", t_h.mean(1)), "air_temperature_min": ("time", t_h.min(1)),
        "air_temperature_range": ("time", np.ptp(t_h, 1)), "ppfd_in": ("time", ppfd_h.mean(1)),
        "vpd": ("time", np.full(n_days, 8.0)),
        "air_temperature_hourly": (("time", "hour"), t_h), "ppfd_in_hourly": (("time", "hour"), ppfd_h),
    }, coords={"time": days, "hour": hours, "pixel": np.arange(p), "iy": ("pixel", iy), "ix": ("pixel", ix)},
        attrs={"latitude": 46.8, "ny": ny, "nx": nx})


def test_lai_from_evi_is_the_boegh_line_clipped():
    evi = np.array([-0.2, 0.0, 0.3, 0.5, 0.9, 3.0])
    lai = lai_from_evi(evi)
    assert np.all(np.diff(lai) >= 0) and lai.min() >= 0.1 and lai.max() <= 7.0
    assert lai[3] == pytest.approx(3.618 * 0.5 - 0.118)


def test_smooth_field_is_standardised_and_longer_lengths_are_smoother():
    rng = np.random.default_rng(3)
    lag1 = []
    for length in (0.5, 4.0):
        f = smooth_field((64, 64), length, rng)
        assert abs(f.mean()) < 1e-9 and f.std() == pytest.approx(1.0)
        lag1.append(np.corrcoef(f[:, :-1].ravel(), f[:, 1:].ravel())[0, 1])
    assert lag1[1] > 0.9 > lag1[0]


def test_tower_pixels_stratified_and_reproducible():
    tw = fake_twin(ny=6, nx=6)
    t1, t2 = tower_pixels(tw, 6, seed=1), tower_pixels(tw, 6, seed=1)
    assert np.array_equal(t1, t2) and t1.size == 6 and np.unique(t1).size == 6
    assert set(tw["vprm_class"].values[t1]) == set(np.unique(tw["vprm_class"].values))


def test_training_rows_have_the_training_table_layout():
    tw = fake_twin()
    towers = np.array([1, 5])
    tab = training_rows(tw, towers)
    assert tab.sizes["sample"] == 2 * tw.sizes["time"] and tab.sizes["hour"] == 24
    for v in (*FEATURES, "nee", "gpp", "reco", "weight", "air_temperature_hourly", "ppfd_in_hourly"):
        assert v in tab, v
    assert set(tab["site"].values) == {"px1", "px5"}
    at = tab.isel(sample=np.flatnonzero(tab["site"].values == "px5"))
    order = np.argsort(at["time"].values)
    np.testing.assert_allclose(at["gpp"].values[order], tw["gpp"].values[:, 5])
    np.testing.assert_allclose(at["evi"].values[order], tw["evi"].values[:, 5])
    feats = feature_dataset(tw)
    assert feats["air_temperature_hourly"].dims == ("time", "pixel", "hour")


def test_spatial_skill_perfect_and_offset_predictions():
    tw = fake_twin()
    px = np.arange(tw.sizes["pixel"])
    perfect = xr.Dataset({k: tw[k] for k in ("nee", "gpp", "reco")})
    for k in ("nee", "gpp", "reco"):
        perfect[f"{k}_sd"] = xr.full_like(tw[k], 0.1)
    s = spatial_skill(tw, perfect, px)
    assert s["gpp"]["spatial_r2"] == pytest.approx(1.0) and s["gpp"]["total_bias"] == pytest.approx(0.0, abs=1e-9)
    assert s["nee"]["daily_coverage90"] == 1.0 and s["nee"]["total_coverage90_independent"] == 1.0
    off = perfect.copy()
    off["gpp"] = perfect["gpp"] + 1.0                      # +1 umol m-2 s-1 every day
    s2 = spatial_skill(tw, off, px)
    assert s2["gpp"]["total_bias"] == pytest.approx(tw.sizes["time"] * UMOL_TO_GC_DAY)
    assert s2["gpp"]["spatial_r"] == pytest.approx(1.0) and s2["gpp"]["spatial_r2"] < 1.0
    assert s2["gpp"]["daily_coverage90"] == 0.0


def test_trees_trained_on_twin_towers_predict_every_pixel_through_predict_dataset():
    from emulator.upscaling import TreeConfig
    from emulator.upscaling.twin import run_twin
    tw = fake_twin(n_days=60, ny=4, nx=4)
    towers = tower_pixels(tw, 6, seed=0)
    fac = {"trees": lambda: make_model("trees", tree=TreeConfig(n_estimators=40, bags=2, min_child_samples=5))}
    preds, skill = run_twin(tw, fac, towers)
    p = preds["trees"]
    assert p["nee"].dims == ("time", "pixel") and np.isfinite(p["nee"].values).all()
    # GPP here is a function of EVI and light only: the trees recover the spatial pattern
    assert skill["trees"]["gpp"]["pixels"] == tw.sizes["pixel"] - towers.size
    assert skill["trees"]["gpp"]["spatial_r"] > 0.5


@pytest.mark.slow          # two compilations of the coupled model: ~20-40 s on 2 shared cores
def test_simulate_daily_is_the_daily_mean_of_the_coupled_model():
    import jax
    import jax.numpy as jnp
    from process_models.coupled import CoupledModel
    from process_models.coupled.params import CoupledForcing
    from emulator.upscaling.twin import simulate_daily
    n = 48
    h = np.arange(n) % 24
    cz = np.clip(np.cos(np.pi * (h + 0.5 - 12.0) / 12.0), 0, None)
    f64 = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    a = lambda v: jnp.asarray(np.broadcast_to(np.asarray(v, float), (n,)), f64)
    forcing = CoupledForcing(air_temperature=a(15 + 5 * cz), shortwave_in=a(800 * cz), vpd=a(5 + 5 * cz),
                             precipitation=a(0.0), air_pressure=a(95.0), co2=a(410.0), wind_speed=a(2.0),
                             cos_zenith=a(cz), lai=a(3.0), dt_seconds=3600.0)
    m = CoupledModel("DBF", "loam", checkpoint_every=0)
    p = m.default_params(dtype=f64)
    params = jax.tree.map(lambda x: jnp.stack([x, x]), p)
    lai = np.stack([np.full(n, 1.0), np.full(n, 4.0)])
    gpp, reco, nee, swc = simulate_daily(params, forcing, lai, batch=2)
    assert gpp.shape == (2, 2) and np.all(gpp >= 0) and np.all(reco >= 0)
    np.testing.assert_allclose(nee, reco - gpp, atol=1e-5)
    assert np.all(gpp[1] > gpp[0])                          # more leaf area, more GPP
    ref = m.simulate(p, forcing.replace(lai=jnp.asarray(lai[1], f64)))
    np.testing.assert_allclose(gpp[1], np.asarray(ref.gpp).reshape(2, 24).mean(1), rtol=1e-5)
