"""Input/output normalisation stored with an emulator (JSON, no pickle).

z = (x - mean) / std per column, fitted on training data; ``std`` is floored so constant
columns (e.g. a rule flag that never varies) map to 0 instead of dividing by zero.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np


@dataclass(frozen=True)
class Normaliser:
    """Per-column affine normalisation. ``mean`` and ``std`` are tuples (hashable, JSON)."""

    mean: tuple
    std: tuple

    @classmethod
    def fit(cls, x, *, min_std: float = 1e-6) -> "Normaliser":
        """Fit on samples ``x`` of shape (n, d) (NaNs are not allowed)."""
        x = np.asarray(x, float)
        if x.ndim != 2 or not np.all(np.isfinite(x)):
            raise ValueError("Normaliser.fit needs a finite (n, d) array.")
        return cls(tuple(map(float, x.mean(0))), tuple(map(float, np.maximum(x.std(0), min_std))))

    def forward(self, x):
        """Normalise ``x`` (..., d) (JAX, jit-able)."""
        return (x - jnp.asarray(self.mean, x.dtype)) / jnp.asarray(self.std, x.dtype)

    def inverse(self, z):
        """Undo :meth:`forward`."""
        return z * jnp.asarray(self.std, z.dtype) + jnp.asarray(self.mean, z.dtype)

    def to_dict(self) -> dict:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> "Normaliser":
        return cls(tuple(map(float, d["mean"])), tuple(map(float, d["std"])))

    def to_json(self) -> str:
        return json.dumps(self.to_dict())
