"""Priors for calibrated parameters, built from a model's parameter table.

Every calibrated parameter is sampled in a *transformed* space z = T(theta):

* positive parameters (``lam``, ``par0``, ``alpha``; any parameter whose table prior is
  ``LogNormal``): z = log(theta), z ~ TruncatedNormal(mu, sd, log(lower), log(upper)),
  i.e. a log-normal prior truncated to the model's parameter box;
* real parameters (``beta``; table prior ``Normal``): z = theta,
  z ~ TruncatedNormal(mean, sd, lower, upper): a truncated normal from the published
  standard error (MPI-BGC EU2007 ships standard errors; ``parameter_table`` inflates
  them by a model-error factor, reference note section 2.4).

Where the literature disagrees the prior is kept wide: ``min_sd`` sets a floor on the
transformed-space standard deviation (default: log-sd >= 1.0 for PAR0, whose published
values span 150 to > 15000 umol m-2 s-1 and trade off with lam; reference note 1.1).

The latent site is named ``z_<name>`` (``log_<name>`` for log parameters) and the
physical value is recorded as a ``numpyro.deterministic`` named ``<name>``, so traces,
ArviZ summaries and hierarchical models all see the physical parameter.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
import pandas as pd

DEFAULT_MIN_SD = {"par0": 1.0}
"""Floors on the transformed-space prior sd where the literature disagrees (log units)."""


@dataclass(frozen=True)
class ParamPrior:
    """Prior of one calibrated parameter.

    Attributes
    ----------
    name : physical parameter name (a field of the model's parameter pytree).
    transform : "log" (positive parameter) or "identity".
    loc, scale : mean and sd of the (truncated) normal in transformed space.
    lower, upper : physical bounds (the model's parameter box); ``lower <= 0`` with
        ``transform="log"`` means no lower truncation.
    units, citation : documentation carried into reports.
    """

    name: str
    transform: str
    loc: float
    scale: float
    lower: float = -np.inf
    upper: float = np.inf
    units: str = ""
    citation: str = ""

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


def priors_from_table(table: pd.DataFrame, class_id: int | None = None, names=None, *,
                      min_sd: dict | None = None, widen: float = 1.0) -> dict[str, ParamPrior]:
    """Priors for the parameters of one vegetation class from a parameter table.

    Parameters
    ----------
    table : long table with columns ``name, prior, lower, upper, units, citation`` and
        optionally ``class_id`` (e.g. :func:`process_models.vprm.parameter_table`).
    class_id : the class to take (required when the table has several classes).
    names : parameters to calibrate, in order (default: all of the class).
    min_sd : floors on the transformed-space sd (default :data:`DEFAULT_MIN_SD`).
    widen : multiplies every sd (sensitivity studies).

    Returns
    -------
    dict name -> :class:`ParamPrior`, in the order of ``names``.
    """
    rows = table
    if "class_id" in table and class_id is not None:
        rows = table[table["class_id"] == class_id]
    if rows.empty:
        raise KeyError(f"no rows for class {class_id} in the parameter table.")
    rows = rows.set_index("name")
    if rows.index.has_duplicates:
        raise ValueError("several rows per parameter: give class_id.")
    names = list(rows.index) if names is None else list(names)
    floors = DEFAULT_MIN_SD if min_sd is None else min_sd
    out = {}
    for n in names:
        r = rows.loc[n]
        kind, loc, sd = parse_prior(r["prior"])
        sd = max(sd * widen, floors.get(n, 0.0))
        out[n] = ParamPrior(name=n, transform=kind, loc=loc, scale=sd,
                            lower=float(r.get("lower", -np.inf)), upper=float(r.get("upper", np.inf)),
                            units=str(r.get("units", r.get("unit", ""))), citation=str(r.get("citation", "")))
    return out


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
