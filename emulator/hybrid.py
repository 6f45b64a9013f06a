"""Hybrid emulator of the coupled model: the canopy is emulated, the bookkeeping is exact.

Why
---
A step emulator that predicts the next soil water directly (``StepEmulator``) drifts
over 17,520 free half-hourly steps: a bias of 1e-5 m3 m-3 per step is 0.17 m3 m-3 after
a year. Here the network never predicts a state. It replaces only the expensive,
stateless part of :func:`process_models.coupled.step` - the two-big-leaf canopy
(radiation partition, FvCB/Medlyn photosynthesis and conductance of sun and shade
leaves, Penman-Monteith transpiration demand, energy split) - and the step itself is
**the process model's own code**: :func:`hybrid_step` calls
:func:`process_models.coupled.step` with the emulated canopy passed as its ``canopy``
argument, so every state update
stays exact and follows the model as its physics evolves:

====================  ======================================================================
emulated (network)    GPP, canopy leaf respiration, transpiration demand, ground and canopy
                      available energy, SIF, as functions of (forcing_t, LAI, Vcmax
                      multiplier beta_t x f_cold, emulated parameters)
exact (process model) aerodynamic conductance (FAO-56 eq. 4) and everything outside the
                      canopy: cold-season acclimation, water stress, LAI = SLA C_leaf,
                      interception, degree-day snow, root uptake limited by the water above
                      wilting point, soil evaporation (Penman-Monteith, Sellers 1992 surface
                      resistance) limited by the top-layer water above residual, Richards
                      equation (runoff, drainage, bounds limiter), soil temperature, Ra/Rh and
                      the six carbon pools
====================  ======================================================================

Consequences, by construction: the water balance
``P = ET + runoff + drainage + d(soil water + snow)`` and the carbon balance
``sum (GPP - Ra - Rh) dt = d(pools)`` close to round-off (interception store included); soil water stays in
[theta_res, theta_sat]; GPP >= 0 (zero when shortwave = 0), Reco >= 0,
NEE = Reco - GPP. Errors of the network enter the states only through the fluxes they
drive (uptake, carbon input), which are themselves limited by the exact water
availability, so they do not compound like a learned state update.

Network heads (:class:`CanopyEmulator`, inputs normalised with a stored
:class:`~emulator.normalise.Normaliser`)::

    GPP  = s_GPP softplus(z_1) [SW > 0]      R_leaf = s_R softplus(z_2)
    T_d  = s_T softplus(z_3)                 A_soil = s_A z_4      A_canopy = s_C z_5
    SIF  = s_F softplus(z_6) [SW > 0]

Units as in :class:`process_models.coupled.CanopyFluxes` (umol m-2 s-1, kg m-2 s-1, W m-2,
mW m-2 nm-1 sr-1). With ``canopy=exact_canopy`` :func:`hybrid_step` reproduces
:func:`process_models.coupled.step` to round-off (tested), which guards this file
against changes of the process model's step.

The speed-up is bounded by the exact part (Richards solve, sinks, carbon) that still
runs every step; see the study for measured numbers.
"""
from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict
from pathlib import Path
from typing import Callable, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from .networks import MLP
from .normalise import Normaliser
from .surrogate import EmulatedModel, module_as

CANOPY_OUTPUTS = ("gpp", "leaf_respiration", "transpiration_demand", "soil_available_energy",
                  "canopy_available_energy", "sif")
"""Outputs of the canopy emulator (fields of :class:`process_models.coupled.CanopyFluxes`)."""
CANOPY_FORCING = ("air_temperature", "shortwave_in", "vpd", "air_pressure", "co2", "wind_speed", "cos_zenith")
N_CANOPY_INPUTS = len(CANOPY_FORCING) + 5
"""Inputs besides the parameter vector: canopy forcing, LAI, stress and three features."""


def canopy_inputs(forcing, lai, water_stress, params_vec):
    """Raw inputs (..., 12 + P): the canopy forcing (a dict or object with the fields of
    :data:`CANOPY_FORCING`), LAI, the Vcmax multiplier passed to the canopy (water stress
    x cold-season factor), three fixed features (1 - exp(-0.5 LAI), SW (1 - exp(-0.5
    LAI)) / 1000, log1p(SW)) and the emulated parameter vector."""
    get = (lambda k: forcing[k]) if isinstance(forcing, dict) else (lambda k: getattr(forcing, k))
    cols = [jnp.asarray(get(k)) for k in CANOPY_FORCING]
    shape = jnp.broadcast_shapes(*(jnp.shape(c) for c in cols), jnp.shape(lai), jnp.shape(water_stress))
    cover = -jnp.expm1(-0.5 * jnp.maximum(lai, 0.0))
    sw = jnp.maximum(cols[1], 0.0)
    feats = cols + [lai, water_stress, cover, sw * cover / 1000.0, jnp.log1p(sw)]
    feats = [jnp.broadcast_to(jnp.asarray(c, params_vec.dtype), shape) for c in feats]
    return jnp.concatenate([jnp.stack(feats, -1), jnp.broadcast_to(params_vec, shape + params_vec.shape[-1:])], -1)


