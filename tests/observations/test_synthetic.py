"""Synthetic generators: planted observation operators, cloud statistics, flux gaps and errors."""
import numpy as np
import pandas as pd
import pytest

from assimilation.observations.synthetic import (FLUX_ERROR_MODELS, SensorSpec, double_logistic,
                                                 flux_random_error_sd, phenology_truth, synthetic_flux_nee,
                                                 synthetic_nee_truth, synthetic_satellite)


def test_double_logistic_limits():
    v = double_logistic(np.array([0.0, 200.0, 365.0, 120.0]), 0.1, 0.7, 120, 280, 8, 10)
    # plateaus reached to within the logistic tails (exp(-8.5) x 0.6 ~ 1.2e-4 at day 365)
    np.testing.assert_allclose(v, [0.1, 0.7, 0.1, 0.4], atol=3e-4)


def test_satellite_observation_operator_and_clouds():
    truth = phenology_truth(pd.date_range("2021-01-01", "2022-12-31"), n_pixels=20, seed=0)
    spec = SensorSpec("s3", revisit_days=1, noise_sd=0.04, bias=0.03, gain=0.85, cloud_fraction=0.5, cloud_days=6.0)
    s2 = SensorSpec("s2", revisit_days=5, phase_days=2)
    sat = synthetic_satellite(truth, sensors=(spec, s2), seed=1)
    x, y = sat["truth"].values, sat["s3"].values
    ok = np.isfinite(y)
    gain, bias = np.polyfit(x[ok], y[ok], 1)
    assert abs(gain - 0.85) < 0.02 and abs(bias - 0.03) < 0.01
    assert abs(np.std(y[ok] - (bias + gain * x[ok])) - 0.04) < 0.002
    cloudy = ~ok
    assert abs(cloudy.mean() - 0.5) < 0.08
    # temporally correlated cloudiness: P(cloudy tomorrow | cloudy today) well above the mean
    assert (cloudy[1:] & cloudy[:-1]).sum() / cloudy[:-1].sum() > 0.75
    scl = sat["s2_scl"].values
    acq = np.arange(len(scl)) % 5 == 2
    assert (scl[~acq] == 0).all() and set(np.unique(scl[acq])) <= {3, 4, 8, 9, 10}
    assert sat["s3"].attrs["units"] == "1"


def test_flux_nee_gaps_and_laplace_errors():
    truth = synthetic_nee_truth(pd.date_range("2020-01-01", periods=48 * 365, freq="30min"), seed=0)
    ds = synthetic_flux_nee(truth, seed=3, outages_per_year=6)
    r, night = ds["gap_reason"].values, ds["is_night"].values
    assert (r[night] == 2).mean() > 2 * (r[~night] == 3).mean()          # more gaps at night (u*)
    out = (r == 1)
    assert out.any() and np.diff(np.flatnonzero(np.diff(out.astype(int)) != 0)).max() >= 48  # >= 1-day block
    m = r == 0
    e = ds["nee"].values[m] - ds["nee_true"].values[m]
    sig = ds["nee_sigma"].values[m]
    z = e / sig
    assert abs(np.std(z) - 1) < 0.03
    assert abs(np.mean(np.abs(z)) - 1 / np.sqrt(2)) < 0.02             # Laplace: E|e| = sigma / sqrt 2
    np.testing.assert_allclose(flux_random_error_sd([-10.0, 5.0], "neustift_closed_path"),
                               [2.48 + 0.8, 2.48 + 0.95])
    assert ds["nee"].attrs["units"] == "umol m-2 s-1"
    assert set(FLUX_ERROR_MODELS) >= {"neustift_closed_path", "richardson2006_forest"}


def test_truth_needs_time():
    with pytest.raises(ValueError, match="time"):
        synthetic_satellite(phenology_truth(pd.date_range("2022-01-01", periods=5)).rename(time="t"))
