"""NOx emission estimation from satellite NO2 columns (TROPOMI-like), trained and scored on
synthetic truth from the differentiable transport model :mod:`process_models.transport`.

Modules: :mod:`.operator` (observation operator), :mod:`.generator` (seeded synthetic
scenes on disk), :mod:`.methods` (flux divergence, cross-sectional flux, variational
inversion behind one :func:`estimate` API), :mod:`.unet` (Flax NNX U-Net with a deep
ensemble), :mod:`.vae` (Flax NNX conditional VAE), :mod:`.real` (the real TROPOMI Matimba and SMARTCARB cases as scenes),
:mod:`.scoring` (MAPE, bias, interval coverage).
"""
from .generator import SceneConfig, generate_dataset, load_dataset, scene_inputs, simulate_scenes
from .operator import ObservationConfig, footprint_average, observe, real_masks, upsample

__all__ = ["ObservationConfig", "SceneConfig", "footprint_average", "generate_dataset",
           "load_dataset", "observe", "real_masks", "scene_inputs", "simulate_scenes", "upsample"]
