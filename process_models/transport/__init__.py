"""Differentiable 2-D column transport of NOx (advection by real winds, eddy diffusion,
first-order loss, NO2/NOx ratio, point and area sources) behind the model interface.

Modules: :mod:`.numerics` (flux-limited finite-volume advection and diffusion, Sweby 1984 /
van Leer 1974), :mod:`.model` (eq. dc/dt + div(u c) = div(K grad c) + E - c/tau,
:class:`TransportModel`), :mod:`.analytic` (steady point-source and Gaussian-plume
solutions), :mod:`.winds` (ERA5 / COSMO winds onto a model grid). Data provenance:
``PROVENANCE.md`` in this folder.
"""
from .analytic import gaussian_plume, line_density, point_source_steady
from .model import (M_NO2, Grid, TransportForcing, TransportModel, TransportOutputs,
                    TransportParams, emission_field)
from .numerics import BOUNDARIES, advect, diffuse

__all__ = ["BOUNDARIES", "Grid", "M_NO2", "TransportForcing", "TransportModel", "TransportOutputs",
           "TransportParams", "advect", "diffuse", "emission_field", "gaussian_plume",
           "line_density", "point_source_steady"]
