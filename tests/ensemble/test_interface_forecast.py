"""Filters through the model interface: ``interface_forecast`` of ``CoupledModel.step``
with log-multipliers (``LogMultipliers`` over a ``ParameterSubset``) and cycle means
(``CycleMeans``) equals a hand-written forecast of the same cycle to round-off; an
``augmented_model`` of a step returning ``(state, outputs)`` equals the state-only step;
``ensemble_filter`` with ``Observations`` equals the array call; observation operators
moved to ``assimilation.operators`` (calibration re-exports them)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from assimilation.ensemble import (Augmented, CycleInputs, ETKF, LogMultipliers,
                                   augmented_model, cycle_windows, ensemble_filter,
                                   interface_forecast, log_factor_bounds, member_vector)
from assimilation.observations import Observations
from assimilation.operators import (CycleMeans, soil_water_at_depth, window_mean,
                                    window_mean_observations)
from assimilation.toy_models import lorenz96

from ..helpers import tree_allclose

coupled = pytest.importorskip("process_models.coupled")

N, CYCLES, STEPS = 6, 3, 4
GROUPS = {"vcmax25": {"leaf.vcmax25": 1.0}, "g1": {"leaf.g1": 1.0},
          "rh": {"carbon.tau_litter": -1.0, "carbon.tau_soil_fast": -1.0,
                 "carbon.tau_soil_slow": -1.0}}


def _forcing(t):
    h = np.arange(t) / 2.0 + 8.0
    cosz = np.clip(np.sin(np.pi * (h % 24 - 6) / 12), 0, None)
    a = lambda v: jnp.asarray(np.broadcast_to(np.asarray(v, float), (t,)))  # noqa: E731
    return coupled.CoupledForcing(air_temperature=a(15 + 5 * cosz), shortwave_in=a(700 * cosz),
                                  vpd=a(5 + 10 * cosz), precipitation=a(np.r_[2.0, np.zeros(t - 1)]),
                                  air_pressure=a(95.0), co2=a(410.0), wind_speed=a(2.0),
                                  cos_zenith=a(cosz), lai=None, dt_seconds=1800.0)


def _hand_written(params, thickness, record_cols):
    """The forecast as the studies wrote it before the adapter."""
    centres = np.concatenate([[0.0], np.cumsum(thickness)[:-1]]) + 0.5 * np.asarray(thickness)

    def model(member, inputs):
        f, w = inputs
        m = jnp.exp(member.params)
        c = params.carbon
        p = params.replace(leaf=params.leaf.replace(vcmax25=params.leaf.vcmax25 * m[0],
                                                    g1=params.leaf.g1 * m[1]),
                           carbon=c.replace(tau_litter=c.tau_litter / m[2],
                                            tau_soil_fast=c.tau_soil_fast / m[2],
                                            tau_soil_slow=c.tau_soil_slow / m[2]))

        def body(s, f_t):
            s, o = coupled.step(s, f_t, p)
            return s, (o.nee, o.gpp, jnp.interp(0.15, centres, o.soil_water_content))

        s, (nee, gpp, swc) = jax.lax.scan(body, member.state, f)
        sw = jnp.sum(w[:, 0])
        nee_obs = jnp.where(sw > 0, jnp.sum(nee * w[:, 0]) / jnp.maximum(sw, 1.0), nee.mean())
        return Augmented(s, member.params, jnp.stack([nee_obs, gpp.mean(), swc.mean()]))
    return model


@pytest.fixture(scope="module")
def coupled_problem():
    model = coupled.CoupledModel("ENF", "loam")
    params = model.default_params()
    forcing = _forcing(CYCLES * STEPS)
    r = np.random.default_rng(0)
    state0 = model.initial_state(params, forcing)
    states = jax.tree_util.tree_map(lambda a: jnp.broadcast_to(a, (N,) + jnp.shape(a)), state0)
    theta = jnp.asarray(state0.soil_water_content * np.exp(0.1 * r.standard_normal((N, 1))))
    ens = Augmented(states.replace(soil_water_content=theta),
                    jnp.asarray(0.2 * r.standard_normal((N, 3))), jnp.zeros((N, 3)))
    weights = jnp.asarray((r.random((CYCLES, STEPS, 1)) < 0.6).astype(float))
    y = np.array([[-3.0, 0.3], [np.nan, 0.29], [-4.0, np.nan]])
    obs = Observations.from_arrays(y, np.array([1.0, 0.02 ** 2]), names=("nee", "swc"))
    return model, params, ens, (cycle_windows(forcing, STEPS), weights), obs


def test_adapter_equals_hand_written_forecast(coupled_problem):
    model, params, ens, (windows, weights), obs = coupled_problem
    mult = LogMultipliers.from_groups(model, GROUPS)
    record = CycleMeans((("nee_at_obs", "nee", 0), ("gpp", "gpp", None),
                         ("swc", "soil_water_content", None)),
                        tuple(np.asarray(params.layer_thickness)), 0.15)
    fc = interface_forecast(model, subset=mult, record=record)
    ref = _hand_written(params, np.asarray(params.layer_thickness), None)
    one = jax.tree_util.tree_map(lambda a: a[0], ens)
    f0 = jax.tree_util.tree_map(lambda a: a[0], windows)
    tree_allclose(fc(one, CycleInputs(f0, weights[0])), ref(one, (f0, weights[0])),
                  rtol=1e-12, atol=1e-13)
    h = lambda m: m.record[jnp.array([0, 2])]  # noqa: E731
    kw = dict(method=ETKF(), rtps=member_vector(one, 0.5, 0.2, 0.0), store=True,
              model_noise=member_vector(one, state_fields={"soil_water_content": 0.002}))
    a = ensemble_filter(jax.random.key(0), fc, ens, obs, h,
                        inputs=CycleInputs(windows, weights), **kw)
    b = ensemble_filter(jax.random.key(0), ref, ens, obs.with_nan(), obs.variance, h,
                        inputs=(windows, weights), **kw)
    tree_allclose(a.analysis_mean, b.analysis_mean, rtol=1e-9, atol=1e-12)
    tree_allclose(a.forecast_spread, b.forecast_spread, rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(a.log_likelihood, b.log_likelihood, rtol=1e-10)
    assert np.all(np.asarray(a.analysis_spread.params[-1]) < 0.2 * 1.5)


def test_log_multiplier_bounds_from_the_table(coupled_problem):
    model = coupled_problem[0]
    mult = LogMultipliers.from_groups(model, dict(GROUPS, psi={"roots.psi_close": 1.0}))
    b = mult.bounds()
    # vcmax25 10-150 (default 62.5), g1 0.5-10 (2.35), psi_close -500..-150 (-255)
    np.testing.assert_allclose(b[[0, 1, 3]], np.log([[10 / 62.5, 150 / 62.5],
                                                     [0.5 / 2.35, 10 / 2.35],
                                                     [150 / 255, 500 / 255]]), rtol=1e-12)
    # Rh: turnover times x exp(-m) inside all three boxes (litter 0.2-5 of 1, slow 50-2000 of 200)
    np.testing.assert_allclose(b[2], [-np.log(5.0), np.log(4.0)], rtol=1e-12)
    np.testing.assert_allclose(log_factor_bounds(mult.subset)[0], b[0])


def _l96_problem(T=20, N=12, seed=0):
    x0 = lorenz96.integrate(lorenz96.initial_state(40, dtype=jnp.float64), 500)
    k1, k2 = jax.random.split(jax.random.key(seed))
    step = lambda x, _, F: lorenz96.step(x, 0.05, F)  # noqa: E731
    truth = jax.lax.scan(lambda x, _: (step(x, None, 8.0),) * 2, x0, None, length=T)[1]
    ys = np.array(truth + jax.random.normal(k1, truth.shape))
    ys[3:6, ::3] = np.nan
    E0 = Augmented(x0 + jax.random.normal(k2, (N, 40)), jnp.linspace(9.0, 9.5, N))
    return step, ys, E0


def test_augmented_model_with_interface_step_and_record():
    step, ys, E0 = _l96_problem()
    step2 = lambda x, f, F: (lambda s: (s, {"mean": s.mean()}))(step(x, f, F))  # noqa: E731
    h = lambda m: m.state  # noqa: E731
    a = ensemble_filter(jax.random.key(0), augmented_model(step), E0, jnp.asarray(ys),
                        jnp.ones(40), h)
    b = ensemble_filter(jax.random.key(0), augmented_model(step2), E0, jnp.asarray(ys),
                        jnp.ones(40), h)
    tree_allclose(a.analysis_mean, b.analysis_mean, rtol=0, atol=0)
    # with a record: the forecast keeps the output, the state part is unchanged
    E1 = Augmented(E0.state, E0.params, jnp.zeros(E0.params.shape))
    c = ensemble_filter(jax.random.key(0), augmented_model(step2, lambda o: o["mean"]), E1,
                        jnp.asarray(ys), jnp.ones(40), h, store=True)
    np.testing.assert_allclose(c.analysis_mean.state, a.analysis_mean.state, rtol=1e-10, atol=1e-12)
    fe = np.asarray(c.forecast_ensembles)             # (T, N, 40 + 1 + 1): state, F, record
    np.testing.assert_allclose(fe[:, :, -1], fe[:, :, :40].mean(-1), rtol=1e-12)
    # a bare-state member through the adapter with fixed parameters and no forcing
    d = ensemble_filter(jax.random.key(0), interface_forecast(step, params=8.0, n_substeps=1),
                        E0.state, jnp.asarray(ys), jnp.ones(40), lambda x: x)
    e = ensemble_filter(jax.random.key(0), lambda x, _: step(x, None, 8.0), E0.state,
                        jnp.asarray(ys), jnp.ones(40), lambda x: x)
    tree_allclose(d.analysis_mean, e.analysis_mean, rtol=1e-12, atol=1e-12)


def test_ensemble_filter_with_observations_equals_arrays():
    step, ys, E0 = _l96_problem()
    var = np.broadcast_to(np.linspace(0.5, 1.5, 40), ys.shape)
    obs = Observations.from_arrays(ys, var)
    model = augmented_model(step)
    h = lambda m: m.state  # noqa: E731
    a = ensemble_filter(jax.random.key(1), model, E0, obs, h, inflation=1.02)
    b = ensemble_filter(jax.random.key(1), model, E0, jnp.asarray(ys), jnp.asarray(var), h,
                        inflation=1.02)
    c = ensemble_filter(jax.random.key(1), model, E0, obs, obs_operator=h, inflation=1.02)
    for r in (b, c):
        tree_allclose(a.analysis_mean, r.analysis_mean, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(a.log_likelihood, r.log_likelihood, rtol=1e-12)
    # an extra mask of zeros is a free run; obs_var next to Observations is an error
    free = ensemble_filter(jax.random.key(1), model, E0, obs, h, obs_mask=jnp.zeros(ys.shape))
    np.testing.assert_array_equal(free.log_likelihood, 0.0)
    with pytest.raises(TypeError, match="obs_var"):
        ensemble_filter(jax.random.key(1), model, E0, obs, jnp.ones(40), h)


def test_operators_moved_and_window_means():
    import assimilation.calibration as cal
    import assimilation.operators as ops
    for name in ("PeriodMean", "period_mean", "period_mean_observations", "soil_water_at_depth"):
        assert getattr(cal, name) is getattr(ops, name)
    dz = np.array([0.05, 0.1, 0.15, 0.2])
    centres = np.cumsum(dz) - dz / 2
    theta = np.array([[0.30, 0.28, 0.25, 0.22], [0.2, 0.21, 0.22, 0.23]])
    for depth in (0.07, 0.15, 0.3):
        np.testing.assert_allclose(soil_water_at_depth(theta, dz, depth),
                                   [np.interp(depth, centres, t) for t in theta], rtol=1e-14)
    x = np.array([1.0, 2.0, 3.0, 4.0])
    assert float(window_mean(x)) == 2.5
    assert float(window_mean(x, np.array([0, 1, 1, 0.0]))) == 2.5
    assert float(window_mean(x, np.array([0, 0, 0, 1.0]))) == 4.0
    assert float(window_mean(x, np.zeros(4))) == 2.5      # no measured step: plain mean
    v = np.array([1.0, np.nan, 3.0, np.nan, np.nan, np.nan, 5.0])
    means, sd, w = window_mean_observations(v, 3, sigma=np.full(7, 2.0), min_count=2)
    np.testing.assert_allclose(means, [2.0, np.nan], equal_nan=True)
    np.testing.assert_allclose(sd, [np.sqrt(8.0) / 2, 0.0])
    np.testing.assert_array_equal(w, [[1, 0, 1], [0, 0, 0]])
