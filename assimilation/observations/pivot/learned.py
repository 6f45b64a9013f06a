"""Learned pivot: a masked autoencoder (Flax NNX) over irregular multi-sensor series per pixel.

Input of one pixel: ``T`` days, each day carrying the observations of ``S`` sensors that
happened to look (Sentinel-2 indices, the coarse daily proxy, Sentinel-1 backscatter) with
their missing-data masks. The irregular series is put on the daily grid and turned into
one token per day (the "observation tokens" of Presto, Tseng et al. 2023, and the
irregular-series encoders of U-BARN, Dumeur et al. 2024, summed per day)::

    h_t = W_date enc(doy_t) + sum_s m_s,t (W_s v_s,t + e_s)

with ``enc`` the date encoding (sin/cos of the day of year, 2 harmonics), ``e_s`` a learned
*sensor token* (a vector per sensor, present only where the sensor observed) and ``m`` the
mask (a missing sensor contributes nothing, so no imputation). A stack of non-causal
dilated residual 1-D convolutions (kernel 5, dilations 1..32: a receptive field of about
+-4 months; the TCN of Bai et al. 2018) maps the tokens to a **daily latent** ``z_t``
(``latent`` numbers per day), and a per-day decoder gives the common variables' mean and
sd (softplus): a heteroscedastic Gaussian (Nix & Weigend 1994; Kendall & Gal 2017).

Self-supervised training (masked autoencoding, He et al. 2022, on time): in each
minibatch, a share of the visible fine observations and one 30-60-day block are hidden
from the input; the loss is the Gaussian negative log-likelihood of the hidden ones (plus
``visible_weight`` x that of the visible ones). No label other than the observations is
used. Cross-pollination (:mod:`.hybrid`): ``phys_weight`` adds the physical pivot (the
multi-resolution Kalman mean and sd) as a soft prior on every day,
``0.5 (mu - m_phys)^2 / (s_phys^2 + sd^2)``, and ``pretrain_steps`` initialise the network
by regression on the physical pivot before the masked training.

Training through :func:`emulator.train.fit` (AdamW, warm-up + cosine, gradient clipping,
orbax checkpoints with exact resume: the minibatch of step ``k`` is a pure function of
``(seed, k)``). Application: :func:`predict` is the per-pixel model ``jax.vmap``-ed over
pixels, in chunks; :func:`predict_dask` maps it over the (y, x) chunks of a dask-backed
cube (``xarray.apply_ufunc(..., dask="parallelized")``, one task per chunk).

Calibration (:func:`train_calibrated`): the heteroscedastic sd of a short self-supervised
training is not calibrated (its 90 % intervals covered 0.81 of withheld observations). A
share of the training dates is hidden from the training targets and the input, and one
split-conformal scale per variable (:func:`conformal_scale`; Vovk et al. 2005, Lei et al.
2018) is fitted on them; the evaluation dates are never used.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

__all__ = ["PivotMAE", "LearnedConfig", "PixelSeries", "date_encoding", "make_batch_fn", "masked_loss",
           "train_pivot_mae", "predict", "conformal_scale", "hide_targets", "train_calibrated", "predict_dask"]


class PixelSeries(NamedTuple):
    """Daily multi-sensor input of P pixels (float arrays, 0 where missing)."""

    values: np.ndarray
    """(P, T, V) observed values of all sensor variables (standardised units)."""
    mask: np.ndarray
    """(P, T, V) bool: observed."""
    sensor_of: tuple
    """(V,) sensor number of each variable (the sensor token it carries)."""
    target: tuple
    """indices of the variables that are decoded (the common variables, S2 scale)."""
    doy: np.ndarray
    """(T,) day of year."""
    phys_mean: np.ndarray | None = None
    """(P, T, len(target)) physical pivot mean (cross-pollination), or None."""
    phys_sd: np.ndarray | None = None


def date_encoding(doy, harmonics: int = 2):
    """(T,) day of year -> (T, 2 harmonics) sin/cos features."""
    w = 2 * jnp.pi * jnp.asarray(doy, jnp.float32) / 365.25
    return jnp.concatenate([f(k * w)[:, None] for k in range(1, harmonics + 1) for f in (jnp.sin, jnp.cos)], 1)


class _Block(nnx.Module):
    def __init__(self, width, dilation, rngs):
        self.conv = nnx.Conv(width, width, kernel_size=(5,), kernel_dilation=(dilation,), padding="SAME",
                             rngs=rngs, param_dtype=jnp.float32)
        self.mix = nnx.Linear(width, width, rngs=rngs, param_dtype=jnp.float32)
        self.norm = nnx.LayerNorm(width, rngs=rngs, param_dtype=jnp.float32)

    def __call__(self, h):
        return h + self.mix(jax.nn.gelu(self.conv(self.norm(h))))


class PivotMAE(nnx.Module):
    """Masked autoencoder of one pixel's daily multi-sensor series (see module docstring)."""

    def __init__(self, n_vars: int, sensor_of, n_targets: int, *, width: int = 32, latent: int = 8,
                 dilations=(1, 2, 4, 8, 16, 32), rngs: nnx.Rngs):
        self.sensor_of = tuple(int(s) for s in sensor_of)
        n_sensors = max(self.sensor_of) + 1
        self.value_in = nnx.Linear(n_vars, width, rngs=rngs, param_dtype=jnp.float32)
        self.sensor_tokens = nnx.Param(0.1 * jax.random.normal(rngs.params(), (n_sensors, width), jnp.float32))
        self.date_in = nnx.Linear(4, width, rngs=rngs, param_dtype=jnp.float32)
        self.blocks = nnx.List([_Block(width, d, rngs) for d in dilations])
        self.to_latent = nnx.Linear(width, latent, rngs=rngs, param_dtype=jnp.float32)
        self.dec1 = nnx.Linear(latent, width, rngs=rngs, param_dtype=jnp.float32)
        self.dec2 = nnx.Linear(width, 2 * n_targets, rngs=rngs, param_dtype=jnp.float32)
        self.n_targets = n_targets

    def encode(self, values, mask, doy):
        """One pixel: values, mask (T, V), doy (T,) -> daily latent (T, latent)."""
        v = jnp.where(mask, values, 0.0).astype(jnp.float32)
        m = mask.astype(jnp.float32)
        present = jnp.stack([jnp.max(m[:, [i for i, s in enumerate(self.sensor_of) if s == k]], axis=1)
                             for k in range(self.sensor_tokens[...].shape[0])], 1)     # (T, sensors)
        h = self.value_in(v * m) + present @ self.sensor_tokens[...] + self.date_in(date_encoding(doy))
        h = h[None]                                            # (1, T, width): conv batch of one pixel
        for b in self.blocks:
            h = b(h)
        return self.to_latent(h[0])

    def decode(self, z):
        """Daily latent (T, latent) -> mean, sd (T, targets)."""
        o = self.dec2(jax.nn.gelu(self.dec1(z)))
        mean, raw = o[:, :self.n_targets], o[:, self.n_targets:]
        return mean, jax.nn.softplus(raw) + 1e-3

    def __call__(self, values, mask, doy):
        z = self.encode(values, mask, doy)
        mean, sd = self.decode(z)
        return z, mean, sd


