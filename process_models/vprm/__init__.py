"""VPRM (Mahadevan et al. 2008) in JAX: exact pyVPRM-compatible and smooth
differentiable modes, Gourdji et al. (2022) respiration, soil-moisture and fAPAR
variants, shipped parameter tables, and an xarray/dask entry point."""
from .model import (BASE_WIDTHS, class_fluxes, initial_state, simulate, simulate_jit,
                    simulate_scan, step)
from .params import (CLASS_NAMES, ClassRules, GourdjiParams, VPRMForcing, VPRMOptions,
                     VPRMOutputs, VPRMParams)
from .tables import available_tables, load_parameters, parameter_table

__all__ = [
    "BASE_WIDTHS", "CLASS_NAMES", "ClassRules", "GourdjiParams", "VPRMForcing", "VPRMOptions",
    "VPRMOutputs", "VPRMParams", "available_tables", "class_fluxes", "initial_state",
    "load_parameters", "parameter_table", "simulate", "simulate_jit", "simulate_scan", "step",
]
from .xarray_api import prepare_forcing, run  # noqa: E402

__all__ += ["prepare_forcing", "run"]
from .interface import VPRMModel  # noqa: E402

__all__ += ["VPRMModel"]
