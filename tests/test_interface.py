"""One contract for every model (process model or emulator), like bmi-tester for BMI.

Each case gives a model of :class:`process_models.interface.Model`, its parameters and a
short real forcing. The contract: the Protocol is implemented; the parameter table has the
required columns, defaults inside their bounds and names that ``get_parameter`` /
``set_parameters`` round-trip; ``simulate`` returns gpp/reco/nee (umol m-2 s-1) with the
sign convention NEE = Reco - GPP, GPP >= 0, Reco >= 0; ``simulate`` equals the ``lax.scan``
of ``step`` from ``initial_state``; jit equals eager; vmap over an ensemble of parameter
sets equals a loop; gradients of the NEE sum with respect to every table parameter are
finite at seeded points spread over the whole prior box.
"""
from __future__ import annotations

import warnings
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from process_models.interface import (FLUX_OUTPUTS, FLUX_UNITS, PARAMETER_COLUMNS, Model,
                                      output, scan_steps)
from tests.helpers import tree_allclose

N_STEPS = 72        # three days of hourly forcing
N_BOX_POINTS = 3    # seeded points of the prior box for the gradient check


def _slice(forcing, n):
    return jax.tree_util.tree_map(lambda x: x[:n] if jnp.ndim(x) and jnp.shape(x)[0] > n else x,
                                  forcing)


@lru_cache(maxsize=None)
def _vprm_case():
    from process_models.io import park_falls_vprm_forcing
    from process_models.vprm import VPRMModel, VPRMOptions
    forcing = park_falls_vprm_forcing()
    forcing = jax.tree_util.tree_map(lambda x: x[24 * 180:24 * 180 + N_STEPS]
                                     if jnp.ndim(x) and jnp.shape(x)[0] > N_STEPS else x, forcing)
    model = VPRMModel(options=VPRMOptions(mode="smooth"), classes=(3,))
    return model, model.default_params(), forcing


@lru_cache(maxsize=None)
def _coupled_case():
    from tests.coupled._shared import hourly_year
    from process_models.coupled import CoupledModel
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        forcing = hourly_year()
    start = 24 * 170          # June: photosynthesis and transpiration active
    forcing = jax.tree_util.tree_map(lambda x: x[start:start + N_STEPS] if jnp.ndim(x) else x,
                                     forcing)
    model = CoupledModel("ENF", "loam", checkpoint_every=0)
    return model, model.default_params(), forcing


@lru_cache(maxsize=None)
def _vprm_surrogate_case():
    """An untrained VPRM surrogate (random weights): the contract holds for any weights."""
    from emulator.networks import N_VPRM_FEATURES
    from emulator.normalise import Normaliser
    from emulator.surrogate import VPRMSurrogate
    _, params, forcing = _vprm_case()
    cfg = {"hidden": [16, 16], "gpp_head": "light_use", "gpp_scale": 5.0, "reco_scale": 3.0,
           "classes": [3], "feature_normaliser": Normaliser(
               (0.0,) * N_VPRM_FEATURES, (1.0,) * N_VPRM_FEATURES).to_dict()}
    model = VPRMSurrogate.build(cfg, seed=0)
    return model, params, forcing


@lru_cache(maxsize=None)
def _toy_case():
    """The toy bucket model on daily CH-Dav weather of May-July (the coupled case's year)."""
    from emulator.toy import TOY_FORCING, ToyForcing, ToyModel
    from tests.coupled._shared import hourly_year
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hourly = hourly_year()
    start, n = 24 * 120, 24 * N_STEPS
    day = lambda v, how: getattr(np.asarray(getattr(hourly, v))[start:start + n].reshape(N_STEPS, 24), how)(1)
    forcing = ToyForcing(*(jnp.asarray(day(v, "sum" if v == "precipitation" else "mean")) for v in TOY_FORCING))
    model = ToyModel()
    return model, model.default_params(), forcing


