"""Masked autoencoder: missing-data invariance, vmap = per-pixel call, exact resume,
finite gradients."""
import jax
import numpy as np
import pytest
from flax import nnx

from assimilation.observations.pivot import learned as L
from emulator.train import TrainConfig

_ADAM = "optax.adamw computes its bias correction as a Python float decay raised to its int32 step count"


def _series(P=12, T=120, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(T)
    v = 0.6 + 0.2 * np.sin(2 * np.pi * t / 365.25)[None, :, None] + 0.01 * rng.standard_normal((P, T, 2))
    m = np.zeros((P, T, 2), bool)
    m[:, ::7, 0] = True
    m[:, ::2, 1] = rng.random((P, (T + 1) // 2)) > 0.3
    return L.PixelSeries(v, m, (0, 1), (0,), (t % 365) + 1.0)


def _model(s):
    return L.PivotMAE(2, s.sensor_of, 1, width=8, latent=4, dilations=(1, 2), rngs=nnx.Rngs(0))


def test_unobserved_values_do_not_matter_and_vmap_equals_loop():
    s = _series()
    model = _model(s)
    z, mean, sd = L.predict(model, s, chunk=5)
    junk = s._replace(values=np.where(s.mask, s.values, 123.0))
    z2, mean2, _ = L.predict(model, junk, chunk=5)
    np.testing.assert_array_equal(mean, mean2)
    for i in (0, 7, 11):
        _, m1, s1 = model(s.values[i], s.mask[i], s.doy)
        np.testing.assert_allclose(mean[i], np.asarray(m1), rtol=1e-5, atol=1e-6)
    assert z.shape == (12, 120, 4) and (sd > 0).all()


def test_masked_loss_gradient_finite():
    s = _series()
    model = _model(s)
    batch = L.make_batch_fn(s, L.LearnedConfig(batch_pixels=4, window_days=64))(0)
    g = nnx.grad(lambda m: L.masked_loss(m, batch, target=s.target, visible_weight=0.2, phys_weight=1.0))(model)
    assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(g))


@pytest.mark.standard_promotion(_ADAM)
def test_training_resumes_exactly(tmp_path):
    s = _series()
    cfg = L.LearnedConfig(width=8, latent=4, batch_pixels=4, window_days=64)
    tc = TrainConfig(steps=6, warmup_steps=2, eval_every=3, checkpoint_every=3, patience=10, progress=False)
    full = L.train_pivot_mae(s, cfg, tc)
    L.train_pivot_mae(s, cfg, tc, checkpoint_dir=tmp_path / "ck", stop_after=4)   # "killed" after step 4
    resumed = L.train_pivot_mae(s, cfg, tc, checkpoint_dir=tmp_path / "ck")
    assert resumed.resumed_from == 3
    a, b = nnx.state(full.model, nnx.Param), nnx.state(resumed.model, nnx.Param)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
