"""Tests of assimilation.calibration.ParameterSubset (bounded-unconstrained mapping of a
named subset of the coupled model's nested parameters)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

from assimilation.calibration import ParameterSubset
from process_models.coupled import CoupledModel
from process_models import coupled
from process_models.units import DataValidationError

NAMES = ["leaf.vcmax25", "leaf.g1", "carbon.growth_resp_frac", "roots.psi_close"]


@pytest.fixture(scope="module")
def sub():
    return ParameterSubset.from_model(CoupledModel("ENF", "loam"), NAMES)


def test_priors_and_bounds_from_table(sub):
    tab = coupled.parameter_table("ENF", "loam").set_index("name")
    assert sub.transform == ("log", "log", "identity", "identity")
    np.testing.assert_allclose(sub.lower, tab.loc[NAMES, "lower"].to_numpy())
    np.testing.assert_allclose(sub.upper, tab.loc[NAMES, "upper"].to_numpy())
    np.testing.assert_allclose(sub.defaults, tab.loc[NAMES, "default"].to_numpy())
    np.testing.assert_allclose(sub.loc[0], 4.135)      # LogNormal(4.135, 0.3) for ENF Vcmax25
    np.testing.assert_allclose(sub.scale[3], 50.0)     # Normal(-255, 50) for psi_close


def test_round_trip_and_bounds(sub):
    s = sub.to_unconstrained(sub.defaults)
    np.testing.assert_allclose(sub.to_physical(s), sub.defaults, rtol=1e-10)
    extreme = jnp.array([[-30.0] * 4, [30.0] * 4, [0.0] * 4])
    theta = np.asarray(sub.to_physical(extreme))
    assert np.all(theta >= sub.lower - 1e-9) and np.all(theta <= sub.upper + 1e-9)
    np.testing.assert_allclose(theta[0], sub.lower, rtol=1e-6)
    np.testing.assert_allclose(theta[1], sub.upper, rtol=1e-6)


def test_log_prior_matches_truncated_normal_with_jacobian(sub):
    """log p(s1) - log p(s2) = [log N(t1) + log|dt/ds|(s1)] - [same at s2], by SciPy."""
    rng = np.random.default_rng(3)
    s1, s2 = rng.normal(size=4), rng.normal(size=4)
    lo, hi = sub.t_bounds

    def ref(s):
        u = 1 / (1 + np.exp(-s))
        t = lo + (hi - lo) * u
        return np.sum(norm.logpdf(t, sub.loc, sub.scale) + np.log((hi - lo) * u * (1 - u)))

    got = float(sub.log_prior(jnp.asarray(s1)) - sub.log_prior(jnp.asarray(s2)))
    np.testing.assert_allclose(got, ref(s1) - ref(s2), rtol=1e-9)
    g = jax.grad(sub.log_prior)(jnp.asarray(s1))
    assert np.all(np.isfinite(np.asarray(g)))


def test_apply_sets_nested_fields(sub):
    base = coupled.load_parameters("ENF", "loam")
    theta = np.array([40.0, 3.0, 0.25, -300.0])
    p = sub.apply(base, sub.to_unconstrained(theta))
    for n, v in zip(NAMES, theta):
        np.testing.assert_allclose(float(coupled.get_parameter(p, n)), v, rtol=1e-9)
    # untouched fields stay
    assert float(p.leaf.jmax_ratio) == float(base.leaf.jmax_ratio)


def test_prior_draws_seeded(sub):
    d = sub.prior_draws(np.random.default_rng(0), 20000)
    assert np.all(d >= sub.lower) and np.all(d <= sub.upper)
    # log-normal median exp(mu) (truncation at 10-150 is far in the tails): within 2 %
    np.testing.assert_allclose(np.median(d[:, 0]), np.exp(4.135), rtol=0.02)


def test_bad_names_and_priors_raise():
    with pytest.raises(DataValidationError, match="unknown parameter"):
        ParameterSubset.from_model(CoupledModel("ENF"), ["leaf.nope"])
    with pytest.raises(DataValidationError, match="not LogNormal/Normal"):
        ParameterSubset.from_model(CoupledModel("ENF"), ["leaf.theta_j"])          # Uniform prior
