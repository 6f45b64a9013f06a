"""Reader for the European Fluxes Database (europe-fluxdata.eu) "Database" template:
the ICOS-style ``VAR_H_V_R`` text files that site PIs upload (e.g. FR-Hes in
hesseflux)."""
from __future__ import annotations

import os
import re
import warnings


from ._tower import (VariableBuilder, finish_dataset, infer_step, numeric_column,
                     parse_yyyymmddhhmm, read_table_text, site_and_offset)

__all__ = ["read_europe_fluxdata", "europe_fluxdata_soil_water_profiles", "EFD_CANONICAL", "EFD_FLAGS",
           "EFD_EXTRA"]

_FLUX = "umolCO2 m-2 s-1"

#: canonical name -> (variable code, unit as in europe-fluxdata_units.csv)
EFD_CANONICAL: dict[str, tuple[str, str]] = {
    "air_temperature": ("TA", "degC"),
    "relative_humidity": ("RH", "%"),
    "vpd": ("VPD_PI", "hPa"),
    "air_pressure": ("PA", "KPa"),
    "precipitation": ("P", "mm"),
    "wind_speed": ("WS", "m s-1"),
    "co2": ("CO2", "ppm (umol mol-1)"),
    "shortwave_in": ("SW_IN", "W m-2"),
    "longwave_in": ("LW_IN", "W m-2"),
    "net_radiation": ("NETRAD", "W m-2"),
    "ppfd_in": ("PPFD_IN", "umol m-2 s-1"),
    "ppfd_diffuse": ("PPFD_DIF", "umol m-2 s-1"),
    "ustar": ("USTAR", "m s-1"),
    "soil_water_content": ("SWC", "%"),
    "soil_temperature": ("TS", "degC"),
    "ground_heat_flux": ("G", "W m-2"),
    "h": ("H", "W m-2"),
    "le": ("LE", "W m-2"),
    "co2_flux": ("FC", _FLUX),
    "co2_storage_flux": ("SC", _FLUX),
    "nee": ("NEE_PI", _FLUX),
    "nee_filled": ("NEE_PI_f", _FLUX),
    "gpp": ("GPP_PI", _FLUX),
    "reco": ("RECO_PI", _FLUX),
}

#: extra name -> (code, unit, canonical variable it is like, long name)
EFD_EXTRA: dict[str, tuple[str, str, str, str]] = {
    "h_pi": ("H_PI", "W m-2", "h", "sensible heat flux, PI-processed"),
    "le_pi": ("LE_PI", "W m-2", "le", "latent heat flux, PI-processed"),
    "le_filled": ("LE_f", "W m-2", "le", "latent heat flux, gap-filled"),
    "h_filled": ("H_f", "W m-2", "h", "sensible heat flux, gap-filled"),
    "shortwave_out": ("SW_OUT", "W m-2", "shortwave_in", "outgoing (reflected) shortwave radiation"),
    "longwave_out": ("LW_OUT", "W m-2", "longwave_in", "outgoing longwave radiation"),
}

#: flag name -> (code, max value, long name)
EFD_FLAGS: dict[str, tuple[str, int, str]] = {
    "nee_qc": ("FC_SSITC_TEST", 2, "steady-state/ITC test of FC (Mauder & Foken; 0 best, "
               "1 medium, 2 bad); applies to NEE_PI = FC + SC"),
    "h_qc": ("H_SSITC_TEST", 2, "steady-state/ITC test of H (0 best, 1 medium, 2 bad)"),
    "le_qc": ("LE_SSITC_TEST", 2, "steady-state/ITC test of LE (0 best, 1 medium, 2 bad)"),
}

_SUFFIX = re.compile(r"^(?P<base>.+?)_(?P<h>\d+)_(?P<v>\d+)_(?P<r>\d+)$")


def _pick_column(names: list[str], code: str) -> str | None:
    """Column for ``code``: the plain code if present, else ``code_H_V_R`` with the
    smallest (H, V, R): the first horizontal profile, the top vertical position
    (nearest the flux measurement for air, shallowest for soil) and replicate 1."""
    if code in names:
        return code
    best = None
    for n in names:
        m = _SUFFIX.match(n)
        if m and m.group("base") == code:
            key = (int(m.group("h")), int(m.group("v")), int(m.group("r")))
            if best is None or key < best[0]:
                best = (key, n)
    return best[1] if best else None


