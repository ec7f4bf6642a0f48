"""Chord events -> binary vectors: 12 pitch classes (C = 0), optionally + a 12-dim one-hot bass."""
from __future__ import annotations

import numpy as np

from ..errors import ChordVAEError
from .extract import PieceChords

FEATURES = ("pitch-class", "pitch-class+bass")
TRANSPOSE = ("none", "all", "c", "random")
PITCH_SETS = ("chord", "sounding")


def chord_vectors(pieces: list[PieceChords], features: str = "pitch-class",
                  transpose: str = "none", pitch_set: str = "chord") -> tuple[np.ndarray, np.ndarray]:
    """``(x, piece_index)``: x uint8 ``(N, 12)`` or ``(N, 24)``, piece_index int64 ``(N,)``.

    ``pitch_set``: ``chord`` takes each event's chord (for recognised chords, the set of the
    label), ``sounding`` the pitch classes that actually sounded.

    ``transpose``: ``none`` keeps every piece in its key; ``all`` adds all 12 transpositions of
    every event (12 N rows, transposition-major); ``c`` moves each piece so that its key
    (music21's analysis) becomes C major or A minor; ``random`` keeps the keys here (training
    moves each event to a random key every epoch instead: :func:`chordvae.datasets.chords.random_keys`).
    """
    if features not in FEATURES:
        raise ChordVAEError(f"unknown features {features!r}; choose from {', '.join(FEATURES)}")
    if transpose not in TRANSPOSE:
        raise ChordVAEError(f"unknown transposition {transpose!r}; choose from {', '.join(TRANSPOSE)}")
    if pitch_set not in PITCH_SETS:
        raise ChordVAEError(f"unknown pitch set {pitch_set!r}; choose from {', '.join(PITCH_SETS)}")
    sets = [(e.sounding if pitch_set == "sounding" and e.sounding is not None else e.pitch_classes)
            for p in pieces for e in p.events]
    counts = np.array([len(p.events) for p in pieces])
    piece = np.repeat(np.arange(len(pieces)), counts)
    pcs = np.zeros((int(counts.sum()), 12), dtype=np.uint8)
    rows = np.repeat(np.arange(len(piece)), [len(s) for s in sets])
    pcs[rows, [pc for s in sets for pc in s]] = 1
    bass = np.array([e.bass for p in pieces for e in p.events], dtype=np.int64)
    if transpose == "c":
        shift = np.array([key_shift(p.key_tonic, p.key_mode) for p in pieces])
        pcs, bass = _shift(pcs, bass, shift[piece])
    elif transpose == "all":
        shifted = [_shift(pcs, bass, np.full(len(bass), k)) for k in range(12)]
        pcs = np.concatenate([s[0] for s in shifted])
        bass = np.concatenate([s[1] for s in shifted])
        piece = np.tile(piece, 12)
    if features == "pitch-class+bass":
        onehot = np.zeros((len(bass), 12), dtype=np.uint8)
        onehot[np.arange(len(bass)), bass] = 1
        pcs = np.concatenate([pcs, onehot], axis=1)
    return pcs, piece


def chord_vector(pitch_classes: tuple[int, ...], dims: int = 12, bass: int | None = None) -> np.ndarray:
    """One chord as a uint8 vector of ``dims`` (12, or 24 with a one-hot ``bass``, which must
    then be given)."""
    vector = np.zeros(dims, dtype=np.uint8)
    vector[list(pitch_classes)] = 1
    if dims == 24:
        vector[12 + bass] = 1
    return vector


def key_shift(tonic: int, mode: str) -> int:
    """Semitones up that move a key (tonic pitch class, ``"major"``/``"minor"``) to C major or A minor."""
    return -(tonic if mode == "major" else tonic - 9) % 12


def transpose_blocks(x: np.ndarray, shift: np.ndarray, blocks: int) -> np.ndarray:
    """Transpose the first ``blocks`` 12-wide pitch-class blocks of the last axis of ``x``
    ``(N, ..., F)`` up by ``shift`` ``(N,)`` semitones (column c of a block moves to
    (c + shift) % 12); any later columns are kept."""
    cols = np.arange(x.shape[-1])
    block, pc = np.divmod(cols[: 12 * blocks], 12)
    moved = (pc[None, :] - shift[:, None]) % 12 + 12 * block[None, :]
    index = np.concatenate([moved, np.broadcast_to(cols[12 * blocks:], (len(shift), x.shape[-1] - 12 * blocks))], 1)
    return np.take_along_axis(x, index.reshape((len(shift),) + (1,) * (x.ndim - 2) + (x.shape[-1],)), axis=-1)


def _shift(pcs: np.ndarray, bass: np.ndarray, shift: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Transpose each row up by ``shift`` semitones: column c moves to (c + shift) % 12."""
    return transpose_blocks(pcs, shift, 1), (bass + shift) % 12
