"""The per-frame baseline of a sequence run: "the chord VAE applied beat by beat".

The core's VAE as the chord dataset trains it (mlp, hidden 256-128, latent 4, independent
Bernoulli output, beta 0.5) is trained on the frames of the training split as independent
examples, and scores each held-out frame alone (IWAE, nats per frame): what a sequence model
gains from time. Training is short and fixed (no early stopping: nothing held out is watched):
``steps`` Adam updates on at most ``max_frames`` training frames drawn by the seed (a smaller
set is repeated to fill epochs of at least :data:`MIN_BATCHES` batches), so it is
deterministic given the seed and takes seconds. :func:`stored_frame_vae` keeps the model
beside a run (``RUN/per-frame/model.pt``, as the no-latent ablation is kept in ``RUN/no-latent``)
so that ``evaluate`` trains it once.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from .checkpoint import load_checkpoint, save_checkpoint
from .config import TrainConfig
from .evaluate import weighted_iwae
from .meta import DatasetMeta
from .plane import distinct_events
from .train import fit, torch_settings
from .vae import VAE, ModelConfig, build_model

#: where the per-frame VAE is stored beside a sequence run
FRAME_VAE = "per-frame"
#: batches in an epoch of the per-frame VAE at least (its frames are repeated to fill it)
MIN_BATCHES = 100


@dataclass(frozen=True)
class FrameVAEConfig:
    """The per-frame VAE: ``hidden`` layers and ``latent_dim`` of the mlp, KL weight ``beta``;
    ``steps`` Adam updates of ``batch_size`` frames at ``learning_rate`` on at most ``max_frames``
    training frames; ``k`` importance samples of its IWAE bound."""

    hidden: tuple[int, ...] = field(default=(256, 128))
    latent_dim: int = 4
    beta: float = 0.5
    steps: int = 6000     # on pop909-train's held-out pieces: 2,000 steps 4.81, 6,000 4.66, 15,000 4.58 nats per beat
    batch_size: int = 256
    learning_rate: float = 2e-3
    max_frames: int = 100_000
    k: int = 1000


def train_frame_vae(frames: torch.Tensor, seed: int, config: FrameVAEConfig = FrameVAEConfig()) -> tuple[VAE, TrainConfig]:
    """A core VAE trained on ``frames`` ``(F, D)`` (binary) as independent examples; returns it
    (eval mode) and the training settings used. Deterministic given ``seed``."""
    with torch_settings(threads=1, seed=seed):     # a tiny model: more threads only wait on each other
        if len(frames) > config.max_frames:
            frames = frames[torch.randperm(len(frames))[:config.max_frames]]
        else:       # a small set repeated: epochs of at least MIN_BATCHES batches, not thousands of tiny ones
            frames = frames.repeat(math.ceil(MIN_BATCHES * config.batch_size / len(frames)), 1)
        model = build_model(ModelConfig(arch="mlp", event_shape=(frames.shape[1],), latent_dim=config.latent_dim,
                                        hidden=config.hidden))
        epochs = max(1, math.ceil(config.steps * config.batch_size / len(frames)))
        training = TrainConfig(epochs=epochs, batch_size=config.batch_size, learning_rate=config.learning_rate,
                               beta=config.beta, seed=seed, device="cpu")
        fit(model, frames, frames[:4096], training, progress=False, log=lambda line: None)
    return model.eval(), training


@torch.no_grad()
def frame_vae_nll(model: VAE, frames: torch.Tensor, k: int = FrameVAEConfig.k, seed: int = 0) -> float:
    """The K-sample IWAE bound of ``model`` on each of ``frames`` ``(F, D)`` alone, in nats per
    frame (distinct frames scored once and weighted by their counts)."""
    distinct, counts = distinct_events(frames)
    return weighted_iwae(model, distinct, counts, k, torch.Generator().manual_seed(seed))[0]


def stored_frame_vae(run_dir: str | Path, frames: torch.Tensor, seed: int, meta: DatasetMeta,
                     config: FrameVAEConfig = FrameVAEConfig()) -> VAE:
    """The per-frame VAE stored in ``run_dir/per-frame/model.pt``; trained on the training frames
    ``frames`` ``(F, D)`` with ``seed`` and stored there (atomically) when it is not there yet."""
    path = Path(run_dir) / FRAME_VAE / "model.pt"
    if path.is_file():
        return load_checkpoint(path).model
    model, training = train_frame_vae(frames, seed, config)
    save_checkpoint(path, model, None, training, meta, training.epochs)
    return model
