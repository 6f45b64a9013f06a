"""Regional map benchmark: the map engine end to end (read, fuse, model, write) against the
same chain written the pyVPRM way, weak scaling, memory, and extrapolation to France.

What is measured (all in one run, float32, the Romania Sentinel-2 cube replicated to a
larger grid with ``run.replicate``: each 50 x 50 tile is a copy of the real cube):

* **engine**: ``assimilation.maps.run_map`` in process over the grid; pixel-hours per
  second end to end (prepare excluded: reading the cube, the pooled Kalman fit), and the
  stages per tile (read: the tile's observations and meteorology; pivot: daily Kalman
  smoother of EVI and LSWI; model: VPRM + the divided-difference sd; write: Zarr regions);
* **pyVPRM way**: the same tiles with the same inputs and pivot, the fluxes computed the
  way pyVPRM 6.0.1 does (``make_vprm_predictions`` called hour by hour: a Python loop over
  the hours, each interpolating the indices to the hour and evaluating VPRM with NumPy over
  the tile, class by class; the four perturbed runs of the sd likewise), then the same
  Zarr write. Checked against the engine's fluxes before timing (rtol 1e-4);
* **weak scaling**: a dask LocalCluster with 1 worker on K tiles, then 2 workers on 2K
  tiles (compile of each worker excluded by a warm-up tile); efficiency =
  (2K / t_2) / (2 K / t_1);
* **memory**: per tile, the worker's peak resident memory above its resident memory
  before the tile (Linux VmHWM after resetting it), relative to the tile's output bytes;
* **extrapolation**: one near-real-time France day at 100 m (5.5e7 pixels x 24 h) and one
  France year (x 8760 h) on this machine's 2 workers, from the measured per-pixel cost
  (read + pivot: does not depend on the hours) and per-pixel-hour cost (model + write),
  divided by 2 x the measured weak-scaling efficiency.

Run::

    python -m experiments.benchmarks.regional_map --quick             # seconds
    python -m experiments.benchmarks.regional_map                     # ~1e8 pixel-hours
    python -m experiments.benchmarks.regional_map --pixel-hours 1e9 --engine-only 2   # the 1e9 run
"""
from __future__ import annotations

import argparse
import dataclasses
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

CONFIG = Path(__file__).resolve().parents[1] / "configs" / "romania_s2.toml"
FRANCE_PIXELS = 5.5e7
"""Metropolitan France (5.5e5 km2) at 100 m."""


def _config(store, hours: int, replicate, start="2019-07-01", tile=50, **over):
    from assimilation.maps import load_config
    end = pd.Timestamp(start) + pd.Timedelta(hours=hours)
    kw = dict(run__start=start, run__end=str(end), run__tile=(tile, tile), run__time_chunk=min(168, hours),
              run__replicate=tuple(replicate), run__scheduler="inprocess", run__fit_steps=60,
              run__precision="float32", satellite__indices=("evi", "lswi"), output__store=str(store),
              output__overwrite=True)
    kw.update(over)
    return load_config(CONFIG, **kw)


def pyvprm_way_tile(ctx, ysl, xsl):
    """The tile the pyVPRM way: hour by hour, NumPy (see the module docs)."""
    from experiments.benchmarks.vprm_throughput import numpy_reference
    from assimilation.maps.engine import G_C_PER_UMOL_M2_S_HOUR, tile_inputs
    args, piv, flags, frac, _ = tile_inputs(ctx, ysl, xsl)
    dm, ds, st, fr, temp, par, pos = (np.asarray(a) for a in args)
    D = dm.shape[-1]
    H = temp.shape[0]
    out = np.zeros((3, H, fr.shape[0]), np.float32)
    tangent = np.zeros((2, 3, H, fr.shape[0]), np.float32)
    params = ctx.params
    for h in range(H):                      # the pyVPRM loop over hours
        i0 = int(np.clip(np.floor(pos[h]), 0, D - 2))
        w = np.float32(pos[h] - i0)

        def run(d):
            evi = np.clip(d[0][:, i0] * (1 - w) + d[0][:, i0 + 1] * w, 0, 1)
            lswi = np.clip(d[1][:, i0] * (1 - w) + d[1][:, i0 + 1] * w, -1, 1)
            g, r, n = numpy_reference(params, {"temperature": temp[h], "par": par[h], "evi": evi, "lswi": lswi,
                                               "evi_threshold": st[0], "lswi_min": st[1], "lswi_max": st[2],
                                               "class_fractions": fr})
            return np.stack([g, r, n])
        out[:, h] = run(dm)
        for k in range(2):
            e = np.zeros_like(dm)
            e[k] = ds[k]
            tangent[k, :, h] = 0.5 * (run(dm + e) - run(dm - e))
    sd = np.sqrt((tangent ** 2).sum(0))
    tot = out.sum(1) * G_C_PER_UMOL_M2_S_HOUR
    tot_sd = G_C_PER_UMOL_M2_S_HOUR * np.sqrt((tangent.sum(2) ** 2).sum(0))
    return out, sd, tot, tot_sd


