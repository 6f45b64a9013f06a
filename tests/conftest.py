"""Test-wide settings: float64 on (comparisons with NumPy/pyVPRM references), headless plots."""
import os

os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
