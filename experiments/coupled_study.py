"""Coupled soil-moisture / photosynthesis model with default parameters at four European
sites: CH-Dav 2013-2022 (2018 and 2022 droughts), FR-Hes 2016 (soil-water profiles), BE-Vie
2014 (satellite LAI forcing) and the ISMN FR-Aqui soil-moisture station.

No parameter is calibrated: every run uses ``process_models.coupled.load_parameters(pft,
soil_texture)``. Observations are used only for scoring. Driver gaps are filled with
``process_models.bmi._forcing.fill_gaps`` (linear <= 2 h, else mean diurnal cycle of 15 days;
counts in the report). Metrics: R2 (squared Pearson r), RMSE and bias (model - obs) of
half-hourly and daily means (days with >= 24 observed half-hours).

Run: ``python -m experiments.coupled_study [--quick] [--out DIR]``; ``--quick`` runs CH-Dav
May-August 2018 only (< 60 s).

Expected (full run, default parameters): seasonal cycles of GPP, LE and SWC captured at CH-Dav
(daily GPP R2 about 0.8); the 2018 summer shows the lowest modelled SWC and water-stress factor
of the decade. See REPORT.md for the numbers of the current model version.
"""
from __future__ import annotations

import argparse
import json
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import xarray as xr  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402

from experiments.metrics import skill  # noqa: E402
from process_models import coupled  # noqa: E402
from process_models.bmi._forcing import fill_gaps  # noqa: E402
from process_models.io import (data_path, read_diive_parquet, read_europe_fluxdata,  # noqa: E402
                               read_ismn_stm, read_pyrealm_merged)
from process_models.io._tower import numeric_column, parse_yyyymmddhhmm, read_table_text  # noqa: E402

jax.config.update("jax_enable_x64", True)

SITES = {
    "CH-Dav": dict(lat=46.8153, lon=9.8559, pft="ENF", soil="loam",
                   file=("ch-dav_2013-2022_diive",
                         "exampledata_PARQUET_CH-DAV_FP2022.5_2013-2022_ID20230206154316_30MIN.parquet")),
    "FR-Hes": dict(lat=48.6742, lon=7.0656, pft="DBF", soil="loam",
                   file=("fr-hes_2016_europe-fluxdata", "FR-Hes_europe-fluxdata_2016.txt.gz")),
    "BE-Vie": dict(lat=50.3049, lon=5.9981, pft="MF", soil="loam",
                   file=("be-vie_2014_pyrealm", "merged_BE-Vie_data.csv")),
    "FR-Aqui": dict(lat=44.467, lon=-0.7269, pft="ENF", soil="loamy_sand",
                    file=("ismn_fr-aqui_smosmania",
                          "FR-Aqui_FR-Aqui_fraye_sm_0.050000_0.050000_ThetaProbe-ML2X_19500101_"
                          "20210131.stm.gz")),
}
DRIVERS = ("air_temperature", "vpd", "shortwave_in", "precipitation", "air_pressure",
           "wind_speed", "co2", "lai")


@dataclass(frozen=True)
class Settings:
    out: str = "experiments/output/coupled_study"
    quick: bool = False


# ------------------------------------------------------------------------------ helpers

def layer_depths(params):
    _, top, centre, _ = coupled.soil_water.layer_geometry(params.layer_thickness)
    return np.asarray(centre)


def swc_at_depth(swc_layers: np.ndarray, centres: np.ndarray, depth: float) -> np.ndarray:
    """Model SWC at ``depth`` (m): linear in depth between layer centres (top/bottom layer
    value outside them)."""
    return np.array([np.interp(depth, centres, row) for row in swc_layers]) if swc_layers.ndim == 2 \
        else np.interp(depth, centres, swc_layers)


def run_site(ds, site, *, lai=False, initial_state=None, **kw):
    """Gap-fill drivers, build the forcing, simulate; returns (outputs Dataset, final state,
    params, notes)."""
    s = SITES[site]
    ds, notes = fill_gaps(ds, [v for v in DRIVERS if v in ds])
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        forcing = coupled.forcing_from_dataset(ds, s["lat"], s["lon"], lai=lai, **kw)
    notes += [str(x.message).split(": ", 1)[-1] for x in w if x.category is UserWarning]
    params = coupled.load_parameters(s["pft"], s["soil"])
    out, state = coupled.simulate(params, forcing, initial_state, return_state=True)
    res = coupled.outputs_to_dataset(out, time=ds.time.values, params=params)
    return res, state, params, forcing, notes


