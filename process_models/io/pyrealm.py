"""Reader for the pyrealm two-leaf benchmark merge (``merged_<site>_data.csv``:
half-hourly FLUXNET2015 forcing + GPP + satellite fAPAR/LAI + P-model GPP)."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd

from ..units import DataValidationError
from ._tower import (VariableBuilder, finish_dataset, infer_step, numeric_column,
                     read_table_text, site_and_offset)

__all__ = ["read_pyrealm_merged", "PYREALM_CANONICAL"]

#: canonical name -> (column, unit as set by pyrealm's BE-Vie_merge.py)
PYREALM_CANONICAL: dict[str, tuple[str, str]] = {
    "ppfd_in": ("ppfd", "umol m-2 s-1"),
    "vpd": ("vpd", "Pa"),
    "air_temperature": ("tc", "degC"),
    "co2": ("co2", "ppm"),
    "air_pressure": ("patm", "Pa"),
    "gpp": ("gpp_fluxnet", "umol m-2 s-1"),
    "lai": ("LAI", "m2 m-2"),
    "fapar": ("fapar", "1"),
}

_REQUIRED = ("time", "ppfd", "vpd", "tc", "co2", "patm")

_CITATION = ("Orme, D. et al., pyrealm, https://github.com/ImperialCollegeLondon/pyrealm "
             "(two_leaf/merged_*_data.csv). Pastorello, G. et al. (2020) Sci. Data 7, 225, "
             "doi:10.1038/s41597-020-0534-3 (FLUXNET2015). Mengoli, G. et al. (2022) J. Adv. "
             "Model. Earth Syst. 14, e2021MS002767 (subdaily P-model GPP).")


def read_pyrealm_merged(path: str | os.PathLike, *, utc_offset_hours: float | None = None,
                        site_id: str | None = None):
    """Read a pyrealm merged half-hourly benchmark file (e.g. ``merged_BE-Vie_data.csv``).

    Format
    ------
    Comma-separated text, one header row ``time,ppfd,vpd,tc,co2,patm,gpp_fluxnet,LAI,
    fapar,GPP_JAMES``; ``time`` as ``YYYY-MM-DD HH:MM:SS``; missing values are empty
    cells (``-9999`` would also be masked). Units are not in the file; they are set
    by pyrealm's ``BE-Vie_merge.py`` (below). Required columns: ``time``, ``ppfd``,
    ``vpd``, ``tc``, ``co2``, ``patm``.

    Time
    ----
    ``time`` is the FLUXNET ``TIMESTAMP_START`` (interval **start**, local standard
    time), used unchanged. ``utc_offset_hours`` defaults to the known site offset
    (BE-Vie: +1), else NaN.

    Variables (column -> name; unit in file -> canonical unit)
    ----------------------------------------------------------
    ``ppfd`` (FLUXNET PPFD_IN; gaps were filled with 0 by the merge script) ->
    ``ppfd_in`` umol m-2 s-1; ``vpd`` (VPD_F x 100, Pa) -> ``vpd`` hPa (x 0.01);
    ``tc`` (TA_F) -> ``air_temperature`` degC; ``co2`` (CO2_F_MDS, ppm) -> ``co2``
    umol mol-1; ``patm`` (PA_F x 1000, Pa) -> ``air_pressure`` kPa (x 0.001);
    ``gpp_fluxnet`` (FLUXNET GPP_DT_CUT_REF, **daytime** partitioning) -> ``gpp``
    umol m-2 s-1 (attribute ``partitioning`` says so; the FLUXNET reader's ``gpp`` is
    nighttime); ``LAI`` -> ``lai`` m2 m-2; ``fapar`` (daily, forward-filled) ->
    ``fapar`` 1; ``GPP_JAMES`` (subdaily P-model GPP, Mengoli et al. 2022) ->
    ``gpp_pmodel`` umol m-2 s-1.

    Raises
    ------
    DataValidationError : empty/truncated/corrupt file, missing required column,
        unparseable times, non-numeric cells, implausible values (unit errors: ``tc``
        in K, ``vpd`` 100x too large, ``patm`` in hPa; note that ``vpd`` already in hPa
        reads as a tiny but plausible VPD and cannot be detected), duplicated or
        unsorted timestamps.

    Citation
    --------
    pyrealm (Orme et al., MIT); FLUXNET2015 (Pastorello et al. 2020, CC BY 4.0);
    Mengoli et al. (2022) for GPP_JAMES. fAPAR/LAI: satellite-derived (MODIS-based
    spline, B. Stocker), provenance documented only by file names.
    """
    src = str(path)
    df, (names,) = read_table_text(path, sep=",", header_rows=1, required=_REQUIRED)
    tt = pd.to_datetime(df["time"], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    if tt.isna().any():
        i = int(np.argmax(tt.isna().to_numpy()))
        raise DataValidationError(
            f"time {df['time'].iloc[i]!r} in data row {i + 1} is not 'YYYY-MM-DD HH:MM:SS'.",
            source=src, variable="time", fix="every record needs a valid timestamp.")
    time = tt.to_numpy(dtype="datetime64[ns]")
    step = infer_step(time, source=src)

    vb = VariableBuilder(src)
    for name, (col, unit) in PYREALM_CANONICAL.items():
        if col in names:
            attrs = {}
            if name == "gpp":
                attrs = {"partitioning": "daytime (Lasslop et al. 2010), constant u* threshold, "
                                         "reference (FLUXNET2015 GPP_DT_CUT_REF)"}
            elif name == "ppfd_in":
                attrs = {"comment": "missing PPFD_IN was filled with 0 by pyrealm's merge script"}
            elif name == "fapar":
                attrs = {"comment": "daily satellite-derived fAPAR spline forward-filled to "
                                    "half-hours"}
            vb.canonical(name, numeric_column(df, col, source=src), unit, col, **attrs)
    if "GPP_JAMES" in names:
        vb.like("gpp_pmodel", "gpp", numeric_column(df, "GPP_JAMES", source=src),
                "umol m-2 s-1", "GPP_JAMES",
                "subdaily P-model GPP (Mengoli et al. 2022)")

    site, offset = site_and_offset(path, site_id, utc_offset_hours)
    return finish_dataset(
        vb, time, path=path, fmt="pyrealm merged benchmark CSV", site_id=site,
        utc_offset_hours=offset, step=step,
        original_time="time = FLUXNET TIMESTAMP_START (interval start), local standard time; "
                      "no shift",
        citation=_CITATION,
        licence="pyrealm MIT; underlying FLUXNET2015 data CC BY 4.0")