class CanopyEmulator(nnx.Module):
    """MLP (SiLU) from :func:`canopy_inputs` to the canopy fluxes of
    :data:`CANOPY_OUTPUTS` with the heads of the module docstring."""

    def __init__(self, n_in: int, hidden: Sequence[int], input_normaliser: Normaliser,
                 scales: Sequence[float], *, rngs: nnx.Rngs):
        self.mlp = MLP(n_in, hidden, len(CANOPY_OUTPUTS), rngs=rngs)
        self.input_normaliser = input_normaliser
        self.scales = tuple(map(float, scales))

    def __call__(self, x):
        z = self.mlp(self.input_normaliser.forward(x))
        s = self.scales
        light = (x[..., 1] > 0).astype(x.dtype)
        sp = jax.nn.softplus
        return {"gpp": s[0] * sp(z[..., 0]) * light, "leaf_respiration": s[1] * sp(z[..., 1]),
                "transpiration_demand": s[2] * sp(z[..., 2]), "soil_available_energy": s[3] * z[..., 3],
                "canopy_available_energy": s[4] * z[..., 4], "sif": s[5] * sp(z[..., 5]) * light}


def canopy_fluxes_from(emulated: dict, canopy_params, forcing: dict):
    """A :class:`process_models.coupled.CanopyFluxes` from the emulated outputs; the
    aerodynamic conductance is exact (FAO-56 eq. 4), derived sums exact, and fields the
    coupled step does not use are NaN (so a future use of them is loud, not silent)."""
    from process_models.coupled import CanopyFluxes
    from process_models.coupled.evapotranspiration import aerodynamic_conductance, latent_heat_vaporization
    g = emulated["gpp"]
    nan = jnp.full_like(g, jnp.nan)
    ga = aerodynamic_conductance(forcing["wind_speed"], canopy_params.canopy_height,
                                 canopy_params.reference_height) + jnp.zeros_like(g)
    known = dict(emulated, net_assimilation=g - emulated["leaf_respiration"], aerodynamic_conductance=ga,
                 latent_heat_canopy=latent_heat_vaporization(forcing["air_temperature"])
                 * emulated["transpiration_demand"],
                 net_radiation=emulated["canopy_available_energy"] + emulated["soil_available_energy"])
    return CanopyFluxes(**{fd.name: known.get(fd.name, nan) for fd in dataclasses.fields(CanopyFluxes)})


def exact_canopy(leaf, canopy, **inputs):
    """The process model's own canopy (:func:`process_models.coupled.canopy_fluxes`)."""
    from process_models.coupled import canopy_fluxes
    return canopy_fluxes(leaf, canopy, **inputs)


def hybrid_step(canopy: Callable, state, forcing_t, params, model=None):
    """The step of the coupled model (``model``, a
    :class:`process_models.coupled.CoupledModel`, default ENF/loam: the step depends on
    the parameters only) with ``canopy(leaf, canopy_params, **inputs) -> CanopyFluxes``
    as its ``canopy`` argument; everything else is the process model's own code."""
    from process_models.coupled import CoupledModel
    model = CoupledModel() if model is None else model
    return dataclasses.replace(model, canopy=canopy).step(state, forcing_t, params)


def recording_canopy(record: list):
    """The exact canopy, also appending (inputs, CanopyFluxes) of each call to ``record``
    (used to collect training rows inside one trace)."""
    from process_models.coupled import canopy_fluxes

    def fn(leaf, canopy, **kw):
        out = canopy_fluxes(leaf, canopy, **kw)
        record.append((kw, out))
        return out
    return fn


# ------------------------------------------------------------------- training data
def canopy_samples(spec, states, forcing, params):
    """Exact canopy inputs and targets for rows of a trajectory dataset: ``states`` (N,
    S) (state at the step start), ``forcing`` (N, F), ``params`` (N, P) -> (x (N, D),
    y (N, 6)) in :data:`CANOPY_OUTPUTS` order. The canopy's inputs (LAI, stress x cold
    factor) are recorded from the process model's own step, so they are exactly what
    the emulator will see."""
    def one(s, f, p):
        record = []
        hybrid_step(recording_canopy(record), spec.state_from_vector(s), spec.forcing_from_matrix(f),
                    spec.params_from_vector(p))
        kw, y = record[0]
        return canopy_inputs(kw, kw["lai"], kw["water_stress"], p), jnp.stack([getattr(y, k) for k in CANOPY_OUTPUTS])
    x, y = jax.jit(jax.vmap(one))(jnp.asarray(states), jnp.asarray(forcing), jnp.asarray(params))
    return np.asarray(x), np.asarray(y)


