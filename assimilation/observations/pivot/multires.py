"""Multi-resolution Kalman fusion: a coarse daily sensor plus a fine sparse one, with a
likelihood and a per-day sd (a STARFM-like decomposition in state-space form).

Each fine pixel ``i`` lies in one coarse cell ``c(i)``; its daily value is split into the
cell mean and the pixel's deviation from it::

    x_i,t = X_c,t + d_i,t

STARFM (Gao et al. 2006, IEEE TGRS 44, 2207) predicts a fine image as a fine image of
another date plus the coarse change in between; here the same split is a two-level
state-space model with a likelihood:

1. **Cell level** (one Kalman/RTS smoother per coarse cell, :mod:`..fusion`): state
   ``X_c,t`` as a damped anomaly around a harmonic climatology; sensors: (0) the mean of
   the clear fine observations of the cell on fine dates where at least ``min_share`` of
   the cell is clear (the reference scale), (1) the coarse sensor, ``y = a + b X + v``.
   Parameters (process sd, damping, sensor bias/gain/noise) by maximum likelihood pooled
   over cells (:func:`..fusion.fit_mle`). Gives ``E[X_c,t]`` and ``Var[X_c,t]`` every day.
2. **Pixel level** (one smoother per fine pixel, vmapped): the residuals
   ``r_i,t = y_i,t - E[X_c(i),t]`` on the fine dates observe ``d_i,t``, a damped anomaly
   around the pixel's mean residual, with variance
   ``sd_d^2 + kappa sd_obs,i,t^2 + Var[X_c(i),t]`` (representation error ``sd_d``, the
   observation's own sd scaled by ``kappa``, the cell estimate's uncertainty); ``q_d, phi_d,
   sd_d, kappa`` by maximum
   likelihood pooled over a pixel sample (optax Adam in ``lax.scan``).

Result: ``E[x_i,t] = E[X_c,t] + E[d_i,t]``, ``Var[x_i,t] = Var[X_c,t] + Var[d_i,t]``
(the cross-covariance is neglected, which errs on the wide side), and the predictive sd
of a fine observation ``sqrt(Var[x] + sd_d^2 + kappa sd_obs^2)`` (:func:`fine_predictive_sd`). The log-likelihood is the sum
of the two levels' prediction-error decompositions (Harvey 1989), each exact for its model.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from process_models.units import DataValidationError

from ..fusion.kalman import log_likelihood, rts_smoother
from ..fusion.methods import fuse_arrays, harmonic_climatology
from ..fusion.sensors import ProcessParams, SensorParams, build_state_space, level_mean_sd
from .sensors import block_mean

__all__ = ["MultiresResult", "PixelLevelParams", "cell_observations", "multires_fuse", "fit_pixel_level",
           "smooth_pixel_level", "fine_predictive_sd"]


class PixelLevelParams(NamedTuple):
    process_sd: jax.Array
    """q_d, sd of the daily deviation increment (unit of the index per day)."""
    phi: jax.Array
    """Damping of the deviation (1)."""
    repr_sd: jax.Array
    """sd_d, representation error of a fine observation about x (unit of the index)."""
    obs_scale: jax.Array
    """kappa, multiplies the fine observations' own error variance (1): the likelihood
    calibrates the a-priori reflectance-error model."""


class MultiresResult(NamedTuple):
    mean: np.ndarray
    """(P, T) fused daily value per fine pixel (unit of the index)."""
    sd: np.ndarray
    """(P, T) sd of the fused value."""

    cell_mean: np.ndarray
    """(C, T) cell-level mean."""
    cell_sd: np.ndarray
    """(C, T) cell-level sd."""
    cell_fit: object
    """:class:`..fusion.FitResult` of the cell level (sensor 0 fine aggregate, 1 coarse)."""
    pixel_params: PixelLevelParams
    log_likelihood: dict
    """{"cell": ..., "pixel": ..., "total": ...} (summed over cells / pixels)."""


def cell_observations(y_fine, mask_fine, y_coarse, mask_coarse, cell, min_share: float = 0.5):
    """(C, T, 2) cell-level observations: the mean of the clear fine pixels where at
    least ``min_share`` of the cell is clear (sensor 0), the coarse sensor (sensor 1)."""
    C = y_coarse.shape[0]
    m, cnt = block_mean(y_fine, mask_fine, cell, C)
    npix = np.bincount(cell, minlength=C)[:, None]
    ok0 = cnt >= min_share * npix
    y = np.stack([np.where(ok0, m, 0.0), np.where(mask_coarse, y_coarse, 0.0)], -1)
    return y, np.stack([ok0, np.asarray(mask_coarse, bool)], -1)


def _pixel_model(params: PixelLevelParams, clim, var_obs, var_cell):
    """StateSpace of the deviation d (damped) with per-day observation variance."""
    proc = ProcessParams(process_sd=params.process_sd, phi=params.phi, slope_sd=jnp.zeros_like(params.phi),
                         initial_sd=jnp.ones_like(params.phi), kind="damped")
    sens = SensorParams(bias=jnp.zeros(1, clim.dtype), gain=jnp.ones(1, clim.dtype), noise_sd=jnp.ones(1, clim.dtype))
    var = params.repr_sd**2 + params.obs_scale * var_obs + var_cell
    return build_state_space(proc, sens, clim, obs_var_scale=var[:, None])


def _unpack(u):
    return PixelLevelParams(jnp.exp(u[0]), jax.nn.sigmoid(u[1]), jnp.exp(u[2]), jnp.exp(u[3]))


def _pixel_nll(u, r, mask, clim, var_obs, var_cell):
    p = _unpack(u)
    ll = jax.vmap(lambda rr, mm, cc, vv, vc: log_likelihood(_pixel_model(p, cc, vv, vc), rr[:, None],
                                                            mm[:, None]))(r, mask, clim, var_obs, var_cell)
    return -jnp.sum(ll) / jnp.maximum(jnp.sum(mask), 1).astype(ll.dtype)


@partial(jax.jit, static_argnames=("steps",))
def _fit_pixel(u0, r, mask, clim, var_obs, var_cell, steps, lr):
    opt = optax.adam(lr)

    def step(carry, _):
        u, s = carry
        v, g = jax.value_and_grad(_pixel_nll)(u, r, mask, clim, var_obs, var_cell)
        g = jnp.where(jnp.isfinite(g), g, 0.0)
        upd, s = opt.update(g, s, u)
        return (optax.apply_updates(u, upd), s), v

    (u, _), hist = jax.lax.scan(step, (u0, opt.init(u0)), None, length=steps)
    return u, hist


def fit_pixel_level(r, mask, clim, var_obs, var_cell, steps: int = 150, learning_rate: float = 0.05,
                    initial=(0.005, 0.98, 0.02, 0.5)) -> tuple[PixelLevelParams, jax.Array]:
    """Maximum-likelihood ``q_d, phi_d, sd_d, kappa`` pooled over the given pixels (P, T)."""
    q, phi, sd, kappa = initial
    u0 = jnp.log(jnp.asarray([q, phi / (1 - phi), sd, kappa]))   # log, logit, log, log
    u, hist = _fit_pixel(u0, *(jnp.asarray(a) for a in (r, mask, clim, var_obs, var_cell)), steps, learning_rate)
    return _unpack(u), hist


@jax.jit
def _smooth_chunk(params, r, mask, clim, var_obs, var_cell):
    def one(rr, mm, cc, vv, vc):
        res = rts_smoother(_pixel_model(params, cc, vv, vc), rr[:, None], mm[:, None])
        mean, sd = level_mean_sd(res.smoothed_mean, res.smoothed_cov, cc)
        return mean, sd, res.log_likelihood
    return jax.vmap(one)(r, mask, clim, var_obs, var_cell)


def smooth_pixel_level(params: PixelLevelParams, r, mask, clim, var_obs, var_cell, chunk: int = 1024):
    """RTS smoother of the deviations, vmapped over pixels in chunks: (mean, sd, log-lik)."""
    P = r.shape[0]
    outs = []
    for i in range(0, P, chunk):      # chunks of pixels, each one vmapped call
        sl = slice(i, min(i + chunk, P))
        parts = [np.asarray(a[sl]) for a in (r, mask, clim, var_obs, var_cell)]
        pad = chunk - parts[0].shape[0] if P > chunk else 0
        if pad:
            parts = [np.concatenate([a, np.repeat(a[-1:], pad, 0)]) for a in parts]
        o = [np.asarray(a) for a in _smooth_chunk(params, *parts)]
        outs.append([a[:a.shape[0] - pad] if pad else a for a in o])
    return tuple(np.concatenate(x) for x in zip(*outs))


def multires_fuse(y_fine, mask_fine, sd_fine, y_coarse, mask_coarse, cell, *, n_harmonics: int = 2,
                  min_share: float = 0.5, fit_steps: int = 150, fit_pixels: int = 400, seed: int = 0,
                  cell_process: ProcessParams | None = None, cell_sensors: SensorParams | None = None,
                  pixel_params: PixelLevelParams | None = None, pixels=None) -> MultiresResult:
    """Fuse fine sparse observations (P, T) with a coarse daily sensor (C, T).

    Parameters
    ----------
    y_fine, mask_fine, sd_fine : fine observations, validity and per-observation sd.
    y_coarse, mask_coarse : coarse observations and validity.
    cell : (P,) coarse cell of each fine pixel.
    n_harmonics : harmonics of the cell-level climatology (0: the cell mean).
    cell_process, cell_sensors, pixel_params : fixed parameters (else fitted by MLE).
    pixels : indices of the fine pixels to return (default all); the cell level always
        uses every pixel, the pixel-level parameters are fitted on a sample of these.
    """
    y_fine, sd_fine = np.asarray(y_fine, float), np.asarray(sd_fine, float)
    mask_fine = np.asarray(mask_fine, bool)
    P, T = y_fine.shape
    if y_coarse.shape[1] != T or cell.shape != (P,):
        raise DataValidationError(f"coarse series {y_coarse.shape} and cell map {cell.shape} do not match the "
                                  f"fine series {(P, T)}", variable="y_coarse",
                                  fix="put both sensors on the same daily grid; cell has one entry per fine pixel")
    yc, mc = cell_observations(y_fine, mask_fine, np.asarray(y_coarse, float), mask_coarse, cell, min_share)
    if not mc[..., 0].any():
        raise DataValidationError("no coarse cell has a fine date with enough clear pixels", variable="mask_fine",
                                  fix=f"lower min_share (now {min_share})")
    clim = "harmonic" if n_harmonics > 0 else "mean"
    res_c = fuse_arrays(yc, mc, "kalman", kind="damped", climatology=clim, n_harmonics=n_harmonics,
                        fit_steps=fit_steps, process=cell_process, sensors=cell_sensors, min_obs=1)
    cm, cs = np.asarray(res_c.mean), np.asarray(res_c.sd)
    fit = res_c.fit
    cll = jax.vmap(lambda yy, mm, cc: log_likelihood(build_state_space(fit.process, fit.sensors, cc), yy, mm))(
        jnp.asarray(yc), jnp.asarray(mc), jnp.asarray(res_c.climatology))
    Xm, Xv = cm[cell], cs[cell] ** 2
    r = np.where(mask_fine, y_fine - Xm, 0.0)
    var_obs = np.where(mask_fine, sd_fine**2, 1.0)
    if pixels is not None:
        pixels = np.asarray(pixels)
        r, mask_fine, var_obs, Xm, Xv = (a[pixels] for a in (r, mask_fine, var_obs, Xm, Xv))
    rclim = harmonic_climatology(r[..., None], mask_fine[..., None], n_harmonics=0)
    if pixel_params is None:
        rng = np.random.default_rng(seed)
        cand = np.flatnonzero(mask_fine.sum(1) >= 4)
        if len(cand) == 0:
            raise DataValidationError("no fine pixel has 4 or more clear observations", variable="mask_fine",
                                      fix="use a longer period")
        pick = np.sort(rng.choice(cand, min(fit_pixels, len(cand)), replace=False))
        pixel_params, _ = fit_pixel_level(r[pick], mask_fine[pick], rclim[pick], var_obs[pick], Xv[pick], fit_steps)
    dm, dsd, pll = smooth_pixel_level(pixel_params, r, mask_fine, rclim, var_obs, Xv)
    mean = Xm + dm
    sd = np.sqrt(Xv + dsd**2)
    ll = {"cell": float(jnp.sum(cll)), "pixel": float(np.sum(pll))}
    ll["total"] = ll["cell"] + ll["pixel"]
    return MultiresResult(mean, sd, cm, cs, fit, pixel_params, ll)


def fine_predictive_sd(result: MultiresResult, sd_fine):
    """Predictive sd of a fine observation with own sd ``sd_fine`` (P, T):
    ``sqrt(sd^2 + sd_d^2 + kappa sd_fine^2)``."""
    p = result.pixel_params
    return np.sqrt(result.sd**2 + float(p.repr_sd) ** 2 + float(p.obs_scale) * np.asarray(sd_fine) ** 2)
