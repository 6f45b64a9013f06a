"""Map-run configuration: a TOML file (``ecoflux map CONFIG.toml``) or the same fields in Python.

Every section and key is checked on load: an unknown key, a wrong type or a value out of
range raises :class:`~process_models.units.DataValidationError` naming the key and the fix.
Relative paths are resolved against the config file's folder, or through
:func:`process_models.io.data_path` when the section names a shipped data ``folder``.

Example (the Romania Sentinel-2 study configuration, ``experiments/configs/romania_s2.toml``)::

    name = "romania_s2"

    [satellite]
    kind = "sentinel2_l2a"
    folder = "s2-l2a_cubes_nrt_romania-france"
    paths = ["sentinel2_cube_subset_romania_20m.nc.gz", "sentinel2_cube_subset_romania_10m.nc.gz"]
    scale_factor = 1e-4            # on-disk DN -> reflectance (L2A before baseline 04.00)

    [meteorology]
    kind = "tower"                 # one series for the whole domain, or "era5" (gridded)
    reader = "diive_parquet"
    folder = "ch-dav_2013-2022_diive"
    paths = ["exampledata_PARQUET_CH-DAV_FP2022.5_2013-2022_ID20230206154316_30MIN.parquet"]

    [land_cover]
    kind = "tree_cover_density"    # or "copernicus_lc100", "phenology", "constant"
    folder = "s2-l2a_cubes_nrt_romania-france"
    path = "tree_cover_density_2018_romania.tif"

    [run]
    start = "2019-07-01"
    end = "2019-08-01"             # hourly maps on [start, end)
    tile = [25, 25]
    scheduler = "local"            # "inprocess", "local" (dask LocalCluster) or "tcp://host:8786"
    workers = 2

    [output]
    store = "experiments/output/map_study/romania_s2.zarr"
"""
from __future__ import annotations

import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import pandas as pd

from process_models.units import DataValidationError

__all__ = ["SatelliteConfig", "MeteorologyConfig", "LandCoverConfig", "ModelConfig", "RunConfig",
           "OutputConfig", "DailyConfig", "MapConfig", "load_config", "config_from_dict", "period_days"]

SATELLITE_KINDS = ("sentinel2_l2a", "mod09a1", "indices")
METEOROLOGY_KINDS = ("era5", "tower")
LAND_COVER_KINDS = ("tree_cover_density", "copernicus_lc100", "phenology", "constant")
SCHEDULERS = ("inprocess", "local")
UNCERTAINTY = ("linear", "ensemble")
PIVOT_INDICES = ("evi", "evi2", "ndvi", "lswi", "nirv")
HOURLY_MODELS = ("vprm",)
DAILY_MODELS = ("upscaling", "coupled_daily")
"""``model.name`` values that switch the engine to its daily mode (:mod:`.daily`)."""
UPSCALING_KINDS = ("trees", "mlp", "hybrid")


@dataclass(frozen=True)
class SatelliteConfig:
    """Satellite cube. ``kind``: ``sentinel2_l2a`` (netCDF cubes with SCL, bands as on disk),
    ``mod09a1`` (a folder of MOD09A1 crops) or ``indices`` (a netCDF of per-date indices).
    ``scale_factor`` multiplies the on-disk values to give reflectance (unit 1);
    ``indices``: the pivot variables (EVI needs blue; without it EVI2 (Jiang et al. 2008) is
    VPRM's greenness; LSWI needs SWIR 1.6 um); ``crs``: expected
    CRS (checked against the cube; None = take the cube's)."""
    kind: str
    paths: tuple = ()
    folder: str = ""
    scale_factor: float = 1e-4
    indices: tuple = ("evi", "lswi")
    crs: str | None = None


@dataclass(frozen=True)
class MeteorologyConfig:
    """Hourly meteorology: ``era5`` single levels (t2m, ssrd; lat/lon grid, interpolated
    bilinearly to the pixel centres) or one ``tower`` series for the whole domain
    (``reader``: a :data:`process_models.io.FORMATS` name) with ``air_temperature`` (degC)
    and ``shortwave_in`` (W m-2). ``max_gap_hours``: longest gap filled linearly."""
    kind: str
    paths: tuple = ()
    folder: str = ""
    reader: str = "diive_parquet"
    max_gap_hours: int = 6


@dataclass(frozen=True)
class LandCoverConfig:
    """Land cover -> VPRM class fractions. ``tree_cover_density``: Copernicus HRL TCD (percent,
    GeoTIFF on the cube grid): fraction ``forest_class`` = TCD/100, the rest ``open_class``;
    ``copernicus_lc100``: LC100 discrete codes mapped through the shipped table
    (:func:`process_models.vprm.tables.copernicus_lc100_to_vprm`); ``phenology``: the EVI
    stand-in of :func:`process_models.io.phenology_land_cover`; ``constant``: every pixel
    ``vprm_class``."""
    kind: str = "phenology"
    path: str = ""
    folder: str = ""
    forest_class: int = 2
    open_class: int = 7
    vprm_class: int = 2


