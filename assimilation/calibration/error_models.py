"""Observation-error models (likelihoods) for flux calibration.

Random error of eddy-covariance NEE is heteroscedastic and fat-tailed (Hollinger &
Richardson 2005, Tree Physiol. 25, 873; Richardson et al. 2006, AFM 136, 1-18): its
standard deviation grows linearly with the flux magnitude, with different slopes for
release (F > 0) and uptake (F < 0):

    sigma_t = a + b_pos * max(F_t, 0) + b_neg * max(-F_t, 0)          (umol m-2 s-1)

where F is the modelled flux (``sigma_from="model"``), the observed flux
(``sigma_from="obs"``) or replaced by a per-record uncertainty shipped with the data
(``sigma_from="record"``, e.g. ONEFlux ``NEE_VUT_REF_RANDUNC``). ``a, b_pos, b_neg`` can be
fitted to the data by the 24-h paired-observation method (:func:`fit_flux_error_model`).

Families (sigma is always the standard deviation):

* ``gaussian``: weighted least squares, maximum likelihood once sigma varies with the
  flux (Lasslop et al. 2008, BG 5, 1311);
* ``laplace``: scale sigma/sqrt(2); minimises sum |r|/sigma (Richardson & Hollinger 2005);
* ``student_t``: df ``nu`` (> 2), scale sigma*sqrt((nu-2)/nu): robust to outliers.

Optional AR(1) model-error term (Schoups & Vrugt 2010, WRR 46, W10531; model-data
residuals persist, Kountouris et al. 2015): standardised residuals eta_t = r_t/sigma_t
follow eta_t = rho^k eta_p + sqrt(1 - rho^(2k)) e_t, where p is the previous *observed*
record and k = t - p its lag in steps (exact for Gaussian AR(1) with gaps); e_t is unit
variance from the family. Records with ``mask = False`` (gaps, QC > threshold, gap-filled
values) contribute nothing. (The AR(1) sampler runs over the records given, so for
simulated data with ``time_index`` gaps only the likelihood, not the simulation, sees
the lags.)

Observations: a calibration stream is a :class:`FluxObservations` (one observed variable
with its mask, optional per-record sd and the AR(1) lags). It is built from a column of the
common :class:`assimilation.observations.Observations` (the type ensemble filters read;
``FluxObservations.from_observations(obs, "nee")``, sd = sqrt(variance)) or from arrays;
:func:`build_model` also accepts an ``Observations`` directly (one stream per column).

Observation-weight trap: sigma computed from the *observed* flux (``sigma_from="obs"``)
down-weights records whose noise happens to enlarge |F| and biases the fit towards small
fluxes (seen at Park Falls: lam pushed to its lower bound). Prefer sigma from an
*expected* flux that is independent of each record's noise: the model flux
(``"model"``; can make the posterior multimodal), or a per-record sigma computed from a
smoothed observed flux (:func:`expected_flux` + :func:`flux_sigma`, ``"record"``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
import numpyro
import numpyro.distributions as dist
from flax import struct
from jax.scipy.special import gammaln
from numpyro.distributions import constraints

from process_models.units import DataValidationError

FAMILIES = ("gaussian", "laplace", "student_t")


@struct.dataclass
class FluxObservations:
    """One observed data stream at the model's time steps.

    ``values`` has no NaN: masked records hold 0 (so gradients stay finite) and are
    ignored by every likelihood.
    """

    values: jax.Array
    """Observed flux (e.g. NEE). Units: umol m-2 s-1. Shape (T,)."""
    mask: jax.Array
    """True where the record is used (measured, QC passed). Shape (T,)."""
    prev_index: jax.Array
    """Index of the previous used record (-1 if none), for the AR(1) term. Shape (T,)."""
    lag: jax.Array
    """Time steps since the previous used record (0 if none), for the AR(1) term. Shape (T,)."""
    sigma: Optional[jax.Array] = None
    """Per-record random-error sd (``sigma_from="record"``). Units: umol m-2 s-1."""
    variable: str = struct.field(pytree_node=False, default="nee")
    """Model output the stream observes (``outputs.<variable>``)."""

    @classmethod
    def from_arrays(cls, values, *, qc=None, qc_max: float = 0, mask=None, sigma=None,
                    time_index=None, variable: str = "nee",
                    source: str = "<memory>") -> "FluxObservations":
        """Build from arrays: NaN values are masked, ``qc > qc_max`` too (FLUXNET QC 0 =
        measured at half-hourly/hourly resolution; for daily data QC is a fraction and
        ``qc_max`` is not used: pass ``mask=qc >= 0.8``).

        ``time_index`` (int, shape (T,)): position of each record on the regular model
        time axis when the records are a subset of it (e.g. only the measured hours of a
        stateless model); the AR(1) lag is measured on it. Default ``arange(T)``.
        """
        v = np.asarray(values, dtype=float)
        if v.ndim != 1:
            raise DataValidationError(f"observations must be 1-D (time), got shape {v.shape}.",
                                      source=source, variable=variable, fix="select one site.")
        m = np.isfinite(v)
        if qc is not None:
            m &= np.asarray(qc) <= qc_max
        if mask is not None:
            m &= np.asarray(mask, bool)
        if sigma is not None:
            s = np.asarray(sigma, float)
            bad = m & ~(np.isfinite(s) & (s > 0))
            if bad.any():
                raise DataValidationError(
                    f"{int(bad.sum())} used records have a missing or non-positive uncertainty.",
                    source=source, variable=f"{variable}_sigma",
                    fix="mask those records or use the flux-magnitude error model.")
            s = np.where(m, s, 1.0)
        if not m.any():
            raise DataValidationError("no usable observation (all NaN or failing QC).",
                                      source=source, variable=variable,
                                      fix="check the QC threshold and the period.")
        idx = np.arange(v.size)
        steps = idx if time_index is None else np.asarray(time_index, int)
        if steps.shape != v.shape or np.any(np.diff(steps) <= 0):
            raise DataValidationError("time_index must be increasing with one entry per record.",
                                      source=source, variable=variable, fix="pass sorted steps.")
        last = np.maximum.accumulate(np.where(m, idx, -1))
        prev = np.concatenate([[-1], last[:-1]])
        lag = np.where(prev >= 0, steps - steps[np.clip(prev, 0, None)], 0)
        return cls(values=jnp.asarray(np.where(m, v, 0.0)), mask=jnp.asarray(m),
                   prev_index=jnp.asarray(prev), lag=jnp.asarray(lag),
                   sigma=None if sigma is None else jnp.asarray(s), variable=variable)

    @classmethod
    def from_observations(cls, observations, name: str | None = None, *, time_index=None,
                          source: str = "<memory>") -> "FluxObservations":
        """The stream of column ``name`` of an :class:`assimilation.observations.Observations`
        (the one observation type of filters and calibration): values and mask as they are,
        per-record sd ``sigma = sqrt(variance)`` (``ErrorModel(sigma_from="record")`` uses
        it), ``variable = name`` (the model output or operator the column observes).
        ``name`` may be omitted for a single-column ``Observations``; ``time_index`` as in
        :meth:`from_arrays`."""
        names = tuple(observations.names)
        if name is None:
            if len(names) != 1:
                raise DataValidationError(f"has {len(names)} columns {names}.", source=source,
                                          variable="observations",
                                          fix="name the column: from_observations(obs, 'nee').")
            name = names[0]
        col = observations.column(name)
        mask = np.asarray(col.mask)[:, 0]
        values = np.where(mask, np.asarray(col.values)[:, 0], np.nan)
        sigma = np.sqrt(np.asarray(col.variance)[:, 0])
        return cls.from_arrays(values, mask=mask, sigma=sigma, time_index=time_index,
                               variable=name, source=source)

    @property
    def n_used(self) -> int:
        return int(np.asarray(self.mask).sum())


def as_streams(observations) -> list[FluxObservations]:
    """A list of :class:`FluxObservations` from one stream, a list of streams, or an
    :class:`assimilation.observations.Observations` (one stream per column)."""
    if isinstance(observations, FluxObservations):
        return [observations]
    if isinstance(observations, (list, tuple)):
        return [s for o in observations for s in as_streams(o)]
    if hasattr(observations, "variance") and hasattr(observations, "names"):
        return [FluxObservations.from_observations(observations, n) for n in observations.names]
    raise TypeError(f"observations of type {type(observations).__name__}: give FluxObservations "
                    "or assimilation.observations.Observations.")


def gaussian_log_likelihood(predicted, observations: FluxObservations, extra_variance=0.0):
    """log N(y; f, sigma^2 + extra_variance) summed over the used records.

    ``sigma`` is the per-record sd of the stream (0 where the stream has none), and
    ``extra_variance`` (scalar or (T,), squared unit) a model-discrepancy variance: the
    total-error Gaussian of a flux calibration whose random error is known and whose
    structural error is calibrated (Kennedy & O'Hagan 2001, JRSS B 63, 425; flux-dependent
    sigma, Lasslop et al. 2008). Pure and differentiable in ``predicted`` and
    ``extra_variance``."""
    o = observations
    var = (0.0 if o.sigma is None else o.sigma ** 2) + extra_variance
    res = predicted - o.values
    lp = -0.5 * res ** 2 / var - 0.5 * jnp.log(2 * jnp.pi * var)
    return jnp.sum(jnp.where(o.mask, lp, 0.0))


@dataclass(frozen=True)
class ErrorModel:
    """Likelihood settings (static). See the module docstring for the equations.

    Attributes
    ----------
    family : "gaussian", "laplace" or "student_t".
    a, b_pos, b_neg : flux-magnitude error model (umol m-2 s-1, 1, 1).
    sigma_from : "model", "obs" or "record" (per-record sd in the observations).
    df : Student-t degrees of freedom (> 2); None learns it (prior Gamma(2, 0.1) + 2).
    ar1 : add the AR(1) model-error term; rho ~ Uniform(0, 1) unless ``rho`` is given.
    rho : fixed AR(1) coefficient (used when ``ar1``), or None to learn it.
    learn_inflation : multiply sigma by a learned factor ~ LogNormal(0, 0.5): lets the
        data say how much model error adds to the random measurement error.
    """

    family: str = "gaussian"
    a: float = 1.0
    b_pos: float = 0.0
    b_neg: float = 0.0
    sigma_from: str = "obs"
    df: Optional[float] = 5.0
    ar1: bool = False
    rho: Optional[float] = None
    learn_inflation: bool = False

    def __post_init__(self):
        if self.family not in FAMILIES:
            raise ValueError(f"ErrorModel.family={self.family!r}; choose one of {FAMILIES}.")
        if self.sigma_from not in ("model", "obs", "record"):
            raise ValueError("ErrorModel.sigma_from must be 'model', 'obs' or 'record'.")
        if not self.a > 0:
            raise ValueError("ErrorModel.a (sigma at zero flux) must be > 0.")
        if self.family == "student_t" and self.df is not None and not self.df > 2:
            raise ValueError("Student-t df must be > 2 so that sigma is the standard deviation.")

    def sigma(self, predicted, obs: FluxObservations):
        """Random-error sd per record (umol m-2 s-1)."""
        if self.sigma_from == "record":
            if obs.sigma is None:
                raise ValueError("sigma_from='record' needs FluxObservations.sigma.")
            return obs.sigma
        f = predicted if self.sigma_from == "model" else obs.values
        return self.a + self.b_pos * jnp.maximum(f, 0.0) + self.b_neg * jnp.maximum(-f, 0.0)

    def observe(self, name: str, predicted, obs: FluxObservations, *, observed=True):
        """Add the likelihood of ``obs`` given ``predicted`` (shape (T,)) to the model.

        With ``observed=False`` the site is sampled (prior/posterior predictive, SBC).
        """
        sigma = self.sigma(predicted, obs)
        if self.learn_inflation:
            sigma = sigma * numpyro.sample(f"{name}_inflation", dist.LogNormal(0.0, 0.5))
        df = self.df
        if self.family == "student_t" and df is None:
            df = 2.0 + numpyro.sample(f"{name}_df_minus_2", dist.Gamma(2.0, 0.1))
        rho = 0.0
        if self.ar1:
            rho = (numpyro.sample(f"{name}_rho", dist.Uniform(0.0, 1.0))
                   if self.rho is None else self.rho)
        d = FluxLikelihood(predicted, sigma, obs.mask, obs.prev_index, obs.lag, family=self.family,
                           df=1.0 if df is None else df, rho=rho, ar1=self.ar1)
        return numpyro.sample(name, d, obs=obs.values if observed else None)


def _unit_logpdf(x, family, df):
    """log density of a unit-variance standardised residual."""
    if family == "gaussian":
        return -0.5 * x * x - 0.5 * jnp.log(2 * jnp.pi)
    if family == "laplace":
        b = 1.0 / jnp.sqrt(2.0)
        return -jnp.abs(x) / b - jnp.log(2 * b)
    s = jnp.sqrt((df - 2.0) / df)          # student-t scale giving unit variance
    z = x / s
    return (gammaln((df + 1) / 2) - gammaln(df / 2) - 0.5 * jnp.log(df * jnp.pi)
            - (df + 1) / 2 * jnp.log1p(z * z / df) - jnp.log(s))


def _unit_sample(key, shape, family, df):
    if family == "gaussian":
        return jax.random.normal(key, shape)
    if family == "laplace":
        return jax.random.laplace(key, shape) / jnp.sqrt(2.0)
    return jax.random.t(key, df, shape) * jnp.sqrt((df - 2.0) / df)


class FluxLikelihood(dist.Distribution):
    """Joint density of one flux series (event shape (T,)) under an :class:`ErrorModel`.

    ``log_prob`` sums over records with ``mask``; ``sample`` draws a full series (the
    AR(1) process runs over every step, so gaps are handled exactly for the Gaussian
    family).
    """

    support = constraints.real_vector

    def __init__(self, loc, scale, mask, prev_index, lag, *, family="gaussian", df=5.0, rho=0.0,
                 ar1=False, validate_args=None):
        self.loc, self.scale = jnp.asarray(loc), jnp.asarray(scale)
        self.used, self.prev_index = jnp.asarray(mask), jnp.asarray(prev_index)
        self.lag = jnp.asarray(lag)
        self.family, self.df, self.rho, self.ar1 = family, df, rho, ar1
        shape = jnp.broadcast_shapes(jnp.shape(self.loc), jnp.shape(self.scale))
        super().__init__(batch_shape=shape[:-1], event_shape=shape[-1:],
                         validate_args=validate_args)

    def log_prob(self, value):
        eta = (value - self.loc) / self.scale
        if self.ar1:
            has_prev = self.prev_index >= 0
            rho_k = jnp.where(has_prev, jnp.power(self.rho, jnp.maximum(self.lag, 1).astype(eta.dtype)), 0.0)
            s = jnp.sqrt(jnp.clip(1.0 - rho_k ** 2, 1e-12, None))
            eta_prev = eta[..., jnp.clip(self.prev_index, 0, None)]
            innov = (eta - rho_k * eta_prev) / s
            lp = _unit_logpdf(innov, self.family, self.df) - jnp.log(s) - jnp.log(self.scale)
        else:
            lp = _unit_logpdf(eta, self.family, self.df) - jnp.log(self.scale)
        return jnp.sum(jnp.where(self.used, lp, 0.0), axis=-1)

    def sample(self, key, sample_shape=()):
        shape = tuple(sample_shape) + self.batch_shape + self.event_shape
        e = _unit_sample(key, shape, self.family, self.df)
        if self.ar1:
            rho = jnp.asarray(self.rho)
            c = jnp.sqrt(1.0 - rho ** 2)

            def step(prev, e_t):
                eta = rho * prev + c * e_t
                return eta, eta
            e_t = jnp.moveaxis(e, -1, 0)
            _, eta = jax.lax.scan(step, e_t[0], e_t[1:])
            e = jnp.moveaxis(jnp.concatenate([e_t[:1], eta], axis=0), 0, -1)
        return self.loc + self.scale * e


def flux_sigma(flux, a: float, b_pos: float, b_neg: float):
    """sigma = a + b_pos max(F, 0) + b_neg max(-F, 0) (umol m-2 s-1)."""
    f = np.asarray(flux, float)
    return a + b_pos * np.maximum(f, 0.0) + b_neg * np.maximum(-f, 0.0)


def expected_flux(values, times, *, window_days: int = 15):
    """Noise-free proxy of the flux for the error model: the mean diurnal course of the
    observations (same hour of day within +-``window_days``/2 days; Falge et al. 2001 MDC),
    computed by a centred rolling mean per hour of day (NaN-aware).

    values : (T,) observed flux (NaN = missing); times : (T,) datetime64.
    Returns (T,) expected flux; hours never observed in the window get the overall mean.
    """
    import pandas as pd
    s = pd.Series(np.asarray(values, float), index=pd.DatetimeIndex(times))
    day = s.index.floor("D")
    out = pd.Series(np.nan, index=s.index)
    for hour, g in s.groupby(s.index.hour):          # 24 groups (hour of day), not time steps
        daily = g.groupby(day[s.index.hour == hour]).mean()
        daily = daily.reindex(pd.date_range(daily.index.min(), daily.index.max(), freq="D"))
        sm = daily.rolling(window_days, center=True, min_periods=1).mean()
        out[g.index] = sm.reindex(g.index.floor("D")).to_numpy()
    return out.fillna(np.nanmean(values)).to_numpy()


def fit_flux_error_model(nee, par, temperature, *, steps_per_day: int,
                         max_dpar: float = 75.0, max_dt: float = 3.0, n_bins: int = 12):
    """Fit sigma = a + b_pos F+ + b_neg F- by the 24-h paired-observation method.

    Pairs of measured records exactly one day apart under similar conditions
    (|dPAR| < ``max_dpar`` umol m-2 s-1, |dT| < ``max_dt`` degC; Hollinger & Richardson
    2005; Richardson et al. 2006) differ by the random error only: sigma(eps) =
    sigma(delta)/sqrt(2). Within flux bins (by the pair mean) sigma(delta) is estimated
    robustly as sqrt(2) * mean |delta - median(delta)| (Laplace), then sigma is regressed
    on the bin-mean flux with separate slopes for uptake and release (non-negative
    least squares).

    Returns
    -------
    dict with ``a``, ``b_pos``, ``b_neg`` (umol m-2 s-1, 1, 1), ``n_pairs`` and the bin
    table (``bins``: DataFrame with flux, sigma, n).
    """
    import pandas as pd
    from scipy.optimize import nnls
    y, q, t = (np.asarray(x, float) for x in (nee, par, temperature))
    k = int(steps_per_day)
    y1, y2 = y[:-k], y[k:]
    ok = (np.isfinite(y1) & np.isfinite(y2) & (np.abs(q[:-k] - q[k:]) < max_dpar)
          & (np.abs(t[:-k] - t[k:]) < max_dt))
    if ok.sum() < 50:
        raise DataValidationError(f"only {int(ok.sum())} 24-h pairs under similar conditions.",
                                  variable="nee", fix="use a longer record or give a, b by hand.")
    delta, mean = (y1 - y2)[ok], 0.5 * (y1 + y2)[ok]
    edges = np.unique(np.quantile(mean, np.linspace(0, 1, n_bins + 1)))
    which = np.clip(np.searchsorted(edges, mean, side="right") - 1, 0, len(edges) - 2)
    rows = []
    for b in range(len(edges) - 1):
        d = delta[which == b]
        if d.size >= 10:
            sd_delta = np.sqrt(2.0) * np.mean(np.abs(d - np.median(d)))
            rows.append({"flux": float(np.mean(mean[which == b])),
                         "sigma": float(sd_delta / np.sqrt(2.0)), "n": int(d.size)})
    bins = pd.DataFrame(rows)
    f = bins["flux"].to_numpy()
    design = np.column_stack([np.ones_like(f), np.maximum(f, 0), np.maximum(-f, 0)])
    w = np.sqrt(bins["n"].to_numpy())
    coef, _ = nnls(design * w[:, None], bins["sigma"].to_numpy() * w)
    return {"a": float(max(coef[0], 0.1)), "b_pos": float(coef[1]), "b_neg": float(coef[2]),
            "n_pairs": int(ok.sum()), "bins": bins}
