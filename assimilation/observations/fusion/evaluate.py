"""Evaluation by withheld observations: hide a fraction of the valid observations (at
random, or in long blocks that mimic cloudy spells), fill from the rest, and score the
hidden ones: RMSE and the coverage of the central 90 % predictive interval
(``|y - m| <= 1.645 s`` with ``s`` the predictive sd of an observation, i.e. including
the sensor noise). A well-calibrated method covers about 90 %.
"""
from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
import pandas as pd

from .methods import METHODS, FusionResult, fuse_arrays

__all__ = ["withhold", "score", "evaluate_methods", "withheld_evaluation", "WithheldEvaluation",
           "fitted_parameter_table", "Z90"]

Z90 = 1.6448536269514722
"""Standard-normal 95 % quantile: the 90 % central interval is mean +- Z90 sd."""


def withhold(mask, fraction: float = 0.25, mode: str = "random", block_days=(30, 60), seed: int = 0):
    """Split ``mask`` (P, T, S) into (train, test) masks.

    ``mode="random"``: each valid observation is withheld with probability ``fraction``.
    ``mode="block"``: per pixel, blocks of ``block_days`` (uniform length in the range) at
    random starts are withheld for all sensors until about ``fraction`` of the days are
    covered (vectorised: a fixed number of blocks per pixel).
    """
    mask = np.asarray(mask, bool)
    rng = np.random.default_rng(seed)
    P, T, S = mask.shape
    if mode == "random":
        test = mask & (rng.random(mask.shape) < fraction)
    elif mode == "block":
        lo, hi = block_days
        mean_len = 0.5 * (lo + hi)
        # blocks overlap at random; choose the count so that the expected covered share is `fraction`
        k = max(1, int(np.ceil(np.log1p(-fraction) / np.log1p(-mean_len / T))))
        starts = rng.integers(-hi // 2, T, size=(P, k))
        lens = rng.integers(lo, hi + 1, size=(P, k))
        diff = np.zeros((P, T + 1), int)
        rows = np.repeat(np.arange(P), k)
        s0 = np.clip(starts, 0, T).ravel()
        s1 = np.clip(starts + lens, 0, T).ravel()
        np.add.at(diff, (rows, s0), 1)
        np.add.at(diff, (rows, s1), -1)
        covered = np.cumsum(diff, axis=1)[:, :T] > 0
        test = mask & covered[:, :, None]
    else:
        raise ValueError("mode must be 'random' or 'block'")
    return mask & ~test, test


def score(y, test, obs_mean, obs_sd) -> dict:
    """RMSE, bias, 90 % coverage and mean 90 % interval width over the ``test`` entries."""
    y, test = np.asarray(y, float), np.asarray(test, bool)
    ok = test & np.isfinite(obs_mean)
    r = (obs_mean - y)[ok]
    out = {"n": int(ok.sum()), "rmse": float(np.sqrt(np.mean(r**2))) if r.size else np.nan,
           "bias": float(np.mean(r)) if r.size else np.nan, "mae": float(np.mean(np.abs(r))) if r.size else np.nan}
    s = np.asarray(obs_sd)[ok]
    if np.isfinite(s).all() and s.size:
        out["coverage90"] = float(np.mean(np.abs(r) <= Z90 * s))
        out["width90"] = float(np.mean(2 * Z90 * s))
    else:
        out["coverage90"] = np.nan
        out["width90"] = np.nan
    return out


class WithheldEvaluation(NamedTuple):
    """Result of :func:`withheld_evaluation`."""

    table: pd.DataFrame
    """One row per (mode, method, sensor or 'all'): n, rmse, bias, mae, coverage90,
    width90 (index units; coverage 1), withheld_share (1), seconds (wall time of the fill)."""
    fits: dict
    """``{(mode, method): FitResult}`` of the methods that fit parameters (Kalman)."""
    results: dict
    """``{(mode, method): (FusionResult, train mask, test mask)}`` for figures."""


def withheld_evaluation(y, mask, methods=METHODS, *, fraction: float = 0.25,
                        modes=("random", "block"), block_days=(30, 60), seed: int = 0,
                        method_options: dict | None = None, sensor_names=None,
                        progress=None) -> WithheldEvaluation:
    """Withhold observations (:func:`withhold`), fill with each method
    (:func:`.methods.fuse_arrays`) and score the withheld ones (:func:`score`).

    Parameters
    ----------
    y, mask : (P, T, S) observations (index units) and validity; entries with NaN ``y``
        are treated as invalid.
    methods : method labels; ``method_options[label]`` holds keyword arguments for
        ``fuse_arrays`` and may name the base method (``{"method": "kalman", ...}``), so
        one base method can appear under two labels.
    sensor_names : names of the S sensors (per-sensor rows are added when S > 1).
    progress : optional object with ``update()`` (a tqdm bar), called once per fill.
    """
    y = np.asarray(y, float)
    mask = np.asarray(mask, bool) & np.isfinite(y)
    S = y.shape[-1]
    names = list(sensor_names or [f"sensor{s}" for s in range(S)])
    method_options = method_options or {}
    rows, fits, results = [], {}, {}
    for mode in modes:
        train, test = withhold(mask, fraction, mode, block_days, seed)
        for m in methods:
            opts = dict(method_options.get(m, {}))
            base = opts.pop("method", m)
            t0 = time.perf_counter()
            res: FusionResult = fuse_arrays(y, train, base, **opts)
            common = {"mode": mode, "method": m, "seconds": time.perf_counter() - t0,
                      "withheld_share": float(test.sum() / max(mask.sum(), 1))}
            rows.append({**common, "sensor": "all", **score(y, test, res.obs_mean, res.obs_sd)})
            if S > 1:
                for s in range(S):
                    rows.append({**common, "sensor": names[s],
                                 **score(y[..., s], test[..., s], res.obs_mean[..., s], res.obs_sd[..., s])})
            if res.fit is not None:
                fits[(mode, m)] = res.fit
            results[(mode, m)] = (res, train, test)
            if progress is not None:
                progress.update()
    return WithheldEvaluation(pd.DataFrame(rows), fits, results)


def evaluate_methods(y, mask, methods=METHODS, **kwargs) -> pd.DataFrame:
    """The score table of :func:`withheld_evaluation` (same arguments)."""
    return withheld_evaluation(y, mask, methods, **kwargs).table


def fitted_parameter_table(fits: dict, sensor_names) -> pd.DataFrame:
    """Maximum-likelihood parameters of ``{(mode, method): FitResult}`` per sensor: bias a_s,
    gain b_s, noise sd_s (index units; gain 1), process sd q (index units per day), phi (1)
    and slope sd (index units per day^2), each the mean over the fitted pixels/replicates,
    with the sd of a_s and b_s across them."""
    rows = []
    for (mode, label), f in fits.items():
        s, p = f.sensors, f.process
        for i, n in enumerate(sensor_names):
            b, g, sd = (np.asarray(a)[..., i] for a in (s.bias, s.gain, s.noise_sd))
            rows.append({"mode": mode, "method": label, "sensor": n,
                         "bias": float(np.mean(b)), "bias_sd_across_fits": float(np.std(b)),
                         "gain": float(np.mean(g)), "gain_sd_across_fits": float(np.std(g)),
                         "noise_sd": float(np.mean(sd)), "process_sd": float(np.mean(p.process_sd)),
                         "phi": float(np.mean(p.phi)), "slope_sd": float(np.mean(p.slope_sd))})
    return pd.DataFrame(rows)