@dataclass(frozen=True)
class ModelConfig:
    """The model run on every pixel through the model interface: ``vprm`` (a shipped
    parameter ``table``; hourly maps); a surrogate with the same forcing can be passed to
    :func:`~assimilation.maps.engine.run_map` as ``model=``. ``upscaling`` (the ML
    upscaling models of :mod:`emulator.upscaling`) and ``coupled_daily`` (the daily
    flux-form emulator of the coupled model) switch the engine to daily maps
    (:mod:`.daily`; options in ``[daily]``); ``table`` stays the VPRM table whose classes
    the land-cover fractions use."""
    name: str = "vprm"
    table: str = "pyvprm_modis"
    temperatures: str = "copernicus"


@dataclass(frozen=True)
class RunConfig:
    """``start``/``end``: the hourly map period [start, end) (UTC); ``statistics_year``: year
    of the VPRM EVI/LSWI statistics (default the year of ``start``); ``tile``: pixels per
    task (y, x); ``time_chunk``: hours per Zarr chunk; ``scheduler``/``workers``: where tiles
    run; ``precision``: float32 or float64; ``uncertainty``: ``linear`` (first order in the
    pivot sd) or ``ensemble`` (``members`` draws); ``replicate``: tile the cube (ry, rx)
    times (benchmarks only); ``window``: (y0, y1, x0, x1) pixel-index window of the cube
    (e.g. a quick run on a corner)."""
    start: str
    end: str
    statistics_year: int | None = None
    tile: tuple = (32, 32)
    time_chunk: int = 168
    scheduler: str = "local"
    workers: int = 2
    precision: str = "float32"
    uncertainty: str = "linear"
    members: int = 16
    fit_pixels: int = 256
    fit_steps: int = 150
    seed: int = 0
    replicate: tuple = (1, 1)
    window: tuple = ()


@dataclass(frozen=True)
class OutputConfig:
    """``store``: the Zarr store (a folder); ``overwrite``: start again even if a store of
    another configuration is there (default: resume, and refuse a different config)."""
    store: str
    overwrite: bool = False


@dataclass(frozen=True)
class DailyConfig:
    """Options of the daily mode (``model.name`` in :data:`DAILY_MODELS`).
    ``upscaling``: the upscaling model kind (``trees``, ``mlp``, ``hybrid``), fitted on
    ``towers`` (:func:`emulator.upscaling.training_table`; ``n_estimators`` trees,
    ``table_cache`` folder for the training table) when no fitted model is passed;
    ``emulator_dir``: a saved :class:`emulator.daily_emulator.DailyCoupledEmulator`
    (``coupled_daily``; or pass ``model=``)."""
    upscaling: str = "trees"
    towers: tuple = ("CH-Dav", "DE-Tha", "AT-Neu", "FR-Pue")
    n_estimators: int = 100
    table_cache: str = ""
    emulator_dir: str = ""


@dataclass(frozen=True)
class MapConfig:
    name: str
    satellite: SatelliteConfig
    meteorology: MeteorologyConfig
    run: RunConfig
    output: OutputConfig
    land_cover: LandCoverConfig = LandCoverConfig()
    model: ModelConfig = ModelConfig()
    daily: DailyConfig = DailyConfig()
    """Daily-mode options (used when ``model.name`` is a daily model)."""
    regions: tuple = ()
    """((name, (xmin, xmax, ymin, ymax)), ...) boxes in the cube's CRS for the budget table."""
    base_dir: str = "."
    """Folder relative paths are resolved against (the config file's)."""

    def fingerprint(self) -> str:
        """Hash of everything that changes the store's content (not the scheduler, workers
        or output path): a resumed store must have been written with the same one."""
        import hashlib
        run = replace(self.run, scheduler="-", workers=0)
        text = repr((self.satellite, self.meteorology, self.land_cover, self.model, run, self.regions))
        if self.step == "daily":         # the hourly fingerprint stays what it was before the daily mode
            text += repr(self.daily)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def step(self) -> str:
        """``"hourly"`` (VPRM) or ``"daily"`` (a model of :data:`DAILY_MODELS`)."""
        return "daily" if self.model.name in DAILY_MODELS else "hourly"

    def resolve(self, folder: str, path: str) -> Path:
        from process_models.io import data_path
        p = Path(path)
        if p.is_absolute():
            return p
        if folder:
            return data_path(folder, path)
        return (Path(self.base_dir) / p).resolve()

    def replace(self, **sections) -> "MapConfig":
        """Copy with whole sections or ``section__key`` values replaced, e.g.
        ``cfg.replace(run__scheduler="inprocess", output__store=str(tmp))``."""
        new = {}
        for key, val in sections.items():
            if "__" in key:
                sec, k = key.split("__", 1)
                new[sec] = replace(new.get(sec, getattr(self, sec)), **{k: val})
            else:
                new[key] = val
        return replace(self, **new)


