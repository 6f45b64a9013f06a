"""Trained emulators behind the process models' call.

:class:`VPRMSurrogate` implements the model interface
(:class:`process_models.interface.Model`) and answers ``simulate(params, forcing) ->
VPRMOutputs`` with the same :class:`~process_models.vprm.VPRMParams` and
:class:`~process_models.vprm.VPRMForcing` pytrees as
:func:`process_models.vprm.simulate` (any leading shape, class fractions summed over
classes exactly like the process model: GPP = sum_c f_c GPP_c, Reco = sum_c f_c Reco_c,
NEE = Reco - GPP), plus ``initial_state`` / ``step`` for filters. It is pure, jit-able,
vmap-able and differentiable with respect to the parameters, so calibration and
assimilation code take it unchanged.

:class:`StepSurrogate` wraps a trained :class:`~emulator.networks.StepEmulator` and a
:class:`~emulator.generate.StatefulSpec` into ``initial_state`` / ``step`` /
``simulate`` on the model's own pytrees (state and parameters); fluxes come back as a
dict of arrays.

Files (no pickle): ``config.json`` (architecture, normalisation, training options,
parameter ranges, metrics) and ``weights.npz`` (arrays keyed by their path in the NNX
state; read with ``allow_pickle=False``).
"""
from __future__ import annotations

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .networks import VPRM_FORCING_INPUTS, PointwiseEmulator, StepEmulator
from .normalise import Normaliser


def _flatten(d, prefix=""):
    out = {}
    for k, v in d.items():
        key = f"{prefix}/{k}" if prefix else str(k)
        out.update(_flatten(v, key) if isinstance(v, dict) else {key: np.asarray(v)})
    return out


def save_weights(model: nnx.Module, path):
    """Write the NNX state of ``model`` to an ``.npz`` (keys = '/'-joined paths)."""
    np.savez(path, **_flatten(nnx.state(model).to_pure_dict()))


def load_weights(model: nnx.Module, path) -> nnx.Module:
    """Load weights written by :func:`save_weights` into ``model`` (same architecture)."""
    state = nnx.state(model)
    pure = state.to_pure_dict()
    with np.load(path, allow_pickle=False) as z:
        flat = dict(z)

    def fill(d, prefix=""):
        for k in list(d):
            key = f"{prefix}/{k}" if prefix else str(k)
            if isinstance(d[k], dict):
                fill(d[k], key)
            else:
                if key not in flat:
                    raise KeyError(f"weights file {path} lacks {key!r} (different architecture?)")
                d[k] = jnp.asarray(flat[key], dtype=jnp.asarray(d[k]).dtype)
    fill(pure)
    nnx.replace_by_pure_dict(state, pure)
    nnx.update(model, state)
    return model


