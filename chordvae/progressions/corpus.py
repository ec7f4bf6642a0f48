"""Progression corpora: the sources the chord dataset takes -> the beat frames of every piece.

Files are read by the corpus engine (:func:`chordvae.chords.options.read`: recognised chords,
cached, unreadable files skipped with a reason), then each piece becomes one frame per beat of
the recogniser's grid (:mod:`~chordvae.progressions.frames`), with its bars.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping

import numpy as np

from ..chords.corpus import Corpus
from ..chords.extract import PieceChords
from ..chords.options import ChordOptions, read
from ..chords.vectors import TRANSPOSE
from ..errors import ChordVAEError, DataError
from .frames import FrameLayout, beat_frames


@dataclass(frozen=True)
class ProgressionOptions:
    """How a corpus becomes progression windows: ``bars`` per window, ``transpose`` (``random``,
    the default: windows keep their keys, and training moves each to a random key every epoch;
    ``none``; ``all``: every window in all 12 keys; ``c``: each piece moved to C major / A minor
    by its key), ``root`` (frames also hold the chord's root), and how the corpus is read (``jobs``
    processes, ``strict``, ``no_cache``; the chords are always recognised, segmentation ``chords``).
    Flat dictionaries with these names convert with :meth:`from_dict` / :meth:`to_dict`."""

    bars: int = 4
    transpose: str = "random"
    root: bool = False
    jobs: int | None = None
    strict: bool = False
    no_cache: bool = False

    def __post_init__(self) -> None:
        if self.transpose not in TRANSPOSE:
            raise ChordVAEError(f"unknown transposition {self.transpose!r}; choose from {', '.join(TRANSPOSE)}")
        if not isinstance(self.bars, int) or self.bars < 1:
            raise ChordVAEError(f"bars must be a whole number >= 1, not {self.bars!r}")

    @property
    def layout(self) -> FrameLayout:
        return FrameLayout(root=self.root)

    @property
    def chord_options(self) -> ChordOptions:
        """The chord reader's options (segmentation ``chords``)."""
        return ChordOptions(jobs=self.jobs, strict=self.strict, no_cache=self.no_cache)

    @classmethod
    def from_dict(cls, options: Mapping[str, Any]) -> ProgressionOptions:
        """From flat option names; ``None`` (or absent) keeps the default; unknown names are refused."""
        known = [f.name for f in fields(cls)]
        unknown = set(options) - set(known)
        if unknown:
            raise ChordVAEError(f"unknown progression option(s) {', '.join(sorted(unknown))}; "
                                f"known: {', '.join(known)}")
        return cls(**{k: v for k, v in options.items() if v is not None})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class ProgressionCorpus:
    """Every beat of every piece read, pieces one after another.

    Per beat (``B`` in all): ``frames`` uint8 ``(B, D)`` (see :class:`FrameLayout`),
    ``downbeat`` bool ``(B,)`` (the beat starts a bar), ``beat_time`` float64 ``(B,)`` (where the
    beat starts in its file, in quarter notes). Piece p's beats are ``offsets[p]:offsets[p + 1]``
    (``offsets`` int64 ``(P + 1,)``). Per piece: ``sources`` (file paths) and ``corpus`` (source
    names) lists, ``key_tonic`` int64 and ``key_major`` bool ``(P,)`` (music21's key),
    ``first_bar`` int64 ``(P,)`` the number of its first bar (bars numbered from 1 at the
    file's first downbeat; a pickup before it is bar 0), ``lead`` int64 ``(P,)`` the beats
    missing before its first beat when it starts with a pickup (the bar's length in beats minus
    the pickup's). Bars at a piece's start or end without any chord are left out (unless
    read without ``trim``).
    ``summary`` and ``skipped`` are the corpus engine's.
    """

    frames: np.ndarray
    downbeat: np.ndarray
    beat_time: np.ndarray
    offsets: np.ndarray
    sources: list[str]
    corpus: list[str]
    key_tonic: np.ndarray
    key_major: np.ndarray
    first_bar: np.ndarray
    lead: np.ndarray
    layout: FrameLayout = field(default_factory=FrameLayout)
    summary: str = ""
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def n_pieces(self) -> int:
        return len(self.sources)

    @property
    def n_beats(self) -> int:
        return len(self.frames)

    def piece_frames(self, p: int) -> np.ndarray:
        """The frames of piece ``p``, ``(B_p, D)``."""
        return self.frames[self.offsets[p]:self.offsets[p + 1]]

    def bar_length(self) -> int:
        """The most common bar length in beats (over every complete bar)."""
        starts = np.flatnonzero(self.downbeat)
        lengths = np.diff(starts)
        inside = np.searchsorted(self.offsets, starts[:-1], side="right") == \
            np.searchsorted(self.offsets, starts[1:], side="right")   # both starts in one piece
        lengths = lengths[inside]
        return int(np.bincount(lengths).argmax()) if len(lengths) else 4


