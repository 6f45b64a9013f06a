"""Two-big-leaf canopy: radiation against pyrealm 2.0 two_leaf, conservation, responses,
jit/vmap equivalences and finite gradients over the parameter box."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from process_models.coupled import canopy as C
from process_models.coupled import radiation as R
from process_models.coupled._vegetation_table import PFTS, parameter_bounds
from process_models.coupled.canopy import (canopy_fluxes, default_canopy_params, default_leaf_params,
                                           leaf_canopy_table)
from process_models.units import DataValidationError

FLUXES = jax.jit(canopy_fluxes)
N = 8
_RNG = np.random.default_rng(42)
FORCING = dict(  # 8 conditions: night, dawn, overcast, clear midday, hot/dry, cold, sparse, dense
    shortwave_in=np.array([0.0, 40.0, 150.0, 850.0, 900.0, 300.0, 600.0, 600.0]),
    cos_zenith=np.array([-0.2, 0.08, 0.5, 0.9, 0.85, 0.35, 0.7, 0.7]),
    air_temperature=np.array([8.0, 10.0, 15.0, 24.0, 35.0, -2.0, 20.0, 20.0]),
    vpd=np.array([1.0, 2.0, 3.0, 12.0, 40.0, 1.0, 10.0, 10.0]),
    co2=np.full(N, 410.0), air_pressure=np.array([97.0, 97.0, 97.0, 97.0, 99.0, 95.0, 101.0, 101.0]),
    wind_speed=np.array([0.0, 1.0, 3.0, 2.5, 4.0, 6.0, 2.0, 2.0]),
    lai=np.array([4.0, 4.0, 4.0, 4.0, 3.0, 1.0, 0.3, 7.0]),
    water_stress=np.array([1.0, 1.0, 1.0, 1.0, 0.6, 1.0, 1.0, 0.9]),
)


def _run(pft="DBF", **override):
    f = {k: jnp.asarray(v) for k, v in FORCING.items()}
    f.update({k: jnp.broadcast_to(jnp.asarray(v, jnp.float64), (N,)) for k, v in override.items()})
    return FLUXES(default_leaf_params(pft), default_canopy_params(pft), **f)


def test_sun_shade_irradiance_matches_pyrealm_two_leaf():
    tl = pytest.importorskip("pyrealm.pmodel.two_leaf")
    elev = np.deg2rad(np.array([10.0, 30.0, 50.0, 70.0, 85.0]))
    lai = np.array([0.5, 2.0, 3.5, 5.0, 8.0])
    ib, idf = 1200.0 * np.array([0.2, 0.5, 0.7, 0.8, 0.3]), 1200.0 * np.array([0.8, 0.5, 0.3, 0.2, 0.7])
    kb_ref = tl.calculate_beam_extinction_coef(elev)
    kb = C.beam_extinction(np.sin(elev), 0.0)            # spherical leaves: G = 0.5
    np.testing.assert_allclose(kb, kb_ref, rtol=1e-12)
    kbp_ref = tl.calculate_beam_extinction_coef(elev, extinction_numerator=0.46)
    rho_cb = tl.calculate_beam_reflectance(kb_ref, tl.TwoLeafConst().horizontal_leaf_reflectance)
    sun_ref = (tl.calculate_sunlit_beam_irradiance(ib, kb_ref, lai)
               + tl.calculate_sunlit_diffuse_irradiance(idf, kb_ref, lai)
               + tl.calculate_sunlit_scattered_irradiance(ib, rho_cb, kbp_ref, kb_ref, lai))
    total_ref = tl.calculate_canopy_irradiance(rho_cb, ib, kbp_ref, idf, lai)
    sun, shade = C.absorbed_par_sun_shade(ib, idf, kb, lai, 1.0, 0.15)
    # pyrealm rounds k_b' = 0.46/sin(beta), k_d' = 0.719 and rho_cd = 0.036; we derive them from
    # sigma = 0.15 (0.461/sin(beta), 0.7192, 0.0350): agreement to 0.3 %.
    np.testing.assert_allclose(sun, sun_ref, rtol=3e-3)
    np.testing.assert_allclose(sun + shade, total_ref, rtol=3e-3)


def test_big_leaf_capacity_matches_pyrealm_two_leaf():
    """pyrealm writes the canopy N profile per canopy (k_v); ours per unit LAI (k_n = k_v / L)."""
    tl = pytest.importorskip("pyrealm.pmodel.two_leaf")
    lai = np.array([0.5, 2.0, 4.0, 7.0])
    kn = np.array([0.1, 0.18, 0.25, 0.4])
    kb = 0.5 / np.sin(np.deg2rad(np.array([20.0, 40.0, 60.0, 80.0])))
    sun, shade = C.big_leaf_capacity(lai, kb, 1.0, kn)
    np.testing.assert_allclose(sun, tl.calculate_sun_vcmax25(lai, 1.0, kn * lai, kb), rtol=1e-12)
    np.testing.assert_allclose(np.asarray(sun) + np.asarray(shade),
                               tl.calculate_canopy_vcmax25(lai, 1.0, kn * lai), rtol=1e-12)


def test_leaf_area_partition_and_energy_conservation():
    for pft in ("ENF", "GRA", "CRO_C4"):
        out = _run(pft)
        lai = FORCING["lai"]
        np.testing.assert_allclose(np.asarray(out.lai_sunlit) + np.asarray(out.lai_shaded), lai, rtol=1e-12)
        assert np.all(np.asarray(out.lai_sunlit) <= lai) and np.all(np.asarray(out.lai_shaded) >= 0)
        sw = FORCING["shortwave_in"]
        absorbed = np.asarray(out.absorbed_shortwave_canopy) + np.asarray(out.absorbed_shortwave_ground)
        assert np.all(absorbed <= sw + 1e-9)
        assert np.all(absorbed >= 0.6 * sw)                      # albedo of a vegetated surface < 0.4
        par_in = R.PAR_FRACTION * R.UMOL_PER_JOULE * sw
        apar = np.asarray(out.apar)
        np.testing.assert_allclose(apar, np.asarray(out.apar_sunlit) + np.asarray(out.apar_shaded), rtol=1e-12)
        assert np.all(apar <= par_in + 1e-9) and np.all(apar >= 0)
        np.testing.assert_allclose(out.gpp, np.asarray(out.gpp_sunlit) + np.asarray(out.gpp_shaded), rtol=1e-12)
        np.testing.assert_allclose(out.net_radiation, np.asarray(out.canopy_available_energy)
                                   + np.asarray(out.soil_available_energy), rtol=1e-12)


def test_sunlit_area_limits():
    kb = C.beam_extinction(jnp.array(0.5), 0.0)
    assert float(C.sunlit_leaf_area(1e-4, kb, 0.7)) == pytest.approx(1e-4, rel=1e-3)
    assert float(C.sunlit_leaf_area(60.0, kb, 0.7)) == pytest.approx(1.0 / (float(kb) * 0.7), rel=1e-9)


def test_physical_ranges_and_night():
    for pft in PFTS:
        out = _run(pft)
        for name, v in out.__dict__.items():
            assert np.all(np.isfinite(np.asarray(v))), (pft, name)
        gpp = np.asarray(out.gpp)
        assert np.all(gpp >= 0) and gpp[0] == 0.0 and gpp[3] > 10.0, pft
        assert np.all(np.asarray(out.transpiration_demand) >= 0)
        assert np.all(np.asarray(out.leaf_respiration) > 0)
        g0_canopy = float(default_leaf_params(pft).g0) * FORCING["lai"][0]
        assert float(out.canopy_conductance_molar[0]) == pytest.approx(g0_canopy, rel=1e-9)
        assert float(out.sif[0]) == 0.0 and 0.1 < float(out.sif[3]) < 5.0


def test_gpp_decreases_with_drier_soil_and_higher_vpd():
    stress = _run("DBF", water_stress=np.linspace(1.0, 0.0, N), shortwave_in=800.0, cos_zenith=0.8,
                  air_temperature=25.0, vpd=15.0, lai=4.0, air_pressure=100.0, wind_speed=2.0)
    g = np.asarray(stress.gpp)
    assert np.all(np.diff(g) < 0) and g[-1] == pytest.approx(0.0, abs=1e-9)
    assert np.all(np.diff(np.asarray(stress.transpiration_demand)) < 0)
    vpd = _run("ENF", vpd=np.linspace(2.0, 45.0, N), shortwave_in=800.0, cos_zenith=0.8, air_temperature=25.0,
               lai=4.0, water_stress=1.0, air_pressure=100.0, wind_speed=2.0)
    assert np.all(np.diff(np.asarray(vpd.gpp)) < 0)
    assert np.all(np.diff(np.asarray(vpd.canopy_conductance)) < 0)


def test_zero_lai_gives_no_canopy_fluxes():
    out = _run("GRA", lai=0.0)
    np.testing.assert_allclose(out.gpp, 0.0, atol=1e-12)
    np.testing.assert_allclose(out.transpiration_demand, 0.0, atol=1e-15)
    np.testing.assert_allclose(out.absorbed_shortwave_canopy, 0.0, atol=1e-9)


def test_jit_eager_and_vmap_loop_equivalence():
    """jit == eager (the eager call also takes scalar LAI / cos z / CO2 with array weather, which
    checks that the sun/shade stacking broadcasts without mixing axes); vmap over an ensemble of
    parameter sets == a loop over the members."""
    lp, cp = default_leaf_params("MF"), default_canopy_params("MF")
    f = {k: jnp.asarray(v) for k, v in FORCING.items()}
    f.update(lai=jnp.full(N, 3.0), cos_zenith=jnp.full(N, 0.6), shortwave_in=f["shortwave_in"] + 50.0)
    jitted = FLUXES(lp, cp, **f)
    eager = canopy_fluxes(lp, cp, **{**f, "lai": 3.0, "cos_zenith": 0.6, "co2": 410.0})
    # ensemble of parameter sets (members axis first): vmap vs a loop over members
    scales = jnp.array([1.0, 0.8, 1.2])
    members = jax.tree_util.tree_map(lambda x: x * scales, (lp, cp))
    ens = jax.jit(jax.vmap(lambda l, c: canopy_fluxes(l, c, **f)))(*members)
    names = ("gpp", "gpp_sunlit", "transpiration_demand", "soil_available_energy", "sif", "canopy_conductance")
    for name in names:
        ref = np.asarray(getattr(jitted, name))
        np.testing.assert_allclose(getattr(eager, name), ref, rtol=1e-12, atol=1e-15)
    for i in range(len(scales)):
        member = jax.tree_util.tree_map(lambda x: x[i], members)
        loop_i = FLUXES(*member, **f)
        for name in names:
            np.testing.assert_allclose(getattr(ens, name)[i], getattr(loop_i, name), rtol=1e-12, atol=1e-15)
    assert not np.allclose(ens.gpp[1], ens.gpp[2])


def _loss_from(out):
    return float(jnp.sum(out.gpp) + 1e5 * jnp.sum(out.transpiration_demand))


@pytest.mark.parametrize("pft", ["DBF", pytest.param("GRA_C4", marks=pytest.mark.slow)])
def test_finite_gradients_over_parameter_box(pft):
    """jax.grad of GPP (+ transpiration) w.r.t. every leaf and canopy parameter at seeded random
    points of the [lower, upper] box of the table: finite; d GPP / d Vcmax25 > 0; and equal to a
    central finite difference at the defaults."""
    bounds = parameter_bounds(pft)
    lp0, cp0 = default_leaf_params(pft), default_canopy_params(pft)
    f = {k: jnp.asarray(v) for k, v in FORCING.items()}
    # edge cases in point 5: no leaves, saturated air, calm, fully water-stressed
    for k, v in dict(lai=0.0, vpd=0.0, wind_speed=0.0, water_stress=0.0).items():
        f[k] = f[k].at[5].set(v)

    def loss(lp, cp):
        out = canopy_fluxes(lp, cp, **f)
        return jnp.sum(out.gpp) + 1e5 * jnp.sum(out.transpiration_demand)

    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
    rng = np.random.default_rng(7)
    for _ in range(6):
        draw = lambda tree: tree.replace(**{k: jnp.asarray(rng.uniform(*bounds[k])) for k in bounds
                                            if hasattr(tree, k)})
        lp, cp = draw(lp0), draw(cp0)
        g_leaf, g_can = grad(lp, cp)
        for tree in (g_leaf, g_can):
            for name, v in tree.__dict__.items():
                if isinstance(v, jax.Array):
                    assert np.isfinite(float(v)), (pft, name)
        assert float(g_leaf.vcmax25) > 0
    eps = 1e-4
    fd = (_loss_from(FLUXES(lp0.replace(g1=lp0.g1 + eps), cp0, **f))
          - _loss_from(FLUXES(lp0.replace(g1=lp0.g1 - eps), cp0, **f))) / (2 * eps)
    assert float(grad(lp0, cp0)[0].g1) == pytest.approx(fd, rel=1e-5)


def test_float32_runs():
    lp = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), default_leaf_params("ENF"))
    cp = jax.tree_util.tree_map(lambda x: jnp.asarray(x, jnp.float32), default_canopy_params("ENF"))
    out = FLUXES(lp, cp, **{k: jnp.asarray(v, jnp.float32) for k, v in FORCING.items()})
    ref = _run("ENF")
    assert out.gpp.dtype == jnp.float32
    np.testing.assert_allclose(out.gpp, ref.gpp, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(out.latent_heat_canopy, ref.latent_heat_canopy, rtol=1e-4, atol=1e-3)


def test_parameter_table():
    t = leaf_canopy_table()
    assert list(t.columns) == ["name", "unit", "pft", "default", "lower", "upper", "prior", "citation"]
    assert {"ENF", "EBF", "DBF", "MF", "GRA", "CRO", "SAV", "SHR", "WET"} <= set(t["pft"])
    assert np.all((t["lower"] <= t["default"]) & (t["default"] <= t["upper"]))
    assert t["citation"].str.len().min() > 5
    assert default_leaf_params("C4G").c4 and not default_leaf_params("enf").c4
    assert len(leaf_canopy_table("GRA")) == len(t) // len(PFTS)
    with pytest.raises(DataValidationError, match="plant functional type"):
        default_leaf_params("XYZ")


def test_input_check_names_variable_and_fix():
    C.check_canopy_inputs(**FORCING)                              # valid forcing passes
    with pytest.raises(DataValidationError, match="air_pressure.*hPa / 10"):
        C.check_canopy_inputs(air_pressure=FORCING["air_pressure"] * 10.0)
    with pytest.raises(DataValidationError, match="air_temperature.*273.15"):
        C.check_canopy_inputs(air_temperature=FORCING["air_temperature"] + 273.15)
    with pytest.raises(DataValidationError, match="vpd.*non-finite"):
        C.check_canopy_inputs(vpd=np.array([1.0, np.nan]))
    with pytest.raises(DataValidationError, match="water_stress"):
        C.check_canopy_inputs(water_stress=1.2)
