"""Checkpoints: weights plus everything needed to rebuild the model and its data."""
from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import __version__
from .config import TrainConfig
from .errors import ChordVAEError
from .fileio import write_bytes
from .meta import DatasetMeta
from .plane import LatentPlane
from .sequence import build_any
from .vae import VAE

FORMAT = 1
REQUIRED = frozenset({"format", "model_config", "state_dict", "training", "dataset", "dataset_meta", "epoch"})


@dataclass
class StoppingState:
    """Where early stopping and the learning-rate schedule stand after an epoch: the best
    validation loss (nats) and its epoch, the epochs since without improvement, torch's
    ReduceLROnPlateau state (None: a constant rate)."""

    best_loss: float = math.inf
    best_epoch: int = 0
    bad_epochs: int = 0
    scheduler: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"best_loss": self.best_loss, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs,
                "scheduler": self.scheduler}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> StoppingState:
        return cls(float(d["best_loss"]), int(d["best_epoch"]), int(d["bad_epochs"]), d.get("scheduler"))


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
    training: TrainConfig
    dataset_meta: DatasetMeta
    epoch: int
    optimizer_state: dict[str, Any] | None
    rng_state: torch.Tensor | None
    batch_order_state: torch.Tensor | None = None
    latent_plane: LatentPlane | None = None
    weights_epoch: int = 0
    last_state_dict: dict[str, torch.Tensor] | None = None
    stopping: StoppingState | None = None

    @property
    def dataset(self) -> str:
        return self.dataset_meta.dataset


def save_checkpoint(path: str | Path, model: VAE, optimizer: torch.optim.Optimizer | None,
                    training: TrainConfig, dataset_meta: DatasetMeta, epoch: int, batch_order: torch.Generator | None = None,
                    latent_plane: LatentPlane | None = None, weights: dict[str, torch.Tensor] | None = None,
                    weights_epoch: int | None = None, stopping: StoppingState | None = None) -> None:
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
        "training": training.to_dict(),
        "dataset": dataset_meta.dataset,
        "dataset_meta": dataset_meta.to_dict(),
        "epoch": epoch,
        "weights_epoch": weights_epoch if weights_epoch is not None else epoch,
        "stopping": stopping.to_dict() if stopping is not None else None,
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "rng_state": torch.get_rng_state(),
        "batch_order_state": batch_order.get_state() if batch_order is not None else None,
        "latent_plane": latent_plane.to_dict() if latent_plane is not None else None,
    }
    _write(path, state)


def store_latent_plane(path: str | Path, plane: LatentPlane) -> None:
    """Put ``plane`` into the checkpoint at ``path`` (atomically), leaving everything else as it is."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    state["latent_plane"] = plane.to_dict()
    _write(path, state)


def _write(path: str | Path, state: dict[str, Any]) -> None:
    """``torch.save`` into memory, then an atomic write: saving to a file directly hides a full
    disk's OSError behind a RuntimeError."""
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_bytes(path, buffer.getbuffer())


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
        training = TrainConfig.from_dict(state["training"])
        meta = DatasetMeta.from_dict(state["dataset"], state["dataset_meta"])
        stopping = StoppingState.from_dict(state["stopping"]) if state.get("stopping") else None
    except (RuntimeError, KeyError, ValueError, TypeError, AttributeError) as e:
        raise ChordVAEError(f"{path} is a damaged chordvae checkpoint: its weights do not fit its "
                            f"model configuration ({_first_line(e)})") from None
    model.eval()
    return Checkpoint(model, training, meta, epoch, state.get("optimizer"), state.get("rng_state"),
                      state.get("batch_order_state"), plane, int(state.get("weights_epoch", epoch)),
                      state.get("last_state_dict"), stopping)


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:200]
