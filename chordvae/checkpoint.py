"""Checkpoints: weights plus everything needed to rebuild the model and its data."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .errors import ChordVAEError
from .fileio import atomic_path
from .plots import LatentPlane
from .sequence import build_any
from .vae import VAE

FORMAT = 1
REQUIRED = frozenset({"format", "model_config", "state_dict", "training", "dataset", "dataset_meta", "epoch"})


@dataclass
class Checkpoint:
    """A loaded ``model.pt``: the model (eval mode, on CPU) and the configs it was trained with.

    ``rng_state`` (torch's global generator) and ``batch_order_state`` (the generator that
    shuffles each epoch) let a resumed run continue exactly; ``latent_plane`` is the plane of
    the pictures and of ``decode --grid`` (None in checkpoints written before it was stored).
    ``epoch`` epochs were trained; the model's weights are those of ``weights_epoch`` (the best
    one when training stopped early). Resuming continues from ``last_state_dict`` (None: the
    model's own weights are the last) and ``stopping`` (early-stopping counters and
    learning-rate schedule)."""

    model: VAE
    training: dict[str, Any]
    dataset: str
    dataset_meta: dict[str, Any]
    epoch: int
    optimizer_state: dict[str, Any] | None
    rng_state: torch.Tensor | None
    batch_order_state: torch.Tensor | None = None
    latent_plane: LatentPlane | None = None
    weights_epoch: int = 0
    last_state_dict: dict[str, torch.Tensor] | None = None
    stopping: dict[str, Any] | None = None


def save_checkpoint(path: str | Path, model: VAE, optimizer: torch.optim.Optimizer | None,
                    training: dict[str, Any], dataset: str, dataset_meta: dict[str, Any],
                    epoch: int, batch_order: torch.Generator | None = None,
                    latent_plane: LatentPlane | None = None, weights: dict[str, torch.Tensor] | None = None,
                    weights_epoch: int | None = None, stopping: dict[str, Any] | None = None) -> None:
    """Write ``path`` atomically (temporary file + rename), with torch's global random state,
    the ``batch_order`` generator's state and the ``latent_plane``.

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
        "batch_order_state": batch_order.get_state() if batch_order is not None else None,
        "latent_plane": latent_plane.to_dict() if latent_plane is not None else None,
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Rebuild the model from ``path`` alone; a missing file, or one that is not a chordvae
    checkpoint (another program's ``.pt``, a truncated file, not torch at all), raises ChordVAEError."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.pt"
    if not path.is_file():
        raise ChordVAEError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises RuntimeError, UnpicklingError, EOFError, ... on foreign files
        raise ChordVAEError(f"{path} is not a chordvae checkpoint: torch cannot read it (truncated, or "
                            f"not a torch file: {_first_line(e)})") from None
    missing = REQUIRED - set(state) if isinstance(state, dict) else REQUIRED
    if missing:
        what = f"a dict without {', '.join(sorted(missing))}" if isinstance(state, dict) else f"a {type(state).__name__}"
        raise ChordVAEError(f"{path} is not a chordvae checkpoint: it holds {what}, "
                            "not the model, configuration and dataset that chordvae train writes")
    if not isinstance(state["format"], int) or state["format"] > FORMAT:
        raise ChordVAEError(f"{path} has checkpoint format {state['format']!r}; this chordvae "
                            f"({__version__}) reads format {FORMAT} or older")
    try:
        model = build_any(state["model_config"])  # the core's VAE, or a sequence VAE
        model.load_state_dict(state["state_dict"])
        epoch = int(state["epoch"])
        plane = LatentPlane.from_dict(state["latent_plane"]) if state.get("latent_plane") else None
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as e:
        raise ChordVAEError(f"{path} is a damaged chordvae checkpoint: its weights do not fit its "
                            f"model configuration ({_first_line(e)})") from None
    model.eval()
    return Checkpoint(model, state["training"], state["dataset"], state["dataset_meta"],
                      epoch, state.get("optimizer"), state.get("rng_state"), state.get("batch_order_state"), plane,
                      int(state.get("weights_epoch", epoch)), state.get("last_state_dict"), state.get("stopping"))


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
