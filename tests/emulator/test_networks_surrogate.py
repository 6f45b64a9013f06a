"""Physics heads, the drop-in surrogate, save/load and evaluation helpers."""
import numpy as np
import pytest

import jax
import jax.numpy as jnp
from flax import nnx

from emulator.evaluate import gradient_agreement, regression_metrics
from emulator.networks import N_VPRM_FEATURES, PointwiseEmulator, StepEmulator
from emulator.normalise import Normaliser
from emulator.surrogate import VPRMSurrogate
from process_models.vprm import VPRMForcing, VPRMOptions, load_parameters, simulate


def _surrogate(seed=0, head="light_use"):
    cfg = {"hidden": [16, 16], "gpp_head": head, "gpp_scale": 5.0, "reco_scale": 3.0,
           "feature_normaliser": Normaliser((0.0,) * N_VPRM_FEATURES, (1.0,) * N_VPRM_FEATURES).to_dict()}
    return VPRMSurrogate.build(cfg, seed=seed)


def _forcing(shape=(6, 3, 2), seed=0, n_classes=3):
    r = np.random.default_rng(seed)
    frac = r.dirichlet(np.ones(n_classes), shape[1:])
    return VPRMForcing(temperature=r.uniform(-10, 35, shape), par=r.uniform(0, 2000, shape),
                       evi=r.uniform(0, 0.9, shape), lswi=r.uniform(-0.3, 0.5, shape),
                       evi_threshold=r.uniform(0.3, 0.5, shape[1:]), lswi_min=np.full(shape[1:], -0.1),
                       lswi_max=np.full(shape[1:], 0.4), class_fractions=frac)


@pytest.mark.parametrize("head", ["light_use", "softplus"])
def test_heads_enforce_signs_and_nee_balance_for_any_weights(head):
    m = PointwiseEmulator((8,), Normaliser((0.0,) * N_VPRM_FEATURES, (1.0,) * N_VPRM_FEATURES),
                          gpp_scale=4.0, reco_scale=2.0, gpp_head=head, rngs=nnx.Rngs(1))
    # large random weights: heads must still give GPP, Reco >= 0 and NEE = Reco - GPP
    _, state = nnx.split(m)
    big = jax.tree.map(lambda a: 50.0 * jax.random.normal(jax.random.key(2), a.shape), state)
    nnx.update(m, big)
    r = np.random.default_rng(0)
    x = np.column_stack([r.uniform(-30, 45, 500), r.uniform(0, 2500, 500), r.uniform(-0.1, 1, 500),
                         r.uniform(-1, 1, 500), r.uniform(0, 1, (500, 3)), r.integers(0, 2, (500, 3)),
                         r.uniform(0.01, 0.6, 500), r.uniform(50, 5000, 500), r.uniform(0, 1, 500),
                         r.uniform(-5, 10, 500), r.uniform(-6, 7, 500), r.uniform(12, 28, 500),
                         r.uniform(33, 52, 500), r.uniform(-6, 7, 500)])
    o = m(jnp.asarray(x))
    assert np.all(np.asarray(o["gpp"]) >= 0) and np.all(np.asarray(o["reco"]) >= 0)
    np.testing.assert_array_equal(np.asarray(o["nee"]), np.asarray(o["reco"] - o["gpp"]))
    if head == "light_use":   # no light, no GPP
        assert np.all(np.asarray(m(jnp.asarray(x).at[:, 1].set(0.0))["gpp"]) == 0.0)


def test_surrogate_is_drop_in_with_class_fractions():
    sur = _surrogate()
    params = load_parameters("pyvprm_modis", classes=[1, 3, 7])
    f = _forcing()
    out = sur.simulate(params, f)
    ref = simulate(params, f, VPRMOptions(mode="smooth"))
    assert jax.tree.map(jnp.shape, out) == jax.tree.map(jnp.shape, ref)
    # fractions sum exactly like the process model: sum_c f_c * emulator(class c)
    acc = 0.0
    for c in range(3):
        one = jax.tree.map(lambda a: a[c:c + 1] if jnp.ndim(a) else a, params)
        one = one.replace(rules=jax.tree.map(lambda a: a[c:c + 1], params.rules).replace(class_ids=(c,)))
        acc = acc + f.class_fractions[..., c] * sur.simulate(one, f.replace(class_fractions=np.ones(1))).nee
    np.testing.assert_allclose(out.nee, acc, rtol=1e-6, atol=1e-8)
    # a class without flux contributes nothing
    nof = params.replace(rules=params.rules.replace(has_flux=jnp.asarray([1.0, 0.0, 1.0])))
    f2 = f.replace(class_fractions=np.broadcast_to([0.0, 1.0, 0.0], f.class_fractions.shape))
    np.testing.assert_array_equal(np.asarray(sur.simulate(nof, f2).gpp), 0.0)
    # a class missing from the table (pyvprm_modis has no savanna: lam = 0, has_flux = 0)
    # gives finite fluxes, like the process model
    gap = load_parameters("pyvprm_modis", classes=[1, 5, 7])
    assert np.all(np.isfinite(np.asarray(sur.simulate(gap, f).nee)))


