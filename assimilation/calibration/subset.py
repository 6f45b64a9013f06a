"""Calibrate a named subset of any model's parameters, through the model interface.

A model (:class:`process_models.interface.Model`: VPRM, the coupled model, a surrogate) has
a parameter table with dotted names (``"leaf.vcmax25"``, ``"lam[7]"``), units, defaults,
bounds and priors. A calibration or an augmented-state filter touches a few of them. This
module maps an unconstrained real vector ``s`` to those parameters and back:

    t_i = lo_i + (hi_i - lo_i) * sigmoid(s_i)          (transformed space, inside the box)
    theta_i = exp(t_i)  (log-normal prior)   or   t_i  (normal prior)

where ``lo, hi`` are the table bounds in transformed space (log bounds for positive
parameters). The prior is the table's ``LogNormal(mu, sd)`` / ``Normal(m, sd)`` truncated to
the bounds (:func:`assimilation.calibration.priors_from_table`), so

    log p(s) = log N(t; loc, sd) + log |dt/ds|,  dt/ds = (hi - lo) sigmoid(s) (1 - sigmoid(s))

(the truncation constant does not depend on ``s``). A Gaussian (Laplace) approximation in
``s`` space therefore always maps to parameters inside their bounds.
applies multiplicative factors (:meth:`ParameterSubset.apply_log_factors`) ``theta_i = base_i exp(m_i)`` (log-multipliers, the usual
augmented-state parameters of ensemble filters).

Usage::

    from process_models.coupled import CoupledModel
    from assimilation.calibration import ParameterSubset
    model = CoupledModel("ENF", "loam")
    sub = ParameterSubset.from_model(model, ["leaf.vcmax25", "leaf.g1"])
    s0 = sub.to_unconstrained(sub.defaults)          # (2,) array
    params = sub.apply(model.default_params(), s0)   # parameters with the two replaced
    lp = sub.log_prior(s0)                           # prior log density in s space
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from process_models.units import DataValidationError

__all__ = ["ParameterSubset"]


@dataclass(frozen=True)
class ParameterSubset:
    """A calibrated subset of a model's parameters (static metadata, NumPy arrays).

    Attributes
    ----------
    names : dotted parameter names of the model's parameter table.
    model : the model (its ``set_parameters`` / ``get_parameter`` address the names).
    transform : per name, "log" or "identity" (from the prior family).
    loc, scale : prior mean and sd in transformed space.
    lower, upper : physical bounds from the parameter table.
    defaults : physical default values from the table.
    units : per name.
    """

    names: tuple
    model: object
    transform: tuple
    loc: np.ndarray
    scale: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    defaults: np.ndarray
    units: tuple

    @classmethod
    def from_model(cls, model, names, *, widen: float = 1.0, table=None) -> "ParameterSubset":
        """Priors and bounds of ``names`` from ``model.parameter_table()`` (or ``table``).

        Raises DataValidationError for unknown names, unparsable priors (e.g. ``Uniform``)
        or a default outside its bounds.
        """
        from .priors import parse_prior
        tab = model.parameter_table() if table is None else table
        tab = tab.set_index("name")
        rows = dict(transform=[], loc=[], scale=[], lower=[], upper=[], defaults=[], units=[])
        for n in names:
            if n not in tab.index:
                raise DataValidationError(f"unknown parameter {n!r}.", source="parameter_table",
                                          variable=n, fix="use a name of the model's parameter_table().")
            r = tab.loc[n]
            try:
                kind, loc, sd = parse_prior(r["prior"])
            except ValueError as err:
                raise DataValidationError(f"prior {r['prior']!r} is not LogNormal/Normal.",
                                          source="parameter_table", variable=n,
                                          fix="calibrate parameters with LogNormal or Normal priors.") from err
            lo, hi, d = float(r["lower"]), float(r["upper"]), float(r["default"])
            if not lo < hi or not lo <= d <= hi or (kind == "log" and lo <= 0):
                raise DataValidationError(f"default {d} outside bounds [{lo}, {hi}] (or bad bounds).",
                                          source="parameter_table", variable=n,
                                          fix="fix the table row.")
            rows["transform"].append(kind)
            rows["loc"].append(loc)
            rows["scale"].append(sd * widen)
            rows["lower"].append(lo)
            rows["upper"].append(hi)
            rows["defaults"].append(d)
            rows["units"].append(str(r.get("unit", "")))
        a = lambda k: np.asarray(rows[k], float)
        return cls(names=tuple(names), model=model, transform=tuple(rows["transform"]), loc=a("loc"),
                   scale=a("scale"), lower=a("lower"), upper=a("upper"),
                   defaults=a("defaults"), units=tuple(rows["units"]))

    # --------------------------------------------------------------- transforms
    @property
    def size(self) -> int:
        return len(self.names)

    @property
    def _is_log(self) -> np.ndarray:
        return np.array([t == "log" for t in self.transform])

    @property
    def t_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds in transformed space (log bounds for log-normal parameters)."""
        lg = self._is_log
        return (np.where(lg, np.log(np.where(lg, self.lower, 1.0)), self.lower),
                np.where(lg, np.log(np.where(lg, self.upper, 1.0)), self.upper))

    def to_transformed(self, s):
        lo, hi = self.t_bounds
        return lo + (hi - lo) * jax.nn.sigmoid(s)

    def to_physical(self, s):
        """Unconstrained (..., P) -> physical values (..., P), inside the bounds."""
        t = self.to_transformed(s)
        return jnp.where(self._is_log, jnp.exp(t), t)

    def to_unconstrained(self, theta):
        """Physical (..., P) -> unconstrained (values at a bound map to +-inf)."""
        theta = jnp.asarray(theta)
        t = jnp.where(self._is_log, jnp.log(jnp.where(self._is_log, theta, 1.0)), theta)
        lo, hi = self.t_bounds
        u = (t - lo) / (hi - lo)
        return jnp.log(u) - jnp.log1p(-u)

    def log_prior(self, s):
        """log prior density of the unconstrained vector ``s`` (P,) (up to a constant)."""
        t = self.to_transformed(s)
        lo, hi = self.t_bounds
        z = (t - self.loc) / self.scale
        log_jac = jnp.log(hi - lo) + jax.nn.log_sigmoid(s) + jax.nn.log_sigmoid(-s)
        return jnp.sum(-0.5 * z ** 2 + log_jac)

    def as_dict(self, theta) -> dict:
        """{name: value} from a physical vector (last axis)."""
        theta = jnp.asarray(theta)
        return {n: theta[..., i] for i, n in enumerate(self.names)}

    def apply(self, params, s):
        """``params`` with the subset set from the unconstrained ``s`` (..., P)."""
        return self.model.set_parameters(params, self.as_dict(self.to_physical(s)))

    def apply_physical(self, params, theta):
        """``params`` with the subset set to the physical values ``theta`` (..., P)."""
        return self.model.set_parameters(params, self.as_dict(theta))

    def values(self, params) -> jax.Array:
        """Physical values (P,) of the subset in ``params``."""
        return jnp.stack([jnp.asarray(self.model.get_parameter(params, n)) for n in self.names], -1)

    def apply_log_factors(self, params, log_factors):
        """``params`` with ``theta_i = base_i * exp(log_factors_i)`` (log-multipliers (..., P)
        on the values in ``params``; no bounds are applied)."""
        base = self.values(params)
        return self.apply_physical(params, base * jnp.exp(jnp.asarray(log_factors)))

    def prior_draws(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """(n, P) physical draws from the truncated prior."""
        from scipy.stats import truncnorm
        lo, hi = self.t_bounds
        a, b = (lo - self.loc) / self.scale, (hi - self.loc) / self.scale
        t = truncnorm.rvs(a, b, loc=self.loc, scale=self.scale, size=(n, self.size),
                          random_state=rng)
        return np.where(self._is_log, np.exp(t), t)