@lru_cache(maxsize=None)
def _step_surrogate_case():
    """An untrained step emulator of the toy model (random weights, inputs normalised on a
    run of the model): the contract holds for any weights."""
    from flax import nnx
    from emulator.networks import StepEmulator
    from emulator.normalise import Normaliser
    from emulator.surrogate import StepSurrogate
    from emulator.toy import toy_spec
    model, params, forcing = _toy_case()
    spec = toy_spec()
    _, states = jax.lax.scan(lambda s, f: (model.step(s, f, params)[0],) * 2,
                             model.initial_state(params, forcing), forcing)
    x = np.column_stack([np.asarray(jax.vmap(spec.state_to_vector)(states)),
                         np.asarray(jax.vmap(spec.forcing_to_vector)(forcing)),
                         np.broadcast_to(np.asarray(spec.params_to_vector(params)), (N_STEPS, 6))])
    net = StepEmulator(1, 4, 6, (16, 16), Normaliser.fit(x), state_lower=spec.state_lower,
                       state_upper=spec.state_upper, state_scale=(0.01,), flux_names=spec.flux_names,
                       flux_scale=(5.0, 2.0, 5.0, 2.0, 1.0, 0.1), rngs=nnx.Rngs(0))
    return StepSurrogate(net, spec), params, forcing


@lru_cache(maxsize=None)
def _hybrid_case():
    """The hybrid coupled surrogate with an untrained canopy network (random weights,
    float64 network so that jit and eager agree to round-off)."""
    from flax import nnx
    from emulator.coupled import coupled_spec
    from emulator.hybrid import N_CANOPY_INPUTS, CanopyEmulator, HybridCoupledSurrogate
    from emulator.normalise import Normaliser
    _, params, forcing = _coupled_case()
    spec = coupled_spec(dt_seconds=float(forcing.dt_seconds))
    n_in = N_CANOPY_INPUTS + len(spec.param_space.names)
    x = np.random.default_rng(0).normal(size=(64, n_in))
    x[:, :N_CANOPY_INPUTS - 5] = x[:, :N_CANOPY_INPUTS - 5] * 10 + [10, 300, 8, 90, 410, 2, 0.3]
    scales = (10.0, 1.0, 1e-4, 100.0, 100.0, 1.0)
    net = CanopyEmulator(n_in, (16, 16), Normaliser.fit(x), scales, rngs=nnx.Rngs(0))
    model = HybridCoupledSurrogate(net, spec, {"compute_dtype": "float64"})
    return model, model.default_params(), forcing


@lru_cache(maxsize=None)
def _daily_case():
    """The daily flux-form emulator of the coupled model with an untrained network (random
    weights, computing in float64 like its inputs) on 72 days of CH-Dav daily statistics
    (one step = one day)."""
    from flax import nnx
    from emulator.coupled import coupled_spec
    from emulator.daily import daily_forcing
    from emulator.daily_emulator import DailyCoupledEmulator, DailyNetwork, features
    from emulator.normalise import Normaliser
    from tests.coupled._shared import hourly_year
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hourly = hourly_year()
    start = 24 * 120
    hourly = jax.tree_util.tree_map(lambda x: x[start:start + 24 * N_STEPS] if jnp.ndim(x) else x, hourly)
    spec = coupled_spec(dt_seconds=float(hourly.dt_seconds))
    params, daily = spec.base_params, daily_forcing(hourly)
    s0 = spec.model.initial_state(params, hourly)          # inputs normalised on the case's days
    x = jax.vmap(lambda f: features(s0, f, params, jnp.full(6, 0.5))[0])(daily)
    norm = Normaliser.fit(np.asarray(x), min_std=1.0)
    net = DailyNetwork(len(spec.param_space.names), (16, 16), norm, rngs=nnx.Rngs(0))
    model = DailyCoupledEmulator(net, spec, {"hidden": [16, 16], "input_normaliser": norm.to_dict()})
    return model, params, daily


CASES = {"vprm": _vprm_case, "coupled": _coupled_case, "vprm_surrogate": _vprm_surrogate_case,
         "toy": _toy_case, "step_surrogate": _step_surrogate_case, "coupled_hybrid": _hybrid_case,
         "coupled_daily": _daily_case}


@pytest.fixture(params=sorted(CASES), scope="module")
def case(request):
    return CASES[request.param]()


