"""Canopy interception store (Rutter / CLM4.5) and the Makela et al. (2004) cold-season
acclimation: analytic properties, exact closure of the store, and their effect in the
coupled model on the CH-Dav year (wet canopy cuts transpiration, winter GPP suppressed)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from process_models.coupled import (complete_state, initial_state, load_parameters,
                                    parameter_table, pfts, set_parameters, simulate,
                                    soil_textures)
from process_models.coupled import evapotranspiration as et
from process_models.coupled.canopy import leaf_canopy_table
from process_models.coupled.interception import (acclimation_factor, acclimation_update,
                                                 interception_step, intercepted_fraction,
                                                 storage_capacity,
                                                 wet_canopy_evaporation_potential)

from ._shared import batched_step, enf_params, hourly_year, year_run

CANOPY = enf_params().canopy


def test_store_closes_exactly_and_stays_within_capacity():
    rng = np.random.default_rng(0)
    w = jnp.asarray(rng.uniform(0.0, 1.0, 200))
    p = jnp.asarray(rng.exponential(2.0, 200) * (rng.uniform(size=200) < 0.6))
    lai = jnp.asarray(rng.uniform(0.0, 6.0, 200))
    e_pot = jnp.asarray(rng.uniform(0.0, 3e-4, 200))                  # kg m-2 s-1 (<= ~750 W m-2)
    w_new, thr, evap, wet = interception_step(w, p, lai, CANOPY, e_pot, 3600.0)
    np.testing.assert_allclose(w_new - w, p - thr - evap, atol=1e-13)
    cap = storage_capacity(lai, CANOPY)
    assert np.all(np.asarray(w_new) >= -1e-15) and np.all(np.asarray(thr) >= -1e-15)
    assert np.all(np.asarray(evap) >= 0) and np.all(np.asarray(w_new) <= np.asarray(cap) + 1e-12)
    assert np.all((np.asarray(wet) >= 0) & (np.asarray(wet) <= 1))
    # intercepted <= alpha (1 - exp(-0.5 (L + SAI))) P reaches the store or drips
    np.testing.assert_array_less(np.asarray(p - thr), np.asarray(intercepted_fraction(lai, CANOPY) * p
                                                                 + w + 1e-12))


def test_store_limits_analytic_cases():
    cap = float(storage_capacity(4.0, CANOPY))
    np.testing.assert_allclose(cap, 0.1 * (4.0 + float(CANOPY.stem_area_index)), rtol=1e-12)
    # no rain, no evaporation demand: only the smooth cap's small drip (0.2 % at W = 0.6 S)
    w, thr, e, wet = interception_step(0.3, 0.0, 4.0, CANOPY, 0.0, 3600.0)
    assert float(e) == 0.0 and 0.0 <= float(thr) < 3e-3 * 0.3
    np.testing.assert_allclose(float(w), 0.3 * (1 + (0.3 / cap) ** 8) ** -0.125, rtol=1e-12)
    np.testing.assert_allclose(float(thr), 0.3 - float(w), rtol=1e-12)
    np.testing.assert_allclose(float(wet), (float(w) / cap) ** (2 / 3), rtol=1e-12)
    # a 30 mm storm fills the store (smooth_min of order 8: >= 91.7% of S) and the rest drips
    w, thr, e, wet = interception_step(0.0, 30.0, 4.0, CANOPY, 0.0, 3600.0)
    assert 0.917 * cap <= float(w) <= cap
    np.testing.assert_allclose(float(thr), 30.0 - float(w), rtol=1e-12)
    # a dry canopy (W = 0) does not evaporate, a huge demand empties a wet one
    _, _, e0, _ = interception_step(0.0, 0.0, 4.0, CANOPY, 1e-3, 3600.0)
    w1, _, e1, _ = interception_step(cap, 0.0, 4.0, CANOPY, 1.0, 3600.0)
    assert float(e0) == 0.0 and float(w1) < 1e-3 * cap and float(e1) > 0.99 * cap * 0.917


def test_wet_canopy_potential_is_zero_resistance_penman_monteith():
    args = (400.0, 18.0, 12.0, 95.0, 0.05)
    le_inf = float(wet_canopy_evaporation_potential(*args))
    le_big = float(et.penman_monteith(*args, 1e9))
    np.testing.assert_allclose(le_inf, le_big, rtol=1e-7)
    gs = np.array([0.001, 0.005, 0.02, 0.1])
    le = np.asarray(et.penman_monteith(*args, gs))
    assert np.all(np.diff(le) > 0) and np.all(le < le_inf)


def test_acclimation_state_exact_exponential_and_factor_ramp():
    s, t_air, dt = -8.0, 12.0, 3600.0
    for _ in range(240):                                               # 10 days hourly
        s = acclimation_update(s, t_air, CANOPY, dt)
    tau = float(CANOPY.acclimation_tau)
    np.testing.assert_allclose(float(s), t_air + (-8.0 - t_air) * np.exp(-10.0 / tau), rtol=1e-10)
    x0, smax = float(CANOPY.acclimation_x0), float(CANOPY.acclimation_smax)
    temps = np.linspace(x0 - 20, x0 + smax + 20, 401)
    f = np.asarray(acclimation_factor(jnp.asarray(temps), CANOPY))
    clip = np.clip((temps - x0) / smax, 0, 1)
    assert np.all(np.diff(f) >= -1e-15)
    assert np.max(np.abs(f - clip)) <= np.log(2) / 25 + 1e-12
    assert f[0] < 1e-6 and f[-1] > 1 - 1e-6
    g = jax.vmap(jax.grad(lambda t: acclimation_factor(t, CANOPY)))(jnp.asarray(temps))
    assert np.all(np.isfinite(np.asarray(g)))


def test_year_water_closure_includes_canopy_store_and_interception_loss():
    f, p = hourly_year(), enf_params()
    out, final, start = year_run()
    e_int = float(out.interception_evaporation.sum())
    precip = float(f.precipitation.sum())
    assert 0.02 * precip < e_int < 0.3 * precip                      # conifers: ~10-35 % of P
    np.testing.assert_allclose(np.asarray(out.et), np.asarray(out.transpiration
                               + out.soil_evaporation + out.interception_evaporation), atol=1e-13)
    cw = np.asarray(out.canopy_water)
    cap = np.asarray(storage_capacity(out.lai, p.canopy))
    assert np.all(cw >= -1e-12) and np.all(cw <= cap + 1e-12)
    assert float(final.canopy_water) == pytest.approx(float(cw[-1]))


def test_cold_season_suppresses_winter_gpp_at_ch_dav():
    """DJF GPP of the default ENF run is a small fraction of JJA (tower 2019: ~0.15/7.5 umol
    m-2 s-1), and disabling the acclimation (X0 = -40 degC) raises it several-fold."""
    f = hourly_year()
    out, _, _ = year_run()
    month = np.asarray((np.arange(f.n_steps) // 24 * 12) // 365)      # 0..11 (approx. months)
    gpp = np.asarray(out.gpp)
    djf, jja = gpp[np.isin(month, [0, 1, 11])].mean(), gpp[np.isin(month, [5, 6, 7])].mean()
    assert djf < 0.15 * jja
    off = simulate(set_parameters(enf_params(), {"canopy.acclimation_x0": -40.0}), f)
    djf_off = np.asarray(off.gpp)[np.isin(month, [0, 1, 11])].mean()
    assert djf_off > 2.0 * djf
    f_s = np.asarray(out.acclimation_factor)
    assert f_s[np.isin(month, [0, 1])].mean() < 0.3 and f_s[np.isin(month, [6, 7])].mean() > 0.8


def test_wet_canopy_cuts_transpiration_and_evaporates():
    """Same sunny summer hour, canopy store from dry to full: interception evaporation
    rises, transpiration falls (dry-fraction transpiration), ET and water stay closed."""
    p, f = enf_params(), hourly_year()
    i = int(np.argmax(np.asarray(f.shortwave_in)[4000:5000])) + 4000
    f_t = jax.tree_util.tree_map(lambda x: x[i], f)
    s0 = initial_state(p, f)
    cap = float(storage_capacity(p.carbon.initial_lai, p.canopy))
    waters = jnp.linspace(0.0, cap, 9)
    states = jax.vmap(lambda w: s0.replace(canopy_water=w))(waters)
    assert float(f_t.precipitation) == 0.0
    new, out = batched_step(states, f_t, p)
    e_int, tr = np.asarray(out.interception_evaporation), np.asarray(out.transpiration)
    assert e_int[0] == 0.0 and np.all(np.diff(e_int) > 0)
    assert np.all(np.diff(tr) < 0) and tr[-1] < 0.5 * tr[0]
    w_new = np.asarray(new.canopy_water)                  # no rain: W' = W - drip - E_int
    assert np.all(w_new >= 0) and np.all(w_new <= np.asarray(waters) - e_int + 1e-13)


def test_legacy_state_without_new_fields_runs():
    p, f = enf_params(), hourly_year()
    s0 = initial_state(p, f)
    legacy = s0.replace(canopy_water=None, acclimation_temperature=None)
    full = complete_state(legacy)
    assert float(full.canopy_water) == 0.0
    assert float(full.acclimation_temperature) == float(s0.soil_temperature)


@pytest.mark.parametrize("texture", ["loam", "sand", "clay"])
def test_every_default_lies_within_its_bounds_for_every_pft(texture):
    assert texture in soil_textures()
    for pft in pfts() + ["GRA_C4", "CRO_C4"]:
        t = parameter_table(pft, texture)
        bad = t[(t["default"] < t["lower"]) | (t["default"] > t["upper"])
                | (t["lower"] > t["upper"])]
        assert bad.empty, f"{pft}/{texture}: {bad[['name', 'default', 'lower', 'upper']].to_dict('records')}"
        p = load_parameters(pft, texture)
        assert float(p.carbon.alloc_leaf + p.carbon.alloc_wood) <= 1.0
    full = leaf_canopy_table()
    num = full[full["name"] != "c4"]
    assert ((num["default"] >= num["lower"]) & (num["default"] <= num["upper"])).all()
