"""Reader for the FLUXNET2015 one-month half-hourly subsets shipped with the R package
bigleaf (Knauer et al. 2018): ``AT_Neu_Jul_2010``, ``DE_Tha_Jun_2014``,
``FR_Pue_May_2012`` written to CSV (columns as in the package's data frames)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from ..units import DataValidationError
from ._tower import (VariableBuilder, finish_dataset, infer_step, numeric_column,
                     read_table_text, site_and_offset)

__all__ = ["read_bigleaf_month", "BIGLEAF_CANONICAL", "BIGLEAF_FOLDER"]

BIGLEAF_FOLDER = "fluxnet2015_month-subsets_bigleaf"

_FLUX = "umol m-2 s-1"
#: canonical name -> (bigleaf column, unit in the file; FLUXNET2015 source in brackets)
BIGLEAF_CANONICAL: dict[str, tuple[str, str]] = {
    "air_temperature": ("Tair", "degC"),          # TA_F
    "ppfd_in": ("PPFD", "umol m-2 s-1"),          # PPFD_IN
    "vpd": ("VPD", "kPa"),                        # VPD_F, converted to kPa by bigleaf
    "air_pressure": ("pressure", "kPa"),          # PA_F
    "precipitation": ("precip", "mm"),            # P_F
    "ustar": ("ustar", "m s-1"),                  # USTAR
    "wind_speed": ("wind", "m s-1"),              # WS_F
    "co2": ("Ca", "ppm"),                         # CO2_F_MDS
    "longwave_in": ("LW_down", "W m-2"),          # LW_IN_F (DE-Tha only)
    "net_radiation": ("Rn", "W m-2"),             # NETRAD
    "le": ("LE", "W m-2"),                        # LE_F_MDS
    "h": ("H", "W m-2"),                          # H_F_MDS
    "ground_heat_flux": ("G", "W m-2"),           # G_F_MDS
    "nee_filled": ("NEE", _FLUX),                 # NEE_VUT_USTAR50 (gap-filled)
    "gpp": ("GPP", _FLUX),                        # GPP_NT_VUT_USTAR50
    "reco": ("Reco", _FLUX),                      # RECO_NT_VUT_USTAR50
}
_FLAGS = {"Tair_qc": "air_temperature_qc", "PPFD_qc": "ppfd_in_qc", "VPD_qc": "vpd_qc",
          "precip_qc": "precipitation_qc", "wind_qc": "wind_speed_qc", "Ca_qc": "co2_qc",
          "LE_qc": "le_qc", "H_qc": "h_qc", "G_qc": "ground_heat_flux_qc", "NEE_qc": "nee_qc",
          "GPP_qc": "gpp_qc"}
_REQUIRED = ("year", "doy", "hour", "Tair", "PPFD", "VPD", "NEE")
_CITATION = ("Knauer, J., El-Madany, T. S., Zaehle, S. & Migliavacca, M. (2018) Bigleaf - an R "
             "package for the calculation of physical and physiological ecosystem properties "
             "from eddy covariance data. PLoS ONE 13(8), e0201114. Pastorello, G. et al. (2020) "
             "Sci. Data 7, 225 (FLUXNET2015); site DOIs AT-Neu 10.18140/FLX/1440121, DE-Tha "
             "10.18140/FLX/1440152, FR-Pue 10.18140/FLX/1440164.")
_SITE_RE = re.compile(r"([A-Z]{2})_([A-Z][a-z0-9]{2})_")


def read_bigleaf_month(path: str | os.PathLike, *, utc_offset_hours: float | None = None,
                       site_id: str | None = None):
    """Read a bigleaf FLUXNET2015 month subset CSV (e.g. ``AT_Neu_Jul_2010.csv``).

    Format
    ------
    Comma-separated, one header row: ``year, month, doy, hour`` (``hour`` = 0, 0.5 ...
    23.5) then the variables of :data:`BIGLEAF_CANONICAL` and ``*_qc`` flags (FLUXNET
    0 measured, 1 good, 2 medium, 3 poor gap-fill). Missing values are empty cells.

    Time
    ----
    ``time = year + (doy - 1) days + hour``, taken as the interval **start** in local
    standard time (bigleaf does not document it; the PPFD peak at 11-13.5 h is
    consistent with it). ``utc_offset_hours`` defaults to +1 for the three shipped
    (Central European) sites.

    Units
    -----
    VPD is in **kPa** in these files (bigleaf converted it) and becomes hPa; ``Ca``
    (ppm) -> ``co2`` umol mol-1; ``NEE`` is the gap-filled ``NEE_VUT_USTAR50`` ->
    ``nee_filled``; ``GPP``/``Reco`` are nighttime-partitioned. There is **no shortwave
    column**: derive it from PPFD if needed (SW ~ PPFD / 2.04 W m-2 per umol m-2 s-1,
    Meek et al. 1984) and say so.

    Raises
    ------
    DataValidationError : truncated/corrupt file, missing required column, bad time
        columns, non-numeric cells, implausible values (e.g. VPD already in hPa reads as
        > 10x too large only in extreme cases; temperature in K is caught), flags outside
        0-3, duplicated/unsorted times.
    """
    src = str(path)
    df, (names,) = read_table_text(path, sep=",", header_rows=1, required=_REQUIRED)
    year = numeric_column(df, "year", source=src)
    doy = numeric_column(df, "doy", source=src)
    hour = numeric_column(df, "hour", source=src)
    for c, v, lo, hi in (("year", year, 1900, 2100), ("doy", doy, 1, 366), ("hour", hour, 0, 23.5)):
        if not np.all(np.isfinite(v)) or np.any((v < lo) | (v > hi)):
            i = int(np.argmax(~np.isfinite(v) | (v < lo) | (v > hi)))
            raise DataValidationError(f"{c} = {v[i]!r} in data row {i + 1} is missing or outside "
                                      f"[{lo}, {hi}].", source=src, variable=c,
                                      fix="every record needs year, doy and hour.")
    time = (pd.to_datetime(year.astype(int).astype(str), format="%Y").to_numpy()
            + ((doy - 1) * 86400 + hour * 3600).astype("timedelta64[s]")).astype("datetime64[ns]")
    step = infer_step(time, source=src)
    vb = VariableBuilder(src)
    for name, (c, unit) in BIGLEAF_CANONICAL.items():
        if c in names:
            attrs = {}
            if name in ("gpp", "reco"):
                attrs["partitioning"] = "nighttime (Reichstein et al. 2005), VUT USTAR50"
            vb.canonical(name, numeric_column(df, c, source=src), unit, c, **attrs)
    if "LW_up" in names:
        vb.plain("longwave_out", numeric_column(df, "LW_up", source=src), "W m-2", "LW_up",
                 "outgoing longwave radiation (LW_OUT)")
    for c, name in _FLAGS.items():
        if c in names:
            vb.flag(name, numeric_column(df, c, source=src), c,
                    f"{c}: FLUXNET QC 0 measured, 1 good, 2 medium, 3 poor gap-fill", max_value=3)
    if site_id is None:
        m = _SITE_RE.search(Path(src).name)
        site_id = f"{m.group(1)}-{m.group(2)}" if m else None
    site, offset = site_and_offset(path, site_id, utc_offset_hours)
    if not np.isfinite(offset) and site in ("AT-Neu", "FR-Pue"):
        offset = 1.0
    return finish_dataset(
        vb, time, path=path, fmt="bigleaf FLUXNET2015 month subset CSV", site_id=site,
        utc_offset_hours=offset, step=step,
        original_time="year/doy/hour, taken as interval start (undocumented by bigleaf), "
                      "local standard time",
        citation=_CITATION, licence="FLUXNET2015 CC BY 4.0; bigleaf GPL (>= 2)")
