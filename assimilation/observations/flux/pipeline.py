"""One call from a tower Dataset (reader output) to filled, partitioned NEE with errors.

:func:`process_tower` chains :mod:`.qc` -> :mod:`.ustar` -> :mod:`.gapfill_mds` ->
:mod:`.random_error` -> :mod:`.partition_nighttime` -> :mod:`.partition_daytime` and
returns an :class:`xarray.Dataset` on the input time axis with ``units`` on every
variable. xarray is used only here, at the edge.
"""
from __future__ import annotations

import numpy as np
import xarray as xr

from process_models.units import DataValidationError

from .gapfill_mds import MDSSettings, mds_gapfill
from .partition_daytime import DayTimeSettings, partition_daytime
from .partition_nighttime import NightTimeSettings, partition_nighttime
from .qc import despike_mad, select_valid
from .random_error import (fit_flux_magnitude_model, nee_uncertainty, paired_differences,
                           similar_conditions_sd)
from .ustar import UstarSettings, estimate_ustar_threshold, ustar_filter

__all__ = ["process_tower"]

_REQUIRED = ("nee", "shortwave_in", "air_temperature", "vpd")


def _var(values, units, long_name, **attrs):
    a = {"units": units, "long_name": long_name}
    a.update(attrs)
    return ("time", np.asarray(values), a)