def _write_like_engine(ctx, ysl, xsl, y, sd, tot, tot_sd):
    from assimilation.maps.store import write_tile
    ty, tx = ctx.config.run.tile
    arrays = {}
    for k, name in enumerate(("gpp", "reco", "nee")):
        arrays[name] = (("time", "y", "x"), y[k].reshape(-1, ty, tx))
        arrays[f"{name}_sd"] = (("time", "y", "x"), sd[k].reshape(-1, ty, tx))
        arrays[f"{name}_total"] = (("y", "x"), tot[k].reshape(ty, tx))
        arrays[f"{name}_total_sd"] = (("y", "x"), tot_sd[k].reshape(ty, tx))
    write_tile(ctx.config.output.store, ysl, xsl, arrays)


def _stage_sums(infos):
    t = pd.DataFrame(list(infos.values()))
    return {k: float(t[k].sum()) for k in ("read_s", "pivot_s", "model_s", "write_s")} | {
        "pixels": int(t["pixels"].sum()), "pixel_hours": float((t["pixels"] * t["hours"]).sum()),
        "tile_peak_mb_max": float(t["tile_peak_mb"].max()), "tile_mb": float(t["tile_mb"].max()),
        # each worker's first tile also holds the XLA compilation: the steady state is the rest
        "tile_peak_mb_steady": _steady_peak(t)}


def _steady_peak(t: pd.DataFrame) -> float:
    rest = [g["tile_peak_mb"].to_numpy()[1:] for _, g in t.groupby("pid")]
    rest = np.concatenate(rest) if rest else np.array([])
    return float(rest.max()) if rest.size else float("nan")


