"""A small stateful test model: one soil-water bucket + light-use-efficiency carbon
fluxes (daily step). It exercises the step emulator (tests, study) while the coupled
model is not available; it is not meant for science.

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
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .design import ParameterSpace
from .generate import StatefulSpec

DEPTH_MM = 500.0          # Z, root-zone depth (mm)
THETA_R, THETA_S, THETA_W, THETA_FC = 0.05, 0.45, 0.10, 0.30
TOY_PARAMETERS = ("lue", "kc", "r0", "q10", "kd", "theta_c")
TOY_FORCING = ("air_temperature", "shortwave_in", "vpd", "precipitation")
TOY_FLUXES = ("gpp", "reco", "nee", "et", "drainage", "runoff")
TOY_SPACE = ParameterSpace(TOY_PARAMETERS, (0.01, 0.5, 0.5, 1.5, 0.05, 0.18),
                           (0.04, 1.2, 3.0, 3.0, 0.5, 0.32), (False,) * 6,
                           ("umol umol-1", "1", "umol m-2 s-1", "1", "d-1", "m3 m-3"))


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


def toy_spec() -> StatefulSpec:
    """The toy model as a :class:`~emulator.generate.StatefulSpec` (flat vectors)."""
    ident = lambda v: v
    return StatefulSpec(
        name="emulator.toy bucket-LUE", initial_state=toy_initial_state, step=toy_step,
        params_from_vector=ident, forcing_from_matrix=ident, state_to_vector=ident,
        state_from_vector=ident, outputs_to_vector=ident, state_names=("soil_water_content",),
        forcing_names=TOY_FORCING, flux_names=TOY_FLUXES, param_space=TOY_SPACE,
        state_lower=(THETA_R,), state_upper=(THETA_S,), water_balance=toy_water_balance,
        params_to_vector=ident, forcing_to_vector=ident)


def daily_forcing(ds) -> tuple[np.ndarray, np.ndarray]:
    """Daily toy forcing (days, 4) from a tower Dataset with air_temperature (degC),
    shortwave_in (W m-2), vpd (hPa), precipitation (mm per record); returns
    (forcing, day timestamps). Days with gaps are filled by linear interpolation."""
    df = ds[["air_temperature", "shortwave_in", "vpd", "precipitation"]].to_dataframe()
    daily = df.resample("1D").agg({"air_temperature": "mean", "shortwave_in": "mean", "vpd": "mean",
                                   "precipitation": "sum"}).interpolate(limit_direction="both")
    return daily.to_numpy(float), daily.index.values