_CITATION = ("European Fluxes Database Cluster, europe-fluxdata.eu 'Database' template "
             "(variable codes and units as in europe-fluxdata_units.csv); Cuntz, M. et al., "
             "hesseflux, https://github.com/mcuntz/hesseflux (MIT).")
_SITE_CITATION = {
    "FR-Hes": "FR-Hes station, ICOS France / INRAE Nancy (PI-level upload, not an ICOS release).",
}


def read_europe_fluxdata(path: str | os.PathLike, *, utc_offset_hours: float | None = None,
                         site_id: str | None = None):
    """Read a European Fluxes Database (europe-fluxdata.eu) "Database" template file.

    Format
    ------
    Comma-separated text (may be gzipped), one header row, one record per half-hour.
    Column names are ICOS/europe-fluxdata variable codes with a ``_H_V_R`` position
    suffix (horizontal profile, vertical position, replicate), e.g. ``TA_1_1_1``,
    ``SWC_7_5_1``. Missing values are ``-9999`` (written ``-9999`` or
    ``-9999.0000``). Units are fixed per code by the database
    (``europe-fluxdata_units.csv``); they are not stored in the file. Only
    ``TIMESTAMP_END`` is required.

    Time
    ----
    ``TIMESTAMP_END`` (``YYYYMMDDHHMM``) labels the **end** of the averaging interval
    in local standard time. ``time = TIMESTAMP_END - step`` where the step is the most
    common timestamp difference (30 min). ``utc_offset_hours`` defaults to the known
    site offset (FR-Hes: +1), else NaN; times are not shifted to UTC.

    Variables (code -> name; unit in file -> canonical unit)
    --------------------------------------------------------
    For each code the column with the smallest ``(H, V, R)`` suffix is used (first
    profile, top position, replicate 1; e.g. ``TA_1_1_1``, ``SWC_1_1_1``,
    ``PPFD_IN_1_1_1``); the chosen column is in ``source_name``.

    ``TA`` -> ``air_temperature`` degC; ``RH`` -> ``relative_humidity`` %;
    ``VPD_PI`` -> ``vpd`` hPa; ``PA`` (KPa) -> ``air_pressure`` kPa;
    ``P`` -> ``precipitation`` mm per record; ``WS`` -> ``wind_speed`` m s-1;
    ``CO2`` (ppm) -> ``co2`` umol mol-1; ``SW_IN`` / ``LW_IN`` / ``NETRAD`` ->
    ``shortwave_in`` / ``longwave_in`` / ``net_radiation`` W m-2;
    ``PPFD_IN`` / ``PPFD_DIF`` -> ``ppfd_in`` / ``ppfd_diffuse`` umol m-2 s-1;
    ``USTAR`` -> ``ustar`` m s-1; ``SWC`` (%) -> ``soil_water_content`` m3 m-3 (x 0.01);
    ``TS`` -> ``soil_temperature`` degC; ``G`` -> ``ground_heat_flux`` W m-2;
    ``H`` / ``LE`` -> ``h`` / ``le`` W m-2 (measured, not gap-filled);
    ``FC`` -> ``co2_flux``; ``SC`` -> ``co2_storage_flux``;
    ``NEE_PI`` (= FC + SC, PI-processed, not gap-filled) -> ``nee``;
    ``NEE_PI_f`` -> ``nee_filled``, ``GPP_PI`` -> ``gpp``, ``RECO_PI`` -> ``reco``
    when present (all umolCO2 m-2 s-1 -> umol m-2 s-1).
    Extras when present: ``h_pi``, ``le_pi``, ``h_filled``, ``le_filled``,
    ``shortwave_out``, ``longwave_out`` (W m-2).
    Flags (units ``"1"``): ``nee_qc`` <- ``FC_SSITC_TEST``, ``h_qc`` <-
    ``H_SSITC_TEST``, ``le_qc`` <- ``LE_SSITC_TEST`` (0 best, 1 medium, 2 bad).

    Raises
    ------
    DataValidationError : empty/truncated/corrupt file or gzip stream, missing
        ``TIMESTAMP_END``, non-numeric cells, implausible values (unit errors),
        duplicated or unsorted timestamps.

    Citation
    --------
    europe-fluxdata.eu Database template; hesseflux (Cuntz et al., MIT) for the
    FR-Hes example file. FR-Hes data: ICOS France / INRAE; acknowledge the site team.
    """
    src = str(path)
    df, (names,) = read_table_text(path, sep=",", header_rows=1, required=("TIMESTAMP_END",))
    tend = parse_yyyymmddhhmm(df, "TIMESTAMP_END", source=src)
    step = infer_step(tend, source=src)
    time = tend - step

    vb = VariableBuilder(src)
    for name, (code, unit) in EFD_CANONICAL.items():
        col = _pick_column(names, code)
        if col:
            vb.canonical(name, numeric_column(df, col, source=src), unit, col)
    for name, (code, unit, like, long_name) in EFD_EXTRA.items():
        col = _pick_column(names, code)
        if col:
            vb.like(name, like, numeric_column(df, col, source=src), unit, col, long_name)
    for name, (code, vmax, long_name) in EFD_FLAGS.items():
        col = _pick_column(names, code)
        if col:
            vb.flag(name, numeric_column(df, col, source=src), col, long_name, max_value=vmax)

    site, offset = site_and_offset(path, site_id, utc_offset_hours)
    citation = _CITATION + (" " + _SITE_CITATION[site] if site in _SITE_CITATION else "")
    return finish_dataset(
        vb, time, path=path, fmt="European Fluxes Database (europe-fluxdata.eu) template CSV",
        site_id=site, utc_offset_hours=offset, step=step,
        original_time="TIMESTAMP_END YYYYMMDDHHMM (interval end), local standard time; "
                      "time = TIMESTAMP_END - step",
        citation=citation,
        licence=("FR-Hes example file: MIT (hesseflux); PI-level data, acknowledge the FR-Hes "
                 "team and ICOS France" if site == "FR-Hes"
                 else "see the data provider's terms (ICOS releases: CC BY 4.0)"))


