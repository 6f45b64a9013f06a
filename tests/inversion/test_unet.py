"""The U-Net emission estimator: shapes, exact resume of its training, the one API."""
import numpy as np
import pytest
from flax import nnx

from assimilation.inversion.unet import UNet, UNetConfig, scene_features, targets, train_unet_ensemble


def _data(n=16, b=12, seed=0):
    rng = np.random.default_rng(seed)
    P = n // 2
    cells = rng.integers(4, n - 4, (b, 1, 2))
    return dict(obs=rng.random((b, P, P)) * 1e-4, valid=np.ones((b, P, P)), u=rng.standard_normal((b, n, n)),
                v=rng.standard_normal((b, n, n)), area_emission=np.full((b, n, n), 1e-11),
                point_rates=rng.uniform(0.2, 2.0, (b, 1)), point_cells=cells,
                total_emission=np.full(b, 1.0))


def test_unet_shapes_and_mass_preserving_target():
    d = _data()
    x = scene_features(d["obs"], d["valid"], d["u"], d["v"], 2)
    assert x.shape == (12, 16, 16, 5) and x.dtype == np.float32
    net = UNet((4, 8, 8), rngs=nnx.Rngs(0))
    assert nnx.jit(lambda n, x: n(x))(net, x).shape == (12, 16, 16)
    y = targets(d["area_emission"], d["point_rates"], d["point_cells"], 2000.0, 1.5)
    # Gaussian smoothing keeps the emission of a source far from the edges (x 0.1 kg/s scale)
    np.testing.assert_allclose(y.sum((1, 2)) * 0.1, d["point_rates"][:, 0] + 1e-11 * 4e6 * 256, rtol=2e-2)


@pytest.mark.slow
@pytest.mark.standard_promotion("optax.adamw in emulator.train.fit mixes float32 state and float64 counts")
def test_training_resumes_exactly_from_checkpoint(tmp_path):
    d = _data()
    cfg = UNetConfig(channels=(4, 8, 8), members=1, steps=6, batch_size=4)
    full = train_unet_ensemble(d, cfg)
    train_unet_ensemble(d, cfg, checkpoint_dir=tmp_path, stop_after=4)      # "killed" after its checkpoint
    resumed = train_unet_ensemble(d, cfg, checkpoint_dir=tmp_path)
    a = np.concatenate([np.ravel(x) for x in __import__("jax").tree.leaves(full.states[0])])
    b = np.concatenate([np.ravel(x) for x in __import__("jax").tree.leaves(resumed.states[0])])
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(full.point_calibration) and full.point_calibration > 0
