"""The assembled model on real CH-Dav forcing: water and carbon closure, bounds, heavy rain,
drought response, gradients, vmap/loop and jit/eager equivalence."""
import jax
import jax.numpy as jnp
from jax.flatten_util import ravel_pytree
import numpy as np
import pytest

from process_models.coupled import (CoupledState, initial_state, load_parameters,
                                    parameter_table, set_parameters, simulate, step)
from process_models.coupled.params import G_C_PER_UMOL_CO2
from process_models.coupled.soil_water import field_capacity, water_storage

from ._shared import (batched_step, enf_params, heavy_rain_forcing, hourly_year, run_year,
                      year_run)


def _water_residual(forcing, out, final, start, params):
    """P - ET - runoff - drainage - d(soil water + snow + canopy water), mm over the run."""
    d_store = (water_storage(final.soil_water_content, params.layer_thickness)
               - water_storage(start.soil_water_content, params.layer_thickness)
               + final.snow_water_equivalent - start.snow_water_equivalent
               + final.canopy_water - start.canopy_water)
    return float(jnp.sum(forcing.precipitation) - jnp.sum(out.et) - jnp.sum(out.runoff)
                 - jnp.sum(out.drainage) - d_store)


def _carbon_residual(forcing, out, final, start):
    conv = G_C_PER_UMOL_CO2 * forcing.dt_seconds
    return float(jnp.sum((out.gpp - out.ra - out.rh) * conv)
                 - (final.carbon.total() - start.carbon.total()))


def test_water_and_carbon_close_over_a_real_year():
    f = hourly_year()
    out, final, start = year_run()
    p = enf_params()
    assert f.n_steps == 8760
    assert abs(_water_residual(f, out, final, start, p)) < 1e-8       # mm / yr (P ~ 1070 mm)
    assert abs(_carbon_residual(f, out, final, start)) < 1e-8         # g C m-2 / yr
    theta = np.asarray(out.soil_water_content)
    assert np.all(theta >= float(p.soil.theta_res) - 1e-12)
    assert np.all(theta <= float(p.soil.theta_sat) + 1e-12)
    for name in ("gpp", "reco", "ra", "rh", "et", "runoff", "drainage", "lai"):
        v = np.asarray(getattr(out, name))
        assert np.all(np.isfinite(v)) and np.all(v >= -1e-12), name
    np.testing.assert_allclose(out.nee, out.reco - out.gpp, atol=1e-12)
    # plausible magnitudes for a subalpine spruce forest (GPP ~ 1000-3000 g C m-2 yr-1)
    conv = G_C_PER_UMOL_CO2 * 3600.0
    assert 800 < float(out.gpp.sum()) * conv < 3500
    assert 200 < float(out.et.sum()) < 1000


def test_water_closes_with_synthetic_storms():
    f = heavy_rain_forcing()
    out, final, start = run_year(f)
    p = enf_params()
    assert float(f.precipitation.max()) >= 50.0
    assert abs(_water_residual(f, out, final, start, p)) < 1e-8
    theta = np.asarray(out.soil_water_content)
    assert np.all(np.isfinite(theta))
    assert np.all(theta <= float(p.soil.theta_sat) + 1e-12)
    assert float(out.runoff.sum()) > 0.0


def test_initial_state_field_capacity_and_steady_pools():
    p, f = enf_params(), hourly_year()
    s0 = initial_state(p, f)
    np.testing.assert_allclose(s0.soil_water_content, field_capacity(p.soil), rtol=1e-12)
    lai = float(p.carbon.sla * s0.carbon.leaf)
    np.testing.assert_allclose(lai, float(p.carbon.initial_lai), rtol=1e-12)


def test_drier_soil_lowers_stress_and_gpp():
    """Same summer-noon forcing, soil from field capacity to wilting: beta_t and GPP fall."""
    p, f = enf_params(), hourly_year()
    i = int(np.argmax(np.asarray(f.shortwave_in)[4000:5000])) + 4000          # a sunny summer hour
    f_t = jax.tree_util.tree_map(lambda x: x[i], f)
    s0 = initial_state(p, f)
    thetas = jnp.linspace(float(field_capacity(p.soil)), 0.06, 9)
    states = jax.vmap(lambda th: s0.replace(soil_water_content=jnp.full(p.n_layers, th)))(thetas)
    _, out = batched_step(states, f_t, p)
    beta, gpp = np.asarray(out.water_stress), np.asarray(out.gpp)
    assert np.all(np.diff(beta) <= 1e-12) and np.all(np.diff(gpp) <= 1e-9)
    assert beta[0] > 0.99 and beta[-1] < 0.01
    assert gpp[0] > 5.0 and gpp[-1] < 0.1 * gpp[0]
    assert np.all(np.diff(np.asarray(out.transpiration)) <= 1e-12)


def _ten_days():
    """250 hourly summer steps: 10 daily checkpoint chunks + a 10-step remainder."""
    return jax.tree_util.tree_map(lambda x: x[4000:4250], hourly_year())


