"""Windows of bars over a progression corpus: what a sequence model trains and is evaluated on.

A window holds ``bars`` bars from a downbeat in ``T`` beat frames (``T`` = ``bars`` x the
corpus's most common bar length, unless given); shorter stretches (a piece's end, shorter bars)
are padded and masked. A piece that starts with a pickup has its first window padded in front
so that position 0 is still where the bar begins. Training windows start on every bar
(hop: one bar); evaluation tiles a piece: every beat exactly once, windows on every
``bars``-th bar (a stretch of ``bars`` bars longer than ``T`` beats goes on in further
windows of ``T`` beats that start where it was cut).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..chords.vectors import key_shift, transpose_blocks
from ..errors import DataError
from .corpus import ProgressionCorpus, ProgressionOptions

VALIDATION_FRACTION = 0.1  # of the pieces, held out whole (as for chords)


@dataclass
class Windows:
    """Progression windows as tensors.

    ``frames`` float32 ``(N, C + T, D)`` (see :class:`~chordvae.progressions.frames.FrameLayout`),
    ``mask`` bool ``(N, C + T)`` (True: a beat of the window, to be scored). The first ``context``
    (C) positions hold the beats of the piece before the window, unmasked zeros where the piece
    has none; other masked positions are padding, all zero. Per window, int64 ``(N,)``:
    ``piece`` (index into the corpus's pieces), ``start_bar`` (number of the bar it starts in, as
    :class:`~chordvae.progressions.corpus.ProgressionCorpus` numbers bars), ``start_beat`` (its
    first real beat, counted within the piece's beats), ``lead`` (padded positions before that
    beat: a pickup) and ``shift`` (semitones it was transposed up). ``sources`` are the
    corpus's files (per piece); :attr:`path` gives each window's.
    """

    frames: torch.Tensor
    mask: torch.Tensor
    piece: torch.Tensor
    start_bar: torch.Tensor
    start_beat: torch.Tensor
    lead: torch.Tensor
    shift: torch.Tensor
    sources: list[str]
    context: int = 0

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def length(self) -> int:
        """T, the window length in beats (without the context)."""
        return self.frames.shape[1] - self.context

    @property
    def path(self) -> np.ndarray:
        """Each window's file, str ``(N,)``."""
        return np.asarray(self.sources, dtype=str)[self.piece.numpy()] if len(self) else np.zeros(0, dtype=str)


@dataclass
class Bars:
    """Every bar of a corpus, int64 ``(K,)`` each: ``start``/``end`` (global beat indices),
    ``piece``, ``number`` (bar number), ``lead`` (a pickup's missing beats), ``within``
    (index of the bar within its piece) and ``last`` (index of its piece's last bar)."""

    start: np.ndarray
    end: np.ndarray
    piece: np.ndarray
    number: np.ndarray
    lead: np.ndarray
    within: np.ndarray
    last: np.ndarray


def bars_of(corpus: ProgressionCorpus) -> Bars:
    """The bars of ``corpus`` (a piece's first beat always starts one, possibly a pickup)."""
    begins = corpus.downbeat.copy()
    begins[corpus.offsets[:-1]] = True
    start = np.flatnonzero(begins)
    piece = np.searchsorted(corpus.offsets, start, side="right") - 1
    end = np.minimum(np.append(start[1:], corpus.n_beats), corpus.offsets[piece + 1])
    first = np.searchsorted(start, corpus.offsets[:-1])
    last = np.searchsorted(start, corpus.offsets[1:]) - 1
    within = np.arange(len(start)) - first[piece]
    return Bars(start, end, piece, corpus.first_bar[piece] + within,
                np.where(within == 0, corpus.lead[piece], 0), within, last[piece])


def window_length(corpus: ProgressionCorpus, bars: int) -> int:
    """T: ``bars`` x the corpus's most common bar length, in beats."""
    return bars * corpus.bar_length()


