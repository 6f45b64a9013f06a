"""Small synthetic VPRM problem shared by the calibration tests (72 hourly steps)."""
import jax.numpy as jnp
import numpy as np
import pytest

from assimilation.calibration import model_fn_from, priors_from_model
from process_models.vprm import VPRMForcing, VPRMModel, VPRMOptions

MODEL = VPRMModel(VPRMOptions(mode="smooth"), "mahadevan2008", "mahadevan2008", (3,))
"""Smooth VPRM with the Mahadevan et al. (2008) table, mixed forest (class 3) only."""
LABELS = {"lam": "lam[3]", "alpha": "alpha[3]", "beta": "beta[3]"}


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
    """(model_fn, priors of lam/alpha/beta, base params, forcing), through the model interface."""
    forcing = synthetic_forcing()
    pri = priors_from_model(MODEL, LABELS)
    fn = model_fn_from(MODEL, pri, forcing)
    return fn, pri, MODEL.default_params(), forcing


@pytest.fixture(scope="session")
def vprm_model():
    """The VPRMModel of :func:`vprm_problem`."""
    return MODEL
