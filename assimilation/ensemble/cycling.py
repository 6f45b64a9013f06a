"""Sequential ensemble filtering: forecast -> analysis cycles under ``lax.scan``.

One cycle k (DAPPER convention: no observation at t = 0, each cycle starts with a
forecast):

1. forecast every member with ``model(member, inputs_k)`` (vmapped), add optional
   Gaussian model noise;
2. flag non-finite members (state or predicted observations) and replace them with
   copies of healthy members (``n_failed`` is recorded);
3. optional adaptive prior inflation (Li et al. 2009 / Miyoshi 2011);
4. analysis (ETKF, EnKF, DEnKF, EnSRF or LETKF), optionally in transformed (log/logit)
   variables;
5. posterior inflation: multiplicative (scalar, or per variable -- e.g. a separate
   factor for augmented parameters, see :func:`augmented_inflation`), then RTPS/RTPP.

The per-step Gaussian log-likelihood of the forecast, log N(y_k; ybar_f, Yf cov + R),
is returned for parameter inference (:mod:`.likelihood`).

Joint state-parameter estimation by augmentation (e.g. Anderson 2001; DAPPER
``param_estim``): the member is ``Augmented(state, params, record)``, the parameters
persist through the forecast (:func:`augmented_model`,
:func:`~assimilation.ensemble.interface.interface_forecast`) and are updated through
their ensemble cross-covariance with the predicted observations; ``record`` keeps what
the observation operator reads from the last forecast (e.g. cycle-mean fluxes).

Observations are an :class:`~assimilation.observations.Observations` (values, mask and
error variances together) or, equivalently, arrays ``(observations, obs_var, obs_mask)``.
"""
from __future__ import annotations

from functools import partial
from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from assimilation.observations.types import Observations

from . import inflation as _infl
from .analysis import (ETKF, EnsembleTransform, apply_transform, flatten_ensemble,
                       gaussian_log_likelihood, member_ok, obs_space,
                       replace_failed_members, unflatten_ensemble)

__all__ = ["FilterResult", "ensemble_filter", "Augmented", "augmented_model",
           "augmented_inflation", "member_vector", "split_step_result"]


class FilterResult(NamedTuple):
    """Output of :func:`ensemble_filter`; leading axis = cycle (T). Means/spreads are
    pytrees shaped like one member."""
    forecast_mean: Any
    forecast_spread: Any
    analysis_mean: Any
    analysis_spread: Any
    log_likelihood: jax.Array      # (T,)
    n_failed: jax.Array            # (T,) members replaced
    inflation: jax.Array           # (T,) adaptive variance-inflation factor used (1 if off)
    final_ensemble: Any
    analysis_ensembles: Optional[jax.Array]   # (T, N, Nx) flattened, if stored
    transforms: Optional[EnsembleTransform]   # stacked (T, ...), if stored (global methods)
    forecast_ensembles: Optional[jax.Array] = None   # (T, N, Nx) flattened, if stored


class Augmented(NamedTuple):
    """Augmented member for joint state-parameter estimation: the model ``state``, the
    estimated ``params`` (a parameter pytree, a vector mapped by a
    :class:`~assimilation.calibration.ParameterSubset`, or None for fixed parameters) and
    the ``record`` of the last forecast (what the observation operator reads; None if
    unused)."""
    state: Any
    params: Any
    record: Any = None


def split_step_result(result, state):
    """``(state, outputs)`` from what a step returned: an interface step returns
    ``(state, outputs)``, an older step the new state only (outputs None). The two are
    told apart by structure: a pair whose first element has the pytree structure of
    ``state`` is ``(state, outputs)`` (a state can never have the structure of its own
    first component)."""
    st = jax.tree_util.tree_structure(state)
    if (isinstance(result, tuple) and len(result) == 2
            and jax.tree_util.tree_structure(result[0]) == st
            and jax.tree_util.tree_structure(result) != st):
        return result[0], result[1]
    return result, None


