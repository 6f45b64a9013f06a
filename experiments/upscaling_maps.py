"""Upscaling maps (issue 13, item 5): daily NEE/GPP/Reco with uncertainty from the ML upscaling
models through the regional map engine's daily mode, over the shipped Sentinel-2 cubes, with
budgets per land-cover class.

* **Models** (:mod:`emulator.upscaling`): LightGBM trees (the FLUXCOM-X baseline; Nelson et
  al. 2024, BG 21:5079) and, in full mode, the hybrid network -> VPRM (Tsai et al. 2021),
  fitted on the shipped towers (:func:`emulator.upscaling.training_table`: CH-Dav, DE-Tha,
  AT-Neu, FR-Pue by default).
* **Romania, 10 m** (``experiments/configs/romania_s2.toml``): EVI, NDVI and NIRv from the
  10 m bands (B2, B4, B8) of the 10 m cube, LSWI from the 20 m B8A/B11 of the 20 m cube on
  the 2 x 2 10 m pixels it covers (SWIR exists at 20 m only), clear where both cubes' SCL
  say so; HRL tree-cover density (20 m) -> deciduous forest / grassland fractions on the
  same 2 x 2 pixels. Daily Kalman pivot with sd, as in the hourly engine.
* **France, 20 m** (``experiments/configs/france_s2.toml``): the 10 x 10-pixel Rhone-valley
  series has 20 m bands only (no B2, no B8: EVI2 is the greenness); EVI-phenology land cover.

Both use CH-Dav tower meteorology as a stand-in, uniform over the domain (as the configs
state): the maps show the satellite-driven spatial pattern, not local weather. No soil
moisture map exists for the cubes: ``has_soil_water = 0`` in every row (the models learned
that case at towers without soil moisture); nor fAPAR: ``has_fapar = 0``.

Per pixel and day: the model's predictive sd, plus the pivot's (divided differences at +-1
sd of greenness and LSWI); GPP, Reco, NEE made consistent (NEE = Reco - GPP) by the
minimum-variance projection of :func:`assimilation.maps.daily.balance_fluxes` for the
trees (which predict the three separately). Budgets: area-mean period totals (g C m-2),
region totals (t C), and rates scaled to a year (x 365.25 / days: an annual budget only for
a whole-year run).

Run: ``python -m experiments.upscaling_maps [--quick]`` (quick: trees, a 40 x 40-pixel
10 m Romania corner and the France cube for 14 July days, about 1-2 min on 2 cores; full:
trees and hybrid, the whole 100 x 100-pixel 10 m Romania cube for 2019 and France for 2018).
From Python: ``run(out_dir, quick)`` returns the metrics.
"""
from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import xarray as xr

from experiments.report import enable_float64, markdown_table, parse_settings, save_figure, write_metrics, write_report

CONFIGS = Path(__file__).resolve().parent / "configs"
S2_FOLDER = "s2-l2a_cubes_nrt_romania-france"
ROMANIA_10M = "sentinel2_cube_subset_romania_10m.nc.gz"
ROMANIA_20M = "sentinel2_cube_subset_romania_20m.nc.gz"


@dataclass(frozen=True)
class Settings:
    out: str = "experiments/output/upscaling_maps"
    models: str = "trees,hybrid"
    sites: str = "CH-Dav,DE-Tha,AT-Neu,FR-Pue"
    n_estimators: int = 200
    hybrid_steps: int = 600
    hybrid_members: int = 3
    hybrid_hidden: int = 32
    romania_start: str = "2019-01-01"
    romania_end: str = "2020-01-01"
    romania_window: str = ""
    """"y0,y1,x0,x1" on the 10 m grid ("" = the whole cube)."""
    france_start: str = "2018-01-01"
    france_end: str = "2019-01-01"
    tile: int = 50
    fit_steps: int = 150
    cache: str = ""
    """Folder of the training-table cache (default <out>/tables)."""
    seed: int = 0

    @classmethod
    def quick(cls) -> "Settings":
        return cls(models="trees", n_estimators=100, romania_start="2019-07-01", romania_end="2019-07-15",
                   romania_window="0,40,0,40", france_start="2018-07-01", france_end="2018-07-15", tile=20,
                   fit_steps=60)


# --- inputs ------------------------------------------------------------------------------

def _up2(a: np.ndarray) -> np.ndarray:
    """A 20 m (.., y, x) array on the 2 x 2 10 m pixels each 20 m pixel covers."""
    return np.repeat(np.repeat(a, 2, axis=-2), 2, axis=-1)


