"""The daily flux-form emulator of the coupled model (emulator.daily, emulator.flux_form,
emulator.daily_emulator): conservation to round-off and bounds for any weights, the daily
forcing statistics, the daily process-model run against the process model's own simulate,
and save/load."""
from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from emulator.coupled import coupled_spec
from emulator.daily import DAILY_FIELDS, daily_forcing, daily_process_run, state_to_vector
from emulator.daily_emulator import (N_INPUTS, DailyCoupledEmulator, DailyNetwork, carbon_balance_residual,
                                     water_balance_residual)
from emulator.flux_form import carbon_day, soil_column_day
from emulator.normalise import Normaliser
from process_models.coupled import CoupledModel, simulate
from process_models.coupled.params import CarbonPools
from tests.coupled._shared import enf_params, hourly_year
from tests.helpers import tree_allclose

N_DAYS = 30
START_DAY = 120          # May-June: snow melt, rain, photosynthesis


@lru_cache(maxsize=None)
def _forcing():
    f = hourly_year()
    return jax.tree_util.tree_map(lambda x: x[24 * START_DAY:24 * (START_DAY + N_DAYS)] if jnp.ndim(x) else x, f)


def _emulator(output_gain=1.0, seed=0):
    """An untrained emulator (random weights; ``output_gain`` scales the last layer, so
    large gains give extreme flux proposals that the bookkeeping must clip)."""
    spec = coupled_spec(dt_seconds=3600.0)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(64, N_INPUTS + 6))
    net = DailyNetwork(6, (16, 16), Normaliser.fit(x), rngs=nnx.Rngs(seed))
    net.mlp.out.kernel.set_value(net.mlp.out.kernel.get_value() * output_gain * 100.0)
    net.mlp.out.bias.set_value(jnp.asarray(rng.normal(size=net.mlp.out.bias.get_value().shape) * output_gain, jnp.float32))
    return DailyCoupledEmulator(net, spec, {"hidden": [16, 16], "input_normaliser": Normaliser.fit(x).to_dict()})


@pytest.mark.parametrize("gain", [0.3, 30.0])
def test_water_and_carbon_close_to_round_off_and_soil_water_stays_bounded(gain):
    emu = _emulator(gain, seed=int(gain * 10))
    params = enf_params()
    f = _forcing()
    s0 = CoupledModel().initial_state(params, f)
    df = daily_forcing(f)

    def body(s, ft):
        s1, out = emu.step(s, ft, params)
        o = {k: getattr(out, k) for k in ("gpp", "ra", "rh", "et", "runoff", "drainage")}
        return s1, (water_balance_residual(s, s1, ft, o, params.layer_thickness),
                    carbon_balance_residual(s, s1, o), s1.soil_water_content, out)

    _, (rw, rc, theta, out) = jax.lax.scan(body, s0, df)
    storage = 1000.0 * np.sum(np.asarray(params.layer_thickness) * np.asarray(theta), -1)
    assert np.max(np.abs(rw)) < 1e-9 * max(1.0, np.max(storage))        # mm: float64 round-off
    assert np.max(np.abs(rc)) < 1e-9 * float(s0.carbon.total())         # g C m-2
    eps = 1e-12
    assert np.all(theta >= float(params.soil.theta_res) - eps) and np.all(theta <= float(params.soil.theta_sat) + eps)
    assert np.all(np.asarray(out.gpp) >= 0) and np.all(np.asarray(out.reco) >= 0)
    np.testing.assert_allclose(out.nee, out.reco - out.gpp, atol=1e-12)
    for k in ("et", "runoff", "drainage", "transpiration", "soil_evaporation", "interception_evaporation"):
        assert np.all(np.asarray(getattr(out, k)) >= -1e-12), k


def test_soil_column_conserves_and_bounds_any_flux_proposal():
    rng = np.random.default_rng(3)
    dz = (0.05, 0.1, 0.15, 0.2, 0.25, 0.35, 0.4, 0.5)
    res, sat, wilt = 0.03, 0.45, 0.08
    for _ in range(200):
        theta = jnp.asarray(rng.uniform(res, sat, 8))
        infil, td, ed, dr = rng.exponential([20.0, 5.0, 2.0, 50.0]) * rng.choice([0.0, 1.0, 100.0], 4)
        w = jnp.asarray(rng.dirichlet(np.ones(8)))
        q = jnp.asarray(rng.normal(0, 1, 7) * 10 ** rng.uniform(-1, 3))
        new, fl = soil_column_day(theta, infil, td, w, ed, q, dr, res, sat, wilt, dz)
        change = 1000.0 * jnp.sum(jnp.asarray(dz) * (new - theta))
        np.testing.assert_allclose(change, infil - fl["transpiration"] - fl["soil_evaporation"] - fl["drainage"],
                                   atol=1e-10)
        assert np.all(np.asarray(new) >= res - 1e-12) and np.all(np.asarray(new) <= sat + 1e-12)
        assert np.all(np.asarray(fl["uptake"]) >= 0) and fl["drainage"] >= 0
        assert np.all(np.asarray(fl["uptake"]) <= 1000.0 * np.asarray(dz) * np.maximum(np.asarray(theta) - wilt, 0) + 1e-12)