@dataclass(frozen=True)
class LearnedConfig:
    """Architecture and masking (training schedule: :class:`emulator.train.TrainConfig`)."""

    width: int = 24
    latent: int = 8
    dilations: tuple = (1, 2, 4, 8, 16, 32)
    """Dilations of the residual convolutions (kernel 5): the receptive field is
    ``1 + 4 sum(dilations)`` days."""
    hide_share: float = 0.3
    """Share of the visible fine observations hidden from the input per minibatch (1)."""
    block_days: tuple = (30, 60)
    """Length range of the one hidden block per pixel and minibatch (days)."""
    visible_weight: float = 0.2
    phys_weight: float = 0.0
    """Weight of the physical-pivot prior (0: none)."""
    pretrain_steps: int = 0
    """Steps of regression on the physical pivot before the masked training (0: none)."""
    batch_pixels: int = 16
    window_days: int = 256
    """Training windows: each minibatch is a random span of this many days (the receptive
    field is about 250 days; prediction runs on the whole series)."""
    seed: int = 0


def _gauss_nll(y, mean, sd):
    return 0.5 * ((y - mean) / sd) ** 2 + jnp.log(sd)


def masked_loss(model: PivotMAE, batch: dict, *, target, visible_weight: float, phys_weight: float,
                pretrain: bool = False):
    """Mean Gaussian NLL of the hidden (and, weighted, the visible) target observations,
    plus the physical-pivot prior; ``batch`` arrays have a leading pixel axis."""
    tgt = jnp.asarray(target)
    graphdef, state = nnx.split(model)

    def one(values, mask_in, mask_all, doy, pm, ps):
        _, mean, sd = nnx.merge(graphdef, state)(values, mask_in, doy)
        y = values[:, tgt].astype(jnp.float32)
        obs = mask_all[:, tgt]
        hidden = obs & ~mask_in[:, tgt]
        nll = _gauss_nll(y, mean, sd)
        w = hidden.astype(jnp.float32) + visible_weight * (obs & ~hidden).astype(jnp.float32)
        pm32, ps32 = pm.astype(jnp.float32), ps.astype(jnp.float32)
        phys = 0.5 * (mean - pm32) ** 2 / (ps32**2 + sd**2) + 0.5 * jnp.log(ps32**2 + sd**2)
        if pretrain:
            return jnp.sum(phys), jnp.asarray(phys.size, jnp.float32)
        return jnp.sum(w * nll) + phys_weight * jnp.mean(phys) * jnp.sum(w), jnp.sum(w)

    num, den = jax.vmap(one)(batch["values"], batch["mask_in"], batch["mask_all"], batch["doy"],
                             batch["phys_mean"], batch["phys_sd"])
    return jnp.sum(num) / jnp.maximum(jnp.sum(den), 1.0)