def augmented_model(step: Callable, record: Optional[Callable] = None) -> Callable:
    """A model of :class:`Augmented` members with persistent parameters from one step.

    ``step(state, inputs, params)`` returns ``(state, outputs)`` (the model interface,
    :class:`process_models.interface.Model` ``.step``) or the new state only.
    ``record(outputs) -> pytree`` keeps what the observation operator needs in
    ``member.record`` (its structure must match the initial ensemble's record); without
    it the outputs are dropped and the record is carried unchanged. For several model
    steps per cycle use :func:`~assimilation.ensemble.interface.interface_forecast`."""
    def model(member: Augmented, inputs):
        state, outputs = split_step_result(step(member.state, inputs, member.params),
                                           member.state)
        rec = member.record
        if record is not None:
            if outputs is None:
                raise ValueError("record= needs a step that returns (state, outputs).")
            rec = jax.tree_util.tree_map(lambda new, old: jnp.asarray(new, jnp.asarray(old).dtype),
                                         record(outputs), member.record)
        return Augmented(state, member.params, rec)
    return model


def member_vector(member: Augmented, state=0.0, params=0.0, record=None,
                  state_fields=None) -> jax.Array:
    """Per-variable vector (flattened member order, shape (Nx,)) with one value per block
    of an :class:`Augmented` member (``record`` None: the ``state`` value), and
    ``state_fields = {field: value}`` for single fields of a dataclass/NamedTuple state
    (e.g. model noise on soil water only). For per-variable ``rtps``, ``rtpp``,
    ``inflation`` and ``model_noise`` of :func:`ensemble_filter`. ``member`` is one
    member (no ensemble axis)."""
    tm = jax.tree_util.tree_map
    full = lambda tree, v: tm(lambda a: jnp.full(jnp.shape(a), v, jnp.result_type(float)),  # noqa: E731
                              tree)
    st = full(member.state, state)
    for name, v in (state_fields or {}).items():
        field = full(getattr(member.state, name), v)
        st = st.replace(**{name: field}) if hasattr(st, "replace") else st._replace(**{name: field})
    rec = full(member.record, state if record is None else record)
    return ravel_pytree(Augmented(st, full(member.params, params), rec))[0]


def augmented_inflation(member: Augmented, state_factor=1.0, params_factor=1.0,
                        record_factor=None):
    """Per-variable inflation vector (flattened member order) with separate factors for
    the state and parameter blocks (the record, if any, gets ``record_factor``, default
    the state factor)."""
    return member_vector(member, state_factor, params_factor, record_factor)


def _is_zero(w) -> bool:
    """True if ``w`` is a concrete scalar/array of zeros (relaxation switched off)."""
    if w is None:
        return True
    try:
        return not bool(np.any(np.asarray(w) != 0))
    except Exception:   # a tracer (rtps inside an outer jit/grad): keep it on
        return False


def unpack_observations(caller: str, observations, obs_var, obs_operator, obs_mask):
    """The two call forms of the filters as arrays: ``(observations, obs_var, h, obs_mask)``
    from an :class:`~assimilation.observations.Observations` (its values, variances and
    mask, combined with ``obs_mask``; ``h`` may be given in the ``obs_var`` position) or
    from arrays (returned unchanged). Raises ``TypeError`` naming ``caller`` for a missing
    operator or variance, or a variance given twice."""
    if isinstance(observations, Observations):
        if callable(obs_var) and obs_operator is None:
            obs_var, obs_operator = None, obs_var
        if obs_var is not None:
            raise TypeError(f"{caller}: with Observations the error variances come from "
                            "observations.variance; do not pass obs_var.")
        mask = observations.mask
        if obs_mask is not None:
            mask = mask & jnp.asarray(obs_mask).astype(bool)
        observations, obs_var, obs_mask = observations.values, observations.variance, mask
    if obs_operator is None or obs_var is None:
        raise TypeError(f"{caller} needs obs_var and obs_operator (or Observations and "
                        "obs_operator).")
    return observations, obs_var, obs_operator, obs_mask


