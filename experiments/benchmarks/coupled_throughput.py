"""Coupled-model throughput: forward site-years per second, ensemble member-site-years per
second, and the cost of a reverse-mode gradient relative to a forward run.

What is measured (real forcing: CH-Dav 2019, hourly, 8760 steps; float32 unless ``--x64``)
-------------------------------------------------------------------------------------------
* ``forward``: ``process_models.coupled.simulate`` (jitted ``lax.scan`` of ``step`` with
  one ``jax.checkpoint`` chunk per day) for one member, all outputs, best of ``--repeats``
  after a warm-up (compile time reported separately).
* ``python loop (eager)``: the reference, a straightforward implementation of the same
  step: a Python ``for`` loop calling ``step`` op by op (``jax.disable_jit``) for
  ``--eager-steps`` steps, extrapolated linearly to a site-year. It is checked against the
  jitted run on those steps before timing (max |diff| of NEE and ET).
* ``gradient``: ``jax.grad`` of (mean NEE + total ET) with respect to every parameter
  (the whole ``CoupledParams`` pytree) through the year, reverse mode with the daily
  checkpoints; ratio = gradient time / forward time.
* ``ensemble``: ``--members`` parameter sets (seeded log-normal perturbations of Vcmax25,
  g1, soil b, K_sat and the litter turnover time) at the site, ``lax.map`` over members in
  ``vmap`` batches of ``--batch``; each member returns its annual NEE and ET and final
  state (ensemble filters keep states, not hourly outputs), one jitted call.

Targets: forward site-year < 0.5 s, gradient < 5x forward, 1024 member-years < 5 min.

Run::

    python -m experiments.benchmarks.coupled_throughput                 # full (1024 members)
    python -m experiments.benchmarks.coupled_throughput --quick         # seconds
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings

import jax
import jax.numpy as jnp
import numpy as np

COLUMNS = ["case", "members", "steps", "compile s", "run s", "site-years/s", "ratio"]


def _hourly_ch_dav(n_steps: int, dtype):
    """CH-Dav 2019 drivers averaged to hours (precipitation summed), the first ``n_steps``."""
    import xarray as xr

    from experiments.sites import get_site
    from process_models.coupled import forcing_from_dataset
    from process_models.io import data_path, read_diive_parquet
    site = get_site("CH-Dav")
    ds = read_diive_parquet(data_path(*site.path)).sel(time="2019")
    n = ds.sizes["time"] // 2 * 2
    pairs = lambda v: np.asarray(ds[v].values[:n], float).reshape(-1, 2)
    data = {v: ("time", pairs(v).mean(1), dict(ds[v].attrs))
            for v in ("air_temperature", "vpd", "shortwave_in", "air_pressure")}
    p = pairs("precipitation")
    data["precipitation"] = ("time", np.where(np.isnan(p).all(1), np.nan, np.nansum(p, 1)),
                             dict(ds["precipitation"].attrs))
    h = xr.Dataset(data, coords={"time": ds["time"].values[:n:2]})
    h.attrs = dict(ds.attrs, time_step_seconds=3600.0)
    h = h.isel(time=slice(0, n_steps))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return forcing_from_dataset(h, site.latitude, site.longitude, dtype=dtype)


def _best(fn, repeats):
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        jax.block_until_ready(fn())
        times.append(time.perf_counter() - t)
    return min(times)


def _timed_compile(fn):
    t = time.perf_counter()
    jax.block_until_ready(fn())
    return time.perf_counter() - t


def _members(params, n, seed=0):
    from process_models.coupled import set_parameters
    rng = np.random.default_rng(seed)
    names = ("leaf.vcmax25", "leaf.g1", "soil.b", "soil.k_sat", "carbon.tau_litter")
    from process_models.coupled import get_parameter
    values = {k: float(get_parameter(params, k)) * np.exp(rng.normal(0, 0.2, n)) for k in names}
    return set_parameters(params, values)          # leaves of shape (n,) for those five


def run_benchmark(args) -> dict:
    from process_models.coupled import load_parameters, simulate, step
    dtype = jnp.float64 if args.x64 else jnp.float32
    forcing = _hourly_ch_dav(args.steps, dtype)
    params = load_parameters(args.pft, dtype=dtype)
    n = forcing.n_steps
    years = n / 8760.0
    rows = []

    # forward, one member
    fwd = lambda: simulate(params, forcing)
    c_fwd = _timed_compile(fwd)
    t_fwd = _best(fwd, args.repeats)
    rows.append({"case": "forward (jit, scan)", "members": 1, "steps": n, "compile s": c_fwd,
                 "run s": t_fwd, "site-years/s": years / t_fwd, "ratio": 1.0})

    # reference: eager Python loop over steps
    k = min(args.eager_steps, n)
    out_jit = fwd()
    from process_models.coupled import initial_state
    state = initial_state(params, forcing)
    with jax.disable_jit():
        _, o = step(state, jax.tree_util.tree_map(lambda x: x[0], forcing), params)   # warm-up
        t = time.perf_counter()
        nee, et = [], []
        for i in range(k):
            state, o = step(state, jax.tree_util.tree_map(lambda x: x[i], forcing), params)
            nee.append(float(o.nee))
            et.append(float(o.et))
        t_eager = (time.perf_counter() - t) / k * n
    diff = max(np.max(np.abs(np.array(nee) - np.asarray(out_jit.nee[:k]))),
               np.max(np.abs(np.array(et) - np.asarray(out_jit.et[:k]))))
    tol = 1e-3 if dtype == jnp.float32 else 1e-9
    assert diff <= tol, f"eager and jitted steps disagree: max |diff| = {diff}"
    rows.append({"case": f"python loop, eager ({k} steps, extrapolated)", "members": 1, "steps": n,
                 "compile s": 0.0, "run s": t_eager, "site-years/s": years / t_eager,
                 "ratio": t_eager / t_fwd})

    # gradient of a scalar of the year w.r.t. every parameter
    finite = None
    if not args.skip_gradient:
        loss = lambda p: (lambda o: jnp.mean(o.nee) + jnp.sum(o.et))(simulate(p, forcing))
        grad = jax.jit(jax.grad(loss))
        c_grad = _timed_compile(lambda: grad(params))
        t_grad = _best(lambda: grad(params), args.repeats)
        g = grad(params)
        finite = all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree_util.tree_leaves(g))
        rows.append({"case": "gradient (reverse, all parameters)", "members": 1, "steps": n,
                     "compile s": c_grad, "run s": t_grad, "site-years/s": years / t_grad,
                     "ratio": t_grad / t_fwd})

    # ensemble
    m = args.members
    stacked = _members(params, m)

    def member(p):
        out, final = simulate(p, forcing, return_state=True)
        return jnp.sum(out.nee), jnp.sum(out.et), final

    def ensemble(stacked):
        # members whose parameters are scalars (shared) broadcast to the member axis
        full = jax.tree_util.tree_map(lambda x: jnp.broadcast_to(x, (m,) + jnp.shape(x))
                                      if jnp.ndim(x) == 0 else x, stacked)
        return jax.lax.map(member, full, batch_size=min(args.batch, m))

    ens = jax.jit(ensemble)
    c_ens = _timed_compile(lambda: ens(stacked))
    t_ens = _best(lambda: ens(stacked), 1)
    nee_m, et_m, _ = ens(stacked)
    assert np.all(np.isfinite(np.asarray(nee_m))) and np.all(np.isfinite(np.asarray(et_m)))
    rows.append({"case": f"ensemble (lax.map, vmap batches of {min(args.batch, m)})", "members": m,
                 "steps": n, "compile s": c_ens, "run s": t_ens,
                 "site-years/s": m * years / t_ens, "ratio": t_ens / (m * t_fwd)})
    return {"rows": rows, "gradient_finite": finite, "eager_max_abs_diff": float(diff),
            "dtype": str(np.dtype(dtype)), "years": years}


def format_table(rows) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append("| " + " | ".join([
            r["case"], str(r["members"]), str(r["steps"]), f"{r['compile s']:.1f}",
            f"{r['run s']:.3g}", f"{r['site-years/s']:.3g}", f"{r['ratio']:.3g}"]) + " |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="10 days, 8 members, 1 repeat")
    ap.add_argument("--steps", type=int, default=8760, help="hourly steps (8760 = one year)")
    ap.add_argument("--members", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=256, help="members per vmap batch")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--eager-steps", type=int, default=24)
    ap.add_argument("--pft", default="ENF")
    ap.add_argument("--x64", action="store_true", help="float64 instead of float32")
    ap.add_argument("--skip-gradient", action="store_true", help="no reverse-mode row (compile-heavy)")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps = min(args.steps, 240)
        args.members = min(args.members, 8)
        args.batch = min(args.batch, 4)
        args.repeats, args.eager_steps = 1, min(args.eager_steps, 3)
    if args.x64:
        jax.config.update("jax_enable_x64", True)
    res = run_benchmark(args)
    table = format_table(res["rows"])
    print(f"coupled model throughput, CH-Dav hourly, {res['dtype']}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, jax {jax.__version__}")
    print(table)
    print(f"gradient finite: {res['gradient_finite']}; eager vs jit max |diff| {res['eager_max_abs_diff']:.2g}")
    res["table"] = table
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