def romania_10m(cfg):
    """Per-date pivot indices on the 10 m grid of the Romania cube and the tree-cover class
    fractions on it: ``(observations, fractions)`` for :func:`assimilation.maps.run_map`.
    EVI (Huete et al. 2002), NDVI, NIRv from the 10 m B2/B4/B8; LSWI (Xiao et al. 2004) from
    the 20 m B8A/B11 repeated on the 2 x 2 nested 10 m pixels (checked: the 10 m centres lie
    +-5 m from the 20 m centres); masked where either cube's SCL is not clear."""
    from assimilation.maps import class_fractions, read_sentinel2_l2a, satellite_observations
    from assimilation.maps.sources import check_observations
    from process_models.satellite import indices as ix
    from process_models.units import DataValidationError
    from process_models.vprm import VPRMModel
    s = cfg.satellite
    p10, p20 = cfg.resolve(S2_FOLDER, ROMANIA_10M), cfg.resolve(S2_FOLDER, ROMANIA_20M)
    r10 = read_sentinel2_l2a([p10], s.scale_factor, crs=s.crs, needed=("blue", "red", "nir"))
    r20 = read_sentinel2_l2a([p20], s.scale_factor, crs=s.crs, needed=("nir08", "swir16"))
    dims = r10["red"].dims
    if dims != ("time", "y", "x") or r20["swir16"].dims != dims:
        raise DataValidationError(f"band dims {dims}, expected (time, y, x).", source=str(p10), variable="B4",
                                  fix="transpose the cube to (time, y, x).")
    x10, y10, x20, y20 = (np.asarray(v, float) for v in (r10.x, r10.y, r20.x, r20.y))
    nested = (x10.size == 2 * x20.size and y10.size == 2 * y20.size
              and np.allclose(x10, np.repeat(x20, 2) + np.tile([-5.0, 5.0], x20.size), atol=1.0)
              and np.allclose(y10, np.repeat(y20, 2) + np.tile([5.0, -5.0], y20.size), atol=1.0))
    if not nested or not np.array_equal(r10.time.values, r20.time.values):
        raise DataValidationError("the 10 m pixels do not nest in the 20 m grid (or the dates differ).",
                                  source=str(p20), variable="x", fix="use the cube pair of one export.")
    clear = r10["clear"].values & _up2(r20["clear"].values)
    b = {k: r10[k].values for k in ("blue", "red", "nir")}
    coords = {"time": r10.time.values, "y": y10, "x": x10}
    evi = np.asarray(ix.evi(b["nir"], b["red"], b["blue"]))
    out = {"evi": np.where(clear & np.isfinite(evi) & (evi >= -0.2) & (evi <= 1.0), evi, np.nan),
           "ndvi": np.asarray(ix.ndvi(b["nir"], b["red"])), "nirv": np.asarray(ix.nirv(b["nir"], b["red"])),
           "lswi": np.asarray(ix.lswi(_up2(r20["nir08"].values), _up2(r20["swir16"].values)))}
    for k in ("ndvi", "nirv", "lswi"):
        out[k] = np.where(clear & np.isfinite(out[k]), out[k], np.nan)
    obs = xr.Dataset({k: (("time", "y", "x"), v, {"units": "1"}) for k, v in out.items()}, coords=coords,
                     attrs={**r10.attrs, "source_files": f"{ROMANIA_10M}; {ROMANIA_20M} (LSWI)"})
    obs = check_observations(obs, list(s.indices), str(p10))
    class_ids = tuple(VPRMModel(table=cfg.model.table).default_params().rules.class_ids)
    f20 = class_fractions(cfg, satellite_observations(cfg), class_ids).transpose("y", "x", "vprm_class")
    frac = xr.DataArray(np.repeat(np.repeat(f20.values, 2, axis=0), 2, axis=1), dims=("y", "x", "vprm_class"),
                        coords={"y": y10, "x": x10, "vprm_class": f20["vprm_class"].values})
    return obs, frac


