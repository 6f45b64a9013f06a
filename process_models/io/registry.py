"""One registry of the file formats the readers understand: name -> reader, detection
rules, description, shipped example.

A format's name ``X`` is the reader ``process_models.io.read_X`` (``netcdf``: a canonical
Dataset written with ``to_netcdf``, read with :func:`xarray.load_dataset`). The same names
are the ``--format`` choices of ``ecoflux read`` and the ``[forcing] reader`` of the BMI
configs.

Detection (:func:`detect_format`) runs every format's *name rule* (file name, extension,
directory content) in registry order, then every *content rule* (netCDF variable names,
text header columns), and returns the first match:

===================== ================================================================
rule                  format
===================== ================================================================
name                  folder of ``MOD09A1*`` files, or ``MOD09A1`` in the name -> mod09a1
name                  ``*.parquet`` -> diive_parquet
name                  ``*.RData``/``*.rda``: ``param`` in the name -> vprm_parameter_tables,
                      else park_falls
name                  ``FULLSET`` -> fluxnet2015; ``europe-fluxdata`` -> europe_fluxdata
name                  ``*.stm`` -> ismn_stm
netCDF content        ``t2m`` and ``ssrd`` -> era5_single_levels; ``sur_refl_*`` -> mod09a1;
                      any other readable netCDF -> netcdf
header                ``TIMESTAMP_START`` -> fluxnet2015; ``TIMESTAMP_END`` or ``VAR_H_V_R``
                      columns (``TA_1_1_1``) -> europe_fluxdata; ``Year/DoY/Hour`` or
                      ``Day/Hour`` -> reddyproc_text; ``time/ppfd/tc/patm`` ->
                      pyrealm_merged; ``year/month/doy/hour/Tair/NEE`` -> bigleaf_month;
                      ``site/date/EVI/sur_refl_b01/SummaryQA`` -> modis_sites_mod13a1;
                      ``band/modis_date/pixel/value`` -> modis_lai_fapar_ornl;
                      ``quantity_name/depth_from[m]`` -> ismn_static_variables
===================== ================================================================

Usage::

    from process_models.io import FORMATS, detect_format, read
    fmt = detect_format(path)            # e.g. "fluxnet2015"
    ds = read(path)                      # = FORMATS[fmt].reader(path)
"""
from __future__ import annotations

import gzip
import re
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Callable

from ..units import DataValidationError

__all__ = ["ReaderFormat", "FileProbe", "FORMATS", "format_names", "detect_format", "read", "reader"]

_EFD_SUFFIX = re.compile(r"_\d+_\d+_\d+$")
_NC_SUFFIXES = (".nc", ".nc4", ".netcdf", ".cdf", ".h5", ".hdf")
_HEAD_BYTES = 65536


