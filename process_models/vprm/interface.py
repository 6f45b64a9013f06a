"""VPRM behind the one model interface (:class:`process_models.interface.Model`).

VPRM (Mahadevan et al. 2008) is stateless: ``initial_state`` is ``()``, ``step`` evaluates
one time step and ``simulate`` evaluates all steps at once (:func:`.model.simulate`, equal
to the scan of ``step``). Parameter names are the fields of :class:`.params.VPRMParams`;
``"lam[7]"`` addresses the entry of the class with id 7 (pyVPRM class numbering).

Example::

    from process_models.vprm import VPRMModel
    model = VPRMModel(table="pyvprm_modis", classes=(1,))
    params = model.set_parameters(model.default_params(), {"lam[1]": 0.25})
    out = model.simulate(params, forcing)     # VPRMOutputs, umol m-2 s-1
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import pandas as pd

from ..interface import FLUX_UNITS, check_parameter_table, get_path, set_paths
from .model import simulate as _simulate
from .params import VPRMForcing, VPRMOptions, VPRMParams
from .tables import load_parameters, parameter_table as _parameter_table

__all__ = ["VPRMModel"]


@dataclass(frozen=True)
class VPRMModel:
    """VPRM with fixed options and parameter table (hashable: a static ``jit`` argument).

    Attributes
    ----------
    options : :class:`VPRMOptions` (exact/smooth switches, respiration and stress variants).
    table : shipped parameter table (:func:`process_models.vprm.available_tables`).
    temperatures : temperature-constant scheme of :func:`load_parameters`.
    classes : class ids in the order of the class axis (default: the table's classes).
    """

    options: VPRMOptions = VPRMOptions()
    table: str = "pyvprm_modis"
    temperatures: str = "copernicus"
    classes: Optional[tuple] = None

    output_units = {"gpp": FLUX_UNITS, "reco": FLUX_UNITS, "nee": FLUX_UNITS}

    def default_params(self, dtype=None) -> VPRMParams:
        """:func:`load_parameters` of the table, classes and temperature scheme."""
        return load_parameters(self.table, temperatures=self.temperatures,
                               classes=self.classes, dtype=dtype)

    def parameter_table(self) -> pd.DataFrame:
        """One row per calibratable (class, parameter): ``name`` = ``"lam[<class id>]"``
        etc., with unit, default, bounds, prior and citation of the shipped table."""
        t = _parameter_table(self.table)
        if self.classes is not None:
            t = t[t["class_id"].isin(self.classes)]
        # a log-normal prior needs a positive lower bound (alpha's box starts at 0)
        log = t["prior"].str.startswith("LogNormal")
        t = t.assign(name=[f"{n}[{c}]" for n, c in zip(t["name"], t["class_id"])],
                     unit=t["units"], default=t["value"],
                     lower=t["lower"].where(~log | (t["lower"] > 0), 1e-6))
        cols = ["name", "unit", "default", "lower", "upper", "prior", "citation",
                "class_id", "class_name"]
        return check_parameter_table(t[cols].reset_index(drop=True), "VPRMModel")

    def _index_of(self, params: VPRMParams):
        ids = params.rules.class_ids

        def index_of(class_id: int) -> int:
            if class_id not in ids:
                raise KeyError(f"class id {class_id} is not on the class axis {ids}.")
            return ids.index(class_id)
        return index_of

    def get_parameter(self, params: VPRMParams, name: str):
        return get_path(params, name, self._index_of(params))

    def set_parameters(self, params: VPRMParams, values) -> VPRMParams:
        return set_paths(params, values, self._index_of(params))

    def initial_state(self, params: VPRMParams, forcing: VPRMForcing):
        """VPRM has no state: ``()``."""
        return ()

    def step(self, state, forcing_t: VPRMForcing, params: VPRMParams):
        """``(state, forcing_t, params) -> (state, VPRMOutputs)`` for one time step."""
        return state, _simulate(params, forcing_t, self.options)

    def simulate(self, params: VPRMParams, forcing: VPRMForcing, initial_state=None):
        """All time steps at once (equal to scanning :meth:`step`); ``initial_state`` is
        accepted for the interface and ignored (no state)."""
        return _simulate(params, forcing, self.options)
