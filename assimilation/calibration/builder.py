"""Build a NumPyro model from (model, priors, observations, error model).

The model is taken through the common interface only (:class:`process_models.interface.Model`,
``ARCHITECTURE.md``): :func:`model_fn_from` turns any model (VPRM, the coupled model, a
surrogate) plus the names of the calibrated parameters, the forcing and an optional
observation operator into ``model_fn(theta) -> outputs``, where ``theta`` maps the labels
of the calibrated parameters to physical values. It calls ``model.set_parameters`` and
``model.simulate`` and nothing model-specific, so a new model plugs in unchanged.

Generative model (one site)::

    z_k ~ TruncatedNormal(mu_k, sd_k, bounds_k)      theta_k = T_k^{-1}(z_k)   (priors.py)
    f = H(model.simulate(set_parameters(p0, theta), forcing))   (H: observation operator)
    y_j ~ FluxLikelihood(f_j, sigma(f_j), mask_j)    for every data stream j (error_models.py)
"""
from __future__ import annotations

from typing import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp

from process_models.interface import output

from .error_models import ErrorModel, as_streams
from .priors import ParamPrior

__all__ = ["build_model", "model_fn_from", "output", "parameter_labels"]


def parameter_labels(parameters) -> dict[str, str]:
    """``{label: model parameter name}`` of the calibrated parameters.

    ``parameters``: a sequence of names (label = name), a mapping ``{label: name}``, a
    :class:`~assimilation.calibration.ParameterSubset` (its names) or a prior spec
    ``{label: ParamPrior}`` (:func:`~assimilation.calibration.priors_from_model`)."""
    if hasattr(parameters, "names") and hasattr(parameters, "to_physical"):
        return {n: n for n in parameters.names}
    if isinstance(parameters, Mapping):
        return {str(k): (v.model_name if isinstance(v, ParamPrior) else str(v))
                for k, v in parameters.items()}
    if isinstance(parameters, str):
        return {parameters: parameters}
    return {str(n): str(n) for n in parameters}


def model_fn_from(model, parameters, forcing, operator: Callable | None = None, *,
                  base_params=None, initial_state=None) -> Callable:
    """``theta -> operator(model.simulate(model.set_parameters(base, theta), forcing))``.

    Parameters
    ----------
    model : any :class:`process_models.interface.Model` (hashable, immutable).
    parameters : the calibrated parameters (see :func:`parameter_labels`); ``theta`` is
        keyed by their labels, each value a scalar in the parameter's unit (or with
        leading batch axes).
    forcing : the model's forcing pytree (time-major).
    operator : observation operator ``outputs -> observed outputs`` (e.g. period means
        at the observed steps, :mod:`assimilation.calibration.operators`); None: the
        model outputs.
    base_params : the parameters not calibrated (default ``model.default_params()``).
    initial_state : passed to ``model.simulate`` (None: the model's own).

    The call is jitted once (NumPyro traces models eagerly during initialisation; without
    the jit every array operation of the model would be compiled separately); it is
    differentiable and ``vmap``-able in ``theta``.
    """
    labels = parameter_labels(parameters)
    base = model.default_params() if base_params is None else base_params

    @jax.jit
    def run(theta, params, forcing, state):
        params = model.set_parameters(params, {labels[k]: theta[k] for k in labels})
        out = model.simulate(params, forcing, state)
        return out if operator is None else operator(out)

    def model_fn(theta):
        missing = [k for k in labels if k not in theta]
        if missing:
            raise KeyError(f"theta has no value for {missing}; give every calibrated parameter "
                           f"(labels {list(labels)}).")
        return run({k: jnp.asarray(theta[k]) for k in labels}, base, forcing, initial_state)
    model_fn.labels, model_fn.model = labels, model
    return model_fn


def build_model(model_fn: Callable, param_spec: dict[str, ParamPrior], observations,
                error_model: ErrorModel | Sequence[ErrorModel] = ErrorModel()) -> Callable:
    """A NumPyro model function for single-site calibration.

    Parameters
    ----------
    model_fn : ``theta -> outputs`` (see :func:`model_fn_from`).
    param_spec : priors of the calibrated parameters (:func:`priors.priors_from_model`).
    observations : one :class:`FluxObservations` stream or a list (e.g. NEE and GPP), or an
        :class:`assimilation.observations.Observations` (one stream per column, sd from
        its variance).
    error_model : one per stream, or one for all.

    Returns
    -------
    ``model(obs_values=None, observed=True)``: NumPyro model. ``obs_values`` (tuple of
    arrays, one per stream) replaces the stored observed values with the same masks
    (simulation-based calibration reuses one compiled sampler this way);
    ``observed=False`` samples the data (prior / posterior predictive). Sites:
    latent ``log_<p>`` / ``z_<p>``, deterministic ``<p>`` (physical), data
    ``obs_<variable>`` (``obs_<variable>_<j>`` for repeated variables).
    The function carries ``.param_spec``, ``.observations``, ``.error_models``,
    ``.model_fn`` and ``.obs_names`` attributes.
    """
    obs = as_streams(observations)
    ems = (list(error_model) if isinstance(error_model, (list, tuple))
           else [error_model] * len(obs))
    if len(ems) != len(obs):
        raise ValueError(f"{len(obs)} observation streams but {len(ems)} error models.")
    names, seen = [], {}
    for o in obs:
        seen[o.variable] = seen.get(o.variable, -1) + 1
        names.append(f"obs_{o.variable}" + (f"_{seen[o.variable]}" if seen[o.variable] else ""))

    def model(obs_values=None, observed=True):
        theta = {n: p.sample() for n, p in param_spec.items()}
        out = model_fn(theta)
        for j, (o, em, name) in enumerate(zip(obs, ems, names)):
            if obs_values is not None:
                o = o.replace(values=jnp.where(o.mask, obs_values[j], 0.0))
            em.observe(name, output(out, o.variable), o, observed=observed)

    model.param_spec, model.observations, model.error_models = param_spec, obs, ems
    model.model_fn, model.obs_names = model_fn, names
    return model