def _hide(mask, target, rng, hide_share, block_days):
    """Input mask with a share of the target observations and one block hidden."""
    B, T, _ = mask.shape
    m = mask.copy()
    hide = rng.random((B, T)) < hide_share
    lo, hi = block_days
    start = rng.integers(0, T, B)
    length = rng.integers(lo, hi + 1, B)
    t = np.arange(T)[None, :]
    hide |= (t >= start[:, None]) & (t < (start + length)[:, None])
    for k in target:
        m[..., k] &= ~hide
    return m


def make_batch_fn(series: PixelSeries, config: LearnedConfig, pixels=None):
    """``step -> batch`` (pure in ``(seed, step)``: the basis of exact resume)."""
    P = series.values.shape[0]
    pool = np.arange(P) if pixels is None else np.asarray(pixels)
    pm, ps = _phys(series)

    def batch(step: int, rows=None, seed_offset: int = 0):
        rng = np.random.default_rng([config.seed + seed_offset, step])
        idx = pool[rng.integers(0, len(pool), config.batch_pixels)] if rows is None else np.asarray(rows)
        T = series.values.shape[1]
        W = min(config.window_days, T)
        t0 = int(rng.integers(0, T - W + 1))
        sl = slice(t0, t0 + W)
        mask = series.mask[idx, sl]
        return {"values": series.values[idx, sl].astype(np.float32), "mask_all": mask,
                "mask_in": _hide(mask, series.target, rng, config.hide_share, config.block_days),
                "doy": np.broadcast_to(series.doy[sl], (len(idx), W)).astype(np.float32),
                "phys_mean": pm[idx, sl], "phys_sd": ps[idx, sl]}
    return batch


