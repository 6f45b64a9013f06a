"""Step emulator on the stateful toy model: generation, water balance, rollouts."""
import numpy as np
import pytest

import jax
import jax.numpy as jnp

from emulator.design import sample
from emulator.generate import ChunkedDataset, generate_trajectories, simulate_vectors
from emulator.toy import (DEPTH_MM, THETA_R, THETA_S, TOY_SPACE, toy_spec, toy_step,
                          toy_water_balance)
from emulator.train import TrainConfig, train_step_emulator

_ADAM = "optax.adam's bias correction raises a Python float to its int32 step count"


def _forcing(n, t, seed=0):
    r = np.random.default_rng(seed)
    d = np.arange(t)[None, :] + r.integers(0, 365, (n, 1))
    season = np.sin(2 * np.pi * d / 365)
    rain = r.exponential(4.0, (n, t)) * (r.random((n, t)) < 0.4)
    return np.stack([8 + 10 * season, 160 + 110 * season, 5 + 4 * season, rain], -1)


@pytest.fixture(scope="module")
def toy_data(tmp_path_factory):
    p = sample(TOY_SPACE, 24, seed=0)
    f = _forcing(24, 60)
    d = generate_trajectories(tmp_path_factory.mktemp("toy") / "d", toy_spec(), p, f,
                              trajectories_per_chunk=8, progress=False)
    return d, p, f


def test_stored_trajectories_are_model_steps_and_conserve_water(toy_data):
    d, p, f = toy_data
    states, forcing, params, fluxes = ChunkedDataset(d, variables=("states", "forcing", "params", "fluxes")).concat()
    np.testing.assert_array_equal(params, p)
    # one-step consistency at random (trajectory, time) pairs
    r = np.random.default_rng(1)
    for i, t in zip(r.integers(0, 24, 5), r.integers(0, 60, 5)):
        s1, fl = toy_step(jnp.asarray(states[i, t]), jnp.asarray(forcing[i, t]), jnp.asarray(params[i]))
        np.testing.assert_allclose(s1, states[i, t + 1], rtol=1e-12)
        np.testing.assert_allclose(fl, fluxes[i, t], rtol=1e-12, atol=1e-14)
    # water balance: Z dtheta = P - ET - D - R (mm), exact while theta stays above the floor
    fd = {"et": fluxes[..., 3], "drainage": fluxes[..., 4], "runoff": fluxes[..., 5]}
    res = toy_water_balance(states[:, :-1], states[:, 1:], forcing, fd)
    assert np.all(states > THETA_R + 0.01) and np.max(np.abs(res)) < 1e-9
    assert np.all(states <= THETA_S + 1e-12)
    np.testing.assert_allclose(fluxes[..., 2], fluxes[..., 1] - fluxes[..., 0], atol=1e-12)


@pytest.mark.standard_promotion(_ADAM)
def test_step_emulator_trains_and_rolls_out_within_bounds(toy_data, tmp_path):
    d, p, f = toy_data
    spec = toy_spec()
    cfg = TrainConfig(steps=60, batch_size=64, learning_rate=1e-2, warmup_steps=5, eval_every=20,
                      checkpoint_every=1000, patience=100, progress=False)
    sur, res = train_step_emulator(d, spec, hidden=(16,), window=4, config=cfg, water_balance_weight=0.1)
    losses = [float(r["val_loss"]) for r in res.history]
    assert losses[-1] < 0.8 * losses[0]                         # the rollout loss is learnt
    # free 1-year rollout (lax.scan) with extreme rain: soil water stays in its bounds
    f_year = _forcing(1, 365, seed=5)[0]
    f_year[100:110, 3] = 200.0
    p32, f32 = jnp.asarray(p[0], jnp.float32), jnp.asarray(f_year, jnp.float32)
    states, fluxes = jax.jit(sur.simulate_vectors)(p32, f32, jnp.full((1,), 0.3, jnp.float32))
    s = np.asarray(states)
    assert s.shape == (365, 1) and np.all((s >= THETA_R) & (s <= THETA_S))
    assert np.all(np.asarray(fluxes["et"]) >= 0) and np.all(np.asarray(fluxes["gpp"]) >= 0)
    # the model interface (the toy model's pytrees and outputs) gives the same trajectory
    params = spec.params_from_vector(jnp.asarray(p[0]))          # float64: the network computes in it
    forcing = spec.forcing_from_matrix(jnp.asarray(f_year))
    out = jax.jit(sur.simulate)(params, forcing)
    assert set(out) == set(spec.model.simulate(params, forcing))           # the model's outputs
    np.testing.assert_allclose(np.asarray(out["gpp"]), np.asarray(fluxes["gpp"]), rtol=1e-4)
    st = sur.initial_state(params, forcing)
    for t in range(3):
        st, _ = sur.step(st, jax.tree.map(lambda a: a[t], forcing), params)
    np.testing.assert_allclose(np.asarray(st.soil_water_content), s[2, 0], rtol=1e-5)
