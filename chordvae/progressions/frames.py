"""Beat frames: the recognised chords of one piece -> one frame per beat of the recogniser's grid."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..chords.names import name_chord
from ..chords.extract import PieceChords
from ..chords.pcset import from_mask, masks_to_rows, rows_to_masks, to_mask
from ..errors import DataError


@dataclass(frozen=True)
class FrameLayout:
    """What a beat frame holds: the chord's 12 pitch classes (C = 0), its bass as a 12-dim
    one-hot, with ``root`` also its root as a 12-dim one-hot, and last a "no chord" bit, set alone
    where no chord sounds. ``dims`` is 25, or 37 with the root."""

    root: bool = False

    @property
    def blocks(self) -> int:
        """How many 12-wide pitch-class blocks (what a transposition moves)."""
        return 3 if self.root else 2

    @property
    def dims(self) -> int:
        return 12 * self.blocks + 1

    @property
    def no_chord(self) -> int:
        """The column of the "no chord" bit (the last)."""
        return self.dims - 1


def encode(codes: np.ndarray, bass: np.ndarray, root: np.ndarray, layout: FrameLayout) -> np.ndarray:
    """Frames uint8 ``(B, dims)`` of chords given per beat as pitch-class masks ``codes`` ``(B,)``
    (see :mod:`~chordvae.chords.pcset`; 0: no chord), ``bass`` and ``root`` ``(B,)`` pitch classes."""
    codes = np.asarray(codes, dtype=np.int64)
    frames = np.zeros((len(codes), layout.dims), dtype=np.uint8)
    frames[:, :12] = masks_to_rows(codes)
    chord = np.flatnonzero(codes > 0)
    frames[chord, 12 + np.asarray(bass)[chord] % 12] = 1
    if layout.root:
        frames[chord, 24 + np.asarray(root)[chord] % 12] = 1
    frames[codes == 0, layout.no_chord] = 1
    return frames


def beat_chords(piece: PieceChords) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The chord of every beat of ``piece``'s grid: pitch-class masks, bass and root, each
    int64 ``(B,)``. A beat takes the chord that covers most of it (the earlier on a tie), or no
    chord (mask 0, bass and root -1) where silence covers more of it than any chord."""
    if piece.beats is None:
        raise DataError(f"{piece.source}: no beat grid (progressions need the chords read with segmentation 'chords')")
    edges = np.asarray(piece.beats)
    n = len(edges) - 1
    start = np.array([e.start_beats for e in piece.events], dtype=np.float64)
    end = np.array([e.end_beats for e in piece.events], dtype=np.float64)
    # the events overlapping beat k are first[k] .. last[k] - 1 (events are sorted and disjoint)
    first = np.searchsorted(end, edges[:-1], side="right")
    last = np.searchsorted(start, edges[1:], side="left")
    count = np.maximum(last - first, 0)
    beat = np.repeat(np.arange(n), count)
    event = first[beat] + np.arange(len(beat)) - np.repeat(np.cumsum(count) - count, count)
    # times are multiples of 1e-6 (rounded): so are overlaps, and equal ones compare equal
    overlap = np.round(np.minimum(end[event], edges[beat + 1]) - np.maximum(start[event], edges[beat]), 6)
    # per beat, the pair with the largest overlap (the earliest event among equals)
    order = np.lexsort((event, -overlap, beat))
    chosen = order[np.concatenate([[True], beat[order][1:] != beat[order][:-1]])] if len(order) else order
    best = np.full(n, -1)
    covered = np.zeros(n)
    best[beat[chosen]] = event[chosen]
    covered[beat[chosen]] = overlap[chosen]
    silence = np.round(np.diff(edges) - np.bincount(beat, weights=overlap, minlength=n), 6)
    best[silence > covered] = -1
    events = piece.events
    codes = np.array([to_mask(e.pitch_classes) for e in events] + [0], dtype=np.int64)
    bass = np.array([e.bass for e in events] + [-1], dtype=np.int64)
    root = np.array([e.root if e.root >= 0 else name_chord(e.pitch_classes).root for e in events] + [-1], dtype=np.int64)
    return codes[best], bass[best], root[best]


def beat_frames(piece: PieceChords, layout: FrameLayout = FrameLayout()) -> np.ndarray:
    """One frame per beat of ``piece`` (see :func:`beat_chords`), uint8 ``(B, layout.dims)``."""
    return encode(*beat_chords(piece), layout)


def frame_chords(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The chord of each frame ``(T, D)`` (values >= 0.5 count): its pitch-class mask (0: no
    chord) and its bass, the first bass one-hot set, -1 when none is or it is not in the chord;
    int64 ``(T,)`` each."""
    on = np.asarray(frames) >= 0.5
    codes = rows_to_masks(on[:, :12])
    bass = np.where(on[:, 12:24].any(1), on[:, 12:24].argmax(1), -1)
    inside = (bass >= 0) & ((codes >> np.maximum(bass, 0)) & 1).astype(bool)
    return codes, np.where(inside, bass, -1)


def frame_symbols(frames: np.ndarray) -> list[str]:
    """A lead-sheet symbol per frame ``(T, D)`` (see :func:`frame_chords`; ``"/bass"`` when the
    bass is not the chord's root; :func:`chordvae.chords.names.name_chord`), ``"N"`` for no
    chord; a set no symbol names is written as its pitch classes, the bass first (``"9,0"``),
    one token that the typed progressions read back."""
    symbols = []
    for code, b in zip(*(a.tolist() for a in frame_chords(frames))):
        pcs = from_mask(code)
        if not pcs:
            symbols.append("N")
            continue
        named = name_chord(pcs, b if b >= 0 else None)
        if named.quality is None:
            symbols.append(",".join(str(p) for p in sorted(pcs, key=lambda p: p != b)))
        else:
            symbols.append(named.symbol)
    return symbols


def progression_text(frames: np.ndarray, beats_per_bar: int) -> str:
    """Frames ``(T, D)`` written as a typed progression with beats, ``"| C . G . | Am . F . |"``:
    ``.`` holds the chord before; every bar names its first chord."""
    return symbols_text(frame_symbols(frames), beats_per_bar)


def symbols_text(symbols: list[str], beats_per_bar: int) -> str:
    """Symbols, one per beat, written as :func:`progression_text` writes frames."""
    tokens = [s if i % beats_per_bar == 0 or s != symbols[i - 1] else "." for i, s in enumerate(symbols)]
    bars = [" ".join(tokens[b:b + beats_per_bar]) for b in range(0, len(tokens), beats_per_bar)]
    return "| " + " | ".join(bars) + " |"
