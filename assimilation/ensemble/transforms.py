"""Per-variable transforms for bounded states and parameters (Gaussian anamorphosis by
change of variable; e.g. Simon & Bertino 2009, Ocean Sci. 5:495; log-LAI in Kondrashov
et al. 2011).

For each flattened variable with bounds ``(lo, hi)``:

* ``lo = -inf, hi = +inf``: identity, ``z = x``;
* ``lo`` finite, ``hi = +inf``: log, ``z = log(x - lo)``;
* ``lo = -inf``, ``hi`` finite: ``z = -log(hi - x)``;
* both finite: logit, ``z = log((x - lo)/(hi - x))``.

The analysis updates ``z`` (unbounded), and ``x = inverse(z)`` always lies inside the
bounds (values on a bound are clipped a tiny relative distance inside first).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.flatten_util import ravel_pytree

__all__ = ["BoundedTransform", "from_bounds", "from_pytree_bounds"]

_ID, _LOW, _HIGH, _BOTH = 0, 1, 2, 3


@struct.dataclass
class BoundedTransform:
    """Elementwise transform of a flattened member vector ``(Nx,)``."""
    kind: jax.Array    # (Nx,) int: 0 identity, 1 lower, 2 upper, 3 both
    lower: jax.Array   # (Nx,) (finite stand-in where unbounded)
    upper: jax.Array   # (Nx,)
    eps: float = struct.field(pytree_node=False, default=1e-6)

    def forward(self, x):
        """Physical x -> unbounded z."""
        lo, hi = self.lower.astype(x.dtype), self.upper.astype(x.dtype)
        width = jnp.where(self.kind == _BOTH, hi - lo, 1.0)
        tiny = self.eps * jnp.maximum(jnp.abs(width), 1.0)
        xl = jnp.maximum(x - lo, tiny)
        xh = jnp.maximum(hi - x, tiny)
        xs = jnp.where(self.kind == _BOTH, jnp.clip(x - lo, tiny, width - tiny), xl)
        z_low = jnp.log(xl)
        z_high = -jnp.log(xh)
        z_both = jnp.log(xs) - jnp.log(jnp.maximum(width - xs, tiny))
        return jnp.select([self.kind == _LOW, self.kind == _HIGH, self.kind == _BOTH],
                          [z_low, z_high, z_both], x)

    def inverse(self, z):
        """Unbounded z -> physical x (inside the bounds)."""
        lo, hi = self.lower.astype(z.dtype), self.upper.astype(z.dtype)
        x_low = lo + jnp.exp(jnp.where(self.kind == _LOW, z, 0.0))
        x_high = hi - jnp.exp(-jnp.where(self.kind == _HIGH, z, 0.0))
        x_both = lo + (hi - lo) * jax.nn.sigmoid(z)
        return jnp.select([self.kind == _LOW, self.kind == _HIGH, self.kind == _BOTH],
                          [x_low, x_high, x_both], z)


def from_bounds(lower, upper, eps: float = 1e-6) -> BoundedTransform:
    """Transform for a flat vector from per-element bounds (use +-inf for unbounded)."""
    lo = np.asarray(lower, float)
    hi = np.broadcast_to(np.asarray(upper, float), lo.shape)
    lo = np.broadcast_to(lo, hi.shape)
    if np.any(lo >= hi):
        from process_models.units import DataValidationError
        raise DataValidationError("lower bound >= upper bound for some variables",
                                  variable="bounds", fix="give lower < upper everywhere")
    flo, fhi = np.isfinite(lo), np.isfinite(hi)
    kind = np.where(flo & fhi, _BOTH, np.where(flo, _LOW, np.where(fhi, _HIGH, _ID)))
    return BoundedTransform(jnp.asarray(kind), jnp.asarray(np.where(flo, lo, 0.0)),
                            jnp.asarray(np.where(fhi, hi, 0.0)), eps)


def from_pytree_bounds(lower_tree, upper_tree, eps: float = 1e-6) -> BoundedTransform:
    """Transform from two pytrees (same structure as one member) of bounds."""
    lo, _ = ravel_pytree(jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64
                                                if jax.config.jax_enable_x64 else
                                                jnp.float32), lower_tree))
    hi, _ = ravel_pytree(jax.tree_util.tree_map(lambda a: jnp.asarray(a, lo.dtype), upper_tree))
    return from_bounds(np.asarray(lo), np.asarray(hi), eps)
