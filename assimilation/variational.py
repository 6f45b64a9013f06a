"""Strong-constraint 4D-Var / MAP estimation through a differentiable model (Optax).

Cost function (e.g. Talagrand & Courtier 1987, QJRMS 113:1311; Bannister 2017 review),
with control ``x`` (initial state and/or parameters, any pytree), background ``x_b`` with
covariance ``B = L L^T`` and observations ``y`` (all times stacked) with error variances r:

    J(x) = 1/2 (x - x_b)^T B^-1 (x - x_b) + 1/2 sum_i m_i (y_i - g_i(x))^2 / r_i,

where ``g`` runs the model over the window and applies the observation operator
(strong constraint: the model is exact). It is minimised in the preconditioned variable
``v`` with ``x = x_b + L v`` (so the background term is 1/2 |v|^2) using L-BFGS
(``optax.lbfgs`` with zoom line search) or Adam. Gradients come from ``jax.grad``
through the model (the adjoint). The Gauss-Newton posterior covariance
``L (I + G^T R^-1 G)^-1 L^T`` (G = dg/dv at the optimum) is returned on request.
For linear g the minimiser is the Kalman/BLUE analysis
``x_a = x_b + B G^T (G B G^T + R)^-1 (y - g(x_b))``.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional

import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree

__all__ = ["VarResult", "fourdvar"]


class VarResult(NamedTuple):
    control: Any                   # MAP control, same pytree as the background
    cost: jax.Array                # J at the optimum
    grad_norm: jax.Array           # |dJ/dv| at the optimum
    n_iter: jax.Array              # iterations used
    cost_history: jax.Array        # (max_iter,) J per iteration (last value repeated)
    posterior_cov: Optional[jax.Array]  # (Nc, Nc) Gauss-Newton covariance, if requested


def fourdvar(forward: Callable, background, obs, obs_var, *, background_std=None,
             background_cov=None, mask=None, optimizer: str = "lbfgs", max_iter: int = 200,
             learning_rate: float = 1e-2, gtol: float = 1e-8,
             posterior_cov: bool = False) -> VarResult:
    """Strong-constraint 4D-Var / MAP.

    forward : ``g(control) -> predicted observations`` (any shape; e.g. (T, Ny)).
    background : background control pytree x_b.
    obs : observations, same shape as g's output (NaN = missing).
    obs_var : observation-error variances, broadcastable to obs.
    background_std : std of B (diagonal; scalar or flattened (Nc,)), or
    background_cov : full (Nc, Nc) B (flattened control order).
    mask : optional 0/1 array like obs.
    optimizer : "lbfgs" (optax.lbfgs, zoom line search) or "adam".
    """
    xb, unravel = ravel_pytree(background)
    dtype = xb.dtype
    nc = xb.shape[0]
    if background_cov is not None:
        L = jnp.linalg.cholesky(jnp.asarray(background_cov, dtype))
    else:
        std = jnp.broadcast_to(jnp.asarray(1.0 if background_std is None else background_std,
                                           dtype), (nc,))
        L = jnp.diag(std)
    obs = jnp.asarray(obs, dtype)
    m = jnp.isfinite(obs).astype(dtype)
    if mask is not None:
        m = m * (jnp.asarray(mask) > 0).astype(dtype)
    y0 = jnp.where(m > 0, obs, 0.0)
    r = jnp.broadcast_to(jnp.asarray(obs_var, dtype), obs.shape)
    w = m / jnp.where(m > 0, r, 1.0)

    def to_control(v):
        return xb + L @ v

    def residual(v):
        pred = jnp.asarray(forward(unravel(to_control(v))), dtype)
        return (jnp.where(m > 0, y0 - pred, 0.0) * jnp.sqrt(w)).ravel()

    def cost(v):
        res = residual(v)
        return 0.5 * (v @ v) + 0.5 * (res @ res)

    if optimizer == "lbfgs":
        opt = optax.lbfgs()
    elif optimizer == "adam":
        opt = optax.adam(learning_rate)
    else:
        raise ValueError(f"unknown optimizer {optimizer!r}; use 'lbfgs' or 'adam'")
    value_and_grad = optax.value_and_grad_from_state(cost)

    def body(carry, _):
        v, state, done, it = carry
        if optimizer == "lbfgs":
            val, g = value_and_grad(v, state=state)
            upd, new_state = opt.update(g, state, v, value=val, grad=g, value_fn=cost)
        else:
            val, g = jax.value_and_grad(cost)(v)
            upd, new_state = opt.update(g, state, v)
        gn = jnp.sqrt(g @ g)
        now_done = done | (gn < gtol)
        v_new = jnp.where(now_done, v, optax.apply_updates(v, upd))
        new_state = jax.tree_util.tree_map(lambda a, b: jnp.where(now_done, a, b), state,
                                           new_state)
        return (v_new, new_state, now_done, it + jnp.where(now_done, 0, 1)), val

    v0 = jnp.zeros(nc, dtype)
    (v, _, _, it), hist = jax.lax.scan(body, (v0, opt.init(v0), jnp.array(False),
                                              jnp.array(0)), None, length=max_iter)
    J, g = jax.value_and_grad(cost)(v)
    cov = None
    if posterior_cov:
        G = jax.jacfwd(residual)(v)               # (Nobs, Nc), already whitened
        H = jnp.eye(nc, dtype=dtype) + G.T @ G
        cov = L @ jnp.linalg.solve(H, L.T)
    return VarResult(unravel(to_control(v)), J, jnp.sqrt(g @ g), it, hist, cov)
