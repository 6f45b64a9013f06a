"""Priors for calibrated parameters, built from a model's parameter table.

Every calibrated parameter is sampled in a *transformed* space z = T(theta):

* positive parameters (``lam``, ``par0``, ``alpha``; any parameter whose table prior is
  ``LogNormal``): z = log(theta), z ~ TruncatedNormal(mu, sd, log(lower), log(upper)),
  i.e. a log-normal prior truncated to the model's parameter box;
* real parameters (``beta``; table prior ``Normal``): z = theta,
  z ~ TruncatedNormal(mean, sd, lower, upper): a truncated normal from the published
  standard error (MPI-BGC EU2007 ships standard errors; ``parameter_table`` inflates
  them by a model-error factor, since a fit's standard error ignores structural error).

Where the literature disagrees the prior is kept wide: ``min_sd`` sets a floor on the
transformed-space standard deviation (default: log-sd >= 1.0 for PAR0, whose published
values in published VPRM fits span 150 to > 15000 umol m-2 s-1 and trade off with lam).

:func:`priors_from_model` reads the priors of any model (:class:`process_models.interface.Model`)
from its ``parameter_table()``; each prior carries a short *label* (the NumPyro site name,
e.g. ``"lam"``) and the model's dotted parameter name (``parameter``, e.g. ``"lam[3]"``),
so sites of different vegetation classes share labels in a hierarchy.

The latent site is named ``z_<label>`` (``log_<label>`` for log parameters) and the
physical value is recorded as a ``numpyro.deterministic`` named ``<label>``, so traces,
ArviZ summaries and hierarchical models all see the physical parameter.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Mapping, Sequence

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd

from process_models.interface import parse_name

DEFAULT_MIN_SD = {"par0": 1.0}
"""Floors on the transformed-space prior sd where the literature disagrees (log units),
keyed by the parameter's field name (``"par0"`` also applies to ``"par0[3]"``)."""


@dataclass(frozen=True)
class ParamPrior:
    """Prior of one calibrated parameter.

    Attributes
    ----------
    name : label of the parameter: the NumPyro site name and the key of ``theta``.
    transform : "log" (positive parameter) or "identity".
    loc, scale : mean and sd of the (truncated) normal in transformed space.
    lower, upper : physical bounds (the model's parameter box); ``lower <= 0`` with
        ``transform="log"`` means no lower truncation.
    units, citation : documentation carried into reports.
    parameter : the model's dotted parameter name (``"lam[3]"``, ``"leaf.vcmax25"``) that
        the value sets; empty means ``name``.
    """

    name: str
    transform: str
    loc: float
    scale: float
    lower: float = -np.inf
    upper: float = np.inf
    units: str = ""
    citation: str = ""
    parameter: str = ""

    @property
    def model_name(self) -> str:
        """The model parameter this prior sets (``parameter`` or ``name``)."""
        return self.parameter or self.name

    @property
    def latent_name(self) -> str:
        return f"log_{self.name}" if self.transform == "log" else f"z_{self.name}"

    @property
    def bounds_t(self) -> tuple[float, float]:
        """Bounds in transformed space."""
        if self.transform == "log":
            lo = np.log(self.lower) if self.lower > 0 else -np.inf
            hi = np.log(self.upper) if np.isfinite(self.upper) else np.inf
            return float(lo), float(hi)
        return float(self.lower), float(self.upper)

    def base_distribution(self, loc=None, scale=None):
        """TruncatedNormal (or Normal if unbounded) in transformed space."""
        loc = self.loc if loc is None else loc
        scale = self.scale if scale is None else scale
        lo, hi = self.bounds_t
        if np.isinf(lo) and np.isinf(hi):
            return dist.Normal(loc, scale)
        return dist.TruncatedNormal(loc, scale, low=None if np.isinf(lo) else lo,
                                    high=None if np.isinf(hi) else hi)

    def forward(self, theta):
        """Physical -> transformed."""
        return jnp.log(theta) if self.transform == "log" else theta

    def inverse(self, z):
        """Transformed -> physical."""
        return jnp.exp(z) if self.transform == "log" else z

    def sample(self, suffix: str = ""):
        """Sample the latent site, record the physical value as a deterministic site."""
        z = numpyro.sample(self.latent_name + suffix, self.base_distribution())
        return numpyro.deterministic(self.name + suffix, self.inverse(z))

    def draw(self, rng: np.random.Generator, size=None) -> np.ndarray:
        """NumPy draws from the prior (physical units), for SBC and prior predictive."""
        lo, hi = self.bounds_t
        from scipy.stats import truncnorm
        a, b = (lo - self.loc) / self.scale, (hi - self.loc) / self.scale
        z = truncnorm.rvs(a, b, loc=self.loc, scale=self.scale, size=size, random_state=rng)
        return np.exp(z) if self.transform == "log" else z


