"""Bayesian calibration of ecosystem models against flux towers (NumPyro).

Models are taken through the one model interface (:class:`process_models.interface.Model`:
VPRM, the coupled model, a surrogate) only. Pieces (one concept per module):

* :mod:`priors` -- priors from any model's parameter table (log-normal / truncated normal,
  wide where the literature disagrees);
* :mod:`subset` -- a named, bounded subset of any model's parameters (unconstrained map, prior);
* :mod:`error_models` -- observation streams (built from the common
  :class:`assimilation.observations.Observations`) and likelihoods (Gaussian, Laplace,
  Student-t; heteroscedastic flux-magnitude sigma; AR(1) model error; QC masks);
* :mod:`operators` -- observation operators (period means at the observed steps, soil
  water at a depth) and the period-mean observations that go with them;
* :mod:`tower` -- half-hourly tower records at hourly model steps (forcing, QC-0 fluxes);
* :mod:`builder` -- ``model_fn_from(model, names, forcing, operator)`` and
  ``build_model(model_fn, priors, observations, error_model)``;
* :mod:`inference` -- NUTS (vectorised chains, checkpoint/resume), SVI (Optax), MAP (L-BFGS);
* :mod:`laplace` -- MAP by L-BFGS-B and the Laplace posterior over a ``ParameterSubset``;
* :mod:`hierarchical` -- per-class population parameters, non-centred site deviations;
* :mod:`diagnostics` -- InferenceData/NetCDF, R-hat/ESS/divergences, stratified PPC, figures;
* :mod:`sbc` -- simulation-based calibration (Talts et al. 2018);
* :mod:`emulated` -- sample on a surrogate, importance-reweight against the process model.

See ``README.md`` in this folder for the equations and a worked example.
"""
from .builder import build_model, model_fn_from, output, parameter_labels
from .diagnostics import (convergence_summary, converged, plot_pairs, plot_predictive,
                          plot_marginals, plot_traces, ppc_coverage, predictive_draws, save_netcdf,
                          simulate_draws,
                          to_inference_data)
from .error_models import (ErrorModel, FluxLikelihood, FluxObservations, as_streams,
                           expected_flux, fit_flux_error_model, flux_sigma,
                           gaussian_log_likelihood)
from .hierarchical import HierSite, build_hierarchical_model, init_from_site_medians, shrinkage_tables
from .inference import (MAPFit, NUTSResult, SVIFit, find_map, run_nuts, run_nuts_from_map, run_svi,
                        unconstrained_potential)
from .laplace import (Hyperparameter, LaplaceFit, SubsetPosterior, discrepancy_log_likelihood, fit_laplace,
                      laplace_covariance, lbfgsb_map, rms_residual_start)
from .operators import PeriodMean, period_mean, period_mean_observations, soil_water_at_depth
from .priors import ParamPrior, parse_prior, prior_table, priors_from_model, priors_from_table
from .subset import ParameterSubset
from .vprm_sites import VPRMSite, build_vprm_site

__all__ = [
    "ErrorModel", "FluxLikelihood", "FluxObservations", "HierSite", "Hyperparameter", "MAPFit",
    "NUTSResult", "ParamPrior", "ParameterSubset", "VPRMSite", "build_vprm_site", "PeriodMean", "SVIFit", "SubsetPosterior",
    "as_streams", "build_hierarchical_model", "init_from_site_medians", "shrinkage_tables", "build_model", "converged", "convergence_summary",
    "LaplaceFit", "discrepancy_log_likelihood", "expected_flux", "find_map", "fit_flux_error_model", "fit_laplace",
    "rms_residual_start",
    "flux_sigma", "gaussian_log_likelihood", "laplace_covariance", "lbfgsb_map",
    "model_fn_from", "output", "parameter_labels", "parse_prior", "period_mean", "plot_marginals",
    "period_mean_observations", "plot_pairs", "plot_predictive", "plot_traces",
    "ppc_coverage", "predictive_draws", "prior_table", "priors_from_model",
    "priors_from_table", "run_nuts", "run_nuts_from_map", "run_svi", "save_netcdf",
    "simulate_draws", "soil_water_at_depth",
    "to_inference_data", "unconstrained_potential",
]
