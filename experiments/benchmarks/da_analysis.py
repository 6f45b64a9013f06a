"""Ensemble analysis-step benchmark: ``assimilation.ensemble`` (JAX, jitted) against a
straightforward NumPy implementation measured in the same run.

Rows
----
* ``etkf Nx=40 N=20``, ``etkf Nx=1e4 N=50``: one global ETKF analysis (symmetric square
  root in ensemble space, every variable observed, diagonal R). NumPy: the same
  equations with ``np.linalg.eigh`` (OpenBLAS/LAPACK).
* ``letkf Nx=1e5 N=50``: one LETKF analysis on a periodic 1-D grid, every point observed,
  Gaspari-Cohn half-width c = 7.28 (DAPPER loc_rad 4), one local analysis per grid point
  (K = 29 local observations). NumPy: a Python loop over grid points (as DAPPER loops over
  its local batches), each a small ETKF. A second, tuned row shares one local analysis
  among ``--letkf-ppb`` consecutive points (``points_per_batch``; the NumPy loop uses the
  same batches, so results agree exactly) and optionally caps ``max_local_obs``. At full
  size the NumPy loop is timed on the first ``--np-letkf-points`` points and extrapolated
  linearly to Nx (the per-batch cost is constant); the row label says so. Use
  ``--float32`` for the single-precision table.
* ``l96 cycles/s``: Lorenz-96 (40 variables, dt 0.05, RK4) ETKF N=20 filter cycles
  (forecast + analysis) per second: ``ensemble_filter`` under ``lax.scan`` vs a NumPy
  loop over cycles.

Results are checked for agreement (max |JAX - NumPy| over the analysis ensemble, or the
filter's analysis means) before timing. Timings: best of ``--repeats`` after warm-up.
No wall-clock numbers are asserted anywhere.

Run::

    python -m experiments.benchmarks.da_analysis            # full sizes
    python -m experiments.benchmarks.da_analysis --quick    # seconds (smoke test)
"""
from __future__ import annotations

import argparse
import platform
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

from assimilation.ensemble import ETKF, analyse, build_letkf, ensemble_filter, gaspari_cohn
from assimilation.toy_models import lorenz96

COLUMNS = ("case", "numpy s", "jax s", "speed-up", "max abs diff")


def _log(msg):
    print(msg, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------- NumPy refs

def numpy_etkf(X, y, r):
    """Straightforward NumPy ETKF (Hunt et al. 2007), identity H, diagonal R."""
    n = X.shape[0]
    xbar = X.mean(0)
    A = X - xbar
    s = 1.0 / np.sqrt(r)
    S = A * s / np.sqrt(n - 1)
    d = (y - xbar) * s
    lam, V = np.linalg.eigh(S @ S.T)
    lam = np.clip(lam, 0, None)
    w = V @ ((V.T @ (S @ d)) / (1 + lam)) / np.sqrt(n - 1)
    T = (V / np.sqrt(1 + lam)) @ V.T
    return xbar + w @ A + T @ A


def numpy_letkf(X, y, r, idx, rho, points_per_batch=1, n_batches=None):
    """Python loop over local batches (``points_per_batch`` consecutive grid points share
    one local analysis, as DAPPER's batches), each a small ETKF with R-localisation.
    ``n_batches``: process only the first batches (for timing on a subset); the columns
    of the other points are left NaN."""
    n, nx = X.shape
    b = int(points_per_batch)
    xbar = X.mean(0)
    A = X - xbar
    s = 1.0 / np.sqrt(r)
    S_all = A * s / np.sqrt(n - 1)            # identity H: obs anomalies = state anomalies
    d_all = (y - xbar) * s
    out = np.full_like(X, np.nan)
    nb = idx.shape[0] if n_batches is None else min(int(n_batches), idx.shape[0])
    for g in range(nb):
        sr = np.sqrt(rho[g])
        S = S_all[:, idx[g]] * sr
        d = d_all[idx[g]] * sr
        lam, V = np.linalg.eigh(S @ S.T)
        lam = np.clip(lam, 0, None)
        w = V @ ((V.T @ (S @ d)) / (1 + lam)) / np.sqrt(n - 1)
        T = (V / np.sqrt(1 + lam)) @ V.T
        cols = slice(g * b, min((g + 1) * b, nx))
        out[:, cols] = xbar[cols] + w @ A[:, cols] + T @ A[:, cols]
    return out


def numpy_l96_filter(E0, ys, infl, n_cycles):
    def tend(x):
        return (np.roll(x, -1, -1) - np.roll(x, 2, -1)) * np.roll(x, 1, -1) - x + 8.0

    def step(x, dt=0.05):
        k1 = tend(x)
        k2 = tend(x + 0.5 * dt * k1)
        k3 = tend(x + 0.5 * dt * k2)
        k4 = tend(x + dt * k3)
        return x + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)

    E = E0.copy()
    means = []
    r = np.ones(E.shape[1])
    for k in range(n_cycles):
        E = step(E)
        E = numpy_etkf(E, ys[k], r)
        E = E.mean(0) + infl * (E - E.mean(0))
        means.append(E.mean(0))
    return np.array(means)


