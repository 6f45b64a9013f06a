"""Design of experiments and training-run generation."""
import numpy as np
import pytest
import xarray as xr

import jax.numpy as jnp

from emulator.design import ParameterSpace, sample, vprm_parameter_space
from emulator.generate import ChunkedDataset, generate_vprm, vprm_forcing_pool
from emulator.networks import VPRM_FORCING_INPUTS, VPRM_INPUTS
from process_models.vprm import (ClassRules, VPRMForcing, VPRMOptions, VPRMParams,
                                 load_parameters, parameter_table, simulate)


@pytest.mark.parametrize("method", ["sobol", "lhs", "random"])
def test_samples_inside_box_and_roundtrip(method):
    space = vprm_parameter_space()
    x = sample(space, 300, method=method, seed=3)
    assert x.shape == (300, 8)
    assert np.all(x >= np.asarray(space.lower)) and np.all(x <= np.asarray(space.upper))
    np.testing.assert_allclose(space.from_unit(space.to_unit(x)), x, rtol=1e-12)
    assert ParameterSpace.from_json(space.to_json()) == space


def test_lhs_is_stratified_and_log_sampling_uniform_in_log():
    space = ParameterSpace(("a", "b"), (1.0, 0.0), (1000.0, 1.0), (True, False))
    x = sample(space, 100, method="lhs", seed=0)
    # one point per 1/100 stratum in each dimension (Latin hypercube property)
    u = space.to_unit(x)
    for j in range(2):
        assert np.array_equal(np.sort(np.floor(u[:, j] * 100)), np.arange(100))
    # log-uniform: a third of the points in each decade
    counts = np.histogram(np.log10(x[:, 0]), bins=[0, 1, 2, 3])[0]
    assert np.all(np.abs(counts - 100 / 3) <= 1)


def test_vprm_box_contains_literature_parameters():
    space = vprm_parameter_space()
    lo, hi = dict(zip(space.names, space.lower)), dict(zip(space.names, space.upper))
    tab = parameter_table("pyvprm_modis")
    assert {(r.lower, r.upper) for r in tab[tab.name == "lam"].itertuples()} == {(lo["lam"], hi["lam"])}
    for scheme in ("copernicus", "mahadevan2008"):
        p = load_parameters("pyvprm_modis", temperatures=scheme, classes=[1, 2, 3, 4, 5, 6, 7, 9])
        for n in space.names:
            v = np.asarray(getattr(p, n))[np.asarray(p.rules.has_flux) > 0]   # classes with parameters
            assert np.all((v >= lo[n]) & (v <= hi[n])), (scheme, n, v)


def _pool(n=300, seed=0):
    r = np.random.default_rng(seed)
    return np.column_stack([r.uniform(-5, 30, n), r.uniform(0, 1800, n), r.uniform(0, 0.8, n),
                            r.uniform(-0.2, 0.4, n), np.full(n, 0.45), np.full(n, -0.05), np.full(n, 0.35)])


def test_generated_targets_are_the_process_model_and_generation_resumes(tmp_path):
    space = vprm_parameter_space()
    d = generate_vprm(tmp_path / "d", _pool(), space, n_param_sets=24, points_per_set=8,
                      sets_per_chunk=8, seed=5, progress=False)
    ds = ChunkedDataset(d)
    assert ds.n_chunks == 3 and ds.attrs["model"] == "process_models.vprm.interface.VPRMModel"
    assert ParameterSpace.from_json(ds.attrs["parameter_space"]) == space and ds.attrs["seed"] == 5
    x, y = ds.concat()
    assert x.shape == (192, len(VPRM_INPUTS)) and y.shape == (192, 3)
    # independent recomputation, one point at a time for a few rows
    for i in (0, 77, 191):
        v = dict(zip(VPRM_INPUTS, x[i]))
        rules = ClassRules(*(jnp.asarray([v[k]]) for k in ("pscale_always_one", "pscale_always_lswi", "xeric")),
                           has_flux=jnp.ones(1), class_ids=(0,))
        p = VPRMParams(**{k: jnp.asarray([v[k]]) for k in VPRM_INPUTS[10:]}, rules=rules)
        f = VPRMForcing(**{k: jnp.asarray(v[k]) for k in VPRM_FORCING_INPUTS}, class_fractions=jnp.ones(1))
        o = simulate(p, f, VPRMOptions(mode="smooth"))
        np.testing.assert_allclose([o.gpp, o.reco, o.nee], y[i], rtol=1e-10, atol=1e-12)
    assert np.all(y[:, 0] >= 0) and np.all(y[:, 1] >= 0)
    np.testing.assert_allclose(y[:, 2], y[:, 1] - y[:, 0], atol=1e-12)
    # resume: remove a chunk, re-run; the rewritten chunk is identical and others untouched
    before = xr.load_dataset(d / "chunk_00001.nc")
    mtime0 = (d / "chunk_00000.nc").stat().st_mtime_ns
    (d / "chunk_00001.nc").unlink()
    generate_vprm(d, _pool(), space, n_param_sets=24, points_per_set=8, sets_per_chunk=8, seed=5,
                  progress=False)
    after = xr.load_dataset(d / "chunk_00001.nc")
    np.testing.assert_array_equal(before.inputs.values, after.inputs.values)
    np.testing.assert_array_equal(before.targets.values, after.targets.values)
    assert (d / "chunk_00000.nc").stat().st_mtime_ns == mtime0


def test_forcing_pool_keeps_pixel_time_series_contiguous():
    t = np.arange(5.0)[:, None, None] + 10 * np.arange(2)[None, :, None] + 100 * np.arange(3)[None, None, :]
    f = VPRMForcing(temperature=t, par=np.zeros((5, 2, 3)), evi=0.3, lswi=0.1, evi_threshold=0.4,
                    lswi_min=0.0, lswi_max=0.3, class_fractions=np.ones(1))
    pool = vprm_forcing_pool(f)
    assert pool.shape == (30, 7)
    np.testing.assert_array_equal(pool[:5, 0], np.arange(5.0))          # pixel (0, 0) over time
    np.testing.assert_array_equal(pool[5:10, 0], 100 + np.arange(5.0))  # pixel (0, 1)