def run(pixel_hours: float, hours: int, tmp: Path, scaling_tiles: int, reference_tiles: int, tile: int = 50):
    import jax

    from assimilation.maps import prepare, run_map
    from assimilation.maps.engine import compute_tile, plan_tiles
    k = tile // 50                      # copies of the 50 x 50 cube per tile side
    tiles_needed = max(1, int(np.ceil(pixel_hours / (tile * tile * hours))))
    ty = int(np.ceil(np.sqrt(tiles_needed)))
    tx = int(np.ceil(tiles_needed / ty))
    cfg = _config(tmp / "engine.zarr", hours, (ty * k, tx * k), tile=tile)
    t0 = time.perf_counter()
    ctx = prepare(cfg)
    prepare_s = time.perf_counter() - t0
    # warm-up (compile) on a scratch store, not timed
    warm = dataclasses.replace(ctx, config=ctx.config.replace(output__store=str(tmp / "warm.zarr"),
                                                             run__replicate=(1, 1)))
    run_map(warm.config, context=dataclasses.replace(warm, x=ctx.x[:tile], y=ctx.y[:tile],
                                                      lon=ctx.lon[:tile, :tile], lat=ctx.lat[:tile, :tile]),
            progress=False)
    res = run_map(cfg, context=ctx, progress=True)
    eng = _stage_sums(res.tiles)
    eng["seconds"] = res.info["run_s"]
    shutil.rmtree(tmp / "engine.zarr", ignore_errors=True)

    # the pyVPRM way on the first tiles (same inputs, same pivot, same write)
    ref_ctx = dataclasses.replace(ctx, config=ctx.config.replace(output__store=str(tmp / "ref.zarr")))
    run_map(ref_ctx.config, context=ref_ctx, progress=False, stop_after=0)   # the store template
    tiles = plan_tiles(len(ctx.y), len(ctx.x), (tile, tile))[:reference_tiles]
    t_ref = time.perf_counter()
    for tid, ysl, xsl in tiles:
        y, sd, tot, tot_sd = pyvprm_way_tile(ref_ctx, ysl, xsl)
        _write_like_engine(ref_ctx, ysl, xsl, y, sd, tot, tot_sd)
    ref_s = time.perf_counter() - t_ref
    got = compute_tile(ctx, tiles[0][1], tiles[0][2])[0]
    np.testing.assert_allclose(got["nee"][1].reshape(y.shape[1], -1), y[2], rtol=1e-4, atol=1e-4)
    ref_ph = reference_tiles * tile * tile * hours
    shutil.rmtree(tmp / "ref.zarr", ignore_errors=True)

    # weak scaling on a LocalCluster: 1 worker x K tiles, 2 workers x 2K tiles
    scaling = {}
    for workers in (1, 2):
        n = scaling_tiles * workers
        sc = _config(tmp / f"w{workers}.zarr", hours, (n * k, k), tile=tile, run__scheduler="local",
                     run__workers=workers)
        sctx = dataclasses.replace(ctx, config=sc, x=ctx.x[:tile], y=np.concatenate(
            [ctx.y[:tile] + j * tile * (ctx.y[1] - ctx.y[0]) for j in range(n)]),
            lon=np.tile(ctx.lon[:tile, :tile], (n, 1)), lat=np.tile(ctx.lat[:tile, :tile], (n, 1)))
        from distributed import Client, LocalCluster
        with LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None,
                          memory_limit="6GiB", silence_logs=40) as cluster, Client(cluster) as client:
            # warm-up: each worker compiles on one tile of a scratch store
            wctx = dataclasses.replace(sctx, config=sc.replace(output__store=str(tmp / f"wu{workers}.zarr"),
                                                               run__replicate=(workers * k, k)),
                                       y=sctx.y[:tile * workers], lon=sctx.lon[:tile * workers],
                                       lat=sctx.lat[:tile * workers])
            run_map(wctx.config, context=wctx, client=client, progress=False)
            r = run_map(sc, context=sctx, client=client, progress=False)
        scaling[workers] = {"tiles": n, "seconds": r.info["run_s"], "pixel_hours": r.info["pixel_hours"],
                            **_stage_sums(r.tiles)}
        shutil.rmtree(tmp / f"w{workers}.zarr", ignore_errors=True)
    eff = (scaling[2]["pixel_hours"] / scaling[2]["seconds"]) / (2 * scaling[1]["pixel_hours"] / scaling[1]["seconds"])

    per_pixel = (eng["read_s"] + eng["pivot_s"]) / eng["pixels"]
    per_ph = (eng["model_s"] + eng["write_s"]) / eng["pixel_hours"]
    workers = 2 * min(eff, 1.0)

    def france(h):
        return FRANCE_PIXELS * (per_pixel + h * per_ph) / workers
    return {"config": {"hours": hours, "grid": [len(ctx.y), len(ctx.x)], "tile": [tile, tile],
                       "jax": jax.__version__, "prepare_s": prepare_s},
            "engine": eng, "reference": {"tiles": reference_tiles, "seconds": ref_s, "pixel_hours": ref_ph},
            "scaling": scaling, "efficiency": eff, "per_pixel_s": per_pixel, "per_pixel_hour_s": per_ph,
            "france_day_s": france(24), "france_year_s": france(8760)}


