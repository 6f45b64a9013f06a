"""A small stateful test model: one soil-water bucket + light-use-efficiency carbon
fluxes (daily step). It exercises the step emulator (tests, study); it is not meant for
science.

State: root-zone soil water theta (m3 m-3), kept in [theta_r, theta_s] by smooth
limits. Forcing per day: air temperature T (degC), shortwave SW (W m-2, daily mean),
VPD (hPa), precipitation P (mm d-1). Parameters (vector order :data:`TOY_PARAMETERS`):
lue (umol CO2 per umol PAR), kc (1, ET coefficient), r0 (umol m-2 s-1, respiration at
10 degC), q10 (1), kd (d-1, drainage rate above field capacity), theta_c (m3 m-3,
water content without stress).

    beta  = clip((theta - theta_w) / (theta_c - theta_w), 0, 1)       (smooth)
    GPP   = lue * PAR * beta * sigmoid((T - 2) / 2),  PAR = 2.04 SW   (umol m-2 s-1)
    PET   = 1.26 * 0.7 * SW * 0.0864 / 2.45 * sigmoid(T / 2)          (mm d-1, Priestley-Taylor-like)
    ET    = kc * PET * beta
    D     = kd * Z * softplus(theta - theta_fc)
    theta' = theta + (P - ET - D) / Z, runoff R = Z * softplus_w(theta' - theta_s),
    theta1 = theta' - R / Z (then floored at theta_r by a softplus)
    Reco  = r0 * q10 ** ((T - 10) / 10) * (0.5 + 0.5 beta),  NEE = Reco - GPP

Water balance per step (mm): Z (theta1 - theta) = P - ET - D - R (exact up to the
theta_r floor, which the forcing never reaches in practice).

:class:`ToyModel` puts the model behind the model interface
(:class:`process_models.interface.Model`: ``ToyParams`` / ``ToyForcing`` / ``ToyState``
pytrees, outputs a dict of the :data:`TOY_FLUXES`); :func:`toy_step` is the same step on
flat vectors.
"""
from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from flax import struct

from .design import ParameterSpace
from .generate import StatefulSpec, spec_from_model

DEPTH_MM = 500.0          # Z, root-zone depth (mm)
THETA_R, THETA_S, THETA_W, THETA_FC = 0.05, 0.45, 0.10, 0.30
TOY_PARAMETERS = ("lue", "kc", "r0", "q10", "kd", "theta_c")
TOY_FORCING = ("air_temperature", "shortwave_in", "vpd", "precipitation")
TOY_FLUXES = ("gpp", "reco", "nee", "et", "drainage", "runoff")
TOY_UNITS = ("umol umol-1", "1", "umol m-2 s-1", "1", "d-1", "m3 m-3")
TOY_SPACE = ParameterSpace(TOY_PARAMETERS, (0.01, 0.5, 0.5, 1.5, 0.05, 0.18),
                           (0.04, 1.2, 3.0, 3.0, 0.5, 0.32), (False,) * 6, TOY_UNITS)
TOY_DEFAULTS = (0.02, 0.8, 1.5, 2.0, 0.2, 0.25)
"""Default parameters (centre of the box, rounded)."""


def _sp(x, w):
    return w * jnp.logaddexp(0.0, x / w)


def toy_initial_state(params, forcing):
    """Soil water at field capacity (m3 m-3), shape (1,)."""
    return jnp.full((1,), THETA_FC, dtype=jnp.asarray(forcing).dtype)


def toy_step(state, forcing_t, params):
    """One day: ``(theta (1,), forcing (4,), params (6,)) -> (theta1 (1,), fluxes (6,))``."""
    theta = state[0]
    t, sw, vpd, p = forcing_t[0], forcing_t[1], forcing_t[2], forcing_t[3]
    lue, kc, r0, q10, kd, theta_c = (params[i] for i in range(6))
    x = (theta - THETA_W) / (theta_c - THETA_W)
    beta = _sp(x, 0.02) - _sp(x - 1.0, 0.02)
    gpp = lue * 2.04 * jnp.maximum(sw, 0.0) * beta * jax.nn.sigmoid((t - 2.0) / 2.0) / (1.0 + vpd / 30.0)
    pet = 1.26 * 0.7 * jnp.maximum(sw, 0.0) * 0.0864 / 2.45 * jax.nn.sigmoid(t / 2.0)
    et = kc * pet * beta
    drainage = kd * DEPTH_MM * _sp(theta - THETA_FC, 0.01)
    th = theta + (p - et - drainage) / DEPTH_MM
    runoff = DEPTH_MM * _sp(th - THETA_S, 0.005)
    theta1 = th - runoff / DEPTH_MM
    theta1 = THETA_R + _sp(theta1 - THETA_R, 0.002)
    reco = r0 * q10 ** ((t - 10.0) / 10.0) * (0.5 + 0.5 * beta)
    return jnp.stack([theta1]), jnp.stack([gpp, reco, reco - gpp, et, drainage, runoff])


