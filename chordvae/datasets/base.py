"""The dataset adapter interface: how a kind of data loads, labels and draws itself.

Training, checkpoints and the generic pictures never import a dataset; they are handed
a :class:`Data` and a :class:`DatasetAdapter`. See the README for a worked example.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

import torch
from torch import nn

from ..batch import Augment
from ..errors import ChordVAEError
from ..config import TrainConfig
from ..meta import DatasetMeta, Options
from ..plane import LatentPlane
from ..vae import VAE, ModelConfig, build_model

if TYPE_CHECKING:  # pretty_midi is not needed to load data
    from ..batch import Events
    from ..runs import Run
    from ..listen.midi import RenderOptions


@dataclass
class Data:
    """A dataset in memory, split and ready to train on.

    Events are float32 tensors with values in [0, 1], shape ``(N, *event_shape)``;
    labels are int64 ``(N,)`` indices into ``label_names`` (-1: no label).
    ``meta`` is stored in the checkpoint, and enough for :meth:`DatasetAdapter.reload` to
    rebuild the same data and for renderers to draw it.
    ``notices`` are one-line remarks for the user (e.g. how the split was made).
    ``train_groups`` ``(N_train,)``, when given, says which training events belong together
    (e.g. the piece of each chord), so that cross-validation keeps groups whole.
    ``piece_parts``, when the data is made of identifiable pieces, maps each piece's identity
    (chords: its file's sha256) to ``"train"`` or ``"validation"``.
    Events may also be a tensor-like batch (:class:`chordvae.batch.Masked`: windows with a
    mask); ``test``, when the data has a canonical test split, is held out for reporting only;
    ``train_tiled``, when the training windows overlap, is the training split with every frame
    once (for baselines fitted on it), ``train_tiled_groups`` ``(N_tiled,)`` the piece of each
    of its windows (for cross-validation over pieces).
    """

    train: torch.Tensor
    validation: torch.Tensor
    train_labels: torch.Tensor
    validation_labels: torch.Tensor
    label_names: list[str]
    meta: DatasetMeta
    notices: list[str] = field(default_factory=list)
    train_groups: torch.Tensor | None = None
    piece_parts: dict[str, str] = field(default_factory=dict)
    test: Any = None
    train_tiled: Any = None
    train_tiled_groups: torch.Tensor | None = None

    def events(self) -> Events:
        """The corpus the pictures and the latent plane show: every event, training then
        validation; for windows of sequences (not one tensor), the validation windows."""
        if isinstance(self.train, torch.Tensor):
            return torch.cat([self.train, self.validation])
        return self.validation

    @property
    def event_shape(self) -> tuple[int, ...]:
        return tuple(self.train.shape[1:])


@dataclass
class Pieces:
    """Every event of some sources, unsplit, with the piece each came from (for learning curves
    and for scoring a corpus a model never saw). ``events`` ``(N, *event_shape)`` float32;
    ``piece`` int64 ``(N,)`` in ``range(n_pieces)``; ``notices`` one-line remarks; ``ids`` an
    identity of each piece's content (chords: its file's sha256; empty: unknown), matched
    against a run's :attr:`Data.piece_parts` to tell which pieces it has seen."""

    events: torch.Tensor
    piece: torch.Tensor
    n_pieces: int
    notices: list[str] = field(default_factory=list)
    ids: list[str] = field(default_factory=list)


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

    def load(self, sources: list[str], options: Options | Mapping[str, Any], seed: int,
             run_dir: Path | None = None) -> Data:
        """Read the data named by ``sources`` (paths; may be empty) and split it with ``seed``.

        ``run_dir``, when given, is where the adapter may leave reports (e.g. skipped files).
        """
        raise NotImplementedError

    def reload(self, meta: DatasetMeta) -> Data:
        """Rebuild the data a checkpoint was trained on from its stored ``meta``."""
        return self.load(meta.sources, meta.options, meta.seed)

    def model_config(self, event_shape: tuple[int, ...], arch: str | None = None, latent_dim: int | None = None,
                     hidden: Sequence[int] | None = None) -> ModelConfig:
        """The model for events of ``event_shape``: ``arch``, ``latent_dim`` and ``hidden`` default
        to this dataset's choices."""
        return ModelConfig(arch=arch or self.default_arch, event_shape=tuple(event_shape),
                           latent_dim=latent_dim or self.default_latent_dim,
                           hidden=tuple(hidden) if hidden else self.default_hidden)

    def build_model(self, data: Data, arch: str | None = None, latent_dim: int | None = None,
                    hidden: Sequence[int] | None = None) -> nn.Module:
        """The untrained model for ``data``: the core's VAE of :meth:`model_config` by default; an
        adapter with its own model family (sequences) builds that instead."""
        return build_model(self.model_config(data.event_shape, arch, latent_dim, hidden))

    def augmentation(self, options: Options | Mapping[str, Any]) -> Augment | None:
        """The random change of every training batch that runs with ``options`` train with (e.g.
        each event moved to a random key), or None (the default: none)."""
        return None

    def load_pieces(self, sources: list[str], options: Options | Mapping[str, Any]) -> Pieces:
        """All events of ``sources`` read with ``options``, grouped by piece (not split)."""
        raise ChordVAEError(f"{self.name} data is not made of pieces; use a dataset such as chords")

    def load_pieces_for(self, sources: list[str], meta: DatasetMeta) -> Pieces:
        """All events of ``sources`` read as the run of ``meta`` reads its own (its options; an
        adapter whose events depend on more, such as a window length, also uses that), by piece:
        what ``evaluate --on`` scores."""
        return self.load_pieces(sources, meta.options)

    def evaluation(self, run: Run, data: Data, x: Events, k: int | None, seed: int,
                   progress: bool) -> dict[str, Any]:
        """The report of ``run`` on events ``x`` of its ``data`` (:func:`chordvae.evaluate.evaluate`:
        bounds, latent diagnostics, the adapter's figures and the baselines fitted on the training
        part). ``k`` importance samples default to 1000 for small events (chords), 100 for images."""
        from ..evaluate import evaluate

        k = k or (1000 if x[0].numel() <= 64 else 100)
        figures = {**self.metrics(run.model, x), **self.latent_figures(run.model, x, plane=run.latent_plane(data))}
        return evaluate(run.model, data.train, x, k, seed=seed, extra=figures, train_groups=data.train_groups,
                        progress=progress)

    def metrics(self, model: VAE, x: torch.Tensor) -> dict[str, float]:
        """Extra validation figures for ``metrics.jsonl`` (none by default)."""
        return {}

    def default_scale(self, plane: LatentPlane) -> float:
        """Half-width of the ``latent_space.png`` grid (and ``decode``'s) when none is given: the
        plane's extent, which holds every event's dot."""
        return plane.extent or 1.0

    def plot_latent_space(self, model: VAE, data: Data | None, meta: DatasetMeta,
                          path: Path, n: int | None = None, scale: float | None = None,
                          plane: LatentPlane | None = None) -> None:
        """Draw the decoded n x n grid over [-scale, scale]^2 of the run's latent ``plane`` to
        ``path`` (PNG); ``n=None`` and ``scale=None`` let the adapter choose a grid that stays
        readable and covers the data."""
        raise NotImplementedError

    def plot_label_clusters(self, model: VAE, data: Data, meta: DatasetMeta,
                            path: Path, plane: LatentPlane | None = None) -> None:
        """Draw the posterior means of the events in the run's latent ``plane``, coloured by
        label, to ``path``."""
        raise NotImplementedError

    def latent_figures(self, model: VAE, x: torch.Tensor, plane: LatentPlane | None = None) -> dict[str, float]:
        """Figures about the latent space over events ``x`` for ``evaluate``, given the run's
        latent ``plane`` (none by default)."""
        return {}

    def plot_extra(self, model: VAE, data: Data, meta: DatasetMeta, run_dir: Path,
                   plane: LatentPlane | None = None) -> list[Path]:
        """Draw any further pictures or reports into ``run_dir`` (in the run's latent ``plane``);
        return their paths (none by default)."""
        return []

    def parse_event(self, text: str, meta: DatasetMeta) -> torch.Tensor:
        """An event the user typed (e.g. a chord ``"C E G"``) as a tensor of the event shape."""
        raise ChordVAEError(f"{self.name} events cannot be typed; give a latent point such as z:0.5,-1.2")

    def render(self, probs: torch.Tensor, path: Path, options: RenderOptions) -> list[str]:
        """Write decoded events ``probs`` ``(N, *event_shape)`` to ``path`` (MIDI, PNG, ...)
        in order; return one line per event describing it for the user."""
        raise ChordVAEError(f"{self.name} runs cannot render decoded events")
