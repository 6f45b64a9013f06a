"""Machinery shared by the flux-tower readers (:mod:`.fluxnet`, :mod:`.efd`,
:mod:`.reddyproc`, :mod:`.diive`, :mod:`.pyrealm`).

* :func:`read_table_text` -- decode a delimited text file (any line ending, optional
  gzip), check that every record has as many fields as the header (a file cut in the
  middle of a line is corruption, not missing data) and parse it with pandas, turning
  every parser failure into a :class:`~process_models.units.DataValidationError`.
* :func:`numeric_column` -- one column as float with the -9999 codes masked; non-numeric
  cells (garbage bytes) raise, naming the file, column and row.
* :class:`VariableBuilder` -- collects canonical and extra variables with ``units``,
  ``long_name``, ``source_name`` and ``source_units`` attributes.
* :func:`finish_dataset` -- validates the time axis and writes the global attributes
  every tower reader promises (``site_id``, ``time_convention`` ...).
"""
from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from ..units import _CONVERSIONS, CANONICAL, DataValidationError, check_range, check_time_axis, convert
from ._common import canonical_variable, mask_fill_values, read_bytes

# ---------------------------------------------------------------------------------------
# sites
# ---------------------------------------------------------------------------------------

#: UTC offsets of the tower clocks (local standard time, no daylight saving) for the
#: sites whose data ship with ecoflux. All five are Central European Time = UTC+1.
KNOWN_UTC_OFFSETS: dict[str, float] = {
    "BE-Vie": 1.0,
    "CH-Cha": 1.0,
    "CH-Dav": 1.0,
    "DE-Tha": 1.0,
    "FR-Hes": 1.0,
}

_SITE_RE_FLX = re.compile(r"FLX_([A-Z]{2}-[A-Za-z0-9]{3})(?![A-Za-z0-9])")
_SITE_RE = re.compile(r"(?<![A-Za-z0-9])([A-Z]{2}-[A-Za-z0-9]{3})(?![A-Za-z0-9])")
_SITE_RE_NOHYPHEN = re.compile(r"([A-Z]{2})([A-Z][a-z]{2})")


def guess_site_id(path: str | Path) -> str | None:
    """Site code (``CC-Sss``) from a file name, or ``None``.

    ``FLX_CH-Cha_...`` (FLUXNET naming) is preferred; otherwise the first
    ``CC-Sss`` token; a hyphen-less token (``DETha98``) is accepted only when it names a
    site of :data:`KNOWN_UTC_OFFSETS`. Case is normalised to the known spelling
    (``CH-DAV`` -> ``CH-Dav``).
    """
    name = Path(path).name
    known = {k.upper(): k for k in KNOWN_UTC_OFFSETS}
    m = _SITE_RE_FLX.search(name)
    cands = [m.group(1)] if m else []
    cands += [c for c in _SITE_RE.findall(name) if c.upper() not in ("HH-CSV", "HR-CSV")]
    for c in cands:
        return known.get(c.upper(), c)
    for a, b in _SITE_RE_NOHYPHEN.findall(name):
        c = f"{a}-{b}"
        if c.upper() in known:
            return known[c.upper()]
    return None


def site_and_offset(path, site_id: str | None, utc_offset_hours: float | None):
    """Resolve the site code and UTC offset (explicit arguments win, then the known
    table, else ``'unknown'`` / NaN)."""
    site = site_id or guess_site_id(path) or "unknown"
    if utc_offset_hours is None:
        utc_offset_hours = KNOWN_UTC_OFFSETS.get(site, float("nan"))
    return site, float(utc_offset_hours)


def time_zone_words(offset: float) -> str:
    if not np.isfinite(offset):
        return "local standard time of the site (offset to UTC unknown)"
    sign = "+" if offset >= 0 else "-"
    h = int(abs(offset))
    m = int(round((abs(offset) - h) * 60))
    return f"UTC{sign}{h:02d}:{m:02d} (local standard time, no daylight saving)"


# ---------------------------------------------------------------------------------------
# units
# ---------------------------------------------------------------------------------------

_UNIT_ALIASES = {
    "kpa": "kPa",
    "ppm (umol mol-1)": "ppm",
    "umolco2 m-2 s-1": "umol m-2 s-1",
    "umol co2 m-2 s-1": "umol m-2 s-1",
    "deg c": "degC",
    "°c": "degC",
    "-": "1",
    "--": "1",
    "adimensional": "1",
    "": "1",
}
_KNOWN_UNITS = ({s.units for s in CANONICAL.values()} | {a for pair in _CONVERSIONS for a in pair}
                | {"mmol m-2 s-1", "m", "deg", "kg m-1 s-2"})
