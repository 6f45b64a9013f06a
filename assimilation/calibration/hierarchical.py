"""Hierarchical (partially pooled) multi-site calibration by vegetation class.

For parameter k, class c and site s of class c(s), in the transformed space of the
priors (log for positive parameters; Kuppel et al. 2012, Bastrikov et al. 2018 for
multi-site calibration of ecosystem models):

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

import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd

from process_models.interface import output
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


def init_from_site_medians(sites: Sequence[HierSite], priors_by_class: dict[int, dict[str, ParamPrior]],
                           medians: Sequence[dict]) -> dict:
    """Initial values of :func:`build_hierarchical_model` from single-site posterior medians.

    ``medians[i]``: {site name of the single-site fit: median} of site ``i`` (the
    parameters and any ``*_rho`` / ``*_inflation`` error-model sites). In transformed space
    t_s = T(median_s): mu_c = mean of t_s over the sites of class c, tau = half the prior
    sd, z_s = (t_s - mu_c(s)) / tau; error-model sites are copied (rho clipped to
    [0.001, 0.999]). A MAP start is worse here: its optimum drives tau to 0 in the
    non-centred funnel."""
    ref = priors_by_class[sites[0].class_id]
    vals = {}
    for p in ref:
        t = [float(priors_by_class[s.class_id][p].forward(m[p])) for s, m in zip(sites, medians)]
        tau = 0.5 * ref[p].scale
        mu = {c: float(np.mean([x for x, s in zip(t, sites) if s.class_id == c]))
              for c in priors_by_class}
        vals[f"tau_{p}"] = tau
        vals.update({f"mu_{p}_c{c}": v for c, v in mu.items()})
        vals[f"z_site_{p}"] = np.array([(x - mu[s.class_id]) / tau for x, s in zip(t, sites)])
    for s, m in zip(sites, medians):
        for suf in ("rho", "inflation"):
            v = [x for k, x in m.items() if k.endswith("_" + suf)]
            if v:
                vals[f"obs_{s.name}_{suf}"] = min(max(v[0], 1e-3), 0.999) if suf == "rho" else v[0]
    return vals


def shrinkage_tables(samples: dict, sites: Sequence[HierSite],
                     priors_by_class: dict[int, dict[str, ParamPrior]],
                     single_site: Sequence[dict | None] = ()) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Population (class) medians with 90 % intervals in physical units, and per site the
    hierarchical against the single-site posterior (``single_site[i]``: parameter ->
    draws of site ``i``, or None): median, 5-95 % and the ratio of the interval widths
    (< 1: the pooled fit is tighter; medians move towards the class mean, shrinkage)."""
    q = lambda x, a: float(np.quantile(x, a))  # noqa: E731
    pop, shr = [], []
    params = list(priors_by_class[sites[0].class_id])
    single = list(single_site) + [None] * (len(sites) - len(single_site))
    for p in params:
        for c, pri in priors_by_class.items():
            v = np.asarray(pri[p].inverse(samples[f"mu_{p}_c{c}"])).reshape(-1)
            pop.append({"parameter": p, "class": c, "prior median": float(pri[p].inverse(pri[p].loc)),
                        "population median": float(np.median(v)), "5%": q(v, 0.05), "95%": q(v, 0.95)})
        for s, ss in zip(sites, single):
            h = np.asarray(samples[f"{p}_{s.name}"]).reshape(-1)
            row = {"parameter": p, "site": s.name, "hier median": float(np.median(h)),
                   "hier 5%": q(h, 0.05), "hier 95%": q(h, 0.95)}
            if ss is not None:
                x = np.asarray(ss[p]).reshape(-1)
                row.update({"single median": float(np.median(x)), "single 5%": q(x, 0.05),
                            "single 95%": q(x, 0.95),
                            "width ratio hier/single": (q(h, 0.95) - q(h, 0.05)) / (q(x, 0.95) - q(x, 0.05))})
            shr.append(row)
    return pd.DataFrame(pop), pd.DataFrame(shr)
