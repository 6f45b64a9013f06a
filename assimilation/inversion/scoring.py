"""Scores of emission estimates against synthetic truth.

* point-source MAPE: mean over sources of ``|Q_hat - Q| / Q`` (sources a method could not
  estimate, NaN, are left out and counted in ``available``);
* domain-total bias: ``sum(T_hat) / sum(T) - 1`` over scenes (and the mean relative error);
* coverage: share of truths inside the central 90 % interval ``Q_hat +- 1.645 sd``
  (Gaussian), the calibration check of Gneiting & Raftery (2007, JASA 102:359).
"""
from __future__ import annotations

import numpy as np

__all__ = ["Z90", "score"]

Z90 = 1.6448536269514722
"""Half-width of the central 90 % Gaussian interval in sd."""


def score(point, point_sd, truth, total=None, total_sd=None, total_truth=None) -> dict:
    """Scores of stacked estimates: point (B, S), truth (B, S); totals (B,)."""
    point, point_sd, truth = (np.asarray(a, float) for a in (point, point_sd, truth))
    ok = np.isfinite(point) & np.isfinite(point_sd)
    rel = (point - truth) / truth
    out = {"point_mape": float(np.mean(np.abs(rel[ok]))) if ok.any() else np.nan,
           "point_median_ape": float(np.median(np.abs(rel[ok]))) if ok.any() else np.nan,
           "point_bias": float(np.mean(rel[ok])) if ok.any() else np.nan,
           "point_coverage90": float(np.mean(np.abs(point - truth)[ok] <= Z90 * point_sd[ok])) if ok.any() else np.nan,
           "available": float(ok.mean()), "n_sources": int(ok.sum())}
    if total is not None:
        total, total_sd, total_truth = (np.asarray(a, float) for a in (total, total_sd, total_truth))
        tk = np.isfinite(total)
        out.update(
            total_bias=float(total[tk].sum() / total_truth[tk].sum() - 1) if tk.any() else np.nan,
            total_mape=float(np.mean(np.abs(total[tk] / total_truth[tk] - 1))) if tk.any() else np.nan,
            total_coverage90=float(np.mean(np.abs(total - total_truth)[tk] <= Z90 * total_sd[tk])) if tk.any() else np.nan)
    else:
        out.update(total_bias=np.nan, total_mape=np.nan, total_coverage90=np.nan)
    return out