_SPACELESS = {u.replace(" ", "").lower(): u for u in _KNOWN_UNITS}


def normalise_unit(unit: str) -> str:
    """Map a unit string as written in a file to the spelling used by
    :mod:`process_models.units` (``'umolm-2s-1'`` -> ``'umol m-2 s-1'``,
    ``'KPa'`` -> ``'kPa'``, ``'-'`` -> ``'1'``). Unknown strings are returned stripped."""
    u = str(unit).strip()
    low = u.lower()
    if low in _UNIT_ALIASES:
        return _UNIT_ALIASES[low]
    return _SPACELESS.get(low.replace(" ", ""), u)


# ---------------------------------------------------------------------------------------
# text tables
# ---------------------------------------------------------------------------------------

def decode_text(path: str | Path) -> str:
    """Bytes of ``path`` (gunzipped if needed) as text with ``\\n`` line endings.

    Raises :class:`DataValidationError` for an empty file or binary garbage (NUL bytes).
    """
    src = str(path)
    raw = read_bytes(path)
    if not raw.strip():
        raise DataValidationError("the file is empty.", source=src,
                                  fix="re-copy the file; compare its size/sha256 with PROVENANCE.md.")
    if b"\x00" in raw:
        i = raw.index(b"\x00")
        line = raw[:i].count(b"\n") + raw[:i].count(b"\r") - raw[:i].count(b"\r\n") + 1
        raise DataValidationError(
            f"binary garbage (NUL byte) at byte {i}, about line {line}; this is not a text table.",
            source=src, fix="re-copy or re-download the file; compare its sha256 with PROVENANCE.md.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    if text.startswith("\ufeff"):
        text = text[1:]
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def read_table_text(path: str | Path, *, sep: str, header_rows: int = 1,
                    required: tuple[str, ...] = ()) -> tuple[pd.DataFrame, list[list[str]]]:
    """Parse a delimited text table; return ``(data, header_lines)``.

    ``header_lines`` holds the split fields of the first ``header_rows`` lines (names,
    then e.g. units). Every non-empty data line must have exactly as many fields as the
    name row; otherwise (a truncated last line, a line cut or merged by corruption) a
    :class:`DataValidationError` names the file and line. ``required`` columns must be
    present. Data cells are kept as pandas parsed them; use :func:`numeric_column`.
    """
    src = str(path)
    text = decode_text(path)
    lines = text.split("\n")
    while lines and not lines[-1].strip():
        lines.pop()
    if len(lines) < header_rows:
        raise DataValidationError(
            f"the file has {len(lines)} line(s), fewer than the {header_rows} header row(s) "
            "of this format.", source=src, fix="re-copy the file; it is truncated.")
    header = [[f.strip().strip('"') for f in ln.split(sep)] for ln in lines[:header_rows]]
    names = header[0]
    if len(names) < 2:
        raise DataValidationError(
            f"the header line has {len(names)} field(s) with separator {sep!r}; "
            "this is not a table of this format.", source=src,
            fix="check that the file has the expected format (and is not truncated or binary).")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise DataValidationError(f"duplicated column names {dup}.", source=src,
                                  fix="rename or drop the duplicated columns.")
    missing = [c for c in required if c not in names]
    if missing:
        raise DataValidationError(
            f"required column(s) {missing} missing (the header has {len(names)} columns).",
            source=src, variable=missing[0],
            fix="pass a complete file of this format; the column may have been renamed or cut.")
    for k, h in enumerate(header[1:], start=2):
        if len(h) != len(names):
            raise DataValidationError(
                f"header line {k} has {len(h)} fields but the name row has {len(names)}.",
                source=src, fix="the file is corrupt or not of this format.")
    body = lines[header_rows:]
    if not body:
        raise DataValidationError("the file has a header but no data records.", source=src,
                                  fix="re-copy the file; it is truncated.")
    nsep = len(names) - 1
    counts = np.fromiter((ln.count(sep) for ln in body), dtype=np.int64, count=len(body))
    blank = np.fromiter((not ln.strip() for ln in body), dtype=bool, count=len(body))
    bad = np.flatnonzero((counts != nsep) & ~blank)
    if bad.size:
        i = int(bad[0])
        lineno = header_rows + i + 1
        what = ("the last line" if i == len(body) - 1 else f"line {lineno}")
        raise DataValidationError(
            f"{what} (line {lineno}) has {counts[i] + 1} fields but the header has {len(names)}"
            f" ({bad.size} bad line(s) in all); the file is truncated or corrupt "
            f"(line starts {body[i][:40]!r}).",
            source=src, fix="re-copy or re-download the file; compare its sha256 with PROVENANCE.md.")
    try:
        df = pd.read_csv(io.StringIO("\n".join(body)), sep=sep, header=None, names=names,
                         skip_blank_lines=True, engine="c", low_memory=False,
                         na_values=["", "NA", "NaN", "nan"], keep_default_na=False)
    except (pd.errors.ParserError, ValueError) as err:  # pragma: no cover - guarded above
        raise DataValidationError(f"could not be parsed ({err}).", source=src,
                                  fix="the file is corrupt or not of this format.") from err
    return df, header


def numeric_column(df: pd.DataFrame, column: str, *, source: str) -> np.ndarray:
    """Column as float64 with FILL_VALUES -> NaN; non-numeric cells raise."""
    s = df[column]
    if s.dtype.kind not in "iufb":
        num = pd.to_numeric(s, errors="coerce")
        badmask = num.isna().to_numpy() & s.notna().to_numpy()
        if badmask.any():
            i = int(np.argmax(badmask))
            raise DataValidationError(
                f"non-numeric value {str(s.iloc[i])[:30]!r} in data row {i + 1} "
                f"({int(badmask.sum())} such cell(s)); the file is corrupt.",
                source=source, variable=column,
                fix="re-copy the file, or fix/blank the bad cells (missing values are -9999).")
        s = num
    return mask_fill_values(s.to_numpy(dtype=float, na_value=np.nan))


def parse_yyyymmddhhmm(df: pd.DataFrame, column: str, *, source: str) -> np.ndarray:
    """FLUXNET-style ``YYYYMMDDHHMM`` column to datetime64[ns]; bad cells raise."""
    v = numeric_column(df, column, source=source)
    if not np.all(np.isfinite(v)):
        i = int(np.argmax(~np.isfinite(v)))
        raise DataValidationError(f"missing timestamp in data row {i + 1}.", source=source,
                                  variable=column, fix="every record needs a timestamp.")
    iv = v.astype(np.int64)
    if np.any(iv != v):
        i = int(np.argmax(iv != v))
        raise DataValidationError(f"timestamp {v[i]!r} in data row {i + 1} is not YYYYMMDDHHMM.",
                                  source=source, variable=column,
                                  fix="write timestamps as 12-digit YYYYMMDDHHMM integers.")
    t = pd.to_datetime(pd.Series(iv.astype(str)), format="%Y%m%d%H%M", errors="coerce")
    if t.isna().any():
        i = int(np.argmax(t.isna().to_numpy()))
        raise DataValidationError(f"timestamp {iv[i]} in data row {i + 1} is not a valid "
                                  "YYYYMMDDHHMM date.", source=source, variable=column,
                                  fix="write timestamps as 12-digit YYYYMMDDHHMM integers.")
    return t.to_numpy(dtype="datetime64[ns]")


def infer_step(times: np.ndarray, *, source: str, default_seconds: float = 1800.0) -> np.timedelta64:
    """Record length: the most common positive difference of ``times`` (sorted-ness is
    checked separately)."""
    t = np.asarray(times, dtype="datetime64[ns]")
    if t.size < 2:
        return np.timedelta64(int(default_seconds * 1e9), "ns")
    d = np.diff(t).astype(np.int64)
    d = d[d > 0]
    if d.size == 0:
        check_time_axis(t, source=source)  # raises: duplicated / unsorted
        return np.timedelta64(int(default_seconds * 1e9), "ns")  # pragma: no cover
    vals, cnt = np.unique(d, return_counts=True)
    return np.timedelta64(int(vals[np.argmax(cnt)]), "ns")


# ---------------------------------------------------------------------------------------
# variables and datasets
# ---------------------------------------------------------------------------------------

#: Fraction of finite values allowed outside the plausible range of
#: :data:`~process_models.units.CANONICAL` (default of :func:`check_range`: 0.001).
#: u* is looser: DE-Tha 1998 has a storm/sensor episode (24-26 Jan) with 38 half-hours
#: of u* = 5-8 m s-1 (0.2 %). A unit error still fails: it moves nearly all values.
RANGE_TOLERANCE: dict[str, float] = {"ustar": 0.01}


def _checked(values, name: str, from_units: str, *, source: str, column: str,
             extra_attrs: dict | None):
    var = canonical_variable(values, name, from_units, source=source, column=column,
                             check=False, extra_attrs=extra_attrs)
    check_range(var.values, name, source=source, column=column,
                fraction=RANGE_TOLERANCE.get(name, 0.001))
    return var


class VariableBuilder:
    """Collects the data variables of one Dataset."""

    def __init__(self, source: str):
        self.source = source
        self.vars: dict[str, xr.Variable] = {}

    def canonical(self, name: str, values, from_units: str, column: str, **extra_attrs):
        """Canonical variable (converted, range-checked)."""
        self.vars[name] = _checked(values, name, normalise_unit(from_units),
                                   source=self.source, column=column,
                                   extra_attrs=extra_attrs or None)
        return self.vars[name]

    def like(self, name: str, like: str, values, from_units: str, column: str,
             long_name: str | None = None, **extra_attrs):
        """Non-canonical variable with the unit and plausible range of canonical
        ``like`` (e.g. ``gpp_dt`` like ``gpp``)."""
        var = _checked(values, like, normalise_unit(from_units), source=self.source,
                       column=column, extra_attrs=extra_attrs or None)
        var.attrs.pop("standard_name", None)
        if long_name:
            var.attrs["long_name"] = long_name
        self.vars[name] = var
        return var

    def flag(self, name: str, values, column: str, long_name: str, *, max_value: int = 9,
             **extra_attrs):
        """Quality flag (non-negative integers stored as float with NaN; units ``1``)."""
        v = mask_fill_values(values)
        fin = v[np.isfinite(v)]
        if fin.size and (np.any(fin < 0) or np.any(fin > max_value) or np.any(fin != np.round(fin))):
            bad = fin[(fin < 0) | (fin > max_value) | (fin != np.round(fin))][0]
            raise DataValidationError(
                f"quality flag holds {bad!r}; flags are integers 0..{max_value}.",
                source=self.source, variable=column,
                fix="check the column; the file may be corrupt or the columns shifted.")
        attrs = {"units": "1", "long_name": long_name, "source_name": column,
                 "source_units": "1"}
        attrs.update(extra_attrs)
        self.vars[name] = xr.Variable(("time",), v, attrs=attrs)
        return self.vars[name]

    def plain(self, name: str, values, units: str, column: str, long_name: str,
              source_units: str | None = None, **extra_attrs):
        """Non-canonical variable in its own unit (no range check beyond finiteness)."""
        su = normalise_unit(source_units if source_units is not None else units)
        v = convert(mask_fill_values(values), su, units, source=self.source, variable=column)
        attrs = {"units": units, "long_name": long_name, "source_name": column,
                 "source_units": su}
        attrs.update(extra_attrs)
        self.vars[name] = xr.Variable(("time",), v, attrs=attrs)
        return self.vars[name]


def finish_dataset(vb: VariableBuilder, time, *, path, fmt: str, site_id: str,
                   utc_offset_hours: float, step: np.timedelta64, original_time: str,
                   citation: str, licence: str, extra_attrs: dict | None = None) -> xr.Dataset:
    """Check the time axis and assemble the Dataset with the standard global attrs."""
    src = str(path)
    t = np.asarray(time, dtype="datetime64[ns]")
    check_time_axis(t, source=src)
    if not vb.vars:
        raise DataValidationError("no known variables found in the file.", source=src,
                                  fix="check that the file has the expected format.")
    ds = xr.Dataset(vb.vars, coords={"time": ("time", t, {
        "long_name": "start of the averaging interval", "standard_name": "time"})})
    ds.attrs.update({
        "site_id": site_id,
        "source_file": Path(src).name,
        "source_path": src,
        "format": fmt,
        "time_convention": "interval start",
        "original_time_convention": original_time,
        "time_zone": time_zone_words(utc_offset_hours),
        "utc_offset_hours": float(utc_offset_hours),
        "time_step_seconds": float(step / np.timedelta64(1, "s")),
        "nee_sign_convention": "NEE = Reco - GPP; positive = CO2 source to the atmosphere",
        "citation": citation,
        "licence": licence,
    })
    if extra_attrs:
        ds.attrs.update(extra_attrs)
    return ds


def check_variables_request(variables, available: dict, *, source: str):
    """Validate a ``variables=`` request against the names a reader can produce."""
    if variables is None:
        return None
    if isinstance(variables, str):
        variables = [variables]
    req = list(variables)
    unknown = [v for v in req if v not in available]
    if unknown:
        raise ValueError(f"unknown variable name(s) {unknown}; this reader provides "
                         f"{sorted(available)}.")
    return set(req)


__all__ = ["KNOWN_UTC_OFFSETS", "guess_site_id", "site_and_offset", "normalise_unit",
           "read_table_text", "numeric_column", "parse_yyyymmddhhmm", "infer_step",
           "VariableBuilder", "finish_dataset", "check_range"]