def test_surrogate_jit_vmap_grad_and_save_load(tmp_path):
    sur = _surrogate(seed=3)
    params = load_parameters("pyvprm_modis", classes=[3])
    f = _forcing(shape=(24,), n_classes=1)
    loss = lambda p: jnp.mean(sur.simulate(p, f).nee ** 2)
    g = jax.jit(jax.grad(loss))(params)
    for n in ("lam", "par0", "alpha", "beta", "tmin", "topt", "tmax", "tlow"):
        assert np.all(np.isfinite(np.asarray(getattr(g, n)))), n
    assert float(jnp.abs(g.alpha).sum()) > 0
    lams = jnp.stack([params.lam, params.lam * 1.1])          # two ensemble members
    ens = jax.vmap(lambda lam: sur.simulate(params.replace(lam=lam), f).nee)(lams)
    assert ens.shape == (2, 24)
    sur.save(tmp_path / "s")
    assert not any(p.suffix in (".pkl", ".pickle") for p in (tmp_path / "s").iterdir())
    back = VPRMSurrogate.load(tmp_path / "s")
    np.testing.assert_array_equal(np.asarray(back.simulate(params, f).nee), np.asarray(sur.simulate(params, f).nee))
    with pytest.raises(ValueError, match="respiration"):
        sur.simulate(params, f, options=VPRMOptions(respiration="gourdji"))


def test_step_emulator_bounds_and_identity():
    norm = Normaliser((0.0,) * 7, (1.0,) * 7)
    m = StepEmulator(2, 4, 1, (8,), norm, state_lower=(0.05, None), state_upper=(0.45, None),
                     state_scale=(1.0, 2.0), flux_names=("gpp", "reco", "nee", "et"),
                     flux_scale=(1.0, 1.0, 1.0, 1.0), rngs=nnx.Rngs(0))
    # zero output layer: the state map is the identity (bounded and residual parts)
    m.mlp.out.kernel[...] = jnp.zeros_like(m.mlp.out.kernel[...])
    m.mlp.out.bias[...] = jnp.zeros_like(m.mlp.out.bias[...])
    s = jnp.asarray([[0.2, 5.0], [0.44, -3.0]], jnp.float32)     # the network's precision
    s1, fl = m(s, jnp.ones((2, 4), s.dtype), jnp.ones((2, 1), s.dtype))
    np.testing.assert_allclose(s1, s, rtol=1e-6)
    # huge outputs never push the bounded state outside [0.05, 0.45]
    m.mlp.out.bias[...] = jnp.asarray([1e3, 0, 0, 0, 0, 0], jnp.float32)
    s1, fl = m(s, jnp.ones((2, 4), s.dtype), jnp.ones((2, 1), s.dtype))
    assert np.all(np.asarray(s1[:, 0]) <= 0.45) and np.all(np.asarray(s1[:, 0]) >= 0.05)
    m.mlp.out.bias[...] = jnp.asarray([-1e3, 0, 0, 0, 0, 0], jnp.float32)
    s1, fl = m(s, jnp.ones((2, 4), s.dtype), jnp.ones((2, 1), s.dtype))
    assert np.all(np.asarray(s1[:, 0]) >= 0.05)
    np.testing.assert_array_equal(np.asarray(fl["nee"]), np.asarray(fl["reco"] - fl["gpp"]))
    assert np.all(np.asarray(fl["et"]) >= 0)


def test_metrics_and_gradient_agreement_properties():
    t = np.linspace(0, 1, 50)
    assert regression_metrics(t, t) == {"n": 50, "r2": 1.0, "rmse": 0.0, "bias": 0.0}
    m = regression_metrics(t + 0.1, t)
    assert m["bias"] == pytest.approx(0.1) and m["rmse"] == pytest.approx(0.1)
    from emulator.design import ParameterSpace
    space = ParameterSpace(("a", "b"), (1.0, -1.0), (10.0, 1.0), (True, False))
    f = lambda th: th[0] ** 2 + jnp.sin(th[1])
    u = np.random.default_rng(0).random((5, 2))
    g = gradient_agreement(f, f, u, space)
    np.testing.assert_allclose(g["cosine"], 1.0, atol=1e-12)
    np.testing.assert_allclose(g["relative_error"], 0.0, atol=1e-12)
    g2 = gradient_agreement(lambda th: -f(th), f, u, space)
    np.testing.assert_allclose(g2["cosine"], -1.0, atol=1e-12)


def test_calibration_builder_takes_the_surrogate_unchanged():
    calib = pytest.importorskip("assimilation.calibration")
    sur = _surrogate(seed=5)
    params = load_parameters("pyvprm_modis", classes=[3])
    f = _forcing(shape=(12,), n_classes=1)
    fn = calib.model_fn_from(sur, {"lam": "lam[3]", "alpha": "alpha[3]"}, f, base_params=params)
    out = fn({"lam": 0.2, "alpha": 0.1})
    np.testing.assert_allclose(calib.output(out, "nee"), calib.output(out, "reco") - calib.output(out, "gpp"))
    g = jax.grad(lambda th: jnp.sum(fn(th).nee))({"lam": jnp.asarray(0.2), "alpha": jnp.asarray(0.1)})
    assert np.isfinite(float(g["lam"])) and float(g["alpha"]) != 0.0
