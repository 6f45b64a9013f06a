"""Design of experiments over model parameters: Sobol and Latin-hypercube samples
inside the prior bounds of a parameter table.

A :class:`ParameterSpace` is a box (name, lower, upper, log flag per parameter). Points
are drawn in the unit cube with :mod:`scipy.stats.qmc` (scrambled Sobol, Owen 1998;
Latin hypercube, McKay et al. 1979) and mapped to the box, linearly or log-uniformly
(for positive parameters spanning decades, e.g. VPRM's PAR0 in 50-5000 umol m-2 s-1).

The VPRM box (:func:`vprm_parameter_space`) takes lam, par0, alpha, beta from
``process_models.vprm.parameter_table`` bounds and the temperature constants from the
span of the shipped temperature schemes (``tables/temperature_constants.csv``, pyVPRM
Copernicus and Mahadevan 2008), widened by a few degrees; the ranges keep
Tmin < Topt < Tmax and are stored in every dataset and emulator config.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
from scipy.stats import qmc


@dataclass(frozen=True)
class ParameterSpace:
    """A box of parameters.

    Attributes
    ----------
    names : parameter names, in the column order of the design matrix.
    lower, upper : bounds (same units as the model's parameter table).
    log : True where the parameter is sampled log-uniformly (needs lower > 0).
    units : UDUNITS strings (documentation, stored as metadata).
    """

    names: tuple
    lower: tuple
    upper: tuple
    log: tuple
    units: tuple = ()

    def __post_init__(self):
        n = len(self.names)
        if not (len(self.lower) == len(self.upper) == len(self.log) == n):
            raise ValueError("ParameterSpace: names, lower, upper and log must have equal length.")
        for nm, lo, hi, lg in zip(self.names, self.lower, self.upper, self.log):
            if not hi > lo:
                raise ValueError(f"ParameterSpace: upper <= lower for {nm!r} ({lo}, {hi}).")
            if lg and lo <= 0:
                raise ValueError(f"ParameterSpace: log sampling of {nm!r} needs lower > 0.")

    @property
    def dim(self) -> int:
        return len(self.names)

    def from_unit(self, u: np.ndarray) -> np.ndarray:
        """Map unit-cube points ``u`` (n, d) to the box."""
        u = np.asarray(u, float)
        lo, hi, lg = np.asarray(self.lower, float), np.asarray(self.upper, float), np.asarray(self.log)
        lin = lo + u * (hi - lo)
        logv = np.exp(np.log(np.where(lg, lo, 1.0)) + u * (np.log(np.where(lg, hi, 2.0))
                                                           - np.log(np.where(lg, lo, 1.0))))
        return np.where(lg, logv, lin)

    def to_unit(self, x: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`from_unit`."""
        x = np.asarray(x, float)
        lo, hi, lg = np.asarray(self.lower, float), np.asarray(self.upper, float), np.asarray(self.log)
        lin = (x - lo) / (hi - lo)
        safe = lambda v, d: np.where(lg, v, d)
        logu = (np.log(safe(np.maximum(x, 1e-300), 1.0)) - np.log(safe(lo, 1.0))) / (
            np.log(safe(hi, 2.0)) - np.log(safe(lo, 1.0)))
        return np.where(lg, logu, lin)

    def to_json(self) -> str:
        return json.dumps({"names": list(self.names), "lower": list(map(float, self.lower)),
                           "upper": list(map(float, self.upper)), "log": list(map(bool, self.log)),
                           "units": list(self.units)})

    @classmethod
    def from_json(cls, text: str) -> "ParameterSpace":
        d = json.loads(text)
        return cls(tuple(d["names"]), tuple(d["lower"]), tuple(d["upper"]), tuple(d["log"]),
                   tuple(d.get("units", ())))


def sample(space: ParameterSpace, n: int, *, method: str = "sobol", seed: int = 0) -> np.ndarray:
    """``n`` parameter vectors (n, d) inside ``space``.

    method : "sobol" (scrambled Sobol; ``n`` need not be a power of two, scipy warns
        about balance properties, which we silence) or "lhs" (Latin hypercube) or
        "random" (independent uniform, for baselines).
    """
    if method == "sobol":
        eng = qmc.Sobol(space.dim, scramble=True, seed=seed)
        m = int(np.ceil(np.log2(max(n, 2))))
        u = eng.random_base2(m)[:n]
    elif method == "lhs":
        u = qmc.LatinHypercube(space.dim, seed=seed).random(n)
    elif method == "random":
        u = np.random.default_rng(seed).random((n, space.dim))
    else:
        raise ValueError(f"sample: method={method!r}; choose 'sobol', 'lhs' or 'random'.")
    return space.from_unit(u)


# Temperature-constant box for VPRM (degC): spans pyVPRM Copernicus and Mahadevan 2008
# constants (tables/temperature_constants.csv: tmin -4..5, topt 15..26, tmax 36..50,
# tlow -3..5) with a margin; disjoint, so Tmin < Topt < Tmax holds everywhere.
VPRM_TEMPERATURE_BOUNDS = {"tmin": (-6.0, 7.0), "topt": (12.0, 28.0), "tmax": (33.0, 52.0),
                           "tlow": (-6.0, 7.0)}
VPRM_PARAMETER_NAMES = ("lam", "par0", "alpha", "beta", "tmin", "topt", "tmax", "tlow")


def vprm_parameter_space(table: str = "pyvprm_modis") -> ParameterSpace:
    """The VPRM parameter box: lam, par0, alpha, beta bounds from
    :func:`process_models.vprm.parameter_table` (lam and par0 log-uniform), temperature
    constants from :data:`VPRM_TEMPERATURE_BOUNDS`."""
    from process_models.vprm import parameter_table

    tab = parameter_table(table).drop_duplicates("name").set_index("name")
    names, lo, hi, lg, units = [], [], [], [], []
    for name in VPRM_PARAMETER_NAMES:
        if name in tab.index:
            a, b, u = float(tab.loc[name, "lower"]), float(tab.loc[name, "upper"]), tab.loc[name, "units"]
        else:
            (a, b), u = VPRM_TEMPERATURE_BOUNDS[name], "degC"
        names.append(name), lo.append(a), hi.append(b), lg.append(name in ("lam", "par0")), units.append(u)
    return ParameterSpace(tuple(names), tuple(lo), tuple(hi), tuple(lg), tuple(units))
