"""Soil water: Campbell closures, Richards solver (analytic steady states), limiter,
stability under storms at 30- and 60-minute steps, exact water balance, snow."""
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from process_models.coupled import load_parameters
from process_models.coupled.soil_water import (
    field_capacity, hydraulic_conductivity, layer_geometry, limit_bounds, matric_head,
    smooth_min, snow_step, soil_water_step, solve_tridiagonal, theta_from_head, thomas_solve,
    water_storage)

TEXTURES = ("sand", "loam", "clay")


@pytest.fixture(scope="module")
def params():
    return {t: load_parameters("ENF", soil_texture=t) for t in TEXTURES}


def test_campbell_closures_published_values(params):
    s = params["loam"].soil
    # Clapp & Hornberger (1978) loam: b 5.39, psi_s -47.8 cm, theta_s 0.451, K_s 6.95e-4 cm s-1
    np.testing.assert_allclose([s.b, s.psi_sat, s.theta_sat, s.k_sat],
                               [5.39, -0.478, 0.451, 6.95e-6], rtol=1e-12)
    theta = jnp.linspace(0.05, 0.451, 50)
    psi = matric_head(theta, s)
    k = hydraulic_conductivity(theta, s)
    assert np.all(np.diff(psi) > 0) and np.all(np.diff(k) > 0)          # monotone in theta
    np.testing.assert_allclose(psi[-1], s.psi_sat, rtol=1e-12)
    np.testing.assert_allclose(k[-1], s.k_sat, rtol=1e-12)
    np.testing.assert_allclose(k[0], s.k_sat * (0.05 / 0.451) ** (2 * 5.39 + 3), rtol=1e-12)
    np.testing.assert_allclose(theta_from_head(psi, s), theta, rtol=1e-10)   # inverse
    # field capacity: psi(theta_fc) = -33 kPa = -3.366 m
    np.testing.assert_allclose(matric_head(field_capacity(s), s), -3.366, rtol=1e-10)


def test_tridiagonal_solver_matches_thomas():
    rng = np.random.default_rng(1)
    n = 8
    lower, upper = rng.uniform(-1, 0, n), rng.uniform(-1, 0, n)
    diag = 2.5 + rng.uniform(0, 1, n)
    rhs = rng.normal(size=n)
    x1 = solve_tridiagonal(*map(jnp.asarray, (lower, diag, upper, rhs)))
    x2 = thomas_solve(*map(jnp.asarray, (lower, diag, upper, rhs)))
    dense = np.diag(diag) + np.diag(lower[1:], -1) + np.diag(upper[:-1], 1)
    np.testing.assert_allclose(x1, np.linalg.solve(dense, rhs), rtol=1e-12)
    np.testing.assert_allclose(x2, x1, rtol=1e-12)


@pytest.mark.parametrize("texture", TEXTURES)
def test_steady_gravity_drainage(params, texture):
    """Uniform theta with a unit gradient: every interface flux is K(theta); with rain
    = K(theta) dt at the top the profile is steady and drainage = K(theta) dt.
    (theta = 0.6 theta_sat keeps rain/K_sat small enough that the smooth infiltration
    limit, relative deficit (P/K_sat)^8 / 8, is below round-off.)"""
    p = params[texture]
    theta0 = jnp.full(p.n_layers, 0.6 * p.soil.theta_sat)
    k = hydraulic_conductivity(theta0[0], p.soil)
    dt = 3600.0
    rain_mm = float(k) * dt * 1000.0
    theta, runoff, drainage = soil_water_step(theta0, rain_mm, jnp.zeros(p.n_layers), p.soil,
                                              p.layer_thickness, dt)
    np.testing.assert_allclose(theta, theta0, rtol=1e-12, atol=0)
    np.testing.assert_allclose(drainage, rain_mm, rtol=1e-9)
    assert float(runoff) < 1e-9 * rain_mm


@pytest.mark.parametrize("texture", TEXTURES)
def test_hydrostatic_equilibrium_stays_put(texture):
    """psi + elevation constant (no-flux bottom, no rain, no sinks): no fluxes, no change."""
    p = load_parameters("GRA", soil_texture=texture, bottom_boundary="no_flux")
    _, _, centre, _ = layer_geometry(p.layer_thickness)
    psi_bottom = p.soil.psi_sat - 0.05                    # water table just below the profile
    psi = psi_bottom - (centre[-1] - centre)              # hydrostatic: d psi / d depth = 1
    theta0 = theta_from_head(psi, p.soil)
    final, (theta, runoff, drainage) = _scan_soil(theta0, jnp.zeros(24), jnp.zeros(p.n_layers),
                                                  p.soil, p.layer_thickness, 3600.0, "no_flux")
    assert float(jnp.max(jnp.abs(runoff))) == 0.0 and float(jnp.max(jnp.abs(drainage))) == 0.0
    theta = final
    np.testing.assert_allclose(theta, theta0, rtol=1e-12, atol=1e-14)