def read_progressions(sources: list[str], options: ProgressionOptions = ProgressionOptions(),
                      progress: bool = True, trim: bool = True) -> ProgressionCorpus:
    """Read ``sources`` (as the chord dataset takes them; see :mod:`chordvae.chords.sources`)
    into beat frames (``trim``: without chordless bars at the ends). Raises DataError when no
    piece has a chord."""
    return from_chords(read(sources, options.chord_options, progress=progress), options.layout, trim)


def from_chords(chords: Corpus, layout: FrameLayout = FrameLayout(), trim: bool = True) -> ProgressionCorpus:
    """The beat frames of a chord corpus read with segmentation ``chords`` (``trim``: without
    the chordless bars at either end of a piece)."""
    parts = [_piece(p, layout, trim) for p in chords.pieces]
    kept = [(p, part) for p, part in zip(chords.pieces, parts) if part is not None]
    if not kept:
        raise DataError(f"no piece with a chord on a beat: {chords.summary()}")
    pieces = [p for p, _ in kept]
    frames, downbeat, time, first_bar, lead = zip(*(part for _, part in kept))
    sizes = np.array([len(f) for f in frames])
    return ProgressionCorpus(
        np.concatenate(frames), np.concatenate(downbeat), np.concatenate(time),
        np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        [p.source for p in pieces], [p.corpus for p in pieces],
        np.array([p.key_tonic for p in pieces], dtype=np.int64),
        np.array([p.key_mode == "major" for p in pieces]),
        np.array(first_bar, dtype=np.int64), np.array(lead, dtype=np.int64), layout,
        chords.summary(), list(chords.skipped))


def _piece(piece: PieceChords, layout: FrameLayout,
           trim: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int] | None:
    """One piece's ``(frames, downbeat, beat_time, first_bar, lead)``, with ``trim`` without its
    chordless bars at either end; None when no beat has a chord."""
    frames = beat_frames(piece, layout)
    n = len(frames)
    downbeat = np.zeros(n, dtype=bool)
    downbeat[list(piece.downbeats)] = True
    starts = np.flatnonzero(downbeat)
    if len(starts) == 0:
        starts = np.array([0])
    # a pickup: beats before the first downbeat, or a first bar shorter than the next one
    bounds = np.unique(np.concatenate([[0], starts, [n]]))
    lengths = np.diff(bounds)
    pickup = len(lengths) > 1 and (starts[0] > 0 or lengths[0] < lengths[1])
    lead = int(lengths[1] - lengths[0]) if pickup else 0
    bar = np.searchsorted(bounds, np.arange(n), side="right") - 1   # bar index of each beat
    chord = frames[:, layout.no_chord] == 0
    if not chord.any():
        return None
    lo, hi = (bar[chord][0], bar[chord][-1]) if trim else (0, len(lengths) - 1)
    keep = slice(bounds[lo], bounds[hi + 1])
    downbeat[bounds[lo]] = lo > 0 or not pickup   # a kept piece starts on a bar or its pickup
    number = lo + (0 if pickup else 1)
    return (frames[keep], downbeat[keep], np.asarray(piece.beats[:-1])[keep], number, lead if lo == 0 else 0)