def fit_models(st: Settings, out: Path) -> tuple[dict, dict]:
    """The upscaling models fitted on the training towers, and their fit times (s)."""
    from emulator.upscaling import NetConfig, TreeConfig, make_model, training_table
    from emulator.upscaling.models import STATE_FEATURES
    sites = [s.strip() for s in st.sites.split(",") if s.strip()]
    t0 = time.perf_counter()
    table = training_table(sites, cache_dir=st.cache or str(out / "tables"))
    times = {"training_table": time.perf_counter() - t0}
    models = {}
    for name in [m.strip() for m in st.models.split(",") if m.strip()]:
        t0 = time.perf_counter()
        net = NetConfig(members=st.hybrid_members, hidden=(st.hybrid_hidden,), steps=st.hybrid_steps,
                        features=STATE_FEATURES, seed=st.seed, eval_every=max(st.hybrid_steps // 15, 10))
        m = make_model(name, tree=TreeConfig(n_estimators=st.n_estimators, seed=st.seed), net=net)
        models[name] = m.fit(table, checkpoint_dir=None if name == "trees" else out / "checkpoints" / name)
        times[name] = time.perf_counter() - t0
    return models, times


# --- maps ----------------------------------------------------------------------------------

def run_region(region: str, kind: str, model, st: Settings, out: Path) -> dict:
    """One daily map (region x model) through the engine; its store, budgets and numbers."""
    from assimilation.maps import load_config, open_map, run_map
    over = dict(model__name="upscaling", daily__upscaling=kind, run__scheduler="inprocess",
                run__tile=(st.tile, st.tile), run__fit_steps=st.fit_steps, run__seed=st.seed,
                output__store=str(out / f"{region}_{kind}.zarr"), output__overwrite=True)
    if region == "romania":
        over.update(run__start=st.romania_start, run__end=st.romania_end)
        if st.romania_window:
            over["run__window"] = tuple(int(v) for v in st.romania_window.split(","))
        cfg = load_config(CONFIGS / "romania_s2.toml", **over)
        obs, frac = romania_10m(cfg)
        kw = {"observations": obs, "fractions": frac}
    else:
        over.update(run__start=st.france_start, run__end=st.france_end)
        cfg = load_config(CONFIGS / "france_s2.toml", **over)
        kw = {}
    t0 = time.perf_counter()
    res = run_map(cfg, model=model, progress=False, **kw)
    seconds = time.perf_counter() - t0
    ds = open_map(res.store).load()
    pixel_days = int(ds.sizes["time"] * ds.sizes["y"] * ds.sizes["x"])
    b = res.budgets
    dom = b[b.region == "domain"]
    resid = float(np.nanmax(np.abs(ds["nee"] - (ds["reco"] - ds["gpp"]))))
    return {"store": str(res.store), "seconds": seconds, "run_s": res.info["run_s"], "prepare_s": res.info["prepare_s"],
            "pixel_days": pixel_days, "pixel_days_per_s": pixel_days / res.info["run_s"],
            "grid_m": float(abs(ds.x[1] - ds.x[0])), "shape": [int(ds.sizes["y"]), int(ds.sizes["x"])],
            "days": int(ds.sizes["time"]), "finite": bool(np.isfinite(ds["nee"]).all() & np.isfinite(ds["nee_sd"]).all()),
            "max_balance_residual": resid, "mean_nee_sd": float(ds["nee_sd"].mean()),
            "budgets": dom.drop(columns=["region"]).set_index("class").to_dict("index"),
            "budget_rows": b.to_dict("records")}


def map_figure(region, kind, store, out, figs):
    from assimilation.maps import open_map
    ds = open_map(store).load()
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.6))
    panels = [("nee", "mean NEE", "RdBu_r"), ("gpp", "mean GPP", "Greens"), ("reco", "mean Reco", "Oranges"),
              ("nee_sd", "mean NEE sd", "viridis")]
    for ax, (v, title, cmap) in zip(axes, panels):
        a = ds[v].mean("time")
        kw = {"vmin": -float(np.abs(a).max()), "vmax": float(np.abs(a).max())} if v == "nee" else {}
        im = ax.imshow(a.values, cmap=cmap, **kw)
        ax.set_title(f"{title} (umol m-2 s-1)", fontsize=9)
        ax.set_xticks([]), ax.set_yticks([])
        fig.colorbar(im, ax=ax, shrink=0.8)
    dx = float(abs(ds.x[1] - ds.x[0]))
    fig.suptitle(f"{region}, {kind}: daily maps at {dx:.0f} m, {str(ds.time.values[0])[:10]} .. "
                 f"{str(ds.time.values[-1])[:10]}", fontsize=10)
    save_figure(fig, out, f"map_{region}_{kind}", figs)

    fig, ax = plt.subplots(figsize=(8, 3.4))
    t = pd.DatetimeIndex(ds.time.values)
    for v, c in (("gpp", "tab:green"), ("reco", "tab:orange"), ("nee", "k")):
        m, s = ds[v].mean(("y", "x")).values, ds[f"{v}_sd"].mean(("y", "x")).values
        ax.plot(t, m, color=c, label=v.upper() if v != "reco" else "Reco")
        ax.fill_between(t, m - s, m + s, color=c, alpha=0.2, lw=0)
    ax.axhline(0, color="0.6", lw=0.5)
    ax.set_ylabel("umol m-2 s-1 (domain mean, +-1 sd)")
    ax.legend(fontsize=8, ncol=3)
    ax.set_title(f"{region}, {kind}: daily domain means", fontsize=10)
    fig.autofmt_xdate()
    save_figure(fig, out, f"series_{region}_{kind}", figs)


