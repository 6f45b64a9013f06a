"""Hierarchical (partially pooled) multi-site calibration by vegetation class.

For parameter k, class c and site s of class c(s), in the transformed space of the
priors (log for positive parameters; reference note section 2.4; Kuppel et al. 2012,
Bastrikov et al. 2018 for multi-site calibration of ecosystem models):

    mu_{k,c}  ~ prior_k of class c (TruncatedNormal, from the parameter table)
    tau_k     ~ HalfNormal(s_k)                        site spread, shared by the classes
    z_{k,s}   ~ Normal(0, 1)                           non-centred site deviation
    theta_{k,s} = T_k^{-1}(mu_{k,c(s)} + tau_k z_{k,s})
    y_s       ~ site likelihood(model_s(theta_s))       (error_models.py)

The non-centred form (Papaspiliopoulos et al. 2007; Betancourt & Girolami 2015) avoids
the funnel between tau and the site values when a site's data are weak (e.g. a site
observing GPP only leaves its respiration parameters to the population).

Sites are heterogeneous (own forcing length, light mode, observed variable), so each
site is its own ``model_fn``; the short list of sites is unrolled at trace time into one
compiled log density (like VPRM's class loop). Sites that share a model and forcing
shape can instead be one "site" whose ``model_fn`` vmaps over a leading site axis.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpyro
import numpyro.distributions as dist

from .builder import output
from .error_models import ErrorModel, FluxObservations
from .priors import ParamPrior


@dataclass(frozen=True)
class HierSite:
    """One site of a hierarchical calibration."""

    name: str
    class_id: int
    model_fn: Callable
    observations: FluxObservations
    error_model: ErrorModel = ErrorModel()


def build_hierarchical_model(sites: Sequence[HierSite],
                             priors_by_class: dict[int, dict[str, ParamPrior]], *,
                             tau_scale: dict[str, float] | None = None) -> Callable:
    """NumPyro model of the hierarchy above.

    Parameters
    ----------
    sites : at least two :class:`HierSite` (site names must be unique).
    priors_by_class : class id -> {parameter: ParamPrior}; the same parameter names and
        transforms for every class.
    tau_scale : half-normal scale of tau per parameter (transformed units); default half
        the class-prior sd (site spread smaller than the literature spread).

    Sites: ``mu_<p>_c<class>``, ``tau_<p>``, ``z_site_<p>`` (vector over sites),
    deterministic ``<p>_<site>`` (physical), data ``obs_<site>``.
    """
    names = [s.name for s in sites]
    if len(set(names)) != len(names):
        raise ValueError("site names must be unique.")
    classes = sorted({s.class_id for s in sites})
    missing = [c for c in classes if c not in priors_by_class]
    if missing:
        raise KeyError(f"no priors for classes {missing}.")
    params = list(priors_by_class[classes[0]])
    ref = priors_by_class[classes[0]]
    scale = {p: 0.5 * ref[p].scale for p in params} if tau_scale is None else tau_scale
    n_sites = len(sites)

    def model():
        theta = [dict() for _ in sites]
        for p in params:
            tau = numpyro.sample(f"tau_{p}", dist.HalfNormal(scale[p]))
            mu = {c: numpyro.sample(f"mu_{p}_c{c}", priors_by_class[c][p].base_distribution())
                  for c in classes}
            z = numpyro.sample(f"z_site_{p}", dist.Normal(0.0, 1.0).expand([n_sites]).to_event(1))
            for i, s in enumerate(sites):
                pr = priors_by_class[s.class_id][p]
                theta[i][p] = numpyro.deterministic(f"{p}_{s.name}",
                                                    pr.inverse(mu[s.class_id] + tau * z[i]))
        for i, s in enumerate(sites):
            out = s.model_fn(theta[i])
            s.error_model.observe(f"obs_{s.name}", output(out, s.observations.variable),
                                  s.observations)

    model.sites, model.params, model.classes = list(sites), params, classes
    return model