def test_protocol_and_parameter_table(case):
    model, params, _ = case
    assert isinstance(model, Model)
    hash(model)                                   # usable as a static jit argument
    table = model.parameter_table()
    assert set(PARAMETER_COLUMNS) <= set(table.columns)
    assert (table["lower"] <= table["default"]).all() and (table["default"] <= table["upper"]).all()
    assert table["name"].is_unique and table["unit"].map(lambda u: isinstance(u, str)).all()
    for name, default in zip(table["name"], table["default"]):
        got = np.asarray(model.get_parameter(params, name))
        assert got.shape == () and np.isclose(got, default, rtol=1e-6), name
        new = model.set_parameters(params, {name: 0.5 * default + 0.25})
        assert np.isclose(model.get_parameter(new, name), 0.5 * default + 0.25), name
    with pytest.raises(KeyError):
        model.get_parameter(params, "no_such.parameter")


def test_outputs_units_and_sign_convention(case):
    model, params, forcing = case
    out = model.simulate(params, forcing)
    for v in FLUX_OUTPUTS:
        assert model.output_units[v] == FLUX_UNITS
        x = np.asarray(output(out, v))
        assert x.shape == (N_STEPS,) and np.all(np.isfinite(x)), v
    gpp, reco, nee = (np.asarray(output(out, v)) for v in FLUX_OUTPUTS)
    assert np.all(gpp >= 0) and np.all(reco >= 0)
    np.testing.assert_allclose(nee, reco - gpp, atol=1e-12)
    assert gpp.max() > 1.0                       # a summer forcing: real photosynthesis


def test_simulate_equals_scan_of_step(case):
    model, params, forcing = case
    state0 = model.initial_state(params, forcing)
    _, scanned = scan_steps(model.step, state0, forcing, params)
    tree_allclose(model.simulate(params, forcing, state0), scanned, rtol=1e-10, atol=1e-10)


def test_jit_equals_eager(case):
    model, params, forcing = case
    eager = model.simulate(params, forcing)
    jitted = jax.jit(model.simulate)(params, forcing)
    tree_allclose(eager, jitted, rtol=1e-10, atol=1e-10)


def _ensemble_values(model, n=3):
    table = model.parameter_table()
    rows = table.iloc[: min(len(table), 2)]
    frac = np.linspace(0.3, 0.7, n)
    return {r.name: jnp.asarray(r.lower + frac * (r.upper - r.lower)) for r in rows.itertuples()}


def test_vmap_over_parameter_sets_equals_loop(case):
    model, params, forcing = case
    values = _ensemble_values(model)
    batched = model.set_parameters(params, values)          # leading member axis
    axes = jax.tree_util.tree_map(lambda a, b: 0 if jnp.ndim(a) > jnp.ndim(b) else None,
                                  batched, params)
    ens = jax.vmap(model.simulate, in_axes=(axes, None))(batched, forcing)
    for i in range(3):
        one = model.simulate(model.set_parameters(params, {k: v[i] for k, v in values.items()}),
                             forcing)
        for v in FLUX_OUTPUTS:
            np.testing.assert_allclose(output(ens, v)[i], output(one, v), rtol=1e-9, atol=1e-9)


def test_finite_gradients_over_prior_box(case):
    model, params, forcing = case
    table = model.parameter_table()
    names = list(table["name"])
    lo, hi = table["lower"].to_numpy(float), table["upper"].to_numpy(float)

    @jax.jit
    def loss(theta):
        p = model.set_parameters(params, dict(zip(names, theta)))
        return jnp.sum(output(model.simulate(p, forcing), "nee"))

    grad = jax.jit(jax.grad(loss))
    rng = np.random.default_rng(0)
    points = [table["default"].to_numpy(float)]
    points += [lo + (0.02 + 0.96 * rng.random(lo.size)) * (hi - lo) for _ in range(N_BOX_POINTS)]
    for theta in points:
        g = np.asarray(grad(jnp.asarray(theta)))
        bad = [n for n, gi in zip(names, g) if not np.isfinite(gi)]
        assert not bad, f"non-finite gradient for {bad} at {dict(zip(names, theta))}"
    assert np.any(np.abs(np.asarray(grad(jnp.asarray(points[0])))) > 0)
