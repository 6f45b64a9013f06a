"""Tower cycles for filters (CH-Dav): the forcing windows equal the gap-filled forcing of the
reader Dataset cut into days, the spin-up through the model interface equals
``coupled.simulate``; initial ensembles and the clipping postprocess keep their bounds."""
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from assimilation.ensemble import (Augmented, augmented_ensemble, clip_augmented,
                                   coupled_tower_cycles)

from ..helpers import tree_allclose

coupled = pytest.importorskip("process_models.coupled")


@pytest.fixture(scope="module")
def chdav():
    from experiments.sites import get_site
    from process_models.io import data_path, read_diive_parquet
    site = get_site("CH-Dav")
    return site, read_diive_parquet(data_path(*site.path)).sel(time=slice("2018-05-29", "2018-06-03"))


def test_cycles_equal_the_manual_forcing_and_spin_up(chdav):
    from process_models.io import fill_gaps
    site, raw = chdav
    model = coupled.CoupledModel(site.pft, site.soil_texture)
    tc = coupled_tower_cycles(raw, site.latitude, site.longitude, "2018-06-01", "2018-06-02",
                              model=model, spin_up="2018-05-30")
    assert tc.forcing.air_temperature.shape == (2, 48) and len(tc.times) == 96
    assert tc.data.sizes["time"] == 96 and tc.times[0] == np.datetime64("2018-06-01T00:00")
    params = model.default_params()
    drivers = [v for v in ("air_temperature", "vpd", "shortwave_in", "precipitation",
                           "air_pressure", "wind_speed", "co2", "lai") if v in raw]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        f = coupled.forcing_from_dataset(fill_gaps(raw.sel(time=slice("2018-06-01", "2018-06-02")),
                                                   drivers)[0], site.latitude, site.longitude, lai=False)
        spin = raw.sel(time=slice("2018-05-30", "2018-06-01")).isel(time=slice(0, -1))
        fs = coupled.forcing_from_dataset(fill_gaps(spin, drivers)[0], site.latitude,
                                          site.longitude, lai=False)
    tree_allclose(tc.forcing, jax.tree_util.tree_map(lambda x: x.reshape((2, 48) + x.shape[1:]), f))
    _, state = coupled.simulate(params, fs, return_state=True)
    tree_allclose(tc.state0, state, rtol=1e-10, atol=1e-12)
    assert any("wind_speed" in n for n in tc.notes)


def test_initial_ensemble_and_clipping():
    state0 = coupled.initial_state(coupled.load_parameters("ENF", "loam"),
                                   coupled.CoupledForcing(*(jnp.ones(4),) * 8, lai=None, dt_seconds=1800.0))
    box = {"soil_water_content": (0.1, 0.3)}
    ens = augmented_ensemble(jax.random.key(0), state0, 8, np.array([0.2, 0.3]), 3,
                             lognormal_fields={"soil_water_content": 0.5}, clip_fields=box)
    theta = np.asarray(ens.state.soil_water_content)
    assert ens.params.shape == (8, 2) and ens.record.shape == (8, 3)
    assert theta.min() >= 0.1 and theta.max() <= 0.3 and np.unique(theta[:, 0]).size > 1
    same = augmented_ensemble(jax.random.key(0), state0, 4, np.zeros(2), 3,
                              lognormal_fields={"soil_water_content": 0.0})
    np.testing.assert_array_equal(np.asarray(same.params), 0.0)
    tree_allclose(jax.tree_util.tree_map(lambda a: a[3], same.state), state0, rtol=0)
    post = clip_augmented(np.array([[-0.1, 0.1], [-1.0, 1.0]]), {"soil_water_content": (0.15, 0.2)},
                          nonnegative=("carbon",))
    bad = Augmented(ens.state.replace(carbon=jax.tree_util.tree_map(lambda a: a - 1e4, ens.state.carbon)),
                    ens.params * 10.0, ens.record)
    out = post(bad)
    assert float(jnp.min(out.state.soil_water_content)) >= 0.15
    assert float(jnp.max(out.state.soil_water_content)) <= 0.2
    assert all(float(jnp.min(a)) >= 0.0 for a in jax.tree_util.tree_leaves(out.state.carbon))
    assert np.all(np.abs(np.asarray(out.params[:, 0])) <= 0.1)
    np.testing.assert_array_equal(out.record, ens.record)
