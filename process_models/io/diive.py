"""Reader for diive (ETH Zurich) parquet files of half-hourly flux-processing output
(e.g. the CH-Dav FP2022.5 example data)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..units import DataValidationError
from ._tower import VariableBuilder, finish_dataset, infer_step, site_and_offset

__all__ = ["read_diive_parquet", "DIIVE_CANONICAL", "DIIVE_EXTRA", "DIIVE_FLAGS"]

_FLUX = "umol m-2 s-1"

#: canonical name -> (column, unit). diive stores no units; these follow ETH/REddyProc
#: naming and were checked against the value ranges (see PROVENANCE.md).
DIIVE_CANONICAL: dict[str, tuple[str, str]] = {
    "nee": ("NEE_CUT_REF_orig", _FLUX),
    "nee_filled": ("NEE_CUT_REF_f", _FLUX),
    "gpp": ("GPP_CUT_REF_f", _FLUX),
    "reco": ("Reco_CUT_REF", _FLUX),
    "le": ("LE_orig", "W m-2"),
    "air_temperature": ("Tair_f", "degC"),
    "vpd": ("VPD_f", "hPa"),
    "shortwave_in": ("Rg_f", "W m-2"),
    "ppfd_in": ("PPFD", "umol m-2 s-1"),
    "longwave_in": ("LW_IN", "W m-2"),
    "relative_humidity": ("RH", "%"),
    "air_pressure": ("PA", "hPa"),
    "precipitation": ("PREC_TOT_T1_25+20_1", "mm"),
    "soil_water_content": ("SWC_FF0_0.15_1", "%"),
}

#: extra name -> (column, unit, canonical variable it is like, long name)
DIIVE_EXTRA: dict[str, tuple[str, str, str, str]] = {
    "nee_cut_16": ("NEE_CUT_16_orig", _FLUX, "nee", "measured NEE, u* filter at 16th percentile"),
    "nee_cut_84": ("NEE_CUT_84_orig", _FLUX, "nee", "measured NEE, u* filter at 84th percentile"),
    "nee_filled_cut_16": ("NEE_CUT_16_f", _FLUX, "nee_filled",
                          "gap-filled NEE, u* threshold 16th percentile"),
    "nee_filled_cut_84": ("NEE_CUT_84_f", _FLUX, "nee_filled",
                          "gap-filled NEE, u* threshold 84th percentile"),
    "gpp_cut_16": ("GPP_CUT_16_f", _FLUX, "gpp", "GPP, nighttime partitioning, u* 16th pct"),
    "gpp_cut_84": ("GPP_CUT_84_f", _FLUX, "gpp", "GPP, nighttime partitioning, u* 84th pct"),
    "reco_cut_16": ("Reco_CUT_16", _FLUX, "reco", "Reco, nighttime partitioning, u* 16th pct"),
    "reco_cut_84": ("Reco_CUT_84", _FLUX, "reco", "Reco, nighttime partitioning, u* 84th pct"),
    "gpp_dt": ("GPP_DT_CUT_REF", _FLUX, "gpp", "GPP, daytime partitioning (Lasslop 2010)"),
    "gpp_dt_cut_16": ("GPP_DT_CUT_16", _FLUX, "gpp", "GPP, daytime partitioning, u* 16th pct"),
    "gpp_dt_cut_84": ("GPP_DT_CUT_84", _FLUX, "gpp", "GPP, daytime partitioning, u* 84th pct"),
    "reco_dt": ("Reco_DT_CUT_REF", _FLUX, "reco", "Reco, daytime partitioning (Lasslop 2010)"),
    "reco_dt_cut_16": ("Reco_DT_CUT_16", _FLUX, "reco", "Reco, daytime partitioning, u* 16th pct"),
    "reco_dt_cut_84": ("Reco_DT_CUT_84", _FLUX, "reco", "Reco, daytime partitioning, u* 84th pct"),
    "reco_dt_sd": ("Reco_DT_CUT_REF_SD", _FLUX, "reco",
                   "standard deviation of daytime-partitioned Reco"),
    "ustar_threshold": ("Ustar_CUT_REF_Thres", "m s-1", "ustar",
                        "constant u* threshold used for the CUT_REF scenario"),
    "le_filled": ("LE_f", "W m-2", "le", "latent heat flux, gap-filled"),
    "air_temperature_measured": ("Tair_orig", "degC", "air_temperature",
                                 "air temperature, measured (not gap-filled)"),
    "vpd_measured": ("VPD_orig", "hPa", "vpd", "vapour pressure deficit, measured"),
    "shortwave_in_measured": ("Rg_orig", "W m-2", "shortwave_in",
                              "incoming shortwave radiation, measured"),
}

#: plain extras: name -> (column, unit, long name)
DIIVE_PLAIN: dict[str, tuple[str, str, str]] = {
    "et_filled": ("ET_f", "mmol m-2 s-1", "evapotranspiration, gap-filled (unit inferred)"),
}

#: flag name -> (column, long name)
DIIVE_FLAGS: dict[str, tuple[str, str]] = {
    "nee_qc": ("QCF_NEE", "diive/ETH overall quality flag of NEE (0 best, 1 ok, 2 bad)"),
    "le_qc": ("QCF_LE", "diive/ETH overall quality flag of LE (0 best, 1 ok, 2 bad)"),
}

_PARTITIONING = {
    "gpp": "nighttime (Reichstein et al. 2005), constant u* threshold, reference",
    "reco": "nighttime (Reichstein et al. 2005), constant u* threshold, reference",
    "gpp_dt": "daytime (Lasslop et al. 2010), constant u* threshold, reference",
    "reco_dt": "daytime (Lasslop et al. 2010), constant u* threshold, reference",
}

_TIME_COLUMNS = {"TIMESTAMP_MIDDLE": 0.5, "TIMESTAMP_START": 0.0, "TIMESTAMP_END": 1.0}

_CITATION = "Hörtnagl, L.: diive - time series processing, https://github.com/holukas/diive."
_SITE_CITATION = {
    "CH-Dav": ("Zielis, S. et al. (2014) NEP of a Swiss subalpine forest is significantly "
               "driven not only by current but also by previous year's weather. "
               "Biogeosciences 11, 1627-1635."),
}


def _bad(src, problem, err=None, variable=None):
    return DataValidationError(
        problem + (f" ({type(err).__name__}: {str(err)[:200]})" if err else ""),
        source=src, variable=variable,
        fix="re-copy the file; compare its sha256 with PROVENANCE.md.")


def read_diive_parquet(path: str | os.PathLike, *, utc_offset_hours: float | None = None,
                       site_id: str | None = None):
    """Read a diive half-hourly parquet file (ETH flux-processing chain output).

    Format
    ------
    Apache parquet written by pandas: one row per half-hour, a ``DatetimeIndex``
    stored as column ``TIMESTAMP_MIDDLE`` (``TIMESTAMP_START`` / ``TIMESTAMP_END``
    are accepted too), float64 columns, missing values NaN (``-9999`` would also be
    masked). **The file stores no units**; those below follow ETH/REddyProc naming
    and the value ranges in PROVENANCE.md (VPD and PA in hPa, SWC in %). A
    timestamp column is required; the variables are optional.

    Time
    ----
    ``TIMESTAMP_MIDDLE`` is the **middle** of the interval (00:15, 00:45, ...) in
    local standard time; ``time = TIMESTAMP_MIDDLE - step/2`` (step = most common
    difference, 30 min), so CH-Dav starts at 2013-01-01 00:00. ``TIMESTAMP_END`` is
    shifted by a whole step, ``TIMESTAMP_START`` not at all. ``utc_offset_hours``
    defaults to the known site offset (CH-Dav: +1), else NaN.

    Variables (column -> name; unit in file -> canonical unit)
    ----------------------------------------------------------
    ``NEE_CUT_REF_orig`` -> ``nee`` (measured, u*-filtered), ``NEE_CUT_REF_f`` ->
    ``nee_filled``, ``GPP_CUT_REF_f`` -> ``gpp`` and ``Reco_CUT_REF`` -> ``reco``
    (nighttime partitioning), ``GPP_DT_CUT_REF`` -> ``gpp_dt``, ``Reco_DT_CUT_REF``
    -> ``reco_dt`` (all umol m-2 s-1); u* scenarios ``nee_cut_16/84``,
    ``nee_filled_cut_16/84``, ``gpp_cut_16/84``, ``reco_cut_16/84``,
    ``gpp_dt_cut_16/84``, ``reco_dt_cut_16/84``, ``reco_dt_sd``;
    ``Ustar_CUT_REF_Thres`` -> ``ustar_threshold`` m s-1;
    ``LE_orig`` -> ``le`` W m-2, ``LE_f`` -> ``le_filled``; ``ET_f`` -> ``et_filled``
    mmol m-2 s-1 (inferred).
    Meteorology uses the gap-filled ``_f`` columns (as for FLUXNET ``_F``):
    ``Tair_f`` -> ``air_temperature`` degC, ``VPD_f`` -> ``vpd`` hPa, ``Rg_f`` ->
    ``shortwave_in`` W m-2; the measured ``_orig`` ones are kept as
    ``air_temperature_measured``, ``vpd_measured``, ``shortwave_in_measured``.
    ``PPFD`` -> ``ppfd_in`` umol m-2 s-1; ``LW_IN`` -> ``longwave_in`` W m-2;
    ``RH`` -> ``relative_humidity`` %; ``PA`` (hPa) -> ``air_pressure`` kPa (x 0.1);
    ``PREC_TOT_T1_25+20_1`` -> ``precipitation`` mm per record;
    ``SWC_FF0_0.15_1`` (%, 0.15 m) -> ``soil_water_content`` m3 m-3 (x 0.01).
    Flags (units ``"1"``): ``QCF_NEE`` -> ``nee_qc``, ``QCF_LE`` -> ``le_qc``
    (0 best, 2 worst).

    Raises
    ------
    DataValidationError : empty, truncated or non-parquet file, no timestamp column,
        non-numeric columns, implausible values, duplicated or unsorted timestamps.

    Citation
    --------
    Hörtnagl, L., diive, https://github.com/holukas/diive (GPL-3.0); CH-Dav: Zielis
    et al. (2014) Biogeosciences 11, 1627-1635; attribute the CH-Dav PIs (ETH) and
    ICOS Switzerland.
    """
    import pyarrow as pa
    import pyarrow.parquet as pq

    src = str(path)
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"{p}: no such file.")
    if p.stat().st_size == 0:
        raise DataValidationError("the file is empty.", source=src,
                                  fix="re-copy the file; compare its sha256 with PROVENANCE.md.")
    try:
        table = pq.read_table(p)
        df = table.to_pandas()
    except (pa.ArrowException, OSError, ValueError, TypeError, KeyError) as err:
        raise _bad(src, "not a readable parquet file (truncated or corrupt)", err) from err

    if df.index.name in _TIME_COLUMNS:
        tname = df.index.name
        tvals = df.index
    else:
        tname = next((c for c in _TIME_COLUMNS if c in df.columns), None)
        if tname is None:
            raise DataValidationError(
                f"no timestamp found: expected a {'/'.join(_TIME_COLUMNS)} index or column "
                f"(index is {df.index.name!r}).", source=src, variable="TIMESTAMP_MIDDLE",
                fix="write the parquet with a DatetimeIndex named TIMESTAMP_MIDDLE.")
        tvals = df.pop(tname)
    try:
        t = np.asarray(tvals, dtype="datetime64[ns]")
    except (TypeError, ValueError) as err:
        raise _bad(src, f"timestamps in {tname} are not datetimes", err, tname) from err
    if np.isnat(t).any():
        i = int(np.argmax(np.isnat(t)))
        raise DataValidationError(f"missing timestamp in row {i}.", source=src, variable=tname,
                                  fix="every record needs a timestamp.")
    step = infer_step(t, source=src)
    shift = _TIME_COLUMNS[tname]
    step_ns = int(step / np.timedelta64(1, "ns"))
    time = t - np.timedelta64(int(round(step_ns * shift)), "ns")

    def col(c):
        s = df[c]
        if s.dtype.kind not in "iufb":
            raise DataValidationError(f"column has non-numeric dtype {s.dtype}.", source=src,
                                      variable=c, fix="the file is corrupt or not diive output.")
        return s.to_numpy(dtype=float, na_value=np.nan)

    vb = VariableBuilder(src)
    for name, (c, unit) in DIIVE_CANONICAL.items():
        if c in df.columns:
            attrs = {"partitioning": _PARTITIONING[name]} if name in _PARTITIONING else {}
            vb.canonical(name, col(c), unit, c, **attrs)
    for name, (c, unit, like, long_name) in DIIVE_EXTRA.items():
        if c in df.columns:
            attrs = {"partitioning": _PARTITIONING[name]} if name in _PARTITIONING else {}
            vb.like(name, like, col(c), unit, c, long_name, **attrs)
    for name, (c, unit, long_name) in DIIVE_PLAIN.items():
        if c in df.columns:
            vb.plain(name, col(c), unit, c, long_name)
    for name, (c, long_name) in DIIVE_FLAGS.items():
        if c in df.columns:
            vb.flag(name, col(c), c, long_name, max_value=9)

    site, offset = site_and_offset(path, site_id, utc_offset_hours)
    citation = _CITATION + (" " + _SITE_CITATION[site] if site in _SITE_CITATION else "")
    return finish_dataset(
        vb, time, path=path, fmt="diive parquet (ETH flux processing chain)", site_id=site,
        utc_offset_hours=offset, step=step,
        original_time=f"{tname} (pandas DatetimeIndex), local standard time; "
                      + {0.5: "time = TIMESTAMP_MIDDLE - step/2",
                         0.0: "time = TIMESTAMP_START (no shift)",
                         1.0: "time = TIMESTAMP_END - step"}[shift],
        citation=citation,
        licence=("diive example data, GPL-3.0 package; ETH-processed CH-Dav data, confirm terms "
                 "with the data owners for science use (ICOS releases: CC BY 4.0)"
                 if site == "CH-Dav" else "see the data provider's terms"))
