"""Simulation-based calibration (Talts et al. 2018) of NUTS on a small VPRM problem.

Fixed seed; explicit alpha. Passing: ranks of the true (prior-drawn) lam, alpha, beta
among 59 posterior draws are uniform (chi-square, 6 bins, p > 0.01 for each of the three
parameters). Failing on purpose: the same data fitted with sigma three times too small
(over-confident posterior) must be rejected (p < 1e-4), which shows the test has power.
"""
import jax
import numpy as np
import pytest
from scipy import stats

from assimilation.calibration import ErrorModel, FluxObservations
from assimilation.calibration.sbc import rank_uniformity, run_sbc

# third-party internals that mix dtypes (run under standard promotion, see conftest)
_TRUNC = "numpyro's two-sided truncated distribution weights its log-cdfs by an integer array in logsumexp"
_NUTS = "numpyro's NUTS divides the float sum of accept probabilities by the integer number of proposals"

ALPHA = 0.01


def test_rank_uniformity_exact_sampler_passes_and_narrow_fails():
    """SBC machinery on a conjugate normal model with exact posterior draws (no MCMC)."""
    rng = np.random.default_rng(0)
    n, L = 500, 99
    theta = rng.normal(size=n)                     # prior N(0, 1)
    y = theta + rng.normal(size=n)                 # one observation, sd 1
    post = y[:, None] / 2 + np.sqrt(0.5) * rng.normal(size=(n, L))   # exact N(y/2, 1/2)
    ranks = (post < theta[:, None]).sum(1)
    assert rank_uniformity(ranks, L, 10)[1][0] > ALPHA
    narrow = y[:, None] / 2 + 0.3 * np.sqrt(0.5) * rng.normal(size=(n, L))
    assert rank_uniformity((narrow < theta[:, None]).sum(1), L, 10)[1][0] < 1e-6


@pytest.mark.standard_promotion(_TRUNC, _NUTS)
def test_sbc_vprm_nuts(vprm_problem):
    fn, pri, _, forcing = vprm_problem
    obs = FluxObservations.from_arrays(np.zeros(forcing.par.shape[0]))
    em = ErrorModel(a=1.0, sigma_from="model")
    ok = run_sbc(fn, pri, obs, em, jax.random.key(0), n_replicates=60, L=59, thin=3,
                 num_warmup=250, n_bins=6)
    assert ok.ranks.shape == (60, 3)
    assert ok.passed(ALPHA), ok.p_values
    bad = run_sbc(fn, pri, obs, em, jax.random.key(0), n_replicates=60, L=59, thin=3,
                  num_warmup=250, n_bins=6, fit_error_model=ErrorModel(a=1 / 3, sigma_from="model"))
    assert np.all(bad.p_values < 1e-4), bad.p_values
