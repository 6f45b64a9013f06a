"""Satellite tests run in float64 with strict dtype promotion (house style).

Scoped with an autouse fixture (context managers) rather than a global
``jax.config.update`` so that collecting this folder with the rest of ``tests/`` does
not switch other packages' tests to x64/strict.
"""
import jax
import numpy as np
import pytest


@pytest.fixture(autouse=True)
def _x64_strict():
    with jax.enable_x64(True), jax.numpy_dtype_promotion("strict"):
        yield


@pytest.fixture
def rng():
    return np.random.default_rng(20240524)
