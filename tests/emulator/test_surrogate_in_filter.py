"""The assimilation code takes the hybrid emulator unchanged: the same ensemble-filter call,
with the one adapter ``interface_forecast`` from a model's step to a filter cycle,
propagates members with ``coupled.step`` or with ``HybridCoupledSurrogate.step`` (the one
model interface), and in both the analysis pulls top-layer soil water towards the data."""
import numpy as np
import pytest

import jax
import jax.numpy as jnp

coupled = pytest.importorskip("process_models.coupled")

from assimilation.ensemble import ETKF, ensemble_filter, interface_forecast  # noqa: E402
from assimilation.observations import Observations  # noqa: E402
from emulator.coupled import coupled_spec  # noqa: E402

from .test_hybrid import random_surrogate  # noqa: E402

N_MEMBERS, CYCLES, STEPS = 6, 3, 4
TRUE_TOP_SWC = 0.20


@pytest.fixture(scope="module")
def problem():
    spec = coupled_spec()
    r = np.random.default_rng(1)
    t = CYCLES * STEPS
    hours = np.arange(t) / 2.0 + 8.0
    cosz = np.clip(np.sin(np.pi * (hours % 24 - 6) / 12), 0, None)
    F = np.column_stack([15 + 5 * cosz, 700 * cosz, 5 + 10 * cosz, np.zeros(t), np.full(t, 95.0),
                         np.full(t, 410.0), np.full(t, 2.0), cosz])
    lo, hi = np.array(spec.param_space.lower), np.array(spec.param_space.upper)
    params = spec.params_from_vector(jnp.asarray((lo + hi) / 2))
    forcing = spec.forcing_from_matrix(jnp.asarray(F))
    per_cycle = jax.tree.map(lambda a: a.reshape((CYCLES, STEPS) + a.shape[1:]), forcing)
    n = params.n_layers
    theta = jnp.asarray(0.24 + 0.04 * r.standard_normal((N_MEMBERS, 1)) * np.ones((1, n)))
    ensemble = jax.vmap(lambda th: coupled.initial_state(params, forcing, theta=th))(theta)
    obs = Observations.from_arrays(np.full((CYCLES, 1), TRUE_TOP_SWC), 0.01 ** 2,
                                   names=("soil_water_content_top",), units=("m3 m-3",))
    return spec, params, per_cycle, ensemble, obs


@pytest.mark.parametrize("which", ["process_model", "hybrid_emulator"])
def test_filter_takes_process_model_or_emulator_unchanged(problem, which):
    spec, params, per_cycle, ensemble, obs = problem
    step = coupled.step if which == "process_model" else random_surrogate(spec, 5).step
    res = ensemble_filter(jax.random.key(0), interface_forecast(step, params=params), ensemble, obs,
                          lambda m: m.soil_water_content[:1], method=ETKF(), inputs=per_cycle)
    fc = np.asarray(res.forecast_mean.soil_water_content[:, 0])
    an = np.asarray(res.analysis_mean.soil_water_content[:, 0])
    assert np.all(np.isfinite(an)) and int(np.sum(res.n_failed)) == 0
    # the analysis moves the top layer towards the observed 0.20 at every cycle
    assert np.all(np.abs(an - TRUE_TOP_SWC) < np.abs(fc - TRUE_TOP_SWC))
    # and the analysis spread shrinks below the forecast spread
    assert np.all(np.asarray(res.analysis_spread.soil_water_content[:, 0])
                  < np.asarray(res.forecast_spread.soil_water_content[:, 0]))