def toy_water_balance(state, next_state, forcing, fluxes):
    """Residual (mm) of Z (theta1 - theta) - (P - ET - D - R), for flat vectors with a
    leading batch axis and the emulator's flux dict."""
    return (DEPTH_MM * (next_state[..., 0] - state[..., 0])
            - (forcing[..., 3] - fluxes["et"] - fluxes["drainage"] - fluxes["runoff"]))


@struct.dataclass
class ToyParams:
    """Toy-model parameters (units in :data:`TOY_UNITS`)."""
    lue: jax.Array
    kc: jax.Array
    r0: jax.Array
    q10: jax.Array
    kd: jax.Array
    theta_c: jax.Array


@struct.dataclass
class ToyForcing:
    """Daily forcing: air temperature degC, shortwave W m-2, VPD hPa, precipitation mm d-1."""
    air_temperature: jax.Array
    shortwave_in: jax.Array
    vpd: jax.Array
    precipitation: jax.Array

    @classmethod
    def from_matrix(cls, m) -> "ToyForcing":
        """From columns (..., 4) in :data:`TOY_FORCING` order."""
        return cls(*(m[..., i] for i in range(len(TOY_FORCING))))


@struct.dataclass
class ToyState:
    soil_water_content: jax.Array
    """Root-zone soil water. Units: m3 m-3."""


def _vector(tree, names, dtype=None):
    return jnp.stack([jnp.asarray(getattr(tree, n), dtype) for n in names], -1)


@dataclass(frozen=True)
class ToyModel:
    """The toy bucket + light-use model behind the model interface (hashable)."""

    output_units = {"gpp": "umol m-2 s-1", "reco": "umol m-2 s-1", "nee": "umol m-2 s-1",
                    "et": "mm d-1", "drainage": "mm d-1", "runoff": "mm d-1"}

    def parameter_table(self) -> pd.DataFrame:
        from process_models.interface import check_parameter_table
        rows = [{"name": n, "unit": u, "default": d, "lower": lo, "upper": hi,
                 "prior": f"Normal({d}, {(hi - lo) / 4:.4g})",
                 "citation": "emulator.toy test model (box of the step-emulator study)"}
                for n, u, d, lo, hi in zip(TOY_PARAMETERS, TOY_UNITS, TOY_DEFAULTS, TOY_SPACE.lower,
                                           TOY_SPACE.upper)]
        return check_parameter_table(pd.DataFrame(rows), "ToyModel")

    def default_params(self, dtype=None) -> ToyParams:
        return ToyParams(*(jnp.asarray(v, dtype) for v in TOY_DEFAULTS))

    def get_parameter(self, params, name: str):
        from process_models.interface import get_path
        return get_path(params, name)

    def set_parameters(self, params, values):
        from process_models.interface import set_paths
        return set_paths(params, values)

    def initial_state(self, params, forcing) -> ToyState:
        """Soil water at field capacity (m3 m-3)."""
        return ToyState(jnp.asarray(THETA_FC, jnp.asarray(forcing.air_temperature).dtype))

    def step(self, state: ToyState, forcing_t: ToyForcing, params: ToyParams):
        """One day (:func:`toy_step`): ``-> (ToyState, {flux: value})``."""
        s1, fl = toy_step(jnp.reshape(state.soil_water_content, (1,)), _vector(forcing_t, TOY_FORCING),
                          _vector(params, TOY_PARAMETERS))
        return ToyState(s1[0]), {k: fl[i] for i, k in enumerate(TOY_FLUXES)}

    def simulate(self, params, forcing, initial_state=None):
        from process_models.interface import scan_steps
        s0 = self.initial_state(params, forcing) if initial_state is None else initial_state
        return scan_steps(self.step, s0, forcing, params)[1]


def toy_spec() -> StatefulSpec:
    """The toy model as a :class:`~emulator.generate.StatefulSpec` (flat vectors)."""
    model = ToyModel()
    return spec_from_model(model, TOY_SPACE, forcing_names=TOY_FORCING,
                           forcing_from_matrix=ToyForcing.from_matrix, flux_names=TOY_FLUXES,
                           state_bounds={"soil_water_content": (THETA_R, THETA_S)},
                           water_balance=toy_water_balance, name="emulator.toy bucket-LUE")


def daily_forcing(ds) -> tuple[np.ndarray, np.ndarray]:
    """Daily toy forcing (days, 4) from a tower Dataset with air_temperature (degC),
    shortwave_in (W m-2), vpd (hPa), precipitation (mm per record); returns
    (forcing, day timestamps). Days with gaps are filled by linear interpolation."""
    df = ds[["air_temperature", "shortwave_in", "vpd", "precipitation"]].to_dataframe()
    daily = df.resample("1D").agg({"air_temperature": "mean", "shortwave_in": "mean", "vpd": "mean",
                                   "precipitation": "sum"}).interpolate(limit_direction="both")
    return daily.to_numpy(float), daily.index.values
