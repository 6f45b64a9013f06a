"""Multi-sensor satellite fusion into gap-filled daily series with uncertainty.

A Kalman/RTS smoother on a daily state per pixel (random walk, damped anomaly from a
climatological prior, or local linear trend) with a per-sensor observation operator
``y = a_s + b_s x + v_s``, ``v_s ~ N(0, sd_s^2)`` (Sedano et al. 2014); sensor and process
parameters by maximum likelihood through the differentiable log-likelihood (optax).
Baselines behind the same interface: linear interpolation, Whittaker (lambda by GCV),
Savitzky-Golay and pyVPRM's random-walk smoother (Q = 0.01, R = 0.05).

Layers: :mod:`.kalman` (filter, smoother, log-likelihood), :mod:`.sensors` (parameters and
state-space construction), :mod:`.fit` (MLE), :mod:`.baselines`, :mod:`.methods`
(``fuse_arrays`` on (pixels, days, sensors) arrays), :mod:`.evaluate` (withholding, RMSE,
90 % coverage), :mod:`.xarray_api` (``fuse`` on xarray Datasets), :mod:`.modis_sites` (daily
arrays of the shipped MODIS data). See README.md.
"""
from .baselines import Baseline, linear, merge_sensors, pyvprm, savgol, whittaker, whittaker_gcv
from .evaluate import (Z90, WithheldEvaluation, evaluate_methods, fitted_parameter_table, score,
                       withheld_evaluation, withhold)
from .fit import FitResult, fit_mle
from .kalman import FilterResult, SmootherResult, StateSpace, kalman_filter, log_likelihood, rts_smoother, smooth_pixels
from .methods import (FLAG_CONSTANT, FLAG_FEW_OBS, FLAG_NO_DATA, FLAG_OK, METHODS, FusionResult, fuse_arrays,
                      harmonic_climatology, pixel_flags)
from .sensors import PROCESS_KINDS, ProcessParams, SensorParams, build_state_space, level_mean_sd, predict_observations
from .modis_sites import mod09a1_pixel_observations, park_falls_evi_observations, park_falls_fused_indices
from .xarray_api import daily_observations, fuse

__all__ = [
    "StateSpace", "FilterResult", "SmootherResult", "kalman_filter", "rts_smoother", "log_likelihood",
    "smooth_pixels", "SensorParams", "ProcessParams", "PROCESS_KINDS", "build_state_space",
    "level_mean_sd", "predict_observations", "FitResult", "fit_mle", "Baseline", "merge_sensors",
    "linear", "whittaker", "whittaker_gcv", "savgol", "pyvprm", "METHODS", "FusionResult",
    "fuse_arrays", "harmonic_climatology", "pixel_flags", "FLAG_OK", "FLAG_NO_DATA", "FLAG_FEW_OBS",
    "FLAG_CONSTANT", "withhold", "score", "evaluate_methods", "withheld_evaluation",
    "WithheldEvaluation", "fitted_parameter_table", "Z90", "fuse", "daily_observations",
    "park_falls_evi_observations", "mod09a1_pixel_observations", "park_falls_fused_indices",
]
