"""Root profile (Jackson et al. 1996), CLM4.5 layer stress, stress factor and uptake."""
import jax.numpy as jnp
import numpy as np
import pytest

from process_models.coupled import load_parameters
from process_models.coupled.roots import (layer_stress, root_fractions, uptake_demand,
                                          water_stress_factor)
from process_models.coupled.soil_water import layer_geometry, theta_from_head


@pytest.mark.parametrize("pft", ["ENF", "DBF", "GRA", "CRO"])
def test_root_fractions_follow_jackson(pft):
    p = load_parameters(pft)
    r = root_fractions(p.roots, p.layer_thickness)
    np.testing.assert_allclose(float(r.sum()), 1.0, rtol=1e-14)
    assert np.all(np.asarray(r) > 0)
    # cumulative fraction at each layer bottom = (1 - beta^d) / (1 - beta^200), d in cm
    dz, top, _, _ = layer_geometry(p.layer_thickness)
    d_cm = 100.0 * np.asarray(top + dz)
    beta = float(p.roots.root_beta)
    np.testing.assert_allclose(np.cumsum(r), (1 - beta ** d_cm) / (1 - beta ** 200.0), rtol=1e-12)


def test_grass_roots_shallower_than_conifer():
    enf, gra = load_parameters("ENF"), load_parameters("GRA")
    r_enf = root_fractions(enf.roots, enf.layer_thickness)
    r_gra = root_fractions(gra.roots, gra.layer_thickness)
    assert float(r_gra[:3].sum()) > float(r_enf[:3].sum())      # Jackson: 0.943 vs 0.976


def test_layer_stress_limits_and_monotone():
    p = load_parameters("ENF")
    s, rt = p.soil, p.roots
    wet = theta_from_head(rt.psi_open * 0.5, s)          # wetter than psi_open -> 1
    dry = theta_from_head(rt.psi_close * 2.0, s)         # drier than psi_close -> 0
    mid = theta_from_head(0.5 * (rt.psi_open + rt.psi_close), s)
    np.testing.assert_allclose(layer_stress(wet, s, rt), 1.0)
    np.testing.assert_allclose(layer_stress(dry, s, rt), 0.0)
    np.testing.assert_allclose(layer_stress(mid, s, rt), 0.5, rtol=1e-10)
    theta = jnp.linspace(float(s.theta_res) + 0.005, float(s.theta_sat), 200)
    w = np.asarray(layer_stress(theta, s, rt))
    assert np.all(np.diff(w) >= 0)


def test_stress_factor_decreases_as_soil_dries():
    p = load_parameters("ENF")
    betas = []
    for theta in np.linspace(0.30, 0.06, 13):
        beta, weights = water_stress_factor(jnp.full(p.n_layers, theta), p.soil, p.roots,
                                            p.layer_thickness)
        np.testing.assert_allclose(float(weights.sum()), float(beta), rtol=1e-14)
        betas.append(float(beta))
    assert betas[0] == pytest.approx(1.0) and betas[-1] == pytest.approx(0.0)
    assert np.all(np.diff(betas) <= 0)


def test_uptake_follows_root_weights_and_closes():
    p = load_parameters("ENF")
    theta = jnp.asarray(np.linspace(0.30, 0.12, p.n_layers))   # wet on top, dry below
    _, weights = water_stress_factor(theta, p.soil, p.roots, p.layer_thickness)
    u = uptake_demand(3.0, weights)
    np.testing.assert_allclose(float(u.sum()), 3.0, rtol=1e-10)
    np.testing.assert_allclose(np.asarray(u) / 3.0, np.asarray(weights / weights.sum()), atol=1e-10)
    assert np.all(np.asarray(u)[np.asarray(weights) == 0] < 1e-9)
