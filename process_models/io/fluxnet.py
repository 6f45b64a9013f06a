"""Reader for FLUXNET2015 / ONEFlux ``FULLSET`` half-hourly (HH) and hourly (HR) CSV
files, which is also the layout of the ICOS Warm Winter 2020, ICOS ETC L2 "FLUXNET"
and FLUXNET-CH4-style archive products."""
from __future__ import annotations

import os

import numpy as np

from ..units import DataValidationError
from ._tower import (VariableBuilder, check_variables_request, finish_dataset, infer_step,
                     numeric_column, parse_yyyymmddhhmm, read_table_text, site_and_offset)

__all__ = ["read_fluxnet2015", "FLUXNET_CANONICAL", "FLUXNET_EXTRA", "FLUXNET_FLAGS"]

_FLUX = "umol m-2 s-1"

#: canonical name -> (FLUXNET column, unit in the file)
FLUXNET_CANONICAL: dict[str, tuple[str, str]] = {
    "air_temperature": ("TA_F", "degC"),
    "shortwave_in": ("SW_IN_F", "W m-2"),
    "longwave_in": ("LW_IN_F", "W m-2"),
    "vpd": ("VPD_F", "hPa"),
    "air_pressure": ("PA_F", "kPa"),
    "precipitation": ("P_F", "mm"),
    "wind_speed": ("WS_F", "m s-1"),
    "co2": ("CO2_F_MDS", "umol mol-1"),
    "ppfd_in": ("PPFD_IN", "umol m-2 s-1"),
    "relative_humidity": ("RH", "%"),
    "net_radiation": ("NETRAD", "W m-2"),
    "ground_heat_flux": ("G_F_MDS", "W m-2"),
    "ustar": ("USTAR", "m s-1"),
    "soil_water_content": ("SWC_F_MDS_1", "%"),
    "soil_temperature": ("TS_F_MDS_1", "degC"),
    "le": ("LE_F_MDS", "W m-2"),
    "h": ("H_F_MDS", "W m-2"),
    "nee_filled": ("NEE_VUT_REF", _FLUX),
    "gpp": ("GPP_NT_VUT_REF", _FLUX),
    "reco": ("RECO_NT_VUT_REF", _FLUX),
}

#: extra name -> (FLUXNET column, unit in the file, canonical variable it is like, long name)
FLUXNET_EXTRA: dict[str, tuple[str, str, str, str]] = {
    "gpp_dt": ("GPP_DT_VUT_REF", _FLUX, "gpp",
               "gross primary production, daytime partitioning (Lasslop et al. 2010), VUT REF"),
    "reco_dt": ("RECO_DT_VUT_REF", _FLUX, "reco",
                "ecosystem respiration, daytime partitioning (Lasslop et al. 2010), VUT REF"),
    "nee_vut_16": ("NEE_VUT_16", _FLUX, "nee_filled",
                   "gap-filled NEE, variable u* threshold, 16th percentile"),
    "nee_vut_84": ("NEE_VUT_84", _FLUX, "nee_filled",
                   "gap-filled NEE, variable u* threshold, 84th percentile"),
    "nee_cut_ref": ("NEE_CUT_REF", _FLUX, "nee_filled",
                    "gap-filled NEE, constant u* threshold, reference"),
    "gpp_cut_ref": ("GPP_NT_CUT_REF", _FLUX, "gpp",
                    "gross primary production, nighttime partitioning, constant u* threshold"),
    "reco_cut_ref": ("RECO_NT_CUT_REF", _FLUX, "reco",
                     "ecosystem respiration, nighttime partitioning, constant u* threshold"),
    "le_corr": ("LE_CORR", "W m-2", "le", "latent heat flux, energy-balance corrected"),
    "h_corr": ("H_CORR", "W m-2", "h", "sensible heat flux, energy-balance corrected"),
    "shortwave_in_pot": ("SW_IN_POT", "W m-2", "shortwave_in",
                         "potential (top-of-atmosphere) incoming shortwave radiation"),
}