_PRIOR_RE = re.compile(r"^\s*(LogNormal|Normal)\(\s*([-+0-9.eE]+)\s*,\s*([-+0-9.eE]+)\s*\)\s*$")


def parse_prior(text: str) -> tuple[str, float, float]:
    """``"LogNormal(mu, sd)"`` -> ("log", mu, sd); ``"Normal(m, sd)"`` -> ("identity", m, sd)."""
    m = _PRIOR_RE.match(str(text))
    if not m:
        raise ValueError(f"cannot parse prior {text!r}; expected 'LogNormal(mu, sd)' or 'Normal(m, sd)'.")
    return ("log" if m.group(1) == "LogNormal" else "identity"), float(m.group(2)), float(m.group(3))


def _labels(names) -> dict[str, str]:
    """``{label: parameter name}`` from a sequence (label = name) or a mapping."""
    if isinstance(names, Mapping):
        return {str(k): str(v) for k, v in names.items()}
    return {str(n): str(n) for n in names}


def _prior_from_row(label: str, name: str, row, floors: Mapping[str, float], widen: float) -> ParamPrior:
    kind, loc, sd = parse_prior(row["prior"])
    field = parse_name(name)[0][-1]
    sd = max(sd * widen, floors.get(name, floors.get(field, 0.0)))
    unit = row["unit"] if "unit" in row else row.get("units", "")
    return ParamPrior(name=label, transform=kind, loc=loc, scale=sd,
                      lower=float(row.get("lower", -np.inf)), upper=float(row.get("upper", np.inf)),
                      units=str(unit), citation=str(row.get("citation", "")),
                      parameter="" if label == name else name)


def priors_from_table(table: pd.DataFrame, class_id: int | None = None,
                      names: Sequence[str] | Mapping[str, str] | None = None, *,
                      min_sd: dict | None = None, widen: float = 1.0) -> dict[str, ParamPrior]:
    """Priors for the parameters of one vegetation class from a parameter table.

    Parameters
    ----------
    table : long table with columns ``name, prior, lower, upper, unit`` (or ``units``),
        ``citation`` and optionally ``class_id`` (e.g. a model's ``parameter_table()`` or
        :func:`process_models.vprm.parameter_table`).
    class_id : the class to take (required when the table has several rows per name).
    names : parameters to calibrate, in order (default: all of the class); a mapping
        ``{label: table name}`` gives the priors short labels.
    min_sd : floors on the transformed-space sd (default :data:`DEFAULT_MIN_SD`).
    widen : multiplies every sd (sensitivity studies).

    Returns
    -------
    dict label -> :class:`ParamPrior`, in the order of ``names``.
    """
    rows = table
    if "class_id" in table and class_id is not None:
        rows = table[table["class_id"] == class_id]
    if rows.empty:
        raise KeyError(f"no rows for class {class_id} in the parameter table.")
    rows = rows.set_index("name")
    if rows.index.has_duplicates:
        raise ValueError("several rows per parameter: give class_id.")
    labels = _labels(list(rows.index) if names is None else names)
    missing = [n for n in labels.values() if n not in rows.index]
    if missing:
        raise KeyError(f"parameters {missing} are not in the parameter table; "
                       f"available: {list(rows.index)[:12]}")
    floors = DEFAULT_MIN_SD if min_sd is None else min_sd
    return {lab: _prior_from_row(lab, n, rows.loc[n], floors, widen) for lab, n in labels.items()}


def priors_from_model(model, names: Sequence[str] | Mapping[str, str], *,
                      min_sd: dict | None = None, widen: float = 1.0) -> dict[str, ParamPrior]:
    """Priors of ``names`` from ``model.parameter_table()`` (any model of the interface).

    ``names`` are the model's dotted parameter names, or ``{label: name}`` (e.g.
    ``{"lam": "lam[3]"}`` for a VPRM class): the label names the NumPyro sites and the
    keys of ``theta`` (:func:`assimilation.calibration.model_fn_from`), the name the
    model parameter it sets. Example::

        model = VPRMModel(table="mahadevan2008", temperatures="mahadevan2008", classes=(3,))
        priors = priors_from_model(model, {"lam": "lam[3]", "par0": "par0[3]"})
    """
    return priors_from_table(model.parameter_table(), names=names, min_sd=min_sd, widen=widen)


def prior_table(priors: dict[str, ParamPrior]) -> pd.DataFrame:
    """Documentation table of the priors (median and 90 % interval in physical units)."""
    rows = []
    rng = np.random.default_rng(0)
    for p in priors.values():
        d = p.draw(rng, 20000)
        rows.append({"name": p.name, "units": p.units, "transform": p.transform, "loc": p.loc,
                     "sd": p.scale, "lower": p.lower, "upper": p.upper,
                     "median": float(np.median(d)), "q05": float(np.quantile(d, 0.05)),
                     "q95": float(np.quantile(d, 0.95)), "citation": p.citation})
    return pd.DataFrame(rows)
