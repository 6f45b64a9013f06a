"""CASA-like carbon pools: exact closure, analytic steady state, respiration factors, LAI."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from process_models.coupled import load_parameters
from process_models.coupled.carbon import (carbon_step, leaf_area_index, lloyd_taylor,
                                           moisture_factor, steady_state_pools)
from process_models.coupled.params import G_C_PER_UMOL_CO2


@pytest.fixture(scope="module")
def carbon():
    return load_parameters("ENF").carbon


@jax.jit
def _scan_carbon(pools, gpp, rleaf, tsoil, wrel, carbon):
    dt = 3600.0
    def body(p, x):
        new, ra, rh = carbon_step(p, *x, carbon, dt)
        return new, (ra, rh)
    return jax.lax.scan(body, pools, (gpp, rleaf, tsoil, wrel))


def test_carbon_closes_to_round_off(carbon):
    rng = np.random.default_rng(0)
    n = 24 * 60
    hour = np.arange(n) % 24
    gpp = np.maximum(0, 20 * np.sin(np.pi * (hour - 6) / 12)) * rng.uniform(0.5, 1, n)
    rleaf = 0.03 * gpp + 0.5
    tsoil = 10 + 8 * np.sin(2 * np.pi * np.arange(n) / n) + rng.normal(0, 1, n)
    wrel = rng.uniform(0.1, 0.9, n)
    pools0 = steady_state_pools(carbon)
    final, (ra, rh) = _scan_carbon(pools0, *map(jnp.asarray, (gpp, rleaf, tsoil, wrel)), carbon)
    conv = G_C_PER_UMOL_CO2 * 3600.0
    d_pools = float(final.total() - pools0.total())
    budget = float(jnp.sum((jnp.asarray(gpp) - ra - rh) * conv))
    assert abs(d_pools - budget) < 1e-9 * float(pools0.total())   # g C m-2, round-off
    assert all(float(x) > 0 for x in jax.tree_util.tree_leaves(final))
    assert np.all(np.asarray(ra) >= np.asarray(rleaf) - 1e-12) and np.all(np.asarray(rh) > 0)


def test_analytic_steady_state_is_steady(carbon):
    """With Ra = 0 (no leaf/maintenance/growth respiration), constant NPP = GPP, 10 degC and
    constant moisture, the analytic steady state stays put (to O(k dt) of the exact decay)."""
    c = carbon.replace(rm_wood=0.0, rm_root=0.0, growth_resp_frac=0.0)
    npp = 600.0                                               # g C m-2 yr-1
    gpp_umol = npp / (365.25 * 86400.0) / G_C_PER_UMOL_CO2
    w = 0.6
    pools0 = steady_state_pools(c, npp, float(moisture_factor(w)))
    n = 24 * 30
    final, _ = _scan_carbon(pools0, jnp.full(n, gpp_umol), jnp.zeros(n), jnp.full(n, 10.0),
                            jnp.full(n, w), c)
    for name in ("leaf", "wood", "root", "litter", "soil_fast", "soil_slow"):
        np.testing.assert_allclose(float(getattr(final, name)), float(getattr(pools0, name)),
                                   rtol=2e-4, err_msg=name)


def test_default_steady_state_sustains_initial_lai(carbon):
    pools = steady_state_pools(carbon)
    np.testing.assert_allclose(float(leaf_area_index(pools, carbon)), float(carbon.initial_lai),
                               rtol=1e-12)


def test_lloyd_taylor_and_moisture_factors():
    np.testing.assert_allclose(lloyd_taylor(10.0, 308.56), 1.0, rtol=1e-12)
    # Lloyd & Taylor (1994): apparent Q10 ~ 2.4 between 10 and 20 degC
    q10 = float(lloyd_taylor(20.0, 308.56) / lloyd_taylor(10.0, 308.56))
    assert 2.0 < q10 < 2.8
    t = jnp.linspace(-40, 40, 81)
    assert np.all(np.diff(np.asarray(lloyd_taylor(t, 308.56))) > 0)
    w = jnp.linspace(0, 1, 11)
    f = np.asarray(moisture_factor(w))
    assert np.all(np.diff(f) > 0) and f[0] < 0.05 and f[-1] > 0.99
