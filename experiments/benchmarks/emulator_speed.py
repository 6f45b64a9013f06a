"""Emulator speed: the coupled process model vs the daily flux-form emulator at a batch of
site-years, both timed in the same run (compile excluded).

What is measured (real forcing: CH-Dav 2020 half-hourly, ENF/loam; float32 unless ``--x64``)
--------------------------------------------------------------------------------------------
* ``process model``: the coupled model's own ``step`` (half-hourly, 48 steps a day)
  scanned over ``--process-days`` days (``lax.scan`` of days of ``lax.scan`` of steps,
  :func:`emulator.daily.daily_process_run`), vmapped over ``--batch`` parameter sets
  (the emulated parameters, Sobol points of the training box), states at day boundaries and
  daily fluxes returned: the same outputs the emulator gives;
* ``daily emulator``: :class:`emulator.daily_emulator.DailyCoupledEmulator`
  (``simulate_vectors``, one network call per site-day, flux-form bookkeeping), vmapped over
  the same batch, ``--emulator-days`` days.

Each jitted function runs once (compile, reported) and then ``--repeats`` times (best
kept). Times are scaled to one simulated year when fewer days are timed (linear in days,
both are scans). The emulator's weights do not change its cost: the trained emulator of the
emulator study is used when ``--model-dir`` holds one, an untrained one of the same
architecture (``--hidden``) otherwise (the table says which).

Run::

    python -m experiments.benchmarks.emulator_speed               # 1024 site-years, full year
    python -m experiments.benchmarks.emulator_speed --quick       # seconds
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

import jax
import numpy as np

COLUMNS = ["model", "site-years", "days timed", "compile s", "run s", "s per batch-year", "ratio"]
DEFAULT_MODEL = "experiments/output/emulator_study/coupled_daily_surrogate"


def _emulator(model_dir, hidden, spec):
    from flax import nnx

    from emulator.daily_emulator import N_INPUTS, DailyCoupledEmulator, DailyNetwork
    from emulator.normalise import Normaliser
    if model_dir and (Path(model_dir) / "config.json").exists():
        return DailyCoupledEmulator.load(model_dir, spec), f"trained ({model_dir})"
    n = N_INPUTS + len(spec.param_space.names)
    norm = Normaliser((0.0,) * n, (1.0,) * n)
    net = DailyNetwork(len(spec.param_space.names), tuple(hidden), norm, rngs=nnx.Rngs(0))
    return DailyCoupledEmulator(net, spec, {"hidden": list(hidden), "input_normaliser": norm.to_dict()}), \
        f"untrained, hidden {list(hidden)} (same cost)"


def run_benchmark(args) -> dict:
    import jax.numpy as jnp

    from emulator.coupled import coupled_spec, forcing_matrix
    from emulator.daily import site_forcing
    from emulator.daily_train import daily_speed_table
    from emulator.design import sample
    import pandas as pd
    dtype = jnp.float64 if args.x64 else jnp.float32
    f, times = site_forcing("CH-Dav")
    year = np.where(pd.DatetimeIndex(times).year == 2020)[0]
    fm = forcing_matrix(f)[year]
    spec = coupled_spec(dt_seconds=f.dt_seconds)
    emu, which = _emulator(args.model_dir, args.hidden, spec)
    params = sample(spec.param_space, 64, seed=5)
    table = daily_speed_table(emu, spec, params, fm, batch=args.batch, process_days=args.process_days,
                              emulator_days=args.emulator_days, dtype=dtype, repeats=args.repeats)
    return {"rows": table.to_dict("records"), "emulator": which, "dtype": str(np.dtype(dtype)),
            "speedup": float(table["ratio"].iloc[-1])}


def format_table(rows) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append("| " + " | ".join([
            r["model"], str(r["site_years"]), str(r["days_timed"]), f"{r['compile_s']:.1f}", f"{r['run_s']:.3g}",
            f"{r['s_per_batch_year']:.3g}", f"{r['ratio']:.3g}"]) + " |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="batch 16, 4 process days, 30 emulator days, 1 repeat")
    ap.add_argument("--batch", type=int, default=1024, help="site-years (parameter sets) per call")
    ap.add_argument("--process-days", type=int, default=365)
    ap.add_argument("--emulator-days", type=int, default=365)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--model-dir", default=DEFAULT_MODEL)
    ap.add_argument("--hidden", type=int, nargs="+", default=[128, 128])
    ap.add_argument("--x64", action="store_true", help="float64 instead of float32")
    args = ap.parse_args(argv)
    if args.quick:
        args.batch, args.process_days, args.emulator_days, args.repeats = min(args.batch, 16), 4, 30, 1
    if args.x64:
        jax.config.update("jax_enable_x64", True)
    res = run_benchmark(args)
    table = format_table(res["rows"])
    print(f"coupled model vs daily flux-form emulator, CH-Dav 2020, {res['dtype']}, emulator {res['emulator']}, "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__}, "
          f"{jax.default_backend()}")
    print(table)
    res["table"] = table
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