def budget_frame(metrics: dict) -> pd.DataFrame:
    rows = []
    for key, m in metrics["maps"].items():
        region, kind = key.split("/")
        for cls, r in m["budgets"].items():
            rows.append({"region": region, "model": kind, "class": cls, "pixels": r["pixels"],
                         "area km2": r["area_km2"], "NEE g C m-2": r["nee_g_c_m2"],
                         "NEE sd (indep.)": r["nee_sd_independent"], "NEE sd (corr.)": r["nee_sd_correlated"],
                         "GPP g C m-2": r["gpp_g_c_m2"], "Reco g C m-2": r["reco_g_c_m2"], "NEE t C": r["nee_t_c"],
                         "NEE g C m-2 yr-1": r["nee_g_c_m2_yr"]})
    return pd.DataFrame(rows)


def run_settings(st: Settings) -> dict:
    out = Path(st.out)
    out.mkdir(parents=True, exist_ok=True)
    figs: list = []
    t0 = time.perf_counter()
    models, fit_s = fit_models(st, out)
    metrics = {"settings": asdict(st), "fit_s": fit_s, "maps": {}}
    for kind, model in models.items():
        for region in ("romania", "france"):
            m = run_region(region, kind, model, st, out)
            metrics["maps"][f"{region}/{kind}"] = {k: v for k, v in m.items() if k != "budget_rows"}
            pd.DataFrame(m["budget_rows"]).to_csv(out / f"budgets_{region}_{kind}.csv", index=False)
            map_figure(region, kind, m["store"], out, figs)
    metrics["seconds"] = time.perf_counter() - t0
    write_metrics(out, metrics)
    tab = budget_frame(metrics)
    speed = pd.DataFrame([{"map": k, "grid m": m["grid_m"], "pixels": m["shape"][0] * m["shape"][1], "days": m["days"],
                           "pixel-days per s": m["pixel_days_per_s"], "engine s": m["run_s"],
                           "max |NEE - (Reco - GPP)|": m["max_balance_residual"]} for k, m in metrics["maps"].items()])
    sections = [
        "## Daily upscaling maps (issue 13, item 5)\n\n" + re.sub(r"(?m)^\* ", "- ", __doc__.split("\n\n")[1])
        .replace("``", "`").replace(":mod:", "").replace(":func:", "") + "\n",
        f"Models fitted on {st.sites} ({', '.join(f'{k} {v:.0f} s' for k, v in fit_s.items())}).\n\n"
        "### Budgets per land-cover class (domain)\n\nPeriod totals (g C m-2, t C) with the sd of the area "
        "mean for pixel errors independent and fully correlated; `NEE g C m-2 yr-1` is the period's rate x "
        "365.25 / days (an annual budget only for a whole-year run).\n\n" + markdown_table(tab, ".3g"),
        "### Engine throughput (in process, 2 shared cores: lower bounds)\n\n" + markdown_table(speed, ".3g")]
    write_report(out, "Upscaling maps", sections, figs)
    return metrics


def run(out_dir, quick: bool = True) -> dict:
    """The maps (quick or full settings) into ``out_dir``; returns the metrics (also in
    ``out_dir/metrics.json``). Float64 is switched on (as in the studies)."""
    enable_float64()
    st = Settings.quick() if quick else Settings()
    return run_settings(replace(st, out=str(out_dir)))


def main(argv=None) -> dict:
    st = parse_settings(Settings, argv, __doc__.split("\n\n")[0])
    enable_float64()
    m = run_settings(st)
    print(json.dumps({k: {kk: m["maps"][k][kk] for kk in ("pixel_days", "run_s", "max_balance_residual")}
                      for k in m["maps"]}, indent=1))
    return m


if __name__ == "__main__":
    main()
