"""A small real configuration shared by the map tests: a 10 x 10-pixel window of the Romania
Sentinel-2 cube (20 m), two July 2019 days, CH-Dav meteorology, tree-cover land cover."""
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "experiments" / "configs" / "romania_s2.toml"


def small_config(store, **over):
    from assimilation.maps import load_config
    kw = dict(run__start="2019-07-01", run__end="2019-07-03", run__window=(0, 10, 0, 10), run__tile=(5, 5),
              run__time_chunk=24, run__fit_steps=20, run__fit_pixels=32, run__scheduler="inprocess",
              run__precision="float64", output__store=str(store))
    kw.update(over)
    return load_config(CONFIG, **kw)


ADAM = "optax.adam computes its bias correction as a Python float decay raised to its int32 step count"


@pytest.fixture(scope="session")
def romania_context(tmp_path_factory):
    """Prepared once per test process (the pivot's Kalman parameters are fitted with
    optax.adam, which needs standard promotion: see ADAM)."""
    import jax

    from assimilation.maps import prepare
    with jax.numpy_dtype_promotion("standard"):
        return prepare(small_config(tmp_path_factory.mktemp("maps") / "ctx.zarr"))