def run_engine_only(pixel_hours: float, hours: int, tmp: Path, tile: int, workers: int):
    """The engine alone on a LocalCluster of ``workers`` (the >= 1e9 pixel-hour run): wall
    time end to end (prepare excluded), stage sums, memory, and the extrapolation with the
    parallelism measured in this run (sum of tile stage seconds / wall seconds)."""
    from assimilation.maps import prepare, run_map
    k = tile // 50
    tiles_needed = max(1, int(np.ceil(pixel_hours / (tile * tile * hours))))
    ty = int(np.ceil(np.sqrt(tiles_needed)))
    tx = int(np.ceil(tiles_needed / ty))
    cfg = _config(tmp / "big.zarr", hours, (ty * k, tx * k), tile=tile, run__scheduler="local", run__workers=workers)
    t0 = time.perf_counter()
    ctx = prepare(cfg)
    prepare_s = time.perf_counter() - t0
    res = run_map(cfg, context=ctx, progress=True)
    eng = _stage_sums(res.tiles)
    wall = res.info["run_s"]
    busy = sum(eng[k_] for k_ in ("read_s", "pivot_s", "model_s", "write_s"))
    per_pixel = (eng["read_s"] + eng["pivot_s"]) / eng["pixels"]
    per_ph = (eng["model_s"] + eng["write_s"]) / eng["pixel_hours"]
    par = busy / wall
    import shutil as _sh
    store_gb = sum(f.stat().st_size for f in (tmp / "big.zarr").rglob("*") if f.is_file()) / 1e9
    _sh.rmtree(tmp / "big.zarr", ignore_errors=True)
    return {"pixel_hours": eng["pixel_hours"], "wall_s": wall, "prepare_s": prepare_s, "workers": workers,
            "tiles": res.info["tiles"], "stages": eng, "parallelism": par, "store_gb": store_gb,
            "per_pixel_s": per_pixel, "per_pixel_hour_s": per_ph,
            "france_day_s": FRANCE_PIXELS * (per_pixel + 24 * per_ph) / par,
            "france_year_s": FRANCE_PIXELS * (per_pixel + 8760 * per_ph) / par}


def table_engine_only(r: dict) -> str:
    e = r["stages"]
    tot = sum(e[k] for k in ("read_s", "pivot_s", "model_s", "write_s"))
    out = ["| run | pixel-hours | wall s | pixel-hours/s | tiles | workers | store GB |", "|---|---|---|---|---|---|---|",
           f"| engine, LocalCluster | {r['pixel_hours']:.3g} | {r['wall_s']:.0f} | {r['pixel_hours'] / r['wall_s']:.3g} | "
           f"{r['tiles']} | {r['workers']} | {r['store_gb']:.1f} |", "",
           "| stage (summed over tiles) | s | share |", "|---|---|---|"]
    out += [f"| {k[:-2]} | {e[k]:.0f} | {e[k] / tot:.0%} |" for k in ("read_s", "pivot_s", "model_s", "write_s")]
    out += ["", f"Peak tile memory above the worker's resident memory: {e['tile_peak_mb_max']:.0f} MB (a worker's "
                f"first tile, with the compilation), {e['tile_peak_mb_steady']:.0f} MB in the other tiles, for "
                f"{e['tile_mb']:.0f} MB of tile output ({e['tile_peak_mb_steady'] / e['tile_mb']:.2f}x); measured "
                f"parallelism {r['parallelism']:.2f}.",
            f"Per pixel (read + pivot): {r['per_pixel_s'] * 1e6:.1f} us; per pixel-hour (model + write): "
            f"{r['per_pixel_hour_s'] * 1e9:.1f} ns.",
            f"Extrapolated at this run's parallelism: one France day at 100 m (5.5e7 px x 24 h) "
            f"{r['france_day_s'] / 60:.1f} min; one France year {r['france_year_s'] / 3600:.1f} h."]
    return "\n".join(out)