def test_carbon_day_closes_for_any_inputs():
    carbon = enf_params().carbon
    rng = np.random.default_rng(4)
    conv = 12.011e-6 * 86400.0
    for _ in range(50):
        pools = CarbonPools(*(jnp.asarray(v) for v in rng.uniform(10, 5000, 6)))
        gpp, rc, dfc = rng.exponential([8.0, 2.0, 1.0])
        new, ra, rh = carbon_day(pools, gpp, rc, dfc, rng.uniform(-10, 25), rng.uniform(0.05, 3.0), carbon)
        np.testing.assert_allclose(new.total() - pools.total(), (gpp - ra - rh) * conv, rtol=1e-10, atol=1e-9)
        assert ra >= 0 and rh >= 0 and all(float(c) > 0 for c in jax.tree_util.tree_leaves(new))


def test_daily_forcing_statistics_are_those_of_the_subdaily_forcing():
    f = _forcing()
    d = daily_forcing(f)
    day = lambda v: np.asarray(getattr(f, v)).reshape(N_DAYS, 24)           # noqa: E731
    np.testing.assert_allclose(d.air_temperature, day("air_temperature").mean(1), rtol=1e-12)
    np.testing.assert_allclose(d.air_temperature_max, day("air_temperature").max(1), rtol=1e-12)
    np.testing.assert_allclose(d.precipitation, day("precipitation").sum(1), rtol=1e-12)
    np.testing.assert_allclose(np.sum(d.precipitation), np.sum(f.precipitation), rtol=1e-12)
    sw, t = day("shortwave_in"), day("air_temperature")
    np.testing.assert_allclose(d.air_temperature_daytime, (sw * t).sum(1) / sw.sum(1), rtol=1e-10)
    assert np.all(d.air_temperature_min <= d.air_temperature_daytime + 1e-12)
    assert np.all(d.air_temperature_daytime <= d.air_temperature_max + 1e-12)
    assert d.to_matrix().shape == (N_DAYS, len(DAILY_FIELDS))
    tree_allclose(jax.jit(daily_forcing)(f), d, rtol=1e-12)


def test_daily_process_run_equals_the_process_model_aggregated():
    params = enf_params()
    f = jax.tree_util.tree_map(lambda x: x[:24 * 5] if jnp.ndim(x) else x, _forcing())
    states, daily = daily_process_run(CoupledModel(), params, f)
    out, final = simulate(params, f, return_state=True)
    np.testing.assert_allclose(daily["gpp"], np.asarray(out.gpp).reshape(5, 24).mean(1), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(daily["et"], np.asarray(out.et).reshape(5, 24).sum(1), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(states[1:, :8], np.asarray(out.soil_water_content)[23::24], rtol=1e-12)
    np.testing.assert_allclose(states[-1], state_to_vector(final), rtol=1e-10)


def test_simulate_vectors_equals_simulate_and_save_load_round_trips(tmp_path):
    emu = _emulator(1.0)
    spec, f = emu.spec, _forcing()
    params = spec.params_from_vector(jnp.asarray(spec.param_space.lower) * 0.6 + jnp.asarray(spec.param_space.upper) * 0.4)
    s0 = CoupledModel().initial_state(params, f)
    out = emu.simulate(params, daily_forcing(f), s0)
    states, fl = emu.simulate_vectors(spec.params_to_vector(params), daily_forcing(f).to_matrix(), state_to_vector(s0))
    np.testing.assert_allclose(fl["nee"], out.nee, rtol=1e-12)
    np.testing.assert_allclose(states[:, :8], out.soil_water_content, rtol=1e-12)
    tree_allclose(emu.simulate_subdaily(params, f), out, rtol=1e-12)
    emu.save(tmp_path / "daily")
    back = DailyCoupledEmulator.load(tmp_path / "daily")
    tree_allclose(back.simulate(params, daily_forcing(f), s0), out, rtol=1e-12)


def test_rollout_loss_weights_default_to_the_unweighted_loss_and_each_weight_acts():
    from emulator.daily_train import FLUXES, LOSS_FLUXES, rollout_loss
    emu = _emulator(0.3)
    spec, net, k = emu.spec, emu.network, 2
    params = enf_params()
    f = _forcing()
    s0 = np.asarray(state_to_vector(CoupledModel().initial_state(params, f)), np.float32)
    rng = np.random.default_rng(4)
    theta = np.asarray([spec.model.get_parameter(params, n) for n in spec.param_space.names], np.float32)
    batch = {"state0": np.stack([s0, s0]), "forcing": np.asarray(daily_forcing(f).to_matrix()[None, :k].repeat(2, 0),
                                                                  np.float32),
             "params": np.stack([theta, theta]), "states": np.broadcast_to(s0, (2, k, s0.size)).astype(np.float32)
             * np.float32(1.01), "fluxes": rng.uniform(0.1, 3.0, (2, k, len(FLUXES))).astype(np.float32)}
    sd = {"fluxes": [1.0] * len(LOSS_FLUXES), "theta": [0.05] * 8, "swe": 1.0, "nee": 2.0}
    loss = lambda w: float(rollout_loss(spec, {}, sd, k, w)(net, batch))       # noqa: E731
    base = loss(None)
    assert np.isfinite(base)
    assert loss({"soil_water_top": 3.0, "nee": 0.0}) == base          # the defaults, stated
    assert loss({"et": 4.0, "nee": 2.0}) != base
    with pytest.raises(KeyError, match="loss_weights"):
        loss({"latent_heat": 1.0})
