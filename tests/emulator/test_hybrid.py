"""Hybrid coupled emulator (emulated canopy, exact water/carbon bookkeeping): exactness
with the true canopy, conservation and bounds for any weights, vmap x scan, save/load."""
import numpy as np
import pytest

import jax
import jax.numpy as jnp
from flax import nnx

coupled = pytest.importorskip("process_models.coupled")

from emulator.coupled import coupled_spec  # noqa: E402
from emulator.hybrid import (N_CANOPY_INPUTS, CanopyEmulator, HybridCoupledSurrogate,  # noqa: E402
                             canopy_inputs, exact_canopy, hybrid_step)
from emulator.normalise import Normaliser  # noqa: E402

T = 96


@pytest.fixture(scope="module")
def setup():
    spec = coupled_spec()
    r = np.random.default_rng(0)
    hours = np.arange(T) / 2.0
    cosz = np.clip(np.sin(np.pi * (hours % 24 - 6) / 12), 0, None)
    # cold first day (snow), heavy rain bursts (saturation excess), hot dry afternoons
    temp = np.where(hours < 24, -4.0, 18.0) + 8 * cosz
    rain = r.exponential(4.0, T) * (r.random(T) < 0.25)
    F = np.column_stack([temp, 900 * cosz, 2 + 25 * cosz, rain, np.full(T, 85.0), np.full(T, 410.0),
                         np.full(T, 2.0), cosz])
    lo, hi = np.array(spec.param_space.lower), np.array(spec.param_space.upper)
    P = lo + (hi - lo) * r.random((2, len(lo)))
    return spec, jnp.asarray(F), jnp.asarray(P)


def random_surrogate(spec, seed, gain=1.0):
    """A hybrid surrogate with random (untrained) weights; ``gain`` scales the output layer."""
    n_in = N_CANOPY_INPUTS + len(spec.param_space.names)
    x = np.random.default_rng(seed).normal(size=(64, n_in))
    net = CanopyEmulator(n_in, (16, 16), Normaliser.fit(x), (10.0, 1.0, 1e-4, 100.0, 100.0, 1.0), rngs=nnx.Rngs(seed))
    net.mlp.out.kernel[...] = net.mlp.out.kernel[...] * 100.0 * gain
    return HybridCoupledSurrogate(net, spec, {"kind": "coupled_hybrid", "hidden": [16, 16], "n_in": n_in,
                                              "input_normaliser": Normaliser.fit(x).to_dict(),
                                              "scales": [10.0, 1.0, 1e-4, 100.0, 100.0, 1.0], "spec": {}})


def test_hybrid_step_with_exact_canopy_is_the_process_model(setup):
    spec, F, P = setup
    pt = spec.params_from_vector(P[0])
    f = spec.forcing_from_matrix(F)
    s0 = spec.initial_state(pt, f)
    a = jax.lax.scan(lambda s, x: coupled.step(s, x, pt), s0, f)
    b = jax.lax.scan(lambda s, x: hybrid_step(exact_canopy, s, x, pt), s0, f)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(y), np.asarray(x), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("seed", [0, 2])
def test_water_and_carbon_close_and_states_stay_bounded_for_random_weights(setup, seed):
    spec, F, P = setup
    sur = random_surrogate(spec, seed, gain=1.0 + 4.0 * seed)
    s0 = jax.vmap(lambda p: spec.state_to_vector(spec.initial_state(spec.params_from_vector(p),
                                                                     spec.forcing_from_matrix(F))))(P)
    Fb = jnp.broadcast_to(F, (2,) + F.shape)
    states, fl = jax.jit(jax.vmap(sur.simulate_vectors))(P, Fb, s0)     # vmap over members x lax.scan
    states = np.asarray(states)
    assert states.shape == (2, T, len(spec.state_names)) and np.all(np.isfinite(states))
    prev = np.concatenate([np.asarray(s0)[:, None], states[:, :-1]], 1)
    fd = {k: np.asarray(v) for k, v in fl.items()}
    wb = np.asarray(spec.water_balance(prev, states, np.asarray(Fb), fd))
    assert np.max(np.abs(wb)) < 1e-9                                     # mm per step
    soil = [i for i, n in enumerate(spec.state_names) if n.startswith("soil_water_content")]
    theta = states[..., soil]
    assert theta.min() >= spec.state_lower[0] - 1e-12 and theta.max() <= spec.state_upper[0] + 1e-12
    assert np.all(fd["gpp"] >= 0) and np.all(fd["reco"] >= 0) and np.all(fd["et"] >= -1e-12)
    np.testing.assert_allclose(fd["nee"], fd["reco"] - fd["gpp"], atol=1e-12)
    # carbon: d(pools) = (GPP - Reco) dt, g C m-2 (12.011e-6 g C per umol)
    pools = [i for i, n in enumerate(spec.state_names) if n.startswith("carbon_")]
    dpool = states[..., pools].sum(-1) - prev[..., pools].sum(-1)
    np.testing.assert_allclose(dpool, -fd["nee"] * 1800.0 * 12.011e-6, atol=1e-9, rtol=1e-6)
    assert np.all(fd["gpp"][:, np.asarray(F[:, 1]) <= 0] == 0)            # no light, no GPP


def test_drop_in_simulate_and_save_load_roundtrip(setup, tmp_path):
    spec, F, P = setup
    sur = random_surrogate(spec, 3)
    pt = spec.params_from_vector(P[1])
    f = spec.forcing_from_matrix(F[:24])
    out = jax.jit(sur.simulate)(pt, f)                  # same pytrees in/out as coupled.simulate
    ref = coupled.simulate(pt, f)
    assert type(out) is type(ref) and out.gpp.shape == ref.gpp.shape
    sur.save(tmp_path / "hyb")
    back = HybridCoupledSurrogate.load(tmp_path / "hyb", spec)
    out2 = jax.jit(back.simulate)(pt, f)
    for a, b in zip(jax.tree.leaves(out), jax.tree.leaves(out2)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    x = canopy_inputs(jax.tree.map(lambda a: a[0], f), jnp.asarray(2.0), jnp.asarray(0.8), P[1])
    assert x.shape == (N_CANOPY_INPUTS + P.shape[1],)


def test_state_layout_is_derived_from_the_model(setup):
    spec, F, P = setup
    pt = spec.params_from_vector(P[0])
    s = spec.initial_state(pt, spec.forcing_from_matrix(F))
    v = spec.state_to_vector(s)
    assert v.shape == (sum(np.size(x) for x in jax.tree.leaves(s)),)
    assert len(spec.state_names) == v.shape[0] == len(spec.state_lower)
    back = spec.state_from_vector(v.astype(jnp.float32))
    assert jax.tree.structure(back) == jax.tree.structure(s)
    assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(back))      # keeps the vector's precision
    np.testing.assert_array_equal(np.asarray(spec.state_to_vector(spec.state_from_vector(v))), np.asarray(v))
