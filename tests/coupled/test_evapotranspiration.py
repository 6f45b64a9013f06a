"""FAO-56 psychrometrics, Penman-Monteith limits and aerodynamic conductance."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from process_models.coupled import evapotranspiration as E


def test_fao56_tabulated_values():
    # FAO-56 annex 2, tables 2.3 and 2.4 (e_s and Delta at 20 degC), and table 2.2 (gamma
    # at 101.3 kPa with lambda = 2.45 MJ kg-1: 0.0674 kPa K-1; lambda(20 degC) = 2.4538).
    assert float(E.saturation_vapour_pressure(20.0)) == pytest.approx(2.338, abs=1e-3)
    assert float(E.saturation_slope(20.0)) == pytest.approx(0.145, abs=1e-3)
    assert float(E.psychrometric_constant(101.3, 20.0)) == pytest.approx(0.0674 * 2.45 / 2.4538, rel=2e-3)
    assert float(E.latent_heat_vaporization(20.0)) == pytest.approx(2.4538e6, rel=1e-4)
    assert float(E.air_density(20.0, 101.3)) == pytest.approx(1.19, abs=0.01)
    # ideal-gas conversion: 1 mol m-2 s-1 = 0.02446 m s-1 at 25 degC and 101.325 kPa
    assert float(E.molar_to_velocity_conductance(1.0, 25.0, 101.325)) == pytest.approx(0.024465, rel=1e-4)


def test_fao56_grass_reference_aerodynamic_resistance():
    """FAO-56 eq. 4 for the 0.12 m grass reference with 2 m measurements: r_a = 208 / u2."""
    for u in (2.0, 3.0, 5.0):
        ga = float(E.aerodynamic_conductance(u, 0.12, 2.0))
        # FAO-56 rounds 207.7 to 208; the smooth wind floor (u + 0.5 e^{-u/0.5}) adds 0.46 % at 2 m s-1
        assert 1.0 / ga == pytest.approx(208.0 / u, rel=8e-3 if u < 3 else 3e-3)
    ga = np.asarray(E.aerodynamic_conductance(jnp.linspace(0.0, 10.0, 50), 20.0, 30.0))
    assert np.all(np.diff(ga) > 0) and ga[0] > 0          # smooth floor at calm wind


AE, TA, VPD, P, GA = 400.0, 22.0, 15.0, 100.0, 0.03


def test_penman_monteith_limits():
    delta, gamma = float(E.saturation_slope(TA)), float(E.psychrometric_constant(P, TA))
    rho = float(E.air_density(TA, P))
    # g_s = 0: no evaporation
    assert float(E.penman_monteith(AE, TA, VPD, P, GA, 0.0)) == 0.0
    # g_s -> inf: Penman wet-surface evaporation = soil potential
    le_wet = float(E.penman_monteith(AE, TA, VPD, P, GA, 1e9))
    lam = float(E.latent_heat_vaporization(TA))
    assert le_wet == pytest.approx(float(E.soil_evaporation_potential(AE, TA, VPD, P, GA)) * lam, rel=1e-6)
    # ... and with D = 0 it is the equilibrium evaporation Delta A / (Delta + gamma)
    assert float(E.penman_monteith(AE, TA, 0.0, P, GA, 1e9)) == pytest.approx(
        float(E.equilibrium_evaporation(AE, TA, P)), rel=1e-6)
    # decoupled limit g_a -> 0: equilibrium (Jarvis & McNaughton 1986)
    assert float(E.penman_monteith(AE, TA, VPD, P, 1e-9, 0.01)) == pytest.approx(
        delta * AE / (delta + gamma), rel=1e-5)
    # coupled limit g_a -> inf: imposed evaporation rho c_p D g_s / gamma
    gs = 0.008
    assert float(E.penman_monteith(AE, TA, VPD, P, 1e6, gs)) == pytest.approx(
        rho * E.CP_AIR * VPD / 10.0 * gs / gamma, rel=1e-4)
    # Priestley-Taylor = 1.26 x equilibrium
    assert float(E.priestley_taylor(AE, TA, P)) == pytest.approx(1.26 * delta * AE / (delta + gamma), rel=1e-12)


def test_penman_monteith_monotone_in_conductance_and_energy():
    gs = jnp.linspace(0.0, 0.05, 30)
    le = np.asarray(E.penman_monteith(AE, TA, VPD, P, GA, gs))
    assert np.all(np.diff(le) > 0)
    ae = jnp.linspace(-50.0, 600.0, 30)
    assert np.all(np.diff(np.asarray(E.penman_monteith(ae, TA, VPD, P, GA, 0.01))) > 0)


def test_soil_evaporation_potential_nonnegative_and_differentiable():
    e = np.asarray(E.soil_evaporation_potential(jnp.linspace(-200, 500, 20), 10.0, 0.0, 100.0, 0.02))
    assert np.all(e >= 0) and e[-1] > 0
    # 500 W m-2 at 10 degC is of the order of 0.1-0.2 mm per 30 min
    assert 0.05 < e[-1] * 1800 < 0.3
    g = jax.grad(lambda a: E.soil_evaporation_potential(a, 15.0, 8.0, 99.0, 0.02))(300.0)
    assert np.isfinite(float(g)) and float(g) > 0
