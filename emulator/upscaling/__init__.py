"""Upscaling of tower fluxes with satellite indices, soil moisture and meteorology
(FLUXCOM-style): training tables (:mod:`.tables`), models behind one fit/predict API
(:mod:`.models`: LightGBM trees, deep-ensemble MLP, hybrid network -> VPRM), leave-one-
site-out cross-validation and the drought test (:mod:`.evaluate`). See README.md."""
from .models import (TARGETS, EnsembleMLP, HybridModel, MLPModel, NetConfig, TreeConfig, TreeModel,
                     feature_matrix, make_model)
from .tables import (CLASSES, FEATURES, TOWERS, add_derived_features, daily_table, hourly_table,
                     training_table)

__all__ = ["TARGETS", "EnsembleMLP", "HybridModel", "MLPModel", "NetConfig", "TreeConfig", "TreeModel",
           "feature_matrix", "make_model", "CLASSES", "FEATURES", "TOWERS", "add_derived_features",
           "daily_table", "hourly_table", "training_table"]
