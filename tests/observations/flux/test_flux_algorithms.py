"""Flux-tower algorithms on synthetic data with known answers, and bad input."""
import jax.numpy as jnp
import numpy as np
import pytest

from assimilation.observations.flux import (
    FluxMagnitudeModel, UstarSettings, despike_mad, fit_flux_magnitude_model,
    fit_light_response, fit_lloyd_taylor, light_response_nee, lloyd_taylor, mds_gapfill,
    mpt_threshold, partition_nighttime, paired_differences, select_valid)
from process_models.units import DataValidationError

# third-party internals that mix dtypes (run under standard promotion, see conftest)
_ADAM = "optax.adam computes its bias correction as a Python float decay raised to its int32 step count"

SPD = 48


def _met(ndays=30, seed=0):
    rng = np.random.default_rng(seed)
    n = ndays * SPD
    h = (np.arange(n) % SPD) / 2.0
    rg = np.clip(800 * np.sin(np.pi * (h - 6) / 12), 0, None) * rng.uniform(0.6, 1.0, n)
    tair = 10 + 6 * np.sin(np.pi * (h - 9) / 12) + rng.normal(0, 0.5, n)
    vpd = np.clip(5 + 0.8 * (tair - 10) + rng.normal(0, 1, n), 0, None)
    return rg, tair, vpd


def test_mds_returns_exact_value_of_identical_conditions():
    """A gap whose only similar measured records hold the same value is filled with it
    exactly, with quality 1 and sd 0."""
    n = 14 * SPD
    rg = np.zeros(n)
    tair = np.full(n, 20.0)        # far from the target's 0 degC
    vpd = np.full(n, 3.0)
    flux = np.full(n, 5.0)
    gap = 7 * SPD + 10
    flux[gap] = np.nan
    tair[gap] = 0.0
    twins = [gap - 3 * SPD, gap + 2 * SPD, gap + 5 * SPD]
    tair[twins] = 0.3
    flux[twins] = -3.25
    r = mds_gapfill(flux, rg, tair, vpd)
    assert r.filled[gap] == pytest.approx(-3.25, abs=1e-12)
    assert r.qc[gap] == 1 and r.count[gap] == 3 and r.sd[gap] == pytest.approx(0.0, abs=1e-12)
    assert np.all(r.qc[np.isfinite(flux)] == 0)
    np.testing.assert_array_equal(r.filled[np.isfinite(flux)], flux[np.isfinite(flux)])


def test_mds_falls_back_to_mean_diurnal_course_without_met():
    """Without meteorology the cascade uses the mean diurnal course (method 3)."""
    n = 10 * SPD
    base = np.sin(2 * np.pi * np.arange(n) / SPD)
    flux = base.copy()
    flux[4 * SPD + 20] = np.nan
    nanmet = np.full(n, np.nan)
    r = mds_gapfill(flux, nanmet, nanmet, nanmet)
    i = 4 * SPD + 20
    assert r.method[i] == 3 and r.qc[i] == 1          # same day, +-1 h
    assert r.filled[i] == pytest.approx(np.mean(base[i - 2:i + 3][[0, 1, 3, 4]]), rel=1e-12)


def test_lloyd_taylor_fit_recovers_parameters():
    rng = np.random.default_rng(1)
    t = rng.uniform(-5, 20, (3, 200))
    true = np.array([[2.0, 150.0], [4.5, 250.0], [0.8, 90.0]])
    y = np.asarray(lloyd_taylor(t, true[:, :1], true[:, 1:]))
    fit = fit_lloyd_taylor(t, y, np.ones_like(y, bool))
    np.testing.assert_allclose(np.asarray(fit.params), true, rtol=1e-6)
    assert lloyd_taylor(15.0, 3.0, 200.0) == pytest.approx(3.0)   # R = R_ref at T_ref


def test_light_response_fit_recovers_parameters():
    rng = np.random.default_rng(2)
    rg = rng.uniform(10, 900, (2, 150))
    t = rng.uniform(5, 25, (2, 150))
    vpd = rng.uniform(0, 25, (2, 150))
    true = np.array([0.05, 20.0, 0.03, 3.0, 150.0])
    nee = np.asarray(light_response_nee(rg, t, vpd, *true)[0])
    p0 = np.tile([0.1, 15.0, 0.05, 1.0, 150.0], (2, 1))
    free = np.tile([True, True, True, True, False], (2, 1))
    fit = fit_light_response(rg, t, vpd, nee, np.ones_like(nee), np.ones_like(nee, bool), p0, free)
    np.testing.assert_allclose(np.asarray(fit.params), np.tile(true, (2, 1)), rtol=1e-5)
    # GPP of the rectangular hyperbola tends to beta0 at saturating light and VPD <= 10 hPa
    _, gpp, _ = light_response_nee(1e7, 15.0, 5.0, 0.05, 20.0, 0.03, 3.0, 150.0)
    assert float(gpp) == pytest.approx(20.0, rel=1e-4)


