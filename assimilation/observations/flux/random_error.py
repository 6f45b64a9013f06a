"""Random error of half-hourly NEE: the observation error used by assimilation.

Two estimates, combined per record by :func:`nee_uncertainty`:

* **Similar conditions** (ONEFlux ``RANDUNC`` method 1; Hollinger & Richardson 2005,
  the MDS ``fsd`` of REddyProc): the SD of *measured* NEE within +-7 days and +-1 h of
  time of day under similar conditions (Rg +-50 W m-2, reduced to max(min(50, Rg), 20);
  Tair +-2.5 degC; VPD +-5 hPa), with at least 5 values.
* **Flux-magnitude model** (Richardson et al. 2006, 2008; Lasslop et al. 2008): the SD
  grows linearly with |F|, separately for release and uptake,
  ``sigma(F) = a + b_plus max(F, 0) + b_minus max(-F, 0)``, with Laplace-distributed
  errors (scale sigma / sqrt 2). :func:`fit_flux_magnitude_model` fits (a, b+, b-) by
  maximum likelihood (optax Adam on softplus-transformed parameters).
  :func:`paired_differences` gives training data from the 24-h paired-observation method
  (Hollinger & Richardson 2005): two measurements 24 h apart under similar conditions
  (Tair +-3 degC, Rg +-35 W m-2 ~ 75 umol m-2 s-1 PPFD, VPD +-5 hPa); epsilon = delta /
  sqrt 2, F = their mean. For Laplace errors E|delta| = 1.5 b, not sqrt 2 b, so sigmas
  fitted to delta / sqrt 2 are scaled by sqrt 2 / 1.5 (``paired=True``).

References
----------
Hollinger, D.Y. & Richardson, A.D. (2005) Tree Physiology 25, 873-885.
Richardson, A.D. et al. (2006) Agric. For. Meteorol. 136, 1-18.
Richardson, A.D. et al. (2008) Agric. For. Meteorol. 148, 38-50.
Lasslop, G. et al. (2008) Biogeosciences 5, 1311-1324.
"""
from __future__ import annotations

from functools import partial
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from process_models.units import DataValidationError

from ._window import diurnal_offsets, window_stats

__all__ = ["FluxMagnitudeModel", "flux_magnitude_sigma", "fit_flux_magnitude_model",
           "paired_differences", "similar_conditions_sd", "nee_uncertainty"]


class FluxMagnitudeModel(NamedTuple):
    """sigma(F) = a + b_plus F+ + b_minus F-  (umol m-2 s-1)."""

    a: float
    """SD at zero flux, umol m-2 s-1."""
    b_plus: float
    """Slope for release (F > 0), 1."""
    b_minus: float
    """Slope for uptake (F < 0, multiplies -F), 1."""


def flux_magnitude_sigma(flux, model: FluxMagnitudeModel):
    """sigma(F) of Richardson et al. (2006), umol m-2 s-1."""
    f = jnp.asarray(flux)
    return model.a + model.b_plus * jnp.clip(f, 0, None) + model.b_minus * jnp.clip(-f, 0, None)


@partial(jax.jit, static_argnames=("n_steps",))
def _fit(flux, resid, w, n_steps: int = 1500):
    def sigma(theta):
        a, bp, bm = jax.nn.softplus(theta)
        return a + bp * jnp.clip(flux, 0, None) + bm * jnp.clip(-flux, 0, None)

    def nll(theta):
        b = sigma(theta) / jnp.sqrt(2.0)
        return jnp.sum(w * (jnp.log(2 * b) + jnp.abs(resid) / b)) / jnp.sum(w)

    opt = optax.adam(0.05)
    theta0 = jnp.asarray([0.5, -1.0, -1.0], flux.dtype)

    def step(carry, _):
        th, st = carry
        g = jax.grad(nll)(th)
        up, st = opt.update(g, st, th)
        return (optax.apply_updates(th, up), st), None

    (th, _), _ = jax.lax.scan(step, (theta0, opt.init(theta0)), None, length=n_steps)
    return jax.nn.softplus(th)