def canopy_loss(scales, weights=(1.0, 0.5, 1.0, 0.5, 0.5, 0.2)):
    """Weighted MSE of the canopy outputs, each divided by its training sd."""
    sd, w = tuple(map(float, scales)), tuple(map(float, weights))

    def loss(model, batch):
        out = model(batch["x"])
        return sum(w[i] * jnp.mean(((out[k] - batch["y"][:, i]) / sd[i]) ** 2) for i, k in enumerate(CANOPY_OUTPUTS))
    return loss


def train_coupled_hybrid(dataset_dir, spec, *, hidden=(128, 128, 128), rows: int = 200_000,
                         config=None, validation_fraction: float = 0.1, checkpoint_dir=None,
                         metrics_path=None, stop_after: Optional[int] = None, dtype=jnp.float32,
                         spec_kwargs: Optional[dict] = None):
    """Train the canopy emulator of a :class:`HybridCoupledSurrogate` on rows of a
    trajectory dataset of :func:`emulator.generate.generate_trajectories` (coupled spec).

    ``rows`` (trajectory, time) pairs are drawn from the training chunks (the last
    ``validation_fraction`` of the chunks, whole trajectories, are the validation
    split); the exact canopy targets are recomputed from the stored states. Training
    uses :func:`emulator.train.fit` (AdamW, warm-up + cosine, early stopping, Orbax
    checkpoints with exact resume). Returns ``(HybridCoupledSurrogate, TrainResult)``.
    """
    from .generate import ChunkedDataset
    from .train import TrainConfig, fit
    config = config or TrainConfig()
    ds = ChunkedDataset(dataset_dir, variables=("states", "forcing", "params", "fluxes"))
    n_val = max(1, int(round(validation_fraction * ds.n_chunks))) if ds.n_chunks > 1 else 0
    train_chunks = list(range(ds.n_chunks - n_val)) or [0]
    val_chunks = list(range(ds.n_chunks - n_val, ds.n_chunks)) or [0]
    rng = np.random.default_rng([config.seed, 77])

    def draw(chunks, n):
        xs, ys = [], []
        per = int(np.ceil(n / len(chunks)))
        for c in chunks:
            st, fo, pa, _ = ds.chunk(c)
            tr = rng.integers(0, fo.shape[0], per)
            t = rng.integers(0, fo.shape[1], per)
            x, y = canopy_samples(spec, st[tr, t], fo[tr, t], pa[tr])
            xs.append(x)
            ys.append(y)
        return np.concatenate(xs)[:n], np.concatenate(ys)[:n]

    x, y = draw(train_chunks, rows)
    xv, yv = draw(val_chunks, max(rows // 10, 1000))
    norm = Normaliser.fit(x)
    scales = np.maximum(y.std(0), 1e-12)
    model = CanopyEmulator(x.shape[-1], tuple(hidden), norm, scales, rngs=nnx.Rngs(config.seed))
    x, y, xv, yv = (a.astype(dtype) for a in (x, y, xv, yv))
    bs = config.batch_size

    def batch_fn(step):          # pure function of (seed, step): exact resume
        idx = np.random.default_rng([config.seed, step, 5]).integers(0, x.shape[0], bs)
        return {"x": x[idx], "y": y[idx]}

    result = fit(model, canopy_loss(scales), batch_fn, {"x": xv, "y": yv}, config,
                 checkpoint_dir=checkpoint_dir, metrics_path=metrics_path, stop_after=stop_after)
    cfg = {"kind": "coupled_hybrid", "hidden": list(hidden), "compute_dtype": jnp.dtype(dtype).name, "n_in": int(x.shape[-1]),
           "input_normaliser": norm.to_dict(), "scales": scales.tolist(),
           "spec": dict(spec_kwargs or {}), "model": spec.name, "rows": rows,
           "train_config": asdict(config), "best_step": result.best_step,
           "best_val_loss": result.best_val_loss}
    return HybridCoupledSurrogate(result.model, spec, cfg), result


# ------------------------------------------------------------------------ drop-in
class HybridCoupledSurrogate(EmulatedModel):
    """The hybrid emulator behind the coupled model's interface
    (:class:`~emulator.surrogate.EmulatedModel`): parameter table rows of the emulated
    parameters (training box), the model's parameter, forcing and ``CoupledState``
    pytrees, ``step(state, forcing_t, params) -> (state, CoupledOutputs)`` (the
    :class:`process_models.coupled.CoupledModel` step with the emulated canopy as its
    ``canopy`` argument) and ``simulate(params, forcing, initial_state=None) ->
    CoupledOutputs``; ``simulate_vectors`` / ``step_vectors`` on flat vectors like
    :class:`~emulator.surrogate.StepSurrogate`. The network runs in
    ``config["compute_dtype"]`` (default float32, as trained); the exact part runs in the
    precision of the state and parameters (float64 keeps the balances at round-off)."""

    def __init__(self, model: CanopyEmulator, spec, config: Optional[dict] = None):
        self.spec, self.config = spec, dict(config or {})
        self._graphdef, self._state = nnx.split(model)

    @property
    def model(self) -> CanopyEmulator:
        return nnx.merge(self._graphdef, self._state)

    def canopy_fn(self, params_vec):
        """The emulated canopy with the signature of
        :func:`process_models.coupled.canopy_fluxes`, conditioned on ``params_vec``."""
        cdt = jnp.dtype(self.config.get("compute_dtype", "float32"))
        model = module_as(self._graphdef, self._state, cdt)

        def fn(leaf, canopy, **kw):
            dt = jnp.result_type(kw["air_temperature"], float)
            x = canopy_inputs(kw, kw["lai"], kw["water_stress"], jnp.asarray(params_vec, cdt))
            out = {k: v.astype(dt) for k, v in model(x.astype(cdt)).items()}
            return canopy_fluxes_from(out, canopy, kw)
        return fn

    def step(self, state, forcing_t, params):
        """``(state, forcing_t, params) -> (state, CoupledOutputs)`` like the process model."""
        return hybrid_step(self.canopy_fn(self.spec.params_to_vector(params)), state, forcing_t, params,
                           self.spec.model)

    def simulate(self, params, forcing, initial_state=None):
        """Free run over the leading time axis of ``forcing`` (``lax.scan``): CoupledOutputs."""
        s0 = self.spec.initial_state(params, forcing) if initial_state is None else initial_state
        canopy = self.canopy_fn(self.spec.params_to_vector(params))
        _, out = jax.lax.scan(lambda s, f: hybrid_step(canopy, s, f, params, self.spec.model), s0, forcing)
        return out

    def step_vectors(self, state_vec, forcing_vec, params_vec):
        sp = self.spec
        s1, out = hybrid_step(self.canopy_fn(params_vec), sp.state_from_vector(state_vec),
                              sp.forcing_from_matrix(forcing_vec), sp.params_from_vector(params_vec), sp.model)
        return sp.state_to_vector(s1), {k: getattr(out, k) for k in sp.flux_names}

    def simulate_vectors(self, params_vec, forcing_matrix, state0_vec):
        """``lax.scan`` over forcing (T, F) from state (S,): states (T, S) after each step
        and a dict of (T,) fluxes (``spec.flux_names``)."""
        sp, canopy = self.spec, self.canopy_fn(params_vec)
        pt = sp.params_from_vector(params_vec)

        def body(s, f):
            s1, out = hybrid_step(canopy, s, sp.forcing_from_matrix(f), pt, sp.model)
            return s1, (sp.state_to_vector(s1), {k: getattr(out, k) for k in sp.flux_names})

        _, (states, fluxes) = jax.lax.scan(body, sp.state_from_vector(state0_vec), forcing_matrix)
        return states, fluxes

    def save(self, directory):
        from .surrogate import save_weights
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text(json.dumps(self.config, indent=1, default=str))
        save_weights(self.model, d / "weights.npz")

    @classmethod
    def build(cls, config: dict, spec=None) -> "HybridCoupledSurrogate":
        from .coupled import coupled_spec
        spec = spec if spec is not None else coupled_spec(**config.get("spec", {}))
        model = CanopyEmulator(int(config["n_in"]), tuple(config["hidden"]),
                               Normaliser.from_dict(config["input_normaliser"]), config["scales"],
                               rngs=nnx.Rngs(0))
        return cls(model, spec, config)

    @classmethod
    def load(cls, directory, spec=None) -> "HybridCoupledSurrogate":
        from .surrogate import load_weights
        d = Path(directory)
        config = json.loads((d / "config.json").read_text())
        s = cls.build(config, spec)
        return cls(load_weights(s.model, d / "weights.npz"), s.spec, config)