def training_windows(corpus: ProgressionCorpus, pieces: np.ndarray | None = None, bars: int = 4,
                     length: int | None = None, transpose: str = "none", context: int = 0) -> Windows:
    """A window on every bar of ``pieces`` (indices; None: all), hop one bar; with ``context``,
    each is preceded by up to that many beats of its piece (masked: seen, not scored)."""
    T = length or window_length(corpus, bars)
    table = bars_of(corpus)
    chosen = np.flatnonzero(_in(table.piece, pieces, corpus.n_pieces))
    start, n, lead, _ = _spans(table, chosen, bars, T)
    return _windows(corpus, table, start, n, lead, T, transpose, context)


def tiling_windows(corpus: ProgressionCorpus, pieces: np.ndarray | None = None, bars: int = 4,
                   length: int | None = None, transpose: str = "none", context: int = 0) -> Windows:
    """Windows that cover every beat of ``pieces`` (indices; None: all) exactly once (per
    transposition), in order: one on every ``bars``-th bar of each piece, then where a stretch of
    ``bars`` bars is longer than ``length`` beats, windows on the rest. ``context``: as for
    :func:`training_windows`."""
    T = length or window_length(corpus, bars)
    table = bars_of(corpus)
    chosen = np.flatnonzero(_in(table.piece, pieces, corpus.n_pieces) & (table.within % bars == 0))
    start, n, lead, rest = _spans(table, chosen, bars, T)
    extra = -(-rest // T)                                   # further windows per cut stretch
    k = np.repeat(np.arange(len(start)), extra)
    j = np.arange(len(k)) - np.repeat(np.cumsum(extra) - extra, extra)
    more_start = start[k] + n[k] + j * T
    more_n = np.minimum(T, rest[k] - j * T)
    order = np.argsort(np.concatenate([start, more_start]), kind="stable")
    start = np.concatenate([start, more_start])[order]
    n = np.concatenate([n, more_n])[order]
    lead = np.concatenate([lead, np.zeros(len(k), dtype=np.int64)])[order]
    return _windows(corpus, table, start, n, lead, T, transpose, context)


def held_out(n_pieces: int, seed: int, fraction: float = VALIDATION_FRACTION) -> np.ndarray:
    """Which pieces are held out, bool ``(P,)``: ``round(fraction * P)`` (at least one) chosen by
    ``seed`` (the same pieces the chord dataset holds out for the same seed and files)."""
    if n_pieces < 2:
        raise DataError("progressions hold out whole pieces: give at least 2 pieces")
    n_val = max(1, round(fraction * n_pieces))
    mask = np.zeros(n_pieces, dtype=bool)
    mask[np.random.default_rng(seed).permutation(n_pieces)[:n_val]] = True
    return mask


def split(corpus: ProgressionCorpus, options: ProgressionOptions, seed: int,
          length: int | None = None, context: int = 0) -> tuple[Windows, Windows]:
    """Training windows (hop one bar) of the training pieces and the tiling of the held-out
    pieces (see :func:`held_out`), both transposed as ``options.transpose`` says."""
    test = held_out(corpus.n_pieces, seed)
    T = length or window_length(corpus, options.bars)
    return (training_windows(corpus, np.flatnonzero(~test), options.bars, T, options.transpose, context),
            tiling_windows(corpus, np.flatnonzero(test), options.bars, T, options.transpose, context))


def transpose_windows(windows: Windows, shift: torch.Tensor | np.ndarray, blocks: int) -> Windows:
    """``windows`` moved up by ``shift`` ``(N,)`` more semitones (``blocks``: the layout's
    pitch-class blocks); the mask and the no-chord bit stay."""
    shift = np.asarray(shift, dtype=np.int64)
    frames = torch.from_numpy(transpose_blocks(windows.frames.numpy(), shift, blocks))
    return Windows(frames, windows.mask, windows.piece, windows.start_bar, windows.start_beat, windows.lead,
                   (windows.shift + torch.from_numpy(shift)) % 12, windows.sources, windows.context)


def bar_counts(corpus: ProgressionCorpus, windows: Windows) -> np.ndarray:
    """How many bars (or parts of bars) each window's scored beats reach into, int64 ``(N,)``."""
    beats = windows.mask[:, windows.context:].sum(1).numpy()
    first = corpus.offsets[windows.piece.numpy()] + windows.start_beat.numpy()
    downbeats = np.concatenate([[0], np.cumsum(corpus.downbeat)])
    return 1 + downbeats[first + beats] - downbeats[first + 1]


def take(windows: Windows, index: np.ndarray) -> Windows:
    """The windows ``index`` ``(K,)`` of ``windows``."""
    index = torch.from_numpy(np.asarray(index, dtype=np.int64))
    return Windows(windows.frames[index], windows.mask[index], windows.piece[index], windows.start_bar[index],
                   windows.start_beat[index], windows.lead[index], windows.shift[index], windows.sources,
                   windows.context)


def _in(piece: np.ndarray, pieces: np.ndarray | None, n_pieces: int) -> np.ndarray:
    if pieces is None:
        return np.ones(len(piece), dtype=bool)
    wanted = np.zeros(n_pieces, dtype=bool)
    wanted[np.asarray(pieces, dtype=np.int64)] = True
    return wanted[piece]


def _spans(table: Bars, chosen: np.ndarray, bars: int, T: int) -> tuple[np.ndarray, ...]:
    """For windows on the bars ``chosen``: first beat, beats kept, lead, and beats cut off."""
    to = np.minimum(chosen + bars - 1, table.last[chosen])
    span = table.end[to] - table.start[chosen]
    lead = np.minimum(table.lead[chosen], T - 1)
    n = np.minimum(span, T - lead)
    return table.start[chosen], n, lead, span - n


def _windows(corpus: ProgressionCorpus, table: Bars, start: np.ndarray, n: np.ndarray, lead: np.ndarray,
             T: int, transpose: str, context: int = 0) -> Windows:
    """Gather the windows' frames (after ``context`` beats before them) and metadata, then
    transpose them."""
    piece = np.searchsorted(corpus.offsets, start, side="right") - 1
    position = np.arange(context + T)[None, :] - context - lead[:, None]   # beats from the first
    mask = (position >= 0) & (position < n[:, None])
    index = start[:, None] + position
    seen = (index >= corpus.offsets[piece][:, None]) & (position < n[:, None])
    frames = corpus.frames[np.where(seen, index, 0)]
    frames[~seen] = 0
    bar = np.searchsorted(table.start, start, side="right") - 1
    start_bar = table.number[bar]
    start_beat = start - corpus.offsets[piece]
    if transpose == "c":
        shift = np.array([key_shift(t, "major" if m else "minor") for t, m in
                          zip(corpus.key_tonic, corpus.key_major)], dtype=np.int64)[piece] if len(piece) else piece
    else:
        shift = np.zeros(len(start), dtype=np.int64)
    if transpose == "all":
        frames = np.concatenate([transpose_blocks(frames, np.full(len(start), k), corpus.layout.blocks)
                                 for k in range(12)])
        mask, piece, start_bar, start_beat, lead = (np.tile(a, (12,) + (1,) * (a.ndim - 1))
                                                    for a in (mask, piece, start_bar, start_beat, lead))
        shift = np.repeat(np.arange(12), len(start))
    elif transpose == "c":
        frames = transpose_blocks(frames, shift, corpus.layout.blocks)
    return Windows(torch.from_numpy(frames.astype(np.float32)), torch.from_numpy(mask), torch.from_numpy(piece),
                   torch.from_numpy(start_bar), torch.from_numpy(start_beat), torch.from_numpy(lead),
                   torch.from_numpy(shift), list(corpus.sources), context)