def ensemble_filter(key, model: Callable, ensemble, observations, obs_var=None,
                    obs_operator: Optional[Callable] = None, *, method=ETKF(), obs_mask=None,
                    inputs=None, inflation=1.0, rtps=0.0, rtpp=0.0,
                    adaptive: Optional[_infl.AdaptiveInflation] = None, model_noise=None,
                    transform=None, postprocess: Optional[Callable] = None,
                    store: bool = False) -> FilterResult:
    """Cycle an ensemble filter over T observation times.

    Called as ``ensemble_filter(key, model, ensemble, obs, h, ...)`` with an
    :class:`~assimilation.observations.Observations` ``obs`` (values, mask and variances
    from it), or ``ensemble_filter(key, model, ensemble, y, obs_var, h, ...)`` with arrays;
    both give the same result.

    Parameters
    ----------
    key : PRNG key (common random numbers: a fixed key makes the run deterministic).
    model : ``model(member, inputs_k) -> member`` for one cycle (one member pytree), e.g.
        :func:`~assimilation.ensemble.interface.interface_forecast` of a model's ``step``.
    ensemble : initial ensemble, pytree with leading member axis N.
    observations : :class:`~assimilation.observations.Observations` (T, Ny), or a (T, Ny)
        array with NaN = missing.
    obs_var : with an array ``observations``: (Ny,) or (T, Ny) observation-error variances
        (diagonal R); must be None with ``Observations`` (its ``variance`` is used).
    obs_operator : ``h(member) -> (Ny,)`` (with ``Observations`` it may be the fifth
        positional argument).
    method : analysis method object (default ETKF()).
    obs_mask : optional (T, Ny) 0/1 mask; with ``Observations`` it is combined (logical
        and) with ``observations.mask`` (e.g. all zeros for a free run).
    inputs : optional pytree with leading axis T passed to ``model``.
    inflation : posterior multiplicative anomaly factor, scalar or (Nx,) per variable.
    rtps, rtpp : relaxation weights in [0, 1], scalar or (Nx,) per variable (flattened
        member order, e.g. from :func:`member_vector`); traced values are allowed
        (no recompilation when they change).
    adaptive : :class:`~assimilation.ensemble.inflation.AdaptiveInflation` (prior
        inflation, estimated online) or None.
    model_noise : additive Gaussian forecast-noise std, scalar or (Nx,), or None.
    transform : optional BoundedTransform (analysis in unbounded variables).
    postprocess : optional ``postprocess(ensemble) -> ensemble`` applied to the analysis
        ensemble (a member-first pytree, physical variables) after inflation/relaxation,
        e.g. clipping bounded states; must be jit-able. Note: it changes the ensemble the
        stored transforms refer to (the smoothers then use the unclipped transform).
    store : keep the forecast and analysis ensembles and the transforms (the latter two
        are needed by the smoothers).
    """
    observations, obs_var, obs_operator, obs_mask = unpack_observations(
        "ensemble_filter", observations, obs_var, obs_operator, obs_mask)
    return _ensemble_filter(key, model, ensemble, observations, obs_var, obs_operator,
                            method=method, obs_mask=obs_mask, inputs=inputs,
                            inflation=inflation,
                            rtps=jnp.zeros(()) if rtps is None else rtps,
                            rtpp=jnp.zeros(()) if rtpp is None else rtpp,
                            use_rtps=not _is_zero(rtps), use_rtpp=not _is_zero(rtpp),
                            adaptive=adaptive, model_noise=model_noise, transform=transform,
                            postprocess=postprocess, store=store)


@partial(jax.jit, static_argnames=("model", "obs_operator", "use_rtps", "use_rtpp",
                                   "postprocess", "store"))