#: flag name -> (FLUXNET column, largest allowed value, long name)
FLUXNET_FLAGS: dict[str, tuple[str, int, str]] = {
    "nee_qc": ("NEE_VUT_REF_QC", 3, "NEE_VUT_REF quality flag: 0 measured, 1 good, 2 medium, "
               "3 poor gap-fill"),
    "air_temperature_qc": ("TA_F_QC", 3, "TA_F flag: 0 measured, 1-3 MDS gap-fill quality, 2 ERA"),
    "shortwave_in_qc": ("SW_IN_F_QC", 3, "SW_IN_F flag: 0 measured, 1-3 MDS gap-fill, 2 ERA"),
    "longwave_in_qc": ("LW_IN_F_QC", 3, "LW_IN_F flag: 0 measured, 1-3 MDS gap-fill, 2 ERA"),
    "vpd_qc": ("VPD_F_QC", 3, "VPD_F flag: 0 measured, 1-3 MDS gap-fill, 2 ERA"),
    "air_pressure_qc": ("PA_F_QC", 3, "PA_F flag: 0 measured, 2 ERA"),
    "precipitation_qc": ("P_F_QC", 3, "P_F flag: 0 measured, 2 ERA"),
    "wind_speed_qc": ("WS_F_QC", 3, "WS_F flag: 0 measured, 2 ERA"),
    "co2_qc": ("CO2_F_MDS_QC", 3, "CO2_F_MDS flag: 0 measured, 1-3 MDS gap-fill quality"),
    "soil_water_content_qc": ("SWC_F_MDS_1_QC", 3, "SWC_F_MDS_1 flag: 0 measured, 1-3 gap-fill"),
    "soil_temperature_qc": ("TS_F_MDS_1_QC", 3, "TS_F_MDS_1 flag: 0 measured, 1-3 gap-fill"),
    "ground_heat_flux_qc": ("G_F_MDS_QC", 3, "G_F_MDS flag: 0 measured, 1-3 gap-fill"),
    "le_qc": ("LE_F_MDS_QC", 3, "LE_F_MDS flag: 0 measured, 1-3 MDS gap-fill quality"),
    "h_qc": ("H_F_MDS_QC", 3, "H_F_MDS flag: 0 measured, 1-3 MDS gap-fill quality"),
    "night": ("NIGHT", 1, "night-time flag from SW_IN_POT (1 = night)"),
}

_PARTITIONING = {
    "gpp": "nighttime (Reichstein et al. 2005), variable u* threshold, reference",
    "reco": "nighttime (Reichstein et al. 2005), variable u* threshold, reference",
    "gpp_dt": "daytime (Lasslop et al. 2010), variable u* threshold, reference",
    "reco_dt": "daytime (Lasslop et al. 2010), variable u* threshold, reference",
    "gpp_cut_ref": "nighttime (Reichstein et al. 2005), constant u* threshold, reference",
    "reco_cut_ref": "nighttime (Reichstein et al. 2005), constant u* threshold, reference",
}

_CITATION = ("Pastorello, G. et al. (2020) The FLUXNET2015 dataset and the ONEFlux processing "
             "pipeline for eddy covariance data. Sci. Data 7, 225, doi:10.1038/s41597-020-0534-3.")
_SITE_CITATION = {
    "CH-Cha": ("Warm Winter 2020 Team & ICOS Ecosystem Thematic Centre (2022) Warm Winter 2020 "
               "ecosystem eddy covariance flux product for 73 stations in FLUXNET-Archive "
               "format - release 2022-1, ICOS Carbon Portal, doi:10.18160/2G60-ZHAK."),
}


