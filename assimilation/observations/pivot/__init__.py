"""A daily 10 m pivot of multi-sensor satellite data: physical fusion and learned
representation, side by side (see README.md).

Layers: :mod:`.sensors` (observation operators: Sentinel-2 indices and their sd, the
synthetic 300 m coarse proxy, the synthetic Sentinel-1 water-cloud backscatter, derived
LAI/FAPAR), :mod:`.multires` (two-level Kalman fusion, coarse daily + fine sparse),
:mod:`.learned` (masked autoencoder in Flax NNX), :mod:`.hybrid` (cross-pollination),
:mod:`.evaluate` (withheld dates, scores, the pivot Dataset and its validation),
:mod:`.mapinput` (the multires and learned pivots as the map engine's input).
"""
from .evaluate import METHODS, PIVOT_UNITS, PIVOT_VARIABLES, evaluate_pivots, to_pivot, validate_pivot, withhold_dates
from .hybrid import correct_coarse, fit_coarse_residual, physics_informed_series
from .learned import (LearnedConfig, PivotMAE, PixelSeries, conformal_scale, predict, predict_dask, train_calibrated,
                      train_pivot_mae)
from .mapinput import learned_map_pivot, map_observations, multires_map_pivot, to_map_pivot
from .multires import MultiresResult, PixelLevelParams, cell_observations, fine_predictive_sd, multires_fuse
from .sensors import (CoarseProxy, S2Observations, coarse_proxy, fapar_from_ndvi, lai_from_ndvi, read_romania_cube,
                      s2_index, s2_index_sd, s2_observations, screen_s2, sentinel1_proxy, water_cloud_sigma0)

__all__ = [
    "METHODS", "PIVOT_UNITS", "PIVOT_VARIABLES", "evaluate_pivots", "to_pivot", "validate_pivot", "withhold_dates",
    "correct_coarse", "fit_coarse_residual", "physics_informed_series", "LearnedConfig", "PivotMAE", "PixelSeries",
    "predict", "train_pivot_mae", "conformal_scale", "predict_dask", "train_calibrated", "learned_map_pivot",
    "map_observations", "multires_map_pivot", "to_map_pivot",
    "MultiresResult", "PixelLevelParams", "cell_observations", "fine_predictive_sd",
    "multires_fuse", "CoarseProxy", "S2Observations", "coarse_proxy", "fapar_from_ndvi", "lai_from_ndvi",
    "read_romania_cube", "s2_index", "s2_index_sd", "s2_observations", "screen_s2", "sentinel1_proxy",
    "water_cloud_sigma0",
]
