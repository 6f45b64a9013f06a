"""The conditional-VAE emission estimator: shapes and finiteness, exact resume of its
training, and skill over a trivial predictor on a learnable toy problem."""
import jax
import numpy as np
import pytest
from flax import nnx

from assimilation.inversion.methods import Scene, estimate
from assimilation.inversion.vae import ConditionalVAE, VAEConfig, VAEModel, elbo_loss, train_vae

SMALL = dict(channels=(4, 8, 8), encoder_channels=(4, 4, 4), latent=2, batch_size=4)


def _data(n=16, b=12, seed=0):
    """Random scenes whose NO2 column is bright where the point source is (the map is
    learnable from the inputs)."""
    rng = np.random.default_rng(seed)
    P = n // 2
    cells = rng.integers(4, n - 4, (b, 1, 2))
    rates = rng.uniform(0.2, 2.0, (b, 1))
    obs = rng.random((b, P, P)) * 1e-5
    for i in range(b):
        obs[i, cells[i, 0, 0] // 2, cells[i, 0, 1] // 2] += rates[i, 0] * 1e-4
    return dict(obs=obs, valid=np.ones((b, P, P)), u=np.full((b, n, n), 3.0), v=np.zeros((b, n, n)),
                area_emission=np.zeros((b, n, n)), point_rates=rates, point_cells=cells,
                total_emission=rates[:, 0].copy())


def test_vae_shapes_elbo_and_estimate_are_finite():
    cfg = VAEConfig(**SMALL)
    net = ConditionalVAE(cfg, rngs=nnx.Rngs(0))
    x = np.zeros((3, 16, 16, 5), np.float32)
    y = np.zeros((3, 16, 16), np.float32)
    mu, logvar, out, loss = nnx.jit(lambda m, x, y, e: m.encode(x, y) + (m(x), elbo_loss(
        m, {"x": x, "y": y, "eps": e}, 1.0)))(net, x, y, np.ones((3, 2), np.float32))
    assert mu.shape == (3, 2) and logvar.shape == (3, 2)
    assert out.shape == (3, 16, 16)
    assert np.isfinite(float(loss)) and float(loss) >= 0.0
    d = _data()
    graphdef, state = nnx.split(net)        # untrained weights: the estimate path, not skill
    vm = VAEModel(graphdef, state, VAEConfig(samples=4, **SMALL), 2000.0, point_calibration=0.1,
                  total_calibration=0.1)
    sc = Scene(obs=d["obs"][0], valid=d["valid"][0], noise_std=1e-5, u=d["u"][0], v=d["v"][0], dx=2000.0,
               pixel_cells=2, point_cells=d["point_cells"][0], source_radius=np.zeros(1))
    e = estimate("vae", sc, model=vm)
    assert e.method == "vae" and e.point.shape == (1,) and e.emission_map.shape == (16, 16)
    assert np.all(np.isfinite(e.point)) and np.all(e.point_sd > 0) and np.isfinite(e.total_sd)
    with pytest.raises(ValueError, match="model="):
        estimate("vae", sc)


@pytest.mark.slow
@pytest.mark.standard_promotion("optax.adamw in emulator.train.fit mixes float32 state and float64 counts")
def test_vae_training_resumes_exactly_from_checkpoint(tmp_path):
    """Killed after the step-4 checkpoint and resumed: the same weights as an uninterrupted
    run (the reparameterisation noise is a function of (seed, step))."""
    d = _data()
    cfg = VAEConfig(steps=6, **SMALL)
    full = train_vae(d, cfg)
    train_vae(d, cfg, checkpoint_dir=tmp_path, stop_after=4)
    resumed = train_vae(d, cfg, checkpoint_dir=tmp_path)
    a = np.concatenate([np.ravel(x) for x in jax.tree.leaves(full.state)])
    b = np.concatenate([np.ravel(x) for x in jax.tree.leaves(resumed.state)])
    np.testing.assert_array_equal(a, b)
    assert np.isfinite(full.point_calibration) and full.point_calibration > 0


@pytest.mark.slow
@pytest.mark.standard_promotion("optax.adamw in emulator.train.fit mixes float32 state and float64 counts")
def test_vae_beats_the_mean_rate_predictor_on_held_out_scenes():
    """Trained on 48 toy scenes (source brightness proportional to its rate), the VAE's
    point rates on 16 held-out scenes have a lower mean absolute error than predicting the
    mean training rate for every source (the trivial predictor)."""
    train = _data(b=48, seed=1)
    test = _data(b=16, seed=2)
    vm = train_vae(train, VAEConfig(steps=150, samples=4, learning_rate=5e-3, **SMALL))
    est = np.asarray([estimate("vae", Scene(obs=test["obs"][i], valid=test["valid"][i], noise_std=1e-5,
                                            u=test["u"][i], v=test["v"][i], dx=2000.0, pixel_cells=2,
                                            point_cells=test["point_cells"][i]), model=vm).point[0]
                      for i in range(16)])
    truth = test["point_rates"][:, 0]
    trivial = np.mean(np.abs(train["point_rates"][:, 0].mean() - truth))
    assert np.mean(np.abs(est - truth)) < 0.8 * trivial, (np.mean(np.abs(est - truth)), trivial)
