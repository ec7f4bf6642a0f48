"""The chord systems compared in ``chord_recognition.py``: each turns one music file into
predicted chords on a given time axis (quarter-note beats or seconds).

- ``chords``: chordvae's recogniser (the default segmentation, its learned emission);
- ``no-moves``: the recogniser without the key's chord moves (``RecogniserOptions(move_weight=0)``,
  the default before issue 19's step 7);
- ``no-key``: the recogniser without its key prior and moves (``RecogniserOptions(key_weight=0,
  move_weight=0)``, the default before the key);
- ``templates``: the recogniser with its hand-set templates instead of the learned emission
  and no key (``RecogniserOptions(emission="templates", key_weight=0, move_weight=0)``, the default
  before the learned one);
- ``argmax``: the recogniser's per-beat templates without smoothing or key prior (every frame
  decoded on its own, ``RecogniserOptions(decoder="argmax", emission="templates", key_weight=0)``);
- ``onset``: the plain onset slicer with its default filters (at least 3 pitch classes and
  0.25 beats), the default before the recogniser;
- ``chordify``: music21's ``chordify`` of the parsed file, every vertical sonority kept (MIDI
  parsed without quantisation, so its beats are the file's ticks / resolution).

The slicers' chords (``onset``, ``chordify``) have no root of their own: they are labelled with
music21's root (:func:`music21_root`), as when these figures were first measured.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

import numpy as np

from chordvae.chords.events import ChordEvent
from chordvae.chords.readers import MIDI_SUFFIXES, Notes, read_notes
from chordvae.chords.segment import Segmentation, segment
from chordvae.chords.vocabulary import harte_label

SYSTEMS = ("chords", "no-moves", "no-key", "templates", "argmax", "onset", "chordify")


@dataclass
class Prediction:
    """Predicted chords of one piece, sorted by start: ``starts``/``ends`` (K,) in the piece's
    unit; per chord its pitch-class set, bass, root (pitch classes, C = 0) and Harte label."""

    starts: np.ndarray
    ends: np.ndarray
    sets: list[frozenset[int]]
    basses: list[int]
    roots: list[int]
    labels: list[str]


def predict(system: str, path: Path, unit: str, notes: Notes | None = None) -> Prediction:
    """``system``'s chords of the file at ``path`` on the ``unit`` (``beats`` or ``seconds``)
    axis; ``notes``: the file's notes if already read."""
    notes = notes if notes is not None else read_notes(path)
    if system == "chordify":
        return _chordify(path, notes, unit)
    return predicted(_EVENTS[system](notes), unit)


def _recognised(decoder: str, emission: str = "learned", **options: float) -> Callable[[Notes], list[ChordEvent]]:
    def run(notes: Notes) -> list[ChordEvent]:
        from chordvae.chords.recognise import RecogniserOptions, recognise

        return recognise(notes, RecogniserOptions(decoder=decoder, emission=emission, **options))
    return run


_EVENTS: dict[str, Callable[[Notes], list[ChordEvent]]] = {
    "chords": _recognised("viterbi"),
    "no-moves": _recognised("viterbi", move_weight=0.0),
    "no-key": _recognised("viterbi", key_weight=0.0, move_weight=0.0),
    "templates": _recognised("viterbi", "templates", key_weight=0.0, move_weight=0.0),
    "argmax": _recognised("argmax", "templates", key_weight=0.0),
    "onset": lambda notes: segment(notes, Segmentation(mode="onset")),
}


def predicted(events: list[ChordEvent], unit: str) -> Prediction:
    """Chord events as a :class:`Prediction` on the ``unit`` axis (``beats`` or ``seconds``)."""
    events = sorted(events, key=lambda e: e.start_beats)
    seconds = unit == "seconds"
    starts = np.array([e.start_s if seconds else e.start_beats for e in events], dtype=float)
    ends = np.array([e.end_s if seconds else e.end_beats for e in events], dtype=float)
    roots = [e.root if e.root >= 0 else music21_root(e.pitch_classes) for e in events]
    labels = [e.label if e.root >= 0 else harte_label(e.pitch_classes, root, e.bass) for e, root in zip(events, roots)]
    return Prediction(starts, ends, [frozenset(e.pitch_classes) for e in events], [e.bass for e in events],
                      roots, labels)


@lru_cache(maxsize=4096)
def music21_root(pitch_classes: tuple[int, ...]) -> int:
    """music21's root of a pitch-class set (C = 0), the chord built upwards from middle C."""
    from music21 import chord

    return chord.Chord([60 + pc for pc in pitch_classes]).root().pitchClass


def _chordify(path: Path, notes: Notes, unit: str) -> Prediction:
    """music21's chordify: each chord's pitch classes, lowest note as bass, music21's root."""
    from music21 import converter

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if path.suffix.lower() in MIDI_SUFFIXES:
            score = converter.parse(path, quantizePost=False)
        else:
            score = converter.parse(path)
        chords = score.chordify().flatten().getElementsByClass("Chord")
    rows = []
    for c in chords:
        length = float(c.quarterLength)
        pcs = tuple(sorted({p.pitchClass for p in c.pitches}))
        if length > 0 and pcs:
            rows.append((float(c.offset), float(c.offset) + length, pcs, c.bass().pitchClass))
    starts = np.array([r[0] for r in rows], dtype=float)
    ends = np.array([r[1] for r in rows], dtype=float)
    if unit == "seconds":
        starts, ends = notes.seconds(starts), notes.seconds(ends)
    roots = [music21_root(r[2]) for r in rows]
    return Prediction(starts, ends, [frozenset(r[2]) for r in rows], [r[3] for r in rows], roots,
                      [harte_label(r[2], root, r[3]) for r, root in zip(rows, roots)])
