"""The coupled soil-moisture / photosynthesis model behind the one model interface
(:class:`process_models.interface.Model`).

The state is :class:`.params.CoupledState` (soil water per layer, snow, soil temperature,
carbon pools, canopy water, acclimation temperature); ``step`` is :func:`.model.step` with
the canopy function of the model object (default the two-big-leaf
:func:`.canopy.canopy_fluxes`; a hybrid emulator passes its network canopy here) and
``simulate`` the chunk-checkpointed ``lax.scan`` of :func:`.model.simulate`. Parameter
names are the dotted paths of :func:`.tables.parameter_table` (``"leaf.vcmax25"``,
``"carbon.rh_base"``...).

Example::

    from process_models.coupled import CoupledModel
    model = CoupledModel(pft="ENF", soil_texture="loam")
    params = model.set_parameters(model.default_params(), {"leaf.vcmax25": 55.0})
    out = model.simulate(params, forcing)       # CoupledOutputs, time-major
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import pandas as pd

from ..interface import check_parameter_table, get_path, set_paths
from .canopy import canopy_fluxes
from .model import initial_state as _initial_state, simulate as _simulate, step as _step
from .params import OUTPUT_UNITS, CoupledForcing, CoupledParams, CoupledState
from .tables import load_parameters, parameter_table as _parameter_table

__all__ = ["CoupledModel"]


@dataclass(frozen=True)
class CoupledModel:
    """The coupled model for one PFT and soil texture (hashable: a static ``jit`` argument).

    Attributes
    ----------
    pft : plant functional type of the parameter tables (``pfts()``).
    soil_texture : soil texture class (``soil_textures()``).
    canopy : canopy-flux function used by :meth:`step` (default
        :func:`~process_models.coupled.canopy.canopy_fluxes`).
    checkpoint_every : gradient checkpointing of :meth:`simulate` (None: ``jax.checkpoint``
        on every step, scanned in days; k: chunks of k steps; 0: plain scan).
    """

    pft: str = "ENF"
    soil_texture: str = "loam"
    canopy: Callable = canopy_fluxes
    checkpoint_every: Optional[int] = None

    output_units = OUTPUT_UNITS

    def default_params(self, dtype=None) -> CoupledParams:
        return load_parameters(self.pft, self.soil_texture, dtype=dtype)

    def parameter_table(self) -> pd.DataFrame:
        return check_parameter_table(_parameter_table(self.pft, self.soil_texture),
                                     "CoupledModel")

    def get_parameter(self, params: CoupledParams, name: str):
        return get_path(params, name)

    def set_parameters(self, params: CoupledParams, values) -> CoupledParams:
        return set_paths(params, values)

    def initial_state(self, params: CoupledParams, forcing: CoupledForcing) -> CoupledState:
        """Field capacity, steady-state carbon pools (:func:`.model.initial_state`)."""
        return _initial_state(params, forcing)

    def step(self, state: CoupledState, forcing_t: CoupledForcing, params: CoupledParams):
        return _step(state, forcing_t, params, canopy=self.canopy)

    def simulate(self, params: CoupledParams, forcing: CoupledForcing, initial_state=None,
                 *, return_state: bool = False):
        return _simulate(params, forcing, initial_state, checkpoint_every=self.checkpoint_every,
                         return_state=return_state, canopy=self.canopy)
