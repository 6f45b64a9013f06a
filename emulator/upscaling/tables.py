"""Training tables for flux upscaling: daily (and hourly) rows at every shipped tower.

One row per site-day with the daily-mean fluxes (NEE, GPP, Reco; umol m-2 s-1, NEE = Reco -
GPP, positive = source), their daily observation error, a QC weight, and the features the
models see: meteorology, soil moisture, satellite indices (or a seasonal greenness proxy
where the tower has none) and land cover. The hybrid model also gets the 24 hourly air
temperatures and PPFDs of each day (variables ``air_temperature_hourly`` /
``ppfd_in_hourly`` on the ``hour`` axis) so VPRM's light response runs at the hour.

Towers and their satellite series (all under ``../shared/data``; see each PROVENANCE.md)

======== ===================== ================================ =============================
site     fluxes                satellite at/near the tower       soil moisture
======== ===================== ================================ =============================
CH-Dav   2013-2022 NEE/GPP/Reco none shipped: GSI proxy           SWC 0.15 m
FR-Hes   2016 NEE (processed)   none shipped: GSI proxy           SWC
US-PFa   2005 NEE (processed)   MOD13Q1 EVI, MCD43A4 LSWI         -
DE-Tha   1998 NEE (processed),  MOD13A1 EVI of DE-Obe (20 km,     -
         Jun 2014 NEE/GPP/Reco  same spruce ENF; 1998: its
                                2000-2018 mean seasonal cycle)
AT-Neu   Jul 2010 NEE/GPP/Reco  MOD13A1 EVI + MCD15A2H fAPAR      -
FR-Pue   2007-2012 GPP (daily), rsofun fAPAR (MODIS FPAR)         -
         May 2012 NEE/GPP/Reco
BE-Vie   2014 GPP               pyrealm fAPAR (MODIS-based)       -
======== ===================== ================================ =============================

"Processed" = :func:`assimilation.observations.flux.process_tower` (QC flags, despiking,
u* filter, MDS gap filling, random error, night-time partitioning) on the raw half-hours.

Greenness where no satellite series exists: the growing-season index of Jolly et al.
(2005, Global Change Biol. 11, 619-632), GSI = i_Tmin i_VPD i_photo (ramps -2..5 degC,
900..4100 Pa, 10..11 h), 21-day running mean, from the tower's own meteorology. The VPRM
greenness input is then ``0.1 + 0.35 GSI`` (an EVI-like range; an assumption, flagged
by ``greenness_is_proxy = 1``). Satellite EVI where it exists.

Targets are dropped where the centred 15-day share of measured half-hours is below 5 %
(long gaps: the gap-filled values are extrapolations). Error model and weights. Half-hourly random error sigma_i from the flux-magnitude model
of Richardson et al. (2006) fitted to 24-h paired differences (Hollinger & Richardson
2005) or the pipeline's ``nee_uncertainty``; daily error
``sigma_d = sqrt(sum sigma_i^2) / n`` plus the daily u*-scenario half-spread where the file
has one (CH-Dav ``nee_cut_16/84``). ``qc_fraction`` = measured (not gap-filled) share of
the day. ``weight = max(qc_fraction, 0.1) * clip(median(sigma_d^2)/sigma_d^2, 0.2, 5)
/ sqrt(n_site days)`` normalised to mean 1, so a 10-year site does not swamp the others.

Usage::

    from emulator.upscaling.tables import daily_table, training_table
    ds = daily_table("CH-Dav")                     # xarray.Dataset on (time[, hour])
    table = training_table(["CH-Dav", "FR-Hes"])   # rows on "sample" with site, time
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from process_models.units import DataValidationError

__all__ = ["TowerMeta", "TOWERS", "FEATURES", "CLASSES", "load_tower", "load_satellite",
           "daily_table", "hourly_table", "training_table", "growing_season_index",
           "photoperiod", "add_derived_features", "UMOL_TO_GC_DAY"]

UMOL_TO_GC_DAY = 12.011e-6 * 86400.0
"""g C m-2 d-1 per umol CO2 m-2 s-1 (12.011 g mol-1, 86400 s d-1)."""

CLASSES = (1, 2, 3, 7)
"""VPRM (pyVPRM) classes of the towers: 1 evergreen, 2 deciduous, 3 mixed forest, 7 grassland."""

FEATURES = ("air_temperature", "air_temperature_range", "ppfd_in", "vpd", "photoperiod",
            "soil_water_relative", "has_soil_water", "evi", "has_evi", "fapar", "has_fapar",
            "lswi", "has_lswi", "gsi", "greenness", "greenness_is_proxy",
            "doy_sin", "doy_cos", "class_1", "class_2", "class_3", "class_7")
"""Model features (columns of a table). ``has_*`` flags are 1 where the value is real; the
value itself is then filled with 0 (NaN never reaches a network)."""


@dataclass(frozen=True)
class TowerMeta:
    """A tower: FLUXNET id, coordinates (degrees_north/east), VPRM class, IGBP class.
    The values are those of ``experiments/sites.py`` (``emulator`` cannot import
    ``experiments``)."""

    name: str
    latitude: float
    longitude: float
    vprm_class: int
    igbp: str


TOWERS: dict[str, TowerMeta] = {t.name: t for t in (
    TowerMeta("CH-Dav", 46.8153, 9.8559, 1, "ENF"),
    TowerMeta("FR-Hes", 48.6742, 7.0656, 2, "DBF"),
    TowerMeta("US-PFa", 45.9459, -90.2723, 3, "MF"),
    TowerMeta("DE-Tha", 50.9636, 13.5669, 1, "ENF"),
    TowerMeta("AT-Neu", 47.1167, 11.3175, 7, "GRA"),
    TowerMeta("FR-Pue", 43.7413, 3.5957, 1, "EBF"),
    TowerMeta("BE-Vie", 50.3049, 5.9981, 3, "MF"),
)}

_DAV = ("ch-dav_2013-2022_diive",
        "exampledata_PARQUET_CH-DAV_FP2022.5_2013-2022_ID20230206154316_30MIN.parquet")
_BIGLEAF = "fluxnet2015_month-subsets_bigleaf"
_MOD13 = ("modis-mod13a1_10-fluxsites_phenofit", "MOD13A1_10sites_2000-2018.csv")
_RSOFUN = "fr-pue_2007-2012_daily_rsofun"


def _meta(name: str) -> TowerMeta:
    if name not in TOWERS:
        raise KeyError(f"unknown tower {name!r}; known: {sorted(TOWERS)}")
    return TOWERS[name]


# ------------------------------------------------------------------ sub-daily towers
def _paired_sigma(nee_filled, measured_nee, tair, rg, vpd, spd):
    """Richardson et al. (2006) sigma(F) per record, fitted to 24-h paired differences."""
    from assimilation.observations.flux import (fit_flux_magnitude_model, flux_magnitude_sigma,
                                                paired_differences)
    f, eps = paired_differences(measured_nee, tair, rg, np.nan_to_num(vpd, nan=0.0), steps_per_day=spd)
    model = fit_flux_magnitude_model(f, eps, paired=True)
    return np.asarray(flux_magnitude_sigma(nee_filled, model), float)


def _standard(ds, nee, measured, sigma, gpp, reco, swc=None, ustar_sd=None, vpd=None):
    n = ds.sizes["time"]
    nan = np.full(n, np.nan)
    out = xr.Dataset({
        "nee": ("time", np.asarray(nee, float)), "nee_measured": ("time", np.asarray(measured, bool)),
        "nee_sd": ("time", np.asarray(sigma, float)),
        "gpp": ("time", nan if gpp is None else np.asarray(gpp, float)),
        "reco": ("time", nan if reco is None else np.asarray(reco, float)),
        "air_temperature": ("time", ds["air_temperature"].values.astype(float)),
        "ppfd_in": ("time", ds["ppfd_in"].values.astype(float)),
        "vpd": ("time", nan if vpd is None else np.asarray(vpd, float)),
        "soil_water_content": ("time", nan if swc is None else np.asarray(swc, float)),
        "nee_ustar_sd": ("time", nan if ustar_sd is None else np.asarray(ustar_sd, float)),
    }, coords={"time": ds["time"].values})
    units = {"nee_measured": "1", "air_temperature": "degC", "vpd": "hPa", "soil_water_content": "m3 m-3"}
    for v in out.data_vars:
        out[v].attrs["units"] = units.get(v, "umol m-2 s-1")
    out.attrs.update(site_id=ds.attrs.get("site_id", ""), utc_offset_hours=ds.attrs.get("utc_offset_hours", 0.0))
    return out


def _processed(ds, *, qc_var=None, good_flags=(0,), ustar=True, n_bootstrap=5):
    from assimilation.observations.flux import process_tower
    r = process_tower(ds, qc_var=qc_var, good_flags=good_flags, n_bootstrap=n_bootstrap,
                      ustar_threshold="mpt" if ustar else None)
    return r


def load_tower(name: str, *, n_bootstrap: int = 5) -> list[xr.Dataset]:
    """Sub-daily tower records of ``name`` in one layout (a list: one Dataset per file).

    Variables on ``time`` (local standard time, interval start): ``nee`` (gap-filled),
    ``nee_measured`` (bool), ``nee_sd`` (random error per record), ``gpp``, ``reco`` (NaN
    where not partitioned), ``air_temperature`` (degC), ``ppfd_in`` (umol m-2 s-1), ``vpd``
    (hPa), ``soil_water_content`` (m3 m-3), ``nee_ustar_sd`` (u*-scenario half-spread).
    Sites with only daily data (FR-Pue 2007-2012) are read by :func:`daily_table`.
    """
    from process_models import io

    _meta(name)
    if name == "CH-Dav":
        d = io.read_diive_parquet(io.data_path(*_DAV))
        meas = np.isfinite(d["nee"].values)
        sig = _paired_sigma(d["nee_filled"].values, d["nee"].values, d["air_temperature"].values,
                            d["shortwave_in"].values, d["vpd"].values, 48)
        us = 0.5 * np.abs(d["nee_filled_cut_84"].values - d["nee_filled_cut_16"].values)
        return [_standard(d, d["nee_filled"].values, meas, sig, d["gpp"].values, d["reco"].values,
                          swc=d["soil_water_content"].values, ustar_sd=us, vpd=d["vpd"].values)]
    if name == "FR-Hes":
        d = io.read_europe_fluxdata(io.data_path("fr-hes_2016_europe-fluxdata", "FR-Hes_europe-fluxdata_2016.txt.gz"))
        # PPFD is missing on 43 % of the half-hours: fill from SW_IN (PPFD ~ 2.1 SW)
        d = d.assign(ppfd_in=d["ppfd_in"].fillna(d["shortwave_in"] * 2.1))
        r = _processed(d, qc_var="nee_qc", good_flags=(0, 1), n_bootstrap=n_bootstrap)
        return [_standard(d, r["nee_filled"].values, r["nee_qc"].values == 0, r["nee_uncertainty"].values,
                          r["gpp_nt"].values, r["reco_nt"].values, swc=d["soil_water_content"].values,
                          vpd=d["vpd"].values)]
    if name == "US-PFa":
        t = io.read_park_falls()["tower"]
        # the file has no shortwave, VPD or u*: Rg ~ PPFD / 2.1 (W m-2; PAR ~ 0.46 SW,
        # 4.57 umol J-1), VPD a constant 0 hPa (MDS similarity on Rg and Tair only), and the
        # u* filter off (the VPRMLandSfcModel series is already screened).
        ds = t.assign(shortwave_in=t["ppfd_in"] / 2.1, vpd=t["air_temperature"] * 0.0)
        r = _processed(ds, ustar=False, n_bootstrap=n_bootstrap)
        return [_standard(t, r["nee_filled"].values, r["nee_qc"].values == 0, r["nee_uncertainty"].values,
                          r["gpp_nt"].values, r["reco_nt"].values)]
    out = []
    if name == "DE-Tha":
        d = io.read_reddyproc_text(io.data_path("de-tha_1996-1998", "Example_DETha98.txt"))
        d = d.assign(ppfd_in=d["shortwave_in"] * 2.1)
        r = _processed(d, n_bootstrap=n_bootstrap)
        out.append(_standard(d, r["nee_filled"].values, r["nee_qc"].values == 0, r["nee_uncertainty"].values,
                             r["gpp_nt"].values, r["reco_nt"].values, vpd=d["vpd"].values))
    month = {"DE-Tha": "DE_Tha_Jun_2014.csv", "AT-Neu": "AT_Neu_Jul_2010.csv", "FR-Pue": "FR_Pue_May_2012.csv"}
    if name in month:
        d = io.read_bigleaf_month(io.data_path(_BIGLEAF, month[name]))
        meas = d["nee_qc"].values == 0
        sig = _paired_sigma(d["nee_filled"].values, np.where(meas, d["nee_filled"].values, np.nan),
                            d["air_temperature"].values, d["ppfd_in"].values / 2.1, d["vpd"].values, 48)
        out.append(_standard(d, d["nee_filled"].values, meas, sig, d["gpp"].values, d["reco"].values,
                             vpd=d["vpd"].values))
        return out
    if name == "BE-Vie":
        d = io.read_pyrealm_merged(io.data_path("be-vie_2014_pyrealm", "merged_BE-Vie_data.csv"))
        n = d.sizes["time"]
        s = _standard(d, np.full(n, np.nan), np.zeros(n, bool), np.full(n, np.nan), d["gpp"].values, None,
                      vpd=d["vpd"].values)
        s["gpp_measured"] = ("time", np.ones(n, bool))
        return [s]
    return out


# ---------------------------------------------------------------------- satellites
def _index_series(times, values, name):
    v = np.asarray(values, float)
    ok = np.isfinite(v)
    return pd.Series(v[ok], index=pd.DatetimeIndex(np.asarray(times)[ok]), name=name)


def load_satellite(name: str) -> dict:
    """Satellite series at (or near) tower ``name``: a dict of pandas Series (composite
    centre dates, QA-screened) among ``evi``, ``lswi``, ``fapar``, plus ``source``
    (text). Empty series dict where the tower has none shipped (CH-Dav, FR-Hes)."""
    from process_models import io
    from process_models.io import satellite_index

    _meta(name)
    out: dict = {"source": "none shipped"}
    if name == "US-PFa":
        d = io.read_park_falls()
        e = d["evi"]
        out["evi"] = _index_series(e.time.values + np.timedelta64(8, "D"), e["evi"].values, "evi")
        r = d["reflectance"]
        out["lswi"] = _index_series(r.time.values + np.timedelta64(4, "D"), satellite_index(r, "lswi").values, "lswi")
        out["source"] = "MOD13Q1 EVI + MCD43A4 LSWI at the tower"
    if name in ("AT-Neu", "DE-Tha"):
        px = {"AT-Neu": "AT-Neu", "DE-Tha": "DE-Obe"}[name]
        m = io.read_modis_sites_mod13a1(io.data_path(*_MOD13), site=px)
        m = m.isel(site=0) if "site" in m.dims else m
        m = m.where(m["valid"])
        t = m.time.values + np.timedelta64(8, "D")
        out["evi"] = _index_series(t, m["evi"].values, "evi")
        out["lswi"] = _index_series(t, ((m["nir"] - m["swir21"]) / (m["nir"] + m["swir21"])).values, "lswi")
        out["source"] = ("MOD13A1 EVI/LSWI(2.1 um) at the tower" if name == "AT-Neu" else
                         "MOD13A1 EVI/LSWI(2.1 um) of DE-Obe, 20 km away, same spruce ENF")
    if name == "AT-Neu":
        f = io.read_modis_lai_fapar_ornl(io.data_path("at-neu_modis-mcd15a2h_fluxdatakit",
                                                      "AT-Neu_MCD15A2H_5x5px_2002-2022.csv.gz"))
        fa = f["fapar"].where(f["valid"])
        fa = fa.mean([d for d in fa.dims if d != "time"]) if fa.ndim > 1 else fa
        out["fapar"] = _index_series(f.time.values + np.timedelta64(4, "D"), fa.values, "fapar")
        out["source"] += " + MCD15A2H fAPAR"
    if name == "BE-Vie":
        d = io.read_pyrealm_merged(io.data_path("be-vie_2014_pyrealm", "merged_BE-Vie_data.csv"))
        fa = d["fapar"].resample(time="1D").mean()
        out["fapar"] = _index_series(fa.time.values + np.timedelta64(12, "h"), fa.values, "fapar")
        out["source"] = "pyrealm daily fAPAR (spline-smoothed, MODIS-based) at the tower"
    if name == "FR-Pue":
        out["source"] = "rsofun daily fAPAR (smoothed MODIS FPAR via FluxDataKit) at the tower"
    return out


def _on_days(series: pd.Series | None, days: pd.DatetimeIndex, max_gap_days: float = 40.0):
    """Daily values of a composite series: linear in time inside its record, the mean
    seasonal cycle (day-of-year climatology, 16-day bins) outside it. NaN if absent."""
    if series is None or series.empty:
        return np.full(len(days), np.nan), np.zeros(len(days), bool)
    t = series.index.values.astype("datetime64[D]").astype(float)
    td = days.values.astype("datetime64[D]").astype(float)
    inside = (td >= t.min() - max_gap_days) & (td <= t.max() + max_gap_days)
    vals = np.interp(td, t, series.values)
    if not inside.all():
        doy = series.index.day_of_year.values
        bins = np.arange(0, 384, 16)
        clim = np.array([np.nanmean(series.values[(doy >= a) & (doy < a + 16)]) if np.any((doy >= a) & (doy < a + 16))
                         else np.nan for a in bins])
        ok = np.isfinite(clim)
        centres = bins[ok] + 8.0
        c = np.interp(days.day_of_year.values, centres, clim[ok], period=365.0)
        vals = np.where(inside, vals, c)
    return vals, inside


# -------------------------------------------------------------------------- features
def photoperiod(latitude, day_of_year):
    """Day length (h) from latitude (degrees_north) and day of year: 24/pi arccos(-tan(phi)
    tan(delta)), delta = 23.44 deg sin(2 pi (284 + doy)/365) (Cooper 1969)."""
    phi = np.deg2rad(np.asarray(latitude, float))
    delta = np.deg2rad(23.44) * np.sin(2 * np.pi * (284.0 + np.asarray(day_of_year, float)) / 365.0)
    return 24.0 / np.pi * np.arccos(np.clip(-np.tan(phi) * np.tan(delta), -1.0, 1.0))


def growing_season_index(tmin, vpd_hpa, day_length, window: int = 21, axis: int = 0):
    """Growing-season index of Jolly et al. (2005): ramps of daily minimum temperature
    (-2 -> 5 degC), VPD (900 -> 4100 Pa, decreasing) and photoperiod (10 -> 11 h),
    multiplied and averaged over a ``window``-day running mean along ``axis``
    (time, NaN VPD = no limitation). Unit 1."""
    i_t = np.clip((np.asarray(tmin, float) + 2.0) / 7.0, 0.0, 1.0)
    i_v = 1.0 - np.clip((np.nan_to_num(np.asarray(vpd_hpa, float), nan=0.0) * 100.0 - 900.0) / 3200.0, 0.0, 1.0)
    i_p = np.clip(np.asarray(day_length, float) - 10.0, 0.0, 1.0)
    g = np.moveaxis(i_t * i_v * i_p, axis, 0)
    c = np.cumsum(np.concatenate([np.zeros((1,) + g.shape[1:]), g], 0), 0)
    n = g.shape[0]
    lo = np.clip(np.arange(n) - window // 2, 0, n)
    hi = np.clip(np.arange(n) + window // 2 + 1, 0, n)
    sh = (-1,) + (1,) * (g.ndim - 1)
    return np.moveaxis((c[hi] - c[lo]) / (hi - lo).reshape(sh), 0, axis)


def add_derived_features(ds: xr.Dataset, *, vprm_class=None, latitude=None) -> xr.Dataset:
    """Add the derived columns of :data:`FEATURES` to a daily feature Dataset (any dims,
    ``time`` first): photoperiod, GSI, greenness (EVI, else ``0.1 + 0.35 GSI``), the
    ``has_*`` flags (NaN filled with 0), day-of-year harmonics and class one-hots.

    Needs ``air_temperature`` (degC), ``air_temperature_min`` (degC, else mean - range/2),
    ``ppfd_in``; optional ``vpd`` (hPa), ``soil_water_relative`` (1), ``evi``, ``fapar``,
    ``lswi`` (1); ``latitude`` (variable, attribute or argument, degrees_north) and
    ``vprm_class`` (variable, attribute or argument)."""
    for v in ("air_temperature", "ppfd_in"):
        if v not in ds:
            raise DataValidationError("is missing from the feature Dataset.", source="upscaling features",
                                      variable=v, fix=f"add {v} (daily mean, see emulator.upscaling.tables.FEATURES).")
    ds = ds.copy()
    lat = ds["latitude"] if "latitude" in ds else (latitude if latitude is not None else ds.attrs.get("latitude"))
    if lat is None:
        raise DataValidationError("no latitude given.", source="upscaling features", variable="latitude",
                                  fix="add a 'latitude' variable/attribute (degrees_north) or pass latitude=.")
    doy = xr.DataArray(pd.DatetimeIndex(ds["time"].values).day_of_year.values, dims="time")
    ref = ds["air_temperature"]
    dl = xr.zeros_like(ref) + xr.apply_ufunc(photoperiod, lat, doy)
    ds["photoperiod"] = dl.transpose(*ref.dims).assign_attrs(units="h")
    if "air_temperature_range" not in ds:
        ds["air_temperature_range"] = xr.zeros_like(ref).assign_attrs(units="K")
    tmin = ds["air_temperature_min"] if "air_temperature_min" in ds else ref - 0.5 * ds["air_temperature_range"]
    vpd = ds["vpd"] if "vpd" in ds else xr.full_like(ref, np.nan)
    ax = ref.dims.index("time")
    ds["gsi"] = ref.copy(data=growing_season_index(tmin.transpose(*ref.dims).values,
                                                   vpd.transpose(*ref.dims).values, ds["photoperiod"].values,
                                                   axis=ax)).assign_attrs(units="1")
    for v in ("evi", "fapar", "lswi", "soil_water_relative"):
        x = ds[v] if v in ds else xr.full_like(ref, np.nan)
        flag = "has_soil_water" if v == "soil_water_relative" else f"has_{v}"
        ds[flag] = np.isfinite(x).astype(float).assign_attrs(units="1")
        ds[v] = x.fillna(0.0).assign_attrs(units="1")
    if "vpd" not in ds:
        ds["vpd"] = xr.full_like(ref, 5.0).assign_attrs(units="hPa")
    ds["vpd"] = ds["vpd"].fillna(5.0)
    ds["greenness"] = xr.where(ds["has_evi"] > 0, ds["evi"], 0.1 + 0.35 * ds["gsi"]).assign_attrs(units="1")
    ds["greenness_is_proxy"] = (1.0 - ds["has_evi"]).assign_attrs(units="1")
    ds["doy_sin"] = np.sin(2 * np.pi * doy / 365.25) + xr.zeros_like(ref)
    ds["doy_cos"] = np.cos(2 * np.pi * doy / 365.25) + xr.zeros_like(ref)
    cls = ds["vprm_class"] if "vprm_class" in ds else (vprm_class if vprm_class is not None else ds.attrs.get("vprm_class"))
    if cls is None:
        raise DataValidationError("no land-cover class given.", source="upscaling features", variable="vprm_class",
                                  fix=f"add 'vprm_class' (pyVPRM class id, one of {CLASSES}) or pass vprm_class=.")
    for c in CLASSES:
        ds[f"class_{c}"] = (xr.zeros_like(ref) + (xr.DataArray(cls) == c)).astype(float).assign_attrs(units="1")
    for v in ("doy_sin", "doy_cos"):
        ds[v].attrs["units"] = "1"
    return ds


# ------------------------------------------------------------------------- daily rows
def _daily_from_subdaily(s: xr.Dataset) -> xr.Dataset:
    """Daily means, QC share, daily error and the 24 hourly T/PPFD of each day."""
    df = s.to_dataframe()
    day = df.index.floor("D")
    g = df.groupby(day)
    n = np.minimum(g["air_temperature"].count(), g["ppfd_in"].count())
    full = g.size()
    d = pd.DataFrame({
        "nee": g["nee"].mean(), "gpp": g["gpp"].mean(), "reco": g["reco"].mean(),
        "air_temperature": g["air_temperature"].mean(), "air_temperature_min": g["air_temperature"].min(),
        "air_temperature_range": g["air_temperature"].max() - g["air_temperature"].min(),
        "ppfd_in": g["ppfd_in"].mean(), "vpd": g["vpd"].mean(),
        "soil_water_content": g["soil_water_content"].mean(),
        "qc_fraction": g["nee_measured"].mean(),
        "nee_sd": np.sqrt(g["nee_sd"].apply(lambda x: np.nansum(np.square(x)))) / full
        + g["nee_ustar_sd"].mean().fillna(0.0),
    })
    d = d[(full >= 0.9 * full.max()) & (n >= 0.9 * full.max())]
    # long gaps: where the centred 15-day share of measured half-hours is < 5 % the
    # gap-filled fluxes are extrapolations (e.g. US-PFa has no measured NEE from October
    # on); they are not used as targets
    if np.isfinite(d["qc_fraction"]).any() and d["qc_fraction"].max() > 0:
        local = d["qc_fraction"].reindex(pd.date_range(d.index.min(), d.index.max(), freq="D"))
        local = local.fillna(0.0).rolling(15, center=True, min_periods=1).mean().reindex(d.index)
        d.loc[local < 0.05, ["nee", "gpp", "reco"]] = np.nan
    d.loc[~np.isfinite(d["nee"]), "nee_sd"] = np.nan
    hourly = df[["air_temperature", "ppfd_in"]].resample("1h").mean()
    hourly = hourly.reindex(pd.date_range(d.index.min(), d.index.max() + pd.Timedelta(hours=23), freq="1h"))
    hourly = hourly.interpolate(limit_direction="both")
    th = hourly["air_temperature"].values.reshape(-1, 24)
    ph = hourly["ppfd_in"].values.reshape(-1, 24)
    days = pd.date_range(d.index.min(), d.index.max(), freq="D")
    pos = days.get_indexer(d.index)
    out = xr.Dataset.from_dataframe(d.rename_axis("time"))
    out["air_temperature_hourly"] = (("time", "hour"), th[pos])
    out["ppfd_in_hourly"] = (("time", "hour"), np.clip(ph[pos], 0.0, None))
    return out


def _diurnal(day_index: pd.DatetimeIndex, tmean, tmin, tmax, ppfd, latitude):
    """24 hourly T (sinusoid between tmin at 05 h and tmax at 15 h) and PPFD (the daily
    mean shaped by the clear-sky cos(zenith), local solar time) for daily-only records."""
    from process_models.solar import solar_declination
    hours = np.arange(24) + 0.5
    doy = day_index.day_of_year.values[:, None]
    dec = np.asarray(solar_declination(doy))
    phi = np.deg2rad(latitude)
    cz = np.clip(np.sin(phi) * np.sin(dec) + np.cos(phi) * np.cos(dec) * np.cos(np.pi * (hours - 12.0) / 12.0), 0, None)
    par = np.asarray(ppfd)[:, None] * cz / np.maximum(cz.mean(1, keepdims=True), 1e-6)
    amp = 0.5 * (np.asarray(tmax) - np.asarray(tmin))[:, None]
    t = np.asarray(tmean)[:, None] + amp * np.cos(np.pi * (hours - 15.0) / 10.0)
    return t, par


def _fr_pue_daily() -> xr.Dataset:
    from process_models.io import data_path
    f = pd.read_csv(data_path(_RSOFUN, "p_model_drivers_forcing.csv"), parse_dates=["date"]).set_index("date")
    v = pd.read_csv(data_path(_RSOFUN, "p_model_validation.csv"), parse_dates=["date"]).set_index("date")
    idx = pd.DatetimeIndex(f.index)
    d = pd.DataFrame({
        "nee": np.nan, "gpp": v["gpp"].reindex(idx) / UMOL_TO_GC_DAY, "reco": np.nan,
        "air_temperature": f["temp"], "air_temperature_min": f["tmin"],
        "air_temperature_range": f["tmax"] - f["tmin"], "ppfd_in": f["ppfd"] * 1e6,
        "vpd": f["vpd"] / 100.0, "soil_water_content": np.nan, "qc_fraction": 1.0, "nee_sd": np.nan,
        "fapar": f["fapar"]}, index=idx)
    t, p = _diurnal(idx, d["air_temperature"], f["tmin"], f["tmax"], d["ppfd_in"], TOWERS["FR-Pue"].latitude)
    out = xr.Dataset.from_dataframe(d.rename_axis("time"))
    out["air_temperature_hourly"] = (("time", "hour"), t)
    out["ppfd_in_hourly"] = (("time", "hour"), p)
    return out


def daily_table(name: str, *, n_bootstrap: int = 5, cache_dir=None) -> xr.Dataset:
    """Daily training rows of tower ``name`` on ``time`` (and ``hour`` = 0..23 for the
    hourly drivers): fluxes (umol m-2 s-1, NaN where not observed), ``nee_sd``,
    ``qc_fraction``, raw drivers, satellite indices on the days, and the derived
    :data:`FEATURES` (:func:`add_derived_features`). Attributes: site, class, coordinates,
    satellite source. ``cache_dir``: read/write ``<cache_dir>/<name>_daily.nc`` (the
    tower processing takes seconds per site-year)."""
    meta = _meta(name)
    if cache_dir is not None:
        from pathlib import Path
        path = Path(cache_dir) / f"{name}_daily_b{n_bootstrap}.nc"
        if path.exists():
            with xr.open_dataset(path) as f:
                return f.load()
        ds = daily_table(name, n_bootstrap=n_bootstrap)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        ds.to_netcdf(tmp)
        tmp.replace(path)
        return ds
    parts = [_daily_from_subdaily(s) for s in load_tower(name, n_bootstrap=n_bootstrap)]
    if name == "FR-Pue":      # 6 years of daily GPP; May 2012 from the half-hourly month
        daily = _fr_pue_daily()
        month = parts[0]
        daily = daily.drop_sel(time=np.intersect1d(daily.time.values, month.time.values))
        month["fapar"] = ("time", np.interp(month.time.values.astype(float), daily.time.values.astype(float),
                                            daily["fapar"].values))
        parts = [daily, month]
    ds = xr.concat(parts, "time", data_vars="all", join="outer").sortby("time") if len(parts) > 1 else parts[0]
    if not ds.sizes.get("time"):
        raise DataValidationError("no complete days.", source=name, variable="time",
                                  fix="check the tower files in ../shared/data.")
    days = pd.DatetimeIndex(ds.time.values)
    sat = load_satellite(name)
    for v in ("evi", "lswi", "fapar"):
        if v in sat:
            ds[v] = ("time", _on_days(sat[v], days)[0])
    swc = ds["soil_water_content"].values
    if np.isfinite(swc).sum() > 30:
        lo, hi = np.nanpercentile(swc, [2, 98])
        ds["soil_water_relative"] = ("time", np.clip((swc - lo) / max(hi - lo, 1e-3), -0.2, 1.2))
    ds = add_derived_features(ds, vprm_class=meta.vprm_class, latitude=meta.latitude)
    ds = ds.assign_coords(hour=np.arange(24))
    units = {"nee": "umol m-2 s-1", "gpp": "umol m-2 s-1", "reco": "umol m-2 s-1", "nee_sd": "umol m-2 s-1",
             "air_temperature": "degC", "air_temperature_min": "degC", "air_temperature_range": "K",
             "air_temperature_hourly": "degC", "ppfd_in": "umol m-2 s-1", "ppfd_in_hourly": "umol m-2 s-1",
             "vpd": "hPa", "soil_water_content": "m3 m-3", "qc_fraction": "1"}
    for v in ds.data_vars:
        ds[v].attrs.setdefault("units", units.get(v, "1"))
        if v in units:
            ds[v].attrs["units"] = units[v]
    ds.attrs.update(site_id=name, vprm_class=meta.vprm_class, igbp=meta.igbp, latitude=meta.latitude,
                    longitude=meta.longitude, satellite_source=sat["source"])
    return ds


def hourly_table(name: str, *, n_bootstrap: int = 5) -> xr.Dataset:
    """Hourly rows (half-hours averaged to hours) of tower ``name``: fluxes, ``nee_sd``
    (sqrt of the mean variance / 2 for two half-hours), drivers, and the daily satellite
    indices / greenness of the day. Not for FR-Pue's daily-only years."""
    parts = []
    for s in load_tower(name, n_bootstrap=n_bootstrap):
        step = float((s.time.values[1] - s.time.values[0]) / np.timedelta64(1, "s"))
        h = s.astype(float).resample(time="1h").mean()
        if step < 3600:
            h["nee_sd"] = np.sqrt((s["nee_sd"] ** 2).resample(time="1h").mean() / (3600 / step))
        parts.append(h)
    h = xr.concat(parts, "time") if len(parts) > 1 else parts[0]
    d = daily_table(name, n_bootstrap=n_bootstrap)
    day = h.time.dt.floor("D")
    for v in ("greenness", "gsi", "evi", "fapar", "lswi", "has_evi", "has_fapar"):
        h[v] = ("time", d[v].reindex(time=day.values).values)
    for v in h.data_vars:
        h[v].attrs.setdefault("units", d[v].attrs.get("units", "1") if v in d else s[v].attrs.get("units", "1"))
    h.attrs.update(d.attrs)
    return h