def _ensemble_filter(key, model, ensemble, observations, obs_var, obs_operator, *, method,
                     obs_mask, inputs, inflation, rtps, rtpp, use_rtps, use_rtpp, adaptive,
                     model_noise, transform, postprocess, store) -> FilterResult:
    X0, unravel = flatten_ensemble(ensemble)
    n, nx = X0.shape
    dtype = X0.dtype
    T = observations.shape[0]
    observations = jnp.asarray(observations, dtype)
    ny = observations.shape[1]
    obs_var = jnp.broadcast_to(jnp.asarray(obs_var, dtype), (T, ny))
    mask = (jnp.ones((T, ny), dtype) if obs_mask is None
            else jnp.asarray(obs_mask).astype(dtype))
    fwd = (lambda x: x) if transform is None else transform.forward
    inv = (lambda z: z) if transform is None else transform.inverse
    h = lambda z: jnp.asarray(obs_operator(unravel(inv(z))), dtype)  # noqa: E731
    infl_vec = jnp.asarray(inflation, dtype)
    global_method = not hasattr(method, "local_update")
    ad0 = adaptive if adaptive is not None else _infl.AdaptiveInflation()
    ad0 = jax.tree_util.tree_map(lambda v: jnp.asarray(v, dtype), ad0)

    def cycle(carry, xs):
        X, ad, k = carry
        y, m, r, inp = xs
        k, k_noise, k_fail, k_method = jax.random.split(k, 4)
        Xf = jax.vmap(lambda x: ravel_pytree(model(unravel(x), inp))[0].astype(dtype))(X)
        if model_noise is not None:
            Xf = Xf + jnp.asarray(model_noise, dtype) * jax.random.normal(k_noise, Xf.shape,
                                                                           dtype)
        Z = jax.vmap(fwd)(Xf)
        Y = jax.vmap(h)(Z)
        ok = member_ok(Z, Y, m)
        Z, Y = replace_failed_members(k_fail, Z, ok, Y)
        os = obs_space(Y, y, r, m)
        ll = gaussian_log_likelihood(os)
        lam = jnp.ones((), dtype)
        if adaptive is not None:
            ad = _infl.adaptive_update(ad, os.S, os.d, os.mask)
            lam = ad.mean
            Z = _infl.multiplicative(Z, jnp.sqrt(lam))
            Y = jax.vmap(h)(Z)
            os = obs_space(Y, y, r, m)
        Zf_stats = jax.vmap(inv)(Z)
        if global_method:
            tr = method.transform(k_method, os)
            Za = apply_transform(Z, tr)
            if infl_vec.ndim == 0:
                tr = tr._replace(anomaly_transform=infl_vec * tr.anomaly_transform)
        else:
            tr = EnsembleTransform(jnp.zeros((n,), dtype), jnp.eye(n, dtype=dtype))
            Za = method.local_update(k_method, Z, os)
        Za = _infl.multiplicative(Za, infl_vec)
        if use_rtpp:
            Za = _infl.rtpp(Z, Za, jnp.asarray(rtpp, dtype))
        if use_rtps:
            Za = _infl.rtps(Z, Za, jnp.asarray(rtps, dtype))
        Xa = jax.vmap(inv)(Za)
        if postprocess is not None:
            Xa = flatten_ensemble(postprocess(unflatten_ensemble(Xa, unravel)))[0].astype(dtype)
        out = (Zf_stats.mean(0), Zf_stats.std(0, ddof=1), Xa.mean(0), Xa.std(0, ddof=1), ll,
               jnp.sum(~ok), lam, Xa if store else None, tr if (store and global_method)
               else None, Zf_stats if store else None)
        return (Xa, ad, k), out

    (XT, _, _), outs = jax.lax.scan(cycle, (X0, ad0, key), (observations, mask, obs_var,
                                                              inputs), length=T)
    fm, fs, am, as_, ll, nf, lam, ens, trs, fens = outs
    un = jax.vmap(unravel)
    return FilterResult(un(fm), un(fs), un(am), un(as_), ll, nf, lam,
                        unflatten_ensemble(XT, unravel), ens, trs, fens)
