"""Evaluation by withheld observations: hide a fraction of the valid observations (at
random, or in long blocks that mimic cloudy spells), fill from the rest, and score the
hidden ones: RMSE and the coverage of the central 90 % predictive interval
(``|y - m| <= 1.645 s`` with ``s`` the predictive sd of an observation, i.e. including
the sensor noise). A well-calibrated method covers about 90 %.
"""
from __future__ import annotations

import numpy as np
import pandas as pd

from .methods import METHODS, fuse_arrays

__all__ = ["withhold", "score", "evaluate_methods", "Z90"]

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


def evaluate_methods(y, mask, methods=METHODS, *, fraction: float = 0.25, modes=("random", "block"),
                     block_days=(30, 60), seed: int = 0, method_options: dict | None = None,
                     sensor_names=None, progress=None) -> pd.DataFrame:
    """Withhold, fill with each method, score; one row per (mode, method, sensor|'all').

    ``method_options``: per-method keyword arguments for :func:`.methods.fuse_arrays`
    (e.g. ``{"kalman": {"kind": "damped", "climatology": "harmonic"}}``).
    """
    y = np.asarray(y, float)
    mask = np.asarray(mask, bool) & np.isfinite(y)
    S = y.shape[-1]
    names = list(sensor_names or [f"sensor{s}" for s in range(S)])
    method_options = method_options or {}
    rows = []
    for mode in modes:
        train, test = withhold(mask, fraction, mode, block_days, seed)
        for m in methods:
            opts = dict(method_options.get(m, {}))
            base = opts.pop("method", m)
            res = fuse_arrays(y, train, base, **opts)
            common = {"mode": mode, "method": m, "withheld_share": float(test.sum() / max(mask.sum(), 1))}
            rows.append({**common, "sensor": "all", **score(y, test, res.obs_mean, res.obs_sd)})
            if S > 1:
                for s in range(S):
                    rows.append({**common, "sensor": names[s],
                                 **score(y[..., s], test[..., s], res.obs_mean[..., s], res.obs_sd[..., s])})
            if progress is not None:
                progress.update()
    return pd.DataFrame(rows)
