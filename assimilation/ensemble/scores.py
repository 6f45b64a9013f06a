"""Scores of a filter run against a known truth (twin experiments).

For a series of analysis means ``m_t``, spreads ``s_t`` (standard deviations) and the truth
``x_t`` (t = 1..T, NaN = not scored):

* ``rmse``     = sqrt(mean_t (m_t - x_t)^2)                       (DAPPER ``rmse.a``)
* ``spread``   = sqrt(mean_t s_t^2)                                (DAPPER ``spread.a``; the
  RMS spread, to be compared with the RMSE: a reliable filter has spread ~ RMSE)
* ``coverage`` = fraction of t with ``|m_t - x_t| <= z s_t``, ``z`` the two-sided Gaussian
  quantile of ``level`` (1.645 for 90 %): the empirical coverage of the nominal interval
  ``m +/- z s`` (Gneiting, Balabdaoui & Raftery 2007, J. R. Stat. Soc. B 69, 243, on
  calibration of probabilistic forecasts).

The same definitions serve ensemble filters (ensemble mean and sd, ddof = 1) and particle
filters (weighted mean and sd, :class:`~assimilation.ensemble.particle.PFResult`), so that
the two are compared on one footing. NumPy in, floats out (an edge function, not traced).
"""
from __future__ import annotations

from statistics import NormalDist

import numpy as np

__all__ = ["gaussian_quantile", "twin_scores"]


def gaussian_quantile(level: float) -> float:
    """Half-width in sd of the central ``level`` interval of a Gaussian (0.9 -> 1.645)."""
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be in (0, 1), got {level}")
    return NormalDist().inv_cdf(0.5 + 0.5 * level)


def twin_scores(mean, sd, truth, level: float = 0.9) -> dict:
    """RMSE, RMS spread and interval coverage (module docstring) of series ``mean``,
    ``sd`` and ``truth`` (same shape; scored over the entries where all three are finite).
    Returns ``{"rmse", "spread", "coverage", "n"}``."""
    m, s, x = (np.asarray(a, float) for a in (mean, sd, truth))
    if not m.shape == s.shape == x.shape:
        raise ValueError(f"twin_scores: mean {m.shape}, sd {s.shape} and truth {x.shape} "
                         "must have the same shape.")
    ok = np.isfinite(m) & np.isfinite(s) & np.isfinite(x)
    if not ok.any():
        raise ValueError("twin_scores: no entry where mean, sd and truth are all finite.")
    err = m[ok] - x[ok]
    z = gaussian_quantile(level)
    return {"rmse": float(np.sqrt(np.mean(err ** 2))),
            "spread": float(np.sqrt(np.mean(s[ok] ** 2))),
            "coverage": float(np.mean(np.abs(err) <= z * s[ok])), "n": int(ok.sum())}
