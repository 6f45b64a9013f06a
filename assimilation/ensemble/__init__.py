"""Ensemble data assimilation in JAX: analysis steps, localisation, inflation, filter
cycling, particle filters, smoothers and the ensemble likelihood. See ``README.md`` in this folder.

Conventions: ensembles are members-first (``(N, Nx)`` arrays or pytrees with a leading
member axis, flattened per member with ``ravel_pytree``); an observation operator is a
function of *one* member returning ``(Ny,)``; observation errors are variances (diagonal
R, ``(Ny,)``) or a full ``(Ny, Ny)`` covariance in single analyses; missing
observations are NaN or mask 0 (zero weight, no dynamic shapes); results are NamedTuples.
"""
from .analysis import (AnalysisResult, DEnKF, EnKF, EnSRF, EnsembleTransform, ETKF, ObsSpace,
                       analyse, apply_transform, ensemble_mean_and_spread, flatten_ensemble,
                       gaussian_log_likelihood, member_ok, obs_space, random_rotation,
                       replace_failed_members, unflatten_ensemble)
from .cycling import (Augmented, FilterResult, augmented_inflation, augmented_model,
                      ensemble_filter, member_vector, split_step_result)
from .interface import (CycleInputs, LogMultipliers, augmented_ensemble, clip_augmented,
                        cycle_windows, interface_forecast, log_factor_bounds)
from .inflation import AdaptiveInflation, adaptive_update, multiplicative, rtpp, rtps
from .tower import COUPLED_DRIVERS, TowerCycles, coupled_tower_cycles
from .letkf import LETKF, build_letkf, gaspari_cohn, half_width_from_loc_rad
from .likelihood import ensemble_log_likelihood, filter_log_likelihood, numpyro_factor
from .particle import (Bootstrap, OptimalProposal, PFResult, effective_sample_size,
                       multinomial_resample, particle_filter, systematic_resample)
from .smoothers import (ESMDAResult, IESResult, enks, esmda, iterative_ensemble_smoother,
                        normalise_alphas)
from .scores import gaussian_quantile, twin_scores
from .transforms import BoundedTransform, from_bounds, from_pytree_bounds

__all__ = [
    "AnalysisResult", "DEnKF", "EnKF", "EnSRF", "EnsembleTransform", "ETKF", "ObsSpace",
    "analyse", "apply_transform", "ensemble_mean_and_spread", "flatten_ensemble",
    "gaussian_log_likelihood", "member_ok", "obs_space", "random_rotation",
    "replace_failed_members", "unflatten_ensemble",
    "Augmented", "FilterResult", "augmented_inflation", "augmented_model", "ensemble_filter",
    "member_vector", "split_step_result",
    "CycleInputs", "LogMultipliers", "augmented_ensemble", "clip_augmented", "cycle_windows",
    "interface_forecast", "log_factor_bounds",
    "AdaptiveInflation", "adaptive_update", "multiplicative", "rtpp", "rtps",
    "COUPLED_DRIVERS", "TowerCycles", "coupled_tower_cycles",
    "LETKF", "build_letkf", "gaspari_cohn", "half_width_from_loc_rad",
    "ensemble_log_likelihood", "filter_log_likelihood", "numpyro_factor",
    "Bootstrap", "OptimalProposal", "PFResult", "effective_sample_size", "multinomial_resample",
    "particle_filter", "systematic_resample",
    "ESMDAResult", "IESResult", "enks", "esmda", "iterative_ensemble_smoother",
    "normalise_alphas",
    "BoundedTransform", "from_bounds", "from_pytree_bounds",
    "gaussian_quantile", "twin_scores",
]
