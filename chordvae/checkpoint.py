"""Checkpoints: weights plus everything needed to rebuild the model and its data."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .errors import ChordVAEError
from .fileio import torch_save
from .vae import VAE, ModelConfig, build_model

FORMAT = 1


@dataclass
class Checkpoint:
    """A loaded ``model.pt``: the model (eval mode, on CPU) and the configs it was trained with.

    ``epoch`` epochs were trained; the model's weights are those of ``weights_epoch`` (the best
    one when training stopped early). Resuming continues from ``last_state_dict`` (None: the
    model's own weights are the last), the optimiser and ``stopping`` (early-stopping counters
    and learning-rate schedule).
    """

    model: VAE
    training: dict[str, Any]
    dataset: str
    dataset_meta: dict[str, Any]
    epoch: int
    optimizer_state: dict[str, Any] | None
    rng_state: torch.Tensor | None
    weights_epoch: int
    last_state_dict: dict[str, torch.Tensor] | None
    stopping: dict[str, Any] | None


def save_checkpoint(path: str | Path, model: VAE, optimizer: torch.optim.Optimizer | None,
                    training: dict[str, Any], dataset: str, dataset_meta: dict[str, Any],
                    epoch: int, weights: dict[str, torch.Tensor] | None = None,
                    weights_epoch: int | None = None, stopping: dict[str, Any] | None = None) -> None:
    """Write ``path`` atomically (temporary file + rename).

    ``weights`` (default: the model's own) are what every later command loads, from epoch
    ``weights_epoch``; when they are not the model's, the model's go in as the last weights
    for resuming. ``stopping`` is the early-stopping and schedule state.
    """
    current = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    state = {
        "format": FORMAT,
        "chordvae_version": __version__,
        "model_config": model.config.to_dict(),
        "state_dict": weights if weights is not None else current,
        "last_state_dict": current if weights is not None else None,
        "training": training,
        "dataset": dataset,
        "dataset_meta": dataset_meta,
        "epoch": epoch,
        "weights_epoch": weights_epoch if weights_epoch is not None else epoch,
        "stopping": stopping,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "rng_state": torch.get_rng_state(),
    }
    torch_save(state, path)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Rebuild the model from ``path`` alone; a missing or unreadable file raises ChordVAEError."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file():
        raise ChordVAEError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        config = ModelConfig.from_dict(state["model_config"])
        model = build_model(config)
        model.load_state_dict(state["state_dict"])
    except (RuntimeError, KeyError, ValueError, EOFError) as e:
        raise ChordVAEError(f"cannot read checkpoint {path}: {str(e).splitlines()[0]}") from None
    model.eval()
    return Checkpoint(model, state["training"], state["dataset"], state["dataset_meta"],
                      int(state["epoch"]), state.get("optimizer"), state.get("rng_state"),
                      int(state.get("weights_epoch", state["epoch"])), state.get("last_state_dict"),
                      state.get("stopping"))
