"""MAP + Laplace over a ParameterSubset (assimilation.calibration.laplace): a Gaussian
likelihood on two coupled-model parameters, checked against the analytic answer in the
unconstrained space, and the checkpoint resume of fit_laplace."""
import jax.numpy as jnp
import numpy as np

from assimilation.calibration import (Hyperparameter, ParameterSubset, SubsetPosterior,
                                      fit_laplace, rms_residual_start)
from assimilation.calibration.error_models import FluxObservations
from process_models.coupled import CoupledModel

NAMES = ["leaf.vcmax25", "leaf.g1"]


def _posterior(target, sd):
    model = CoupledModel("ENF", "loam")
    sub = ParameterSubset.from_model(model, NAMES)
    base = model.default_params()
    target = jnp.asarray(target)

    def log_likelihood(params, h):
        r = (sub.values(params) - target) / sd
        return -0.5 * jnp.sum(r ** 2)
    return SubsetPosterior(sub, base, log_likelihood), sub


def test_map_and_laplace_match_a_sharp_gaussian_likelihood(tmp_path):
    """With a likelihood much sharper than the prior, the MAP is the likelihood's centre and
    the Laplace sd of the physical parameters is the likelihood sd (delta method)."""
    target, sd = np.array([60.0, 3.0]), np.array([0.05, 0.002])
    post, sub = _posterior(target, sd)
    fit = fit_laplace(post, post.x0(), maxiter=200, checkpoint=tmp_path / "ck.npz", key="a",
                      log=lambda m: None)
    theta = np.asarray(sub.to_physical(jnp.asarray(fit.x_map)))
    np.testing.assert_allclose(theta, target, rtol=1e-4)
    assert fit.has_covariance and min(fit.history) < fit.history[0]
    draws = np.asarray(sub.to_physical(jnp.asarray(fit.draws(np.random.default_rng(0), 4000))))
    np.testing.assert_allclose(draws.std(0), sd, rtol=0.1)
    # resume: the same key loads the saved fit (identical), another key refits
    again = fit_laplace(post, post.x0(), maxiter=200, checkpoint=tmp_path / "ck.npz", key="a",
                        log=lambda m: None)
    np.testing.assert_array_equal(again.x_map, fit.x_map)
    np.testing.assert_array_equal(again.covariance, fit.covariance)
    assert again.timings == fit.timings
    other = fit_laplace(post, post.x0(), maxiter=3, laplace=False, checkpoint=tmp_path / "ck.npz",
                        key="b", log=lambda m: None)
    assert not other.has_covariance and other.draws(np.random.default_rng(0), 10).shape == (1, 2)


def test_rms_residual_start():
    obs = FluxObservations.from_arrays(np.array([1.0, 2.0, 3.0, 4.0, np.nan]), sigma=np.ones(5))
    h = rms_residual_start({"nee": jnp.array([2.0, 2.0, 2.0, 2.0, 0.0])}, [obs, None], [0.5, 0.7])
    np.testing.assert_allclose(h, [np.log(np.sqrt(1.5)), 0.7])
    # a perfect fit starts at the floor
    h = rms_residual_start({"nee": jnp.array([1.0, 2.0, 3.0, 4.0, 0.0])}, [obs], [0.0], floor=0.1)
    np.testing.assert_allclose(h, [np.log(0.1)])
    assert Hyperparameter("s", 0.0, 1.0, "1").name == "s"
