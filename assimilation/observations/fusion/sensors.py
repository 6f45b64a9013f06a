"""Per-sensor observation operators and daily state processes for satellite fusion.

Observation operator of sensor ``s`` (Sedano et al. 2014, Remote Sens. 6, 12381)::

    y_{t,s} = a_s + b_s x_t + v,   v ~ N(0, sd_s^2)

``x_t`` is the fused daily value (e.g. EVI, unit 1) on the scale of the *reference*
sensor (index 0, ``a_0 = 0, b_0 = 1`` for identifiability). The state is the anomaly
``z_t = x_t - clim_t`` from a climatological prior ``clim`` (zero, a per-pixel mean or a
seasonal curve), so ``y = (a_s + b_s clim_t) + b_s z_t + v``. Process kinds:

* ``"random_walk"``: ``z_t = z_{t-1} + w``, ``w ~ N(0, q^2)`` (pyVPRM's smoother).
* ``"damped"``: ``z_t = phi z_{t-1} + w`` with ``0 < phi < 1``: the series relaxes toward
  the climatology in long gaps, ``x_t = clim_t + phi (x_{t-1} - clim_{t-1}) + w``; prior
  ``z_0 ~ N(0, q^2 / (1 - phi^2))`` (stationary).
* ``"trend"``: local linear trend (level ``z``, slope ``g``), ``z_t = z_{t-1} + g_{t-1} + w1``,
  ``g_t = phi g_{t-1} + w2`` (Harvey 1989, ch. 2.3); ``phi = 1`` and ``q_level = 0`` give the
  integrated random walk whose smoother mean is the order-2 Whittaker smoother.

Units: ``q``, ``slope_sd`` and ``sd_s`` in the unit of the index per day / per observation.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

from .kalman import StateSpace

__all__ = ["SensorParams", "ProcessParams", "PROCESS_KINDS", "build_state_space",
           "level_mean_sd", "predict_observations"]

PROCESS_KINDS = ("random_walk", "damped", "trend")


@struct.dataclass
class SensorParams:
    """Observation operator of S sensors (arrays of shape (S,)); sensor 0 is the reference."""

    bias: jax.Array
    """a_s, additive bias. Units: those of the index (EVI: 1)."""
    gain: jax.Array
    """b_s, multiplicative gain. Units: 1."""
    noise_sd: jax.Array
    """sd_s, observation-error standard deviation. Units: those of the index."""

    @property
    def n_sensors(self) -> int:
        return self.bias.shape[-1]

    @classmethod
    def identity(cls, n_sensors: int, noise_sd=0.05):
        z = jnp.zeros(n_sensors)
        return cls(bias=z, gain=jnp.ones(n_sensors), noise_sd=z + jnp.asarray(noise_sd))


@struct.dataclass
class ProcessParams:
    """Daily state process (see module docstring)."""

    process_sd: jax.Array
    """q, sd of the daily level increment. Units: index per day."""
    phi: jax.Array
    """Damping: of the anomaly (``damped``) or of the slope (``trend``); 1 for ``random_walk``. Units: 1."""
    slope_sd: jax.Array
    """sd of the daily slope increment (``trend`` only). Units: index per day^2."""
    initial_sd: jax.Array
    """Prior sd of the day-0 state (``random_walk``/``trend``; ``damped`` uses the stationary
    sd). Units: index (slope: index per day)."""
    kind: str = struct.field(pytree_node=False, default="damped")


def build_state_space(process: ProcessParams, sensors: SensorParams, climatology, n_days: int | None = None,
                      obs_var_scale=None) -> StateSpace:
    """The :class:`~.kalman.StateSpace` of one pixel.

    Parameters
    ----------
    climatology : (T,) or scalar
        Prior mean ``clim_t`` of the fused index (unit of the index).
    n_days : int, optional
        T when ``climatology`` is a scalar.
    obs_var_scale : (T, S), optional
        Multiplies ``sd_s^2`` per observation (quality weights: 1 good, > 1 doubtful).
    """
    clim = jnp.asarray(climatology, dtype=jnp.result_type(float))
    if clim.ndim == 0:
        clim = jnp.full((n_days,), clim)
    a, b, sd = sensors.bias, sensors.gain, sensors.noise_sd
    offset = a[None, :] + b[None, :] * clim[:, None]
    r = sd**2 if obs_var_scale is None else sd[None, :] ** 2 * obs_var_scale
    q2, phi = process.process_sd**2, process.phi
    dt = clim.dtype
    if process.kind == "random_walk":
        F = jnp.ones((1, 1), dt)
        Q = jnp.reshape(q2, (1, 1))
        P0 = jnp.reshape(process.initial_sd**2, (1, 1))
        H = b[:, None]
    elif process.kind == "damped":
        F = jnp.reshape(phi, (1, 1))
        Q = jnp.reshape(q2, (1, 1))
        P0 = jnp.reshape(q2 / (1.0 - phi**2), (1, 1))
        H = b[:, None]
    elif process.kind == "trend":
        F = jnp.array([[1.0, 1.0], [0.0, 0.0]], dt) + jnp.array([[0.0, 0.0], [0.0, 1.0]], dt) * phi
        Q = jnp.diag(jnp.stack([q2, process.slope_sd**2]))
        s0 = process.initial_sd
        P0 = jnp.diag(jnp.stack([s0**2, (s0 / 30.0) ** 2]))
        H = jnp.stack([b, jnp.zeros_like(b)], axis=1)
    else:
        raise ValueError(f"process kind {process.kind!r} is not one of {PROCESS_KINDS}")
    d = F.shape[0]
    return StateSpace(transition=F.astype(dt), process_cov=Q.astype(dt), observation=H.astype(dt),
                      offset=offset, obs_var=r, initial_mean=jnp.zeros((d,), dt),
                      initial_cov=P0.astype(dt))


def level_mean_sd(smoothed_mean, smoothed_cov, climatology):
    """Fused index ``x_t = clim_t + z_t`` and its sd from a smoother result
    (``(..., T, d)``, ``(..., T, d, d)``)."""
    mean = smoothed_mean[..., 0] + climatology
    sd = jnp.sqrt(jnp.maximum(smoothed_cov[..., 0, 0], 0.0))
    return mean, sd


def predict_observations(mean, sd, sensors: SensorParams):
    """Predictive mean and sd of each sensor's observation ``a_s + b_s x_t + v``:
    ``(..., T)`` -> ``(..., T, S)``."""
    m = sensors.bias + sensors.gain * mean[..., None]
    s = jnp.sqrt((sensors.gain * sd[..., None]) ** 2 + sensors.noise_sd**2)
    return m, s
