"""Text summaries of reader output and NetCDF-safe writing (the ``ecoflux read`` output).

* :func:`summarize_dataset`: variable table (units, long_name, % missing, min, max), time
  span and step, time convention, UTC offset;
* :func:`summarize`: the same for anything a reader returns (a Dataset, a dict of Datasets
  and tables, a DataFrame);
* :func:`netcdf_safe`: a copy whose attributes netCDF can store; :func:`write_netcdf`: a
  reader result to one netCDF file (one group per object for a dict).
"""
from __future__ import annotations

import datetime as _dt
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

__all__ = ["summarize_dataset", "summarize", "netcdf_safe", "dataframe_to_dataset", "write_netcdf"]


def _fmt_num(v) -> str:
    if v is None:
        return "-"
    if isinstance(v, np.datetime64):
        return "NaT" if np.isnat(v) else str(v.astype("datetime64[s]"))
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return str(int(v))
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    if not np.isfinite(f):
        return "nan"
    return f"{f:.6g}"


def _variable_stats(da):
    """(% missing, min, max) of a DataArray; datetimes give datetime min/max."""
    a = np.asarray(da.values)
    if a.size == 0:
        return 100.0, None, None
    if a.dtype.kind == "M":
        miss = np.isnat(a)
        ok = a[~miss]
        return 100.0 * miss.mean(), (ok.min() if ok.size else None), (ok.max() if ok.size else None)
    if a.dtype.kind in "iub":
        return 0.0, a.min(), a.max()
    if a.dtype.kind == "f":
        miss = np.isnan(a)
        if miss.all():
            return 100.0, None, None
        # boolean indexing, not nanmin: R's NA (a signalling NaN from .RData files)
        # defeats NumPy's SIMD fmin/fmax reductions
        ok = a[~miss]
        return 100.0 * miss.mean(), ok.min(), ok.max()
    return 0.0, None, None


def _truncate(s: str, n: int) -> str:
    s = str(s)
    return s if len(s) <= n else s[: n - 3] + "..."


def summarize_dataset(ds, title: str | None = None) -> str:
    """Text summary of a reader Dataset: variable table, time span, conventions."""
    lines = []
    if title:
        lines.append(f"== {title} ==")
    for key in ("format", "title", "site_id", "source_file"):
        if key in ds.attrs:
            lines.append(f"{key}: {_truncate(ds.attrs[key], 200)}")
    dims = ", ".join(f"{d}={n}" for d, n in ds.sizes.items())
    lines.append(f"dimensions: {dims}")
    header = ("variable", "units", "long_name", "% missing", "min", "max")
    rows = []
    for name, da in ds.data_vars.items():
        miss, lo, hi = _variable_stats(da)
        units = da.attrs.get("units", "(datetime)" if da.dtype.kind == "M" else "?")
        rows.append((str(name), str(units),
                     _truncate(da.attrs.get("long_name", ""), 48),
                     f"{miss:.1f}", _fmt_num(lo), _fmt_num(hi)))
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    fmt = lambda r: "  ".join(  # noqa: E731
        (c.rjust(w) if i >= 3 else c.ljust(w)) for i, (c, w) in enumerate(zip(r, widths)))
    lines.append(fmt(header))
    lines.append("  ".join("-" * w for w in widths))
    lines += [fmt(r) for r in rows]
    if "time" in ds.coords and ds.sizes.get("time", 0):
        t = np.asarray(ds["time"].values)
        step = ds.attrs.get("time_step_seconds")
        step_txt = ""
        if step is not None:
            s = float(step)
            step_txt = (f", step {s / 86400:g} d" if s >= 86400 and s % 86400 == 0
                        else f", step {s / 60:g} min" if s < 3600 else f", step {s / 3600:g} h")
        lines.append(f"time span: {_fmt_num(t.min())} .. {_fmt_num(t.max())} "
                     f"({t.size} records{step_txt})")
    conv = ds.attrs.get("time_convention")
    if conv is None and "time" in ds.coords:
        conv = ds["time"].attrs.get("long_name")
    lines.append(f"time convention: {conv if conv is not None else 'unknown'}")
    if "original_time_convention" in ds.attrs:
        lines.append(f"original time convention: {ds.attrs['original_time_convention']}")
    off = ds.attrs.get("utc_offset_hours")
    zone = ds.attrs.get("time_zone")
    off_txt = "unknown" if off is None or (isinstance(off, float) and off != off) else f"{float(off):+g} h"
    lines.append(f"utc offset: {off_txt}" + (f" ({zone})" if zone else ""))
    return "\n".join(lines)


