"""Small synthetic VPRM problem shared by the calibration tests (72 hourly steps)."""
import jax.numpy as jnp
import numpy as np
import pytest

from assimilation.calibration import interface_model_fn, priors_from_table
from process_models.vprm import VPRMForcing, VPRMOptions, load_parameters, parameter_table, simulate


def synthetic_forcing(T=72):
    h = np.arange(T) % 24
    par = np.maximum(0.0, 1800.0 * np.sin(np.pi * (h - 6) / 12))
    temp = 15.0 + 6.0 * np.sin(np.pi * (h - 9) / 12)
    return VPRMForcing(temperature=jnp.asarray(temp), par=jnp.asarray(par), evi=jnp.full(T, 0.5),
                       lswi=jnp.full(T, 0.3), evi_threshold=jnp.full(T, 0.3),
                       lswi_min=jnp.full(T, 0.1), lswi_max=jnp.full(T, 0.4),
                       class_fractions=jnp.ones((T, 1)))


@pytest.fixture(scope="session")
def vprm_problem():
    """(model_fn, priors of lam/alpha/beta, base params, forcing)."""
    forcing = synthetic_forcing()
    base = load_parameters("mahadevan2008", temperatures="mahadevan2008", classes=[3])
    pri = priors_from_table(parameter_table("mahadevan2008"), class_id=3,
                            names=["lam", "alpha", "beta"])
    fn = interface_model_fn(simulate, base, forcing, VPRMOptions(mode="smooth"))
    return fn, pri, base, forcing
