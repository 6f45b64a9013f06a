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
:class:`~emulator.generate.StatefulSpec` into the model interface of the emulated model
(:class:`EmulatedModel`: its parameter table rows, parameters, state and outputs pytrees);
``step_vectors`` / ``simulate_vectors`` run on flat vectors.

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

    def network(self, dtype) -> PointwiseEmulator:
        """The network computing in ``dtype`` (raw inputs (..., 18) -> gpp/reco/nee dict)."""
        return module_as(self._graphdef, self._state, dtype)

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
        f = jnp.asarray(forcing.class_fractions)
        shape = jnp.broadcast_shapes(*[jnp.shape(getattr(forcing, k)) for k in VPRM_FORCING_INPUTS],
                                     jnp.shape(f)[:-1])
        dtype = jnp.result_type(forcing.temperature, params.lam)
        model = module_as(self._graphdef, self._state, dtype)
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
            w = jnp.broadcast_to(f[..., c], shape).astype(dtype)
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


def module_as(graphdef, state, dtype) -> nnx.Module:
    """The network of ``(graphdef, state)`` with its floating-point weights cast to
    ``dtype``: the emulator then computes in the precision of its inputs (float32 weights
    upcast exactly to float64), with no implicit dtype promotion."""
    cast = lambda a: a.astype(dtype) if jnp.issubdtype(a.dtype, jnp.floating) else a  # noqa: E731
    return nnx.merge(graphdef, jax.tree.map(cast, state))


def emulated_parameter_table(spec):
    """Rows of the emulated model's ``parameter_table()`` for the parameters a surrogate of
    ``spec`` is conditioned on (``spec.param_space.names``), bounds narrowed to the
    training box (the emulator is only valid inside it); unit, prior and citation are the
    model's."""
    from process_models.interface import check_parameter_table
    space = spec.param_space
    t = spec.model.parameter_table().set_index("name").loc[list(space.names)].reset_index()
    t["lower"] = np.maximum(t["lower"].to_numpy(float), np.asarray(space.lower, float))
    t["upper"] = np.minimum(t["upper"].to_numpy(float), np.asarray(space.upper, float))
    return check_parameter_table(t, f"surrogate of {spec.name}")


class EmulatedModel:
    """The model-interface part every stateful surrogate of a
    :class:`~emulator.generate.StatefulSpec` shares: parameters, state, outputs, names and
    units are those of the emulated model ``spec.model`` (the subclass gives ``step``)."""

    spec = None

    @property
    def output_units(self):
        return self.spec.model.output_units

    def parameter_table(self):
        """:func:`emulated_parameter_table` (the emulated parameters, training box)."""
        return emulated_parameter_table(self.spec)

    def default_params(self, dtype=None):
        p = self.spec.base_params
        return p if dtype is None else jax.tree.map(lambda a: jnp.asarray(a, dtype), p)

    def get_parameter(self, params, name: str):
        return self.spec.model.get_parameter(params, name)

    def set_parameters(self, params, values):
        return self.spec.model.set_parameters(params, values)

    def initial_state(self, params, forcing):
        """The emulated model's initial state (the emulator starts where it starts)."""
        return self.spec.initial_state(params, forcing)

    def simulate(self, params, forcing, initial_state=None):
        """Free run: ``lax.scan`` of :meth:`step` over the leading time axis of ``forcing``
        -> outputs (time-major, the emulated model's type)."""
        from process_models.interface import scan_steps
        s0 = self.initial_state(params, forcing) if initial_state is None else initial_state
        return scan_steps(self.step, s0, forcing, params)[1]


class StepSurrogate(EmulatedModel):
    """A trained :class:`~emulator.networks.StepEmulator` behind the model interface of
    the stateful model ``spec.model`` (:class:`~emulator.generate.StatefulSpec`): the same
    parameter, forcing, state and outputs pytrees (outputs the model's type: emulated
    fluxes, fields of the next state, NaN for the rest), table rows of the emulated
    parameters. ``step_vectors`` / ``simulate_vectors`` work on flat vectors. The network
    computes in the precision of the state."""

    def __init__(self, model: StepEmulator, spec, config: dict | None = None):
        self.spec, self.config = spec, dict(config or {})
        self._graphdef, self._state = nnx.split(model)

    @property
    def model(self) -> StepEmulator:
        return nnx.merge(self._graphdef, self._state)

    def step_vectors(self, state_vec, forcing_vec, params_vec):
        """One emulated step on flat vectors: (next state (S,), fluxes dict)."""
        return module_as(self._graphdef, self._state, state_vec.dtype)(state_vec, forcing_vec, params_vec)

    def simulate_vectors(self, params_vec, forcing_matrix, state0_vec):
        """``lax.scan`` of the emulator over forcing (T, F) from state (S,):
        states (T, S) after each step and fluxes dict of (T,) arrays."""
        model = module_as(self._graphdef, self._state, state0_vec.dtype)

        def body(s, f):
            s1, fl = model(s, f, params_vec)
            return s1, (s1, fl)

        _, (states, fluxes) = jax.lax.scan(body, state0_vec, forcing_matrix)
        return states, fluxes

    def step(self, state, forcing_t, params):
        """``(state, forcing_t, params) -> (state, outputs_t)`` on the model's pytrees."""
        sp = self.spec
        sv = sp.state_to_vector(state)
        s1, fluxes = self.step_vectors(sv, sp.forcing_to_vector(forcing_t).astype(sv.dtype),
                                       sp.params_to_vector(params).astype(sv.dtype))
        next_state = sp.state_from_vector(s1)
        return next_state, sp.outputs_from_fluxes(fluxes, next_state)

    def save(self, directory):
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text(json.dumps(self.config, indent=1, default=str))
        save_weights(self.model, d / "weights.npz")
