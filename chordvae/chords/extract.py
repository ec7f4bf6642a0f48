"""One file -> its chord events and key: what the corpus engine runs per file."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .events import ChordEvent
from .readers import FileRejected, Notes, read_notes
from .recognise import analysis_frames, beats_and_bars, recognise
from .segment import Segmentation, segment

__all__ = ["FileRejected", "PieceChords", "extract_file", "find_key"]


@dataclass
class PieceChords:
    """The chords of one piece, its key (music21's key analysis: tonic pitch class, mode) and
    the name of the corpus it was read for (see :mod:`chordvae.chords.sources`).

    Recognised chords (segmentation ``chords``) also carry the recogniser's beat grid:
    ``beats``, the B + 1 beat edges in quarter notes, and ``downbeats``, the indices of the beats
    that start a bar (see :func:`~chordvae.chords.recognise.beats_and_bars`); None otherwise."""

    source: str
    events: list[ChordEvent]
    key_tonic: int
    key_mode: str
    corpus: str
    beats: tuple[float, ...] | None = None
    downbeats: tuple[int, ...] | None = None


def extract_file(path: str | os.PathLike, seg: Segmentation, corpus: str | None = None) -> PieceChords:
    """Read, segment and key-analyse one file, a piece of ``corpus`` (default: as a source of
    its own, the corpus named after the file's stem); raises FileRejected with a reason."""
    notes = read_notes(path)
    # the recogniser's frames serve its chords and its beat grid: computed once
    frames = analysis_frames(notes) if seg.mode == "chords" else None
    events = recognise(notes, frames=frames) if frames is not None else segment(notes, seg)
    if not events:
        raise FileRejected("no chord recognised" if seg.mode == "chords"
                           else f"no chord of at least {seg.min_notes} pitch classes")
    tonic, mode = find_key(notes)
    piece = PieceChords(str(Path(path)), events, tonic, mode, Path(path).stem if corpus is None else corpus)
    if seg.mode == "chords":
        beats, downbeat = beats_and_bars(notes, frames=frames)
        piece.beats = tuple(np.round(beats, 6).tolist())   # rounded as the events' times are
        piece.downbeats = tuple(np.flatnonzero(downbeat).tolist())
    return piece


def find_key(notes: Notes) -> tuple[int, str]:
    """music21's key analysis (`analyze("key")`, Aarden-Essen weights) of the pitch-class durations.

    The analysis weighs each pitch class by how long it sounds, so it is run on a
    12-note stream holding those total durations (the same answer, without building a
    music21 object per note).
    """
    from music21 import analysis, note, stream

    durations = np.bincount(notes.pitch % 12, weights=notes.end - notes.start, minlength=12)
    s = stream.Stream()
    for pc, length in enumerate(durations):
        if length > 0:
            s.append(note.Note(60 + pc, quarterLength=round(float(length) * 16) / 16 or 0.0625))
    method = analysis.discrete.analysisClassFromMethodName("key")   # what analyze("key") uses
    (tonic, mode, _), _ = method().process(s)
    return tonic.pitchClass, mode