def _phys(series: PixelSeries):
    P, T = series.values.shape[:2]
    K = len(series.target)
    if series.phys_mean is None:
        return np.zeros((P, T, K), np.float32), np.ones((P, T, K), np.float32)
    return series.phys_mean.astype(np.float32), series.phys_sd.astype(np.float32)


def train_pivot_mae(series: PixelSeries, config: LearnedConfig, train_config, *, checkpoint_dir=None,
                    val_pixels=None, stop_after=None, pretrain_checkpoint_dir=None):
    """Build and train a :class:`PivotMAE` on ``series``; returns
    :class:`emulator.train.TrainResult` (``.model`` has the best validation weights)."""
    from dataclasses import replace as _replace

    from emulator.train import fit
    P = series.values.shape[0]
    rng = np.random.default_rng(config.seed)
    val = np.sort(rng.choice(P, min(64, P), replace=False)) if val_pixels is None else np.asarray(val_pixels)
    model = PivotMAE(series.values.shape[-1], series.sensor_of, len(series.target), width=config.width,
                     latent=config.latent, dilations=tuple(config.dilations), rngs=nnx.Rngs(config.seed))
    batch_fn = make_batch_fn(series, config)
    val_batch = batch_fn(0, rows=val, seed_offset=10_000)
    opts = dict(target=series.target, visible_weight=config.visible_weight, phys_weight=config.phys_weight)
    if config.pretrain_steps > 0:
        pre = fit(model, lambda m, b: masked_loss(m, b, pretrain=True, **opts), batch_fn, val_batch,
                  _replace(train_config, steps=config.pretrain_steps, checkpoint_every=config.pretrain_steps),
                  checkpoint_dir=pretrain_checkpoint_dir)
        model = pre.model
    return fit(model, lambda m, b: masked_loss(m, b, **opts), batch_fn, val_batch, train_config,
               checkpoint_dir=checkpoint_dir, stop_after=stop_after)


@partial(jax.jit, static_argnums=0)
def _predict_chunk(graphdef, state, v, m, doy):
    """One chunk of pixels: the per-pixel model vmapped (compiled once per graph and shape)."""
    return jax.vmap(lambda a, b: nnx.merge(graphdef, state)(a, b, doy))(v, m)


def predict(model: PivotMAE, series: PixelSeries, mask=None, chunk: int = 256):
    """Daily latent (P, T, latent), mean and sd (P, T, targets) of every pixel: the
    per-pixel model vmapped over pixels, in chunks."""
    mask = series.mask if mask is None else mask
    graphdef, state = nnx.split(model)
    run = lambda v, m, doy: _predict_chunk(graphdef, state, v, m, doy)  # noqa: E731
    doy = jnp.asarray(series.doy, jnp.float32)
    outs = []
    P = series.values.shape[0]
    for i in range(0, P, chunk):      # chunks of pixels, each one vmapped call
        sl = slice(i, min(i + chunk, P))
        v, m = series.values[sl].astype(np.float32), mask[sl]
        pad = chunk - v.shape[0] if P > chunk else 0
        if pad:
            v, m = (np.concatenate([a, np.repeat(a[-1:], pad, 0)]) for a in (v, m))
        o = [np.asarray(a) for a in run(v, m, doy)]
        outs.append([a[:a.shape[0] - pad] if pad else a for a in o])
    return tuple(np.concatenate(x) for x in zip(*outs))


# ----------------------------------------------------------------------------- sd calibration
Z90 = 1.6448536269514722
"""Half-width of the central 90 % interval of a standard normal."""


