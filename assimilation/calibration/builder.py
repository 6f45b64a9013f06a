"""Build a NumPyro model from (model, priors, observations, error model).

The model is taken through the common interface only (``ARCHITECTURE.md``): a function
``model_fn(theta) -> outputs`` where ``theta`` maps calibrated parameter names to
physical values and ``outputs`` has the observed variables as attributes or keys
(``gpp``, ``reco``, ``nee`` in umol m-2 s-1). :func:`interface_model_fn` makes such a
function from any ``simulate(params, forcing[, options])`` whose parameters are a frozen
pytree (VPRM, the coupled model, an emulator that answers the same call).

Generative model (one site)::

    z_k ~ TruncatedNormal(mu_k, sd_k, bounds_k)      theta_k = T_k^{-1}(z_k)   (priors.py)
    f = model_fn(theta)                              (e.g. VPRM NEE at the tower hours)
    y_j ~ FluxLikelihood(f_j, sigma(f_j), mask_j)    for every data stream j (error_models.py)
"""
from __future__ import annotations

from typing import Callable, Sequence

import jax
import jax.numpy as jnp
import numpyro

from .error_models import ErrorModel, FluxObservations
from .priors import ParamPrior


def output(outputs, variable: str):
    """``outputs.<variable>`` or ``outputs[variable]``."""
    if isinstance(outputs, dict):
        return outputs[variable]
    return getattr(outputs, variable)


def interface_model_fn(simulate: Callable, base_params, forcing, options=None) -> Callable:
    """``theta -> simulate(base_params with theta's fields replaced, forcing, options)``.

    Each calibrated value (scalar, or shaped like the field) is broadcast to the shape of
    the parameter field it replaces (e.g. VPRM per-class arrays of shape (C,)). Works for
    any ``flax.struct`` parameter pytree. The call is jitted once (NumPyro traces models
    eagerly during initialisation; without the jit every array operation of the model
    would be compiled separately).
    """
    @jax.jit
    def run(theta, params, forcing):
        new = {k: jnp.broadcast_to(jnp.asarray(v, getattr(params, k).dtype),
                                   jnp.shape(getattr(params, k)))
               for k, v in theta.items()}
        params = params.replace(**new)
        return simulate(params, forcing) if options is None else simulate(params, forcing, options)

    def model_fn(theta):
        return run(theta, base_params, forcing)
    return model_fn


def _as_lists(observations, error_model):
    obs = list(observations) if isinstance(observations, (list, tuple)) else [observations]
    ems = (list(error_model) if isinstance(error_model, (list, tuple))
           else [error_model] * len(obs))
    if len(ems) != len(obs):
        raise ValueError(f"{len(obs)} observation streams but {len(ems)} error models.")
    return obs, ems


def build_model(model_fn: Callable, param_spec: dict[str, ParamPrior],
                observations: FluxObservations | Sequence[FluxObservations],
                error_model: ErrorModel | Sequence[ErrorModel] = ErrorModel()) -> Callable:
    """A NumPyro model function for single-site calibration.

    Parameters
    ----------
    model_fn : ``theta -> outputs`` (see :func:`interface_model_fn`).
    param_spec : priors of the calibrated parameters (:func:`priors.priors_from_table`).
    observations : one stream or a list (e.g. NEE and night-time NEE, or NEE and GPP).
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
    obs, ems = _as_lists(observations, error_model)
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
