"""A progression run's latent space over a corpus: every window at its posterior mean, the
windows nearest to a typed progression (``chordvae similar``), a piece's path (``encode``).

Windows are cut as the run's were (its bars and window length) and encoded to their posterior
means in batches (for a run trained with ``--transpose c`` each moved to C major / A minor by its
piece's key, as in training; they are named in their files' keys). For a run trained on all 12 transpositions a query is encoded in
each of them and a window's distance is the smallest of the 12: the search finds a progression
in whatever key it occurs.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch

from ..batch import Masked
from ..chords.vectors import key_shift, transpose_blocks
from ..errors import ChordVAEError
from ..threads import training_threads
from ..train import torch_settings
from ..vae import VAE
from .annotate import WindowInfo, annotate
from .corpus import ProgressionCorpus, ProgressionOptions, read_progressions
from .windows import Windows, bar_counts, take, tiling_windows, training_windows

if TYPE_CHECKING:
    from ..runs import Run

BATCH = 2048   # windows per encoder call


@dataclass
class WindowPoints:
    """The windows of ``corpus`` (without context, in their files' keys) and their posterior
    means ``means`` float32 ``(N, latent_dim)``, each window encoded moved up by ``moved`` int64
    ``(N,)`` semitones (to C major / A minor for a ``--transpose c`` run, else 0)."""

    corpus: ProgressionCorpus
    windows: Windows
    means: torch.Tensor
    moved: np.ndarray

    def __len__(self) -> int:
        return len(self.windows)

    def infos(self, index: np.ndarray | None = None) -> list[WindowInfo]:
        """What each window is (all, or those of ``index``): :func:`~chordvae.progressions.annotate.annotate`."""
        return annotate(self.corpus, self.windows, index)


@dataclass(frozen=True)
class Match:
    """A window found near a query: what it is, its Euclidean ``distance`` in the latent space
    and ``shift``, the semitones (0-11) the query was moved up to come nearest (0 unless the run
    was trained on all transpositions)."""

    info: WindowInfo
    distance: float
    shift: int

    def line(self) -> str:
        """``song.mid:9-12  0.123  +2  | D . . . | ... |`` (the span reads back as a typed
        progression; the shift as the nearest interval, -5 to +6 semitones)."""
        i = self.info
        return f"{i.path}:{i.bars}  {self.distance:.3f}  {(self.shift + 5) % 12 - 5:+d}  {i.progression}"


@torch.no_grad()
def encode_windows(model: VAE, frames: torch.Tensor, mask: torch.Tensor, batch_size: int = BATCH) -> torch.Tensor:
    """Posterior means ``(N, latent_dim)`` of windows ``frames`` ``(N, T, D)`` with ``mask``
    ``(N, T)`` (T the model's window), in batches; the model's context frames are zeros (its
    encoder reads the window only)."""
    context = model.config.context
    if frames.shape[1] != model.config.window:
        raise ChordVAEError(f"windows of {frames.shape[1]} beats; the run's hold {model.config.window}")
    model.eval()

    def batch(i: int) -> Masked:
        x, m = frames[i:i + batch_size], mask[i:i + batch_size]
        return Masked(torch.cat([x.new_zeros(len(x), context, x.shape[2]), x], 1),
                      torch.cat([m.new_zeros(len(m), context), m], 1))

    means = [torch.zeros(0, model.latent_dim)]
    if len(frames):   # a small network runs on one thread (chordvae.threads: waiting threads cost more)
        with torch_settings(threads=training_threads(model, batch(0)[:1], batch_size)):
            means += [model.encode(batch(i))[0].cpu() for i in range(0, len(frames), batch_size)]
    return torch.cat(means)


def window_points(model: VAE, corpus: ProgressionCorpus, options: ProgressionOptions, tile: bool = False,
                  bars: int | None = None, whole: bool = False) -> WindowPoints:
    """The windows of ``corpus`` as the run with ``options`` cuts them (hop one bar; ``tile``:
    every beat once, as evaluation tiles a piece) at their posterior means; ``bars`` per window
    instead of the run's (padded to the run's length), ``whole``: only windows of that many bars
    (not those cut short by their piece's end)."""
    cut = tiling_windows if tile else training_windows
    bars = bars or options.bars
    windows = cut(corpus, bars=bars, length=model.config.window)
    if whole:
        windows = take(windows, np.flatnonzero(bar_counts(corpus, windows) == bars))
    moved = np.zeros(len(windows), dtype=np.int64)
    if options.transpose == "c":
        to_c = np.array([key_shift(t, "major" if m else "minor") for t, m in zip(corpus.key_tonic, corpus.key_major)])
        moved = to_c[windows.piece.numpy()]
    frames = torch.from_numpy(transpose_blocks(windows.frames.numpy(), moved, options.layout.blocks))
    return WindowPoints(corpus, windows, encode_windows(model, frames, windows.mask), moved)


def query_shifts(options: ProgressionOptions) -> list[int]:
    """The transpositions a query is tried in: all 12 for a run trained in every key (``all``,
    ``random``), else none."""
    return list(range(12)) if options.transpose in ("all", "random") else [0]


def nearest(points: WindowPoints, queries: torch.Tensor, shifts: Sequence[int], n: int) -> list[Match]:
    """The ``n`` windows of ``points`` nearest to any of the ``queries`` ``(S, latent_dim)``
    (the query moved up by ``shifts[s]`` semitones), nearest first (ties: in corpus order); a
    match's shift is the query's relative to the window in its file."""
    if not len(points):
        return []
    distances = torch.cdist(queries.double(), points.means.double())           # (S, N)
    best, which = distances.min(0)
    order = torch.argsort(best, stable=True)[:n].numpy()
    return [Match(info, float(best[i]), (int(shifts[int(which[i])]) - int(points.moved[i])) % 12)
            for i, info in zip(order, points.infos(order))]


def run_options(run: Run, **reading: object) -> ProgressionOptions:
    """The run's progression options, with ``reading`` (``jobs``, ``strict``, ``no_cache``) replaced."""
    options = ProgressionOptions.from_dict(run.dataset_meta.options)
    return replace(options, **{k: v for k, v in reading.items() if v is not None})


@dataclass
class Query:
    """A typed progression at its posterior mean in each transposition of :func:`query_shifts`:
    ``means`` ``(S, latent_dim)``, ``shifts`` (S semitones) and ``bars``, how many bars it spans."""

    means: torch.Tensor
    shifts: list[int]
    bars: int


def encode_query(run: Run, text: str, key: str | None = None) -> Query:
    """The :class:`Query` of a typed progression (any form; ``key`` for Roman numerals)."""
    options = run_options(run)
    event = run.adapter.parse_event(text, run.dataset_meta, key=key)
    context = run.model.config.context
    frames, mask = event.x[:, context:], event.mask[:, context:]
    bpb = run.dataset_meta.extra["beats_per_bar"]
    bars = -(-(int(mask[0].nonzero()[-1, 0]) + 1) // bpb)       # a pickup's padding counts in its bar
    shifts = query_shifts(options)
    moved = torch.from_numpy(transpose_blocks(frames.repeat(len(shifts), 1, 1).numpy(),
                                              np.array(shifts), options.layout.blocks))
    return Query(encode_windows(run.model, moved, mask.repeat(len(shifts), 1)), shifts, bars)


@dataclass
class Search:
    """What :func:`similar` found: the ``matches`` nearest first, among ``searched`` windows of the
    corpus read (``summary``, the corpus engine's; ``skipped`` files with their reasons)."""

    matches: list[Match]
    searched: int
    summary: str
    skipped: list[tuple[str, str]]


def similar(run: Run, text: str, sources: Sequence[str], n: int = 10, key: str | None = None,
            progress: bool = True, **reading: object) -> Search:
    """The ``n`` windows of ``sources`` (read as the progression dataset reads them; ``reading``:
    ``jobs``, ``strict``, ``no_cache``) nearest to the typed progression ``text`` in ``run``'s
    latent space. The windows span as many bars as the query (one on every bar; none cut short
    by its piece's end), padded to the run's length as the query is."""
    if not sources:
        raise ChordVAEError("give the music to search with --in (files, folders, NAME=PATH, m21:COMPOSER)")
    query = encode_query(run, text, key)
    options = run_options(run, **reading)
    corpus = read_progressions(list(sources), options, progress=progress)
    points = window_points(run.model, corpus, options, bars=query.bars, whole=True)
    return Search(nearest(points, query.means, query.shifts, n), len(points), corpus.summary, list(corpus.skipped))


def piece_path(run: Run, path: str | Path, no_cache: bool = False) -> WindowPoints:
    """The path of the music file at ``path`` through ``run``'s latent space: its windows of the
    run's bars, one on every bar (none cut short by the piece's end, unless the piece is shorter
    than a window: then its one window), at their posterior means, in order."""
    options = run_options(run, jobs=1, strict=True, no_cache=no_cache)
    corpus = read_progressions([str(path)], options, progress=False)
    points = window_points(run.model, corpus, options, whole=True)
    if len(points):
        return points
    first = window_points(run.model, corpus, options)
    return WindowPoints(corpus, take(first.windows, [0]), first.means[:1], first.moved[:1])