def test_vmap_equals_loop_over_members():
    """vmap over 3 parameter sets (chunked checkpointed scan with a remainder) equals a
    loop of single runs with a plain scan (checkpoint_every=0)."""
    f = _ten_days()
    base = enf_params()
    values = {"soil.b": [4.0, 5.39, 8.0], "leaf.vcmax25": [40.0, 62.5, 90.0],
              "carbon.tau_litter": [0.5, 1.0, 2.0]}
    members = [set_parameters(base, {k: v[m] for k, v in values.items()}) for m in range(3)]
    stacked = jax.tree_util.tree_map(lambda *x: jnp.stack(x), *members)
    batched = jax.vmap(simulate, in_axes=(0, None))(stacked, f)
    for m, params in enumerate(members):
        single = simulate(params, f, checkpoint_every=0)
        for name in ("nee", "et", "soil_water_content", "total_carbon"):
            np.testing.assert_allclose(getattr(batched, name)[m], getattr(single, name),
                                       rtol=1e-9, atol=1e-12, err_msg=f"{name}, member {m}")
    assert float(jnp.std(batched.nee.mean(axis=1))) > 0          # members differ


def test_jit_equals_eager_steps():
    p, f = enf_params(), hourly_year()
    out_jit, _, start = year_run()
    state = start
    with jax.disable_jit():
        for i in range(2):
            state, o = step(state, jax.tree_util.tree_map(lambda x: x[i], f), p)
            for name in ("gpp", "nee", "et", "drainage"):
                np.testing.assert_allclose(getattr(o, name), getattr(out_jit, name)[i],
                                           rtol=1e-10, atol=1e-13)
            np.testing.assert_allclose(o.soil_water_content, out_jit.soil_water_content[i],
                                       rtol=1e-12)


def _random_params(table, base, rng):
    """A point drawn uniformly from the [lower, upper] box of every calibratable parameter."""
    values = {}
    for _, r in table.iterrows():
        lo, hi = float(r["lower"]), float(r["upper"])
        if hi > lo:
            values[r["name"]] = rng.uniform(lo, hi)
    return set_parameters(base, values)


def _nee_plus_et(params, forcing):
    """Mean NEE + total ET: a NaN or inf in the gradient of either term shows in the sum."""
    out = simulate(params, forcing)
    return jnp.mean(out.nee) + jnp.sum(out.et)


_grad = jax.jit(jax.grad(_nee_plus_et))


def test_gradients_finite_over_the_prior_box():
    """d(mean NEE + total ET)/d(every parameter) finite at seeded random points of the box
    (10 days of hourly CH-Dav summer forcing, checkpointed chunks; the full-year check is
    marked slow)."""
    f = _ten_days()
    table = parameter_table("ENF")
    rng = np.random.default_rng(42)
    for _ in range(2):
        params = _random_params(table, enf_params(), rng)
        grad = _grad(params, f)
        leaves = jax.tree_util.tree_leaves_with_path(grad)
        assert len(leaves) >= 40
        bad = [jax.tree_util.keystr(k) for k, v in leaves if not np.all(np.isfinite(np.asarray(v)))]
        assert not bad, bad
        # soil hydraulics, roots and carbon turnover act on the outputs
        assert float(jnp.abs(grad.soil.b)) > 0 and float(jnp.abs(grad.carbon.tau_litter)) > 0


@pytest.mark.slow
def test_gradients_finite_full_year_checkpointed():
    f = hourly_year()
    g = jax.jit(jax.jacrev(lambda p: (lambda o: jnp.stack([o.nee.sum(), o.et.sum()]))(
        simulate(p, f))))(enf_params())
    for k, v in jax.tree_util.tree_leaves_with_path(g):
        assert np.all(np.isfinite(np.asarray(v))), jax.tree_util.keystr(k)


def test_state_is_a_pytree_for_filters():
    _, final, _ = year_run()
    assert isinstance(final, CoupledState)
    flat, unravel = ravel_pytree(final)
    # soil layers + snow + soil temperature + 6 carbon pools + canopy water + acclimation S
    assert flat.shape == (enf_params().n_layers + 2 + 6 + 2,)
    assert isinstance(unravel(flat), CoupledState)


def test_load_parameters_float32():
    p = load_parameters("GRA", soil_texture="sandy_loam", dtype=jnp.float32)
    assert all(x.dtype == jnp.float32 for x in jax.tree_util.tree_leaves(p))


def test_parameter_table_names_round_trip():
    table = parameter_table("ENF", soil_texture="loam")
    assert list(table.columns[:7]) == ["name", "unit", "default", "lower", "upper", "prior",
                                       "citation"]
    assert {"leaf", "canopy", "soil", "roots", "carbon"} <= set(table["group"])
    assert table["name"].is_unique and table["citation"].str.len().min() > 5
    p = enf_params()
    from process_models.coupled import get_parameter
    for _, r in table.iterrows():
        v = float(get_parameter(p, r["name"]))
        assert r["lower"] <= v <= r["upper"], r["name"]
        np.testing.assert_allclose(v, r["default"], rtol=1e-12, err_msg=r["name"])