class FileProbe:
    """What the detection rules look at, computed once and lazily: the name without
    ``.gz`` (lower case), the first 64 KiB (gunzipped), the text header columns and the
    netCDF variable names."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.name = self.path.name
        self.base = self.name[:-3].lower() if self.name.lower().endswith(".gz") else self.name.lower()
        self.is_dir = self.path.is_dir()

    @cached_property
    def head(self) -> bytes:
        """First bytes of the (gunzipped) file; a gzip stream corrupt at its start gives
        b"" (the reader then reports the corruption)."""
        with open(self.path, "rb") as fh:
            raw = fh.read(_HEAD_BYTES)
        if raw[:2] == b"\x1f\x8b":
            try:
                with gzip.open(self.path, "rb") as fh:
                    return fh.read(_HEAD_BYTES)
            except (EOFError, OSError):
                return b""
        return raw

    @cached_property
    def is_netcdf(self) -> bool:
        h = self.head
        return self.base.endswith(_NC_SUFFIXES) or h[:3] == b"CDF" or h[:8] == b"\x89HDF\r\n\x1a\n"

    @cached_property
    def netcdf_variables(self) -> set[str]:
        """Variable names of a (possibly gzipped) netCDF file; empty if unreadable."""
        if not self.is_netcdf:
            return set()
        try:
            import netCDF4
            raw = self.path.read_bytes()
            if raw[:2] == b"\x1f\x8b":
                raw = gzip.decompress(raw)
            with netCDF4.Dataset(self.name, mode="r", memory=raw) as nc:
                return set(nc.variables)
        except Exception:
            return set()

    @cached_property
    def columns(self) -> set[str]:
        """Column names of the first line of a delimited text file (tab, comma or
        semicolon separated; any line ending); empty for netCDF."""
        if self.is_netcdf:
            return set()
        text = self.head.decode("utf-8", errors="replace").lstrip("\ufeff")
        first = text.replace("\r\n", "\n").replace("\r", "\n").split("\n", 1)[0]
        for sep in ("\t", ",", ";"):
            if sep in first:
                return {c.strip().strip('"') for c in first.split(sep)}
        return {first.strip()} if first.strip() else set()


@dataclass(frozen=True)
class ReaderFormat:
    """One file format: its reader (``path -> Dataset``, or a dict of Datasets / a
    DataFrame for the multi-object RData files), a one-line description, the shipped
    example (folder and file for :func:`process_models.io.data_path`, or None) and the
    name and content detection rules (``FileProbe -> bool``, or None)."""

    name: str
    reader_name: str
    description: str
    example: tuple[str, ...] | None = None
    by_name: Callable[[FileProbe], bool] | None = None
    by_content: Callable[[FileProbe], bool] | None = None

    @property
    def reader(self) -> Callable:
        if self.reader_name == "load_dataset":
            import xarray as xr
            return xr.load_dataset
        from .. import io
        return getattr(io, self.reader_name)


def _rdata(p: FileProbe) -> bool:
    return p.base.endswith((".rdata", ".rda"))


def _mod09a1_name(p: FileProbe) -> bool:
    if p.is_dir:
        return any(q.name.startswith("MOD09A1") for q in p.path.iterdir())
    return "MOD09A1" in p.name.upper()


_F = ReaderFormat
FORMATS: dict[str, ReaderFormat] = {f.name: f for f in (
    _F("mod09a1", "read_mod09a1", "MODIS MOD09A1 8-day surface reflectance netCDF crop(s)",
       ("munich_2022_modis-era5_pyvprm", "modis"), _mod09a1_name,
       lambda p: any(n.startswith("sur_refl_") for n in p.netcdf_variables)),
    _F("diive_parquet", "read_diive_parquet", "diive (ETH) parquet",
       ("ch-dav_2013-2022_diive",
        "exampledata_PARQUET_CH-DAV_FP2022.5_2013-2022_ID20230206154316_30MIN.parquet"),
       lambda p: p.base.endswith(".parquet")),
    _F("vprm_parameter_tables", "read_vprm_parameter_tables",
       "VPRMLandSfcModel parameter tables RData", ("us-pfa_park-falls_vprm", "VPRM_parameters.RData"),
       lambda p: _rdata(p) and "param" in p.base),
    _F("park_falls", "read_park_falls", "VPRMLandSfcModel site RData (Park Falls tower + MODIS)",
       ("us-pfa_park-falls_vprm", "Park_Falls.RData"), _rdata),
    _F("fluxnet2015", "read_fluxnet2015", "FLUXNET2015 / ICOS FULLSET CSV",
       ("ch-cha_fluxnet2015-fullset-hh_fixture",
        "exampledata_FLUXNET-FULLSET-HH-CSV-30MIN_FLX_CH-Cha_FLUXNET2015_FULLSET_HH_2005-2020_beta-3.csv"),
       lambda p: "FULLSET" in p.name.upper(), lambda p: "TIMESTAMP_START" in p.columns),
    _F("europe_fluxdata", "read_europe_fluxdata", "European Fluxes Database template text",
       ("fr-hes_2016_europe-fluxdata", "FR-Hes_europe-fluxdata_2016.txt.gz"),
       lambda p: "europe-fluxdata" in p.base,
       lambda p: "TIMESTAMP_END" in p.columns or any(_EFD_SUFFIX.search(c) for c in p.columns)),
    _F("ismn_stm", "read_ismn_stm", "ISMN CEOP separate-files soil moisture (.stm)",
       ("ismn_fr-aqui_smosmania",
        "FR-Aqui_FR-Aqui_fraye_sm_0.050000_0.050000_ThetaProbe-ML2X_19500101_20210131.stm.gz"),
       lambda p: p.base.endswith(".stm")),
    _F("era5_single_levels", "read_era5_single_levels", "ERA5 hourly single-level netCDF (t2m, ssrd)",
       ("munich_2022_modis-era5_pyvprm", "era5", "2022_7.nc.gz"),
       by_content=lambda p: {"t2m", "ssrd"} <= p.netcdf_variables),
    _F("reddyproc_text", "read_reddyproc_text", "REddyProc / hesseflux text",
       ("de-tha_1996-1998", "Example_DETha98.txt"),
       by_content=lambda p: {"DoY", "Hour"} <= p.columns or {"Day", "Hour"} <= p.columns),
    _F("pyrealm_merged", "read_pyrealm_merged", "pyrealm merged site CSV",
       ("be-vie_2014_pyrealm", "merged_BE-Vie_data.csv"),
       by_content=lambda p: {"time", "ppfd", "tc", "patm"} <= p.columns),
    _F("bigleaf_month", "read_bigleaf_month", "bigleaf FLUXNET2015 month-subset CSV",
       ("fluxnet2015_month-subsets_bigleaf", "AT_Neu_Jul_2010.csv.gz"),
       by_content=lambda p: {"year", "month", "doy", "hour", "Tair", "NEE"} <= p.columns),
    _F("modis_sites_mod13a1", "read_modis_sites_mod13a1", "MOD13A1 vegetation indices at flux sites CSV",
       ("modis-mod13a1_10-fluxsites_phenofit", "MOD13A1_10sites_2000-2018.csv"),
       by_content=lambda p: {"site", "date", "EVI", "sur_refl_b01", "SummaryQA"} <= p.columns),
    _F("modis_lai_fapar_ornl", "read_modis_lai_fapar_ornl", "MCD15A2H LAI/fPAR ORNL long-format subset CSV",
       ("at-neu_modis-mcd15a2h_fluxdatakit", "AT-Neu_MCD15A2H_5x5px_2002-2022.csv.gz"),
       by_content=lambda p: {"band", "modis_date", "pixel", "value"} <= p.columns),
    _F("ismn_static_variables", "read_ismn_static_variables", "ISMN station static variables CSV",
       ("ismn_fr-aqui_smosmania", "FR-Aqui_FR-Aqui_fraye_static_variables.csv"),
       by_content=lambda p: {"quantity_name", "depth_from[m]"} <= p.columns),
    _F("netcdf", "load_dataset", "canonical ecoflux Dataset in netCDF (written with to_netcdf)",
       by_content=lambda p: bool(p.netcdf_variables)),
)}
"""Format name -> :class:`ReaderFormat`, in detection order."""


def format_names() -> tuple[str, ...]:
    """The format names, in detection order."""
    return tuple(FORMATS)


def reader(name: str) -> Callable:
    """The reader function of format ``name``; an unknown name raises ValueError listing
    the known ones."""
    if name not in FORMATS:
        raise ValueError(f"unknown format (reader) {name!r}; known: {', '.join(FORMATS)}.")
    return FORMATS[name].reader


def detect_format(path: str | Path) -> str:
    """The format name of ``path`` from its name, extension and content (rules in the
    module docstring). A missing path raises FileNotFoundError; no match raises
    :class:`~process_models.units.DataValidationError` naming what was seen."""
    p = FileProbe(path)
    src = str(p.path)
    if not p.path.exists():
        raise FileNotFoundError(f"{p.path}: no such file or directory.")
    for stage in ("by_name", "by_content"):
        if stage == "by_content" and p.is_dir:
            break
        for f in FORMATS.values():
            rule = getattr(f, stage)
            if rule is not None and rule(p):
                return f.name
    if p.is_dir:
        raise DataValidationError(
            "is a directory without MOD09A1* files; only MOD09A1 crops are read from a "
            "directory.", source=src, fix="pass a file, or a folder of MOD09A1 crops.")
    if p.is_netcdf:
        raise DataValidationError("netCDF file that could not be opened (corrupt or truncated?).",
                                  source=src, fix="check the file, or pass the format explicitly.")
    shown = ", ".join(sorted(p.columns)[:10]) or "none"
    raise DataValidationError(
        f"could not detect the file format from its name or header (columns: {shown}).",
        source=src, fix=f"pass the format explicitly, one of: {', '.join(FORMATS)}.")


def read(path: str | Path, format: str = "auto"):
    """Read ``path`` with the reader of ``format`` (``"auto"``: :func:`detect_format`).
    Returns what the reader returns (a Dataset; a dict of Datasets for ``park_falls``; a
    DataFrame for ``vprm_parameter_tables``)."""
    if format == "auto":
        format = detect_format(path)
    read_fn = reader(format)
    if not Path(path).exists():
        raise FileNotFoundError(f"{path}: no such file or directory.")
    return read_fn(path)