def table(r: dict) -> str:
    e, ref = r["engine"], r["reference"]
    eng_rate = e["pixel_hours"] / e["seconds"]
    ref_rate = ref["pixel_hours"] / ref["seconds"]
    s1, s2 = r["scaling"][1], r["scaling"][2]
    rows = [
        ("engine end to end (in process)", f"{e['pixel_hours']:.3g}", f"{e['seconds']:.1f}", f"{eng_rate:.3g}",
         f"{eng_rate / ref_rate:.1f}x"),
        ("pyVPRM way (NumPy, hour loop)", f"{ref['pixel_hours']:.3g}", f"{ref['seconds']:.1f}", f"{ref_rate:.3g}", "1"),
        ("LocalCluster, 1 worker", f"{s1['pixel_hours']:.3g}", f"{s1['seconds']:.1f}",
         f"{s1['pixel_hours'] / s1['seconds']:.3g}", ""),
        ("LocalCluster, 2 workers", f"{s2['pixel_hours']:.3g}", f"{s2['seconds']:.1f}",
         f"{s2['pixel_hours'] / s2['seconds']:.3g}", f"efficiency {r['efficiency']:.2f}"),
    ]
    out = ["| run | pixel-hours | s | pixel-hours/s | ratio |", "|---|---|---|---|---|"]
    out += ["| " + " | ".join(row) + " |" for row in rows]
    tot = sum(e[k] for k in ("read_s", "pivot_s", "model_s", "write_s"))
    out += ["", "| stage (engine) | s | share |", "|---|---|---|"]
    out += [f"| {k[:-2]} | {e[k]:.1f} | {e[k] / tot:.0%} |" for k in ("read_s", "pivot_s", "model_s", "write_s")]
    out += ["", f"Peak tile memory above the worker's resident memory: {e['tile_peak_mb_max']:.0f} MB (a worker's "
                f"first tile, with the compilation), {e['tile_peak_mb_steady']:.0f} MB in the other tiles, for "
                f"{e['tile_mb']:.0f} MB of tile output ({e['tile_peak_mb_steady'] / e['tile_mb']:.2f}x).",
            f"Per pixel (read + pivot): {r['per_pixel_s'] * 1e6:.1f} us; per pixel-hour (model + write): "
            f"{r['per_pixel_hour_s'] * 1e9:.1f} ns.",
            f"Extrapolated on 2 workers: one France day at 100 m (5.5e7 px x 24 h) {r['france_day_s'] / 60:.1f} min; "
            f"one France year {r['france_year_s'] / 3600:.1f} h."]
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="2 tiles x 48 h (seconds)")
    ap.add_argument("--pixel-hours", type=float, default=1e8, help="size of the engine run")
    ap.add_argument("--hours", type=int, default=744, help="map period (hours) of each pixel")
    ap.add_argument("--scaling-tiles", type=int, default=4, help="tiles per worker in the weak-scaling runs")
    ap.add_argument("--reference-tiles", type=int, default=1, help="tiles computed the pyVPRM way")
    ap.add_argument("--tile", type=int, default=100, help="tile side (pixels; a multiple of 50)")
    ap.add_argument("--engine-only", type=int, default=0, metavar="WORKERS",
                    help="only the engine on a LocalCluster of WORKERS (for the >= 1e9 pixel-hour run)")
    ap.add_argument("--tmp", default=None, help="scratch folder for the stores (default: a temporary one)")
    ap.add_argument("--write-results", action="store_true", help="append the table to RESULTS.md")
    a = ap.parse_args(argv)
    if a.quick:
        a.pixel_hours, a.hours, a.scaling_tiles, a.tile = 2 * 2500 * 48, 48, 1, 50
    tmp = Path(a.tmp or tempfile.mkdtemp(prefix="ecoflux_map_bench_"))
    try:
        if a.engine_only:
            r = run_engine_only(a.pixel_hours, a.hours, tmp, a.tile, a.engine_only)
        else:
            r = run(a.pixel_hours, a.hours, tmp, a.scaling_tiles, a.reference_tiles, a.tile)
    finally:
        if a.tmp is None:
            shutil.rmtree(tmp, ignore_errors=True)
    text = table_engine_only(r) if a.engine_only else table(r)
    print(text)
    if a.write_results:
        res = Path(__file__).with_name("RESULTS.md")
        stamp = pd.Timestamp.now(tz="UTC").strftime("%Y-%m-%d")
        n = r["pixel_hours"] if a.engine_only else r["engine"]["pixel_hours"]
        res.write_text(res.read_text().rstrip() + f"\n\n### Regional map engine ({stamp}, {n:.3g} "
                       f"pixel-hours, {a.hours} h per pixel)\n\n" + text + "\n")
    return 0


if __name__ == "__main__":
    main()
