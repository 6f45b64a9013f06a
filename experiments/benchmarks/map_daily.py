"""Daily map engine: the coupled model's daily flux-form emulator vs the process model on the
same map pixels and days, speed and bias measured in the same run (issue 16, item 1).

What is measured
----------------
The regional map engine's daily mode (:mod:`assimilation.maps.daily`) on a window of the
Romania Sentinel-2 cube (``experiments/configs/romania_s2.toml``, CH-Dav meteorology
standing in, tree-cover land cover: deciduous forest / grassland per pixel) over one
season. Per pixel the same inputs go to both models (:class:`~assimilation.maps.daily.
CoupledDailyMapModel`): the PFT parameters of the dominant class, the hourly meteorology
at the pixel, the initial state of the process model with the leaf pool from the pivot
greenness of the first day.

* ``process model``: :func:`process_models.coupled.simulate`, hourly steps (dt 3600 s,
  24 steps a day) scanned over the season, vmapped over the pixels;
* ``daily emulator``: :class:`emulator.daily_emulator.DailyCoupledEmulator` (one network
  call per pixel-day, flux-form bookkeeping), ``lax.scan`` over days vmapped over pixels.

Both are timed through the engine's tile computation
(:func:`assimilation.maps.daily.daily_fluxes`: the central run and the +-1 sd greenness runs,
3 runs per pixel), compile excluded (the first call), best of ``--repeats``; the ratio is
the process model's time over the emulator's. Bias: daily means of the emulator minus the
process model over all pixels and days (umol m-2 s-1, and % of the process model's mean),
the daily R2, and the season totals (g C m-2, pixel mean). The emulator is the emulator
study's (``--model-dir``) or, if that folder holds none, one trained here in quick mode
(``--train-dir``; 96 perturbed CH-Dav ENF years, 2000 AdamW steps, MLP [64, 64]; the table says which):
an emulator trained for ENF/loam evaluated on DBF and grassland parameters (its
parameter box clipped, the rest physical), so the bias is an out-of-training-set bias.

Run::

    python -m experiments.benchmarks.map_daily               # 8 x 8 pixels, JJA 2019
    python -m experiments.benchmarks.map_daily --quick       # 3 x 3 pixels, 30 days
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import jax
import numpy as np

COLUMNS = ["model", "pixels", "days", "compile s", "run s", "pixel-days per s", "ratio"]
DEFAULT_MODEL = "experiments/output/emulator_study/coupled_daily_surrogate"
DEFAULT_TRAIN = "experiments/output/benchmarks/map_daily_emulator"
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "romania_s2.toml"


def quick_emulator(out_dir, trajectories: int = 96, steps: int = 2000, seed: int = 0):
    """A daily emulator trained as in the emulator study's quick mode (perturbed CH-Dav
    years of the process model, ENF/loam, K-day rollout loss); resumable (checkpoints)."""
    import pandas as pd

    from emulator.coupled import coupled_spec, forcing_matrix
    from emulator.daily import site_forcing
    from emulator.daily_train import daily_design, generate_daily, train_daily_emulator
    from emulator.train import TrainConfig
    out = Path(out_dir)
    f, t = site_forcing("CH-Dav")
    years, fm = pd.DatetimeIndex(t).year, forcing_matrix(f)
    spec = coupled_spec(dt_seconds=f.dt_seconds)
    per_day = int(round(86400 / f.dt_seconds))
    p, w, pert = daily_design(spec.param_space, fm.astype(np.float32), per_day, trajectories, 365,
                              int(np.where(years <= 2019)[0][-1]) + 1, seed=seed)
    data = generate_daily(out / "data", spec, p, w, pert.astype(np.float32), per_chunk=8, progress=False)
    cfg = TrainConfig(steps=steps, batch_size=64, learning_rate=2e-3, warmup_steps=max(steps // 60, 5),
                      eval_every=max(steps // 60, 10), patience=15, checkpoint_every=max(steps // 30, 10), seed=seed)
    sur, _ = train_daily_emulator(data, spec, hidden=(64, 64), window=16, config=cfg, n_val=2,
                                  checkpoint_dir=out / "checkpoints", metrics_path=out / "training.csv", seed=seed)
    sur.save(out / "coupled_daily_surrogate")
    return sur


def load_emulator(model_dir, train_dir, trajectories: int = 96, steps: int = 2000):
    from emulator.daily_emulator import DailyCoupledEmulator
    for d, what in ((model_dir, "emulator study"), (Path(train_dir) / "coupled_daily_surrogate", "quick, trained here")):
        if d and (Path(d) / "config.json").exists():
            return DailyCoupledEmulator.load(d), f"{what} ({d})"
    t0 = time.perf_counter()
    emu = quick_emulator(train_dir, trajectories, steps)
    return emu, f"quick, trained here in {time.perf_counter() - t0:.0f} s ({train_dir})"


def _time(fn, repeats):
    t0 = time.perf_counter()
    out = fn()
    compile_s = time.perf_counter() - t0
    best = np.inf
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return out, compile_s, best


def run_benchmark(args) -> dict:
    import dataclasses

    from assimilation.maps import load_config, prepare
    from assimilation.maps.daily import CoupledDailyMapModel, daily_fluxes, daily_tile_inputs
    emu, which = load_emulator(args.model_dir, args.train_dir, args.train_trajectories, args.train_steps)
    n = args.pixels
    cfg = load_config(CONFIG, model__name="coupled_daily", run__start=args.start, run__end=args.end,
                      run__window=(0, n, 0, n), run__tile=(n, n), run__scheduler="inprocess",
                      run__fit_pixels=64, run__fit_steps=40, output__store="unused.zarr")
    fractions = None
    if args.evergreen:             # every pixel evergreen needleleaf: the emulator's training PFT
        import xarray as xr

        from assimilation.maps import satellite_observations
        obs = satellite_observations(cfg).isel(y=slice(0, n), x=slice(0, n))
        from process_models.vprm import VPRMModel
        ids = np.asarray(VPRMModel(table=cfg.model.table).default_params().rules.class_ids)
        fractions = xr.DataArray(np.broadcast_to(ids == 1, (n, n, ids.size)).astype(float),
                                 dims=("y", "x", "vprm_class"), coords={"y": obs.y, "x": obs.x, "vprm_class": ids})
        cfg = cfg.replace(run__window=())
    with jax.numpy_dtype_promotion("standard"):
        ctx = prepare(cfg, model=CoupledDailyMapModel(emu), fractions=fractions,
                      observations=obs if args.evergreen else None)
    inp, *_ = daily_tile_inputs(ctx, slice(0, n), slice(0, n))
    P, D = n * n, len(inp.days)
    res, rows = {}, []
    for name, model in (("process model", CoupledDailyMapModel(emu, process=True)),
                        ("daily emulator", CoupledDailyMapModel(emu))):
        ctx_m = dataclasses.replace(ctx, model=model)
        out, c, r = _time(lambda: daily_fluxes(ctx_m.model, inp), args.repeats)
        res[name] = out
        rows.append({"model": name, "pixels": P, "days": D, "compile_s": c, "run_s": r,
                     "pixel_days_per_s": P * D / r})
    for r in rows:
        r["ratio"] = rows[0]["run_s"] / r["run_s"]
    (yp, _, tp, _), (ye, sde, te, _) = res["process model"], res["daily emulator"]
    bias = []
    for k, v in enumerate(("gpp", "reco", "nee")):
        a, b = ye[k].ravel(), yp[k].ravel()
        ss = np.sum((b - b.mean()) ** 2)
        bias.append({"output": v, "process_mean": float(b.mean()), "emulator_mean": float(a.mean()),
                     "bias": float(a.mean() - b.mean()),
                     "bias_pct": float(100 * (a.mean() - b.mean()) / abs(b.mean())) if b.mean() else float("nan"),
                     "r2_daily": float(1 - np.sum((a - b) ** 2) / ss) if ss > 0 else float("nan"),
                     "season_total_process": float(tp[k].mean()), "season_total_emulator": float(te[k].mean())})
    return {"rows": rows, "bias": bias, "emulator": which, "dtype": "float64" if args.x64 else "float32",
            "period": f"{args.start} .. {args.end}", "speedup": rows[-1]["ratio"],
            "classes": "all ENF" if args.evergreen else "tree-cover DBF/grassland"}


def format_tables(res) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in res["rows"]:
        lines.append(f"| {r['model']} | {r['pixels']} | {r['days']} | {r['compile_s']:.1f} | {r['run_s']:.3g} | "
                     f"{r['pixel_days_per_s']:.3g} | {r['ratio']:.3g} |")
    lines += ["", "| output | process mean | emulator mean | bias | bias % | daily R2 | season total process "
              "g C m-2 | season total emulator g C m-2 |", "|---|---|---|---|---|---|---|---|"]
    for b in res["bias"]:
        lines.append(f"| {b['output']} | {b['process_mean']:.3g} | {b['emulator_mean']:.3g} | {b['bias']:+.3g} | "
                     f"{b['bias_pct']:+.1f} | {b['r2_daily']:.3f} | {b['season_total_process']:.1f} | "
                     f"{b['season_total_emulator']:.1f} |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="3 x 3 pixels, 30 days, 1 repeat")
    ap.add_argument("--pixels", type=int, default=8, help="window side (pixels)")
    ap.add_argument("--start", default="2019-06-01")
    ap.add_argument("--end", default="2019-09-01")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--model-dir", default=DEFAULT_MODEL)
    ap.add_argument("--train-dir", default=DEFAULT_TRAIN)
    ap.add_argument("--x64", action="store_true", help="float64 instead of float32")
    ap.add_argument("--evergreen", action="store_true",
                    help="every pixel ENF (the emulator's training PFT) instead of the tree-cover classes")
    ap.add_argument("--train-trajectories", type=int, default=96, help="quick emulator: perturbed years")
    ap.add_argument("--train-steps", type=int, default=2000, help="quick emulator: AdamW steps")
    args = ap.parse_args(argv)
    if args.quick:
        args.pixels, args.end, args.repeats = min(args.pixels, 3), "2019-07-01", 1
    if args.x64:
        jax.config.update("jax_enable_x64", True)
    res = run_benchmark(args)
    table = format_tables(res)
    print(f"daily map engine: coupled process model vs daily emulator, Romania S2 window ({res['classes']}), {res['period']}, "
          f"{res['dtype']}, emulator {res['emulator']}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs, jax {jax.__version__}, {jax.default_backend()}")
    print(table)
    res["table"] = table
    return res


if __name__ == "__main__":
    main(sys.argv[1:])
