"""Regional flux maps: satellite cube -> daily pivot -> hourly NEE/GPP/Reco with uncertainty
(VPRM), or daily ones (ML upscaling models, the coupled model's daily emulator: :mod:`.daily`),
tile by tile on dask.distributed, into a resumable CF/Zarr store with budgets.

Entry points: ``ecoflux map CONFIG.toml`` (command line) and :func:`run_map` (Python).
See ``assimilation/maps/README.md`` for the chain, the configuration and the store layout.
"""
from .budgets import budget_table, pixel_area
from .config import MapConfig, config_from_dict, load_config, period_days, period_hours
from .daily import (CoupledDailyMapModel, UpscalingMapModel, annual_budgets, daily_meteorology,
                    upscaling_features)
from .engine import MapContext, MapRun, compute_tile, plan_tiles, prepare, process_tile, run_map
from .pivot import PIVOT_VARIABLES, daily_pivot, fit_fusion, pivot_arrays, validate_pivot
from .sources import (class_fractions, hourly_meteorology, pixel_lonlat, read_geotiff, read_sentinel2_l2a,
                      satellite_observations)
from .store import done_tiles, open_map

__all__ = ["budget_table", "pixel_area", "MapConfig", "config_from_dict", "load_config", "period_hours",
           "period_days", "CoupledDailyMapModel", "UpscalingMapModel", "annual_budgets", "daily_meteorology",
           "upscaling_features",
           "MapContext", "MapRun", "compute_tile", "plan_tiles", "prepare", "process_tile", "run_map",
           "PIVOT_VARIABLES", "daily_pivot", "fit_fusion", "pivot_arrays", "validate_pivot",
           "class_fractions", "hourly_meteorology", "pixel_lonlat", "read_geotiff", "read_sentinel2_l2a",
           "satellite_observations", "done_tiles", "open_map"]
