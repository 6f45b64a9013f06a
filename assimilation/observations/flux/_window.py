"""Vectorised "similar records in a time window" statistics (private).

One kernel serves the MDS look-up table, the mean diurnal course and the
similar-conditions random error: for a chunk of target records ``idx`` it gathers the
records at static offsets ``-H..H`` (a ``(C, 2H+1)`` block), keeps those that are valid,
lie at an allowed offset (``offset_mask``: window length, time of day) and whose drivers
are within a tolerance of the target's, and returns count, mean and standard deviation.
Targets are independent (only *measured* records are ever used as neighbours, as in
REddyProc), so all gaps of one cascade step are processed at once, chunk by chunk.
"""
from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["window_stats", "half_width_bucket"]

_BUCKET_DAYS = (2, 7, 14, 28, 70, 212)
_TARGET_ELEMENTS = 2_000_000


def half_width_bucket(half_width: int, steps_per_day: int) -> int:
    """Smallest static half width (records) from a few buckets that covers ``half_width``
    (limits the number of compiled kernels)."""
    for d in _BUCKET_DAYS:
        h = d * steps_per_day + 2
        if half_width <= h:
            return h
    return int(half_width)


@partial(jax.jit, static_argnames=("half_width",))
def _stats_chunk(values_p, valid_p, drivers_p, idx, tol, use, offsets, offset_mask, *,
                 half_width):
    """Count, mean and SD (ddof 1) of the valid neighbours of each target in ``idx``.

    ``values_p``, ``valid_p`` (N + 2H,) and ``drivers_p`` (D, N + 2H) are padded by H on
    both sides; ``idx`` (C,) holds original indices (-1 = padding); ``tol`` (C, D) the
    per-target tolerances; ``use`` (D,) which drivers are conditions; ``offset_mask``
    (K,) the allowed ``offsets`` (K,) (|offset| <= H)."""
    pos = jnp.clip(idx, 0, None)[:, None] + half_width + offsets[None, :]
    vals = values_p[pos]
    ok = valid_p[pos] & offset_mask[None, :] & (idx[:, None] >= 0)
    centre = drivers_p[:, jnp.clip(idx, 0, None) + half_width]            # (D, C)
    for d in range(drivers_p.shape[0]):
        x = drivers_p[d][pos]
        close = jnp.abs(x - centre[d][:, None]) < tol[:, d][:, None]
        ok = ok & (close | ~use[d])
    w = ok.astype(values_p.dtype)
    v = jnp.where(ok, vals, 0.0)
    n = w.sum(axis=1)
    mean = v.sum(axis=1) / jnp.maximum(n, 1.0)
    ss = (jnp.where(ok, vals - mean[:, None], 0.0) ** 2).sum(axis=1)
    sd = jnp.sqrt(ss / jnp.maximum(n - 1.0, 1.0))
    return n, mean, sd


def window_stats(values, valid, drivers, targets, tol, use, offset_mask, half_width,
                 offsets=None):
    """Neighbour statistics for all ``targets`` (NumPy int array), processed in chunks of
    a fixed size so one compiled kernel serves every step of a cascade.

    Parameters
    ----------
    values : (N,) array, the flux (NaN where missing).
    valid : (N,) bool, records usable as neighbours (measured, good quality).
    drivers : (D, N) array of condition variables (Rg, Tair, VPD, ...).
    targets : (G,) int array of records to fill.
    tol : (G, D) array of tolerances per target.
    use : (D,) bool, which drivers are conditions in this step.
    offset_mask : (K,) bool, allowed offsets from the target.
    half_width : int H (static).
    offsets : (K,) int offsets (default ``-H..H``); a sparse list (e.g. the same time of
        day on other days) saves work for the mean diurnal course.

    Returns
    -------
    (n, mean, sd) : NumPy arrays of shape (G,).
    """
    targets = np.asarray(targets, dtype=np.int64)
    g = targets.size
    dtype = jnp.asarray(values).dtype
    if g == 0:
        z = np.zeros(0)
        return z, z, z
    h = int(half_width)
    pad = lambda a, fill: jnp.pad(jnp.asarray(a), [(0, 0)] * (jnp.ndim(a) - 1) + [(h, h)],
                                  constant_values=fill)
    values_p = pad(jnp.where(jnp.asarray(valid), jnp.asarray(values), 0.0).astype(dtype), 0.0)
    valid_p = pad(jnp.asarray(valid, dtype=bool), False)
    drivers_p = pad(jnp.asarray(drivers, dtype=dtype), jnp.nan)
    if offsets is None:
        offsets = np.arange(-h, h + 1)
    offsets = np.asarray(offsets, dtype=np.int64)
    k = offsets.size
    chunk = int(max(16, min(4096, 2 ** int(np.floor(np.log2(_TARGET_ELEMENTS / k))))))
    nchunk = -(-g // chunk)
    idx = np.full(nchunk * chunk, -1, dtype=np.int64)
    idx[:g] = targets
    tol_full = np.ones((nchunk * chunk, tol.shape[1]))
    tol_full[:g] = tol
    use_j = jnp.asarray(use, dtype=bool)
    om = jnp.asarray(offset_mask, dtype=bool)
    out_n, out_m, out_s = [], [], []
    for c in range(nchunk):  # loop over fixed-size chunks of gaps, not over records
        sl = slice(c * chunk, (c + 1) * chunk)
        n, m, s = _stats_chunk(values_p, valid_p, drivers_p, jnp.asarray(idx[sl]),
                               jnp.asarray(tol_full[sl], dtype=dtype), use_j,
                               jnp.asarray(offsets), om, half_width=h)
        out_n.append(n)
        out_m.append(m)
        out_s.append(s)
    n = np.asarray(jnp.concatenate(out_n))[:g]
    m = np.asarray(jnp.concatenate(out_m))[:g]
    s = np.asarray(jnp.concatenate(out_s))[:g]
    return n, m, s


def day_offsets(half_width: int, window_days: int, steps_per_day: int) -> np.ndarray:
    """Offset mask for a contiguous window of +-``window_days`` days (REddyProc LUT:
    ``gap +- window_days * steps_per_day`` records, inclusive)."""
    off = np.arange(-half_width, half_width + 1)
    return np.abs(off) <= window_days * steps_per_day


def diurnal_offsets(bucket_days: int, window_days: int, steps_per_day: int,
                    hour_records: int = 2):
    """Sparse offsets and mask for the mean diurnal course: the same time of day
    +-``hour_records`` records (+-1 h at half-hourly resolution) on the days within
    +-``window_days`` (REddyProc ``sFillMDC``); ``bucket_days`` >= window_days fixes the
    compiled shape. Returns ``(offsets, mask, half_width)``."""
    k = np.arange(-bucket_days, bucket_days + 1)
    m = np.arange(-hour_records, hour_records + 1)
    off = (k[:, None] * steps_per_day + m[None, :]).ravel()
    mask = np.repeat(np.abs(k) <= window_days, m.size)
    return off, mask, int(bucket_days * steps_per_day + hour_records)
