"""Flax NNX emulator networks with physics in the output heads.

Pointwise emulator (VPRM-type, no state)
----------------------------------------
Inputs per point ("raw" columns, :data:`VPRM_INPUTS`): the forcing (air temperature
degC, PAR umol m-2 s-1, EVI, LSWI, and the per-pixel statistics EVI threshold, LSWI
min/max), the three class-rule flags of :class:`process_models.vprm.ClassRules`
(so one network serves every vegetation class) and the eight class parameters
(lam, par0, alpha, beta, tmin, topt, tmax, tlow): **parameter conditioning** by
concatenation. :func:`vprm_features` adds fixed, parameter-free transforms a scientist
would use anyway (T - Tmin, T - Topt, T - Tmax, T - Tlow, EVI - threshold, the two
LSWI water-scalar ratios, log lam, log PAR0, PAR/(PAR + PAR0)); the features are
normalised with the stored :class:`~emulator.normalise.Normaliser` and fed to an MLP
(SiLU). Heads, so the physics holds by construction for any weights:

    GPP  = lam * PAR / (1 + PAR/PAR0) * softplus(z_1)     ("light_use" head, default)
         = s_GPP * softplus(z_1)                          ("softplus" head)
    Reco = s_Reco * softplus(z_2)
    NEE  = Reco - GPP

The "light_use" head keeps VPRM's rectangular-hyperbola light response (Mahadevan et
al. 2008, eq. 1) explicit and lets the network learn the product of the scalars
Tscale * Wscale * Pscale * EVI (a bounded, dimensionless quantity); GPP >= 0 and
Reco >= 0 always, NEE = Reco - GPP exactly.

Step emulator (stateful models)
-------------------------------
``(state_t, forcing_t, params) -> (state_{t+1}, fluxes_t)`` on flat vectors, applied
under ``lax.scan`` like the process model's ``step``. State heads: a component with
bounds [lower, upper] (e.g. soil water between residual and saturated water content,
m3 m-3) is updated in logit space, next = lower + (upper - lower) * sigmoid(logit(f) +
z) with f the current fraction of the range, so it can never leave the bounds and the
identity map is z = 0; unbounded components are residual, next = s + scale * z. Flux
heads: softplus for names in ``nonnegative`` (GPP, Reco, ET, ...), linear otherwise,
and NEE = Reco - GPP when the three names are present.
"""
from __future__ import annotations

from typing import Sequence

import jax
import jax.numpy as jnp
from flax import nnx

from .normalise import Normaliser

VPRM_FORCING_INPUTS = ("temperature", "par", "evi", "lswi", "evi_threshold", "lswi_min", "lswi_max")
VPRM_RULE_INPUTS = ("pscale_always_one", "pscale_always_lswi", "xeric")
VPRM_PARAM_INPUTS = ("lam", "par0", "alpha", "beta", "tmin", "topt", "tmax", "tlow")
VPRM_INPUTS = VPRM_FORCING_INPUTS + VPRM_RULE_INPUTS + VPRM_PARAM_INPUTS
"""Raw input columns of the VPRM pointwise emulator, in order."""


def vprm_features(x):
    """Fixed feature transform of the raw VPRM inputs ``x`` (..., 18) -> (..., 30).

    Units as in :class:`process_models.vprm.VPRMForcing` / ``VPRMParams``; PAR is scaled
    by 1/1000 (umol m-2 s-1 -> mmol m-2 s-1) to keep magnitudes O(1).
    """
    (t, par, evi, lswi, thr, lmin, lmax, one, lsw, xer,
     lam, par0, alpha, beta, tmin, topt, tmax, tlow) = [x[..., i] for i in range(18)]
    span = jnp.maximum(lmax - lmin, 0.01)
    feats = [t, par / 1000.0, evi, lswi, thr, lmin, lmax, evi - thr, (lswi - lmin) / span,
             (1.0 + lswi) / jnp.maximum(1.0 + lmax, 0.01), one, lsw, xer,
             jnp.log(jnp.maximum(lam, 1e-6)), jnp.log(jnp.maximum(par0, 1e-6)), alpha, beta, tmin, topt, tmax, tlow,
             t - tmin, t - topt, t - tmax, t - tlow, par / (par + jnp.maximum(par0, 1e-6)),
             alpha * jnp.maximum(t, tlow) + beta, (t - tmin) * (t - tmax) / 100.0,
             (lswi + 1.0) / 2.0, jnp.maximum(evi, 0.0)]
    return jnp.stack(feats, axis=-1)


N_VPRM_FEATURES = 30


class MLP(nnx.Module):
    """Multilayer perceptron with SiLU activations; the last layer starts at 0.1x the
    default initialisation so that the heads start near their neutral values."""

    def __init__(self, n_in: int, hidden: Sequence[int], n_out: int, *, rngs: nnx.Rngs):
        sizes = (n_in,) + tuple(hidden)
        self.layers = nnx.List([nnx.Linear(a, b, rngs=rngs) for a, b in zip(sizes[:-1], sizes[1:])])
        self.out = nnx.Linear(sizes[-1], n_out, rngs=rngs,
                              kernel_init=nnx.initializers.variance_scaling(0.01, "fan_in", "normal"))

    def __call__(self, x):
        for layer in self.layers:
            x = jax.nn.silu(layer(x))
        return self.out(x)


