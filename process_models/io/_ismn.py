"""Reader for International Soil Moisture Network (ISMN) in-situ soil moisture in the
"CEOP separate files" ``.stm`` format, plus the station's ``*_static_variables.csv``.

Format (whitespace-separated, no header, one row per measurement; Dorigo et al. 2021)::

    nominal date  nominal time  actual date  actual time  CSE  network  station
    lat  lon  elevation  depth_from  depth_to  soil_moisture  ISMN_flag  provider_flag

Dates/times are ``YYYY/MM/DD HH:MM`` in **UTC**; soil moisture is volumetric
(m3 m-3); missing hours are absent rows (no sentinel). Files can have CR-only line
endings (SMOSMANIA), which are accepted.

ISMN quality flags (Dorigo et al. 2013, Vadose Zone J. 12, doi:10.2136/vzj2012.0097):
``G`` good; ``U`` undefined (no check possible); ``Dxx`` dubious (D01-D05 geophysical
checks against GLDAS: D01-D02 in-situ/GLDAS soil temperature < 0 degC, D03 GLDAS soil
temperature < 0 degC, D04 rise without GLDAS precipitation, D05 rise without in-situ
precipitation; D06-D10 spectral checks: D06 spike, D07 negative break (drop), D08
positive break (jump), D09 low constant values after a break, D10 saturated plateau);
``Cxx`` outside the plausible range (C01 < 0, C02 > 60 %, C03 > porosity); ``M``
parameter value missing. Several flags can be combined with commas (``D03,D05``).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..units import DataValidationError, check_range, check_time_axis
from ._tower import decode_text, infer_step

__all__ = ["read_ismn_stm", "read_ismn_static_variables", "ISMN_FOLDER", "ISMN_FR_AQUI_FILE"]

ISMN_FOLDER = "ismn_fr-aqui_smosmania"
ISMN_FR_AQUI_FILE = ("FR-Aqui_FR-Aqui_fraye_sm_0.050000_0.050000_ThetaProbe-ML2X_"
                     "19500101_20210131.stm.gz")

_CITATION = ("Dorigo, W. et al. (2021) The International Soil Moisture Network: serving Earth "
             "system science for over a decade. Hydrol. Earth Syst. Sci. 25, 5749-5804, "
             "doi:10.5194/hess-25-5749-2021. Quality flags: Dorigo, W. et al. (2013) Vadose Zone "
             "J. 12, doi:10.2136/vzj2012.0097. Network data: FR_Aqui (INRAE/ISPA), SMOSMANIA "
             "(Meteo-France; Calvet et al. 2007).")

_COLS = ["date", "time", "date_act", "time_act", "cse", "network", "station", "lat", "lon",
         "elev", "depth_from", "depth_to", "sm", "flag_ismn", "flag_provider"]
_FLAG_RE = re.compile(r"^(G|U|M|[CD]\d\d)(,(G|U|M|[CD]\d\d))*$")

#: static quantity name in the csv -> (output name, unit)
_STATIC = {
    "saturation": ("saturation", "m3 m-3"),
    "clay fraction": ("clay_fraction", "%"),
    "sand fraction": ("sand_fraction", "%"),
    "silt fraction": ("silt_fraction", "%"),
    "organic carbon": ("organic_carbon", "%"),
}


def _float(tok: np.ndarray, what: str, src: str) -> np.ndarray:
    v = pd.to_numeric(pd.Series(tok), errors="coerce").to_numpy(dtype=float)
    if np.isnan(v).any():
        i = int(np.argmax(np.isnan(v)))
        raise DataValidationError(f"non-numeric value {tok[i]!r} in row {i + 1}.", source=src,
                                  variable=what, fix="the file is corrupt; re-copy it.")
    return v


def read_ismn_static_variables(path: str | os.PathLike) -> xr.Dataset:
    """Read an ISMN ``*_static_variables.csv`` (``;``-separated, one row per quantity).

    Returns a Dataset on ``soil_layer`` (one entry per ``depth_from``-``depth_to`` pair)
    with ``saturation`` (m3 m-3), ``clay_fraction``, ``sand_fraction``, ``silt_fraction``,
    ``organic_carbon`` (% weight; HWSD v1.1), coordinates ``depth_from``/``depth_to``
    (m), and attrs ``land_cover`` (ESA CCI class and text, latest year) and
    ``climate_class`` (Koeppen-Geiger).
    """
    src = str(path)
    text = decode_text(path)
    lines = [ln for ln in text.split("\n") if ln.strip()]
    header = [h.strip() for h in lines[0].split(";")]
    need = ["quantity_name", "unit", "depth_from[m]", "depth_to[m]", "value"]
    miss = [c for c in need if c not in header]
    if miss:
        raise DataValidationError(f"column(s) {miss} missing from the header.", source=src,
                                  variable=miss[0], fix="pass an ISMN static-variables file.")
    idx = {c: header.index(c) for c in need + ["description"] if c in header}
    rows, attrs = {}, {}
    for k, ln in enumerate(lines[1:], start=2):
        f = [x.strip() for x in ln.split(";")]
        if len(f) < len(need):
            raise DataValidationError(f"line {k} has {len(f)} fields; truncated.", source=src,
                                      fix="re-copy the file.")
        q = f[idx["quantity_name"]]
        if q in _STATIC:
            try:
                d0, d1, v = (float(f[idx["depth_from[m]"]]), float(f[idx["depth_to[m]"]]),
                             float(f[idx["value"]]))
            except ValueError:
                raise DataValidationError(f"non-numeric depth/value on line {k}.", source=src,
                                          variable=q, fix="re-copy the file.") from None
            rows.setdefault((d0, d1), {})[_STATIC[q][0]] = v
        elif q == "land cover classification":
            desc = f[idx["description"]] if "description" in idx else ""
            attrs["land_cover"] = f"{f[idx['value']]}: {desc}"
        elif q == "climate classification":
            desc = f[idx["description"]] if "description" in idx else ""
            attrs["climate_class"] = f"{f[idx['value']]}: {desc}"
    layers = sorted(rows)
    data = {}
    for q, (name, unit) in _STATIC.items():
        v = np.array([rows[lay].get(name, np.nan) for lay in layers])
        data[name] = ("soil_layer", v, {"units": unit, "long_name": f"{q} (HWSD v1.1)"})
    if "saturation" in data and np.any(np.array(data["saturation"][1]) > 1):
        raise DataValidationError("saturation > 1 m3 m-3.", source=src, variable="saturation",
                                  fix="the value is probably in %; divide by 100.")
    coords = {"depth_from": ("soil_layer", [a for a, _ in layers], {"units": "m"}),
              "depth_to": ("soil_layer", [b for _, b in layers], {"units": "m"})}
    ds = xr.Dataset(data, coords=coords, attrs=attrs)
    ds.attrs["source_file"] = Path(src).name
    return ds


def read_ismn_stm(path: str | os.PathLike | None = None, *, good_flags=("G",),
                  static_variables: str | os.PathLike | bool | None = True) -> xr.Dataset:
    """Read one ISMN ``.stm`` soil-moisture file (one sensor, one depth).

    Parameters
    ----------
    path : ``.stm`` or ``.stm.gz`` file (default: the shipped FR-Aqui "fraye" 0.05 m
        ThetaProbe series, 2013-08 -> 2020-01).
    good_flags : ISMN flags counted as valid (default only ``"G"``; add ``"U"`` for
        networks that are not checked, e.g. the SMOSMANIA sample, where every row is U).
    static_variables : ``True`` (look for ``*_<station>_static_variables.csv`` beside
        the file and merge it if present), a path, or ``False``/``None``.

    Returns
    -------
    Dataset on ``time`` (nominal measurement time, UTC, instantaneous; irregular where
    hours are absent) with ``soil_water_content`` (m3 m-3; attrs ``depth_from``,
    ``depth_to`` in m, ``sensor``), ``ismn_flag`` and ``provider_flag`` (str),
    ``valid`` (bool: every comma-separated ISMN flag in ``good_flags``) and
    ``actual_time``; attrs ``network``, ``station``, ``latitude``, ``longitude``,
    ``elevation``; with the static file, its variables on ``soil_layer`` too.

    Raises
    ------
    DataValidationError : empty/truncated file (a row without 15 fields), bad dates,
        non-numeric values, unknown flag codes, soil moisture outside [0, 1] m3 m-3
        (e.g. in %), several depths or stations in one file, duplicated/unsorted times.
    """
    p = Path(path) if path is not None else None
    if p is None:
        from ._common import data_path
        p = data_path(ISMN_FOLDER, ISMN_FR_AQUI_FILE)
    src = str(p)
    text = decode_text(p)
    lines = [ln for ln in text.split("\n") if ln.strip()]
    toks = [ln.split() for ln in lines]
    nf = np.array([len(t) for t in toks])
    bad = np.flatnonzero(nf != len(_COLS))
    if bad.size:
        i = int(bad[0])
        what = "the last line" if i == len(toks) - 1 else f"line {i + 1}"
        raise DataValidationError(
            f"{what} has {nf[i]} fields, the CEOP separate-file format has {len(_COLS)} "
            f"({bad.size} bad line(s)); the file is truncated or not an ISMN .stm file.",
            source=src, fix="re-copy the file; compare its sha256 with PROVENANCE.md.")
    arr = np.array(toks, dtype=object)
    col = {c: arr[:, k] for k, c in enumerate(_COLS)}
    t = pd.to_datetime(pd.Series(col["date"] + " " + col["time"]), format="%Y/%m/%d %H:%M",
                       errors="coerce")
    if t.isna().any():
        i = int(np.argmax(t.isna().to_numpy()))
        raise DataValidationError(f"date/time {col['date'][i]} {col['time'][i]} in row {i + 1} "
                                  "is not YYYY/MM/DD HH:MM.", source=src, variable="time",
                                  fix="the file is corrupt; re-copy it.")
    ta = pd.to_datetime(pd.Series(col["date_act"] + " " + col["time_act"]),
                        format="%Y/%m/%d %H:%M", errors="coerce")
    time = t.to_numpy(dtype="datetime64[ns]")
    check_time_axis(time, source=src)
    sm = _float(col["sm"], "soil_moisture", src)
    check_range(sm, "soil_water_content", source=src, column="soil_moisture (column 13)")
    flags = col["flag_ismn"].astype(str)
    unknown = sorted({f for f in set(flags) if not _FLAG_RE.match(f)})
    if unknown:
        raise DataValidationError(f"unknown ISMN flag code(s) {unknown[:5]}.", source=src,
                                  variable="ismn_flag",
                                  fix="flags are G, U, M, Cxx or Dxx (comma-separated).")
    good = set(good_flags)
    uniq = {f: all(x in good for x in f.split(",")) for f in set(flags)}
    valid = np.array([uniq[f] for f in flags], dtype=bool)
    meta = {}
    for c in ("network", "station", "depth_from", "depth_to", "lat", "lon", "elev"):
        u = sorted(set(col[c]))
        if len(u) != 1:
            raise DataValidationError(f"column {c} takes {len(u)} values ({u[:3]}...); one .stm "
                                      "file must hold one station and one depth.", source=src,
                                      variable=c, fix="split the file by station/depth.")
        meta[c] = u[0]
    d0, d1 = float(meta["depth_from"]), float(meta["depth_to"])
    sensor = Path(src).name.split("_sm_")[-1].split("_")[2] if "_sm_" in Path(src).name else ""
    data = {
        "soil_water_content": ("time", sm, {
            "units": "m3 m-3", "long_name": "volumetric soil water content",
            "standard_name": "volume_fraction_of_condensed_water_in_soil",
            "depth_from": d0, "depth_to": d1, "depth_units": "m", "sensor": sensor,
            "source_name": "soil moisture (column 13)", "source_units": "m3 m-3"}),
        "ismn_flag": ("time", flags, {"long_name": "ISMN quality flag (G good, U undefined, "
                                      "Dxx dubious, Cxx out of range; see module docstring)"}),
        "provider_flag": ("time", col["flag_provider"].astype(str),
                          {"long_name": "data-provider flag (M: as provided)"}),
        "valid": ("time", valid, {"long_name": f"every ISMN flag in {sorted(good)}"}),
        "actual_time": ("time", ta.to_numpy(dtype="datetime64[ns]"),
                        {"long_name": "actual measurement time (UTC)"}),
    }
    ds = xr.Dataset(data, coords={"time": ("time", time, {
        "long_name": "nominal measurement time (UTC, instantaneous)", "standard_name": "time"})})
    step = infer_step(time, source=src, default_seconds=3600.0)
    ds.attrs.update({
        "site_id": f"{meta['network']}:{meta['station']}", "network": meta["network"],
        "station": meta["station"], "latitude": float(meta["lat"]),
        "longitude": float(meta["lon"]), "elevation": float(meta["elev"]),
        "depth_from": d0, "depth_to": d1, "source_file": Path(src).name, "source_path": src,
        "format": "ISMN CEOP separate files (.stm)",
        "time_convention": "instantaneous measurement at the nominal time (UTC); absent hours "
                           "are absent rows",
        "utc_offset_hours": 0.0, "time_step_seconds": float(step / np.timedelta64(1, "s")),
        "citation": _CITATION,
        "licence": "ISMN terms of use (acknowledge ISMN and the networks); sample redistributed "
                   "in the MIT ismn package",
    })
    st = None
    if static_variables is True:
        cands = sorted(p.parent.glob(f"*_{meta['station']}_static_variables.csv"))
        st = cands[0] if cands else None
    elif static_variables:
        st = Path(static_variables)
    if st is not None:
        sv = read_ismn_static_variables(st)
        ds = ds.merge(sv, combine_attrs="drop_conflicts")
        ds.attrs.update({k: v for k, v in sv.attrs.items() if k != "source_file"})
        ds.attrs["static_variables_file"] = sv.attrs["source_file"]
    return ds
