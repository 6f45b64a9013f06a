"""Basic Model Interface (BMI 2.0) faces of the ecoflux models, for pymt-style couplers.

``BmiVPRM`` and ``BmiCoupled`` wrap the models' ``initial_state``/``step`` interface with
:class:`JaxModelBmi` (``_base.py``); configs are TOML files (``examples/``). See
``README.md`` in this folder for the variable tables and the semantics of each function.
``BmiCoupledSurface`` and ``BmiCoupledSoil`` (``split.py``) are the coupled model's canopy and
soil halves as two components, coupled through BMI calls by ``run_split``.
"""
from ._base import BmiGrid, BmiVariable, JaxModelBmi, ModelSetup
from .vprm import BmiVPRM

__all__ = ["BmiGrid", "BmiVariable", "JaxModelBmi", "ModelSetup", "BmiVPRM"]

try:  # the coupled model is optional at import time
    from .coupled import BmiCoupled  # noqa: F401
    from .split import BmiCoupledSoil, BmiCoupledSurface, run_split  # noqa: F401
    __all__ += ["BmiCoupled", "BmiCoupledSurface", "BmiCoupledSoil", "run_split"]
except ImportError:  # pragma: no cover
    pass