def test_mpt_finds_planted_threshold():
    """Night NEE rising with u* up to 0.3 m s-1 and flat above: the moving-point test
    returns a threshold just above 0.3 (the mean u* of the first plateau class)."""
    rng = np.random.default_rng(3)
    n = 2000
    ustar = rng.uniform(0.02, 1.0, n)
    tair = rng.uniform(0, 20, n)
    resp = 3.0 * np.exp(0.05 * tair)
    nee = resp * np.minimum(ustar / 0.3, 1.0) + rng.normal(0, 0.02, n)
    th = float(mpt_threshold(nee, ustar, tair, np.ones(n, bool), UstarSettings()))
    assert 0.28 <= th <= 0.36
    # vmapped over a leading axis (bootstrap draws) gives one threshold per draw
    many = np.asarray(mpt_threshold(np.stack([nee, nee]), np.stack([ustar, ustar]),
                                    np.stack([tair, tair]), np.ones((2, n), bool)))
    assert many.shape == (2,) and np.all(np.abs(many - th) < 1e-12)


@pytest.mark.standard_promotion(_ADAM)
def test_flux_magnitude_model_recovers_a_and_b():
    rng = np.random.default_rng(4)
    f = rng.uniform(-20, 10, 40000)
    true = FluxMagnitudeModel(1.0, 0.3, 0.1)
    sigma = true.a + true.b_plus * np.clip(f, 0, None) + true.b_minus * np.clip(-f, 0, None)
    eps = rng.laplace(0.0, sigma / np.sqrt(2.0))
    m = fit_flux_magnitude_model(f, eps)
    assert m.a == pytest.approx(1.0, abs=0.05)
    assert m.b_plus == pytest.approx(0.3, abs=0.03)
    assert m.b_minus == pytest.approx(0.1, abs=0.015)


@pytest.mark.standard_promotion(_ADAM)
def test_paired_differences_scaling_for_laplace_pairs():
    """delta/sqrt2 of Laplace pairs, fitted with paired=True, recovers sigma."""
    rng = np.random.default_rng(5)
    days = 800
    truth = np.tile(np.full(SPD, -2.0), days)
    sigma = 1.5
    obs = truth + rng.laplace(0, sigma / np.sqrt(2), truth.size)
    met = np.zeros(truth.size)
    fm, eps = paired_differences(obs, met, met, met)
    m = fit_flux_magnitude_model(fm, eps, paired=True)
    assert m.a + 2.0 * m.b_minus == pytest.approx(sigma, rel=0.05)


def test_despike_flags_a_planted_spike():
    rg, tair, vpd = _met(30)
    rng = np.random.default_rng(6)
    x = -0.01 * rg + rng.normal(0, 0.3, rg.size)
    x[500] += 25.0
    spikes = despike_mad(x, rg, z=7.0)
    assert spikes[500] and spikes.sum() <= 5


def test_bad_input_all_nan_raises():
    n = 5 * SPD
    with pytest.raises(DataValidationError, match="no measured"):
        mds_gapfill(np.full(n, np.nan), np.zeros(n), np.zeros(n), np.zeros(n))
    with pytest.raises(DataValidationError, match="no valid record"):
        select_valid(np.full(n, -9999.0))


def test_bad_input_no_night_time_data_raises():
    n = 20 * SPD
    t = np.datetime64("2020-01-01T00:00") + np.arange(n) * np.timedelta64(30, "m")
    with pytest.raises(DataValidationError, match="night"):
        partition_nighttime(np.ones(n), np.ones(n), np.full(n, 10.0), np.full(n, 500.0), t)


def test_bad_input_constant_series_raises():
    with pytest.raises(DataValidationError, match="constant"):
        fit_flux_magnitude_model(np.ones(100), np.zeros(100))


def test_all_nan_window_gives_unfilled_flag_not_error():
    """A gap too long for every step stays NaN with a NaN quality flag (not a crash);
    hourly records (24 per day) exercise the +-1 h = +-1 record diurnal window."""
    spd = 24
    n = 214 * spd
    flux = np.full(n, np.nan)
    flux[:spd] = 1.0
    nanmet = np.full(n, np.nan)            # no meteorology: only the MDC steps run
    r = mds_gapfill(flux, nanmet, nanmet, nanmet, fill_all=False, steps_per_day=spd)
    assert np.isnan(r.filled[-1]) and np.isnan(r.qc[-1])      # > 210 days from any data
    assert np.all(np.isfinite(r.filled[:10 * spd]))
    assert np.all(r.qc[3 * spd + 2:10 * spd] == 3) and np.all(r.qc[spd + 2:3 * spd - 2] == 2)


def test_float32_lloyd_taylor():
    t = jnp.asarray(np.linspace(0, 20, 50), jnp.float32)[None]
    y = lloyd_taylor(t, 2.0, 150.0).astype(jnp.float32)
    fit = fit_lloyd_taylor(t, y, jnp.ones_like(y, bool))
    assert fit.params.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(fit.params)[0], [2.0, 150.0], rtol=1e-3)
