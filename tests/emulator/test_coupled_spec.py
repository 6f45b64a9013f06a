"""The coupled-model adapter of the step emulator (slow: the coupled model compiles ~40 s)."""
import numpy as np
import pytest

import jax
import jax.numpy as jnp

coupled = pytest.importorskip("process_models.coupled")

from emulator.coupled import coupled_spec  # noqa: E402
from emulator.design import sample  # noqa: E402
from emulator.generate import simulate_vectors  # noqa: E402


@pytest.mark.slow
def test_coupled_spec_roundtrips_and_closes_the_water_balance():
    spec = coupled_spec()
    p = sample(spec.param_space, 2, seed=0)
    r = np.random.default_rng(0)
    t = 96
    hours = np.arange(t) / 2.0
    cosz = np.clip(np.sin(np.pi * (hours % 24 - 6) / 12), 0, None)
    F = np.column_stack([10 + 5 * cosz, 800 * cosz, 5 + 5 * cosz, r.exponential(0.5, t) * (r.random(t) < 0.2),
                         np.full(t, 85.0), np.full(t, 410.0), np.full(t, 2.0), cosz])
    F = np.broadcast_to(F, (2, t, 8))
    states, fluxes = (np.asarray(a) for a in jax.jit(lambda a, b: simulate_vectors(spec, a, b))(jnp.asarray(p), jnp.asarray(F)))
    assert states.shape == (2, t + 1, len(spec.state_names)) and fluxes.shape == (2, t, 6)
    assert len(spec.state_names) >= 16 and spec.state_names[:8] == tuple(f"soil_water_content_{i}" for i in range(8))
    # the vector path is the process model's own simulate
    pt = spec.params_from_vector(jnp.asarray(p[0]))
    out = coupled.simulate(pt, spec.forcing_from_matrix(jnp.asarray(F[0])))
    np.testing.assert_allclose(fluxes[0, :, 0], np.asarray(out.gpp), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(states[0, 1:, :8], np.asarray(out.soil_water_content), rtol=1e-9)
    # conversions are inverse of each other
    s = spec.state_from_vector(jnp.asarray(states[0, 5]))
    np.testing.assert_array_equal(np.asarray(spec.state_to_vector(s)), states[0, 5])
    np.testing.assert_allclose(np.asarray(spec.params_to_vector(pt)), p[0], rtol=1e-12)
    fd = {k: fluxes[..., i] for i, k in enumerate(spec.flux_names)}
    assert np.max(np.abs(spec.water_balance(states[:, :-1], states[:, 1:], F, fd))) < 1e-9
    np.testing.assert_allclose(fd["nee"], fd["reco"] - fd["gpp"], atol=1e-12)
