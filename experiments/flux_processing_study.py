"""Flux-tower processing study: QC, u* threshold, MDS gap filling, night- and day-time
partitioning and random error on real towers, validated against the reference products.

Methods (``assimilation.observations.flux``): MAD despiking and the moving-point u*
threshold with bootstrap (Papale et al. 2006, Biogeosciences 3, 571), marginal
distribution sampling gap filling and night-time partitioning (Reichstein et al. 2005,
Glob. Change Biol. 11, 1424), day-time partitioning (Lasslop et al. 2010, Glob. Change
Biol. 16, 187), the flux-magnitude random-error model from 24-h paired differences
(Hollinger & Richardson 2005, Tree Physiol. 25, 873; Richardson et al. 2006, Agric. For.
Meteorol. 136, 1).

* **DE-Tha 1998** (REddyProc example, Tharandt spruce): (a) MDS of the FLUXNET file's own
  measured NEE vs its gap-filled ``NEE_f``; (b) hesseflux ``test_gapfill.csv`` through the
  quality-flag path; (c) the full pipeline from the raw text file, with the MDS SD
  compared to REddyProc's published ``NEE_uStar_fsd`` statistics.
* **CH-Dav 2013-2022** (ETH processing with REddyProc; ``--quick``: 2021 only): the pipeline
  on ETH's u*-filtered NEE vs their gap-filled NEE and their night-time and day-time
  GPP/Reco, half-hourly and daily sums.

Targets: gap-filled NEE R2 >= 0.95 on the filled records; night-time GPP daily R2 >= 0.95.

Run: ``python -m experiments.flux_processing_study [--quick] [--out DIR]``.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from experiments.report import (Expected, enable_float64, markdown_table, parse_settings,
                                save_figure, write_metrics, write_report)
from experiments.sites import get_site


@dataclass(frozen=True)
class Settings:
    out: str = "experiments/output/flux_processing_study"
    n_bootstrap: int = 100
    seed: int = 0
    davos_first_year: str = "2013"
    davos_last_year: str = "2022"

    @classmethod
    def quick(cls) -> "Settings":
        return cls(n_bootstrap=10, davos_first_year="2021", davos_last_year="2021")


# Measured with the quick settings in float64. R2 tolerance 0.005 (1), E0 3 K, u* 0.01 m s-1:
# round-off in the vmapped window fits can move a window's best three E0 fits.
EXPECTED_QUICK = (
    Expected("r2/tha_mds_reference", 0.9868, 0.005, "DE-Tha MDS vs NEE_f, filled records R2"),
    Expected("r2/tha_mds_reference_daily", 0.9968, 0.005, "DE-Tha MDS vs NEE_f, daily sums R2"),
    Expected("r2/tha_hesseflux_flags", 0.9651, 0.005, "DE-Tha hesseflux flags path R2"),
    Expected("r2/tha_pipeline", 0.9356, 0.005, "DE-Tha full pipeline vs NEE_f R2"),
    Expected("r2/dav_nee", 0.9906, 0.005, "CH-Dav gap-filled NEE vs ETH, filled records R2"),
    Expected("r2/dav_gpp_nt_daily", 0.9669, 0.005, "CH-Dav night-time GPP daily R2"),
    Expected("r2/dav_reco_nt_daily", 0.9488, 0.005, "CH-Dav night-time Reco daily R2"),
    Expected("r2/dav_gpp_dt_daily", 0.9190, 0.005, "CH-Dav day-time GPP daily R2"),
    Expected("tha/ustar_threshold", 0.368, 0.01, "DE-Tha 1998 u* threshold (m s-1)"),
    Expected("tha/e0", 159.7, 3.0, "DE-Tha 1998 E0 (K)"),
    Expected("dav/e0", 125.5, 3.0, "CH-Dav 2021 E0 (K)"),
)

WHY_DIFFERENT = """## Why the numbers differ from the references

* **MDS** reproduces REddyProc's cascade (windows, tolerances, strict inequalities, minimum two
  records, quality classes); at CH-Dav about 98 % of filled values are identical to ETH's. The
  rest: ETH used their own gap-filled meteorological inputs (`Rg_f`, `Tair_f`, `VPD_f`) and
  possibly a different data length (window edges at the ends of the series). At DE-Tha the
  FLUXNET `NEE_f` was made from a slightly different data version (3 % of the measured values
  differ from the text file; Rg differs by up to 130 W m-2), so only ~30 % of the fills are
  identical.
