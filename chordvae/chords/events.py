"""Chord events and their names: what a stretch of music sounds like as a pitch-class set.

Naming is music21's, cached per pitch-class set (there are only 4,096).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from importlib.metadata import version
from typing import TYPE_CHECKING

from ..cache import cache_dir, store
from .pcset import to_mask
from .vocabulary import harte_label

if TYPE_CHECKING:
    from music21 import chord

QUALITIES: tuple[str, ...] = ("major", "minor", "diminished", "augmented", "dominant seventh",
                              "major seventh", "minor seventh", "half-diminished seventh",
                              "diminished seventh", "other")
PITCH_NAMES = ("C", "C#", "D", "E-", "E", "F", "F#", "G", "A-", "A", "B-", "B")


@dataclass(frozen=True)
class ChordEvent:
    """One chord: where it is (beats are quarter notes from the start of the piece; seconds
    from the tempo map) and what it is (pitch classes, C = 0).

    ``pitch_classes`` is the chord's set: for a recognised chord the set of its label (a C major
    chord is (0, 4, 7) even where the fifth is missing), for a slice what sounds. ``bass`` is the
    chord's bass pitch class. Recognised chords also carry ``root``, ``quality`` (a
    :data:`~chordvae.chords.vocabulary.QUALITIES` name), the pitch classes that actually
    ``sounding`` and a ``confidence`` in [0, 1] (the decoder's posterior); slices leave them
    unset (root -1, quality "", sounding = pitch_classes, confidence 1).
    """

    source: str
    start_beats: float
    end_beats: float
    start_s: float
    end_s: float
    pitch_classes: tuple[int, ...]
    bass: int
    root: int = -1
    quality: str = ""
    sounding: tuple[int, ...] | None = None
    confidence: float = 1.0

    @property
    def name(self) -> str:
        """music21's name, e.g. ``"A minor triad"`` (computed on demand, cached per set)."""
        return chord_name(self.pitch_classes)

    @property
    def label(self) -> str:
        """The Harte label ``mir_eval`` reads, e.g. ``"A:min"``, ``"G:7/3"``; a slice's root is music21's."""
        root = self.root if self.root >= 0 else chord_root(self.pitch_classes)
        return harte_label(self.pitch_classes, root, self.bass, self.quality or None)

    def to_json(self) -> dict:
        d = dict(self.__dict__)  # shallow: dataclasses.asdict deep-copies every tuple
        d["pitch_classes"] = list(self.pitch_classes)
        d["sounding"] = list(self.sounding if self.sounding is not None else self.pitch_classes)
        if self.root < 0:
            d["root"] = chord_root(self.pitch_classes)
        d["label"] = self.label
        d["name"] = self.name
        return d


def _chord(pitch_classes: tuple[int, ...]) -> chord.Chord:
    from music21 import chord  # imported on first use: a warm corpus read never needs music21

    return chord.Chord([60 + pc for pc in pitch_classes])


def chord_name(pitch_classes: tuple[int, ...]) -> str:
    """music21's name with its root, e.g. ``"A minor triad"``, ``"G dominant seventh chord"``."""
    return describe(pitch_classes)[0] if pitch_classes else "rest"


def chord_symbol(pitch_classes: tuple[int, ...]) -> str:
    """A short lead-sheet symbol (music21's figure without inversion), e.g. ``"Am"``, ``"G7"``;
    pitch names where music21 finds no symbol."""
    return describe(pitch_classes)[1] if pitch_classes else "—"


def chord_root(pitch_classes: tuple[int, ...]) -> int:
    """The root's pitch class as music21 finds it."""
    return describe(pitch_classes)[2]


def chord_quality(pitch_classes: tuple[int, ...]) -> str:
    """One of :data:`QUALITIES`, from music21's chord predicates ("other" below 3 notes)."""
    return describe(pitch_classes)[3] if len(pitch_classes) >= 3 else "other"


@lru_cache(maxsize=4096)
def describe(pitch_classes: tuple[int, ...]) -> tuple[str, str, int, str]:
    """``(name, symbol, root, quality)`` of a non-empty pitch-class set.

    music21 spends about 15 ms spelling a chord, so each set's description is kept in a
    small table in the cache folder (one per music21 version) and computed once per machine.
    """
    table = _table()
    code = str(to_mask(pitch_classes))
    if code not in table:
        table[code] = _describe(tuple(sorted(set(pitch_classes))))
        store("names", _table_name(), json.dumps(table, indent=2) + "\n")
    name, symbol, root, quality = table[code]
    return name, symbol, int(root), quality


def _describe(pitch_classes: tuple[int, ...]) -> list:
    from music21 import harmony

    c = _chord(pitch_classes)
    figure = harmony.chordSymbolFigureFromChord(c)
    if not figure or "Cannot Be Identified" in figure:
        symbol = " ".join(PITCH_NAMES[pc] for pc in pitch_classes)
    else:
        symbol = figure.split("/")[0]
    return [f"{c.root().name} {c.commonName}", symbol, c.root().pitchClass, _quality(c)]


def _quality(c: chord.Chord) -> str:
    tests = (("major", c.isMajorTriad), ("minor", c.isMinorTriad), ("diminished", c.isDiminishedTriad),
             ("augmented", c.isAugmentedTriad), ("dominant seventh", c.isDominantSeventh),
             ("diminished seventh", c.isDiminishedSeventh),
             ("half-diminished seventh", c.isHalfDiminishedSeventh))
    for quality, test in tests:
        if test():
            return quality
    return {"major seventh chord": "major seventh", "minor seventh chord": "minor seventh"}.get(c.commonName, "other")


def _table_name() -> str:
    return f"music21-{version('music21')}.json"


@lru_cache(maxsize=1)
def _table() -> dict[str, list]:
    try:
        return json.loads((cache_dir("names") / _table_name()).read_text())
    except (OSError, ValueError):
        return {}
