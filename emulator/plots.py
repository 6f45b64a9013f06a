"""Diagnostic figures of an emulator against its process model (matplotlib; each function
returns the figure, the caller saves it).

* :func:`scatter_figure`: emulated vs process-model GPP, Reco and NEE (umol m-2 s-1),
  log-density hexbins with the 1:1 line and R2 = 1 - SSE/SST.
* :func:`gradient_figure`: per-parameter gradients of an objective, emulator vs process
  model, from :func:`emulator.evaluate.gradient_agreement` (unit-box coordinates).
* :func:`rollout_figure`: a free rollout (state and fluxes) against the process model, as
  daily means.
"""
from __future__ import annotations

import numpy as np


def scatter_figure(pred: dict, true: dict, title: str):
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 3, figsize=(12, 4), layout="constrained")
    for ax, k in zip(axes, ("gpp", "reco", "nee")):
        p, t = np.asarray(pred[k]).ravel(), np.asarray(true[k]).ravel()
        ax.hexbin(t, p, gridsize=60, bins="log", mincnt=1)
        lim = [min(t.min(), p.min()), max(t.max(), p.max())]
        ax.plot(lim, lim, "k--", lw=0.8)
        r2 = 1 - np.sum((p - t) ** 2) / np.sum((t - t.mean()) ** 2)
        ax.set(xlabel=f"process model {k.upper()} (umol m-2 s-1)", ylabel=f"emulator {k.upper()}",
               title=f"{k.upper()}: R2={r2:.5f}")
    fig.suptitle(title)
    return fig


def gradient_figure(g, names, title: str):
    """``g``: a :func:`~emulator.evaluate.gradient_agreement` table; ``names``: parameters."""
    import matplotlib.pyplot as plt
    cols = int(np.ceil(len(names) / 2))
    fig, axes = plt.subplots(2, cols, figsize=(3 * cols, 6), layout="constrained")
    for ax, n in zip(axes.flat, names):
        a, b = np.asarray(g[f"d_{n}_process"]), np.asarray(g[f"d_{n}_emulator"])
        lim = [min(a.min(), b.min()), max(a.max(), b.max())]
        ax.plot(a, b, ".", ms=4)
        ax.plot(lim, lim, "k--", lw=0.8)
        ax.set(title=f"d objective / d u({n})", xlabel="process model", ylabel="emulator")
    fig.suptitle(title)
    return fig


def rollout_figure(example, steps_per_day: int, xlabel: str):
    """``example``: (name, true state, emulated state, true fluxes, emulated fluxes) of
    :func:`~emulator.evaluate.rollout_skill` (state: soil water, m3 m-3; fluxes with gpp,
    et, nee)."""
    import matplotlib.pyplot as plt
    _, ts, es, tf, ef = example
    n = steps_per_day
    day = lambda a: np.asarray(a)[: len(a) // n * n].reshape(-1, n).mean(1)  # noqa: E731
    fig, axes = plt.subplots(4, 1, figsize=(10, 9), sharex=True, layout="constrained")
    for ax, (label, k) in zip(axes, [("soil water (m3 m-3)", None), ("GPP (umol m-2 s-1)", "gpp"),
                                     ("ET (mm per step)", "et"), ("NEE (umol m-2 s-1)", "nee")]):
        ax.plot(day(ts if k is None else tf[k]), "k", lw=1, label="process model")
        ax.plot(day(es if k is None else ef[k]), "C1", lw=1, label="emulator (free rollout)")
        ax.set_ylabel(label, fontsize=8)
    axes[0].legend()
    axes[-1].set_xlabel(xlabel)
    return fig
