"""Properties of the JAX VPRM: hand-derived values for every class rule, the sign
convention, smooth -> exact convergence, finite gradients over the parameter box,
jit/eager and vmap/loop equivalence, float32, the enhanced variants, the xarray edge."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import xarray as xr

from process_models.units import DataValidationError
from process_models.vprm import (GourdjiParams, VPRMForcing, VPRMOptions, available_tables,
                                 load_parameters, parameter_table, run, simulate, simulate_jit)
from process_models.vprm.respiration import damped_temperature, reco_gourdji
from process_models.vprm.scalars import light_response, pscale, tscale, wscale_lswi
from process_models.vprm.tables import PARAMETER_BOUNDS

CLASSES = [1, 2, 3, 4, 5, 6, 7, 8, 9]


def pure(cid, n=1):
    return jnp.broadcast_to(jnp.eye(9)[CLASSES.index(cid)], (n, 9))


def forcing(n=1, *, t=20.0, par=1000.0, evi=0.5, lswi=0.2, th=0.4, lmin=0.0, lmax=0.4, cid=2,
            **kw):
    full = lambda v: jnp.broadcast_to(jnp.asarray(v, jnp.float64), (n,))
    return VPRMForcing(temperature=full(t), par=full(par), evi=full(evi), lswi=full(lswi),
                       evi_threshold=full(th), lswi_min=full(lmin), lswi_max=full(lmax),
                       class_fractions=pure(cid, n), **kw)


@pytest.fixture(scope="module")
def params():
    return load_parameters("pyvprm_modis", classes=CLASSES)


# --- hand-derived rule values --------------------------------------------------------
def test_tscale_rule_values():
    tmin, topt, tmax = 1.0, 21.0, 37.0
    assert float(tscale(topt, tmin, topt, tmax)) == pytest.approx(1.0)
    assert float(tscale(tmin - 0.1, tmin, topt, tmax)) == 0.0
    # T = 10: (9)(-27) / ((9)(-27) - 121) = 243/364
    assert float(tscale(10.0, tmin, topt, tmax)) == pytest.approx(243 / 364, rel=1e-14)
    assert float(tscale(40.0, tmin, topt, tmax)) == 0.0
    t = jnp.linspace(tmin, tmax, 501)
    ts = tscale(t, tmin, topt, tmax)
    assert float(ts.min()) >= 0.0 and float(ts.max()) <= 1.0 + 1e-12


def test_wscale_and_pscale_rules():
    # mesic: (1 + LSWI)/(1 + LSWImax); xeric: (LSWI - min)/(max - min)
    assert float(wscale_lswi(0.2, 0.0, 0.4, 0.0)) == pytest.approx(1.2 / 1.4)
    assert float(wscale_lswi(0.1, 0.0, 0.4, 1.0)) == pytest.approx(0.25)
    assert float(wscale_lswi(-0.2, 0.0, 0.4, 1.0, clip=False)) == pytest.approx(-0.5)
    assert float(wscale_lswi(-0.2, 0.0, 0.4, 1.0)) == 0.0
    assert float(wscale_lswi(0.6, 0.0, 0.4, 0.0)) == 1.0      # clipped (pyVPRM: 1.6/1.4)
    # Pscale: threshold rule with a strict '>' (pyVPRM), evergreen 1, savanna/grass LSWI
    assert float(pscale(0.5, 0.2, 0.4, 0.0, 0.0)) == 1.0
    assert float(pscale(0.4, 0.2, 0.4, 0.0, 0.0)) == pytest.approx(0.6)   # equal -> below
    assert float(pscale(0.1, 0.2, 0.4, 1.0, 0.0)) == 1.0
    assert float(pscale(0.9, 0.2, 0.4, 0.0, 1.0)) == pytest.approx(0.6)
    assert float(light_response(500.0, 500.0)) == pytest.approx(250.0)


def test_gpp_hand_value_and_sign_convention(params):
    i = CLASSES.index(2)
    out = simulate(params, forcing(t=10.0, par=800.0, evi=0.5, lswi=0.2, th=0.4, lmax=0.4, cid=2))
    ts = 243 / 364 if float(params.tmin[i]) == 1.0 else None
    gpp = (float(params.lam[i]) * ts * (1.2 / 1.4) * 1.0 * 0.5 * 800.0
           / (1 + 800.0 / float(params.par0[i])))
    reco = float(params.alpha[i]) * 10.0 + float(params.beta[i])
    np.testing.assert_allclose(out.gpp, gpp, rtol=1e-13)
    np.testing.assert_allclose(out.reco, reco, rtol=1e-13)
    np.testing.assert_allclose(out.nee, out.reco - out.gpp, rtol=0, atol=0)


def test_night_gpp_zero_reco_floor_and_no_flux_classes(params):
    out = simulate(params, forcing(par=0.0))
    assert float(out.gpp[0]) == 0.0
    # Tlow floor: respiration at T far below Tlow equals respiration at Tlow
    i = CLASSES.index(2)
    cold = simulate(params, forcing(t=-30.0))
    assert float(cold.reco[0]) == pytest.approx(max(float(params.alpha[i] * params.tlow[i]
                                                         + params.beta[i]), 0.0))
    # Reco >= 0 even with a strongly negative beta
    p = params.replace(beta=params.beta - 20.0)
    assert float(simulate(p, forcing()).reco.min()) == 0.0
    # class 8 ("other") gives no flux at all
    o = simulate(params, forcing(cid=8))
    assert float(o.gpp[0]) == 0.0 and float(o.reco[0]) == 0.0


def test_mixed_pixel_is_fraction_weighted_sum(params):
    rng = np.random.default_rng(0)
    n = 64
    f = forcing(n, t=jnp.asarray(rng.uniform(-10, 35, n)), par=jnp.asarray(rng.uniform(0, 1800, n)))
    frac = jnp.asarray(rng.dirichlet(np.ones(9), n))
    mixed = simulate(params, f.replace(class_fractions=frac))
    gpp = sum(frac[:, k] * simulate(params, f.replace(class_fractions=pure(c, n))).gpp
              for k, c in enumerate(CLASSES))
    np.testing.assert_allclose(mixed.gpp, gpp, rtol=1e-12, atol=1e-12)


def _random_forcing(n, seed, cid_mix=True):
    rng = np.random.default_rng(seed)
    lmin = rng.uniform(-0.3, 0.2, n)
    return VPRMForcing(
        temperature=jnp.asarray(rng.uniform(-25, 45, n)), par=jnp.asarray(rng.uniform(0, 2200, n)),
        evi=jnp.asarray(rng.uniform(-0.05, 0.95, n)), lswi=jnp.asarray(rng.uniform(-0.5, 0.7, n)),
        evi_threshold=jnp.asarray(rng.uniform(0.2, 0.6, n)), lswi_min=jnp.asarray(lmin),
        lswi_max=jnp.asarray(lmin + rng.uniform(0.0, 0.5, n)),
        class_fractions=jnp.asarray(rng.dirichlet(np.full(9, 0.4), n)))


def test_default_mode_fluxes_nonnegative(params):
    out = simulate(params, _random_forcing(4000, 1))
    assert float(out.gpp.min()) >= 0.0 and float(out.reco.min()) >= 0.0
    assert np.all(np.isfinite(out.nee))


# --- smooth mode ---------------------------------------------------------------------
def test_smooth_converges_to_exact(params):
    f = _random_forcing(4000, 2)
    exact = simulate(params, f)
    errs = []
    for s in (1.0, 10.0, 100.0, 1000.0, 10000.0):
        sm = simulate(params, f, VPRMOptions(mode="smooth", sharpness=s))
        errs.append(float(jnp.median(jnp.abs(sm.nee - exact.nee))))
    assert all(b < a for a, b in zip(errs, errs[1:])), errs
    # O(1/sharpness): the median error falls ~10x per decade
    assert errs[-1] < 1e-3 and errs[-1] < errs[1] / 100, errs


def test_smooth_gradients_finite_over_parameter_box(params):
    """Corners and random points of the (lam, par0, alpha, beta) box, over forcing that
    hits every switch exactly (T = Tmin, EVI = threshold, PAR = 0, LSWImax = LSWImin)."""
    f = _random_forcing(512, 3)
    i = np.arange(512)
    f = f.replace(temperature=jnp.where(i % 7 == 0, params.tmin[1], f.temperature),
                  evi=jnp.where(i % 5 == 0, f.evi_threshold, f.evi),
                  par=jnp.where(i % 3 == 0, 0.0, f.par),
                  lswi_max=jnp.where(i % 11 == 0, f.lswi_min, f.lswi_max))
    names = ("lam", "par0", "alpha", "beta")
    rng = np.random.default_rng(4)
    corners = [[PARAMETER_BOUNDS[n][(k >> j) & 1] for j, n in enumerate(names)] for k in range(16)]
    randoms = [[rng.uniform(*PARAMETER_BOUNDS[n]) for n in names] for _ in range(16)]
    opts = VPRMOptions(mode="smooth", sharpness=10.0)

    def loss(theta, forcing):
        p = params.replace(**{n: jnp.full(9, theta[j]) for j, n in enumerate(names)})
        return jnp.sum(simulate(p, forcing, opts).nee)

    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
    for theta in corners + randoms:
        g_theta, g_forcing = grad(jnp.asarray(theta, jnp.float64), f)
        assert np.all(np.isfinite(g_theta)), theta
        for leaf in jax.tree_util.tree_leaves(g_forcing):
            assert np.all(np.isfinite(leaf)), theta


def test_smooth_gradient_matches_finite_differences(params):
    f = _random_forcing(256, 5)
    opts = VPRMOptions(mode="smooth", sharpness=5.0)
    loss = lambda lam: jnp.sum(simulate(params.replace(lam=lam), f, opts).nee ** 2)
    g = jax.grad(loss)(params.lam)
    h = 1e-6
    for k in (0, 1, 6):
        e = jnp.zeros(9).at[k].set(h)
        fd = (loss(params.lam + e) - loss(params.lam - e)) / (2 * h)
        np.testing.assert_allclose(g[k], fd, rtol=1e-6, atol=1e-6)


# --- equivalences ----------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["exact", "smooth"])
def test_jit_equals_eager(params, mode):
    f = _random_forcing(1000, 6)
    o = VPRMOptions(mode=mode, sharpness=3.0)
    a, b = simulate(params, f, o), simulate_jit(params, f, o)
    np.testing.assert_allclose(a.nee, b.nee, rtol=1e-13, atol=1e-13)


def test_vmap_over_members_equals_loop(params):
    f = _random_forcing(300, 7)
    rng = np.random.default_rng(8)
    lams = jnp.asarray(params.lam * rng.uniform(0.5, 1.5, (6, 9)))
    run_one = lambda lam: simulate(params.replace(lam=lam), f).nee
    batched = jax.vmap(run_one)(lams)
    looped = jnp.stack([run_one(lams[k]) for k in range(6)])
    np.testing.assert_allclose(batched, looped, rtol=1e-13, atol=1e-13)


def test_float32_matches_float64():
    p64 = load_parameters("pyvprm_modis", classes=CLASSES)
    p32 = load_parameters("pyvprm_modis", classes=CLASSES, dtype=jnp.float32)
    f = _random_forcing(2000, 9)
    f32 = jax.tree_util.tree_map(lambda x: x.astype(jnp.float32), f)
    a, b = simulate(p64, f), simulate_jit(p32, f32)
    assert b.nee.dtype == jnp.float32
    np.testing.assert_allclose(b.nee, a.nee, rtol=1e-4, atol=1e-4)


# --- enhanced variants ---------------------------------------------------------------
def test_gourdji_respiration_hand_value():
    g = GourdjiParams(beta=0.5, a1=0.065, a2=0.0024, gamma=4.61, th1=0.116, th2=-0.0005,
                      th3=0.0009, tcrit=-15.0, tmult=0.55)
    # above Tcrit: T' = T
    t, evi, lswi, lmin, lmax = 12.0, 0.4, 0.2, 0.0, 0.4
    w = 0.5
    ref = 0.5 + 0.065 * t + 0.0024 * t ** 2 + 4.61 * evi + 0.116 * w - 0.0005 * w * t + 0.0009 * w * t ** 2
    assert float(reco_gourdji(t, evi, lswi, lmin, lmax, g)) == pytest.approx(ref, rel=1e-13)
    # below Tcrit: T' = Tcrit - Tmult (Tcrit - T); continuous at Tcrit
    assert float(damped_temperature(-25.0, -15.0, 0.55)) == pytest.approx(-15 - 0.55 * 10)
    assert float(damped_temperature(-15.0, -15.0, 0.55)) == pytest.approx(-15.0)
    assert float(damped_temperature(-25.0, -15.0, 1.0)) == pytest.approx(-25.0)


def test_gourdji_model_runs_and_is_nonnegative():
    p = load_parameters("pyvprm_modis", classes=CLASSES, gourdji="emiproc_example")
    f = _random_forcing(1000, 10)
    out = simulate(p, f, VPRMOptions(respiration="gourdji"))
    assert float(out.reco.min()) >= 0.0
    sm = simulate(p, f, VPRMOptions(respiration="gourdji", mode="smooth", sharpness=1e4))
    np.testing.assert_allclose(sm.reco, out.reco, atol=2e-3)


def test_soil_moisture_stress_limits(params):
    p = load_parameters("pyvprm_modis", classes=CLASSES, theta_wilt=0.1, theta_crit=0.3)
    sm = VPRMOptions(water_stress="soil_moisture")
    dry = simulate(p, forcing(soil_water_content=jnp.asarray([0.05])), sm)
    wet = simulate(p, forcing(soil_water_content=jnp.asarray([0.35])), sm)
    half = simulate(p, forcing(soil_water_content=jnp.asarray([0.2])), sm)
    assert float(dry.gpp[0]) == 0.0
    # wet soil: Wscale = 1 -> GPP = lam Ts Ps EVI PAR/(1 + PAR/PAR0) with Ps = 1 (EVI > th)
    i = CLASSES.index(2)
    ts = float(tscale(20.0, p.tmin[i], p.topt[i], p.tmax[i]))
    ref = float(p.lam[i]) * ts * 0.5 * 1000.0 / (1 + 1000.0 / float(p.par0[i]))
    assert float(wet.gpp[0]) == pytest.approx(ref, rel=1e-12)
    assert float(half.gpp[0]) == pytest.approx(0.5 * float(wet.gpp[0]), rel=1e-12)
    both = simulate(p, forcing(soil_water_content=jnp.asarray([0.2])),
                    VPRMOptions(water_stress="lswi_soil_moisture"))
    assert float(both.gpp[0]) == pytest.approx(float(half.gpp[0]) * 1.2 / 1.4, rel=1e-12)


def test_fapar_variant(params):
    i = CLASSES.index(2)
    out = simulate(params, forcing(fapar=jnp.asarray([0.7]), t=21.0),
                   VPRMOptions(light="fapar"))
    ref = float(params.lam[i]) * 1.0 * (1.2 / 1.4) * 0.7 * 1000.0 / (1 + 1000.0 / float(params.par0[i]))
    assert float(out.gpp[0]) == pytest.approx(ref, rel=1e-12)
    with pytest.raises(ValueError, match="fapar"):
        simulate(params, forcing(), VPRMOptions(light="fapar"))


# --- parameter tables ----------------------------------------------------------------
def test_tables_load_and_sw_conversion():
    for name in available_tables():
        p = load_parameters(name, classes=CLASSES)
        on = np.asarray(p.rules.has_flux) > 0
        assert np.all(np.asarray(p.lam)[on] > 0) and np.all(np.asarray(p.par0)[on] > 0), name
    # WRF savanna converted to PAR units equals pyVPRM's old table entry (RAD0/0.505, |lam|*0.505)
    p = load_parameters("wrf_europe", classes=CLASSES)
    assert float(p.par0[4]) == pytest.approx(1350.4950495049504, rel=1e-12)
    assert float(p.lam[4]) == pytest.approx(0.0576205, rel=1e-12)
    tab = parameter_table("eu2007")
    assert set(tab["name"]) == {"lam", "par0", "alpha", "beta"}
    assert tab["units"].notna().all() and tab["prior"].str.len().gt(0).all()
    assert tab["citation"].str.contains("MPI-BGC").all()
    with pytest.raises(KeyError, match="available"):
        load_parameters("nope")


def test_options_validation():
    with pytest.raises(ValueError, match="mode"):
        VPRMOptions(mode="fuzzy")
    with pytest.raises(ValueError, match="pyvprm_compat"):
        VPRMOptions(mode="smooth", pyvprm_compat=True)


# --- xarray edge ---------------------------------------------------------------------
def _cube(T=24, Y=6, X=5, seed=0):
    rng = np.random.default_rng(seed)
    d3, d2 = ("time", "y", "x"), ("y", "x")
    return xr.Dataset({
        "air_temperature": (d3, rng.uniform(-5, 30, (T, Y, X)), {"units": "degC"}),
        "shortwave_in": (d3, rng.uniform(0, 900, (T, Y, X)), {"units": "W m-2"}),
        "evi": (d3, rng.uniform(0.1, 0.7, (T, Y, X)), {"units": "1"}),
        "lswi": (d3, rng.uniform(-0.1, 0.5, (T, Y, X)), {"units": "1"}),
        "evi_threshold": (d2, np.full((Y, X), 0.4), {"units": "1"}),
        "lswi_min": (d2, np.zeros((Y, X)), {"units": "1"}),
        "lswi_max": (d2, np.full((Y, X), 0.45), {"units": "1"}),
        "class_fractions": (d2 + ("vprm_class",), rng.dirichlet(np.ones(9), (Y, X)), {"units": "1"}),
    }, coords={"vprm_class": CLASSES, "time": np.arange(T)})


def test_xarray_run_dask_equals_eager_and_core(params):
    ds = _cube()
    eager = run(ds, params)
    lazy = run(ds.chunk(time=7, y=3), params)
    assert lazy.nee.chunks is not None
    np.testing.assert_allclose(lazy.nee.compute(), eager.nee, rtol=0, atol=1e-13)
    assert eager.nee.attrs["units"] == "umol m-2 s-1"
    core = simulate(params, VPRMForcing(
        temperature=jnp.asarray(ds.air_temperature.values), par=jnp.asarray(ds.shortwave_in.values / 0.505),
        evi=jnp.asarray(ds.evi.values), lswi=jnp.asarray(ds.lswi.values),
        evi_threshold=jnp.asarray(ds.evi_threshold.values), lswi_min=jnp.asarray(ds.lswi_min.values),
        lswi_max=jnp.asarray(ds.lswi_max.values), class_fractions=jnp.asarray(ds.class_fractions.values)))
    np.testing.assert_allclose(eager.nee.values, core.nee, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("mutate,match", [
    (lambda ds: ds.drop_vars("lswi"), "lswi.*missing"),
    (lambda ds: ds.assign(evi=xr.DataArray(ds.evi.values, dims=ds.evi.dims)), "evi.*units"),
    (lambda ds: ds.assign(air_temperature=ds.air_temperature + 273.15), "kelvin"),
    (lambda ds: ds.assign(evi=ds.evi.where(ds.time != 5)), "evi.*missing values"),
    (lambda ds: ds.assign(class_fractions=ds.class_fractions * 2), "fractions"),
    (lambda ds: ds.assign(air_temperature=ds.air_temperature.assign_attrs(units="degF")),
     "no conversion from 'degF'"),
])
def test_xarray_bad_inputs_raise_named_errors(params, mutate, match):
    with pytest.raises(DataValidationError, match=match):
        run(mutate(_cube()), params)


def test_xarray_kelvin_declared_is_converted(params):
    ds = _cube()
    k = ds.assign(air_temperature=(ds.air_temperature + 273.15).assign_attrs(units="K"))
    np.testing.assert_allclose(run(k, params).nee, run(ds, params).nee, atol=1e-12)


def test_xarray_class_order_mismatch(params):
    ds = _cube().assign_coords(vprm_class=CLASSES[::-1])
    with pytest.raises(DataValidationError, match="class order"):
        run(ds, params)


def test_xarray_dask_input_range_checked_without_full_compute(params):
    ds = _cube().chunk(time=5)
    bad = ds.assign(air_temperature=ds.air_temperature + 273.15)
    with pytest.raises(DataValidationError, match="kelvin"):
        run(bad, params)

