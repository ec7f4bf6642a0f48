"""Chord progressions as a dataset for the sequence VAE (:mod:`chordvae.sequence`).

The sources are read as the chord dataset reads them, then each piece becomes one frame per beat
(:mod:`chordvae.progressions`): windows of ``bars`` bars, training windows on every bar of the
training pieces, the held-out pieces (whole, chosen by the seed) tiled so that every beat is
scored once. Windows have no context: the decoder reads z alone, so a point of the latent space
is a whole window, the same progression that ``decode``, ``interpolate`` and the explorer play.
By default each beat has its own latent (:mod:`chordvae.stepwise`): a window's point is the
latents of its beats, beat by beat; ``SequenceConfig(latent_per="window")`` gives one latent
for the whole window.
Typed progressions (``"C G Am F"``, ``"| C . G . |"``, ``"I V vi IV"``: numerals in C or the
key given, ``"song.mid:9-12"``) are events; decoded windows are written as MIDI or MusicXML with
chord symbols (and WAV), one chord per beat with held chords joined. The pictures are the
progression map (:mod:`chordvae.pictures.sequences`) and the decoded grid.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from ..baselines import MAX_ORDER
from ..batch import Augment, Masked
from ..checkpoint import load_checkpoint
from ..errors import ChordVAEError
from ..frame_vae import stored_frame_vae
from ..meta import DatasetMeta
from ..pictures import sequences as pictures
from ..plane import LatentPlane
from ..plots import save_figure
from ..progressions.corpus import ProgressionCorpus, ProgressionOptions, read_progressions
from ..progressions.search import WindowPoints, window_points
from ..progressions.typed import looks_roman, parse_key, parse_progression
from ..progressions.windows import Windows, held_out, split, tiling_windows
from ..sequence import ABLATION, ARCH, SEQUENCE_K, SequenceConfig, build_sequence, frames_of, sequence_report
from ..train import TrainConfig
from .base import Data, DatasetAdapter, Pieces
from .chords import fingerprint, random_keys
from .seen import split_parts

if TYPE_CHECKING:
    from ..listen.midi import RenderOptions
    from ..runs import Run

#: the key of Roman numerals typed without one
DEFAULT_KEY = "C"
#: about how many of a path's points the progression map names
PATH_LABELS = 20


@dataclass
class ProgressionData(Data):
    """Progression windows that also know each held-out window's corpus: ``validation_corpus``
    int64 ``(N_validation,)`` indices into ``corpus_names``; ``corpus``, the beats of every piece
    read (for the progression map), and the ``options`` they were read and cut with."""

    corpus_names: list[str] = field(default_factory=list)
    validation_corpus: torch.Tensor | None = None
    corpus: ProgressionCorpus | None = None
    options: ProgressionOptions = field(default_factory=ProgressionOptions)


def _masked(windows: Windows) -> Masked:
    return Masked(windows.frames, windows.mask)


def _random_key_windows(batch: Masked, generator: torch.Generator, blocks: int) -> Masked:
    """Each window of ``batch`` moved to a random key (:func:`~chordvae.datasets.chords.random_keys`)."""
    return Masked(random_keys(batch.x, generator, blocks), batch.mask)


def _piece_ids(sources: list[str], corpus: ProgressionCorpus) -> list[str]:
    """Each piece's identity: its file's sha256 (as the chord dataset knows pieces)."""
    files = fingerprint(list(sources))
    return [files.get(source, source) for source in corpus.sources]


class Progressions(DatasetAdapter):
    """Chord progressions read from music files (see the module docstring).

    Options (a :class:`~chordvae.progressions.corpus.ProgressionOptions` or its flat dict):
    ``bars`` per window, ``transpose``, ``root``, ``jobs``, ``strict``, ``no_cache``.
    """

    name: ClassVar[str] = "progressions"
    colourings: ClassVar[tuple[str, ...]] = pictures.MAP_COLOURINGS
    default_arch: ClassVar[str] = ARCH
    default_latent_dim: ClassVar[int] = 2
    default_grid: ClassVar[int] = 4
    #: chosen on pop909-train's held-out pieces (benchmarks/README.md, "A latent per beat"): a
    #: latent of 2 dimensions per beat (32 per window of 16 beats), its prior given the beats
    #: before it a mixture of 64 Gaussians; word dropout 0.5; free bits of 1.75 nats per dimension
    #: and beat until the last 3 epochs, so that each beat's chord is read from its z_t; those fit
    #: the prior alone to the codes (the posterior and the decoder frozen), and the run keeps the
    #: last, refitted epoch; every training window in a random key each epoch (``transpose
    #: random``, the options' default), for 19 epochs or, on a smaller corpus, as many as make 8,000
    #: updates (pop909-train: 21, the chorales: 164); a decoder GRU of 192, the posterior's hidden
    #: layer 64 (the explorer page stays small)
    default_model: ClassVar[SequenceConfig] = SequenceConfig(encoder_hidden=64, decoder_hidden=192, made_hidden=64,
                                                             input_dropout=0.5, prior_components=64,
                                                             latent_per="frame")
    default_training: ClassVar[TrainConfig] = TrainConfig(
        epochs=19, min_steps=8000, batch_size=128, learning_rate=3e-3, free_bits=1.75, refit_epochs=3)

    def load(self, sources: list[str], options: ProgressionOptions | Mapping[str, Any], seed: int,
             run_dir: Path | None = None) -> ProgressionData:
        opts = options if isinstance(options, ProgressionOptions) else ProgressionOptions.from_dict(options)
        if not sources:
            raise ChordVAEError("progressions read music files: give PATHS (files or folders)")
        corpus = read_progressions(list(sources), opts, progress=self.progress)
        beats_per_bar = corpus.bar_length()
        length = opts.bars * beats_per_bar
        train, held = split(corpus, opts, seed, length)
        if not len(train) or not len(held):
            raise ChordVAEError(f"too little music for windows of {opts.bars} bars: {corpus.summary}")
        names = list(dict.fromkeys(corpus.corpus))
        corpus_of_piece = torch.tensor([names.index(c) for c in corpus.corpus], dtype=torch.int64)
        meta = DatasetMeta(self.name, list(sources), opts.to_dict(), seed,
                           {"window": length, "context": 0, "beats_per_bar": beats_per_bar,
                            "pieces": corpus.n_pieces})
        held_pieces = held_out(corpus.n_pieces, seed)
        ids = _piece_ids(sources, corpus)
        # every training beat once, for the baselines: after only the beats an n-gram reads
        tiled = tiling_windows(corpus, np.flatnonzero(~held_pieces), opts.bars, length, opts.transpose,
                               context=min(length, MAX_ORDER - 1))
        n_held = len(set(held.piece.tolist()))
        note = (f"{n_held} of {corpus.n_pieces} pieces held out whole (seed {seed}); windows of "
                f"{opts.bars} bars = {length} beats")
        return ProgressionData(
            train=_masked(train), validation=_masked(held),
            train_labels=torch.full((len(train),), -1), validation_labels=torch.full((len(held),), -1),
            label_names=[], meta=meta, notices=[corpus.summary, note], train_groups=train.piece,
            train_tiled=_masked(tiled), train_tiled_groups=tiled.piece,
            piece_parts=split_parts(ids, np.arange(corpus.n_pieces), ~held_pieces),
            corpus_names=names, validation_corpus=corpus_of_piece[held.piece], corpus=corpus, options=opts)

    def model_config(self, event_shape: tuple[int, ...], arch: str | None = None, latent_dim: int | None = None,
                     hidden: Sequence[int] | None = None) -> SequenceConfig:
        """The sequence model for windows of shape ``(T, D)`` without context (as :meth:`load` and
        :meth:`load_pieces` cut them); ``hidden`` = (encoder, decoder) GRU sizes."""
        if arch not in (None, ARCH):
            raise ChordVAEError(f"{self.name} trains a sequence VAE; --arch {arch} is for single events")
        length, keys = event_shape
        config = replace(self.default_model, keys=keys, window=length, context=0,
                         latent_dim=self.default_latent_dim if latent_dim is None else latent_dim)
        if hidden:
            if len(hidden) != 2:
                raise ChordVAEError("--hidden for a sequence model is ENCODER,DECODER (GRU sizes), e.g. 64,128")
            config = replace(config, encoder_hidden=hidden[0], decoder_hidden=hidden[1])
        return config

    def build_model(self, data: Data, arch: str | None = None, latent_dim: int | None = None,
                    hidden: Sequence[int] | None = None) -> nn.Module:
        """The sequence VAE sized to the windows; ``hidden`` = (encoder, decoder) GRU sizes."""
        extra = data.meta.extra
        config = self.model_config(tuple(data.train.shape[1:]), arch, latent_dim, hidden)
        return build_sequence(replace(config, window=extra["window"], context=extra["context"]))

    def augmentation(self, options: ProgressionOptions | Mapping[str, Any]) -> Augment | None:
        """With ``transpose random``, every training window in a random key each epoch."""
        opts = options if isinstance(options, ProgressionOptions) else ProgressionOptions.from_dict(options)
        return partial(_random_key_windows, blocks=opts.layout.blocks) if opts.transpose == "random" else None

    def load_pieces(self, sources: list[str], options: ProgressionOptions | Mapping[str, Any]) -> Pieces:
        """Every piece of ``sources`` tiled in windows of ``bars`` bars, without context (see
        :meth:`load_pieces_for`; here the window length is that of these pieces' meter)."""
        opts = options if isinstance(options, ProgressionOptions) else ProgressionOptions.from_dict(options)
        corpus = read_progressions(list(sources), opts, progress=self.progress)
        length = opts.bars * corpus.bar_length()
        return self._tiled_pieces(sources, corpus, opts, length, 0)

    def _tiled_pieces(self, sources: list[str], corpus: ProgressionCorpus, opts: ProgressionOptions,
                      length: int, context: int) -> Pieces:
        tiled = tiling_windows(corpus, None, opts.bars, length, opts.transpose, context=context)
        return Pieces(_masked(tiled), tiled.piece, corpus.n_pieces, [corpus.summary], _piece_ids(sources, corpus))

    def load_pieces_for(self, sources: list[str], meta: DatasetMeta) -> Pieces:
        """Every piece of ``sources`` read with the run's options and tiled in the run's windows
        (its length and context, whatever the meter of these pieces), one ``Masked`` window per
        row of ``events``; pieces are known by their file's sha256."""
        opts = ProgressionOptions.from_dict(meta.options)
        corpus = read_progressions(list(sources), opts, progress=self.progress)
        return self._tiled_pieces(sources, corpus, opts, meta.extra["window"], meta.extra["context"])

    def evaluation(self, run: Run, data: Data, x: Masked, k: int | None, seed: int,
                   progress: bool) -> dict[str, Any]:
        """NLL per beat (:func:`chordvae.sequence.sequence_report`) with the baselines fitted on the
        training pieces (every beat once): independent Bernoulli, the n-gram over beat frames and
        the chord VAE applied beat by beat (:mod:`chordvae.frame_vae`; trained with the run's seed
        the first time and kept in ``RUN/per-frame``), and the decoder without a latent when one
        was trained beside the run."""
        ablation = run.dir / ABLATION / "model.pt"
        train = data.train_tiled or data.train
        frame_model = stored_frame_vae(run.dir, frames_of(train), run.training.seed, run.dataset_meta)
        return sequence_report(run.model, train, x, k or SEQUENCE_K, seed,
                               ablation=load_checkpoint(ablation).model if ablation.is_file() else None,
                               train_groups=data.train_tiled_groups, frame_model=frame_model)

    def parse_event(self, text: str, meta: DatasetMeta, key: str | None = None) -> Masked:
        """A typed progression (chord symbols, beats with bar lines, Roman numerals in ``key``
        (default C; chord symbols ignore it), or a file span ``FILE:FIRST-LAST``) as one window
        ``(1, C + T, D)`` of the run's length."""
        window, context = meta.extra["window"], meta.extra["context"]
        options = ProgressionOptions.from_dict(meta.options)
        meter = f"{meta.extra['beats_per_bar']}/4"
        if key is not None:
            parse_key(key)                      # a key the user gave is read even where chord symbols ignore it
        try:
            typed = parse_progression(text, meter=meter, layout=options.layout, options=options)
        except ChordVAEError as as_chords:
            try:
                typed = parse_progression(text, key=key or DEFAULT_KEY, meter=meter, layout=options.layout,
                                          options=options)
            except ChordVAEError as as_numerals:
                raise (as_numerals if looks_roman(text) else as_chords) from None
        frames, mask = typed.as_window(window)
        x = np.concatenate([np.zeros((context, frames.shape[1]), dtype=np.float32), frames])
        m = np.concatenate([np.zeros(context, dtype=bool), mask])
        return Masked(torch.from_numpy(x)[None], torch.from_numpy(m)[None])

    def plot_latent_space(self, model: nn.Module, data: Data | None, meta: DatasetMeta,
                          path: Path, n: int | None = None, scale: float | None = None,
                          plane: LatentPlane | None = None, colour_by: str | None = None) -> None:
        """An n x n grid (default ``default_grid``) of points of the latent plane, each written as
        the progression decoded from it greedily (``colour_by`` is for the map only)."""
        plane = plane or LatentPlane.of(model, (data or self.reload(meta)).validation)
        save_figure(pictures.progression_grid_figure(
            model, plane, n or self.default_grid, scale or self.default_scale(plane), meta.extra["beats_per_bar"],
            f"{self.name}: windows decoded from the latent plane (greedy), bar by bar"), path)

    def plot_label_clusters(self, model: nn.Module, data: Data, meta: DatasetMeta, path: Path,
                            plane: LatentPlane | None = None, colour_by: str = "corpus") -> None:
        """The progression map (:func:`progression_map`) coloured by ``colour_by``."""
        save_figure(progression_map(model, data, plane or LatentPlane.of(model, data.validation), colour_by), path)

    def plot_extra(self, model: nn.Module, data: Data, meta: DatasetMeta, run_dir: Path,
                   plane: LatentPlane | None = None) -> list[Path]:
        """The progression map coloured by key mode and by cadence: ``progression_map_mode.png``
        and ``progression_map_cadence.png``."""
        plane = plane or LatentPlane.of(model, data.validation)
        points = map_points(model, data)
        paths = []
        for by in ("mode", "cadence"):
            paths.append(Path(run_dir) / f"progression_map_{by}.png")
            save_figure(progression_map(model, data, plane, by, points), paths[-1])
        return paths

    def render(self, frames: torch.Tensor, path: Path, options: RenderOptions) -> list[str]:
        """Decoded windows ``(N, T, D)`` as MIDI, MusicXML with chord symbols, and WAV:
        :func:`chordvae.listen.progressions.render_progressions`."""
        from ..listen.progressions import render_progressions

        return render_progressions(frames, path, options)


def map_points(model: nn.Module, data: ProgressionData) -> WindowPoints:
    """The windows the progression map shows: every piece of the run's corpus tiled (every beat
    once) at their posterior means (:func:`~chordvae.progressions.search.window_points`)."""
    if data.corpus is None:
        raise ChordVAEError("the progression map needs the run's corpus: reload the run's data")
    return window_points(model, data.corpus, data.options, tile=True)


def progression_map(model: nn.Module, data: ProgressionData, plane: LatentPlane, colour_by: str = "corpus",
                    points: WindowPoints | None = None, path: WindowPoints | None = None, path_name: str = ""):
    """The figure of the progression map (:func:`chordvae.pictures.sequences.progression_map_figure`)
    of ``data``'s windows (``points``, default :func:`map_points`) coloured by ``colour_by``, with
    the ``path`` of a piece (its windows, e.g. :func:`chordvae.progressions.search.piece_path`)."""
    points = points or map_points(model, data)
    infos = points.infos()
    labels = [getattr(info, colour_by) for info in infos]
    route = plane.project(path.means).numpy() if path is not None else None
    # at most about PATH_LABELS windows named, evenly spaced (the rest: "" names none)
    step = -(-len(route) // PATH_LABELS) if path is not None else 1
    route_labels = [f"{info.first_bar}" if k % step == 0 else "" for k, info in enumerate(path.infos())] \
        if path is not None else ()
    what = {"corpus": "corpus", "mode": "the mode of the piece's key",
            "cadence": "cadence: the last chord in the piece's key"}[colour_by]
    title = (f"progressions: {len(points)} windows of {data.options.bars} bars (every piece tiled) at their "
             f"posterior means,\ncoloured by {what}" + (f";\nthe path of {path_name}: a point per window, one bar apart, some named by their first bar"
                                                          if path is not None else ""))
    return pictures.progression_map_figure(plane.project(points.means).numpy(), labels, colour_by, plane, title,
                                           names=data.corpus_names, path=route, path_labels=route_labels,
                                           path_name=path_name)