class VPRMSurrogate:
    """Drop-in VPRM emulator (see the module docstring).

    Parameters
    ----------
    model : trained :class:`~emulator.networks.PointwiseEmulator`.
    config : dict saved with the model (``hidden``, ``gpp_head``, ``gpp_scale``,
        ``reco_scale``, ``feature_normaliser``, ``options`` (the VPRM options of the
        training targets), ``parameter_space``, metrics...).
    """

    SUPPORTED = {"respiration": "linear", "water_stress": "lswi", "light": "evi",
                 "respiration_temperature_floor": "tlow"}

    def __init__(self, model: PointwiseEmulator, config: dict):
        self.config = dict(config)
        self._graphdef, self._state = nnx.split(model)

    @property
    def model(self) -> PointwiseEmulator:
        return nnx.merge(self._graphdef, self._state)

    @classmethod
    def build(cls, config: dict, seed: int = 0) -> "VPRMSurrogate":
        """An untrained surrogate with the architecture in ``config``."""
        m = PointwiseEmulator(tuple(config["hidden"]), Normaliser.from_dict(config["feature_normaliser"]),
                              gpp_scale=config["gpp_scale"], reco_scale=config["reco_scale"],
                              gpp_head=config["gpp_head"], rngs=nnx.Rngs(seed))
        return cls(m, config)

    def _check_options(self, options):
        if options is None:
            return
        for k, v in self.SUPPORTED.items():
            if getattr(options, k) != v:
                raise ValueError(f"VPRMSurrogate was trained on VPRM with {k}={v!r}; "
                                 f"options.{k}={getattr(options, k)!r} is not emulated.")
        if options.pyvprm_compat:
            raise ValueError("VPRMSurrogate emulates the clipped (pyvprm_compat=False) model.")

    # --- the one model interface (process_models.interface.Model): parameters are those
    # of the emulated VPRM, so priors, bounds and names come from its table
    output_units = {"gpp": "umol m-2 s-1", "reco": "umol m-2 s-1", "nee": "umol m-2 s-1"}

    @property
    def process_model(self):
        """The emulated process model (:class:`process_models.vprm.VPRMModel`, table and
        classes from ``config['table']`` / ``config['classes']`` when set)."""
        from process_models.vprm import VPRMModel
        classes = self.config.get("classes")
        return VPRMModel(table=self.config.get("table", "pyvprm_modis"),
                         classes=None if classes is None else tuple(classes))

    def parameter_table(self):
        return self.process_model.parameter_table()

    def default_params(self, dtype=None):
        return self.process_model.default_params(dtype)

    def get_parameter(self, params, name: str):
        return self.process_model.get_parameter(params, name)

    def set_parameters(self, params, values):
        return self.process_model.set_parameters(params, values)

    def simulate(self, params, forcing, initial_state=None, *, options=None):
        """GPP, Reco, NEE (umol m-2 s-1) of shape ``S`` (the broadcast of the forcing
        fields and the class-fraction prefix), like :func:`process_models.vprm.simulate`.
        ``initial_state`` is accepted for the model interface and ignored (VPRM has no
        state). ``options`` is checked for variants the emulator does not cover (the
        smooth or exact switch setting itself is fixed at training: ``config['options']``)."""
        from process_models.vprm import VPRMOutputs

        self._check_options(options)
        model = self.model
        f = jnp.asarray(forcing.class_fractions)
        shape = jnp.broadcast_shapes(*[jnp.shape(getattr(forcing, k)) for k in VPRM_FORCING_INPUTS],
                                     jnp.shape(f)[:-1])
        dtype = jnp.result_type(forcing.temperature, params.lam)
        cols = [jnp.broadcast_to(jnp.asarray(getattr(forcing, k), dtype), shape) for k in VPRM_FORCING_INPUTS]
        r = params.rules
        gpp = reco = jnp.zeros(shape, dtype)
        for c in range(params.n_classes):
            per_class = [r.pscale_always_one, r.pscale_always_lswi, r.xeric, params.lam, params.par0,
                         params.alpha, params.beta, params.tmin, params.topt, params.tmax, params.tlow]
            per_class = [jnp.broadcast_to(jnp.asarray(a, dtype)[..., c], shape) for a in per_class]
            out = model(jnp.stack(cols + per_class, axis=-1))
            # classes without flux (absent parameters, e.g. lam = 0) contribute exactly 0
            on = jnp.broadcast_to(jnp.asarray(r.has_flux, dtype)[..., c] > 0.5, shape)
            w = jnp.broadcast_to(f[..., c], shape)
            gpp = gpp + jnp.where(on, w * out["gpp"], 0.0)
            reco = reco + jnp.where(on, w * out["reco"], 0.0)
        return VPRMOutputs(gpp=gpp, reco=reco, nee=reco - gpp)

    __call__ = simulate

    def initial_state(self, params, forcing):
        """VPRM is stateless: the empty tuple."""
        return ()

    def step(self, state, forcing_t, params, *, options=None):
        """``(state, forcing_t, params) -> (state, VPRMOutputs)`` (stateless)."""
        return state, self.simulate(params, forcing_t, options=options)

    def save(self, directory):
        """Write ``config.json`` and ``weights.npz`` into ``directory``."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text(json.dumps(self.config, indent=1, default=str))
        save_weights(self.model, d / "weights.npz")

    @classmethod
    def load(cls, directory) -> "VPRMSurrogate":
        d = Path(directory)
        config = json.loads((d / "config.json").read_text())
        s = cls.build(config)
        return cls(load_weights(s.model, d / "weights.npz"), config)


class StepSurrogate:
    """A trained step emulator behind ``initial_state`` / ``step`` / ``simulate`` of the
    stateful model described by ``spec`` (:class:`~emulator.generate.StatefulSpec`)."""

    def __init__(self, model: StepEmulator, spec, config: dict | None = None):
        self.spec, self.config = spec, dict(config or {})
        self._graphdef, self._state = nnx.split(model)

    @property
    def model(self) -> StepEmulator:
        return nnx.merge(self._graphdef, self._state)

    def initial_state(self, params, forcing):
        """The process model's initial state (the emulator starts where it starts)."""
        return self.spec.initial_state(params, forcing)

    def step_vectors(self, state_vec, forcing_vec, params_vec):
        """One emulated step on flat vectors: (next state (S,), fluxes dict)."""
        return self.model(state_vec, forcing_vec, params_vec)

    def simulate_vectors(self, params_vec, forcing_matrix, state0_vec):
        """``lax.scan`` of the emulator over forcing (T, F) from state (S,):
        states (T, S) after each step and fluxes dict of (T,) arrays."""
        model = self.model

        def body(s, f):
            s1, fl = model(s, f, params_vec)
            return s1, (s1, fl)

        _, (states, fluxes) = jax.lax.scan(body, state0_vec, forcing_matrix)
        return states, fluxes

    def _vec(self, x, fn):
        return jnp.asarray(x) if fn is None or isinstance(x, (jax.Array, np.ndarray)) else fn(x)

    def step(self, state, forcing_t, params):
        """``step(state, forcing_t, params) -> (state, fluxes)`` on the model's pytrees
        (state via the spec's converters; forcing and parameters as pytrees when the spec
        has ``forcing_to_vector`` / ``params_to_vector``, else as flat vectors)."""
        s1, fluxes = self.model(self.spec.state_to_vector(state),
                                self._vec(forcing_t, self.spec.forcing_to_vector),
                                self._vec(params, self.spec.params_to_vector))
        return self.spec.state_from_vector(s1), fluxes

    def simulate(self, params, forcing, initial_state=None):
        """Free rollout: ``lax.scan`` of :meth:`step` over the leading time axis of
        ``forcing`` (pytree with ``forcing_to_vector`` in the spec, or a (T, F) matrix)."""
        fm = forcing if isinstance(forcing, (jax.Array, np.ndarray)) else jax.vmap(self.spec.forcing_to_vector)(forcing)
        p = self._vec(params, self.spec.params_to_vector)
        if initial_state is None:
            pt = self.spec.params_from_vector(p)
            initial_state = self.spec.initial_state(pt, self.spec.forcing_from_matrix(jnp.asarray(fm)))
        states, fluxes = self.simulate_vectors(p, jnp.asarray(fm), self.spec.state_to_vector(initial_state))
        return states, fluxes

    def save(self, directory):
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text(json.dumps(self.config, indent=1, default=str))
        save_weights(self.model, d / "weights.npz")
