"""The map engine on a real Romania window: store layout and CF metadata, physics of the
written fluxes, budgets, resume, configuration guard, LocalCluster = in-process bit for bit,
a killed worker, linear vs ensemble uncertainty, gradients."""
import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from assimilation.maps import open_map, run_map
from assimilation.maps.engine import G_C_PER_UMOL_M2_S_HOUR, _kernel, compute_tile, tile_inputs, tile_params
from process_models.units import DataValidationError

from .conftest import ADAM


def _ctx(ctx, store, **over):
    return dataclasses.replace(ctx, config=ctx.config.replace(output__store=str(store), **over))


def _same(a: xr.Dataset, b: xr.Dataset):
    assert set(a.data_vars) == set(b.data_vars)
    for v in a.data_vars:
        assert np.array_equal(a[v].values, b[v].values, equal_nan=True), v


@pytest.fixture(scope="module")
def reference(romania_context, tmp_path_factory):
    ctx = _ctx(romania_context, tmp_path_factory.mktemp("ref") / "ref.zarr")
    return run_map(ctx.config, context=ctx, progress=False)


def test_store_layout_units_and_cf(reference):
    ds = open_map(reference.store)
    assert ds.attrs["Conventions"] == "CF-1.10" and ds.attrs["sign_convention"].startswith("NEE = Reco - GPP")
    assert ds.sizes == {"time": 48, "y": 10, "x": 10, "day": 2, "vprm_class": 7}
    for v in ("nee", "gpp", "reco", "nee_sd"):
        assert ds[v].attrs["units"] == "umol m-2 s-1" and ds[v].attrs["grid_mapping"] == "spatial_ref"
        assert ds[v].dtype == np.float32 and ds[v].encoding["chunks"] == (24, 5, 5)
    assert ds["nee_total"].attrs["units"] == "g C m-2"
    assert ds["time"].attrs["standard_name"] == "time" and ds["x"].attrs["standard_name"] == "projection_x_coordinate"
    assert "LAEA" in ds["spatial_ref"].attrs["crs_wkt"] and ds["lat"].attrs["units"] == "degrees_north"
    assert 45.2 < float(ds["lat"].mean()) < 45.21
    assert reference.info["complete"] and reference.info["tiles"] == 4


def test_written_fluxes_keep_the_sign_convention_and_sum_to_the_totals(reference):
    ds = open_map(reference.store).load()
    assert np.isfinite(ds["nee"]).all() and float(ds["gpp"].min()) >= 0 and float(ds["reco"].min()) >= 0
    np.testing.assert_allclose(ds["nee"], ds["reco"] - ds["gpp"], atol=2e-5)
    assert float(ds["gpp"].sel(time=ds.time.dt.hour == 0).max()) == 0.0    # no light at midnight (UTC+2)
    assert float(ds["gpp"].max()) > 10.0                                   # a July forest at noon
    np.testing.assert_allclose(ds["nee_total"], ds["nee"].sum("time") * G_C_PER_UMOL_M2_S_HOUR, rtol=1e-5)
    assert (ds["nee_sd"] >= 0).all() and float(ds["gpp_sd"].max()) > 0
    # Reco of this VPRM is alpha T + beta: no index in it, no index uncertainty
    assert float(ds["reco_sd"].max()) == 0.0


def test_budget_table_adds_up(reference):
    b = reference.budgets
    dom = b[b.region == "domain"].set_index("class")
    area = 20.0 * 20.0
    assert dom.loc["all", "pixels"] == 100 and abs(dom.loc["all", "area_km2"] - 100 * area / 1e6) < 1e-12
    per_class = dom.drop("all")
    np.testing.assert_allclose(per_class["nee_t_c"].sum(), dom.loc["all", "nee_t_c"], rtol=1e-5)
    np.testing.assert_allclose((per_class["nee_g_c_m2"] * per_class["pixels"]).sum() / 100,
                               dom.loc["all", "nee_g_c_m2"], rtol=1e-5)
    assert (b["nee_sd_independent"] <= b["nee_sd_correlated"] + 1e-12).all()
    ds = open_map(reference.store)
    np.testing.assert_allclose(dom.loc["all", "nee_g_c_m2"], float(ds["nee_total"].mean()), rtol=1e-5)
    assert set(b.region) == {"domain", "north_half"}      # the window lies in the north half


def test_interrupted_run_resumes_to_the_identical_store(romania_context, reference, tmp_path):
    ctx = _ctx(romania_context, tmp_path / "r.zarr")
    first = run_map(ctx.config, context=ctx, progress=False, stop_after=1)
    assert not first.info["complete"] and first.budgets.empty
    # a half-written tile without its marker (killed during the write) is rewritten
    second = run_map(ctx.config, context=ctx, progress=False)
    assert second.resumed and second.info["tiles_run"] == 3 and second.info["complete"]
    _same(open_map(reference.store), open_map(second.store))


def test_a_store_of_another_configuration_is_not_resumed(romania_context, reference, tmp_path):
    ctx = _ctx(romania_context, reference.store)
    other = dataclasses.replace(ctx, fingerprint="0" * 16)
    with pytest.raises(DataValidationError, match="another configuration") as e:
        run_map(other.config, context=other, progress=False)
    assert "overwrite" in e.value.fix


@pytest.mark.standard_promotion(ADAM)
def test_localcluster_run_is_bit_identical_to_in_process(romania_context, reference, tmp_path):
    ctx = _ctx(romania_context, tmp_path / "d.zarr", run__scheduler="local", run__workers=2)
    res = run_map(ctx.config, context=ctx, progress=False)
    pids = {i["pid"] for i in res.tiles.values()}
    assert os.getpid() not in pids
    _same(open_map(reference.store), open_map(res.store))