def fit_flux_magnitude_model(flux, residual, *, paired: bool = False) -> FluxMagnitudeModel:
    """Maximum-likelihood (Laplace) fit of sigma(F) = a + b+ F+ + b- F-.

    Parameters
    ----------
    flux : (M,) flux magnitude F (umol m-2 s-1) at which each residual was taken.
    residual : (M,) random errors (e.g. delta / sqrt 2 of paired observations).
    paired : residuals are delta / sqrt 2 of Laplace pairs; rescale sigma by sqrt 2 / 1.5.

    Raises
    ------
    DataValidationError : fewer than 20 finite pairs, or all residuals zero (constant series).
    """
    f = np.asarray(flux, float)
    r = np.asarray(residual, float)
    ok = np.isfinite(f) & np.isfinite(r)
    if ok.sum() < 20:
        raise DataValidationError(
            f"only {int(ok.sum())} finite residuals; the flux-magnitude error model needs >= 20.",
            variable="nee", fix="provide a longer measured record.")
    if np.all(r[ok] == 0):
        raise DataValidationError(
            "all residuals are zero (a constant or duplicated series); no random error can be "
            "estimated.", variable="nee", fix="check the flux column for a stuck sensor.")
    a, bp, bm = np.asarray(_fit(jnp.asarray(f[ok]), jnp.asarray(r[ok]),
                                jnp.ones(int(ok.sum()))))
    if paired:
        s = np.sqrt(2.0) / 1.5
        a, bp, bm = a * s, bp * s, bm * s
    return FluxMagnitudeModel(float(a), float(bp), float(bm))


def paired_differences(nee, tair, rg, vpd, *, steps_per_day: int = 48, tair_tol: float = 3.0,
                       rg_tol: float = 35.0, vpd_tol: float = 5.0):
    """24-h paired observations (Hollinger & Richardson 2005).

    Returns ``(flux_mean, epsilon)``: the mean of each pair and delta / sqrt 2."""
    x = np.asarray(nee, float)
    lag = steps_per_day
    a, b = x[:-lag], x[lag:]
    cond = np.isfinite(a) & np.isfinite(b)
    for v, tol in ((tair, tair_tol), (rg, rg_tol), (vpd, vpd_tol)):
        v = np.asarray(v, float)
        cond &= np.abs(v[:-lag] - v[lag:]) < tol
    return 0.5 * (a[cond] + b[cond]), (a[cond] - b[cond]) / np.sqrt(2.0)


def similar_conditions_sd(nee, rg, tair, vpd, *, valid=None, steps_per_day: int = 48,
                          window_days: int = 7, min_count: int = 5):
    """ONEFlux RANDUNC method 1: SD of measured NEE within +-window_days and +-1 h of
    time of day under similar Rg/Tair/VPD. Returns ``(sd, count)``, NaN where fewer than
    ``min_count`` values."""
    x = np.asarray(nee, float)
    n = x.size
    valid = np.isfinite(x) if valid is None else np.asarray(valid, bool) & np.isfinite(x)
    drivers = np.stack([np.asarray(v, float) for v in (rg, vpd, tair)])
    hr = max(1, steps_per_day // 24)
    off, om, h = diurnal_offsets(window_days, window_days, steps_per_day, hr)
    rg_tol = np.clip(np.fmin(50.0, np.nan_to_num(drivers[0], nan=np.inf)), 20.0, None)
    tol = np.stack([rg_tol, np.full(n, 5.0), np.full(n, 2.5)], axis=1)
    c, _, s = window_stats(x, valid, drivers, np.arange(n), tol, np.ones(3, bool), om, h,
                           offsets=off)
    return np.where(c >= min_count, s, np.nan), c


def nee_uncertainty(nee_filled, measured, sd_similar, model: FluxMagnitudeModel):
    """Per-record observation error (umol m-2 s-1) and the method used:
    1 = similar-conditions SD (measured record with >= 5 similar values),
    2 = flux-magnitude model at the (filled) flux."""
    model_sd = np.asarray(flux_magnitude_sigma(np.asarray(nee_filled, float), model))
    use1 = np.asarray(measured, bool) & np.isfinite(sd_similar)
    return np.where(use1, sd_similar, model_sd), np.where(use1, 1, 2).astype(np.int8)