def process_tower(ds: xr.Dataset, *, nee_var: str = "nee", qc_var: str | None = None,
                  good_flags=(0,), despike: bool = True, despike_z: float = 7.0,
                  ustar_threshold="mpt", n_bootstrap: int = 100, seed: int = 0,
                  partition: bool = True, mds_settings: MDSSettings = MDSSettings(),
                  ustar_settings: UstarSettings = UstarSettings(),
                  nighttime_settings: NightTimeSettings = NightTimeSettings(),
                  daytime_settings: DayTimeSettings = DayTimeSettings()) -> xr.Dataset:
    """Process half-hourly (or hourly) tower NEE into an observation product.

    Parameters
    ----------
    ds : Dataset from a :mod:`process_models.io` reader with ``nee`` (umol m-2 s-1),
        ``shortwave_in`` (W m-2), ``air_temperature`` (degC), ``vpd`` (hPa) and, for the
        u* test, ``ustar`` (m s-1) on a regular ``time`` axis (interval start).
    nee_var : name of the NEE variable.
    qc_var, good_flags : optional quality-flag variable and the flag values to keep
        (e.g. ``"nee_qc"``, ``(1,)`` for the hesseflux convention).
    despike, despike_z : MAD spike removal (Papale et al. 2006) and its z.
    ustar_threshold : ``"mpt"`` (moving-point test with bootstrap), a number (m s-1), or
        ``None`` (no u* filtering, e.g. when the input is already filtered).
    n_bootstrap, seed : bootstrap draws for the u* threshold uncertainty.
    partition : run night- and day-time partitioning.

    Returns
    -------
    xarray.Dataset with ``nee_measured``, ``nee_filled``, ``nee_qc`` (0-3), ``nee_fsd``,
    ``nee_fnum``, ``nee_fmeth``, ``nee_uncertainty`` (+ ``_method``), ``spike_flag``,
    ``ustar_flag``, ``ustar_threshold`` (+ ``_p05/_p50/_p95``), ``reco_nt``, ``gpp_nt``,
    ``reco_dt``, ``gpp_dt``, ``e0_nt``; settings and diagnostics in ``attrs``.

    Raises
    ------
    DataValidationError : a required variable is missing, the time axis is irregular,
        or no valid NEE remains. Partitioning failures (e.g. no night-time data) are
        not raised: the partitioned variables are NaN and ``attrs`` say why.
    """
    src = ds.attrs.get("source_file", "<dataset>")
    for v in (nee_var,) + _REQUIRED[1:]:
        if v not in ds:
            raise DataValidationError(f"variable {v!r} is missing.", source=src, variable=v,
                                      fix=f"the pipeline needs {(nee_var,) + _REQUIRED[1:]}.")
    time = ds["time"].values
    step = np.diff(time.astype("datetime64[s]").astype(np.int64))
    if step.size and np.any(step != step[0]):
        raise DataValidationError("the time axis is not regular.", source=src, variable="time",
                                  fix="reindex to a regular axis (missing records as NaN).")
    spd = int(round(86400 / float(step[0]))) if step.size else 48
    nee = ds[nee_var].values.astype(float)
    rg = ds["shortwave_in"].values.astype(float)
    tair = ds["air_temperature"].values.astype(float)
    vpd = ds["vpd"].values.astype(float)
    attrs = {"site_id": ds.attrs.get("site_id", ""), "steps_per_day": spd,
             "utc_offset_hours": ds.attrs.get("utc_offset_hours", np.nan),
             "nee_sign_convention": "NEE = Reco - GPP; positive = CO2 source",
             "processing": "ecoflux assimilation.observations.flux.process_tower"}

    flags = ds[qc_var].values if qc_var else None
    valid = select_valid(nee, flags, good_flags=good_flags, name=nee_var)
    spikes = despike_mad(nee, rg, steps_per_day=spd, z=despike_z, valid=valid) if despike \
        else np.zeros(nee.size, bool)
    valid &= ~spikes

    thr_rec = np.full(nee.size, np.nan)
    pct_rec = np.full((nee.size, 3), np.nan)
    years = time.astype("datetime64[Y]").astype(int) + 1970
    if isinstance(ustar_threshold, str) and ustar_threshold == "mpt":
        if "ustar" not in ds:
            raise DataValidationError("u* threshold estimation needs 'ustar'.", source=src,
                                      variable="ustar",
                                      fix="pass ustar_threshold=None (already filtered) or a number.")
        us = estimate_ustar_threshold(np.where(valid, nee, np.nan), ds["ustar"].values, tair,
                                      rg, time, n_bootstrap=n_bootstrap, seed=seed,
                                      settings=ustar_settings)
        for y in us.threshold:  # a handful of years
            sel = years == y
            thr = us.threshold[y]
            if not np.isfinite(thr):
                thr = us.percentiles[y][1]
            thr_rec[sel] = thr
            pct_rec[sel] = us.percentiles[y]
        attrs["ustar_thresholds"] = str({y: round(v, 4) for y, v in us.threshold.items()})
        attrs["ustar_method"] = "moving-point test (Papale et al. 2006), annual = max of seasons"
    elif ustar_threshold is not None:
        thr_rec[:] = float(ustar_threshold)
        attrs["ustar_method"] = "fixed threshold"
    else:
        attrs["ustar_method"] = "none (input taken as already u*-filtered)"
    if ustar_threshold is not None and "ustar" in ds:
        uflag = ustar_filter(ds["ustar"].values, rg, thr_rec, night_rg=ustar_settings.night_rg)
    else:
        uflag = np.zeros(nee.size, bool)
    valid &= ~uflag
    measured = np.where(valid, nee, np.nan)
    if not valid.any():
        raise DataValidationError("no NEE left after QC, despiking and u* filtering.",
                                  source=src, variable=nee_var,
                                  fix="check flags and the u* threshold.")

    mds = mds_gapfill(measured, rg, tair, vpd, steps_per_day=spd, settings=mds_settings)
    sd_sim, _ = similar_conditions_sd(measured, rg, tair, vpd, steps_per_day=spd)
    fm, pe = paired_differences(measured, tair, rg, vpd, steps_per_day=spd)
    try:
        model = fit_flux_magnitude_model(fm, pe, paired=True)
        unc, unc_m = nee_uncertainty(mds.filled, valid, sd_sim, model)
        attrs["random_error_model"] = (f"sigma = {model.a:.3f} + {model.b_plus:.3f} F+ + "
                                       f"{model.b_minus:.3f} F- (umol m-2 s-1)")
    except DataValidationError as err:
        unc = np.where(valid, sd_sim, mds.sd)
        unc_m = np.where(valid & np.isfinite(sd_sim), 1, 3).astype(np.int8)
        attrs["random_error_model"] = f"not fitted: {err.problem}"

    out = {
        "nee_measured": _var(measured, "umol m-2 s-1", "NEE used (after QC, despiking, u* filter)"),
        "nee_filled": _var(mds.filled, "umol m-2 s-1", "MDS gap-filled NEE (Reichstein 2005)"),
        "nee_qc": _var(mds.qc, "1", "0 measured, 1-3 MDS fill quality (NaN unfilled)"),
        "nee_fsd": _var(mds.sd, "umol m-2 s-1", "SD of the MDS similar records (fsd)"),
        "nee_fnum": _var(mds.count, "1", "number of MDS similar records"),
        "nee_fmeth": _var(mds.method, "1", "MDS method: 1 LUT Rg+VPD+Tair, 2 LUT Rg, 3 MDC"),
        "nee_uncertainty": _var(unc, "umol m-2 s-1", "random error of NEE (observation error)"),
        "nee_uncertainty_method": _var(unc_m, "1", "1 similar-conditions SD, 2 flux-magnitude model"),
        "spike_flag": _var(spikes.astype(np.int8), "1", "1 = spike (Papale 2006 MAD test)"),
        "ustar_flag": _var(uflag.astype(np.int8), "1", "1 = night record below the u* threshold"),
        "ustar_threshold": _var(thr_rec, "m s-1", "u* threshold of the record's year"),
        "ustar_threshold_p05": _var(pct_rec[:, 0], "m s-1", "u* threshold, bootstrap 5th percentile"),
        "ustar_threshold_p50": _var(pct_rec[:, 1], "m s-1", "u* threshold, bootstrap median"),
        "ustar_threshold_p95": _var(pct_rec[:, 2], "m s-1", "u* threshold, bootstrap 95th percentile"),
    }
    nan = np.full(nee.size, np.nan)
    reco_nt = gpp_nt = e0 = reco_dt = gpp_dt = nan
    if partition:
        try:
            nt = partition_nighttime(measured, mds.filled, tair, rg, time, steps_per_day=spd,
                                     settings=nighttime_settings)
            reco_nt, gpp_nt, e0 = nt.reco, nt.gpp, nt.e0
            attrs["e0_by_year"] = str({y: (round(v[0], 1), v[2]) for y, v in nt.e0_by_year.items()})
            try:
                dt = partition_daytime(measured, tair, rg, vpd, sigma=unc, e0=nt.e0,
                                       rb_prior=nt.r_ref, steps_per_day=spd,
                                       settings=daytime_settings)
                reco_dt, gpp_dt = dt.reco, dt.gpp
            except DataValidationError as err:
                attrs["partition_daytime_status"] = f"failed: {err.problem}"
        except DataValidationError as err:
            attrs["partition_nighttime_status"] = f"failed: {err.problem}"
            attrs["partition_daytime_status"] = "not run (needs the night-time E0)"
    out.update({
        "reco_nt": _var(reco_nt, "umol m-2 s-1", "Reco, night-time method (Reichstein 2005)"),
        "gpp_nt": _var(gpp_nt, "umol m-2 s-1", "GPP = Reco_NT - NEE_filled"),
        "e0_nt": _var(e0, "K", "Lloyd-Taylor E0 of the record's year"),
        "reco_dt": _var(reco_dt, "umol m-2 s-1", "Reco, day-time method (Lasslop 2010)"),
        "gpp_dt": _var(gpp_dt, "umol m-2 s-1", "GPP, day-time method (Lasslop 2010)"),
    })
    return xr.Dataset(out, coords={"time": ds["time"]}, attrs=attrs)
