"""The dataset adapter interface: how a kind of data loads, labels and draws itself.

Training, checkpoints and the generic pictures never import a dataset; they are handed
a :class:`Data` and a :class:`DatasetAdapter`. See the README for a worked example.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import torch
from torch import nn

from ..errors import ChordVAEError
from ..train import TrainConfig
from ..vae import VAE

if TYPE_CHECKING:  # pretty_midi is not needed to load data
    from ..listen.midi import RenderOptions


@dataclass
class Data:
    """A dataset in memory, split and ready to train on.

    Events are float32 tensors with values in [0, 1], shape ``(N, *event_shape)``;
    labels are int64 ``(N,)`` indices into ``label_names`` (-1: no label).
    ``meta`` is JSON-serialisable, stored in the checkpoint, and enough for
    :meth:`DatasetAdapter.reload` to rebuild the same data and for renderers to draw it.
    ``notices`` are one-line remarks for the user (e.g. how the split was made).
    ``train_groups`` ``(N_train,)``, when given, says which training events belong together
    (e.g. the piece of each chord), so that cross-validation keeps groups whole.
    Events may also be a tensor-like batch (:class:`chordvae.sequence.Masked`: windows with a
    mask); ``test``, when the data has a canonical test split, is held out for reporting only;
    ``train_tiled``, when the training windows overlap, is the training split with every frame
    once (for baselines fitted on it).
    """

    train: torch.Tensor
    validation: torch.Tensor
    train_labels: torch.Tensor
    validation_labels: torch.Tensor
    label_names: list[str]
    meta: dict[str, Any]
    notices: list[str] = field(default_factory=list)
    train_groups: torch.Tensor | None = None
    test: Any = None
    train_tiled: Any = None

    @property
    def event_shape(self) -> tuple[int, ...]:
        return tuple(self.train.shape[1:])


@dataclass
class Pieces:
    """Every event of some sources, unsplit, with the piece each came from (for learning curves
    and for scoring a corpus a model never saw). ``events`` ``(N, *event_shape)`` float32;
    ``piece`` int64 ``(N,)`` in ``range(n_pieces)``; ``notices`` one-line remarks."""

    events: torch.Tensor
    piece: torch.Tensor
    n_pieces: int
    notices: list[str] = field(default_factory=list)


class DatasetAdapter:
    """Base class of dataset adapters; subclasses set ``name`` and implement :meth:`load`.

    ``options`` are the dataset options given on the command line or in Python
    (e.g. ``data_dir`` for MNIST; chords take a ``ChordOptions``); an adapter reads the keys
    it knows and ignores those that are ``None``. ``progress`` (set by the caller) says
    whether loading may show progress bars; ``default_grid`` is the side of the
    ``latent_space.png`` grid, which ``decode --grid`` also walks by default.
    """

    name: ClassVar[str]
    default_arch: ClassVar[str] = "mlp"
    default_hidden: ClassVar[tuple[int, ...]] = (400,)
    default_latent_dim: ClassVar[int] = 2
    default_grid: ClassVar[int] = 12
    #: training settings when the user gives none (see :func:`chordvae.runs.training_config`)
    default_training: ClassVar[TrainConfig] = TrainConfig()
    progress: bool = True
    #: What the pictures can be coloured by (``colour_by`` of the two plot methods; empty: fixed).
    colourings: ClassVar[tuple[str, ...]] = ()

    def load(self, sources: list[str], options: dict[str, Any], seed: int,
             run_dir: Path | None = None) -> Data:
        """Read the data named by ``sources`` (paths; may be empty) and split it with ``seed``.

        ``run_dir``, when given, is where the adapter may leave reports (e.g. skipped files).
        """
        raise NotImplementedError

    def reload(self, meta: dict[str, Any]) -> Data:
        """Rebuild the data a checkpoint was trained on from its stored ``meta``."""
        return self.load(meta.get("sources", []), meta.get("options", {}), meta["seed"])

    def build_model(self, data: Data, latent_dim: int | None, hidden: Sequence[int] | None) -> nn.Module | None:
        """The adapter's own model family for ``data`` (e.g. a sequence VAE), or None: the
        core's VAE of ``default_arch`` is built."""
        return None

    def load_pieces(self, sources: list[str], options: dict[str, Any]) -> Pieces:
        """All events of ``sources`` read with ``options``, grouped by piece (not split)."""
        raise ChordVAEError(f"{self.name} data is not made of pieces; use a dataset such as chords")

    def metrics(self, model: VAE, x: torch.Tensor) -> dict[str, float]:
        """Extra validation figures for ``metrics.jsonl`` (none by default)."""
        return {}

    def plot_latent_space(self, model: VAE, data: Data | None, meta: dict[str, Any],
                          path: Path, n: int | None = None, scale: float = 1.0) -> None:
        """Draw the decoded n x n latent grid over [-scale, scale]^2 to ``path`` (PNG);
        ``n=None`` lets the adapter choose a grid that stays readable."""
        raise NotImplementedError

    def plot_label_clusters(self, model: VAE, data: Data, meta: dict[str, Any],
                            path: Path) -> None:
        """Draw the posterior means of the validation events, coloured by label, to ``path``."""
        raise NotImplementedError

    def latent_figures(self, model: VAE, x: torch.Tensor) -> dict[str, float]:
        """Figures about the latent space over events ``x`` for ``evaluate`` (none by default)."""
        return {}

    def plot_extra(self, model: VAE, data: Data, meta: dict[str, Any], run_dir: Path) -> list[Path]:
        """Draw any further pictures or reports into ``run_dir``; return their paths (none by default)."""
        return []

    def parse_event(self, text: str, meta: dict[str, Any]) -> torch.Tensor:
        """An event the user typed (e.g. a chord ``"C E G"``) as a tensor of the event shape."""
        raise ChordVAEError(f"{self.name} events cannot be typed; give a latent point such as z:0.5,-1.2")

    def render(self, probs: torch.Tensor, path: Path, options: RenderOptions) -> list[str]:
        """Write decoded events ``probs`` ``(N, *event_shape)`` to ``path`` (MIDI, PNG, ...)
        in order; return one line per event describing it for the user."""
        raise ChordVAEError(f"{self.name} runs cannot render decoded events")
