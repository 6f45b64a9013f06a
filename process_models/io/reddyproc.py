"""Reader for REddyProc / online-tool text input files (tab-separated, units row,
``Year``/``DoY``/``Hour`` with ``Hour`` at the end of the interval), including the
hesseflux ``test_gapfill.csv`` variant (``Day``/``Hour``, ``qc*`` columns, no year)."""
from __future__ import annotations

import os
import re

import numpy as np

from ..units import DataValidationError
from ._tower import (VariableBuilder, finish_dataset, infer_step, normalise_unit,
                     numeric_column, read_table_text, site_and_offset)

__all__ = ["read_reddyproc_text", "REDDYPROC_CANONICAL", "REDDYPROC_FLAGS"]

#: canonical name -> REddyProc column
REDDYPROC_CANONICAL: dict[str, str] = {
    "nee": "NEE",
    "nee_filled": "NEE_f",
    "gpp": "GPP_f",
    "reco": "Reco",
    "le": "LE",
    "h": "H",
    "shortwave_in": "Rg",
    "ppfd_in": "PAR",
    "air_temperature": "Tair",
    "soil_temperature": "Tsoil",
    "relative_humidity": "rH",
    "vpd": "VPD",
    "ustar": "Ustar",
}

#: flag name -> (column, long name)
REDDYPROC_FLAGS: dict[str, tuple[str, str]] = {
    "nee_qc": ("qcNEE", "quality flag of NEE (hesseflux convention: 1 valid, >=2 missing/bad)"),
    "le_qc": ("qcLE", "quality flag of LE (hesseflux convention: 1 valid, >=2 missing/bad)"),
    "h_qc": ("qcH", "quality flag of H (hesseflux convention: 1 valid, >=2 missing/bad)"),
}

_CITATION = ("Wutzler, T. et al. (2018) Basic and extensible post-processing of eddy covariance "
             "flux data with REddyProc. Biogeosciences 15, 5015-5030, "
             "doi:10.5194/bg-15-5015-2018.")
_SITE_CITATION = {
    "DE-Tha": ("Grünwald, T. & Bernhofer, C. (2007) A decade of carbon, water and energy flux "
               "measurements of an old spruce forest at the Anchor Station Tharandt. "
               "Tellus B 59, 387-396."),
}
_HESSEFLUX = "Cuntz, M. et al., hesseflux, https://github.com/mcuntz/hesseflux (MIT)."


def _safe_name(col: str) -> str:
    return re.sub(r"\W+", "_", col).strip("_").lower() or "unnamed"