def metric_rows(site, period, pairs: dict, index) -> list[dict]:
    """Half-hourly and daily skill for ``{variable: (model, obs)}`` series on ``index``."""
    rows = []
    for var, (m, o) in pairs.items():
        ms, os_ = pd.Series(np.asarray(m, float), index=index), pd.Series(np.asarray(o, float), index=index)
        h = skill(ms, os_)
        df = pd.DataFrame({"m": ms, "o": os_}).dropna()
        g = df.groupby(df.index.floor("D"))
        per_day = max(1, int(round(86400 / ((index[1] - index[0]) / pd.Timedelta("1s")))))
        dd = g.mean()[g.size() >= per_day // 2]
        d = skill(dd["m"], dd["o"])
        for res, sk in (("half-hourly", h), ("daily", d)):
            rows.append({"site": site, "period": period, "variable": var, "resolution": res,
                         "n": sk["n"], "r2": sk["r2"], "rmse": sk["rmse"], "bias": sk["bias"],
                         "obs_mean": float(os_[ms.notna()].mean()) if res == "half-hourly" else float(dd["o"].mean()),
                         "model_mean": float(ms[os_.notna()].mean()) if res == "half-hourly" else float(dd["m"].mean())})
    return rows


def _save(fig, out: Path, name: str, figs: list):
    fig.tight_layout()
    fig.savefig(out / name, dpi=110)
    plt.close(fig)
    figs.append(name)


# ----------------------------------------------------------------------------- CH-Dav

def ch_dav(settings: Settings, out: Path, figs: list, report: list) -> tuple[list, dict]:
    raw = read_diive_parquet(data_path(*SITES["CH-Dav"]["file"]))
    if settings.quick:
        ds = raw.sel(time=slice("2018-05-01", "2018-08-31"))
        period, state0 = "2018-05..08", None
    else:
        ds = raw
        period = "2013-2022"
        # one-year spin-up (2013) of soil water, snow, soil temperature and carbon pools
        _, state0, _, _, _ = run_site(raw.sel(time="2013"), "CH-Dav")
    res, _, params, forcing, notes = run_site(ds, "CH-Dav", initial_state=state0)
    idx = pd.DatetimeIndex(ds.time.values)
    centres = layer_depths(params)
    swc015 = swc_at_depth(res.soil_water_content.values, centres, 0.15)
    rows = metric_rows("CH-Dav", period, {
        "GPP (NT, CUT_REF)": (res.gpp.values, ds.gpp.values),
        "NEE (measured)": (res.nee.values, ds.nee.values),
        "LE (measured)": (res.le.values, ds.le.values),
        "SWC 0.15 m": (swc015, ds.soil_water_content.values),
    }, idx)
    info = {"notes": notes, "spin_up": "one year (2013) for soil water, snow and soil "
            "temperature" if not settings.quick else "none (field capacity on 1 May 2018)"}

    # daily series figure
    daily = pd.DataFrame({"gpp_obs": ds.gpp.values, "gpp_mod": res.gpp.values,
                          "le_obs": ds.le.values, "le_mod": res.le.values,
                          "swc_obs": ds.soil_water_content.values, "swc_mod": swc015,
                          "stress": res.water_stress.values, "lai": res.lai.values}, index=idx)
    dd = daily.resample("D").mean()
    fig, ax = plt.subplots(4, 1, figsize=(11, 9), sharex=True)
    ax[0].plot(dd.index, dd.gpp_obs, lw=0.7, label="tower GPP (NT)")
    ax[0].plot(dd.index, dd.gpp_mod, lw=0.7, label="model")
    ax[0].set_ylabel("GPP\numol m-2 s-1")
    ax[1].plot(dd.index, dd.le_obs, lw=0.7, label="tower LE")
    ax[1].plot(dd.index, dd.le_mod, lw=0.7, label="model")
    ax[1].set_ylabel("LE\nW m-2")
    ax[2].plot(dd.index, dd.swc_obs, lw=0.7, label="SWC 0.15 m obs")
    ax[2].plot(dd.index, dd.swc_mod, lw=0.7, label="model at 0.15 m")
    ax[2].set_ylabel("SWC\nm3 m-3")
    ax[3].plot(dd.index, dd.stress, lw=0.7, color="C3", label="water-stress factor")
    ax[3].plot(dd.index, dd.lai / dd.lai.max(), lw=0.7, color="C2", label="LAI / max")
    ax[3].set_ylabel("1")
    for a in ax:
        a.legend(loc="upper left", fontsize=8)
    ax[0].set_title(f"CH-Dav {period}, default ENF parameters (daily means)")
    _save(fig, out, "chdav_daily_series.png", figs)

    if not settings.quick:
        info["drought"] = drought_figure(daily, out, figs)
    seasonal = daily.groupby(daily.index.month)[["gpp_obs", "gpp_mod", "le_obs", "le_mod",
                                                  "swc_obs", "swc_mod"]].mean()
    info["seasonal"] = seasonal
    return rows, info


def drought_figure(daily: pd.DataFrame, out: Path, figs: list) -> pd.DataFrame:
    """JJA means per year: SWC (obs, model), water stress, GPP anomaly (obs, model)."""
    jja = daily[daily.index.month.isin([6, 7, 8])]
    y = jja.groupby(jja.index.year).mean()
    y["gpp_obs_anom"] = y.gpp_obs - y.gpp_obs.mean()
    y["gpp_mod_anom"] = y.gpp_mod - y.gpp_mod.mean()
    y["swc_obs_anom"] = y.swc_obs - y.swc_obs.mean()
    y["swc_mod_anom"] = y.swc_mod - y.swc_mod.mean()
    fig, ax = plt.subplots(1, 3, figsize=(14, 4))
    w = 0.38
    x = np.arange(len(y))
    ax[0].bar(x - w / 2, y.swc_obs, w, label="obs 0.15 m")
    ax[0].bar(x + w / 2, y.swc_mod, w, label="model 0.15 m")
    ax[0].set_ylabel("JJA mean SWC (m3 m-3)")
    ax[1].bar(x, y.stress, color=["C3" if yr in (2018, 2022) else "C7" for yr in y.index])
    ax[1].set_ylabel("JJA mean water-stress factor (1 = none)")
    ax[1].set_ylim(min(0.5, float(y.stress.min()) - 0.05), 1.01)
    ax[2].bar(x - w / 2, y.gpp_obs_anom, w, label="tower")
    ax[2].bar(x + w / 2, y.gpp_mod_anom, w, label="model")
    ax[2].axhline(0, color="k", lw=0.5)
    ax[2].set_ylabel("JJA GPP anomaly (umol m-2 s-1)")
    for a in ax:
        a.set_xticks(x, [str(v) for v in y.index], rotation=45)
        a.legend(fontsize=8) if a is not ax[1] else None
    fig.suptitle("CH-Dav summers: 2018 and 2022 droughts vs other years")
    _save(fig, out, "chdav_drought_response.png", figs)
    return y


# ----------------------------------------------------------------------------- FR-Hes

def fr_hes_profiles(path) -> pd.DataFrame:
    """Mean over the 7 SWC profiles of each vertical position d (SWC_p_d_1, %, -> m3 m-3).
    Depths are not given in the file; positions are numbered from the top."""
    src = str(path)
    df, (names,) = read_table_text(path, sep=",", header_rows=1, required=("TIMESTAMP_END",))
    t_end = parse_yyyymmddhhmm(df, "TIMESTAMP_END", source=src)
    t = pd.DatetimeIndex(t_end) - pd.Timedelta("30min")
    cols = {}
    for d in range(1, 6):
        c = [n for n in names if n.startswith("SWC_") and n.split("_")[2] == str(d)
             and n.endswith("_1")]
        if c:
            v = np.nanmean(np.stack([numeric_column(df, x, source=src) for x in c]), axis=0)
            cols[f"position {d}"] = v / 100.0
    return pd.DataFrame(cols, index=t)


def fr_hes(settings: Settings, out: Path, figs: list) -> tuple[list, dict]:
    path = data_path(*SITES["FR-Hes"]["file"])
    ds = read_europe_fluxdata(path)
    res, _, params, _, notes = run_site(ds, "FR-Hes")
    idx = pd.DatetimeIndex(ds.time.values)
    rows = metric_rows("FR-Hes", "2016", {"NEE (measured)": (res.nee.values, ds.nee.values),
                                          "LE (measured)": (res.le.values, ds.le.values)}, idx)
    prof = fr_hes_profiles(path).reindex(idx)
    mod = pd.DataFrame(res.soil_water_content.values, index=idx,
                       columns=[f"layer {i} ({c:.2f} m)" for i, c in enumerate(layer_depths(params))])
    pd_, md = prof.resample("D").mean(), mod.resample("D").mean()
    corr = pd.DataFrame({p: [pd_[p].corr(md[m]) for m in md] for p in pd_}, index=md.columns)
    best = {p: (corr[p].idxmax(), float(corr[p].max())) for p in corr}
    for p in pd_:
        layer = best[p][0]
        sk = skill(md[layer], pd_[p])
        rows.append({"site": "FR-Hes", "period": "2016", "variable": f"SWC {p} vs best {layer}",
                     "resolution": "daily", "n": sk["n"], "r2": sk["r2"], "rmse": sk["rmse"],
                     "bias": sk["bias"], "obs_mean": float(pd_[p].mean()),
                     "model_mean": float(md[layer].mean())})
    fig, ax = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    for p in pd_:
        ax[0].plot(pd_.index, pd_[p], lw=0.8, label=p)
    ax[0].set_ylabel("observed SWC (m3 m-3)\nmean of 7 profiles")
    for m in md:
        ax[1].plot(md.index, md[m], lw=0.8, label=m)
    ax[1].set_ylabel("model SWC (m3 m-3)")
    for a in ax:
        a.legend(fontsize=7, ncol=3)
    ax[0].set_title("FR-Hes 2016 soil-water profiles (depths of the positions are not in the file)")
    _save(fig, out, "frhes_swc_profiles.png", figs)
    daily = pd.DataFrame({"gpp_mod": res.gpp.values, "le_obs": ds.le.values, "le_mod": res.le.values,
                          "nee_obs": ds.nee.values, "nee_mod": res.nee.values}, index=idx)
    return rows, {"notes": notes, "correlation": corr, "seasonal":
                  daily.groupby(idx.month).mean()}


# ----------------------------------------------------------------------------- BE-Vie

def be_vie(settings: Settings, out: Path, figs: list) -> tuple[list, dict]:
    """BE-Vie 2014 has no precipitation in the pyrealm merge: the soil water is reset to field
    capacity every midnight (a daily 'assimilation' of a wet-soil observation, a lax.scan over
    days), so the runs show the light/LAI response without water limitation."""
    ds = read_pyrealm_merged(data_path(*SITES["BE-Vie"]["file"]))
    s = SITES["BE-Vie"]
    ds_f, notes = fill_gaps(ds, [v for v in DRIVERS if v in ds])
    params = coupled.load_parameters(s["pft"], s["soil"])
    theta_fc = jnp.broadcast_to(coupled.soil_water.field_capacity(params.soil), (params.n_layers,))
    idx = pd.DatetimeIndex(ds.time.values)
    runs = {}
    for label, lai in (("satellite LAI", None), ("LAI from leaf pool", False)):
        with warnings.catch_warnings(record=True) as w:
            warnings.simplefilter("always")
            forcing = coupled.forcing_from_dataset(ds_f, s["lat"], s["lon"], lai=lai,
                                                   precipitation=0.0)
        notes += [f"{label}: " + str(x.message).split(": ", 1)[-1] for x in w
                  if x.category is UserWarning]
        per_day = int(round(86400 / forcing.dt_seconds))
        n_days = forcing.n_steps // per_day
        days = jax.tree_util.tree_map(
            lambda x: x[:n_days * per_day].reshape((n_days, per_day) + x.shape[1:]), forcing)
        state0 = coupled.initial_state(params, forcing)

        def one_day(state, f_day):
            state = state.replace(soil_water_content=theta_fc.astype(state.soil_water_content.dtype))
            o, st = coupled.simulate(params, f_day, state, return_state=True)
            return st, o

        _, o = jax.lax.scan(one_day, state0, days)
        o = jax.tree_util.tree_map(lambda x: x.reshape((-1,) + x.shape[2:]), o)
        runs[label] = o
    n = runs["satellite LAI"].gpp.shape[0]
    rows = []
    for label, o in runs.items():
        rows += metric_rows("BE-Vie", f"2014 ({label}, wet soil)",
                            {"GPP (DT, FLUXNET)": (np.asarray(o.gpp), ds.gpp.values[:n])}, idx[:n])
    d = pd.DataFrame({"obs": ds.gpp.values[:n], **{k: np.asarray(v.gpp) for k, v in runs.items()},
                      "lai_sat": ds.lai.values[:n],
                      "lai_pool": np.asarray(runs["LAI from leaf pool"].lai)}, index=idx[:n])
    dd = d.resample("D").mean()
    fig, ax = plt.subplots(2, 1, figsize=(11, 6), sharex=True)
    ax[0].plot(dd.index, dd.obs, lw=0.8, label="tower GPP (DT)")
    for k in runs:
        ax[0].plot(dd.index, dd[k], lw=0.8, label=f"model, {k}")
    ax[0].set_ylabel("GPP (umol m-2 s-1)")
    ax[0].legend(fontsize=8)
    ax[1].plot(dd.index, dd.lai_sat, label="satellite LAI (forcing)")
    ax[1].plot(dd.index, dd.lai_pool, label="LAI from leaf pool")
    ax[1].set_ylabel("LAI (m2 m-2)")
    ax[1].legend(fontsize=8)
    ax[0].set_title("BE-Vie 2014: satellite LAI vs prognostic LAI (soil reset to field capacity "
                    "daily: no precipitation in the file)")
    _save(fig, out, "bevie_gpp_lai.png", figs)
    return rows, {"notes": notes, "seasonal": d.groupby(d.index.month).mean()}


# ---------------------------------------------------------------------------- FR-Aqui

def fr_aqui(settings: Settings, out: Path, figs: list, hes_ds=None) -> tuple[list, dict]:
    """No meteorological forcing exists for FR-Aqui in the shipped data. What we can do
    honestly: (1) describe the observed 0.05 m series (2013-2019); (2) a cross-site check of
    the modelled surface-layer dynamics with FR-Aqui's soil (loamy sand from the ISMN/HWSD
    static file, ENF) driven by FR-Hes 2016 weather, compared with FR-Aqui 2016: range and
    the correlation of 30-day smoothed seasonal courses. Labelled indicative only."""
    obs = read_ismn_stm(data_path(*SITES["FR-Aqui"]["file"]))
    sm = obs.soil_water_content.where(obs.valid).to_series()
    daily_obs = sm.resample("D").mean()
    hes = read_europe_fluxdata(data_path(*SITES["FR-Hes"]["file"]))
    res, _, params, _, notes = run_site(hes, "FR-Aqui")
    top = swc_at_depth(res.soil_water_content.values, layer_depths(params), 0.05)
    mod = pd.Series(top, index=pd.DatetimeIndex(hes.time.values)).resample("D").mean()
    o16 = daily_obs.loc["2016"]
    both = pd.DataFrame({"obs": o16, "mod": mod}).dropna()
    sm30 = both.rolling(30, center=True, min_periods=15).mean().dropna()
    r_daily = float(both.obs.corr(both["mod"]))
    r_seasonal = float(sm30.obs.corr(sm30["mod"]))
    summary = {
        "observed_valid_fraction": float(obs.valid.mean()),
        "observed_2013_2019_min_max_mean": [float(sm.min()), float(sm.max()), float(sm.mean())],
        "observed_2016_min_max_mean": [float(o16.min()), float(o16.max()), float(o16.mean())],
        "model_2016_min_max_mean": [float(mod.min()), float(mod.max()), float(mod.mean())],
        "hwsd_saturation_0_30cm": float(obs.saturation.values[0]),
        "model_theta_sat": float(params.soil.theta_sat), "model_theta_res": float(params.soil.theta_res),
        "r_daily_cross_site": r_daily, "r_30d_seasonal_cross_site": r_seasonal,
    }
    rows = [{"site": "FR-Aqui", "period": "2016 (cross-site: FR-Hes weather)",
             "variable": "SWC 0.05 m (30-day smoothed)", "resolution": "daily", "n": len(sm30),
             "r2": r_seasonal ** 2, "rmse": float(np.sqrt(((sm30["mod"] - sm30.obs) ** 2).mean())),
             "bias": float((sm30["mod"] - sm30.obs).mean()), "obs_mean": float(sm30.obs.mean()),
             "model_mean": float(sm30["mod"].mean())}]
    fig, ax = plt.subplots(2, 1, figsize=(11, 6))
    ax[0].plot(daily_obs.index, daily_obs, lw=0.6)
    ax[0].set_ylabel("SWC 0.05 m (m3 m-3)")
    ax[0].set_title("FR-Aqui 'fraye' (ISMN), valid (flag G) hourly values, daily means")
    ax[1].plot(o16.index, o16, lw=0.8, label="FR-Aqui observed 2016")
    ax[1].plot(mod.index, mod, lw=0.8, label="model 0.05 m: FR-Aqui soil, FR-Hes 2016 weather")
    ax[1].set_ylabel("SWC (m3 m-3)")
    ax[1].legend(fontsize=8)
    _save(fig, out, "fraqui_swc.png", figs)
    monthly = daily_obs.groupby(daily_obs.index.month).mean()
    return rows, {"notes": notes, "summary": summary, "seasonal_obs": monthly}



# ----------------------------------------------------------- BMI coupling demo (AT-Neu)

def atneu_forcing_files(out: Path, params) -> tuple[Path, Path]:
    """Write the two BMI configs of the AT-Neu July 2010 coupling demo: the bigleaf tower
    month for the coupled model, and a VPRM forcing NetCDF (tower T/PPFD + MOD13A1 EVI and
    SWIR2-LSWI of 2010 valid composites, linearly interpolated to the half-hours; pyVPRM
    yearly statistics over the 2010 composites; grassland = VPRM class 7)."""
    from process_models.io import read_bigleaf_month, read_modis_sites_mod13a1
    from process_models.satellite import yearly_statistics

    tower = read_bigleaf_month(data_path("fluxnet2015_month-subsets_bigleaf", "AT_Neu_Jul_2010.csv.gz"))
    sat = read_modis_sites_mod13a1(site="AT-Neu").sel(time="2010")
    sat = sat.where(sat.valid, drop=True)
    lswi = (sat.nir - sat.swir21) / (sat.nir + sat.swir21)
    mid = (sat.time.values + np.timedelta64(8, "D")).astype("datetime64[ns]")  # composite centre
    x = (mid - mid[0]) / np.timedelta64(1, "h")
    xt = (tower.time.values - mid[0]) / np.timedelta64(1, "h")
    evi_h, lswi_h = np.interp(xt, x, sat.evi.values), np.interp(xt, x, lswi.values)
    st = {k: float(v) for k, v in yearly_statistics(sat.evi.values, lswi.values).items()}
    one = {"units": "1"}
    fc = float(coupled.soil_water.field_capacity(params.soil))
    vds = xr.Dataset({
        "air_temperature": tower.air_temperature, "par": tower.ppfd_in,
        "evi": ("time", evi_h, one), "lswi": ("time", lswi_h, one),
        "evi_threshold": ((), st["evi_threshold"], one), "lswi_min": ((), st["lswi_min"], one),
        "lswi_max": ((), st["lswi_max"], one),
        "class_fractions": (("vprm_class",), [1.0], one),
        "soil_water_content": ("time", np.full(tower.sizes["time"], fc), {"units": "m3 m-3"}),
    }, coords={"time": tower.time, "vprm_class": [7]})
    vds.attrs = {"site_id": "AT-Neu", "latitude": 47.1167, "longitude": 11.3175}
    vds.to_netcdf(out / "atneu_vprm_forcing.nc")
    wilt = float(coupled.soil_water.theta_from_head(params.roots.psi_close, params.soil))
    crit = float(coupled.soil_water.theta_from_head(params.roots.psi_open, params.soil))
    (out / "atneu_vprm.toml").write_text(f"""[model]
table = "pyvprm_modis"
temperatures = "copernicus"
classes = [7]
water_stress = "lswi_soil_moisture"
[forcing]
file = "atneu_vprm_forcing.nc"
latitude = 47.1167
longitude = 11.3175
[time]
time_step = 1800
[parameters]
theta_wilt = [{wilt}]
theta_crit = [{crit}]
""")
    (out / "atneu_coupled.toml").write_text("""[model]
pft = "GRA"
soil_texture = "loam"
[forcing]
reader = "bigleaf_month"
path = "fluxnet2015_month-subsets_bigleaf/AT_Neu_Jul_2010.csv.gz"
latitude = 47.1167
longitude = 11.3175
lai = "pool"
[time]
time_step = 1800
""")
    return tower, out / "atneu_coupled.toml", out / "atneu_vprm.toml"


def atneu_bmi_coupling(out: Path, figs: list) -> tuple[list, dict]:
    """pymt-style coupling through BMI only: at every half-hour the coupled model's root-zone
    soil water (0-0.3 m, thickness-weighted) is passed to VPRM's soil-moisture water stress
    (``set_value("soil_water__volume_fraction")``), then both models advance one step."""
    from process_models.bmi import BmiCoupled, BmiVPRM

    params = coupled.load_parameters("GRA", "loam")
    tower, ccfg, vcfg = atneu_forcing_files(out, params)
    cm, vm = BmiCoupled(), BmiVPRM()
    cm.initialize(str(ccfg))
    vm.initialize(str(vcfg))
    n_layers = cm.get_grid_size(cm.get_var_grid("soil_water__volume_fraction"))
    dz = np.asarray(params.layer_thickness)
    top = np.cumsum(dz) - dz
    w = np.clip(np.minimum(top + dz, 0.3) - top, 0, None)
    w = w / w.sum()
    swc = np.empty(n_layers)
    one = np.empty(1)
    names = {"gpp": "land_vegetation__gross_primary_productivity",
             "nee": "land_ecosystem__net_carbon-dioxide_exchange_flux"}
    rec = {k: [] for k in ("c_gpp", "c_nee", "v_gpp", "v_nee", "swc")}
    n = int(round(cm.get_end_time() / cm.get_time_step()))
    assert vm.get_end_time() == cm.get_end_time() and vm.get_time_step() == cm.get_time_step()
    for _ in tqdm(range(n), desc="AT-Neu BMI coupling", leave=False, mininterval=10):
        theta = float(w @ cm.get_value("soil_water__volume_fraction", swc))
        vm.set_value("soil_water__volume_fraction", np.array([theta]))
        cm.update()
        vm.update()
        for m, p in (("c", cm), ("v", vm)):
            for k, name in names.items():
                rec[f"{m}_{k}"].append(p.get_value(name, one)[0])
        rec["swc"].append(theta)
    cm.finalize()
    vm.finalize()
    idx = pd.DatetimeIndex(tower.time.values)
    rows = metric_rows("AT-Neu", "2010-07 (coupled model, BMI)", {
        "GPP (NT, USTAR50)": (rec["c_gpp"], tower.gpp.values),
        "NEE (gap-filled)": (rec["c_nee"], tower.nee_filled.values)}, idx)
    rows += metric_rows("AT-Neu", "2010-07 (VPRM pyVPRM-MODIS grassland, BMI)", {
        "GPP (NT, USTAR50)": (rec["v_gpp"], tower.gpp.values),
        "NEE (gap-filled)": (rec["v_nee"], tower.nee_filled.values)}, idx)
    df = pd.DataFrame({"tower": tower.gpp.values, "coupled": rec["c_gpp"], "VPRM": rec["v_gpp"],
                       "swc": rec["swc"]}, index=idx)
    fig, ax = plt.subplots(1, 2, figsize=(13, 4))
    diurnal = df.groupby(df.index.hour + df.index.minute / 60).mean()
    for c in ("tower", "coupled", "VPRM"):
        ax[0].plot(diurnal.index, diurnal[c], label=c)
    ax[0].set_xlabel("hour (local standard time)")
    ax[0].set_ylabel("GPP (umol m-2 s-1)")
    ax[0].legend()
    ax[0].set_title("AT-Neu July 2010: mean diurnal GPP")
    d = df.resample("D").mean()
    for c in ("tower", "coupled", "VPRM"):
        ax[1].plot(d.index, d[c], label=c)
    ax1 = ax[1].twinx()
    ax1.plot(d.index, d.swc, "k:", label="root-zone SWC (coupled -> VPRM)")
    ax1.set_ylabel("SWC 0-0.3 m (m3 m-3)")
    ax[1].set_ylabel("daily GPP (umol m-2 s-1)")
    ax[1].legend(loc="lower left", fontsize=8)
    ax1.legend(loc="lower right", fontsize=8)
    ax[1].tick_params(axis="x", rotation=30)
    _save(fig, out, "atneu_bmi_coupling.png", figs)
    return rows, {"notes": ["coupled model: shortwave from PPFD (no SW in the bigleaf file); "
                            "VPRM: LSWI from MODIS band 7 (SWIR2; band 6 is not in this product "
                            "extract)"], "n_steps": n}

# ------------------------------------------------------------------------------- main

def seasonal_figure(infos: dict, out: Path, figs: list):
    fig, ax = plt.subplots(1, 3, figsize=(14, 4))
    for site, info in infos.items():
        s = info.get("seasonal")
        if s is None:
            continue
        if "gpp_obs" in s:
            ax[0].plot(s.index, s.gpp_obs, "o-", ms=3, label=f"{site} tower")
        if "obs" in s:
            ax[0].plot(s.index, s.obs, "o-", ms=3, label=f"{site} tower")
        for c in [c for c in s.columns if c in ("gpp_mod", "satellite LAI")]:
            ax[0].plot(s.index, s[c], "--", label=f"{site} model" + ("" if c == "gpp_mod" else f" ({c})"))
        if "le_obs" in s:
            ax[1].plot(s.index, s.le_obs, "o-", ms=3, label=f"{site} tower")
            ax[1].plot(s.index, s.le_mod, "--", label=f"{site} model")
        if "swc_obs" in s:
            ax[2].plot(s.index, s.swc_obs, "o-", ms=3, label=f"{site} obs 0.15 m")
            ax[2].plot(s.index, s.swc_mod, "--", label=f"{site} model 0.15 m")
    if "FR-Aqui" in infos:
        m = infos["FR-Aqui"]["seasonal_obs"]
        ax[2].plot(m.index, m.values, "o-", ms=3, label="FR-Aqui obs 0.05 m (2013-19)")
    for a, t in zip(ax, ("GPP (umol m-2 s-1)", "LE (W m-2)", "SWC (m3 m-3)")):
        a.set_xlabel("month")
        a.set_ylabel(t)
        a.legend(fontsize=7)
    fig.suptitle("Mean seasonal cycles (monthly means of half-hours)")
    _save(fig, out, "seasonal_cycles.png", figs)


def _md(df: pd.DataFrame, floatfmt=".3g") -> str:
    cols = list(df.columns)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for _, r in df.iterrows():
        lines.append("| " + " | ".join(f"{v:{floatfmt}}" if isinstance(v, (float, np.floating))
                                       else str(v) for v in r.values) + " |")
    return "\n".join(lines)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=Settings.out, help="output folder (figures, metrics.csv, REPORT.md)")
    p.add_argument("--quick", action="store_true", help="CH-Dav May-Aug 2018 only (< 60 s)")
    args = p.parse_args(argv)
    settings = Settings(out=args.out, quick=args.quick)
    out = Path(settings.out)
    out.mkdir(parents=True, exist_ok=True)
    figs, rows, infos = [], [], {}
    stages = ["CH-Dav"] if settings.quick else ["CH-Dav", "FR-Hes", "BE-Vie", "FR-Aqui",
                                                "AT-Neu BMI coupling"]
    for site in tqdm(stages, desc="coupled study sites"):
        if site == "CH-Dav":
            r, info = ch_dav(settings, out, figs, [])
        elif site == "FR-Hes":
            r, info = fr_hes(settings, out, figs)
        elif site == "BE-Vie":
            r, info = be_vie(settings, out, figs)
        elif site == "FR-Aqui":
            r, info = fr_aqui(settings, out, figs)
        else:
            r, info = atneu_bmi_coupling(out, figs)
        rows += r
        infos[site] = info
    seasonal_figure(infos, out, figs)
    table = pd.DataFrame(rows)
    table.to_csv(out / "metrics.csv", index=False)
    (out / "settings.json").write_text(json.dumps(asdict(settings), indent=2))
    write_report(settings, table, infos, figs, out)
    print(_md(table[table.resolution == "daily"][["site", "period", "variable", "n", "r2", "rmse",
                                                   "bias"]]))
    print(f"Report: {out / 'REPORT.md'}")
    return {"metrics": table, "figures": figs, "infos": infos}