def conformal_scale(y, mean, sd, mask, coverage: float = 0.9) -> float:
    """Variance-scaling factor ``c`` of a predictive sd from calibration observations: the
    split-conformal quantile of the normalised residuals (Vovk et al. 2005; Lei et al.
    2018, J. Am. Stat. Assoc. 113, 1094), ``c = q_k(|y - mean| / sd) / z_90`` with
    ``q_k`` the ``k = ceil((n + 1) coverage)``-th smallest of the ``n`` scores, so that
    ``mean +- z_90 c sd`` covers a new exchangeable observation with probability >=
    ``coverage``. Arrays of one variable, any shape; ``mask`` selects the calibration
    observations. Returns 1.0 when there are fewer than 20 of them."""
    m = np.asarray(mask, bool)
    z = np.abs(np.asarray(y, float)[m] - np.asarray(mean, float)[m]) / np.asarray(sd, float)[m]
    n = z.size
    if n < 20:
        return 1.0
    k = min(int(np.ceil((n + 1) * coverage)), n)
    return float(np.sort(z)[k - 1] / Z90)


def hide_targets(series: PixelSeries, hidden) -> PixelSeries:
    """``series`` with the target variables' observations on ``hidden`` (P, T) removed."""
    m = series.mask.copy()
    for k in series.target:
        m[..., k] &= ~np.asarray(hidden, bool)
    return series._replace(mask=m)


def train_calibrated(series: PixelSeries, config: LearnedConfig, train_config, calibration, *,
                     coverage: float = 0.9, checkpoint_dir=None, pretrain_checkpoint_dir=None):
    """Train on ``series`` without the calibration observations, then fit one
    :func:`conformal_scale` per target on them.

    ``calibration`` (P, T) bool: the calibration (validation) dates of each pixel, disjoint
    from any evaluation dates (they are hidden from the model's input and from its training
    targets). Returns ``(TrainResult, scales)``: ``scales`` (targets,) multiply the
    decoder's sd (:func:`predict` then ``sd * scales``)."""
    cal = np.asarray(calibration, bool)
    fit_series = hide_targets(series, cal)
    res = train_pivot_mae(fit_series, config, train_config, checkpoint_dir=checkpoint_dir,
                          pretrain_checkpoint_dir=pretrain_checkpoint_dir)
    _, mean, sd = predict(res.model, fit_series)
    scales = np.array([conformal_scale(series.values[..., k], mean[..., j], sd[..., j],
                                       cal & series.mask[..., k], coverage)
                       for j, k in enumerate(series.target)])
    return res, scales


# ----------------------------------------------------------------------------- dask cubes
def predict_dask(model: PivotMAE, values, mask, doy, *, pixel_chunk: int = 256):
    """The learned pivot of a cube with dask: ``values``, ``mask`` are ``xarray.DataArray``
    with dims ``(y, x, time, var)`` (dask-chunked over y and x; time and var whole), ``doy``
    the (time,) day of year. Each (y, x) chunk is one task: its pixels are flattened and
    run through :func:`predict` (the per-pixel model vmapped over pixels), so the result
    equals the in-memory :func:`predict` of the same pixels to round-off. Returns lazy
    ``(mean, sd)`` DataArrays with dims ``(y, x, time, target)``."""
    import xarray as xr
    n_targets = model.n_targets
    doy = np.asarray(doy, float)
    sensor_of, target = model.sensor_of, tuple(range(n_targets))

    def block(v, m):
        ny, nx, T, V = v.shape
        s = PixelSeries(v.reshape(ny * nx, T, V), m.reshape(ny * nx, T, V).astype(bool), sensor_of, target, doy)
        _, mean, sd = predict(model, s, chunk=min(pixel_chunk, max(ny * nx, 1)))
        return mean.reshape(ny, nx, T, n_targets), sd.reshape(ny, nx, T, n_targets)

    core = ["time", "var"]
    out = xr.apply_ufunc(block, values, mask, input_core_dims=[core, core],
                         output_core_dims=[["time", "target"], ["time", "target"]], dask="parallelized",
                         output_dtypes=[np.float32, np.float32],
                         dask_gufunc_kwargs={"output_sizes": {"target": n_targets}, "allow_rechunk": False})
    return out