def read_reddyproc_text(path: str | os.PathLike, *, utc_offset_hours: float | None = None,
                        year: int = 1998, site_id: str | None = None):
    """Read a REddyProc text input file (``Example_DETha98.txt`` layout) or the
    hesseflux ``test_gapfill.csv`` variant.

    Format
    ------
    Tab-separated text with any line ending (old-Mac CR, CRLF or LF). Row 1 holds
    the column names, row 2 the units (``umolm-2s-1``, ``Wm-2``, ``degC``, ``%``,
    ``hPa``, ``ms-1``, ``-``/``--`` for none); the units row is parsed and every
    column is converted from the unit it declares. Missing values are ``-9999``.
    Layouts:

    * REddyProc: ``Year``, ``DoY``, ``Hour``, then the variables.
    * hesseflux ``test_gapfill.csv``: ``Day``, ``Hour`` (no year: the ``year``
      keyword, default 1998, gives it), variables and ``qcNEE``/``qcLE``/``qcH``.

    Required columns: ``DoY`` (or ``Day``) and ``Hour``.

    Time
    ----
    ``Hour`` is the decimal hour at the **end** of the interval (0.5 ... 24, and
    ``DoY`` = last day + 1 with ``Hour`` 0 for the final record, i.e. 1 Jan of the
    next year 00:00). End = ``Year-01-01 + (DoY - 1) days + Hour hours``;
    ``time = end - step`` (step = most common difference, 30 min), so the first
    record of Example_DETha98.txt is 1998-01-01 00:00. ``utc_offset_hours`` defaults
    to the known site offset (DE-Tha: +1, recognised from ``DETha`` / ``DE-Tha`` in
    the file name), else NaN (pass ``site_id="DE-Tha"`` for test_gapfill.csv).

    Variables (column -> name; canonical unit)
    ------------------------------------------
    ``NEE`` -> ``nee`` umol m-2 s-1 (measured, gaps = -9999; u* filtering is left to
    the user); ``NEE_f`` -> ``nee_filled``; ``GPP_f`` -> ``gpp``; ``Reco`` -> ``reco``
    (REddyProc output columns, when present); ``LE`` / ``H`` -> ``le`` / ``h`` W m-2;
    ``Rg`` -> ``shortwave_in`` W m-2; ``PAR`` -> ``ppfd_in`` umol m-2 s-1;
    ``Tair`` -> ``air_temperature`` degC; ``Tsoil`` -> ``soil_temperature`` degC;
    ``rH`` -> ``relative_humidity`` %; ``VPD`` -> ``vpd`` hPa; ``Ustar`` -> ``ustar``
    m s-1. Flags (units ``"1"``): ``qcNEE`` -> ``nee_qc``, ``qcLE`` -> ``le_qc``,
    ``qcH`` -> ``h_qc``. Any other numeric column is kept under its lower-cased name
    with the unit of the units row.

    Raises
    ------
    DataValidationError : empty/truncated/corrupt file, missing time columns,
        non-numeric cells, implausible values (unit errors, e.g. Tair in K while the
        units row says degC), duplicated or unsorted timestamps.

    Citation
    --------
    Wutzler et al. (2018) Biogeosciences 15, 5015-5030 (REddyProc); Grünwald &
    Bernhofer (2007) Tellus B 59, 387-396 (DE-Tha); hesseflux (Cuntz et al., MIT).
    DE-Tha example data: CARBODATA / La Thuile "FairUse" policy, software tests only.
    """
    src = str(path)
    df, (names, units_row) = read_table_text(path, sep="\t", header_rows=2)
    units = dict(zip(names, units_row))
    daycol = "DoY" if "DoY" in names else ("Day" if "Day" in names else None)
    missing = [c for c, ok in (("DoY", daycol), ("Hour", "Hour" in names)) if not ok]
    if missing:
        raise DataValidationError(
            f"required column(s) {missing} missing (REddyProc needs Year/DoY/Hour; "
            "the hesseflux variant Day/Hour).", source=src, variable=missing[0],
            fix="pass a complete REddyProc text file.")
    doy = numeric_column(df, daycol, source=src)
    hour = numeric_column(df, "Hour", source=src)
    if "Year" in names:
        yr = numeric_column(df, "Year", source=src)
        layout = "REddyProc text (Year/DoY/Hour)"
    else:
        yr = np.full(doy.shape, float(year))
        layout = f"hesseflux REddyProc-style text (Day/Hour, year={year})"
    for col, arr, lo, hi in (("Year", yr, 1800, 2200), (daycol, doy, 1, 367), ("Hour", hour, 0, 24)):
        bad = ~np.isfinite(arr) | (arr < lo) | (arr > hi)
        if bad.any():
            i = int(np.argmax(bad))
            raise DataValidationError(
                f"invalid time value {arr[i]!r} in data row {i + 1} (expected {lo}..{hi}).",
                source=src, variable=col, fix="every record needs a valid Year/DoY/Hour.")
    yi = yr.astype(np.int64)
    base = (yi - 1970).astype("datetime64[Y]").astype("datetime64[ns]")
    minutes = np.round(((doy - 1) * 24 + hour) * 60).astype(np.int64)
    tend = base + minutes.astype("timedelta64[m]").astype("timedelta64[ns]")
    step = infer_step(tend, source=src)
    time = tend - step

    vb = VariableBuilder(src)
    done = {"Year", daycol, "Hour"}
    for name, col in REDDYPROC_CANONICAL.items():
        if col in names:
            vb.canonical(name, numeric_column(df, col, source=src), units[col], col)
            done.add(col)
    for name, (col, long_name) in REDDYPROC_FLAGS.items():
        if col in names:
            vb.flag(name, numeric_column(df, col, source=src), col, long_name)
            done.add(col)
    for col in names:
        if col in done:
            continue
        name = _safe_name(col)
        if name in vb.vars:
            name = f"{name}_{len(vb.vars)}"
        u = normalise_unit(units[col])
        vb.plain(name, numeric_column(df, col, source=src), u, col, f"{col} (as in the file)")

    site, offset = site_and_offset(path, site_id, utc_offset_hours)
    citation = _CITATION + (" " + _SITE_CITATION[site] if site in _SITE_CITATION else "")
    if "Year" not in names:
        citation += " " + _HESSEFLUX
    licence = ("DE-Tha example data: CARBODATA / La Thuile 'FairUse' policy (software tests "
               "only; contact the PI for science use); REddyProc GPL>=2, hesseflux MIT"
               if site == "DE-Tha" else "see the data provider's terms")
    return finish_dataset(
        vb, time, path=path, fmt=layout, site_id=site, utc_offset_hours=offset, step=step,
        original_time=f"{'Year/' if 'Year' in names else ''}{daycol}/Hour with Hour = END of "
                      "the interval (decimal hours), local standard time; time = end - step",
        citation=citation, licence=licence)
