"""Leaf biochemistry: kinetics against pyrealm 2.0, the Medlyn-FvCB closed form against an
independent NumPy plantecophys re-implementation and a brentq root, and response properties."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.optimize import brentq

from process_models.coupled import leaf as L
from process_models.coupled.canopy import default_leaf_params

# pyrealm uses R = 8.3145 J mol-1 K-1, we use CODATA 8.314462618: relative differences of
# exp(Ha dT/(R T Tref)) are ~ Ha dT / (R T Tref) * 4.5e-6 < 2e-5 over 0-45 degC.
R_TOL = 3e-5
TC = np.array([0.0, 10.0, 20.0, 25.0, 32.0, 40.0, 45.0])
PATM = np.array([101325.0, 90000.0, 101325.0, 101325.0, 80000.0, 95000.0, 101325.0])


def test_gamma_star_and_kmm_match_pyrealm():
    fn = pytest.importorskip("pyrealm.pmodel.functions")
    np.testing.assert_allclose(L.gamma_star(TC, PATM), fn.calc_gammastar(TC + 273.15, PATM), rtol=R_TOL)
    np.testing.assert_allclose(L.michaelis_menten(TC, PATM), fn.calc_kmm(TC + 273.15, PATM), rtol=R_TOL)
    # 25 degC, standard pressure: the Bernacchi (2001) values in mole fraction
    assert float(L.gamma_star(25.0)) / L.P_STANDARD * 1e6 == pytest.approx(42.75, abs=0.01)


def test_arrhenius_factors_match_pyrealm():
    fn = pytest.importorskip("pyrealm.pmodel.functions")
    from pyrealm.constants import PModelConst
    tk = TC + 273.15
    np.testing.assert_allclose(L.arrhenius(tk, 65330.0),
                               fn.calculate_simple_arrhenius_factor(tk, 298.15, 65330.0), rtol=R_TOL)
    pc = PModelConst()
    for coef in (pc.arrhenius_vcmax["kattge_knorr"], pc.arrhenius_jmax["kattge_knorr"]):
        for tg in (10.0, 20.0, 25.0):
            ds = coef["entropy_intercept"] + coef["entropy_slope"] * tg
            ref = fn.calculate_kattge_knorr_arrhenius_factor(tk, 298.15, tg, coef)
            np.testing.assert_allclose(L.peaked_arrhenius(tk, coef["ha"], coef["hd"], ds), ref, rtol=R_TOL)


def test_default_table_temperature_response_is_kattge_knorr_at_20C():
    fn = pytest.importorskip("pyrealm.pmodel.functions")
    from pyrealm.constants import PModelConst
    lp = default_leaf_params("DBF")
    tk = TC + 273.15
    ref = fn.calculate_kattge_knorr_arrhenius_factor(tk, 298.15, 20.0, PModelConst().arrhenius_vcmax["kattge_knorr"])
    np.testing.assert_allclose(L.peaked_arrhenius(tk, lp.vcmax_ha, lp.vcmax_hd, lp.vcmax_ds), ref, rtol=R_TOL)


# ----------------------------------------------------------------------------- NumPy reference
def _np_peaked(tk, ha, hd, ds, R=8.314462618):
    arr = np.exp(ha / R * (1 / 298.15 - 1 / tk))
    return arr * (1 + np.exp((298.15 * ds - hd) / (R * 298.15))) / (1 + np.exp((tk * ds - hd) / (R * tk)))


def _plantecophys(vcmax, jmax, rd, gstar, km, ca, q, alpha, theta, g1, g0, vpd_kpa, hmshape):
    """plantecophys Photosyn (Duursma 2015, R/photosyn.R: Jfun, getCI/QUADP, hyperbolic minimum),
    re-coded in NumPy; g0 in H2O units, the quadratic in CO2 units (g0/1.6)."""
    J = (alpha * q + jmax - np.sqrt((alpha * q + jmax) ** 2 - 4 * theta * alpha * q * jmax)) / (2 * theta)
    VJ = J / 4
    GSDIVA = (1 + g1 / np.sqrt(vpd_kpa)) / ca
    g0c = g0 / 1.6

    def quadp(A, B, C):
        return (-B + np.sqrt(B * B - 4 * A * C)) / (2 * A)

    cic = quadp(g0c + GSDIVA * (vcmax - rd),
                (1 - ca * GSDIVA) * (vcmax - rd) + g0c * (km - ca) - GSDIVA * (vcmax * gstar + km * rd),
                -(1 - ca * GSDIVA) * (vcmax * gstar + km * rd) - g0c * km * ca)
    cij = quadp(g0c + GSDIVA * (VJ - rd),
                (1 - ca * GSDIVA) * (VJ - rd) + g0c * (2 * gstar - ca) - GSDIVA * (VJ * gstar + 2 * gstar * rd),
                -(1 - ca * GSDIVA) * gstar * (VJ + 2 * rd) - g0c * 2 * gstar * ca)
    ac = vcmax * (cic - gstar) / (cic + km)
    aj = VJ * (cij - gstar) / (cij + 2 * gstar)
    am = (ac + aj - np.sqrt((ac + aj) ** 2 - 4 * hmshape * ac * aj)) / (2 * hmshape)
    aleaf = am - rd
    gs = g0 + 1.6 * GSDIVA * aleaf
    return am, aleaf, gs, ac, aj


CASES = [  # T degC, absorbed PAR, VPD kPa, Ca ppm, g0, P kPa
    (25.0, 1500.0, 1.5, 400.0, 0.0, 101.325), (15.0, 300.0, 0.8, 400.0, 0.01, 95.0),
    (32.0, 1800.0, 3.0, 410.0, 0.005, 101.325), (20.0, 800.0, 1.0, 800.0, 0.02, 90.0),
    (10.0, 100.0, 0.6, 350.0, 0.01, 101.325), (28.0, 1200.0, 2.2, 600.0, 0.0, 85.0),
]


@pytest.mark.parametrize("tc,q,vpd,ca,g0,p", CASES)
def test_leaf_matches_numpy_plantecophys_with_pyrealm_kinetics(tc, q, vpd, ca, g0, p):
    fn = pytest.importorskip("pyrealm.pmodel.functions")
    lp = default_leaf_params("DBF").replace(theta_a=jnp.asarray(0.9999), g0=jnp.asarray(g0))
    out = _leaf(lp, absorbed_par=q, leaf_temperature=tc, vpd=vpd * 10.0, co2=ca, air_pressure=p)
    tk, pa = tc + 273.15, p * 1000.0
    gstar = fn.calc_gammastar(np.array(tk), np.array(pa)) / pa * 1e6
    km = fn.calc_kmm(np.array(tk), np.array(pa)) / pa * 1e6
    v25 = float(lp.vcmax25)
    vcmax = v25 * _np_peaked(tk, 71513.0, 200000.0, 668.39 - 1.07 * 20)
    jmax = 1.67 * v25 * _np_peaked(tk, 49884.0, 200000.0, 659.70 - 0.75 * 20)
    rd = 0.015 * v25 * np.exp(46390.0 / 8.314462618 * (1 / 298.15 - 1 / tk))
    am, aleaf, gs, ac, aj = _plantecophys(vcmax, jmax, rd, gstar, km, ca, q, 0.36, 0.7, float(lp.g1),
                                          g0, vpd, 0.9999)
    # tolerance: gas constant and smooth-sqrt floors, both < 1e-4 relative
    np.testing.assert_allclose(out.gross_assimilation, am, rtol=1e-4)
    np.testing.assert_allclose(out.net_assimilation, aleaf, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(out.stomatal_conductance, gs, rtol=1e-4)
    np.testing.assert_allclose(out.rubisco_limited, ac, rtol=1e-4)
    np.testing.assert_allclose(out.light_limited, aj, rtol=1e-4)


@pytest.mark.parametrize("g0", [0.0, 0.01, 0.05])
@pytest.mark.parametrize("a,b", [(60.0, 700.0), (25.0, 85.0), (5.0, 85.0)])
def test_closed_form_ci_solves_supply_equals_demand(a, b, g0):
    """Independent root of demand(Ci) - Medlyn supply(Ci) by brentq on (Ci_opt, Ca)."""
    gstar, rd, ca, g1, d = 42.75, 1.0, 400.0, 4.0, 1.5
    m = (1 + g1 / np.sqrt(d)) / ca
    demand = lambda ci: a * (ci - gstar) / (ci + b) - rd
    supply = lambda ci: (g0 / 1.6 + m * demand(ci)) * (ca - ci)
    ci_opt = ca * g1 / (g1 + np.sqrt(d))
    ci = L._medlyn_ci(a, b, gstar, rd, ca, m, g0 / 1.6)
    if g0 == 0.0:   # supply = demand on the whole line Ci = Ci_opt: Ci/Ca = g1/(g1 + sqrt D)
        assert float(ci) == pytest.approx(ci_opt, rel=1e-10)
    else:
        ref = brentq(lambda ci: demand(ci) - supply(ci), ci_opt + 1e-9, ca, xtol=1e-12)
        assert float(ci) == pytest.approx(ref, rel=1e-9, abs=1e-8)


_LEAF = jax.jit(L.leaf_photosynthesis)


def _leaf(lp, **kw):
    base = dict(absorbed_par=1000.0, leaf_temperature=25.0, vpd=15.0, co2=410.0, air_pressure=101.3,
                water_stress=1.0)
    base.update(kw)
    shape = jnp.broadcast_shapes(*(jnp.shape(v) for v in base.values()))
    return _LEAF(lp, **{k: jnp.broadcast_to(jnp.asarray(v, jnp.float64), shape) for k, v in base.items()})


def test_light_response_monotone_and_saturating():
    for pft in ("DBF", "GRA_C4"):
        lp = default_leaf_params(pft)
        q = jnp.linspace(0.0, 2500.0, 51)
        a = np.asarray(_leaf(lp, absorbed_par=q).gross_assimilation)
        assert a[0] == pytest.approx(0.0, abs=1e-9)
        d = np.diff(a)
        assert np.all(d > 0), pft
        assert np.all(np.diff(d) < 1e-9), pft               # concave
        assert d[-1] < 0.05 * d[0], pft                    # saturating


def test_a_ci_curve_rubisco_then_electron_transport_limited():
    lp = default_leaf_params("DBF")
    low = _leaf(lp, co2=120.0, absorbed_par=1500.0)
    high = _leaf(lp, co2=1500.0, absorbed_par=1500.0)
    assert float(low.rubisco_limited) < float(low.light_limited)
    assert float(high.light_limited) < float(high.rubisco_limited)
    ca = jnp.linspace(80.0, 2000.0, 40)
    a = np.asarray(_leaf(lp, co2=ca).gross_assimilation)
    assert np.all(np.diff(a) > 0)


def test_water_stress_and_vpd_reduce_assimilation():
    lp = default_leaf_params("ENF")
    beta = jnp.linspace(0.0, 1.0, 21)
    a = np.asarray(_leaf(lp, water_stress=beta).gross_assimilation)
    assert np.all(np.diff(a) > 0) and a[0] == pytest.approx(0.0, abs=1e-9)
    vpd = jnp.linspace(2.0, 40.0, 20)     # hPa
    out = _leaf(lp, vpd=vpd)
    assert np.all(np.diff(np.asarray(out.gross_assimilation)) < 0)
    assert np.all(np.diff(np.asarray(out.stomatal_conductance)) < 0)


def test_dark_conductance_is_g0_and_respiration_positive():
    for pft in ("DBF", "CRO_C4"):
        lp = default_leaf_params(pft)
        out = _leaf(lp, absorbed_par=0.0, leaf_temperature=jnp.array([5.0, 20.0, 35.0]))
        np.testing.assert_allclose(out.stomatal_conductance, float(lp.g0), rtol=1e-12)
        np.testing.assert_allclose(out.gross_assimilation, 0.0, atol=1e-9)
        r = np.asarray(out.respiration)
        assert np.all(r > 0) and np.all(np.diff(r) > 0)
        np.testing.assert_allclose(out.net_assimilation, -r, rtol=1e-12)


def test_c4_is_co2_saturated_compared_with_c3():
    c3, c4 = default_leaf_params("GRA"), default_leaf_params("GRA_C4")
    r3 = float(_leaf(c3, co2=200.0).gross_assimilation) / float(_leaf(c3, co2=400.0).gross_assimilation)
    r4 = float(_leaf(c4, co2=200.0).gross_assimilation) / float(_leaf(c4, co2=400.0).gross_assimilation)
    assert r4 > 0.9 > r3


def test_positive_finite_on_random_inputs_and_float32():
    rng = np.random.default_rng(0)
    n = 200
    kw = dict(absorbed_par=rng.uniform(0, 2500, n), leaf_temperature=rng.uniform(-20, 50, n),
              vpd=rng.uniform(0, 60, n), co2=rng.uniform(150, 1200, n), air_pressure=rng.uniform(60, 105, n),
              water_stress=rng.uniform(0, 1, n))
    for pft in ("ENF", "CRO_C4"):
        for dt in (jnp.float64, jnp.float32):
            lp = jax.tree_util.tree_map(lambda x: jnp.asarray(x, dt), default_leaf_params(pft))
            out = _LEAF(lp, **{k: jnp.asarray(v, dt) for k, v in kw.items()})
            for leaf_value in jax.tree_util.tree_leaves(out):
                assert np.all(np.isfinite(leaf_value)), (pft, dt)
                assert leaf_value.dtype == dt
            assert np.all(np.asarray(out.gross_assimilation) >= 0)
            assert np.all(np.asarray(out.stomatal_conductance) >= float(lp.g0) * (1 - 1e-6))


def test_broadcasting_matches_elementwise_calls():
    """Mixed scalar/array inputs (as in the sun/shade stack) equal element-by-element calls."""
    lp = default_leaf_params("DBF")
    q, cap, area = np.array([800.0, 300.0, 50.0]), np.array([1.5, 2.0, 0.3]), np.array([1.2, 3.0, 0.4])
    f = jax.jit(lambda q, c, a: L.leaf_photosynthesis(lp, absorbed_par=q, capacity=c, leaf_area=a,
                                                      leaf_temperature=28.0, vpd=20.0, co2=410.0,
                                                      air_pressure=98.0))
    batch = f(q, cap, area)
    for i in range(3):
        one = f(q[i], cap[i], area[i])
        for name in ("gross_assimilation", "stomatal_conductance", "ci"):
            assert float(getattr(batch, name)[i]) == pytest.approx(float(getattr(one, name)), rel=1e-12)