def write_report(settings, table, infos, figs, out: Path):
    rep = ["# Coupled soil-moisture / photosynthesis model: default-parameter runs at four sites", "",
           f"Generated by `python -m experiments.coupled_study{' --quick' if settings.quick else ''}`. "
           "Default parameters per plant functional type (`process_models.coupled.load_parameters`), "
           "no calibration. Sign convention NEE = Reco - GPP (positive = source). Metrics: R2 = "
           "squared Pearson r, RMSE, bias = model - obs; daily = means of days with at least half of "
           "the records observed. Observations are never gap-filled for scoring (GPP and Reco are "
           "partitioning products of the gap-filled NEE, as the sites publish them).", "",
           "## Metrics", "",
           _md(table[["site", "period", "variable", "resolution", "n", "r2", "rmse", "bias",
                      "obs_mean", "model_mean"]]), ""]
    if "CH-Dav" in infos:
        i = infos["CH-Dav"]
        rep += ["## CH-Dav (Davos, subalpine Norway spruce; ENF, loam)", "",
                f"Spin-up: {i['spin_up']}. LAI from the leaf carbon pool (no satellite LAI for this "
                "site in the shipped data). Wind speed and CO2 are not in the diive file: defaults "
                "(2 m s-1, 400 umol mol-1). SWC is observed only at 0.15 m; the model value there is "
                "interpolated linearly in depth between layer centres.", ""]
        rep += [f"- forcing note: {n}" for n in i["notes"]] + [""]
        if "drought" in i:
            y = i["drought"][["swc_obs", "swc_mod", "stress", "gpp_obs_anom", "gpp_mod_anom"]]
            y = y.reset_index().rename(columns={"index": "year", "time": "year"})
            y["year"] = y["year"].astype(int).astype(str)
            rep += ["### Summer (JJA) drought response", "",
                    "Per-year JJA means: SWC at 0.15 m (obs, model), modelled water-stress factor "
                    "(1 = no stress), GPP anomaly relative to the 2013-2022 JJA mean.", "",
                    _md(y), ""]
    if "FR-Hes" in infos:
        i = infos["FR-Hes"]
        rep += ["## FR-Hes 2016 (Hesse beech; DBF, loam)", "",
                "The file has no partitioned GPP, so carbon is scored on measured NEE. The model has "
                "no leaf phenology yet: LAI comes from the leaf carbon pool all year, so winter GPP "
                "of this deciduous forest is overestimated. SWC profile: 7 profiles x 5 vertical "
                "positions (`SWC_p_d_1`, %), averaged per position; the depths are not in the file, so "
                "each position is compared with the model layer it correlates best with (daily). "
                "Correlation (rows: model layers, columns: observed positions):", "",
                _md(i["correlation"].reset_index().rename(columns={"index": "model layer"}), ".2f"), ""]
        rep += [f"- forcing note: {n}" for n in i["notes"]] + [""]
    if "BE-Vie" in infos:
        rep += ["## BE-Vie 2014 (Vielsalm mixed forest; MF, loam): satellite LAI", "",
                "The pyrealm merge has **no precipitation, shortwave or wind**: shortwave is derived "
                "from PPFD (forcing_from_dataset), wind is the default, and the soil water is reset to "
                "field capacity every midnight (a daily assimilation of a wet-soil state, one "
                "`lax.scan` over days), so these runs isolate the light/LAI response; soil-water and "
                "ET scores are not meaningful here and are not reported. GPP is scored against the "
                "FLUXNET daytime-partitioned GPP.", ""]
        rep += [f"- forcing note: {n}" for n in infos["BE-Vie"]["notes"]] + [""]
    if "FR-Aqui" in infos:
        s = infos["FR-Aqui"]["summary"]
        rep += ["## FR-Aqui (ISMN 'fraye', Landes pine forest): soil moisture only", "",
                "**What is missing:** the shipped data have no meteorological forcing at FR-Aqui (no "
                "tower, no reanalysis for 2013-2020), so a site simulation is impossible. We report "
                "(1) the observed 0.05 m series (ISMN flag G only) and (2) an indicative cross-site "
                "check: the model with FR-Aqui's soil (loamy sand from the ISMN/HWSD static file, "
                "ENF) driven by FR-Hes 2016 weather (~700 km away), compared with FR-Aqui 2016. "
                "Only ranges and the 30-day smoothed seasonal course are compared; the daily "
                "correlation is shown for completeness. Next step: ERA5-Land at the station.", "",
                "| quantity | value |", "|---|---|"]
        rep += [f"| {k} | {json.dumps(v) if isinstance(v, list) else f'{v:.3g}'} |" for k, v in s.items()]
        rep += [""]
    if "AT-Neu BMI coupling" in infos:
        rep += ["## BMI coupling demo: coupled model + VPRM at AT-Neu, July 2010", "",
                "Both models run through their BMI only (`BmiCoupled`, `BmiVPRM`, configs written "
                "next to this report), pymt-style: every half-hour the coupled model's root-zone "
                "soil water (0-0.3 m) is sent to VPRM's soil-moisture water stress with "
                "`set_value`, then both `update()`. Tower: bigleaf FLUXNET2015 month subset; VPRM "
                "greenness: MOD13A1 EVI and SWIR2-LSWI (valid composites, interpolated); VPRM "
                "parameters pyVPRM MODIS grassland; coupled model GRA on loam. Grassland cut in "
                "July (MODIS LAI falls from 6.4 to 4.6) is not represented by either model.", ""]
        rep += [f"- note: {n}" for n in infos["AT-Neu BMI coupling"]["notes"]] + [""]
    rep += ["## Figures", ""] + [f"![{f}]({f})" for f in figs] + [""]
    (out / "REPORT.md").write_text("\n".join(rep))


if __name__ == "__main__":
    main()
