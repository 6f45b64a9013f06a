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
  (the whole ``CoupledParams`` pytree) through the year, reverse mode with the model's
  default checkpointing (``jax.checkpoint`` on every step); ratio = gradient time /
  forward time. ``--grad-schemes default,24,0`` adds rows for other ``checkpoint_every``
  values in the same run (24: the former default, one checkpoint per day).
* ``--kernel-counts``: executed XLA kernels per model step of each compiled program (the
  top-level instructions of every while-loop body times its known trip count, summed over
  the nesting; fusions count once). On XLA:CPU a scalar-per-site step is dispatch-bound
  (~80 ns per kernel), so this count tracks the run time and, unlike a timing, does not
  depend on the load of a shared machine.

Times: best of ``--repeats`` on the wall clock ("run s") and in process CPU time ("cpu s",
``time.process_time``: less sensitive to other processes on a loaded machine); ratios are
given for both.
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

COLUMNS = ["case", "members", "steps", "compile s", "run s", "cpu s", "site-years/s", "ratio",
           "cpu ratio", "kernels/step"]


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
    """(best wall-clock seconds, best process CPU seconds) of ``repeats`` calls."""
    wall, cpu = [], []
    for _ in range(repeats):
        t, c = time.perf_counter(), time.process_time()
        jax.block_until_ready(fn())
        wall.append(time.perf_counter() - t)
        cpu.append(time.process_time() - c)
    return min(wall), min(cpu)


_SKIP = {"parameter", "get-tuple-element", "tuple", "constant", "bitcast"}


def executed_kernels(hlo_text: str) -> int:
    """Kernels an optimised HLO module executes: top-level instructions of the entry
    computation, with each ``while`` counted as (known trip count) x (its body + condition),
    recursively, and ``call`` / ``conditional`` (largest branch) expanded. Fused
    computations are not entered (a fusion is one kernel)."""
    import re
    comps, cur, entry = {}, None, None
    for line in hlo_text.splitlines():
        m = re.match(r"^(ENTRY )?%?([\w.\-]+) .*\{$", line)
        if m:
            cur = m.group(2)
            comps[cur] = []
            entry = cur if m.group(1) else entry
        elif line.strip() == "}":
            cur = None
        elif cur:
            comps[cur].append(line)
    memo = {}

    def count(c):
        if c not in memo:
            total = 0
            for line in comps.get(c, []):
                m = re.search(r"= .*?\b([a-z][a-z0-9\-]*)\(", line)
                if not m or m.group(1) in _SKIP:
                    continue
                op = m.group(1)
                if op == "while":
                    n = re.search(r'known_trip_count":\{"n":"(\d+)"', line)
                    total += (int(n.group(1)) if n else 1) * (
                        count(re.search(r"body=%?([\w.\-]+)", line).group(1))
                        + count(re.search(r"condition=%?([\w.\-]+)", line).group(1)))
                elif op == "call":
                    total += count(re.search(r"to_apply=%?([\w.\-]+)", line).group(1))
                elif op == "conditional":
                    br = re.search(r"branch_computations=\{([^}]*)\}", line)
                    names = [b.strip().lstrip("%") for b in br.group(1).split(",")] if br else []
                    total += 1 + max((count(b) for b in names), default=0)
                else:
                    total += 1
            memo[c] = total
        return memo[c]
    return count(entry)


def _kernels_per_step(jitted, args, n_steps):
    return executed_kernels(jitted.lower(*args).compile().as_text()) / n_steps


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

    nan = float("nan")
    kc = (lambda f, *a: _kernels_per_step(f, a, n)) if args.kernel_counts else (lambda *a: nan)
    # forward, one member
    fwd = lambda: simulate(params, forcing)
    c_fwd = _timed_compile(fwd)
    t_fwd, cpu_fwd = _best(fwd, args.repeats)
    rows.append({"case": "forward (jit, scan)", "members": 1, "steps": n, "compile s": c_fwd,
                 "run s": t_fwd, "cpu s": cpu_fwd, "site-years/s": years / t_fwd, "ratio": 1.0,
                 "cpu ratio": 1.0, "kernels/step": kc(simulate, params, forcing)})

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
                 "compile s": 0.0, "run s": t_eager, "cpu s": nan, "site-years/s": years / t_eager,
                 "ratio": t_eager / t_fwd, "cpu ratio": nan, "kernels/step": nan})

    # gradient of a scalar of the year w.r.t. every parameter
    finite = None
    schemes = [] if args.skip_gradient else [s.strip() for s in args.grad_schemes.split(",") if s.strip()]
    for scheme in schemes:
        every = None if scheme == "default" else int(scheme)
        loss = lambda p, every=every: (lambda o: jnp.mean(o.nee) + jnp.sum(o.et))(
            simulate(p, forcing, checkpoint_every=every))
        grad = jax.jit(jax.grad(loss))
        c_grad = _timed_compile(lambda: grad(params))
        t_grad, cpu_grad = _best(lambda: grad(params), args.repeats)
        g = grad(params)
        ok = all(bool(jnp.all(jnp.isfinite(x))) for x in jax.tree_util.tree_leaves(g))
        finite = ok if finite is None else (finite and ok)
        label = "per-step checkpoints" if every is None else (
            "no checkpoints" if every <= 0 else f"checkpoint every {every} steps")
        rows.append({"case": f"gradient (reverse, all parameters, {label})", "members": 1,
                     "steps": n, "compile s": c_grad, "run s": t_grad, "cpu s": cpu_grad,
                     "site-years/s": years / t_grad, "ratio": t_grad / t_fwd,
                     "cpu ratio": cpu_grad / cpu_fwd, "kernels/step": kc(grad, params)})

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
    t_ens, cpu_ens = _best(lambda: ens(stacked), 1)
    nee_m, et_m, _ = ens(stacked)
    assert np.all(np.isfinite(np.asarray(nee_m))) and np.all(np.isfinite(np.asarray(et_m)))
    rows.append({"case": f"ensemble (lax.map, vmap batches of {min(args.batch, m)})", "members": m,
                 "steps": n, "compile s": c_ens, "run s": t_ens, "cpu s": cpu_ens,
                 "site-years/s": m * years / t_ens, "ratio": t_ens / (m * t_fwd),
                 "cpu ratio": cpu_ens / (m * cpu_fwd), "kernels/step": nan})
    return {"rows": rows, "gradient_finite": finite, "eager_max_abs_diff": float(diff),
            "dtype": str(np.dtype(dtype)), "years": years}


def format_table(rows) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        g = lambda v: "-" if v != v else f"{v:.3g}"      # noqa: E731  (NaN -> "-")
        lines.append("| " + " | ".join([
            r["case"], str(r["members"]), str(r["steps"]), f"{r['compile s']:.1f}",
            g(r["run s"]), g(r["cpu s"]), g(r["site-years/s"]), g(r["ratio"]), g(r["cpu ratio"]),
            "-" if r["kernels/step"] != r["kernels/step"] else f"{r['kernels/step']:.0f}"]) + " |")
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
    ap.add_argument("--grad-schemes", default="default",
                    help="checkpoint_every values of the gradient rows: default (per step), k, 0")
    ap.add_argument("--kernel-counts", action="store_true",
                    help="executed XLA kernels per step of each program (recompiles each once)")
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
          f"{os.cpu_count()} CPUs, jax {jax.__version__}, load average {os.getloadavg()[0]:.1f}")
    print(table)
    print(f"gradient finite: {res['gradient_finite']}; eager vs jit max |diff| {res['eager_max_abs_diff']:.2g}")
    res["table"] = table
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
