"""Lorenz (1963) model: E. N. Lorenz, "Deterministic nonperiodic flow",
J. Atmos. Sci. 20, 130-141 (1963).

    dx/dt = sigma (y - x),  dy/dt = rho x - y - x z,  dz/dt = x y - beta z,

with the classical sigma = 10, rho = 28, beta = 8/3 and RK4 time stepping as in DAPPER
``dapper/mods/Lorenz63`` (``dt = 0.01``). Attractor statistics: mean about
(0, 0, 23.5), climatological std about (7.9, 9.0, 8.6).
"""
from __future__ import annotations

import jax.numpy as jnp

from .rk4 import integrate as _integrate, rk4_step

SIGMA, RHO, BETA = 10.0, 28.0, 8.0 / 3.0
X0 = (1.509, -1.531, 25.46)
"""A point on the attractor (DAPPER's ``x0``), used to start twin experiments."""


def tendency(x, sigma=SIGMA, rho=RHO, beta=BETA):
    """dx/dt of the Lorenz-63 system; ``x`` has shape ``(..., 3)``."""
    x1, x2, x3 = x[..., 0], x[..., 1], x[..., 2]
    return jnp.stack([sigma * (x2 - x1), rho * x1 - x2 - x1 * x3, x1 * x2 - beta * x3],
                     axis=-1)


def step(x, dt=0.01, sigma=SIGMA, rho=RHO, beta=BETA):
    """One RK4 step of length ``dt`` (model time units)."""
    return rk4_step(lambda s: tendency(s, sigma, rho, beta), x, dt)


def integrate(x, n_steps: int, dt=0.01, trajectory: bool = False, **kw):
    """``n_steps`` RK4 steps under ``lax.scan`` (trajectory shape ``(n_steps, 3)``)."""
    return _integrate(lambda s: step(s, dt, **kw), x, n_steps, trajectory)


def fixed_points(rho=RHO, beta=BETA):
    """The two non-trivial equilibria C+- = (+-q, +-q, rho - 1), q = sqrt(beta (rho - 1))."""
    q = jnp.sqrt(beta * (rho - 1.0))
    return jnp.array([[q, q, rho - 1.0], [-q, -q, rho - 1.0]])
