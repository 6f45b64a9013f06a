"""Lorenz-96 model: E. N. Lorenz, "Predictability: a problem partly solved", ECMWF
Seminar on Predictability (1996); Lorenz & Emanuel, J. Atmos. Sci. 55, 399-414 (1998).

    dx_i/dt = (x_{i+1} - x_{i-2}) x_{i-1} - x_i + F,   i = 1..n (periodic),

F = 8 (chaotic; 40 variables have 13 non-negative Lyapunov exponents), RK4 with
``dt = 0.05`` as in Sakov & Oke (2008) and DAPPER ``dapper/mods/Lorenz96``.
The number of variables is the last axis of ``x`` (any n >= 4).
"""
from __future__ import annotations

import jax.numpy as jnp

from .rk4 import integrate as _integrate, rk4_step

FORCING = 8.0


def tendency(x, forcing=FORCING):
    """dx/dt of Lorenz-96; ``x`` has shape ``(..., n)``, ``forcing`` broadcasts."""
    return ((jnp.roll(x, -1, axis=-1) - jnp.roll(x, 2, axis=-1)) * jnp.roll(x, 1, axis=-1)
            - x + forcing)


def step(x, dt=0.05, forcing=FORCING):
    """One RK4 step of length ``dt`` (model time units; 0.05 ~ 6 h)."""
    return rk4_step(lambda s: tendency(s, forcing), x, dt)


def integrate(x, n_steps: int, dt=0.05, trajectory: bool = False, forcing=FORCING):
    """``n_steps`` RK4 steps under ``lax.scan``."""
    return _integrate(lambda s: step(s, dt, forcing), x, n_steps, trajectory)


def initial_state(n=40, forcing=FORCING, dtype=jnp.float32):
    """The equilibrium x_i = F with the first variable nudged by +1 (off the attractor;
    spin up for a few model time units before use)."""
    return jnp.full((n,), forcing, dtype).at[0].add(1.0)
