"""Test-wide settings: float64 on (comparisons with NumPy/pyVPRM references), strict dtype
promotion, headless plots.

Tests opt out of strict dtype promotion only where a third-party library mixes dtypes
internally, with ``@pytest.mark.standard_promotion(reason, ...)``.
"""
import os

os.environ.setdefault("MPLBACKEND", "Agg")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
# Strict dtype promotion: no implicit float32/float64 or integer/float mixing anywhere in the
# package; the working dtype is always derived explicitly from the inputs.
jax.config.update("jax_numpy_dtype_promotion", "strict")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "standard_promotion(*reasons): run the test under jax_numpy_dtype_promotion='standard' "
        "because a third-party library (optax, numpyro, ...) mixes dtypes internally; the "
        "reasons name the library and the operation")


@pytest.fixture(autouse=True)
def _standard_promotion(request):
    marker = request.node.get_closest_marker("standard_promotion")
    if marker is None:
        yield
        return
    if not marker.args or not all(isinstance(r, str) and r.strip() for r in marker.args):
        raise pytest.UsageError(
            f"{request.node.nodeid}: standard_promotion needs its reasons as arguments")
    with jax.numpy_dtype_promotion("standard"):
        yield


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled executables after each test module. A pytest-xdist worker runs
    hundreds of modules in one process; without this its compiled programs (each holding
    memory mappings) accumulate for the whole run, and twice a worker crashed inside XLA
    compilation near the end of the suite (an abort, then a segfault; vm.max_map_count is
    65530 here). Later calls of a cached jitted function simply compile again."""
    yield
    import gc
    jax.clear_caches()
    gc.collect()