@dataclasses.dataclass(frozen=True)
class _CrashOnce:
    """VPRM whose first trace kills its worker process (a crash mid-run)."""
    flag: str

    def default_params(self):
        from process_models.vprm import VPRMModel
        return VPRMModel().default_params()

    def simulate(self, params, forcing):
        from process_models.vprm import VPRMModel
        if not os.path.exists(self.flag):
            open(self.flag, "w").close()
            os._exit(1)
        return VPRMModel().simulate(params, forcing)


@pytest.mark.slow   # ~60 s: a worker dies and is restarted, tiles recompile
def test_killed_worker_gives_the_correct_store(romania_context, reference, tmp_path):
    ctx = _ctx(romania_context, tmp_path / "k.zarr", run__scheduler="local", run__workers=2)
    ctx = dataclasses.replace(ctx, model=_CrashOnce(str(tmp_path / "crashed")))
    res = run_map(ctx.config, context=ctx, progress=False)
    assert (tmp_path / "crashed").exists() and res.info["complete"]
    _same(open_map(reference.store), open_map(res.store))


def test_linear_uncertainty_agrees_with_a_large_ensemble(romania_context):
    lin = compute_tile(romania_context, slice(0, 5), slice(0, 5))[0]
    ens_ctx = dataclasses.replace(romania_context, config=romania_context.config.replace(
        run__uncertainty="ensemble", run__members=400))
    ens = compute_tile(ens_ctx, slice(0, 5), slice(0, 5))[0]
    np.testing.assert_array_equal(lin["nee"][1], ens["nee"][1])        # same central run
    a, b = lin["gpp_total_sd"][1].ravel(), ens["gpp_total_sd"][1].ravel()
    # 400 draws: the sd of an sd estimate is ~3.5 %; nonlinearity (clipping) adds a little
    np.testing.assert_allclose(np.median(b / a), 1.0, atol=0.1)
    assert np.corrcoef(a, b)[0, 1] > 0.9


def test_kernel_gradients_are_finite(romania_context):
    ctx = romania_context
    args, *_ = tile_inputs(ctx, slice(0, 5), slice(0, 5))
    model = ctx.model

    def total_nee(params):
        y, sd, tot, tot_sd = _kernel(model, "linear", 2, params, *args, jax.random.key(0))
        return jnp.sum(tot[2]) + jnp.sum(tot_sd[1])

    g = jax.grad(total_nee)(tile_params(ctx))
    for name in ("lam", "par0", "alpha", "beta"):
        leaf = np.asarray(getattr(g, name))
        assert np.isfinite(leaf).all(), name
    assert np.abs(np.asarray(g.lam)).max() > 0


@pytest.mark.parametrize("uncertainty", ["linear", "ensemble"])
def test_hour_blocks_do_not_change_the_result(romania_context, uncertainty):
    """The kernel scans the hours in blocks of run.time_chunk (padded at the end): a block
    that does not divide the period gives the same fluxes, sd and totals."""
    base = romania_context.config.replace(run__uncertainty=uncertainty, run__members=8)
    a = compute_tile(dataclasses.replace(romania_context, config=base), slice(0, 5), slice(0, 5))[0]
    b = compute_tile(dataclasses.replace(romania_context, config=base.replace(run__time_chunk=7)),
                     slice(0, 5), slice(0, 5))[0]
    for k in ("nee", "gpp_sd", "nee_total", "gpp_total_sd"):
        np.testing.assert_allclose(a[k][1], b[k][1], rtol=1e-6, atol=1e-6, err_msg=k)


def test_streamed_store_equals_the_whole_tile_computation(romania_context, reference):
    """process_tile writes the hours block by block; the store holds what compute_tile
    returns for the whole tile at once."""
    ds = open_map(reference.store)
    arrays = compute_tile(romania_context, slice(5, 10), slice(0, 5))[0]
    for k in ("nee", "gpp_sd", "nee_total", "gpp_total_sd", "evi", "lswi_sd", "pixel_flag"):
        np.testing.assert_allclose(ds[k].isel(y=slice(5, 10), x=slice(0, 5)).values, arrays[k][1],
                                   rtol=1e-6, atol=1e-6, err_msg=k)
    info = next(iter(reference.tiles.values()))
    assert info["block_mb"] <= info["tile_mb"]


def test_a_given_pivot_is_the_satellite_input(romania_context, reference, tmp_path):
    """run_map(pivot=...) takes a daily pivot Dataset (e.g. from assimilation.observations.pivot)
    instead of fusing the cube: the engine's own pivot, given back as a Dataset, reproduces
    the store."""
    from assimilation.maps import daily_pivot
    ctx = romania_context
    pv = daily_pivot(ctx.obs, ctx.pivot_names, ctx.days, params=ctx.fusion)
    cfg = ctx.config.replace(output__store=str(tmp_path / "p.zarr"))
    res = run_map(cfg, pivot=pv, fractions=None, progress=False)
    a, b = open_map(reference.store), open_map(res.store)
    for k in ("nee", "gpp_sd", "nee_total", "evi", "lswi_sd"):
        np.testing.assert_allclose(b[k].values, a[k].values, rtol=1e-5, atol=1e-5, err_msg=k)
    with pytest.raises(DataValidationError, match="spans"):
        run_map(cfg.replace(run__start="2020-07-01", run__end="2020-07-02"), pivot=pv, progress=False)