class PointwiseEmulator(nnx.Module):
    """VPRM pointwise emulator: raw inputs (..., 18) -> dict(gpp, reco, nee) (...,),
    umol m-2 s-1 (see the module docstring for the heads)."""

    def __init__(self, hidden: Sequence[int], feature_normaliser: Normaliser, *, gpp_scale: float,
                 reco_scale: float, gpp_head: str = "light_use", rngs: nnx.Rngs):
        if gpp_head not in ("light_use", "softplus"):
            raise ValueError(f"gpp_head={gpp_head!r}; choose 'light_use' or 'softplus'.")
        self.mlp = MLP(N_VPRM_FEATURES, hidden, 2, rngs=rngs)
        self.feature_normaliser = feature_normaliser
        self.gpp_scale, self.reco_scale, self.gpp_head = float(gpp_scale), float(reco_scale), gpp_head

    def __call__(self, x):
        z = self.mlp(self.feature_normaliser.forward(vprm_features(x)))
        if self.gpp_head == "light_use":
            par, lam, par0 = x[..., 1], x[..., 10], x[..., 11]
            gpp = lam * par / (1.0 + par / jnp.maximum(par0, 1e-6)) * jax.nn.softplus(z[..., 0])
        else:
            gpp = self.gpp_scale * jax.nn.softplus(z[..., 0])
        reco = self.reco_scale * jax.nn.softplus(z[..., 1])
        return {"gpp": gpp, "reco": reco, "nee": reco - gpp}


class StepEmulator(nnx.Module):
    """Step emulator ``(state, forcing_t, params) -> (next_state, fluxes)`` on flat
    vectors (..., n_state), (..., n_forcing), (..., n_params).

    Parameters
    ----------
    input_normaliser : Normaliser over ``concat([state, forcing, params])``.
    state_lower, state_upper : per state component, physical bounds (``None`` for
        unbounded components, which get a residual update).
    state_scale : per component, the increment scale of the residual update.
    flux_names, flux_scale : output fluxes and their scales (physical units).
    nonnegative : flux names with a softplus head (>= 0).
    """

    def __init__(self, n_state: int, n_forcing: int, n_params: int, hidden: Sequence[int],
                 input_normaliser: Normaliser, *, state_lower: Sequence, state_upper: Sequence,
                 state_scale: Sequence[float], flux_names: Sequence[str], flux_scale: Sequence[float],
                 nonnegative: Sequence[str] = ("gpp", "reco", "et"), rngs: nnx.Rngs):
        self.n_state, self.flux_names = n_state, tuple(flux_names)
        self.mlp = MLP(n_state + n_forcing + n_params, hidden, n_state + len(flux_names), rngs=rngs)
        self.input_normaliser = input_normaliser
        bounded = tuple(lo is not None and hi is not None for lo, hi in zip(state_lower, state_upper))
        self.bounded = bounded
        self.lower = tuple(float(lo) if b else 0.0 for lo, b in zip(state_lower, bounded))
        self.upper = tuple(float(hi) if b else 1.0 for hi, b in zip(state_upper, bounded))
        self.state_scale = tuple(map(float, state_scale))
        self.flux_scale = tuple(map(float, flux_scale))
        self.nonnegative = tuple(n in set(nonnegative) for n in self.flux_names)

    def __call__(self, state, forcing, params):
        x = jnp.concatenate([state, jnp.broadcast_to(forcing, state.shape[:-1] + forcing.shape[-1:]),
                             jnp.broadcast_to(params, state.shape[:-1] + params.shape[-1:])], axis=-1)
        z = self.mlp(self.input_normaliser.forward(x))
        zs, zf = z[..., :self.n_state], z[..., self.n_state:]
        dt = state.dtype
        lo, hi = jnp.asarray(self.lower, dt), jnp.asarray(self.upper, dt)
        frac = jnp.clip((state - lo) / (hi - lo), 1e-6, 1.0 - 1e-6)
        bounded_next = lo + (hi - lo) * jax.nn.sigmoid(jnp.log(frac) - jnp.log1p(-frac) + zs)
        residual_next = state + jnp.asarray(self.state_scale, dt) * zs
        next_state = jnp.where(jnp.asarray(self.bounded), bounded_next, residual_next)
        scale = jnp.asarray(self.flux_scale, dt)
        fl = jnp.where(jnp.asarray(self.nonnegative), scale * jax.nn.softplus(zf), scale * zf)
        fluxes = {n: fl[..., i] for i, n in enumerate(self.flux_names)}
        if {"gpp", "reco", "nee"} <= set(fluxes):
            fluxes["nee"] = fluxes["reco"] - fluxes["gpp"]
        return next_state, fluxes
