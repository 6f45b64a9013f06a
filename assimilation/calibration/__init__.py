"""Bayesian calibration of ecosystem models against flux towers (NumPyro).

Pieces (one concept per module):

* :mod:`priors` -- priors from a model's parameter table (log-normal / truncated normal,
  wide where the literature disagrees);
* :mod:`error_models` -- observations pytree and likelihoods (Gaussian, Laplace,
  Student-t; heteroscedastic flux-magnitude sigma; AR(1) model error; QC masks);
* :mod:`builder` -- ``build_model(model_fn, param_spec, observations, error_model)``;
* :mod:`inference` -- NUTS (vectorised chains, checkpoint/resume), SVI (Optax), MAP (L-BFGS);
* :mod:`hierarchical` -- per-class population parameters, non-centred site deviations;
* :mod:`diagnostics` -- InferenceData/NetCDF, R-hat/ESS/divergences, stratified PPC, figures;
* :mod:`sbc` -- simulation-based calibration (Talts et al. 2018);
* :mod:`emulated` -- sample on a surrogate, importance-reweight against the process model;
* :mod:`subset` -- a named, bounded subset of any model's parameters (unconstrained map, prior).

See ``README.md`` in this folder for the equations and a worked example.
"""
from .builder import build_model, interface_model_fn, output
from .diagnostics import (convergence_summary, converged, plot_pairs, plot_predictive,
                          plot_traces, ppc_coverage, predictive_draws, save_netcdf,
                          to_inference_data)
from .error_models import (ErrorModel, FluxLikelihood, FluxObservations, expected_flux,
                           fit_flux_error_model, flux_sigma)
from .hierarchical import HierSite, build_hierarchical_model
from .inference import (MAPFit, NUTSResult, SVIFit, find_map, run_nuts, run_svi,
                        unconstrained_potential)
from .priors import ParamPrior, parse_prior, prior_table, priors_from_table
from .subset import ParameterSubset

__all__ = [
    "ErrorModel", "FluxLikelihood", "FluxObservations", "HierSite", "MAPFit", "NUTSResult",
    "ParamPrior", "ParameterSubset", "SVIFit", "build_hierarchical_model", "build_model", "converged",
    "convergence_summary", "expected_flux", "find_map", "fit_flux_error_model", "flux_sigma",
    "interface_model_fn", "output", "parse_prior", "plot_pairs", "plot_predictive",
    "plot_traces", "ppc_coverage", "predictive_draws", "prior_table", "priors_from_table",
    "run_nuts", "run_svi", "save_netcdf", "to_inference_data", "unconstrained_potential",
]