def read_fluxnet2015(path: str | os.PathLike, *, utc_offset_hours: float | None = None,
                     variables=None, site_id: str | None = None):
    """Read a FLUXNET2015 / ONEFlux ``FULLSET_HH`` (or ``_HR``) CSV file.

    Format
    ------
    Comma-separated text, one header row of FLUXNET2015 variable names (up to ~270
    columns in FULLSET, fewer in SUBSET or ERA files), one record per half-hour (HH)
    or hour (HR). Missing values are ``-9999``. ICOS Warm Winter 2020 / ICOS L2
    "FLUXNET" products use the same layout and are read by the same code. Only
    ``TIMESTAMP_START`` is required; every other column is optional and the
    variables whose columns are absent are simply not returned (unless requested
    with ``variables=``, see below).

    Time
    ----
    ``TIMESTAMP_START`` / ``TIMESTAMP_END`` are ``YYYYMMDDHHMM`` in local standard
    time (no daylight saving). ``time`` is ``TIMESTAMP_START`` (interval start), so no
    shift is needed; ``TIMESTAMP_END - TIMESTAMP_START`` must be constant and gives
    ``time_step_seconds``. ``utc_offset_hours`` defaults to the known offset of the
    site (CH-Cha: +1, from the file name ``FLX_CC-Sss_...``), else NaN. Times are not
    shifted to UTC.

    Variables (column -> name, unit in file -> canonical unit)
    ----------------------------------------------------------
    Meteorology uses the gap-filled ``_F`` columns (measured where available, MDS
    or ERA-downscaled elsewhere; the ``*_qc`` flags tell which):

    ``TA_F`` -> ``air_temperature`` degC; ``SW_IN_F`` -> ``shortwave_in`` W m-2;
    ``LW_IN_F`` -> ``longwave_in`` W m-2; ``VPD_F`` -> ``vpd`` hPa;
    ``PA_F`` -> ``air_pressure`` kPa; ``P_F`` -> ``precipitation`` mm per record;
    ``WS_F`` -> ``wind_speed`` m s-1; ``CO2_F_MDS`` -> ``co2`` umol mol-1;
    ``PPFD_IN`` -> ``ppfd_in`` umol m-2 s-1; ``RH`` -> ``relative_humidity`` %;
    ``NETRAD`` -> ``net_radiation`` W m-2; ``G_F_MDS`` -> ``ground_heat_flux`` W m-2;
    ``USTAR`` -> ``ustar`` m s-1; ``SWC_F_MDS_1`` (%) -> ``soil_water_content``
    m3 m-3 (x 0.01; top layer only); ``TS_F_MDS_1`` -> ``soil_temperature`` degC
    (top layer); ``LE_F_MDS`` -> ``le`` W m-2; ``H_F_MDS`` -> ``h`` W m-2.

    Carbon fluxes (umol m-2 s-1, NEE = Reco - GPP, positive = source):
    ``NEE_VUT_REF`` -> ``nee_filled`` (MDS gap-filled);
    ``NEE_VUT_REF`` where ``NEE_VUT_REF_QC == 0`` (measured, u*-filtered) -> ``nee``
    (NaN elsewhere); ``GPP_NT_VUT_REF`` -> ``gpp``; ``RECO_NT_VUT_REF`` -> ``reco``
    (nighttime partitioning); extras ``gpp_dt`` / ``reco_dt`` (``*_DT_VUT_REF``),
    ``nee_vut_16`` / ``nee_vut_84`` / ``nee_cut_ref``, ``gpp_cut_ref`` /
    ``reco_cut_ref`` (``*_NT_CUT_REF``), ``le_corr`` / ``h_corr`` (W m-2),
    ``shortwave_in_pot`` (``SW_IN_POT``, W m-2).

    Flags (units ``"1"``): ``nee_qc`` (``NEE_VUT_REF_QC``), ``<name>_qc`` for the
    ``_F`` / ``_F_MDS`` met and energy columns (0 measured, 1 good, 2 medium
    (or ERA for met), 3 poor), ``night`` (``NIGHT``).

    See :data:`FLUXNET_CANONICAL`, :data:`FLUXNET_EXTRA`, :data:`FLUXNET_FLAGS`.

    Parameters
    ----------
    path : file path (``.csv`` or gzipped ``.csv.gz``).
    utc_offset_hours : offset of the tower clock to UTC; default from the site table.
    variables : optional list of output names to return; a requested variable whose
        column is missing raises :class:`DataValidationError`.
    site_id : site code; default parsed from the file name.

    Raises
    ------
    DataValidationError : empty/truncated/corrupt file, missing ``TIMESTAMP_START``,
        non-numeric cells, implausible values (unit errors), duplicated or unsorted
        timestamps.

    Citation
    --------
    Pastorello, G. et al. (2020) Sci. Data 7, 225, doi:10.1038/s41597-020-0534-3
    (format and ONEFlux); for Warm Winter 2020 data also doi:10.18160/2G60-ZHAK.
    Data licence CC BY 4.0.
    """
    src = str(path)
    available = {**{k: v[0] for k, v in FLUXNET_CANONICAL.items()}, "nee": "NEE_VUT_REF",
                 **{k: v[0] for k, v in FLUXNET_EXTRA.items()},
                 **{k: v[0] for k, v in FLUXNET_FLAGS.items()}}
    wanted = check_variables_request(variables, available, source=src)
    required = ["TIMESTAMP_START"]
    if wanted:
        required += sorted({available[v] for v in wanted})
        if "nee" in wanted:
            required.append("NEE_VUT_REF_QC")
    df, (names,) = read_table_text(path, sep=",", header_rows=1, required=tuple(required))
    cols = set(names)

    time = parse_yyyymmddhhmm(df, "TIMESTAMP_START", source=src)
    if "TIMESTAMP_END" in cols:
        tend = parse_yyyymmddhhmm(df, "TIMESTAMP_END", source=src)
        lengths = np.unique(tend - time)
        if lengths.size != 1 or lengths[0] <= np.timedelta64(0, "ns"):
            raise DataValidationError(
                f"TIMESTAMP_END - TIMESTAMP_START is not one constant positive length "
                f"(found {[str(x) for x in lengths[:4]]}).", source=src, variable="TIMESTAMP_END",
                fix="the file is corrupt, or the timestamp columns were edited.")
        step = lengths[0]
    else:
        step = infer_step(time, source=src)

    def want(name):
        return wanted is None or name in wanted

    vb = VariableBuilder(src)
    for name, (col, unit) in FLUXNET_CANONICAL.items():
        if col in cols and want(name):
            attrs = {"partitioning": _PARTITIONING[name]} if name in _PARTITIONING else {}
            vb.canonical(name, numeric_column(df, col, source=src), unit, col, **attrs)
    if want("nee") and {"NEE_VUT_REF", "NEE_VUT_REF_QC"} <= cols:
        qc = numeric_column(df, "NEE_VUT_REF_QC", source=src)
        v = numeric_column(df, "NEE_VUT_REF", source=src)
        vb.canonical("nee", np.where(qc == 0, v, np.nan), _FLUX, "NEE_VUT_REF",
                     comment="NEE_VUT_REF where NEE_VUT_REF_QC == 0 (measured), NaN elsewhere")
    for name, (col, unit, like, long_name) in FLUXNET_EXTRA.items():
        if col in cols and want(name):
            attrs = {"partitioning": _PARTITIONING[name]} if name in _PARTITIONING else {}
            vb.like(name, like, numeric_column(df, col, source=src), unit, col, long_name, **attrs)
    for name, (col, vmax, long_name) in FLUXNET_FLAGS.items():
        if col in cols and want(name):
            vb.flag(name, numeric_column(df, col, source=src), col, long_name, max_value=vmax)

    site, offset = site_and_offset(path, site_id, utc_offset_hours)
    citation = _CITATION + (" " + _SITE_CITATION[site] if site in _SITE_CITATION else "")
    return finish_dataset(
        vb, time, path=path, fmt="FLUXNET2015/ONEFlux FULLSET CSV", site_id=site,
        utc_offset_hours=offset, step=step,
        original_time="TIMESTAMP_START/TIMESTAMP_END YYYYMMDDHHMM, local standard time; "
                      "time = TIMESTAMP_START (no shift)",
        citation=citation,
        licence="CC BY 4.0 (FLUXNET2015 / ICOS FLUXNET-format releases)")
