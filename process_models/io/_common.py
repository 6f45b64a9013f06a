"""Helpers shared by the readers: locating the shipped data, opening gzip files,
and building validated Datasets with canonical names and units."""
from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
import xarray as xr

from ..units import CANONICAL, FILL_VALUES, DataValidationError, check_range, convert

_REPO = Path(__file__).resolve().parents[2]


def data_path(*parts: str) -> Path:
    """Path of a shipped data file.

    Looks in ``$ECOFLUX_DATA``, then the repository's ``experiments/data``, then
    ``../shared/data`` beside the repository. Raises ``FileNotFoundError`` naming every
    place it looked.
    """
    roots = []
    if os.environ.get("ECOFLUX_DATA"):
        roots.append(Path(os.environ["ECOFLUX_DATA"]))
    roots += [_REPO / "experiments" / "data", _REPO.parent / "shared" / "data"]
    for root in roots:
        p = root.joinpath(*parts)
        if p.exists():
            return p
    raise FileNotFoundError(
        f"data file {'/'.join(parts)!r} not found in any of: {', '.join(str(r) for r in roots)}. "
        "Set ECOFLUX_DATA to the folder that holds the shipped data."
    )


def read_bytes(path: str | os.PathLike) -> bytes:
    """Read a file, transparently gunzipping ``*.gz``; a truncated gzip raises a
    :class:`DataValidationError` naming the file."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file.")
    raw = path.read_bytes()
    if path.suffix == ".gz" or raw[:2] == b"\x1f\x8b":
        try:
            return gzip.decompress(raw)
        except (EOFError, OSError, gzip.BadGzipFile) as err:
            raise DataValidationError(
                f"corrupt or truncated gzip stream ({err}).", source=str(path),
                fix="re-download or re-copy the file; compare its sha256 with PROVENANCE.md.",
            ) from err
    return raw


def mask_fill_values(arr: np.ndarray) -> np.ndarray:
    """Return a float copy of ``arr`` with the sentinel codes of
    :data:`process_models.units.FILL_VALUES` replaced by NaN."""
    out = np.asarray(arr, dtype=float).copy()
    for fv in FILL_VALUES:
        out[out == fv] = np.nan
    return out


def canonical_variable(values, name: str, from_units: str, *, source: str, column: str,
                       check: bool = True, extra_attrs: dict | None = None) -> xr.Variable:
    """Convert one column to the canonical unit of ``name``, check its range, and
    return an :class:`xarray.Variable` on ``time`` with units and provenance attrs."""
    spec = CANONICAL[name]
    v = mask_fill_values(values)
    v = convert(v, from_units, spec.units, source=source, variable=column)
    if check:
        check_range(v, name, source=source, column=column)
    attrs = {"units": spec.units, "long_name": spec.long_name,
             "source_name": column, "source_units": from_units}
    if spec.standard_name:
        attrs["standard_name"] = spec.standard_name
    if extra_attrs:
        attrs.update(extra_attrs)
    return xr.Variable(("time",), v, attrs=attrs)


def open_netcdf(path: Path, *, what: str = "netCDF"):
    """Open a (possibly gzipped) netCDF/HDF5 file in memory as a ``netCDF4.Dataset``;
    an unreadable file raises :class:`DataValidationError` naming it. Close it after use."""
    import netCDF4

    raw = read_bytes(path)
    try:
        return netCDF4.Dataset(Path(path).name, mode="r", memory=raw)
    except (OSError, RuntimeError, ValueError) as err:
        raise DataValidationError(
            f"not a readable {what} file ({err}).", source=str(path),
            fix="re-download or re-copy the file; compare its sha256 with PROVENANCE.md.") from err
