"""Chord progressions as a dataset for the sequence VAE (:mod:`chordvae.sequence`).

The sources are read as the chord dataset reads them, then each piece becomes one frame per beat
(:mod:`chordvae.progressions`): windows of ``bars`` bars, training windows on every bar of the
training pieces, the held-out pieces (whole, chosen by the seed) tiled so that every beat is
scored once. Each window is preceded by the window's length of context beats of its piece.
Typed progressions (``"C G Am F"``, ``"| C . G . |"``, ``"I V vi IV"``: numerals in C) are
events; decoded windows are written as MIDI, one chord per beat with held chords joined.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Mapping, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from ..baselines import MAX_ORDER
from ..batch import Masked
from ..checkpoint import load_checkpoint
from ..errors import ChordVAEError
from ..frame_vae import stored_frame_vae
from ..meta import DatasetMeta
from ..plane import LatentPlane, posterior_means
from ..plots import label_plane, save_figure
from ..progressions.corpus import ProgressionCorpus, ProgressionOptions, read_progressions
from ..progressions.frames import frame_symbols, progression_text
from ..progressions.typed import parse_progression
from ..progressions.windows import Windows, held_out, split, tiling_windows
from ..sequence import ABLATION, ARCH, SEQUENCE_K, SequenceConfig, build_sequence, frames_of, sequence_report
from ..train import TrainConfig
from .base import Data, DatasetAdapter, Pieces
from .chords import fingerprint
from .seen import split_parts

if TYPE_CHECKING:
    from ..listen.midi import RenderOptions
    from ..runs import Run

#: the key of Roman numerals typed without one
DEFAULT_KEY = "C"


@dataclass
class ProgressionData(Data):
    """Progression windows that also know each held-out window's corpus: ``validation_corpus``
    int64 ``(N_validation,)`` indices into ``corpus_names``."""

    corpus_names: list[str] = field(default_factory=list)
    validation_corpus: torch.Tensor | None = None


def _masked(windows: Windows) -> Masked:
    return Masked(windows.frames, windows.mask)


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
    default_arch: ClassVar[str] = ARCH
    default_latent_dim: ClassVar[int] = 8
    default_grid: ClassVar[int] = 4
    default_model: ClassVar[SequenceConfig] = SequenceConfig(encoder_hidden=64, decoder_hidden=128, made_hidden=64,
                                                             input_dropout=0.5)
    default_training: ClassVar[TrainConfig] = TrainConfig(
        epochs=60, batch_size=32, learning_rate=2e-3, free_bits=0.5, free_bits_epochs=15, patience=60)

    def load(self, sources: list[str], options: ProgressionOptions | Mapping[str, Any], seed: int,
             run_dir: Path | None = None) -> ProgressionData:
        opts = options if isinstance(options, ProgressionOptions) else ProgressionOptions.from_dict(options)
        if not sources:
            raise ChordVAEError("progressions read music files: give PATHS (files or folders)")
        corpus = read_progressions(list(sources), opts, progress=self.progress)
        beats_per_bar = corpus.bar_length()
        length = opts.bars * beats_per_bar
        train, held = split(corpus, opts, seed, length, context=length)
        if not len(train) or not len(held):
            raise ChordVAEError(f"too little music for windows of {opts.bars} bars: {corpus.summary}")
        names = list(dict.fromkeys(corpus.corpus))
        corpus_of_piece = torch.tensor([names.index(c) for c in corpus.corpus], dtype=torch.int64)
        meta = DatasetMeta(self.name, list(sources), opts.to_dict(), seed,
                           {"window": length, "context": length, "beats_per_bar": beats_per_bar,
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
            corpus_names=names, validation_corpus=corpus_of_piece[held.piece])

    def model_config(self, event_shape: tuple[int, ...], arch: str | None = None, latent_dim: int | None = None,
                     hidden: Sequence[int] | None = None) -> SequenceConfig:
        """The sequence model for windows of shape ``(C + T, D)`` whose first half is context (as
        :meth:`load` and :meth:`load_pieces` cut them); ``hidden`` = (encoder, decoder) GRU sizes."""
        if arch not in (None, ARCH):
            raise ChordVAEError(f"{self.name} trains a sequence VAE; --arch {arch} is for single events")
        length, keys = event_shape
        config = replace(self.default_model, keys=keys, window=length - length // 2, context=length // 2,
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

    def load_pieces(self, sources: list[str], options: ProgressionOptions | Mapping[str, Any]) -> Pieces:
        """Every piece of ``sources`` tiled in windows of ``bars`` bars after as many context beats
        (see :meth:`load_pieces_for`; here the window length is that of these pieces' meter)."""
        opts = options if isinstance(options, ProgressionOptions) else ProgressionOptions.from_dict(options)
        corpus = read_progressions(list(sources), opts, progress=self.progress)
        length = opts.bars * corpus.bar_length()
        return self._tiled_pieces(sources, corpus, opts, length, length)

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

    def parse_event(self, text: str, meta: DatasetMeta) -> Masked:
        """A typed progression (chord symbols, beats with bar lines, Roman numerals in C, or a
        file span ``FILE:FIRST-LAST``) as one window ``(1, C + T, D)`` of the run's length."""
        window, context = meta.extra["window"], meta.extra["context"]
        options = ProgressionOptions.from_dict(meta.options)
        meter = f"{meta.extra['beats_per_bar']}/4"
        try:
            typed = parse_progression(text, meter=meter, layout=options.layout, options=options)
        except ChordVAEError as first:
            try:
                typed = parse_progression(text, key=DEFAULT_KEY, meter=meter, layout=options.layout,
                                          options=options)
            except ChordVAEError:
                raise first from None
        frames, mask = typed.as_window(window)
        x = np.concatenate([np.zeros((context, frames.shape[1]), dtype=np.float32), frames])
        m = np.concatenate([np.zeros(context, dtype=bool), mask])
        return Masked(torch.from_numpy(x)[None], torch.from_numpy(m)[None])

    def plot_latent_space(self, model: nn.Module, data: Data | None, meta: DatasetMeta,
                          path: Path, n: int | None = None, scale: float | None = None,
                          plane: LatentPlane | None = None) -> None:
        """An n x n grid (default ``default_grid``) of points of the latent plane, each written as
        the progression decoded from it greedily."""
        n = n or self.default_grid
        plane = plane or LatentPlane.of(model, (data or self.reload(meta)).validation)
        z, ticks = plane.grid(n, scale or self.default_scale(plane))
        decoded = model.decode_mean(z.reshape(n * n, -1)).numpy()         # (n * n, T, D)
        bpb = meta.extra["beats_per_bar"]
        fig = Figure(figsize=(2 + n * 3.2, 2 + n * 1.2))
        ax = fig.subplots()
        for i, frames in enumerate(decoded):
            row, col = divmod(i, n)
            text = progression_text(frames, bpb).replace(" | ", " |\n| ")
            ax.text(col + 0.5, n - row - 0.5, text, ha="center", va="center", fontsize=7, family="monospace")
        ax.set_xlim(0, n)
        ax.set_ylim(0, n)
        labels = [f"{t:.1f}" for t in ticks.tolist()]
        ax.set_xticks(np.arange(n) + 0.5, labels)
        ax.set_yticks(np.arange(n) + 0.5, labels)
        label_plane(ax, plane, f"{self.name}: progressions decoded from the latent plane (greedy)")
        save_figure(fig, path)

    def plot_label_clusters(self, model: nn.Module, data: Data, meta: DatasetMeta, path: Path,
                            plane: LatentPlane | None = None) -> None:
        """Posterior means of the held-out windows on the latent plane, coloured by corpus."""
        means = posterior_means(model, data.validation)
        plane = plane or LatentPlane.of(model, data.validation)
        points = plane.project(means).numpy()
        names = getattr(data, "corpus_names", []) or ["corpus"]
        corpus = getattr(data, "validation_corpus", None)
        corpus = np.zeros(len(points), dtype=np.int64) if corpus is None else corpus.numpy()
        fig = Figure(figsize=(9, 7))
        ax = fig.subplots()
        for c, name in enumerate(names):
            chosen = corpus == c
            if chosen.any():
                ax.scatter(points[chosen, 0], points[chosen, 1], s=8, label=name)
        ax.legend(loc="best", fontsize=8)
        label_plane(ax, plane, f"{self.name}: posterior means of {len(points)} held-out windows")
        save_figure(fig, path)

    def render(self, frames: torch.Tensor, path: Path, options: RenderOptions) -> list[str]:
        """Decoded windows ``(N, T, D)`` (0/1) one after another as MIDI (``.mid``): a beat per
        quarter note at ``options.bpm``, a chord held over the beats it repeats on, silence for
        no chord; returns each window as a progression with beats (bars of 4 beats when the
        window's length allows, else 3: a render is not told the corpus's meter)."""
        from ..chords.readers import MIDI_SUFFIXES
        from ..fileio import atomic_path
        from ..listen.midi import pretty_midi
        from ..listen.voicing import voice

        path = Path(path)
        if path.suffix.lower() not in MIDI_SUFFIXES:
            raise ChordVAEError(f"progressions are written as MIDI: give a .mid file, not {path.name}")
        frames = (frames >= options.min_prob).numpy()
        n, length, _ = frames.shape
        bpb = next((b for b in (4, 3) if length % b == 0), length)
        beat = 60.0 / options.bpm
        pm = pretty_midi.PrettyMIDI(initial_tempo=options.bpm)
        instrument = pretty_midi.Instrument(program=options.program)
        lines = []
        for w, window in enumerate(frames):
            symbols = frame_symbols(window)
            t = w * length
            for s in range(length):
                if symbols[s] == "N" or (s > 0 and symbols[s] == symbols[s - 1]):
                    continue
                end = s + 1
                while end < length and symbols[end] == symbols[s]:
                    end += 1
                pcs = np.flatnonzero(window[s, :12]).tolist()
                bass = int(window[s, 12:24].argmax()) if window[s, 12:24].any() else None
                for pitch in voice(pcs, bass if bass in pcs else None):
                    instrument.notes.append(pretty_midi.Note(options.velocity, pitch, (t + s) * beat,
                                                             (t + end) * beat))
            lines.append(f"{w + 1:3d}  {progression_text(window, bpb)}")
        pm.instruments.append(instrument)
        with atomic_path(path) as tmp:
            pm.write(str(tmp))
        return lines
