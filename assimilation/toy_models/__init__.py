"""Toy chaotic models for data-assimilation tests and teaching (pure JAX, RK4).

* :mod:`.lorenz63` -- Lorenz (1963) three-variable convection model.
* :mod:`.lorenz96` -- Lorenz (1996) / Lorenz & Emanuel (1998) ring model.

Each module offers ``tendency(x, ...)`` (dx/dt), ``step(x, dt, ...)`` (one classical
fourth-order Runge-Kutta step) and ``integrate(x, n_steps, dt, ...)`` (``lax.scan``;
returns the final state, or the whole trajectory with ``trajectory=True``). All are
pure, jit/vmap/grad-able, and work in float32 and float64. Time is non-dimensional
("model time units", MTU); Lorenz-96 ``dt = 0.05`` MTU is about 6 hours of weather.
"""
from .rk4 import rk4_step
from . import lorenz63, lorenz96

__all__ = ["rk4_step", "lorenz63", "lorenz96"]
