"""Array-level entry point: every fusion method on a stack of pixels.

``fuse_arrays(y, mask, method=...)`` takes daily observations ``y`` (P, T, S) of S sensors
(NaN or anything where ``mask`` is False) and returns a :class:`FusionResult`: the fused
daily mean and sd per pixel and the predictive mean/sd of each sensor's observation
(``a_s + b_s x_t`` and ``sqrt(b_s^2 sd_t^2 + sd_s^2)`` for the Kalman fusion; the baselines
predict the same value for all sensors). Kalman parameters are fitted by maximum
likelihood pooled over (a random subset of) the pixels unless given. Pixels are vmapped,
in chunks of ``chunk`` pixels (one compiled call per chunk size).
"""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from process_models.units import DataValidationError

from . import baselines
from .fit import FitResult, fit_mle
from .kalman import rts_smoother
from .sensors import ProcessParams, SensorParams, build_state_space, level_mean_sd, predict_observations

__all__ = ["METHODS", "FLAG_OK", "FLAG_NO_DATA", "FLAG_FEW_OBS", "FLAG_CONSTANT", "FusionResult",
           "fuse_arrays", "harmonic_climatology", "pixel_flags"]

METHODS = ("kalman", "linear", "whittaker", "savgol", "pyvprm")
FLAG_OK, FLAG_NO_DATA, FLAG_FEW_OBS, FLAG_CONSTANT = 0, 1, 2, 3
FLAG_MEANINGS = "ok no_valid_observation fewer_than_min_obs constant_series"


class FusionResult(NamedTuple):
    mean: np.ndarray
    """Fused daily value (P, T), unit of the input; NaN for pixels flagged no-data."""
    sd: np.ndarray
    """Sd of the fused value (P, T); NaN where the method has none."""
    obs_mean: np.ndarray
    """Predicted observation of each sensor (P, T, S)."""
    obs_sd: np.ndarray
    """Predictive sd of each sensor's observation (P, T, S); NaN where none."""
    flags: np.ndarray
    """Per-pixel flag (P,): 0 ok, 1 no valid observation, 2 fewer than ``min_obs``, 3 constant."""
    fit: FitResult | None
    """Kalman parameters (None for the baselines)."""
    climatology: np.ndarray | None
    """Prior mean used by the Kalman fusion (P, T)."""


def pixel_flags(y, mask, min_obs: int = 4) -> np.ndarray:
    y = np.asarray(y, float)
    mask = np.asarray(mask, bool)
    n = mask.sum(axis=(1, 2))
    vals = np.where(mask, y, np.nan)
    flat = np.where(np.isfinite(vals), vals, 0.0).reshape(len(y), -1)
    hi = np.where(mask.reshape(len(y), -1), flat, -np.inf).max(axis=1)
    lo = np.where(mask.reshape(len(y), -1), flat, np.inf).min(axis=1)
    spread = np.where(n > 0, hi - lo, 0.0)
    flags = np.full(len(y), FLAG_OK, np.int8)
    flags[(n > 0) & ~(spread > 0)] = FLAG_CONSTANT
    flags[(n > 0) & (n < min_obs)] = FLAG_FEW_OBS
    flags[n == 0] = FLAG_NO_DATA
    return flags


