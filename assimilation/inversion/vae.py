"""A conditional variational autoencoder (Flax NNX) from NO2 scenes to emission maps, with
uncertainty from sampling its latent space, calibrated on validation scenes.

Model (conditional VAE, Sohn et al. 2015, NeurIPS 28, "Learning structured output
representation using deep conditional generative models"; VAE: Kingma & Welling 2014,
ICLR, arXiv:1312.6114):

* encoder ``q(z | x, y) = N(mu, diag(exp(logvar)))``: three strided 3x3 convolutions over
  the scene features ``x`` and the target map ``y``, global mean pooling, two linear heads;
* decoder ``p(y | x, z)``: the U-Net of :mod:`.unet` (channel attention; Trebing et al.
  2021) on ``x`` with ``z`` broadcast to ``latent`` extra input channels;
* prior ``p(z) = N(0, I)``; training maximises the evidence lower bound, here the loss
  (Kingma & Welling 2014, eq. 10, Gaussian likelihood with fixed variance)::

      L = mean_pixels (y_hat(x, z) - y)^2 + beta * KL(q(z|x,y) || N(0, I)) / n_pixels
      KL = 1/2 sum_j (mu_j^2 + exp(logvar_j) - 1 - logvar_j)
      z = mu + exp(logvar / 2) * eps,  eps ~ N(0, I)   (reparameterisation)

Inputs and targets are those of the U-Net (:func:`.unet.scene_features`: NO2, mask, winds
and the flux-divergence map; :func:`.unet.targets`: smoothed emission per cell / 0.1 kg
s-1). The reparameterisation noise of each minibatch is drawn in the batch function from
``(seed, step)``, so training stays a pure function of the step and
:func:`emulator.train.fit` (AdamW, warm-up + cosine decay, Orbax checkpoints) resumes it
exactly.

Uncertainty: ``samples`` latent draws ``z ~ N(0, I)`` give decoded maps whose spread is the
model's own uncertainty; point rates are read from each map as for the U-Net (disk sum
minus annulus background). The interval adds the relative residual error of the
latent-mean estimate on held-out validation scenes (``sd^2 = spread^2 + (c * estimate)^2``,
split-conformal-style calibration, as for the U-Net ensemble), because a CVAE's latent
spread is known to understate the error (posterior collapse, Bowman et al. 2016, CoNLL).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .methods import EmissionEstimate, Scene
from .unet import EMISSION_SCALE, UNet, _read_map, scene_features, targets

__all__ = ["VAEConfig", "ConditionalVAE", "VAEModel", "train_vae", "vae_estimate"]

N_FEATURES = 5


@dataclass(frozen=True)
class VAEConfig:
    channels: tuple = (8, 16, 32)
    """Decoder U-Net channels per level."""
    encoder_channels: tuple = (8, 16, 16)
    latent: int = 4
    """Latent dimension."""
    beta: float = 1.0
    """Weight of the KL term (per pixel; beta-VAE, Higgins et al. 2017, ICLR)."""
    steps: int = 300
    batch_size: int = 16
    learning_rate: float = 3e-3
    target_sigma: float = 1.5
    """Smoothing of the target map. Units: cells."""
    validation_fraction: float = 0.15
    samples: int = 16
    """Latent draws per estimate."""
    seed: int = 0
    radius: float = 12e3
    """Disk radius for point-source rates. Units: m."""


class ConditionalVAE(nnx.Module):
    """Encoder q(z|x,y) and U-Net decoder p(y|x,z); ``(B, N, N, 5)`` features (N divisible
    by 4) -> ``(B, N, N)`` maps."""

    def __init__(self, config: VAEConfig, *, rngs: nnx.Rngs):
        c1, c2, c3 = config.encoder_channels
        self.latent = config.latent
        self.e1 = nnx.Conv(N_FEATURES + 1, c1, (3, 3), strides=(2, 2), padding="SAME", rngs=rngs)
        self.e2 = nnx.Conv(c1, c2, (3, 3), strides=(2, 2), padding="SAME", rngs=rngs)
        self.e3 = nnx.Conv(c2, c3, (3, 3), strides=(2, 2), padding="SAME", rngs=rngs)
        self.mu = nnx.Linear(c3, config.latent, rngs=rngs)
        self.logvar = nnx.Linear(c3, config.latent, rngs=rngs)
        self.decoder = UNet(config.channels, cin=N_FEATURES + config.latent, rngs=rngs)

    def encode(self, x, y):
        h = jnp.concatenate([x, y[..., None]], -1)
        h = nnx.relu(self.e3(nnx.relu(self.e2(nnx.relu(self.e1(h))))))
        h = h.mean(axis=(1, 2))
        return self.mu(h), jnp.clip(self.logvar(h), -10.0, 5.0)

    def decode(self, x, z):
        zz = jnp.broadcast_to(z[:, None, None, :], x.shape[:3] + (z.shape[-1],)).astype(x.dtype)
        return self.decoder(jnp.concatenate([x, zz], -1))

    def __call__(self, x, z=None):
        """Decoded map for latent ``z`` (default: the prior mean 0)."""
        if z is None:
            z = jnp.zeros((x.shape[0], self.latent), x.dtype)
        return self.decode(x, z)


def elbo_loss(model: ConditionalVAE, batch: dict, beta: float):
    """Negative ELBO per pixel (module docstring); ``batch`` holds x, y and eps."""
    mu, logvar = model.encode(batch["x"], batch["y"])
    z = mu + jnp.exp(0.5 * logvar) * batch["eps"]
    rec = jnp.mean((model.decode(batch["x"], z) - batch["y"]) ** 2)
    kl = 0.5 * jnp.mean(jnp.sum(mu**2 + jnp.exp(logvar) - 1.0 - logvar, axis=-1))
    return rec + beta * kl / (batch["y"].shape[1] * batch["y"].shape[2])


@dataclass
class VAEModel:
    graphdef: object
    state: object
    config: VAEConfig
    dx: float
    point_calibration: float = 0.0
    """Relative residual sd of point rates on the validation scenes. Units: 1."""
    total_calibration: float = 0.0
    val_loss: float = float("nan")

    def _decode(self):
        if getattr(self, "_apply", None) is None:
            graphdef = self.graphdef
            self._apply = jax.jit(lambda s, x, z: nnx.merge(graphdef, s).decode(x, z))
        return self._apply

    def predict_maps(self, x, samples: Optional[int] = None, seed: int = 0) -> np.ndarray:
        """(K, B, N, N) emission per cell (kg s-1) for K latent draws from the prior; with
        ``samples=0`` the single map of the prior mean ``z = 0``."""
        K = self.config.samples if samples is None else samples
        x = jnp.asarray(x)
        apply = self._decode()
        if K == 0:
            z = jnp.zeros((1, x.shape[0], self.config.latent), x.dtype)
        else:
            z = jax.random.normal(jax.random.key(seed), (K, x.shape[0], self.config.latent), x.dtype)
        return np.stack([np.asarray(apply(self.state, x, zk)) * EMISSION_SCALE for zk in z])


def _batches(x, y, batch_size, seed, latent):
    def batch(step):
        rng = np.random.default_rng([seed, step])
        idx = rng.integers(0, len(x), batch_size)
        return {"x": x[idx], "y": y[idx], "eps": rng.standard_normal((batch_size, latent)).astype(np.float32)}
    return batch


def train_vae(data: dict, config: VAEConfig = VAEConfig(), *, dx: float = 2000.0, checkpoint_dir=None,
              progress: bool = False, stop_after: Optional[int] = None) -> VAEModel:
    """Train the conditional VAE on a :func:`.generator.load_dataset` dict (the last
    ``validation_fraction`` of scenes validate and calibrate); checkpoints in
    ``checkpoint_dir`` and exact resume from them (:func:`emulator.train.fit`)."""
    from emulator.train import TrainConfig, fit
    if config.latent < 1 or config.samples < 0:
        raise ValueError(f"VAEConfig latent={config.latent}, samples={config.samples}: need latent >= 1 and "
                         "samples >= 0.")
    k = data["u"].shape[-1] // data["obs"].shape[-1]
    x = scene_features(data["obs"], data["valid"], data["u"], data["v"], k, dx)
    y = targets(data["area_emission"], data["point_rates"], data["point_cells"], dx, config.target_sigma)
    nval = max(int(round(config.validation_fraction * len(x))), 2)
    xt, yt, xv, yv = x[:-nval], y[:-nval], x[-nval:], y[-nval:]
    model = ConditionalVAE(config, rngs=nnx.Rngs(config.seed))
    tc = TrainConfig(steps=config.steps, batch_size=config.batch_size, learning_rate=config.learning_rate,
                     warmup_steps=max(config.steps // 20, 1), eval_every=max(config.steps // 6, 1),
                     patience=10**6, checkpoint_every=max(config.steps // 3, 1), seed=config.seed,
                     progress=progress, weight_decay=1e-5)
    beta = config.beta
    eps_val = np.random.default_rng([config.seed, 2**31]).standard_normal((nval, config.latent)).astype(np.float32)
    r = fit(model, lambda m, b: elbo_loss(m, b, beta), _batches(xt, yt, config.batch_size, config.seed,
                                                                  config.latent),
            {"x": xv, "y": yv, "eps": eps_val}, tc,
            checkpoint_dir=None if checkpoint_dir is None else Path(checkpoint_dir), stop_after=stop_after)
    graphdef, state = nnx.split(r.model)
    vm = VAEModel(graphdef, state, config, dx, val_loss=float(r.best_val_loss))
    maps = vm.predict_maps(xv).mean(0)
    rel_p, rel_t = [], []
    for b, i in enumerate(range(len(x) - nval, len(x))):
        p, t = _read_map(maps[b], data["point_cells"][i], dx, config.radius)
        rel_p += list((p - data["point_rates"][i]) / data["point_rates"][i])
        rel_t.append(t / data["total_emission"][i] - 1.0)
    vm.point_calibration = float(np.sqrt(np.mean(np.square(rel_p))))
    vm.total_calibration = float(np.sqrt(np.mean(np.square(rel_t))))
    return vm


def vae_estimate(scene: Scene, model: VAEModel) -> EmissionEstimate:
    """Point rates and total of one scene: mean over latent draws +- (latent spread and the
    validation-calibrated relative error in quadrature)."""
    x = scene_features(scene.obs[None], scene.valid[None], scene.u[None], scene.v[None], scene.pixel_cells,
                       scene.dx, scene.lifetime, scene.ratio, scene.kernel)
    maps = model.predict_maps(x)[:, 0]
    reads = [_read_map(m, scene.point_cells, model.dx, model.config.radius) for m in maps]
    P = np.stack([r[0] for r in reads])
    T = np.asarray([r[1] for r in reads])
    p, t = P.mean(0), float(T.mean())
    sd_p = np.sqrt(P.var(0) + (model.point_calibration * np.abs(p)) ** 2)
    sd_t = float(np.sqrt(T.var() + (model.total_calibration * abs(t)) ** 2))
    return EmissionEstimate("vae", p, sd_p, t, sd_t, maps.mean(0))
