"""``ensemble_filter`` options: per-variable (array) RTPS/RTPP equal the per-variable
formula and reduce to the scalar case; a ``postprocess`` callback clips bounded states
after every analysis; ``store=True`` returns the forecast ensembles, whose statistics equal
the returned forecast mean/spread."""
import jax
import jax.numpy as jnp
import numpy as np

from assimilation.ensemble import ETKF, ensemble_filter, rtps as rtps_fn

A = np.array([[0.95, 0.1, 0.0], [0.0, 0.9, 0.1], [0.05, 0.0, 0.9]])


def _model(x, _):
    return jnp.asarray(A) @ x + 0.3


def _h(x):
    return x[:2]


def _problem(T=6, N=12, seed=0):
    rng = np.random.default_rng(seed)
    ys = jnp.asarray(rng.normal(2.0, 1.0, (T, 2)))
    E0 = jnp.asarray(rng.normal(0.0, 1.0, (N, 3)))
    return ys, E0


def _run(rtps=0.0, rtpp=0.0, postprocess=None, store=True, T=6):
    ys, E0 = _problem(T)
    return ensemble_filter(jax.random.key(0), _model, E0, ys, jnp.array([0.4, 0.4]), _h,
                           method=ETKF(), rtps=rtps, rtpp=rtpp, postprocess=postprocess,
                           store=store)


def test_forecast_ensembles_stored_and_consistent():
    res = _run()
    fe = np.asarray(res.forecast_ensembles)
    assert fe.shape == (6, 12, 3)
    np.testing.assert_allclose(fe.mean(1), res.forecast_mean, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(fe.std(1, ddof=1), res.forecast_spread, rtol=1e-10)
    # the forecast of cycle k+1 is the model applied to the analysis of cycle k
    ae = np.asarray(res.analysis_ensembles)
    np.testing.assert_allclose(fe[1:], ae[:-1] @ A.T + 0.3, rtol=1e-10, atol=1e-12)
    assert _run(store=False).forecast_ensembles is None


def test_array_rtps_matches_per_variable_formula_and_scalar_case():
    """One cycle: analysis with rtps vector w equals rtps(Xf, Xa_plain, w) per variable;
    a constant vector equals the scalar weight; zeros equal no relaxation."""
    w = jnp.array([0.0, 0.5, 0.9])
    plain, vec = _run(T=1), _run(rtps=w, T=1)
    Xf, Xa = plain.forecast_ensembles[0], plain.analysis_ensembles[0]
    np.testing.assert_allclose(vec.analysis_ensembles[0], rtps_fn(Xf, Xa, w), rtol=1e-10)
    # variable 0 untouched, variable 2 almost back to the prior spread
    np.testing.assert_allclose(vec.analysis_spread[0, 0], plain.analysis_spread[0, 0], rtol=1e-10)
    assert vec.analysis_spread[0, 2] > plain.analysis_spread[0, 2]
    a, b = _run(rtps=0.5), _run(rtps=jnp.full(3, 0.5))
    np.testing.assert_allclose(a.analysis_ensembles, b.analysis_ensembles, rtol=1e-10)
    np.testing.assert_allclose(_run(rtps=jnp.zeros(3)).analysis_mean, _run().analysis_mean,
                               rtol=1e-12)
    c, d = _run(rtpp=0.3), _run(rtpp=jnp.full(3, 0.3))
    np.testing.assert_allclose(c.analysis_ensembles, d.analysis_ensembles, rtol=1e-10)
    assert not np.allclose(c.analysis_ensembles, a.analysis_ensembles)


def test_postprocess_clips_every_analysis():
    ub = 1.5

    def clip(E):
        return E.at[:, 0].set(jnp.minimum(E[:, 0], ub))

    free = _run()
    assert np.max(free.analysis_ensembles[:, :, 0]) > ub     # the bound is active
    res = _run(postprocess=clip)
    assert np.max(res.analysis_ensembles[:, :, 0]) <= ub
    # clipping happens after the analysis: the next forecast starts from the clipped state
    np.testing.assert_allclose(res.forecast_ensembles[1:],
                               np.asarray(res.analysis_ensembles[:-1]) @ A.T + 0.3, rtol=1e-10)
    np.testing.assert_allclose(res.final_ensemble, res.analysis_ensembles[-1])
