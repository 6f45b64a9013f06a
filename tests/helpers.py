"""Test helpers shared by every test module (diffrax/equinox style: one ``tree_allclose``)."""
from __future__ import annotations

import jax
import numpy as np

__all__ = ["tree_allclose"]


def tree_allclose(actual, desired, *, rtol: float = 1e-7, atol: float = 0.0) -> None:
    """Assert that two pytrees have the same structure and leaves that are close
    (``numpy.testing.assert_allclose`` per leaf, NaN equal to NaN). Raises AssertionError
    naming the first leaf path that differs."""
    la, ta = jax.tree_util.tree_flatten_with_path(actual)
    ld, td = jax.tree_util.tree_flatten_with_path(desired)
    if ta != td:
        raise AssertionError(f"pytree structures differ:\n{ta}\n{td}")
    for (path, a), (_, d) in zip(la, ld):
        np.testing.assert_allclose(np.asarray(a), np.asarray(d), rtol=rtol, atol=atol,
                                   err_msg=f"leaf {jax.tree_util.keystr(path)}")