_SECTIONS = {"satellite": SatelliteConfig, "meteorology": MeteorologyConfig,
             "land_cover": LandCoverConfig, "model": ModelConfig, "run": RunConfig,
             "output": OutputConfig, "daily": DailyConfig}


def _bad(key, problem, fix):
    return DataValidationError(problem, source="map config", variable=key, fix=fix)


def _section(name, cls, raw: dict):
    if not isinstance(raw, dict):
        raise _bad(name, f"[{name}] must be a table.", f"write it as a [{name}] section.")
    known = {f.name: f for f in fields(cls)}
    unknown = sorted(set(raw) - set(known))
    if unknown:
        raise _bad(f"{name}.{unknown[0]}", f"unknown key(s) {unknown} in [{name}].",
                   f"use only {sorted(known)}.")
    kw = {}
    for k, v in raw.items():
        if isinstance(v, list):
            v = tuple(tuple(x) if isinstance(x, list) else x for x in v)
        kw[k] = v
    try:
        return cls(**kw)
    except TypeError as err:
        missing = [f.name for f in fields(cls) if f.name not in raw and f.default is f.default_factory]
        raise _bad(name, f"[{name}] is incomplete ({err}).", f"give {missing}.") from err


def _check(cfg: MapConfig) -> MapConfig:
    s, m, lc, r = cfg.satellite, cfg.meteorology, cfg.land_cover, cfg.run
    if s.kind not in SATELLITE_KINDS:
        raise _bad("satellite.kind", f"{s.kind!r} is not a satellite kind.", f"use one of {SATELLITE_KINDS}.")
    if not s.paths:
        raise _bad("satellite.paths", "no satellite file given.", "list the cube file(s) in paths.")
    bad = [v for v in s.indices if v not in PIVOT_INDICES]
    if bad or not s.indices:
        raise _bad("satellite.indices", f"{bad or 'none'}: not pivot indices.", f"choose from {PIVOT_INDICES}.")
    if not (("evi" in s.indices or "evi2" in s.indices) and "lswi" in s.indices):
        raise _bad("satellite.indices", "VPRM needs a greenness index (evi, or evi2 without a blue band) and "
                   "lswi in the pivot.", "add 'evi' (or 'evi2') and 'lswi'.")
    if not (0 < float(s.scale_factor) <= 1):
        raise _bad("satellite.scale_factor", f"{s.scale_factor} is not in (0, 1].",
                   "1e-4 for Sentinel-2 L2A DN, 1 for reflectance already in [0, 1].")
    if m.kind not in METEOROLOGY_KINDS:
        raise _bad("meteorology.kind", f"{m.kind!r} is not a meteorology kind.", f"use one of {METEOROLOGY_KINDS}.")
    if not m.paths:
        raise _bad("meteorology.paths", "no meteorology file given.", "list the file(s) in paths.")
    if m.kind == "tower":
        from process_models.io import FORMATS
        if m.reader not in FORMATS:
            raise _bad("meteorology.reader", f"{m.reader!r} is not a reader.", f"use one of {sorted(FORMATS)}.")
    if lc.kind not in LAND_COVER_KINDS:
        raise _bad("land_cover.kind", f"{lc.kind!r} is not a land-cover kind.", f"use one of {LAND_COVER_KINDS}.")
    if lc.kind in ("tree_cover_density", "copernicus_lc100") and not lc.path:
        raise _bad("land_cover.path", f"kind {lc.kind!r} needs a raster.", "give path (and folder).")
    try:
        start, end = pd.Timestamp(r.start), pd.Timestamp(r.end)
    except ValueError as err:
        raise _bad("run.start", f"unreadable date ({err}).", "write dates as 'YYYY-MM-DD[THH:MM]'.") from err
    if not end > start:
        raise _bad("run.end", f"end {r.end} is not after start {r.start}.", "give end > start.")
    if cfg.model.name not in HOURLY_MODELS + DAILY_MODELS:
        raise _bad("model.name", f"{cfg.model.name!r} is not a map model.",
                   f"use {HOURLY_MODELS} (hourly) or {DAILY_MODELS} (daily maps).")
    if cfg.step == "daily":
        d = cfg.daily
        for key, t in (("run.start", start), ("run.end", end)):
            if t != t.floor("D"):
                raise _bad(key, f"{t} is not a whole day (daily maps run on whole UTC days).",
                           "write the date only, e.g. '2019-07-01'.")
        if d.upscaling not in UPSCALING_KINDS:
            raise _bad("daily.upscaling", f"{d.upscaling!r} is not an upscaling model.", f"use one of {UPSCALING_KINDS}.")
        if not d.towers or int(d.n_estimators) < 1:
            raise _bad("daily.towers", "no training tower (or n_estimators < 1).",
                       "list towers of emulator.upscaling.TOWERS and n_estimators >= 1.")
    if r.scheduler not in SCHEDULERS and not str(r.scheduler).startswith(("tcp://", "tls://", "inproc://")):
        raise _bad("run.scheduler", f"{r.scheduler!r} is neither a scheduler kind nor an address.",
                   f"use one of {SCHEDULERS} or a dask scheduler address 'tcp://host:port'.")
    if r.precision not in ("float32", "float64"):
        raise _bad("run.precision", f"{r.precision!r}.", "use 'float32' or 'float64'.")
    if r.uncertainty not in UNCERTAINTY:
        raise _bad("run.uncertainty", f"{r.uncertainty!r}.", f"use one of {UNCERTAINTY}.")
    for key, val in (("run.tile", r.tile), ("run.replicate", r.replicate)):
        if len(val) != 2 or min(int(v) for v in val) < 1:
            raise _bad(key, f"{val} is not two positive integers.", "write e.g. [32, 32].")
    if r.window and (len(r.window) != 4 or not (0 <= r.window[0] < r.window[1] and 0 <= r.window[2] < r.window[3])):
        raise _bad("run.window", f"{r.window} is not (y0, y1, x0, x1) with y0 < y1, x0 < x1.",
                   "give pixel indices, e.g. [0, 24, 0, 24].")
    if int(r.time_chunk) < 1 or int(r.workers) < 1 or int(r.members) < 2:
        raise _bad("run", "time_chunk, workers must be >= 1 and members >= 2.", "fix the [run] values.")
    regions = []
    for name, box in cfg.regions:
        box = tuple(float(v) for v in box)
        if len(box) != 4 or not (box[0] < box[1] and box[2] < box[3]):
            raise _bad(f"regions.{name}", f"{box} is not (xmin, xmax, ymin, ymax).", "give the box in CRS units.")
        regions.append((str(name), box))
    return replace(cfg, run=replace(r, tile=tuple(int(v) for v in r.tile),
                                    replicate=tuple(int(v) for v in r.replicate),
                                    window=tuple(int(v) for v in r.window)),
                   regions=tuple(regions))


