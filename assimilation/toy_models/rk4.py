"""Classical fourth-order Runge-Kutta step (Kutta 1901), global error O(dt^4)."""
from __future__ import annotations

from typing import Callable

import jax


def rk4_step(tendency: Callable, x, dt):
    """One RK4 step of dx/dt = tendency(x) (autonomous), for any pytree ``x``.

    k1 = f(x), k2 = f(x + dt/2 k1), k3 = f(x + dt/2 k2), k4 = f(x + dt k3);
    x_new = x + dt/6 (k1 + 2 k2 + 2 k3 + k4).
    """
    tm = jax.tree_util.tree_map
    k1 = tendency(x)
    k2 = tendency(tm(lambda a, b: a + 0.5 * dt * b, x, k1))
    k3 = tendency(tm(lambda a, b: a + 0.5 * dt * b, x, k2))
    k4 = tendency(tm(lambda a, b: a + dt * b, x, k3))
    return tm(lambda a, b1, b2, b3, b4: a + dt / 6.0 * (b1 + 2.0 * b2 + 2.0 * b3 + b4),
              x, k1, k2, k3, k4)


def integrate(step: Callable, x, n_steps: int, trajectory: bool = False):
    """Apply ``step`` ``n_steps`` times under ``lax.scan``. With ``trajectory=True``
    returns the states after each step, shape ``(n_steps, ...)``."""
    def body(carry, _):
        new = step(carry)
        return new, (new if trajectory else None)

    final, traj = jax.lax.scan(body, x, None, length=n_steps)
    return traj if trajectory else final