def harmonic_climatology(y, mask, n_harmonics: int = 2, period: float = 365.25, pooled_shape: bool = False,
                         ridge: float = 1e-3):
    """Seasonal prior mean ``clim_t = c0 + sum_k (a_k cos + b_k sin)(2 pi k t / period)``
    by ridge least squares on the merged valid observations of each pixel (HANTS-like,
    Roerink et al. 2000, without outlier iteration). ``pooled_shape=True``: one seasonal
    shape for all pixels (fitted to the pixel anomalies pooled) plus each pixel's mean --
    for short records (one year) where per-pixel harmonics would extrapolate into gaps."""
    ym, mm = baselines.merge_sensors(jnp.asarray(y), jnp.asarray(mask))
    ym, mm = np.asarray(ym, float), np.asarray(mm, bool)
    P, T = ym.shape
    t = np.arange(T)
    cols = [np.ones(T)]
    for k in range(1, n_harmonics + 1):
        cols += [np.cos(2 * np.pi * k * t / period), np.sin(2 * np.pi * k * t / period)]
    X = np.stack(cols, 1)                                           # (T, 1 + 2K)
    n = mm.sum(1)
    mean = np.where(n > 0, (ym * mm).sum(1) / np.maximum(n, 1), 0.0)
    if pooled_shape:
        Xs = X[:, 1:]
        w = mm.reshape(-1)
        A = np.tile(Xs, (P, 1))[w]
        b = (ym - mean[:, None]).reshape(-1)[w]
        if len(b) == 0:
            return np.broadcast_to(mean[:, None], (P, T)).copy()
        coef = np.linalg.lstsq(A.T @ A + ridge * len(b) * np.eye(Xs.shape[1]), A.T @ b, rcond=None)[0]
        return mean[:, None] + (Xs @ coef)[None, :]
    W = mm.astype(float)
    G = np.einsum("pt,ti,tj->pij", W, X, X) + ridge * np.maximum(n, 1)[:, None, None] * np.eye(X.shape[1])
    G[:, 0, 0] += 1e-9
    rhs = np.einsum("pt,ti,pt->pi", W, X, ym)
    coef = np.linalg.solve(G, rhs[..., None])[..., 0]
    clim = coef @ X.T
    return np.where(n[:, None] > 0, clim, 0.0)


def _climatology(y, mask, climatology, n_harmonics=2):
    if climatology is None or (isinstance(climatology, str) and climatology == "mean"):
        return harmonic_climatology(y, mask, n_harmonics=0)
    if isinstance(climatology, str):
        if climatology == "harmonic":
            return harmonic_climatology(y, mask, n_harmonics)
        if climatology == "scene":
            return harmonic_climatology(y, mask, n_harmonics, pooled_shape=True)
        raise ValueError(f"climatology {climatology!r}: use 'mean', 'harmonic', 'scene' or an array")
    return np.broadcast_to(np.asarray(climatology, float), y.shape[:2])


def _chunked(fn, arrays, chunk):
    P = arrays[0].shape[0]
    outs = []
    for i in range(0, P, chunk):       # chunks of pixels (each a vmapped call), not single pixels
        part = [a[i:i + chunk] for a in arrays]
        pad = chunk - part[0].shape[0]
        if pad:
            part = [np.concatenate([a, np.repeat(a[-1:], pad, 0)]) for a in part]
        o = jax.tree.map(np.asarray, fn(*part))
        outs.append(jax.tree.map(lambda x: x[:chunk - pad] if pad else x, o))
    return jax.tree.map(lambda *xs: np.concatenate(xs), *outs)


_jitted = {}


def _kalman_smooth_fn(kind):
    if ("k", kind) not in _jitted:
        def f(y, mask, clim, process, sensors):
            def one(yy, mm, cc):
                res = rts_smoother(build_state_space(process, sensors, cc), yy, mm)
                return level_mean_sd(res.smoothed_mean, res.smoothed_cov, cc)
            return jax.vmap(one)(y, mask, clim)
        _jitted[("k", kind)] = jax.jit(f)
    return _jitted[("k", kind)]


def _baseline_fn(method, options):
    key = (method, tuple(sorted(options.items())))
    if key not in _jitted:
        def one(yy, mm):
            y1, m1 = baselines.merge_sensors(yy, mm)
            if method == "whittaker":
                return baselines.whittaker_gcv(y1, m1, **options)[0]
            return getattr(baselines, method)(y1, m1, **options)
        _jitted[key] = jax.jit(jax.vmap(one))
    return _jitted[key]


