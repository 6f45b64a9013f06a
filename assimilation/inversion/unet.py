"""A small SmaAT-UNet-like network (Flax NNX) from NO2 scenes to emission maps, trained
with Optax on the synthetic scenes, as a deep ensemble for uncertainty.

Architecture (after Trebing et al. 2021, Pattern Recogn. Lett. 145:178, SmaAT-UNet): a
U-Net (Ronneberger et al. 2015) whose convolutions are depthwise-separable and whose
encoder blocks carry channel attention (squeeze-and-excitation, Hu et al. 2018, the
channel half of CBAM); two down-sampling levels, bilinear up-sampling, skip connections.

Inputs (5 channels on the model grid): NO2 columns upsampled from the pixels and divided
by 1e-4 mol m-2 (0 where unusable), the usable mask, u / 10 and v / 10 (m s-1), and the
flux-divergence emission map (Beirle et al. 2019, :func:`.methods._fd_map` with the
assumed lifetime and ratio) per cell / 0.1 kg s-1: a physics feature, so the network
learns a correction of the divergence map rather than the transport from scratch (the
hybrid design; with a few hundred CPU training steps a plain image-to-emission U-Net does
not learn the transport, see the study's report).
Target: the emission per cell (kg s-1) Gaussian-smoothed by ``target_sigma`` cells
(mass-preserving) and divided by 0.1 kg s-1. The point-source rate is read from the
predicted map like the flux-divergence map (disk sum minus annulus background) and the
domain total is the map sum.

Uncertainty: a deep ensemble (Lakshminarayanan et al. 2017) of ``members`` networks with
different initial weights and minibatch orders; the interval combines the ensemble spread
with the relative residual error measured on held-out validation scenes
(``sd^2 = spread^2 + (c * estimate)^2``), a split-conformal-style calibration.

Training reuses :func:`emulator.train.fit` (AdamW, warm-up + cosine decay, Orbax
checkpoints with exact resume, minibatch a pure function of ``(seed, step)``).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from scipy.ndimage import gaussian_filter

from .methods import EmissionEstimate, Scene
from .operator import upsample

__all__ = ["UNet", "UNetConfig", "UNetEnsemble", "scene_features", "targets", "train_unet_ensemble",
           "unet_estimate"]

OBS_SCALE = 1e-4
"""Units: mol m-2."""
EMISSION_SCALE = 0.1
"""Units: kg s-1 per cell."""


class SeparableConv(nnx.Module):
    """Depthwise-separable 3x3 convolution (SmaAT-UNet) or, with ``separable=False``, a
    plain 3x3 convolution (XLA's grouped convolutions are slow on CPU)."""

    def __init__(self, cin, cout, *, separable: bool, rngs):
        self.separable = separable
        if separable:
            self.depth = nnx.Conv(cin, cin, (3, 3), feature_group_count=cin, padding="SAME", rngs=rngs)
            self.point = nnx.Conv(cin, cout, (1, 1), rngs=rngs)
        else:
            self.conv = nnx.Conv(cin, cout, (3, 3), padding="SAME", rngs=rngs)

    def __call__(self, x):
        return self.point(self.depth(x)) if self.separable else self.conv(x)


class Block(nnx.Module):
    """Two separable conv + GroupNorm + ReLU, optional channel attention."""

    def __init__(self, cin, cout, *, attention: bool, separable: bool, rngs):
        self.c1 = SeparableConv(cin, cout, separable=separable, rngs=rngs)
        self.n1 = nnx.GroupNorm(cout, num_groups=min(8, cout), rngs=rngs)
        self.c2 = SeparableConv(cout, cout, separable=separable, rngs=rngs)
        self.n2 = nnx.GroupNorm(cout, num_groups=min(8, cout), rngs=rngs)
        self.attention = attention
        if attention:
            self.se1 = nnx.Linear(cout, max(cout // 4, 4), rngs=rngs)
            self.se2 = nnx.Linear(max(cout // 4, 4), cout, rngs=rngs)

    def __call__(self, x):
        x = nnx.relu(self.n1(self.c1(x)))
        x = nnx.relu(self.n2(self.c2(x)))
        if self.attention:
            w = nnx.sigmoid(self.se2(nnx.relu(self.se1(x.mean(axis=(1, 2))))))
            x = x * w[:, None, None, :]
        return x


class UNet(nnx.Module):
    """(B, N, N, 4) -> (B, N, N) emission map (N divisible by 4)."""

    def __init__(self, channels=(16, 32, 64), cin: int = 5, *, separable: bool = False, rngs: nnx.Rngs):
        c1, c2, c3 = channels
        kw = dict(separable=separable, rngs=rngs)
        self.e1 = Block(cin, c1, attention=True, **kw)
        self.e2 = Block(c1, c2, attention=True, **kw)
        self.e3 = Block(c2, c3, attention=True, **kw)
        self.d2 = Block(c3 + c2, c2, attention=False, **kw)
        self.d1 = Block(c2 + c1, c1, attention=False, **kw)
        self.out = nnx.Conv(c1, 1, (1, 1), rngs=rngs)

    def __call__(self, x):
        pool = lambda a: nnx.max_pool(a, (2, 2), strides=(2, 2))
        up = lambda a, ref: jax.image.resize(a, ref.shape[:3] + (a.shape[-1],), "bilinear")
        x1 = self.e1(x)
        x2 = self.e2(pool(x1))
        x3 = self.e3(pool(x2))
        y2 = self.d2(jnp.concatenate([up(x3, x2), x2], -1))
        y1 = self.d1(jnp.concatenate([up(y2, x1), x1], -1))
        return self.out(y1)[..., 0]


@dataclass(frozen=True)
class UNetConfig:
    channels: tuple = (8, 16, 32)
    separable: bool = False
    """Depthwise-separable convolutions as in SmaAT-UNet (slow on CPU)."""
    members: int = 2
    steps: int = 300
    batch_size: int = 16
    learning_rate: float = 3e-3
    target_sigma: float = 1.5
    """Smoothing of the target map. Units: cells."""
    validation_fraction: float = 0.15
    seed: int = 0
    radius: float = 12e3
    """Disk radius for point-source rates. Units: m."""


def scene_features(obs, valid, u, v, pixel_cells: int, dx: float = 2000.0, lifetime: float = 4 * 3600.0,
                   ratio: float = 1 / 1.32, kernel: float = 1.0) -> np.ndarray:
    """Network input (B, N, N, 5) float32 from stacked scene arrays."""
    o = np.where(valid > 0, np.nan_to_num(obs), 0.0)
    h = dx * pixel_cells
    E = np.asarray(_fd_maps(jnp.asarray(o), jnp.asarray(valid, jnp.float64), jnp.asarray(u), jnp.asarray(v),
                            jnp.asarray(float(h)), jnp.asarray(float(kernel)), jnp.asarray(float(ratio)),
                            jnp.asarray(float(lifetime)), k=pixel_cells))
    E = np.nan_to_num(E) * dx * dx / EMISSION_SCALE            # per model cell
    x = np.stack([np.asarray(upsample(jnp.asarray(o / OBS_SCALE), pixel_cells)),
                  np.asarray(upsample(jnp.asarray(valid, jnp.float64), pixel_cells)),
                  u / 10.0, v / 10.0, np.asarray(upsample(jnp.asarray(E), pixel_cells))], -1)
    return x.astype(np.float32)


@partial(jax.jit, static_argnames=("k",))
def _fd_maps(o, valid, u, v, h, kernel, ratio, lifetime, *, k):
    """Flux-divergence maps of a stack of scenes (compiled once per shape and ``k``)."""
    from .methods import _fd_map
    return jax.vmap(lambda y, m, uu, vv: _fd_map(y, m, uu, vv, k, h, kernel, ratio, lifetime)[0])(o, valid, u, v)


def targets(area_emission, point_rates, point_cells, dx, sigma) -> np.ndarray:
    """Smoothed emission per cell / EMISSION_SCALE, (B, N, N) float32."""
    e = area_emission * dx * dx
    e = e.copy()
    for b in range(len(e)):
        for (r, c), q in zip(point_cells[b], point_rates[b]):
            e[b, r, c] += q
    sm = np.stack([gaussian_filter(x, sigma, mode="constant") for x in e])
    return (sm / EMISSION_SCALE).astype(np.float32)


def _read_map(m, cells, dx, radius, annulus=2.0):
    """Point rates (disk sum minus annulus median x disk cells) and total from a map (kg s-1
    per cell), as for the flux divergence."""
    N = m.shape[-1]
    yy, xx = np.mgrid[0:N, 0:N]
    out = []
    for r, c in cells:
        d = np.hypot(yy - r, xx - c) * dx
        disk, ring = d <= radius, (d > radius) & (d <= annulus * radius)
        out.append(m[disk].sum() - np.median(m[ring]) * disk.sum())
    return np.asarray(out), float(m.sum())


@dataclass
class UNetEnsemble:
    graphdef: object
    states: list
    config: UNetConfig
    dx: float
    point_calibration: float = 0.0
    """Relative residual sd of point rates on the validation scenes. Units: 1."""
    total_calibration: float = 0.0
    val_loss: tuple = ()

    def predict_maps(self, x) -> np.ndarray:
        """(M, B, N, N) emission per cell (kg s-1)."""
        if getattr(self, "_apply", None) is None:
            graphdef = self.graphdef
            self._apply = jax.jit(lambda s, x: nnx.merge(graphdef, s)(x))
        return np.stack([np.asarray(self._apply(s, jnp.asarray(x))) * EMISSION_SCALE for s in self.states])


def _batches(x, y, batch_size, seed):
    def batch(step):
        idx = np.random.default_rng([seed, step]).integers(0, len(x), batch_size)
        return {"x": x[idx], "y": y[idx]}
    return batch


def train_unet_ensemble(data: dict, config: UNetConfig = UNetConfig(), *, dx: float = 2000.0,
                        checkpoint_dir=None, progress: bool = False,
                        stop_after: Optional[int] = None) -> UNetEnsemble:
    """Train ``config.members`` U-Nets on a :func:`.generator.load_dataset` dict (the last
    ``validation_fraction`` of scenes validate and calibrate). Each member checkpoints to
    ``checkpoint_dir/member_k`` and resumes exactly from it."""
    from emulator.train import TrainConfig, fit
    n = data["u"].shape[-1]
    k = n // data["obs"].shape[-1]
    x = scene_features(data["obs"], data["valid"], data["u"], data["v"], k, dx)
    y = targets(data["area_emission"], data["point_rates"], data["point_cells"], dx, config.target_sigma)
    nval = max(int(round(config.validation_fraction * len(x))), 2)
    xt, yt, xv, yv = x[:-nval], y[:-nval], x[-nval:], y[-nval:]

    def loss(model, batch):
        return jnp.mean((model(batch["x"]) - batch["y"]) ** 2)

    states, vals, graphdef = [], [], None
    for mbr in range(config.members):
        model = UNet(config.channels, separable=config.separable, rngs=nnx.Rngs(config.seed * 1000 + mbr))
        tc = TrainConfig(steps=config.steps, batch_size=config.batch_size, learning_rate=config.learning_rate,
                         warmup_steps=max(config.steps // 20, 1), eval_every=max(config.steps // 6, 1),
                         patience=10**6, checkpoint_every=max(config.steps // 3, 1),
                         seed=config.seed * 1000 + mbr, progress=progress, weight_decay=1e-5)
        ck = None if checkpoint_dir is None else Path(checkpoint_dir) / f"member_{mbr}"
        r = fit(model, loss, _batches(xt, yt, config.batch_size, tc.seed), {"x": xv, "y": yv}, tc,
                checkpoint_dir=ck, stop_after=stop_after)
        graphdef, state = nnx.split(r.model)
        states.append(state)
        vals.append(r.best_val_loss)
    ens = UNetEnsemble(graphdef, states, config, dx, val_loss=tuple(vals))
    # calibration on the validation scenes
    maps = ens.predict_maps(xv).mean(0)
    rel_p, rel_t = [], []
    sl = slice(len(x) - nval, len(x))
    for b, i in enumerate(range(len(x))[sl]):
        p, t = _read_map(maps[b], data["point_cells"][i], dx, config.radius)
        rel_p += list((p - data["point_rates"][i]) / data["point_rates"][i])
        rel_t.append(t / data["total_emission"][i] - 1.0)
    ens.point_calibration = float(np.sqrt(np.mean(np.square(rel_p))))
    ens.total_calibration = float(np.sqrt(np.mean(np.square(rel_t))))
    return ens


def unet_estimate(scene: Scene, ensemble: UNetEnsemble) -> EmissionEstimate:
    """Point rates and total of one scene with the ensemble (mean +- calibrated sd)."""
    x = scene_features(scene.obs[None], scene.valid[None], scene.u[None], scene.v[None], scene.pixel_cells,
                       scene.dx, scene.lifetime, scene.ratio, scene.kernel)
    maps = ensemble.predict_maps(x)[:, 0]
    reads = [_read_map(m, scene.point_cells, ensemble.dx, ensemble.config.radius) for m in maps]
    P = np.stack([r[0] for r in reads])
    T = np.asarray([r[1] for r in reads])
    p, t = P.mean(0), float(T.mean())
    sd_p = np.sqrt(P.var(0) + (ensemble.point_calibration * np.abs(p)) ** 2)
    sd_t = float(np.sqrt(T.var() + (ensemble.total_calibration * abs(t)) ** 2))
    return EmissionEstimate("unet", p, sd_p, t, sd_t, maps.mean(0))