def _netcdf_safe_value(v):
    """Attribute value netCDF can store (datetimes -> ISO strings, bools -> int,
    None -> "none", dicts/other objects -> str)."""
    if v is None:
        return "none"
    if isinstance(v, (bool, np.bool_)):
        return int(v)
    if isinstance(v, (pd.Timestamp, _dt.datetime, _dt.date)):
        return v.isoformat()
    if isinstance(v, np.datetime64):
        return str(v)
    if isinstance(v, (pd.Timedelta, _dt.timedelta, np.timedelta64)):
        return str(v)
    if isinstance(v, (str, int, float, np.integer, np.floating, bytes)):
        return v
    if isinstance(v, np.ndarray):
        if v.dtype.kind in "iuf":
            return v
        return ", ".join(str(_netcdf_safe_value(x)) for x in v.ravel())
    if isinstance(v, (list, tuple)):
        if v and all(isinstance(x, (int, float, np.integer, np.floating))
                     and not isinstance(x, bool) for x in v):
            return np.asarray(v)
        return ", ".join(str(_netcdf_safe_value(x)) for x in v)
    return str(v)


def netcdf_safe(ds):
    """Copy of ``ds`` whose global, variable and coordinate attributes are all
    storable in NetCDF."""
    ds = ds.copy()
    ds.attrs = {str(k): _netcdf_safe_value(v) for k, v in ds.attrs.items()}
    for name in list(ds.variables):
        var = ds.variables[name]
        var.attrs = {str(k): _netcdf_safe_value(v) for k, v in var.attrs.items()}
    return ds


def dataframe_to_dataset(df, name: str):
    flat = df.reset_index(drop=df.index.name is None and not any(df.index.names))
    out = xr.Dataset.from_dataframe(flat.rename_axis("row"))
    for v in out.data_vars:
        if out[v].dtype == object:
            out[v] = out[v].astype(str)
    out.attrs["object"] = name
    return out


def _summarize_table(df, title: str) -> str:
    lines = [f"== {title} (table, {len(df)} rows) =="]
    with pd.option_context("display.width", 120, "display.max_columns", 20):
        lines.append(df.head(10).to_string())
    if len(df) > 10:
        lines.append(f"... ({len(df) - 10} more rows)")
    return "\n".join(lines)


def summarize(obj, title: str | None = None) -> str:
    """Summary of a reader result: a Dataset (:func:`summarize_dataset`), a DataFrame (its
    first rows) or a dict of them (``objects: ...`` then one block per object)."""
    if isinstance(obj, dict):
        blocks = [f"objects: {', '.join(obj)}"]
        blocks += [summarize(v, title=k) for k, v in obj.items()]
        return "\n\n".join(blocks)
    if isinstance(obj, pd.DataFrame):
        return _summarize_table(obj, title or "table")
    return summarize_dataset(obj, title=title)


def write_netcdf(obj, path: str | Path) -> str:
    """Write a reader result to ``path`` (attributes made storable by :func:`netcdf_safe`;
    a dict becomes one netCDF group per object, a DataFrame a Dataset on ``row``). Returns
    a one-line description of what was written."""
    path = Path(path)
    if isinstance(obj, dict):
        mode = "w"
        for key, o in obj.items():
            ds = dataframe_to_dataset(o, key) if isinstance(o, pd.DataFrame) else o
            netcdf_safe(ds).to_netcdf(path, mode=mode, group=key)
            mode = "a"
        return f"wrote {path} (one NetCDF group per object: {', '.join(obj)})"
    ds = dataframe_to_dataset(obj, "table") if isinstance(obj, pd.DataFrame) else obj
    netcdf_safe(ds).to_netcdf(path)
    return f"wrote {path}"
