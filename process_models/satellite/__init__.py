"""Satellite inputs for VPRM: spectral indices, quality masks and snow handling, and
temporal interpolation / per-pixel index statistics (pyVPRM 6.0.1 conventions); Sentinel-2
biophysical variables (LAI, FAPAR, FCOVER) with the SNAP/SL2P networks (:mod:`.sl2p`)."""
from .indices import INDEX_ATTRS, compute_indices, evi, evi2, kndvi, lswi, ndvi, nirv
from .qa import (
    apply_snow_rule,
    modis_band_quality_mask,
    modis_snow,
    modis_state_mask,
    sentinel2_scale,
    sentinel2_scl_mask,
    sentinel2_snow,
    snow_run_length,
)
# (the array function is process_models.satellite.sl2p.sl2p: the submodule keeps its name)
from .sl2p import (SL2P_BANDS, SL2P_FLAGS, SL2P_UNITS, SL2P_VARIABLES, SL2PNetwork,
                   biophysical_variables, load_sl2p, load_sl2p_test_cases)
from .temporal import (
    EVI_THRESHOLD_FRACTION,
    STAT_KEYS,
    Interpolated,
    causal_statistics,
    causal_statistics_dataset,
    climatological_statistics,
    climatological_statistics_dataset,
    interpolate_dataset,
    interpolate_to_times,
    yearly_statistics,
    yearly_statistics_dataset,
)

__all__ = [
    "evi", "evi2", "ndvi", "lswi", "nirv", "kndvi", "compute_indices", "INDEX_ATTRS",
    "modis_state_mask", "modis_snow", "modis_band_quality_mask", "sentinel2_scl_mask",
    "sentinel2_snow", "sentinel2_scale", "apply_snow_rule", "snow_run_length",
    "Interpolated", "interpolate_to_times", "interpolate_dataset", "yearly_statistics",
    "causal_statistics", "climatological_statistics", "yearly_statistics_dataset",
    "causal_statistics_dataset", "climatological_statistics_dataset",
    "EVI_THRESHOLD_FRACTION", "STAT_KEYS",
    "SL2P_BANDS", "SL2P_FLAGS", "SL2P_UNITS", "SL2P_VARIABLES", "SL2PNetwork",
    "biophysical_variables", "load_sl2p", "load_sl2p_test_cases",
]
