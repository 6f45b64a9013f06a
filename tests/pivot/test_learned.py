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


def test_dask_cube_prediction_equals_the_in_memory_one():
    """predict_dask maps the vmapped model over (y, x) chunks: the same numbers as predict
    on the flattened cube (float32 round-off)."""
    import xarray as xr
    s = _series(P=20, T=90)
    model = _model(s)
    _, mean, sd = L.predict(model, s)
    dims = ("y", "x", "time", "var")
    v = xr.DataArray(s.values.reshape(4, 5, 90, 2), dims=dims).chunk({"y": 2, "x": 3})
    m = xr.DataArray(s.mask.reshape(4, 5, 90, 2), dims=dims).chunk({"y": 2, "x": 3})
    dm, ds = L.predict_dask(model, v, m, s.doy)
    assert dm.chunks is not None and dm.dims == ("y", "x", "time", "target")
    got_m, got_s = (a.compute().values.reshape(20, 90, 1) for a in (dm, ds))
    np.testing.assert_allclose(got_m, mean, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_s, sd, rtol=1e-5, atol=1e-6)


def test_conformal_scale_restores_the_nominal_coverage():
    """Residuals with twice the stated sd: the scale fitted on one half is ~2 and the
    rescaled 90 % intervals cover ~90 % of the other half."""
    rng = np.random.default_rng(3)
    y = 2.0 * 0.05 * rng.standard_normal(4000)
    mean, sd = np.zeros(4000), np.full(4000, 0.05)
    cal = np.arange(4000) < 2000
    c = L.conformal_scale(y, mean, sd, cal)
    assert 1.8 < c < 2.2
    cover = np.mean(np.abs(y[~cal]) <= L.Z90 * c * sd[~cal])
    assert 0.88 < cover < 0.92
    assert L.conformal_scale(y, mean, sd, np.arange(4000) < 5) == 1.0      # too few: no scaling


def test_calibration_dates_are_hidden_from_the_model():
    s = _series()
    hidden = np.zeros(s.mask.shape[:2], bool)
    hidden[:, 30:60] = True
    h = L.hide_targets(s, hidden)
    assert not h.mask[:, 30:60, 0].any() and (h.mask[..., 1] == s.mask[..., 1]).all()
    assert (h.mask[:, :30, 0] == s.mask[:, :30, 0]).all()
