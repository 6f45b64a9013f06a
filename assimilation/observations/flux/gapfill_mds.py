"""Marginal distribution sampling (MDS) gap filling (Reichstein et al. 2005).

A missing flux is replaced by the mean of *measured* fluxes recorded under similar
meteorological conditions close in time. The cascade and its settings follow REddyProc
(``R/EddyGapfilling.R``, Wutzler et al. 2018), which restates the PV-Wave code of
Reichstein et al. (2005):

====  ======================================================  ============================
step  method                                                    quality flag
====  ======================================================  ============================
1     LUT Rg + VPD + Tair, +-7 days                             1
2     LUT Rg + VPD + Tair, +-14 days                            2 (full window 28 d)
3     LUT Rg only, +-7 days                                     1
4     MDC (same time of day +-1 h), same day                   1
5     MDC +-1, +-2 days                                         2
6     LUT Rg + VPD + Tair, +-21 ... +-70 days (7-day steps)     2 (full window <= 56 d), else 3
7     LUT Rg only, +-14 ... +-70 days                           2 (full window <= 28 d), else 3
8     MDC +-7 ... +-210 days                                    3
====  ======================================================  ============================

Similarity: ``|x_j - x_gap| < tol`` (strict) with tolerances Rg 50 W m-2 (reduced to
``max(min(50, Rg_gap), 20)``), VPD 5 hPa, Tair 2.5 degC. A look-up needs at least two
matching measured records; the filled value is their mean, ``fsd`` their standard
deviation (REddyProc's random-error proxy) and ``fnum`` their number. Quality flags:
0 measured, 1-3 as in the table (LUT: full window <= 14 d -> 1; three drivers and full
window <= 56 d, or Rg only and <= 28 d -> 2; else 3. MDC: full window 2d+1 <= 1 -> 1,
<= 5 -> 2, else 3).

With ``fill_all=True`` (REddyProc's default) every record, measured or not, gets an
MDS estimate, so ``fsd`` exists for measured records too; ``filled`` keeps the
measurement where there is one.

Implementation: each cascade step processes *all* still-unfilled records at once
(:func:`._window.window_stats`, a jitted gather over ``(chunk, window)`` blocks); the
steps themselves are a short Python loop over the ~50 window sizes.

References
----------
Reichstein, M. et al. (2005) On the separation of net ecosystem exchange into
assimilation and ecosystem respiration: review and improved algorithm. Global Change
Biology 11, 1424-1439. doi:10.1111/j.1365-2486.2005.001002.x
Wutzler, T. et al. (2018) Basic and extensible post-processing of eddy covariance flux
data with REddyProc. Biogeosciences 15, 5015-5030.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from process_models.units import DataValidationError

from ._window import day_offsets, diurnal_offsets, half_width_bucket, window_stats

__all__ = ["MDSSettings", "MDSResult", "mds_cascade", "mds_gapfill"]


@dataclass(frozen=True)
class MDSSettings:
    """Tolerances and minimum counts of the MDS cascade (REddyProc defaults)."""

    rg_tolerance: float = 50.0
    """Rg tolerance, W m-2; per gap reduced to max(min(tol, Rg_gap), rg_tolerance_min)."""
    rg_tolerance_min: float = 20.0
    """Lower bound of the reduced Rg tolerance, W m-2."""
    tair_tolerance: float = 2.5
    """Air temperature tolerance, degC."""
    vpd_tolerance: float = 5.0
    """VPD tolerance, hPa."""
    min_count: int = 2
    """Minimum number of similar measured records (REddyProc: more than one)."""


class MDSResult(NamedTuple):
    """Output of :func:`mds_gapfill` (NumPy arrays of shape (N,))."""

    filled: np.ndarray
    """Measured value where valid, else the MDS estimate (NaN if unfillable). Units of the input."""
    estimate: np.ndarray
    """MDS estimate for every record (``VAR_fall``). Units of the input."""
    sd: np.ndarray
    """SD of the similar records (``VAR_fsd``). Units of the input."""
    count: np.ndarray
    """Number of similar records (``VAR_fnum``)."""
    method: np.ndarray
    """1 LUT Rg+VPD+Tair, 2 LUT Rg only, 3 MDC, 0 not filled."""
    window_days: np.ndarray
    """Full window length in days as REddyProc reports it (``VAR_fwin``)."""
    qc: np.ndarray
    """0 measured, 1-3 gap-fill quality, NaN where no fill was possible."""
    estimate_qc: np.ndarray
    """Quality class of ``estimate`` (1-3) for every record."""


def mds_cascade(steps_per_day: int = 48):
    """The REddyProc cascade as a list of ``(kind, window_days)`` with kind in
    ``"lut3"``, ``"lut1"``, ``"mdc"``."""
    return ([("lut3", 7), ("lut3", 14), ("lut1", 7), ("mdc", 0), ("mdc", 1), ("mdc", 2)]
            + [("lut3", d) for d in range(21, 71, 7)]
            + [("lut1", d) for d in range(14, 71, 7)]
            + [("mdc", d) for d in range(7, 211, 7)])


def _quality(kind: str, window_days: int) -> tuple[int, float]:
    if kind == "mdc":
        fwin = 2 * window_days + 1
        return (1 if fwin <= 1 else 2 if fwin <= 5 else 3), float(fwin)
    fwin = 2 * window_days
    if fwin <= 14:
        return 1, float(fwin)
    limit = 56 if kind == "lut3" else 28
    return (2 if fwin <= limit else 3), float(fwin)


def mds_gapfill(flux, rg, tair, vpd, *, valid=None, steps_per_day: int = 48,
                settings: MDSSettings = MDSSettings(), fill_all: bool = True,
                name: str = "nee") -> MDSResult:
    """Gap-fill ``flux`` with the MDS cascade of Reichstein et al. (2005).

    Parameters
    ----------
    flux : (N,) array, the flux to fill (e.g. NEE, umol m-2 s-1); NaN = missing.
    rg : (N,) global radiation, W m-2.
    tair : (N,) air temperature, degC.
    vpd : (N,) vapour pressure deficit, hPa.
    valid : (N,) bool, measured records of good quality (default: finite ``flux``).
    steps_per_day : records per day (48 half-hourly, 24 hourly).
    settings : tolerances (:class:`MDSSettings`).
    fill_all : also estimate measured records (gives ``sd`` everywhere).

    Returns
    -------
    MDSResult

    Raises
    ------
    DataValidationError : no measured record at all, or arrays of different length.
    """
    flux = np.asarray(flux, dtype=float)
    n = flux.size
    drivers = np.stack([np.asarray(x, dtype=float) for x in (rg, vpd, tair)])
    if drivers.shape != (3, n):
        raise DataValidationError(
            f"flux has {n} records but the drivers (Rg, VPD, Tair) have shape {drivers.shape}.",
            variable=name, fix="pass drivers on the same time axis as the flux.")
    valid = np.isfinite(flux) if valid is None else (np.asarray(valid, bool) & np.isfinite(flux))
    if not valid.any():
        raise DataValidationError(
            "no measured (valid) record to gap-fill from.", variable=name,
            fix="check the quality flags / u* filter; at least some measured records are needed.")
    met_ok = np.isfinite(drivers).any(axis=1)
    has3 = bool(met_ok.all())
    has_rg = bool(met_ok[0])

    estimate = np.full(n, np.nan)
    sd = np.full(n, np.nan)
    count = np.zeros(n)
    method = np.zeros(n, dtype=np.int8)
    fwin = np.full(n, np.nan)
    qual = np.full(n, np.nan)
    todo = np.ones(n, bool) if fill_all else ~valid
    rg_tol = np.clip(np.fmin(settings.rg_tolerance, np.nan_to_num(drivers[0], nan=np.inf)),
                     settings.rg_tolerance_min, None)
    base_tol = np.stack([rg_tol, np.full(n, settings.vpd_tolerance),
                         np.full(n, settings.tair_tolerance)], axis=1)
    hour_records = max(1, steps_per_day // 24)
    for kind, days in mds_cascade(steps_per_day):
        if kind == "lut3" and not has3:
            continue
        if kind == "lut1" and not has_rg:
            continue
        targets = np.flatnonzero(todo)
        if targets.size == 0:
            break
        if kind == "mdc":
            bucket = next(b for b in (2, 14, 56, 210, days) if days <= b)
            off, om, h = diurnal_offsets(bucket, days, steps_per_day, hour_records)
            use = np.array([False, False, False])
        else:
            h = half_width_bucket(days * steps_per_day, steps_per_day)
            om = day_offsets(h, days, steps_per_day)
            off = None
            use = np.array([True, kind == "lut3", kind == "lut3"])
        c, m, s = window_stats(flux, valid, drivers, targets, base_tol[targets], use, om, h,
                               offsets=off)
        ok = c >= settings.min_count
        hit = targets[ok]
        q, w = _quality(kind, days)
        estimate[hit] = m[ok]
        sd[hit] = s[ok]
        count[hit] = c[ok]
        method[hit] = {"lut3": 1, "lut1": 2, "mdc": 3}[kind]
        fwin[hit] = w
        qual[hit] = q
        todo[hit] = False
    filled = np.where(valid, flux, estimate)
    qc = np.where(valid, 0.0, qual)
    return MDSResult(filled=filled, estimate=estimate, sd=sd, count=count, method=method,
                     window_days=fwin, qc=qc, estimate_qc=qual)