def europe_fluxdata_soil_water_profiles(path: str | os.PathLike):
    """Soil-water profiles of a European Fluxes Database template file: for every vertical
    position V of the ``SWC_H_V_1`` columns, the mean over the horizontal profiles H
    (m3 m-3, from % x 0.01), on the interval-start ``time`` of
    :func:`read_europe_fluxdata` (``TIMESTAMP_END - step``). Variables ``swc_position_<V>``
    with dims ``(time,)``; the file does not give the depths of the positions
    (attribute ``depth``: ``"unknown"``). Missing values (-9999) are NaN; a position with
    no valid record is all NaN."""
    import numpy as np
    import xarray as xr
    src = str(path)
    df, (names,) = read_table_text(path, sep=",", header_rows=1, required=("TIMESTAMP_END",))
    tend = parse_yyyymmddhhmm(df, "TIMESTAMP_END", source=src)
    time = tend - infer_step(tend, source=src)
    cols: dict[int, list[str]] = {}
    for n in names:
        m = re.fullmatch(r"SWC_(\d+)_(\d+)_1", n)
        if m:
            cols.setdefault(int(m.group(2)), []).append(n)
    data = {}
    for v in sorted(cols):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)      # records with all profiles NaN
            mean = np.nanmean([numeric_column(df, n, source=src) for n in cols[v]], axis=0)
        data[f"swc_position_{v}"] = ("time", mean / 100.0, {
            "units": "m3 m-3", "long_name": f"soil water content, vertical position {v}, mean of "
            f"{len(cols[v])} profiles", "source_name": ",".join(cols[v]), "depth": "unknown"})
    return xr.Dataset(data, coords={"time": np.asarray(time, "datetime64[ns]")},
                      attrs={"source_file": os.path.basename(src)})
