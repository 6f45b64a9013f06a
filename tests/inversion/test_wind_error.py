"""The imperfect wind of the honest (no inverse crime) inversions."""
import numpy as np
import pytest

from assimilation.inversion.generator import WindError, perturbed_winds


def _wind(n=20, seed=0):
    rng = np.random.default_rng(seed)
    return 4.0 + rng.standard_normal((n, n)), rng.standard_normal((n, n))


def test_perturbed_winds_are_seeded_and_reduce_to_the_truth_without_error():
    u, v = _wind()
    a = perturbed_winds(u, v, 1, 3)
    np.testing.assert_array_equal(a[0], perturbed_winds(u, v, 1, 3)[0])
    assert not np.allclose(a[0], perturbed_winds(u, v, 1, 4)[0])
    none = WindError(smoothing=0.0, direction_sd=0.0, speed_log_sd=0.0)
    np.testing.assert_allclose(perturbed_winds(u, v, 1, 3, none), (u, v), rtol=0, atol=1e-12)


def test_turning_keeps_speed_and_scaling_keeps_direction():
    u, v = _wind()
    uu, vv = perturbed_winds(u, v, 0, 0, WindError(smoothing=0.0, direction_sd=20.0, speed_log_sd=0.0))
    np.testing.assert_allclose(np.hypot(uu, vv), np.hypot(u, v), rtol=1e-12)
    assert not np.allclose(uu, u)
    uu, vv = perturbed_winds(u, v, 0, 0, WindError(smoothing=0.0, direction_sd=0.0, speed_log_sd=0.2))
    f = np.hypot(uu, vv) / np.hypot(u, v)
    np.testing.assert_allclose(f, f.flat[0], rtol=1e-12)          # one factor per scene
    np.testing.assert_allclose(np.arctan2(vv, uu), np.arctan2(v, u), atol=1e-12)


def test_smoothing_removes_small_scales_and_bad_shapes_are_errors():
    u, v = _wind()
    uu, _ = perturbed_winds(u, v, 0, 0, WindError(smoothing=10e3, direction_sd=0.0, speed_log_sd=0.0))
    assert uu.std() < 0.5 * u.std() and abs(uu.mean() - u.mean()) < 0.05
    assert WindError().wind_rel_sd == pytest.approx(np.hypot(0.1, np.deg2rad(10.0)))
    with pytest.raises(ValueError, match="equal 2-D"):
        perturbed_winds(u, v[:5], 0, 0)