def training_table(names, *, n_bootstrap: int = 5, progress: bool = False, cache_dir=None) -> xr.Dataset:
    """Rows of all ``names`` stacked on ``sample`` (coords ``site``, ``time``) with the
    ``weight`` described in the module docstring (mean 1 over rows with NEE or GPP)."""
    from tqdm.auto import tqdm

    parts = []
    for name in tqdm(list(names), desc="training tables", disable=not progress):
        d = daily_table(name, n_bootstrap=n_bootstrap, cache_dir=cache_dir)
        keep = ["nee", "gpp", "reco", "nee_sd", "qc_fraction", "air_temperature_hourly", "ppfd_in_hourly",
                "soil_water_content", *FEATURES]
        d = d[keep].drop_vars("hour")
        d = d.rename(time="sample").assign_coords(site=("sample", [name] * d.sizes["time"]),
                                                   time=("sample", d["time"].values))
        d = d.drop_vars("time").assign_coords(time=("sample", d.sample.values)).drop_vars("sample")
        sd2 = d["nee_sd"].values ** 2
        med = np.nanmedian(sd2) if np.isfinite(sd2).any() else 1.0
        err_w = np.where(np.isfinite(sd2), np.clip(med / np.maximum(sd2, 1e-12), 0.2, 5.0), 1.0)
        w = np.maximum(np.nan_to_num(d["qc_fraction"].values, nan=1.0), 0.1) * err_w / np.sqrt(d.sizes["sample"])
        d["weight"] = ("sample", w)
        parts.append(d)
    t = xr.concat(parts, "sample")
    has = np.isfinite(t["nee"].values) | np.isfinite(t["gpp"].values)
    t["weight"] = t["weight"] / np.mean(t["weight"].values[has])
    t["weight"].attrs["units"] = "1"
    return t.assign_coords(hour=np.arange(24))