* **Night-time partitioning**: E0 is taken per calendar year (REddyProc takes one E0 per call);
  the windowed E0 fits are noisy (SE 20-80 K) so the three-best average differs between
  implementations; R_ref windows are placed at the mean time of their night records like
  REddyProc's `MeanHour`. Daily GPP agrees better than Reco because GPP = Reco - NEE shares
  the (identical) filled NEE.
* **Day-time partitioning** agrees least: the 4-day windows at CH-Dav hold only 60-80 measured
  day-time records (67 % of NEE is missing), so (alpha, beta0, k, rb) are weakly identified;
  REddyProc adds parameter priors, bootstraps and a different E0 source. We hold the annual
  night-time E0 fixed and put a Gaussian prior on rb (the night-time R_ref, 30 % SD); windows
  are then interpolated linearly. The remaining scatter is window-to-window noise of rb and
  beta0, largest in winter, so Reco_DT agrees less than GPP_DT: use GPP_DT as a soft
  constraint only.
* **u* threshold**: seasons are JFM/AMJ/JAS/OND (ONEFlux; Pastorello et al. 2020, Sci. Data 7,
  225) and the plateau criterion is 99 % (Papale et al. 2006); REddyProc uses DJF-based
  seasons and 95 %, which gives lower thresholds."""


def fingerprint(ax, values, times, title, cmap="RdBu_r", vlim=None):
    """Day-of-year x half-hour image of ``values`` (white = missing)."""
    s = pd.Series(np.asarray(values, float), index=pd.DatetimeIndex(times))
    img = s.groupby([s.index.day_of_year, s.index.hour * 2 + s.index.minute // 30]).mean().unstack()
    v = vlim or np.nanpercentile(np.abs(img.values), 98)
    im = ax.imshow(img.values.T, aspect="auto", origin="lower", cmap=cmap, vmin=-v, vmax=v,
                   extent=[1, img.shape[0], 0, 24], interpolation="nearest")
    ax.set(title=title, xlabel="day of year", ylabel="hour")
    return im


def tharandt(st: Settings, figs: list) -> tuple[dict, dict]:
    from assimilation.observations.flux import (agreement, daily_agreement, mds_gapfill, process_tower,
                                                read_tharandt_reference, select_valid)
    from process_models.io import data_path, read_reddyproc_text
    folder = get_site("DE-Tha").folder
    ds = read_reddyproc_text(data_path(folder, "Example_DETha98.txt"))
    nee_ref, nee_f_ref = read_tharandt_reference(data_path(folder, "Example_DE-Tha.1996.1998.hourly_selVars.nc"))
    gaps_ref = ~np.isfinite(nee_ref)
    r = mds_gapfill(nee_ref, ds.shortwave_in.values, ds.air_temperature.values, ds.vpd.values)
    gf = read_reddyproc_text(data_path(folder, "test_gapfill.csv"))
    valid = select_valid(gf.nee.values, gf.nee_qc.values, good_flags=(1,))
    r2 = mds_gapfill(np.where(valid, gf.nee.values, np.nan), gf.shortwave_in.values,
                     gf.air_temperature.values, gf.vpd.values)
    t0 = time.time()
    res = process_tower(ds, n_bootstrap=st.n_bootstrap, seed=st.seed)
    rows = {
        "tha_mds_reference": ("DE-Tha 1998", "MDS of reference-measured NEE vs FLUXNET NEE_f "
                              "(reference-filled records)", agreement(r.filled, nee_f_ref, gaps_ref)),
        "tha_mds_reference_daily": ("DE-Tha 1998", "same, daily sums (gC m-2 d-1)",
                                    daily_agreement(r.filled, nee_f_ref, ds.time.values)),
        "tha_hesseflux_flags": ("DE-Tha 1998 (hesseflux test_gapfill.csv)", "MDS with qcNEE flags vs "
                                "FLUXNET NEE_f (gaps in both)",
                                agreement(r2.filled, nee_f_ref, ~valid & gaps_ref)),
        "tha_pipeline": ("DE-Tha 1998", "full pipeline from text (own despiking + u* filter) vs FLUXNET "
                         "NEE_f (records gap-filled by us)",
                         agreement(res.nee_filled.values, nee_f_ref, res.nee_qc.values > 0)),
    }
    fsd = res.nee_fsd.values
    info = {"ustar_threshold": float(res.ustar_threshold.values[0]),
            **{f"ustar_{q}": float(res[f"ustar_threshold_{q}"].values[0]) for q in ("p05", "p50", "p95")},
            "fsd_quartiles_mean": [float(x) for x in (*np.nanpercentile(fsd, [25, 50, 75]), np.nanmean(fsd))],
            "random_error_model": res.attrs.get("random_error_model"),
            "e0": float(np.nanmean(res.e0_nt.values)),
            "e0_by_year": str(res.attrs.get("e0_by_year")), "runtime_s": time.time() - t0}
    fig, axs = plt.subplots(1, 3, figsize=(15, 4))
    fingerprint(axs[0], res.nee_measured.values, ds.time.values, "DE-Tha 1998 NEE used (white = gap)", vlim=15)
    fingerprint(axs[1], res.nee_filled.values, ds.time.values, "MDS gap-filled NEE", vlim=15)
    im = fingerprint(axs[2], res.nee_qc.values, ds.time.values, "fill quality (0-3)", cmap="viridis")
    im.set_clim(0, 3)
    fig.colorbar(im, ax=axs[2])
    save_figure(fig, st.out, "fingerprint_de-tha.png", figs)
    fig, ax = plt.subplots(1, 2, figsize=(10, 4.5))
    ax[0].plot(nee_f_ref[gaps_ref], r.filled[gaps_ref], ".", ms=2, alpha=0.4)
    ax[0].plot([-30, 15], [-30, 15], "k-", lw=0.8)
    ax[0].set(xlabel="FLUXNET NEE_f (umol m-2 s-1)", ylabel="ecoflux MDS", title="DE-Tha 1998, reference-filled records")
    ax[1].hist(fsd[np.isfinite(fsd)], bins=60)
    ax[1].set(xlabel="MDS SD (fsd), umol m-2 s-1", title="random error proxy (REddyProc median 2.33)")
    save_figure(fig, st.out, "filled_vs_reference_de-tha.png", figs)
    return rows, info


def davos(st: Settings, figs: list) -> tuple[dict, dict]:
    from assimilation.observations.flux import agreement, daily_agreement, process_tower
    from process_models.io import data_path, read_diive_parquet
    d = read_diive_parquet(data_path(*get_site("CH-Dav").path)).sel(
        time=slice(st.davos_first_year, st.davos_last_year))
    years = st.davos_first_year + ("" if st.davos_first_year == st.davos_last_year else f"-{st.davos_last_year}")
    label, tm, gaps = f"CH-Dav {years}", d.time.values, ~np.isfinite(d.nee.values)
    t0 = time.time()
    res = process_tower(d, ustar_threshold=None, despike=False)
    runtime = time.time() - t0
    rows = {"dav_nee": (label, "gap-filled NEE vs ETH/REddyProc NEE_CUT_REF_f (filled records)",
                        agreement(res.nee_filled.values, d.nee_filled.values, gaps)),
            "dav_nee_daily": (label, "gap-filled NEE, daily sums (gC m-2 d-1)",
                              daily_agreement(res.nee_filled.values, d.nee_filled.values, tm))}
    for ours, ref, name in (("gpp_nt", "gpp", "GPP night-time"), ("reco_nt", "reco", "Reco night-time"),
                            ("gpp_dt", "gpp_dt", "GPP day-time"), ("reco_dt", "reco_dt", "Reco day-time")):
        rows[f"dav_{ours}"] = (label, f"{name} vs ETH", agreement(res[ours].values, d[ref].values))
        rows[f"dav_{ours}_daily"] = (label, f"{name} vs ETH, daily sums (gC m-2 d-1)",
                                     daily_agreement(res[ours].values, d[ref].values, tm))
    sub = res.sel(time=st.davos_last_year)
    fig, axs = plt.subplots(1, 2, figsize=(10, 4))
    fingerprint(axs[0], sub.nee_measured.values, sub.time.values, f"CH-Dav {st.davos_last_year} NEE used", vlim=12)
    fingerprint(axs[1], sub.nee_filled.values, sub.time.values, "MDS gap-filled", vlim=12)
    save_figure(fig, st.out, "fingerprint_ch-dav.png", figs)
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(d.nee_filled.values[gaps], res.nee_filled.values[gaps], ".", ms=1, alpha=0.3)
    ax.plot([-30, 20], [-30, 20], "k-", lw=0.8)
    ax.set(xlabel="ETH NEE_CUT_REF_f", ylabel="ecoflux MDS", title=f"{label}: filled records")
    save_figure(fig, st.out, "filled_vs_reference_ch-dav.png", figs)
    daily = lambda v: pd.Series(np.asarray(v, float), index=pd.DatetimeIndex(tm)).resample(  # noqa: E731
        "D").mean() * 12.011e-6 * 86400
    fig, axs = plt.subplots(2, 1, figsize=(12, 7), sharex=True)
    for ax, (o, r, n) in zip(axs, (("gpp_nt", "gpp", "GPP night-time"), ("gpp_dt", "gpp_dt", "GPP day-time"))):
        ax.plot(daily(d[r].values), "k-", lw=0.8, label="ETH (REddyProc)")
        ax.plot(daily(res[o].values), "C1-", lw=0.8, alpha=0.8, label="ecoflux")
        ax.set_ylabel(f"{n} (gC m-2 d-1)")
        ax.legend(loc="upper left")
    save_figure(fig, st.out, "gpp_daily_ch-dav.png", figs)
    return rows, {"runtime_s": runtime, "e0": float(np.nanmean(res.e0_nt.values)),
                  "e0_by_year": str(res.attrs.get("e0_by_year")),
                  "random_error_model": res.attrs.get("random_error_model")}


def main(argv=None) -> dict:
    st = parse_settings(Settings, argv, __doc__.split("\n\n")[0])
    enable_float64()
    Path(st.out).mkdir(parents=True, exist_ok=True)
    figs: list = []
    rows_t, tha = tharandt(st, figs)
    rows_d, dav = davos(st, figs)
    rows = {**rows_t, **rows_d}
    df = pd.DataFrame([{"key": k, "site": s, "comparison": c, "resolution": "daily" if "daily" in k else
                        "half-hourly", **a} for k, (s, c, a) in rows.items()])
    df.to_csv(Path(st.out) / "metrics.csv", index=False)
    target_nee = min(rows[k][2]["r2"] for k in ("tha_mds_reference", "dav_nee"))
    target_gpp = rows["dav_gpp_nt_daily"][2]["r2"]
    metrics = {"settings": asdict(st), "r2": {k: a["r2"] for k, (_, _, a) in rows.items()},
               "rows": {k: a for k, (_, _, a) in rows.items()}, "tha": tha, "dav": dav,
               "targets": {"nee_r2_min": target_nee, "gpp_nt_daily_r2": target_gpp}}
    ok = lambda x: "met" if x >= 0.95 else "NOT met"  # noqa: E731
    q = tha["fsd_quartiles_mean"]
    sections = [
        "Pipeline: `assimilation.observations.flux.process_tower` (QC, MAD despiking, moving-point "
        "u* threshold with bootstrap, MDS gap filling, random error, night-time and day-time "
        "partitioning). References: FLUXNET DE-Tha 1998 `NEE_f` (shipped with REddyProc), hesseflux "
        "`test_gapfill.csv`, ETH/REddyProc CH-Dav processing (diive example data).",
        f"## Targets\n\n* gap-filled NEE R2 >= 0.95 on the filled records: **{target_nee:.3f}** (min over "
        f"the reference comparisons) -> {ok(target_nee)}\n* night-time GPP daily R2 >= 0.95: "
        f"**{target_gpp:.3f}** -> {ok(target_gpp)}",
        "## Validation table (bias = ecoflux - reference; daily sums in gC m-2 d-1)\n\n"
        + markdown_table(df.drop(columns="key"), ".3f"),
        f"## DE-Tha pipeline diagnostics\n\n* u* threshold 1998: {tha['ustar_threshold']:.3f} m s-1 "
        f"(bootstrap 5/50/95 %: {tha['ustar_p05']:.3f} / {tha['ustar_p50']:.3f} / {tha['ustar_p95']:.3f}).\n"
        f"* MDS SD (fsd) quartiles / mean: {q[0]:.2f} / {q[1]:.2f} / {q[2]:.2f}, mean {q[3]:.2f} umol m-2 s-1; "
        "REddyProc's `NEE_uStar_fsd` for the same example: 1.70 / 2.33 / 3.44, mean 2.74.\n"
        f"* Random-error model (24-h paired differences, Laplace ML): {tha['random_error_model']}.\n"
        f"* E0 (night-time, K): {tha['e0_by_year']}. Runtime {tha['runtime_s']:.1f} s.",
        f"## CH-Dav diagnostics\n\n* E0 per year (K): {dav['e0_by_year']}.\n* Random-error model: "
        f"{dav['random_error_model']}. Runtime {dav['runtime_s']:.1f} s.",
        WHY_DIFFERENT,
    ]
    write_metrics(st.out, metrics)
    path = write_report(st.out, "Flux-tower processing study", sections, figs, EXPECTED_QUICK, metrics, settings=st)
    print(path.read_text())
    return metrics


if __name__ == "__main__":
    main()