# ----------------------------------------------------------------------------- timing

def _best(fn, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def _jax_block(fn):
    return lambda: jax.block_until_ready(fn())


def case_global(nx, n, repeats, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, nx)) + np.sin(np.arange(nx) / 7.0)
    y = rng.standard_normal(nx)
    r = np.ones(nx)
    Xj, yj, rj = jnp.asarray(X), jnp.asarray(y), jnp.asarray(r)
    h = _identity
    jx = np.asarray(analyse(ETKF(), Xj, yj, rj, h).ensemble)
    npy = numpy_etkf(X, y, r)
    diff = float(np.max(np.abs(jx - npy)))
    t_np = _best(lambda: numpy_etkf(X, y, r), repeats)
    t_jx = _best(_jax_block(lambda: analyse(ETKF(), Xj, yj, rj, h).ensemble), repeats)
    return dict(case=f"etkf Nx={nx} N={n}", numpy_s=t_np, jax_s=t_jx, diff=diff)


def _identity(x):
    return x


def case_letkf(nx, n, repeats, np_repeats=1, seed=0, points_per_batch=1,
               max_local_obs=None, np_points=None):
    """One LETKF analysis. ``np_points``: time the NumPy loop on the first ``np_points``
    grid points only and extrapolate linearly to Nx (cost is the same per batch); the
    agreement is checked on those points."""
    rng = np.random.default_rng(seed)
    dtype = jnp.float64 if jax.config.jax_enable_x64 else jnp.float32
    X = rng.standard_normal((n, nx)) + np.sin(np.arange(nx) / 7.0)
    y = rng.standard_normal(nx)
    r = np.ones(nx)
    c = 4.0 * np.sqrt(10.0 / 3.0)
    b = int(points_per_batch)
    let = build_letkf(np.arange(nx), np.arange(nx), c, period=nx, batch_size=4096,
                      points_per_batch=b, max_local_obs=max_local_obs)
    idx = np.asarray(let.obs_index)
    rho = np.asarray(let.obs_weight)
    Xj, yj, rj = (jnp.asarray(v, dtype) for v in (X, y, r))
    jx = np.asarray(analyse(let, Xj, yj, rj, _identity).ensemble)
    nbt = idx.shape[0]
    nbs = nbt if np_points is None else max(1, min(nbt, -(-int(np_points) // b)))
    npy = numpy_letkf(X, y, r, idx, rho, b, nbs)
    cols = min(nbs * b, nx)
    diff = float(np.max(np.abs(jx[:, :cols] - npy[:, :cols])))
    t_np = _best(lambda: numpy_letkf(X, y, r, idx, rho, b, nbs), np_repeats) * nbt / nbs
    t_jx = _best(_jax_block(lambda: analyse(let, Xj, yj, rj, _identity).ensemble), repeats)
    note = "" if nbs == nbt else f", numpy extrapolated from {cols} pts"
    return dict(case=f"letkf Nx={nx} N={n} K={idx.shape[1]} ppb={b}{note}", numpy_s=t_np,
                jax_s=t_jx, diff=diff)


def case_l96(n_cycles, n, repeats, seed=0):
    x0 = np.asarray(lorenz96.integrate(lorenz96.initial_state(40, dtype=jnp.float64), 2000))
    rng = np.random.default_rng(seed)
    ys = x0 + rng.standard_normal((n_cycles, 40)) * 2.0
    E0 = x0 + rng.standard_normal((n, 40))
    model = _l96_model

    def run_jax():
        return ensemble_filter(jax.random.key(0), model, jnp.asarray(E0), jnp.asarray(ys),
                               jnp.ones(40), _identity, inflation=1.02).analysis_mean

    jm = np.asarray(run_jax())
    nm = numpy_l96_filter(E0, ys, 1.02, n_cycles)
    # chaos amplifies round-off differences over long runs: compare the first 20 cycles
    diff = float(np.max(np.abs(jm[:20] - nm[:20])))
    t_np = _best(lambda: numpy_l96_filter(E0, ys, 1.02, n_cycles), repeats)
    t_jx = _best(_jax_block(run_jax), repeats)
    return dict(case=f"l96 ETKF N={n}: {n_cycles} cycles", numpy_s=t_np, jax_s=t_jx, diff=diff,
                cps_numpy=n_cycles / t_np, cps_jax=n_cycles / t_jx)


def _l96_model(x, _):
    return lorenz96.step(x, 0.05)


def format_table(rows):
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append(f"| {r['case']} | {r['numpy_s']:.4g} | {r['jax_s']:.4g} | "
                     f"{r['numpy_s'] / r['jax_s']:.2f} | {r['diff']:.1e} |")
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--float32", action="store_true", help="run in float32 (default float64)")
    p.add_argument("--letkf-nx", type=int, default=100_000, help="LETKF state size")
    p.add_argument("--letkf-ppb", type=int, default=4,
                   help="points_per_batch of the tuned LETKF row (1 = one analysis per point)")
    p.add_argument("--letkf-max-obs", type=int, default=None,
                   help="max_local_obs of the tuned LETKF row (default: all taper > 1e-3)")
    p.add_argument("--np-letkf-points", type=int, default=10_000,
                   help="grid points the NumPy LETKF loop is timed on (extrapolated to Nx)")
    a = p.parse_args(argv)
    jax.config.update("jax_enable_x64", not a.float32)
    if a.quick:
        plan = [("g", 40, 20), ("g", 1000, 20), ("l", 400, 10), ("c", 50, 20)]
        np_pts = None
    else:
        plan = [("g", 40, 20), ("g", 10_000, 50), ("l", a.letkf_nx, 50), ("t", a.letkf_nx, 50),
                ("c", 1000, 20)]
        np_pts = a.np_letkf_points
    rows = []
    for kind, size, n in plan:
        _log(f"[da_analysis] {kind} {size} {n}")
        if kind == "g":
            row = case_global(size, n, a.repeats)
        elif kind == "l":
            row = case_letkf(size, n, max(1, a.repeats // 2), np_points=np_pts)
        elif kind == "t":
            row = case_letkf(size, n, max(1, a.repeats // 2), np_points=np_pts,
                             points_per_batch=a.letkf_ppb, max_local_obs=a.letkf_max_obs)
        else:
            row = case_l96(size, n, max(1, a.repeats // 2))
        tol = 1e-3 if a.float32 else 1e-8
        assert row["diff"] < tol, f"JAX and NumPy disagree in {row['case']}: {row['diff']}"
        rows.append(row)
        _log(f"[da_analysis] {row['case']}: numpy {row['numpy_s']:.4g} s, jax {row['jax_s']:.4g} s")
    table = format_table(rows)
    print(f"device: {jax.devices()[0].device_kind} ({jax.default_backend()}), "
          f"{platform.processor() or platform.machine()}, dtype "
          f"{'float32' if a.float32 else 'float64'}")
    print(table)
    l96 = [r for r in rows if "cps_jax" in r]
    for r in l96:
        print(f"Lorenz-96 filter cycles/s: numpy {r['cps_numpy']:.0f}, jax {r['cps_jax']:.0f}")
    return dict(rows=rows, table=table)


if __name__ == "__main__":
    main()
