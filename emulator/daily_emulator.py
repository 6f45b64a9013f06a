"""Daily flux-form emulator of the coupled model (one network call per site-day).

The process model (:mod:`process_models.coupled`) steps half-hourly; this emulator steps
one day. A Flax MLP (:class:`DailyNetwork`) maps the day's meteorology statistics
(:class:`~emulator.daily.DailyForcing`, which carries the diurnal cycle as daytime-weighted
temperature and VPD, extremes, daylight fraction...), the state at the start of the day
and the emulated parameters (unit box) to the day's fluxes; the state is advanced by the
flux-form bookkeeping of :mod:`emulator.flux_form`, so that for any weights

* water closes exactly: ``sum 1000 dz dtheta + dSWE = P - ET - runoff - drainage``;
* carbon closes exactly: ``d(sum of pools) = (GPP - Ra - Rh) dt``;
* every soil layer stays in ``[theta_res, theta_sat]``, GPP, Reco >= 0, NEE = Reco - GPP.

Kept exact from the process model (so their parameters act physically): the CLM4.5
root-water-stress factor beta_t and the wilting point (``roots.psi_close``, ``soil.b``),
wood/root maintenance respiration with Q10 (``carbon.rm_root``), turnover and
Lloyd-Taylor x CENTURY decomposition (``carbon.tau_soil_fast``), the soil-temperature and
acclimation running means (relaxed daily), the degree-day snow melt factor. Learned: GPP,
leaf + growth respiration, the nightly carbon deficit, transpiration and soil-evaporation
demands, the uptake profile correction, interception and runoff fractions, inter-layer and
bottom water fluxes.

:class:`DailyCoupledEmulator` implements the model interface
(:class:`process_models.interface.Model`) with the coupled model's parameter, state and
outputs pytrees (``CoupledOutputs`` of daily values: fluxes in umol m-2 s-1 as day means,
water fluxes in mm per day) and :class:`~emulator.daily.DailyForcing` as forcing;
:meth:`DailyCoupledEmulator.simulate_subdaily` takes the process model's half-hourly
``CoupledForcing`` directly. :func:`train_daily_emulator` fits it on daily process-model
runs (:func:`~emulator.daily.daily_process_run`) with a K-day rollout loss
(:func:`emulator.train.fit`: AdamW, early stopping, Orbax checkpoints with exact resume).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from process_models.coupled.roots import water_stress_factor
from process_models.coupled.soil_water import (WATER_DENSITY, hydraulic_conductivity, layer_geometry,
                                               matric_head, theta_from_head)
from process_models.coupled.interception import acclimation_factor

from . import flux_form
from .daily import (DAILY_FIELDS, STATE_FIELDS, DailyForcing, cast_floats, daily_forcing, state_from_vector,
                    state_to_vector)
from .networks import MLP
from .normalise import Normaliser
from .surrogate import EmulatedModel, module_as

N_LAYERS = 8
HEADS = ("gpp", "canopy_respiration", "npp_deficit", "snow_logit", "melt_logit", "interception",
         "runoff", "transpiration", "evaporation") + tuple(f"uptake_{i}" for i in range(N_LAYERS)) \
    + tuple(f"layer_flux_{i}" for i in range(N_LAYERS - 1)) + ("drainage",)
"""Raw network outputs (25)."""
N_STATE_FEATURES = 2 * N_LAYERS + 7
N_INPUTS = N_STATE_FEATURES + len(DAILY_FIELDS)
"""Inputs before the emulated parameters (unit box) are appended."""
DEFAULT_SCALES = {"gpp": 5.0, "canopy_respiration": 1.0, "npp_deficit": 1.0, "transpiration": 1.5,
                  "evaporation": 0.5, "layer_flux": 5.0, "drainage": 1.0}
"""Head scales (units of the heads: umol m-2 s-1, g C m-2 day-1, mm per day)."""


class DailyNetwork(nnx.Module):
    """MLP (SiLU) from normalised features (state, daily forcing, unit parameters) to the
    25 raw heads of :data:`HEADS`."""

    def __init__(self, n_params: int, hidden, normaliser: Normaliser, *, rngs: nnx.Rngs):
        self.normaliser = normaliser
        self.mlp = MLP(N_INPUTS + n_params, hidden, len(HEADS), rngs=rngs)

    def __call__(self, x):
        return self.mlp(self.normaliser.forward(x))


def _signed_log(x):
    return jnp.sign(x) * jnp.log1p(jnp.abs(x))


def darcy_fluxes(theta, soil, layer_thickness):
    """Explicit Darcy fluxes at the start of the day (mm per day, downward positive):
    interfaces (K_i + K_{i+1})/2 ((psi_i - psi_{i+1})/dz_c + 1) (Campbell 1974 K and psi) and free
    drainage K(theta_n) at the bottom. A network feature only."""
    _, _, _, dzc = layer_geometry(layer_thickness)
    psi, k = matric_head(theta, soil), hydraulic_conductivity(theta, soil)
    k_if = 0.5 * (k[1:] + k[:-1])
    q = k_if * ((psi[:-1] - psi[1:]) / dzc.astype(theta.dtype) + 1.0)
    return jnp.concatenate([q, k[-1:]]) * (86400.0 * WATER_DENSITY)


def features(state, f: DailyForcing, params, unit_params):
    """Network input vector (N_INPUTS + n_params,) of one site-day and the physics terms
    it shares with the bookkeeping (beta_t, root weights, f_cold, LAI)."""
    soil, roots, carbon = params.soil, params.roots, params.carbon
    theta = state.soil_water_content
    rel = (theta - soil.theta_res) / (soil.theta_sat - soil.theta_res)
    beta, weights = water_stress_factor(theta, soil, roots, params.layer_thickness)
    f_cold = acclimation_factor(state.acclimation_temperature, params.canopy)
    lai = carbon.sla * state.carbon.leaf
    x = jnp.concatenate([
        rel, _signed_log(darcy_fluxes(theta, soil, params.layer_thickness)),
        jnp.stack([jnp.log1p(jnp.maximum(state.snow_water_equivalent, 0.0)), state.soil_temperature,
                   state.acclimation_temperature, f_cold, lai, beta, jnp.log(jnp.maximum(state.carbon.leaf, 1e-6))]),
        jnp.stack([getattr(f, k) for k in DAILY_FIELDS]).astype(theta.dtype), unit_params.astype(theta.dtype)])
    return x, (beta, weights, f_cold, lai)


def daily_step(net, state, f: DailyForcing, params, unit_params, scales=None):
    """One day ``(state, forcing_day, params) -> (state, daily fluxes dict)`` on the
    coupled model's pytrees (scalars per site; ``net`` a :class:`DailyNetwork` in the
    precision of the state)."""
    sc = {**DEFAULT_SCALES, **(scales or {})}
    soil, carbon = params.soil, params.carbon
    dt = state.soil_water_content.dtype
    x, (beta, weights, f_cold, lai) = features(state, f, params, unit_params)
    z = dict(zip(HEADS, net(x)))
    sp = jax.nn.softplus
    first = lambda a: jnp.asarray(a).reshape(-1)[0]            # noqa: E731

    # water: snow, interception, runoff, soil column (flux form)
    swe, rain, melt = flux_form.snow_day(state.snow_water_equivalent, f.precipitation, f.precipitation_temperature,
                                         f.positive_degrees, first(soil.snow_temperature), first(soil.degree_day_factor),
                                         z["snow_logit"], z["melt_logit"])
    e_int = jax.nn.sigmoid(z["interception"] - 1.0) * rain
    water_in = rain - e_int + melt
    runoff = jax.nn.sigmoid(z["runoff"] - 4.0) * water_in
    logits = jnp.log(weights + 1e-6) + jnp.stack([z[f"uptake_{i}"] for i in range(N_LAYERS)])
    wilt = jnp.maximum(theta_from_head(params.roots.psi_close, soil), soil.theta_res)
    theta1, wf = flux_form.soil_column_day(
        state.soil_water_content, water_in - runoff, sc["transpiration"] * sp(z["transpiration"]),
        jax.nn.softmax(logits), sc["evaporation"] * sp(z["evaporation"]),
        sc["layer_flux"] * jnp.stack([z[f"layer_flux_{i}"] for i in range(N_LAYERS - 1)]),
        sc["drainage"] * sp(z["drainage"] - 1.0), soil.theta_res, soil.theta_sat, wilt, params.layer_thickness)

    # temperatures (daily running means), carbon (flux form)
    t_soil = flux_form.relax_day(state.soil_temperature, f.air_temperature, carbon.soil_temperature_tau)
    t_acc = flux_form.relax_day(state.acclimation_temperature, f.air_temperature, params.canopy.acclimation_tau)
    from process_models.coupled.model import relative_water_topsoil
    env = 0.5 * (flux_form.decomposition_scalar(state.soil_temperature, relative_water_topsoil(
        state.soil_water_content, params), carbon) + flux_form.decomposition_scalar(
        t_soil, relative_water_topsoil(theta1, params), carbon))
    gpp = sc["gpp"] * sp(z["gpp"])
    pools, ra, rh = flux_form.carbon_day(state.carbon, gpp, sc["canopy_respiration"] * sp(z["canopy_respiration"]),
                                         sc["npp_deficit"] * sp(z["npp_deficit"] - 1.0), t_soil, env, carbon)
    new = state.replace(soil_water_content=theta1, snow_water_equivalent=swe, soil_temperature=t_soil,
                        carbon=pools, canopy_water=jnp.zeros_like(swe), acclimation_temperature=t_acc)
    reco = ra + rh
    et = wf["transpiration"] + wf["soil_evaporation"] + e_int
    out = {"gpp": gpp, "reco": reco, "nee": reco - gpp, "ra": ra, "rh": rh, "et": et,
           "transpiration": wf["transpiration"], "soil_evaporation": wf["soil_evaporation"],
           "interception_evaporation": e_int, "runoff": runoff, "drainage": wf["drainage"],
           "water_stress": beta, "lai": lai, "acclimation_factor": f_cold}
    return new, {k: jnp.asarray(v, dt) for k, v in out.items()}


def water_balance_residual(state, new_state, f: DailyForcing, out, layer_thickness):
    """``storage change - (P - ET - runoff - drainage)`` of one emulated day (mm)."""
    dz = WATER_DENSITY * jnp.asarray(layer_thickness, state.soil_water_content.dtype)
    storage = jnp.sum(dz * (new_state.soil_water_content - state.soil_water_content)) \
        + new_state.snow_water_equivalent - state.snow_water_equivalent
    return storage - (f.precipitation - out["et"] - out["runoff"] - out["drainage"])


def carbon_balance_residual(state, new_state, out, dt: float = 86400.0):
    """``d(sum of pools) - (GPP - Ra - Rh) dt`` of one emulated day (g C m-2)."""
    from process_models.coupled.params import G_C_PER_UMOL_CO2
    return new_state.carbon.total() - state.carbon.total() \
        - (out["gpp"] - out["ra"] - out["rh"]) * G_C_PER_UMOL_CO2 * dt


class DailyCoupledEmulator(EmulatedModel):
    """The daily flux-form emulator behind the coupled model's interface.

    ``parameter_table()``: rows of the emulated parameters of ``spec`` (training box);
    ``default_params()`` / ``get_parameter`` / ``set_parameters``: the coupled model's
    ``CoupledParams``; state: ``CoupledState`` (canopy water kept 0); forcing:
    :class:`~emulator.daily.DailyForcing` (one step = one day); outputs: ``CoupledOutputs``
    of day means / day sums (SIF and LE not emulated: LE is lambda ET / day, SIF NaN).
    The network runs in the precision of the state (float32 weights upcast exactly)."""

    def __init__(self, net: DailyNetwork, spec, config: Optional[dict] = None):
        self.spec, self.config = spec, dict(config or {})
        self._graphdef, self._state = nnx.split(net)
        space = spec.param_space
        self._lo, self._hi = np.asarray(space.lower, float), np.asarray(space.upper, float)

    @property
    def network(self) -> DailyNetwork:
        return nnx.merge(self._graphdef, self._state)

    @property
    def scales(self) -> dict:
        return self.config.get("scales", {})

    def unit_parameters(self, params, dtype):
        theta = jnp.stack([jnp.asarray(self.spec.model.get_parameter(params, n), dtype)
                           for n in self.spec.param_space.names])
        return (theta - jnp.asarray(self._lo, dtype)) / jnp.asarray(self._hi - self._lo, dtype)

    def initial_state(self, params, forcing: DailyForcing):
        """Field capacity, no snow, first-day mean temperature, steady-state pools for the
        mean daily decomposition scalar (:func:`process_models.coupled.initial_state` with
        daily instead of sub-daily temperatures; pass the process model's own initial
        state to start exactly where it starts)."""
        from process_models.coupled.carbon import steady_state_pools
        from process_models.coupled.model import relative_water_topsoil
        from process_models.coupled.params import CoupledState
        from process_models.coupled.soil_water import field_capacity
        soil, carbon = params.soil, params.carbon
        dtype = jnp.result_type(soil.theta_sat)
        theta = jnp.broadcast_to(field_capacity(soil), (params.n_layers,)).astype(dtype)
        t0 = jnp.asarray(forcing.air_temperature[0], dtype)
        env = jnp.mean(flux_form.decomposition_scalar(jnp.asarray(forcing.air_temperature, dtype),
                                                      relative_water_topsoil(theta, params), carbon))
        pools = jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), steady_state_pools(carbon, None, env))
        return CoupledState(soil_water_content=theta, snow_water_equivalent=jnp.zeros((), dtype),
                            soil_temperature=t0, carbon=pools, canopy_water=jnp.zeros((), dtype),
                            acclimation_temperature=t0)

    def _net(self, dtype):
        return module_as(self._graphdef, self._state, dtype)

    def step(self, state, forcing_t: DailyForcing, params):
        """One day: ``(CoupledState, DailyForcing of one day, CoupledParams) ->
        (CoupledState, CoupledOutputs)``."""
        from process_models.coupled.model import complete_state
        state = complete_state(state)
        dtype = state.soil_water_content.dtype
        new, out = daily_step(self._net(dtype), state, forcing_t, params, self.unit_parameters(params, dtype),
                              self.scales)
        return new, self._outputs(out, new)

    def _outputs(self, out, new):
        from process_models.coupled.params import CoupledOutputs
        from process_models.coupled.evapotranspiration import latent_heat_vaporization
        nan = jnp.full_like(out["gpp"], jnp.nan)
        le = latent_heat_vaporization(new.soil_temperature) * out["et"] / 86400.0
        return CoupledOutputs(
            gpp=out["gpp"], reco=out["reco"], nee=out["nee"], ra=out["ra"], rh=out["rh"], et=out["et"],
            transpiration=out["transpiration"], soil_evaporation=out["soil_evaporation"], runoff=out["runoff"],
            drainage=out["drainage"], le=le, soil_water_content=new.soil_water_content,
            water_stress=out["water_stress"], lai=out["lai"], sif=nan,
            snow_water_equivalent=new.snow_water_equivalent, total_carbon=new.carbon.total(),
            interception_evaporation=out["interception_evaporation"], canopy_water=new.canopy_water,
            acclimation_factor=out["acclimation_factor"])

    def simulate(self, params, forcing: DailyForcing, initial_state=None):
        """Free daily run (``lax.scan`` of :meth:`step`): ``CoupledOutputs`` (days,)."""
        from process_models.interface import scan_steps
        s0 = self.initial_state(params, forcing) if initial_state is None else initial_state
        return scan_steps(self.step, s0, forcing, params)[1]

    def simulate_subdaily(self, params, forcing, initial_state=None):
        """Run on the process model's sub-daily ``CoupledForcing``: its whole days as
        :class:`DailyForcing`, starting from the process model's initial state (or
        ``initial_state``)."""
        from process_models.coupled import initial_state as process_initial_state
        s0 = process_initial_state(params, forcing) if initial_state is None else initial_state
        return self.simulate(params, daily_forcing(forcing), s0)

    def simulate_vectors(self, params_vec, forcing_matrix, state0_vec):
        """Daily run on flat vectors: parameter values (P,) of ``spec``, daily forcing
        (D, 15) in :data:`~emulator.daily.DAILY_FIELDS` order, state (17,) of
        :data:`~emulator.daily.STATE_FIELDS` -> (states (D, 17) after each day, fluxes dict)."""
        dtype = state0_vec.dtype
        params = cast_floats(self.spec.params_from_vector(params_vec), dtype)
        net, unit = self._net(dtype), (params_vec - jnp.asarray(self._lo, dtype)) / jnp.asarray(self._hi - self._lo, dtype)

        def body(s, fm):
            s1, out = daily_step(net, s, DailyForcing.from_matrix(fm), params, unit, self.scales)
            return s1, (state_to_vector(s1), out)

        _, (states, out) = jax.lax.scan(body, state_from_vector(state0_vec), forcing_matrix)
        return states, out

    def save(self, directory):
        from .surrogate import save_weights
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        (d / "config.json").write_text(json.dumps(self.config, indent=1, default=str))
        save_weights(self.network, d / "weights.npz")

    @classmethod
    def build(cls, config: dict, spec=None, seed: int = 0) -> "DailyCoupledEmulator":
        from .coupled import coupled_spec
        spec = spec if spec is not None else coupled_spec(**config.get("spec", {}))
        net = DailyNetwork(len(spec.param_space.names), tuple(config["hidden"]),
                           Normaliser.from_dict(config["input_normaliser"]), rngs=nnx.Rngs(seed))
        return cls(net, spec, config)

    @classmethod
    def load(cls, directory, spec=None) -> "DailyCoupledEmulator":
        from .surrogate import load_weights
        d = Path(directory)
        config = json.loads((d / "config.json").read_text())
        s = cls.build(config, spec)
        return cls(load_weights(s.network, d / "weights.npz"), s.spec, config)


__all__ = ["DailyCoupledEmulator", "DailyNetwork", "HEADS", "N_INPUTS", "STATE_FIELDS", "daily_step",
           "darcy_fluxes", "features", "water_balance_residual", "carbon_balance_residual"]