def fuse_arrays(y, mask, method: str = "kalman", *, kind: str = "damped", climatology=None,
                process: ProcessParams | None = None, sensors: SensorParams | None = None,
                fit_pixels: int = 256, fit_steps: int = 300, fit: str = "pooled", n_harmonics: int = 2,
                min_obs: int = 4, chunk: int = 512, seed: int = 0, **options) -> FusionResult:
    """Fuse / gap-fill ``y`` (P, T, S) with validity ``mask`` on a daily grid.

    method : one of :data:`METHODS`. ``options`` go to the baseline (e.g. ``window_days`` for
        ``savgol``, ``lambdas`` for ``whittaker``).
    kind, climatology : Kalman process (:data:`.sensors.PROCESS_KINDS`) and prior mean
        ('mean' (default: each pixel's mean), 'harmonic', 'scene' or an array (P, T)).
    process, sensors : Kalman parameters; fitted by MLE (pooled over up to ``fit_pixels``
        random valid pixels, ``fit_steps`` Adam steps) when ``process`` is None.
    fit : "pooled" (one parameter set for all pixels) or "pixel" (one per pixel, vmapped;
        all pixels are fitted).
    n_harmonics : harmonics of the 'harmonic' / 'scene' climatology.
    """
    if method not in METHODS:
        raise ValueError(f"method {method!r} is not one of {METHODS}")
    y = np.asarray(y, float)
    mask = np.asarray(mask, bool) & np.isfinite(y)
    if y.ndim != 3 or mask.shape != y.shape:
        raise DataValidationError(f"y must have shape (pixels, days, sensors), got {y.shape}", variable="y",
                                  fix="add a leading pixel axis and a trailing sensor axis")
    y = np.where(mask, y, 0.0)
    flags = pixel_flags(y, mask, min_obs)
    usable = flags != FLAG_NO_DATA
    if not usable.any():
        raise DataValidationError("no pixel has a valid observation", variable="mask",
                                  fix="check the QA mask and the time range")
    P, T, S = y.shape
    nan = np.full((P, T), np.nan)
    if method == "kalman":
        clim = _climatology(y, mask, climatology, n_harmonics)
        fit_res = None
        per_pixel = process is None and fit == "pixel"
        if per_pixel:
            fit_res = fit_mle(y, mask, clim, kind=kind, sensors=sensors, steps=fit_steps, pooled=False)
            p_, s_ = fit_res.process, fit_res.sensors
            fn = jax.jit(jax.vmap(lambda yy, mm, cc, pp, ss: _kalman_smooth_fn(kind)(
                yy[None], mm[None], cc[None], pp, ss)))
            mean, sd = fn(y, mask, clim, p_, s_)
            mean, sd = np.asarray(mean)[:, 0], np.asarray(sd)[:, 0]
            om, osd = jax.vmap(predict_observations)(jnp.asarray(mean), jnp.asarray(sd), s_)
            om, osd, fit = np.asarray(om), np.asarray(osd), fit_res
        elif process is None:
            rng = np.random.default_rng(seed)
            cand = np.flatnonzero(flags == FLAG_OK) if (flags == FLAG_OK).any() else np.flatnonzero(usable)
            pick = np.sort(rng.choice(cand, min(fit_pixels, len(cand)), replace=False))
            fit_res = fit_mle(y[pick], mask[pick], clim[pick], kind=kind, process=process, sensors=sensors,
                              steps=fit_steps, fit_sensors=True)
            process, sensors = fit_res.process, fit_res.sensors
        elif sensors is None:
            raise ValueError("give sensors together with process")
        if not per_pixel:
            fn = _kalman_smooth_fn(process.kind)
            mean, sd = _chunked(lambda a, b, c: fn(a, b, c, process, sensors), [y, mask, clim], chunk)
            om, osd = predict_observations(jnp.asarray(mean), jnp.asarray(sd), sensors)
            om, osd = np.asarray(om), np.asarray(osd)
            fit = fit_res or FitResult(process, sensors, jnp.nan, jnp.zeros(0))
    else:
        clim = None
        fn = _baseline_fn(method, options)
        res = _chunked(fn, [y, mask], chunk)
        mean, sd = res.mean, res.sd
        om = np.repeat(mean[..., None], S, -1)
        osd = np.repeat(np.sqrt(sd**2 + np.asarray(res.noise_sd)[:, None] ** 2)[..., None], S, -1)
        fit = None
    bad = ~usable
    mean, sd = np.where(bad[:, None], nan, mean), np.where(bad[:, None], nan, sd)
    om = np.where(bad[:, None, None], np.nan, om)
    osd = np.where(bad[:, None, None], np.nan, osd)
    return FusionResult(mean, sd, om, osd, flags, fit, clim)
