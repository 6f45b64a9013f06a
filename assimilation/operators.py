"""Observation operators of calibration and ensemble filters: period means at the observed
steps, soil water at a sensor depth, and cycle means kept by filter forecasts.

Period mean over the observed steps (daily means of the measured half-hours): with model
values x_t, weights w_t (the number of measured records in step t) and the period p(t)
of each step,

    H(x)_p = sum_{t in p} w_t x_t / max(sum_{t in p} w_t, 1)

so the model is averaged over exactly the records the observed mean is made of (no bias
from the diurnal cycle of the gaps; Richardson et al. 2006, Agric. For. Meteorol. 136, 1,
for the random error of such means: independent records, var(mean) = sum sigma_i^2 / n^2).

An ensemble filter cycle covers a window of model steps (one day of half-hours); the
forecast keeps the window means of the outputs the observations see (:class:`CycleMeans`,
the ``record`` of :func:`assimilation.ensemble.interface_forecast`); a window without a
measured step falls back to the plain window mean (the observation is masked then).

Soil water at a depth: linear interpolation in depth between the centres of the two model
layers around the sensor (extrapolated from the two top or bottom layers outside them).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from flax import struct

from process_models.interface import output

__all__ = ["PeriodMean", "period_mean", "period_mean_observations", "soil_water_at_depth",
           "window_mean", "window_mean_observations", "CycleMeans"]


def period_mean(values, period_index, weights, n_periods: int):
    """Weighted mean of ``values`` (T,) over the steps of each period (module docstring).

    ``period_index`` (T,) int in ``[0, n_periods)``, ``weights`` (T,) >= 0; periods with
    no weight give 0. Returns (n_periods,). Pure, differentiable in ``values``."""
    num = jax.ops.segment_sum(values * weights, period_index, n_periods)
    den = jax.ops.segment_sum(weights, period_index, n_periods)
    return num / jnp.maximum(den, 1.0)


@struct.dataclass
class PeriodMean:
    """Observation operator ``outputs -> {variable: period means (n_periods,)}`` for the
    variables of ``weights`` (an operator argument of
    :func:`assimilation.calibration.model_fn_from`)."""

    period_index: jax.Array
    """Period of each model step. Shape (T,), int."""
    weights: dict
    """Per variable, the weight of each step (number of measured records). Shape (T,)."""
    n_periods: int = struct.field(pytree_node=False, default=0)

    def __call__(self, outputs) -> dict:
        return {v: period_mean(output(outputs, v), self.period_index, w, self.n_periods)
                for v, w in self.weights.items()}


def period_mean_observations(times, means: Mapping[str, np.ndarray], counts: Mapping[str, np.ndarray],
                             variances: Mapping[str, np.ndarray] | None = None, *,
                             freq: str = "D", min_count: int = 1, source: str = "<memory>"):
    """Period means of observations given per model step, and the operator that matches.

    Parameters
    ----------
    times : (T,) datetime64 of the model steps.
    means : per variable, the mean of the measured records in each step (NaN: none).
    counts : per variable, the number of measured records in each step (weights).
    variances : per variable, the sum of the random-error variances of the measured
        records in each step (squared unit); variables without one get no random error
        (their likelihood needs a discrepancy term).
    freq : period (pandas offset alias, ``"D"``: calendar days of ``times``).
    min_count : periods with fewer measured records are masked.

    Returns
    -------
    ``(operator, streams, periods)``: :class:`PeriodMean`, ``{variable: FluxObservations}``
    of the period means (sd of the mean sqrt(sum var) / n where a variance is given; a
    variable with no usable period has no stream) and the ``pandas.DatetimeIndex`` of the
    periods.
    """
    from assimilation.calibration.error_models import FluxObservations

    step = pd.DatetimeIndex(times).floor(freq)
    periods = pd.DatetimeIndex(step.unique())
    idx = periods.get_indexer(step)
    n_p = len(periods)
    weights, streams = {}, {}
    for v, y in means.items():
        n = np.nan_to_num(np.asarray(counts[v], float))
        W = np.bincount(idx, n, n_p)
        Y = np.bincount(idx, np.nan_to_num(np.asarray(y, float)) * n, n_p)
        mean = np.where(W > 0, Y / np.maximum(W, 1), np.nan)
        sigma = None
        if variances is not None and v in variances:
            V = np.bincount(idx, np.nan_to_num(np.asarray(variances[v], float)), n_p)
            sigma = np.sqrt(V / np.maximum(W, 1) ** 2)
        weights[v] = jnp.asarray(n)
        if not np.any(W >= min_count):
            continue                  # no usable period: the variable has no stream
        streams[v] = FluxObservations.from_arrays(mean, mask=W >= min_count, sigma=sigma,
                                                  variable=v, source=source)
    return PeriodMean(jnp.asarray(idx), weights, n_p), streams, periods


def soil_water_at_depth(soil_water_layers, layer_thickness: Sequence[float], depth: float):
    """Volumetric soil water (m3 m-3) at ``depth`` (m) from per-layer values.

    ``soil_water_layers`` (..., L) layer values, ``layer_thickness`` (L,) in m (static);
    linear interpolation between the layer centres around ``depth`` (module docstring)."""
    dz = np.asarray(layer_thickness, float)
    centre = np.concatenate([[0.0], np.cumsum(dz)[:-1]]) + 0.5 * dz
    i = int(np.clip(np.searchsorted(centre, depth), 1, len(centre) - 1))
    w = (depth - centre[i - 1]) / (centre[i] - centre[i - 1])
    x = jnp.asarray(soil_water_layers)
    return (1 - w) * x[..., i - 1] + w * x[..., i]


def window_mean(values, weights=None):
    """Mean of ``values`` (S, ...) over a window of S steps, weighted by ``weights`` (S,)
    (the measured records of each step); the plain mean when ``weights`` is None or sums
    to zero (module docstring)."""
    x = jnp.asarray(values)
    if weights is None:
        return jnp.mean(x, 0)
    w = jnp.asarray(weights, x.dtype).reshape((-1,) + (1,) * (x.ndim - 1))
    sw = jnp.sum(w, 0)
    return jnp.where(sw > 0, jnp.sum(x * w, 0) / jnp.maximum(sw, 1.0), jnp.mean(x, 0))


def window_mean_observations(values, steps_per_window: int, *, sigma=None,
                             min_count: int = 1):
    """Window means of the measured values of a regular series (daily means of half-hours).

    Parameters
    ----------
    values : (T,) measured values, NaN where missing; trailing steps that do not fill a
        window are dropped.
    steps_per_window : S, model steps per window (48 half-hours per day).
    sigma : optional (T,) random-error sd of each value; independent errors give the sd
        of a window mean sqrt(sum sigma_i^2) / n (module docstring).
    min_count : windows with fewer measured values are NaN.

    Returns
    -------
    ``(means, sd, weights)``: (C,) means (NaN below ``min_count``), (C,) their sd (zeros
    without ``sigma``) and the (C, S) 0/1 measured mask, the ``weights`` of the operator
    (:func:`window_mean`, :class:`CycleMeans`).
    """
    v = np.asarray(values, float)
    n_win = v.size // steps_per_window
    v = v[:n_win * steps_per_window].reshape(n_win, steps_per_window)
    m = np.isfinite(v)
    n = m.sum(1)
    means = np.where(n >= max(min_count, 1),
                     np.sum(np.where(m, v, 0.0), 1) / np.maximum(n, 1), np.nan)
    sd = np.zeros(n_win)
    if sigma is not None:
        s = np.asarray(sigma, float)[:n_win * steps_per_window].reshape(n_win, steps_per_window)
        sd = np.sqrt(np.sum(np.where(m, s ** 2, 0.0), 1)) / np.maximum(n, 1)
    return means, sd, m.astype(float)


@dataclass(frozen=True)
class CycleMeans:
    """Record of a filter forecast: window means of model outputs, one number per column.

    ``columns``: ``(label, output name, weight column or None)``; a weighted column is the
    mean over the measured steps of the cycle (column ``j`` of the cycle's ``(S, K)``
    weights), None the plain window mean. An output with a layer axis (soil water per
    layer) is first interpolated to ``depth`` (m) with ``layer_thickness`` (m)
    (:func:`soil_water_at_depth`). Hashable (a static part of a jitted filter).

    ``record(outputs, weights) -> (len(columns),)``, ``outputs`` time-major over the S
    steps of the cycle; ``record.index(label)`` is the position of a column.
    """

    columns: tuple
    layer_thickness: tuple = ()
    depth: float = 0.0

    @property
    def labels(self) -> tuple:
        return tuple(c[0] for c in self.columns)

    @property
    def size(self) -> int:
        return len(self.columns)

    def index(self, label: str) -> int:
        return self.labels.index(label)

    def operator(self, *labels: str):
        """Observation operator ``h(member) -> (len(labels),)``: the columns ``labels`` of
        ``member.record`` (an :class:`~assimilation.ensemble.Augmented` member)."""
        idx = np.array([self.index(lab) for lab in labels])
        return lambda member: member.record[idx]

    def __call__(self, outputs, weights=None):
        vals = []
        for _, name, col in self.columns:
            x = output(outputs, name)
            if jnp.ndim(x) == 2:                       # (S, layers): value at the depth
                x = soil_water_at_depth(x, self.layer_thickness, self.depth)
            w = None if col is None or weights is None else weights[:, col]
            vals.append(window_mean(x, w))
        return jnp.stack(vals)