def config_from_dict(raw: dict[str, Any], base_dir: str | Path = ".") -> MapConfig:
    """A checked :class:`MapConfig` from the parsed TOML (a dict of sections)."""
    raw = dict(raw)
    unknown = sorted(set(raw) - set(_SECTIONS) - {"name", "regions"})
    if unknown:
        raise _bad(unknown[0], f"unknown section(s) {unknown}.", f"use {sorted(_SECTIONS)} and 'regions'.")
    for sec in ("satellite", "meteorology", "run", "output"):
        if sec not in raw:
            raise _bad(sec, f"section [{sec}] is missing.", f"add a [{sec}] section.")
    kw = {sec: _section(sec, cls, raw[sec]) for sec, cls in _SECTIONS.items() if sec in raw}
    regions = tuple((k, tuple(v)) for k, v in dict(raw.get("regions", {})).items())
    cfg = MapConfig(name=str(raw.get("name", "map")), regions=regions, base_dir=str(base_dir), **kw)
    out = cfg.output
    if not Path(out.store).is_absolute():
        cfg = replace(cfg, output=replace(out, store=str((Path(base_dir) / out.store).resolve())))
    return _check(cfg)


def load_config(path: str | Path, **overrides) -> MapConfig:
    """Read and check a map configuration TOML file. ``overrides``: ``section__key=value``
    (e.g. ``run__scheduler="inprocess"``). Relative ``output.store`` and file paths
    without a data ``folder`` are relative to the current directory."""
    path = Path(path)
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError as err:
        raise DataValidationError("config file not found.", source=str(path),
                                  fix="give the path of a map TOML file.") from err
    except tomllib.TOMLDecodeError as err:
        raise DataValidationError(f"not valid TOML ({err}).", source=str(path),
                                  fix="check the syntax (strings quoted, [sections]).") from err
    cfg = config_from_dict(raw, base_dir=Path.cwd())
    return _check(cfg.replace(**overrides)) if overrides else cfg


def period_days(run: RunConfig) -> pd.DatetimeIndex:
    """The daily time axis of daily maps: day starts on [start, end) (UTC)."""
    return pd.date_range(pd.Timestamp(run.start), pd.Timestamp(run.end), freq="D", inclusive="left")


def period_hours(run: RunConfig) -> pd.DatetimeIndex:
    """The hourly time axis of the maps: interval starts on [start, end) (UTC)."""
    return pd.date_range(pd.Timestamp(run.start), pd.Timestamp(run.end), freq="h", inclusive="left")

