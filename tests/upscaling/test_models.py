"""Upscaling models: one API, flux constraints (GPP, Reco >= 0, NEE = Reco - GPP), the
hybrid equals VPRM at its table parameters, finite gradients through VPRM, the member
axis equals separate networks, exact checkpoint resume, and predict_dataset on a grid."""
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import xarray as xr
from flax import nnx

from emulator.upscaling.models import (TARGETS, EnsembleMLP, HybridModel, MLPModel, NetConfig,
                                       TreeConfig, TreeModel)
from emulator.upscaling.tables import FEATURES, add_derived_features

_ADAM = "optax.adam (emulator.train.fit) raises a Python float to its int32 step count"
SMALL = NetConfig(members=2, hidden=(16,), steps=60, batch_size=64, eval_every=20, checkpoint_every=20)


def synthetic_table(n=400, seed=0):
    """Rows on 'sample' whose fluxes follow a light-use rule of the drivers."""
    rng = np.random.default_rng(seed)
    time = pd.date_range("2015-01-01", periods=n, freq="D")
    t = 10 + 10 * np.sin(2 * np.pi * (time.day_of_year.values - 110) / 365) + rng.normal(0, 2, n)
    par = np.clip(350 + 250 * np.sin(2 * np.pi * (time.day_of_year.values - 80) / 365) + rng.normal(0, 60, n), 20, None)
    ds = xr.Dataset({"air_temperature": ("time", t), "air_temperature_range": ("time", np.full(n, 8.0)),
                     "ppfd_in": ("time", par), "vpd": ("time", np.full(n, 5.0)),
                     "evi": ("time", 0.2 + 0.3 * np.clip(t / 20, 0, 1))}, coords={"time": time})
    ds = add_derived_features(ds, vprm_class=2, latitude=48.0)
    hours = np.arange(24) + 0.5
    shape = np.clip(np.cos(np.pi * (hours - 12) / 12), 0, None)
    ds["ppfd_in_hourly"] = (("time", "hour"), par[:, None] * shape / shape.mean())
    ds["air_temperature_hourly"] = (("time", "hour"), t[:, None] + 4 * np.cos(np.pi * (hours - 15) / 10))
    gpp = 0.02 * ds["evi"].values * par * np.clip(t / 15, 0, 1)
    reco = np.clip(1.0 + 0.15 * t, 0.2, None)
    ds["gpp"], ds["reco"] = ("time", gpp), ("time", reco)
    ds["nee"] = ("time", reco - gpp + rng.normal(0, 0.3, n))
    ds = ds.rename(time="sample").drop_vars("sample").assign_coords(time=("sample", time.values),
                                                site=("sample", np.where(np.arange(n) < n // 2, "A", "B")))
    ds["weight"] = ("sample", np.ones(n))
    return ds


@pytest.fixture(scope="module")
def table():
    return synthetic_table()


def test_trees_learn_and_interval(table):
    m = TreeModel(TreeConfig(n_estimators=150)).fit(table)
    p = m.predict(table)
    assert set(p.data_vars) == {*TARGETS, *(f"{k}_sd" for k in TARGETS)}
    assert all(p[v].attrs["units"] == "umol m-2 s-1" for v in p.data_vars)
    for k in ("gpp", "reco"):     # noise-free targets: in-sample fit is close
        assert np.corrcoef(p[k].values, table[k].values)[0, 1] > 0.98
    inside = np.abs(p["nee"].values - table["nee"].values) <= 1.645 * p["nee_sd"].values
    assert 0.75 < float(inside.mean()) <= 1.0


@pytest.mark.slow   # two ensemble trainings, ~40 s on 2 loaded cores
@pytest.mark.standard_promotion(_ADAM)
@pytest.mark.parametrize("cls", [MLPModel, HybridModel])
def test_networks_flux_constraints(table, cls, tmp_path):
    m = cls(SMALL).fit(table, checkpoint_dir=tmp_path / "ck")
    a = {k: jnp.asarray(v) for k, v in m._arrays(table).items()}
    gpp, reco, sd = (np.asarray(v) for v in m._jit_heads(a))
    assert gpp.shape == (2, table.sizes["sample"]) and (gpp >= 0).all() and (reco >= 0).all()
    assert (sd >= SMALL.sd_floor).all()
    p = m.predict(table)
    # ensemble means of a linear relation: NEE = Reco - GPP to float32 round-off
    assert np.allclose(p["nee"], p["reco"] - p["gpp"], atol=1e-5)
    assert (p["gpp"] >= 0).all() and np.isfinite(p["nee_sd"]).all()
    assert m.train_result.steps_done == SMALL.steps or m.train_result.stopped_early


def test_hybrid_at_zero_network_is_vprm(table):
    """With the network's last layer zeroed, the hybrid is VPRM at the pyVPRM table
    parameters of the row's class, run at the 24 hourly drivers and averaged."""
    from process_models.vprm import VPRMForcing
    m = HybridModel(SMALL)
    m.mu, m.sigma = np.zeros(len(FEATURES)), np.ones(len(FEATURES))
    m.scale = {k: 1.0 for k in TARGETS}
    net = EnsembleMLP(2, len(FEATURES), (16,), 7, rngs=nnx.Rngs(0))
    net.w[-1][...] = jnp.zeros_like(net.w[-1][...])
    m.net = net
    a = {k: jnp.asarray(v) for k, v in m._arrays(table).items()}
    gpp, reco, _ = m._jit_heads(a)
    c = m.vprm.classes.index(2)
    n = table.sizes["sample"]
    zero = jnp.zeros((n, 1), jnp.float32)
    f = VPRMForcing(temperature=a["t_h"], par=a["par_h"], evi=a["green"][:, None], lswi=zero,
                    evi_threshold=zero - 1.0, lswi_min=zero - 1.0, lswi_max=zero,
                    class_fractions=jax.nn.one_hot(jnp.full((n, 1), c), 4, dtype=jnp.float32))
    ref = m.vprm.simulate(m.defaults, f)
    assert np.allclose(gpp[0], ref.gpp.mean(-1), rtol=1e-5) and np.allclose(gpp[1], gpp[0])
    assert np.allclose(reco[0], ref.reco.mean(-1), rtol=1e-5)
    assert float(ref.gpp.mean()) > 0.5


def test_hybrid_loss_gradient_finite(table):
    table = table.isel(sample=slice(0, 64))
    m = HybridModel(SMALL)
    m.mu, m.sigma = np.zeros(len(FEATURES)), np.ones(len(FEATURES))
    m.scale = {k: 1.0 for k in TARGETS}
    net = EnsembleMLP(2, len(FEATURES), (16,), 7, rngs=nnx.Rngs(1))
    batch = {k: jnp.asarray(v) for k, v in {**m._arrays(table), **m._targets(table)}.items()}
    graphdef, state = nnx.split(net)
    g = jax.grad(lambda s: m._loss(nnx.merge(graphdef, s), batch))(state)
    leaves = jax.tree.leaves(g)
    assert all(bool(jnp.all(jnp.isfinite(x))) for x in leaves)
    assert sum(float(jnp.abs(x).sum()) for x in leaves) > 0


def test_member_axis_equals_separate_networks():
    net = EnsembleMLP(3, 5, (8, 8), 4, rngs=nnx.Rngs(2))
    x = jax.random.normal(jax.random.key(0), (7, 5), jnp.float32)
    y = net(x)
    for mem in range(3):
        h = x
        for i in range(3):
            h = h @ net.w[i][...][mem] + net.b[i][...][mem]
            h = jax.nn.silu(h) if i < 2 else h
        assert np.allclose(y[mem], h, atol=1e-6)


@pytest.mark.slow   # three ensemble trainings, ~40 s on 2 loaded cores
@pytest.mark.standard_promotion(_ADAM)
def test_checkpoint_resume_is_exact(table, tmp_path):
    a = MLPModel(SMALL).fit(table, checkpoint_dir=tmp_path / "a")
    # killed after step 50: the last checkpoint (every 20 steps) is at 40
    MLPModel(SMALL).fit(table, checkpoint_dir=tmp_path / "b", stop_after=50)
    b = MLPModel(SMALL).fit(table, checkpoint_dir=tmp_path / "b")
    assert b.train_result.resumed_from == 40
    pa, pb = a.predict(table), b.predict(table)
    assert all(np.array_equal(pa[v].values, pb[v].values) for v in pa.data_vars)


def test_predict_dataset_grid_equals_rows(table):
    m = TreeModel(TreeConfig(n_estimators=30)).fit(table)
    time = pd.date_range("2016-06-01", periods=4, freq="D")
    rng = np.random.default_rng(3)
    grid = xr.Dataset({"air_temperature": (("time", "y", "x"), 15 + rng.normal(0, 3, (4, 2, 3))),
                       "air_temperature_range": (("time", "y", "x"), np.full((4, 2, 3), 8.0)),
                       "ppfd_in": (("time", "y", "x"), 400 + rng.normal(0, 50, (4, 2, 3))),
                       "evi": (("time", "y", "x"), np.full((4, 2, 3), 0.4)),
                       "vprm_class": (("y", "x"), np.array([[2, 2, 1], [3, 7, 2]]))},
                      coords={"time": time, "y": [0.0, 10.0], "x": [0.0, 10.0, 20.0]},
                      attrs={"latitude": 48.0})
    out = m.predict_dataset(grid)
    assert out["nee"].dims == ("time", "y", "x") and out["gpp_sd"].attrs["units"] == "umol m-2 s-1"
    assert set(out.data_vars) == {*TARGETS, *(f"{k}_sd" for k in TARGETS)}
    # pixel (y=0, x=1) as a (time, site) Dataset gives the same numbers
    one = grid.isel(y=[0], x=[1]).squeeze("y").rename(x="site")
    alt = m.predict_dataset(one)
    assert np.allclose(alt["nee"].values[:, 0], out["nee"].values[:, 0, 1])


def test_oob_sd_factor_scales_intervals_to_the_out_of_site_residuals():
    from emulator.upscaling.models import oob_sd_factor, weighted_quantile
    rng = np.random.default_rng(4)
    n = 4000
    sid = np.repeat([0, 1, 2, 3], n // 4)
    y = rng.normal(0.0, 2.0, n)                        # residual sd 2, predicted sd 1: factor ~ 2
    f = oob_sd_factor(y, np.zeros(n), np.ones(n), sid, np.ones(n, bool))
    assert f == pytest.approx(2.0, rel=0.1)
    # every site counts the same: a site with 9x the rows and tiny residuals does not dominate
    sid2 = np.concatenate([np.zeros(9000, int), np.ones(1000, int)])
    y2 = np.concatenate([rng.normal(0, 0.1, 9000), rng.normal(0, 3.0, 1000)])
    f2 = oob_sd_factor(y2, np.zeros(y2.size), np.ones(y2.size), sid2, np.ones(y2.size, bool))
    assert f2 > 1.0 > weighted_quantile(np.abs(y2), np.ones(y2.size), 0.9) / 1.645
    assert oob_sd_factor(y, np.zeros(n), np.ones(n), np.zeros(n), np.ones(n, bool)) == 1.0   # one site


def test_tree_calibration_widens_out_of_site_intervals(table):
    # site B's GPP is twice the others': the bags that never saw a site miss it, and the
    # calibrated interval is wider than the uncalibrated one
    t = table.copy(deep=True)
    quarter = np.array(list("ABCD"))[np.arange(t.sizes["sample"]) * 4 // t.sizes["sample"]]
    t = t.assign_coords(site=("sample", quarter))
    t["gpp"].values[quarter == "B"] *= 2.0
    cfg = TreeConfig(n_estimators=60, bags=4, site_keep=0.5, seed=1)
    cal, raw = TreeModel(cfg).fit(t), TreeModel(TreeConfig(**{**cfg.__dict__, "calibrate": False})).fit(t)
    assert cal.models["gpp"]["factor"] > 1.0 and raw.models["gpp"]["factor"] == 1.0
    assert np.all(cal.predict(t)["gpp_sd"].values >= raw.predict(t)["gpp_sd"].values * 0.999)
