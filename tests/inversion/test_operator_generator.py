"""Observation operator and synthetic scene generator (assimilation.inversion)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from assimilation.inversion import (ObservationConfig, SceneConfig, footprint_average, generate_dataset,
                                    load_dataset, observe, upsample)
from assimilation.inversion.generator import _turn
from process_models.transport import M_NO2

pytest.importorskip("process_models.io.tropomi")
from process_models.io.tropomi import ddeq_data_dir  # noqa: E402

try:
    ddeq_data_dir()
    HAVE_DDEQ = True
except FileNotFoundError:  # pragma: no cover
    HAVE_DDEQ = False


def test_footprint_average_conserves_the_column_integral_and_upsample_inverts_it():
    a = jax.random.uniform(jax.random.key(0), (12, 18), jnp.float64)
    p = footprint_average(a, 3)
    assert p.shape == (4, 6)
    np.testing.assert_allclose(jnp.sum(p) * 9, jnp.sum(a), rtol=1e-14)
    np.testing.assert_allclose(footprint_average(upsample(p, 3), 3), p, rtol=1e-14)
    with pytest.raises(ValueError, match="multiple"):
        footprint_average(a, 5)


def test_observe_units_noise_statistics_and_masks():
    c = jnp.full((40, 40), 1e-5)                       # kg m-2 NOx
    oc = ObservationConfig(pixel_cells=2, noise_std=2e-6)
    clean = observe(c, 0.75, oc, kernel=0.9)
    np.testing.assert_allclose(clean, 0.9 * 0.75 * 1e-5 / M_NO2, rtol=1e-14)
    valid = jnp.ones((20, 20)).at[:5].set(0.0)
    noisy = observe(c, 0.75, oc, kernel=0.9, key=jax.random.key(3), valid=valid)
    assert bool(jnp.all(jnp.isnan(noisy[:5]))) and bool(jnp.all(jnp.isfinite(noisy[5:])))
    resid = np.asarray(noisy[5:] - clean[5:]).ravel()          # 300 draws of N(0, 2e-6)
    assert abs(resid.std() / 2e-6 - 1) < 0.15 and abs(resid.mean()) < 4 * 2e-6 / np.sqrt(300)
    floor = observe(c, 0.75, oc, key=jax.random.key(3), no2_std=jnp.full((20, 20), 1e-5))
    assert float(jnp.std(floor - observe(c, 0.75, oc))) > 5e-6     # NO2_std acts as a floor


def test_wind_turn_rotates_the_divergence_with_the_pattern():
    """div(R w)(R x) = div(w)(x): the rotated/mirrored wind has the rotated divergence."""
    rng = np.random.default_rng(0)
    u, v = rng.standard_normal((2, 16, 16))
    div = lambda u, v: np.gradient(u, axis=1) + np.gradient(v, axis=0)
    for k in range(4):
        for mirror in (False, True):
            ur, vr = _turn(u, v, k, mirror)
            ref = np.rot90(div(u, v), k)
            ref = ref[:, ::-1] if mirror else ref
            np.testing.assert_allclose(div(ur, vr)[2:-2, 2:-2], ref[2:-2, 2:-2], atol=1e-12)


@pytest.mark.skipif(not HAVE_DDEQ, reason="ddeq==1.1 data not installed")
def test_generator_is_seeded_chunked_and_chunk_size_independent(tmp_path):
    cfg = SceneConfig(n=24, hours=2.0, n_sources=1, inner=(0.4, 0.6), min_separation=4)
    a = load_dataset(generate_dataset(tmp_path / "a", 6, config=cfg, seed=5, chunk_size=3, progress=False))
    b = load_dataset(generate_dataset(tmp_path / "b", 6, config=cfg, seed=5, chunk_size=6, progress=False))
    assert len(list((tmp_path / "a").glob("chunk_*.npz"))) == 2
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    c = load_dataset(generate_dataset(tmp_path / "c", 6, config=cfg, seed=6, chunk_size=6, progress=False))
    assert not np.allclose(a["point_rates"], c["point_rates"])
    # truth bookkeeping: total = area + points; obs = clean + noise where valid
    np.testing.assert_allclose(a["total_emission"],
                               a["area_emission"].sum((1, 2)) * cfg.dx**2 + a["point_rates"].sum(1), rtol=1e-12)
    ok = a["valid"] > 0
    r = (a["obs"] - a["clean"])[ok] / a["noise_std"][0]
    assert abs(r.std() - 1) < 0.1
    assert np.all(np.isnan(a["obs"][~ok]))
