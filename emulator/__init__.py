"""Neural emulators of the ecoflux process models.

Differentiable process models generate training runs; physics-aware Flax NNX networks
learn them; trained emulators implement the model interface
(:class:`process_models.interface.Model`) of the model they replace.

Modules
-------
design      Sobol / Latin-hypercube designs inside parameter-table bounds (ParameterSpace).
generate    training runs from real forcing windows + weather perturbations, any model
            driven through its interface in vmapped batches, chunked NetCDF with metadata,
            resumable (generate_vprm, generate_trajectories, StatefulSpec / spec_from_model,
            ChunkedDataset).
normalise   stored input/output normalisation (Normaliser, JSON).
networks    PointwiseEmulator (VPRM: GPP = lam PAR/(1 + PAR/PAR0) softplus(z) >= 0,
            Reco = s softplus(z) >= 0, NEE = Reco - GPP) and StepEmulator
            ((state, forcing_t, params) -> (next state, fluxes); bounded states through a
            logit-space sigmoid head).
train       AdamW + warm-up/cosine, streamed minibatches, early stopping, Orbax
            checkpoints with bit-exact resume, CSV metrics, data parallel over devices
            (fit, train_vprm, train_step_emulator, rollout_loss).
surrogate   VPRMSurrogate (the model interface with VPRM's pytrees); StepSurrogate (the
            interface of the emulated stateful model, EmulatedModel); save/load as
            config.json + weights.npz (no pickle).
evaluate    R2/RMSE/bias, parameter-gradient agreement (cosine, relative error), timing,
            rollout skill, the held-out experiments of the emulator study.
plots       scatter, gradient and rollout figures against the process model.
toy         a one-bucket soil-water + light-use model behind the interface (ToyModel).
coupled     StatefulSpec adapter of process_models.coupled.
hybrid      coupled-model surrogate: a Flax MLP is the canopy argument of the model's own
            step, which does the exact water/carbon bookkeeping (HybridCoupledSurrogate).

Example
-------
>>> from emulator import VPRMSurrogate
>>> sur = VPRMSurrogate.load("experiments/output/emulator_study/vprm_surrogate")
>>> out = sur.simulate(params, forcing)          # same pytrees as process_models.vprm.simulate

See ``emulator/README.md`` and ``experiments/emulator_study.py``.
"""
from .design import ParameterSpace, sample, vprm_parameter_space
from .evaluate import gradient_agreement, metrics_table, regression_metrics, rollout_metrics, time_call
from .hybrid import CanopyEmulator, HybridCoupledSurrogate, hybrid_step, train_coupled_hybrid
from .generate import (ChunkedDataset, StatefulSpec, WeatherPerturbation, generate_trajectories,
                       generate_vprm, simulate_vectors, spec_from_model, vprm_forcing_pool, vprm_model,
                       vprm_targets, window_design)
from .networks import VPRM_INPUTS, PointwiseEmulator, StepEmulator, vprm_features
from .normalise import Normaliser
from .surrogate import EmulatedModel, StepSurrogate, VPRMSurrogate, load_weights, save_weights
from .toy import ToyModel
from .train import (ChunkStream, TrainConfig, TrainResult, WindowStream, fit, pointwise_loss,
                    rollout_loss, train_step_emulator, train_vprm)

__all__ = [
    "CanopyEmulator", "ChunkStream", "ChunkedDataset", "EmulatedModel", "HybridCoupledSurrogate", "hybrid_step",
    "train_coupled_hybrid", "Normaliser", "ParameterSpace", "PointwiseEmulator",
    "StatefulSpec", "StepEmulator", "StepSurrogate", "TrainConfig", "TrainResult", "VPRMSurrogate",
    "VPRM_INPUTS", "WeatherPerturbation", "WindowStream", "fit", "generate_trajectories",
    "generate_vprm", "gradient_agreement", "load_weights", "metrics_table", "pointwise_loss",
    "regression_metrics", "rollout_loss", "rollout_metrics", "sample", "save_weights",
    "simulate_vectors", "spec_from_model", "time_call", "ToyModel", "train_step_emulator", "train_vprm",
    "vprm_features", "vprm_forcing_pool", "vprm_model", "vprm_parameter_space", "vprm_targets",
    "window_design",
]