@partial(jax.jit, static_argnames=("layer_thickness", "dt", "bottom_boundary"))
def _scan_soil(theta0, rain, sink, soil, layer_thickness, dt, bottom_boundary="free_drainage"):
    """Soil water alone over a rain series (mm per step) with a constant sink (mm per step)."""
    def body(theta, r):
        new, runoff, drainage = soil_water_step(theta, r, sink, soil, layer_thickness, dt,
                                                bottom_boundary=bottom_boundary)
        return new, (new, runoff, drainage)
    return jax.lax.scan(body, theta0, rain)


def _storm_run(p, dt, theta0):
    """A 6-hour 50 mm h-1 storm followed by drying with a root/evaporation sink (2 days)."""
    n = int(round(86400 * 2 / dt))
    rain = np.zeros(n)
    rain[: int(6 * 3600 / dt)] = 50.0 * dt / 3600.0
    sink = np.full(p.n_layers, 0.01 * dt / 3600.0)
    final, (theta, runoff, drainage) = _scan_soil(theta0, jnp.asarray(rain), jnp.asarray(sink),
                                                  p.soil, p.layer_thickness, dt)
    return rain, sink, final, theta, runoff, drainage


@pytest.mark.parametrize("dt", [1800.0, 3600.0])
@pytest.mark.parametrize("texture,start", [("sand", "dry"), ("loam", "wet"), ("clay", "dry")])
def test_storm_stability_bounds_and_closure(params, dt, texture, start):
    p = params[texture]
    s = p.soil
    theta0 = jnp.full(p.n_layers, float(s.theta_res) + 0.02 if start == "dry"
                      else 0.97 * float(s.theta_sat))
    rain, sink, final, theta, runoff, drainage = _storm_run(p, dt, theta0)
    assert np.all(np.isfinite(theta)) and np.all(np.isfinite(runoff))
    assert np.all(theta >= float(s.theta_res) - 1e-12)
    assert np.all(theta <= float(s.theta_sat) + 1e-12)
    assert np.all(np.asarray(runoff) >= 0.0)
    d_storage = float(water_storage(final, p.layer_thickness) - water_storage(theta0, p.layer_thickness))
    residual = rain.sum() - sink.sum() * rain.size - float(runoff.sum()) - float(drainage.sum()) - d_storage
    assert abs(residual) < 1e-9, residual                         # mm, float64 round-off
    if texture == "clay":                                         # 50 mm/h >> K_sat = 4.6 mm/h
        assert float(runoff.sum()) > 100.0


def test_limiter_conserves_and_bounds(params):
    p = params["loam"]
    dz, _, _, _ = layer_geometry(p.layer_thickness)
    rng = np.random.default_rng(3)
    for _ in range(20):
        theta = jnp.asarray(rng.uniform(-0.05, 0.6, p.n_layers))
        new, runoff, drain_reduction = limit_bounds(theta, p.soil, dz)
        assert np.all(new >= float(p.soil.theta_res) - 1e-15)
        assert np.all(new <= float(p.soil.theta_sat) + 1e-15)
        change = float(jnp.sum((new - theta) * dz))
        np.testing.assert_allclose(change, -float(runoff) + float(drain_reduction), atol=1e-15)


def test_smooth_min_properties():
    a = jnp.linspace(0.0, 3.0, 31)
    b = 1.0
    m = smooth_min(a, b)
    assert np.all(m <= np.minimum(a, b) + 1e-15) and float(m[0]) == 0.0
    np.testing.assert_allclose(smooth_min(0.5, 1.0), 0.5, rtol=1e-3)
    assert float(smooth_min(1.0, 0.0)) == 0.0
    g = jax.grad(lambda x: smooth_min(x, 1e-40))(1.0)
    assert np.isfinite(g)


def test_snow_pack_closes_and_melts(params):
    s = params["loam"].soil
    swe, to_soil = snow_step(0.0, 10.0, -5.0, s, 3600.0)        # cold: snow accumulates
    assert float(swe) > 9.9 and float(to_soil) < 0.1
    np.testing.assert_allclose(float(swe) + float(to_soil), 10.0, rtol=1e-14)
    swe2, melt = snow_step(swe, 0.0, 8.0, s, 86400.0)            # warm day: melt 3 x 8 mm
    np.testing.assert_allclose(float(swe2) + float(melt), float(swe), rtol=1e-14)
    assert float(melt) > 9.0 and float(swe2) >= 0.0
