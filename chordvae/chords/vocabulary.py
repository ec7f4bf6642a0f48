"""The chord vocabulary: qualities as interval sets above a root, and Harte labels.

One :class:`Quality` type serves the recogniser (its templates, :data:`RECOGNISED`), the
Harte labels ``mir_eval`` reads, the chord symbols of :mod:`~chordvae.chords.names` and the
quality colours of the pictures (:data:`LABELS`).

Labels follow Harte et al. (2005), the syntax ``mir_eval.chord`` reads: ``C:maj``, ``G:7/3``
(G dominant seventh, third in the bass), ``N`` for no chord, and for a pitch-class set outside
the vocabulary an interval list such as ``C:(3,#5,7)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .spelling import note_name


@dataclass(frozen=True)
class Quality:
    """A chord quality: ``harte`` its Harte shorthand (or interval list), ``symbol`` the
    lead-sheet suffix after the root (``""``, ``"m7b5"``), ``name`` in English (``"minor
    seventh"``), ``long`` the noun phrase after the root in a chord's full name (``"minor
    seventh chord"``), ``intervals`` semitones above the root (sorted, from 0) and ``music21``
    the figure suffix music21's ``ChordSymbol`` reads for it (``None``: the symbol itself)."""

    harte: str
    symbol: str
    name: str
    long: str
    intervals: tuple[int, ...]
    music21: str | None = None


def _q(harte: str, symbol: str, name: str, long: str, intervals: tuple[int, ...], music21: str | None = None) -> Quality:
    return Quality(harte, symbol, name, long, intervals, music21)


#: Every quality a chord can be named by, in order of preference where one set has several
#: readings (C E G A is Am7 before C6; a known bass or root decides first, see
#: :func:`~chordvae.chords.names.name_chord`).
VOCABULARY: tuple[Quality, ...] = (
    _q("maj", "", "major", "major triad", (0, 4, 7)),
    _q("min", "m", "minor", "minor triad", (0, 3, 7)),
    _q("7", "7", "dominant seventh", "dominant seventh chord", (0, 4, 7, 10)),
    _q("min7", "m7", "minor seventh", "minor seventh chord", (0, 3, 7, 10)),
    _q("maj7", "maj7", "major seventh", "major seventh chord", (0, 4, 7, 11)),
    _q("dim", "dim", "diminished", "diminished triad", (0, 3, 6)),
    _q("hdim7", "m7b5", "half-diminished seventh", "half-diminished seventh chord", (0, 3, 6, 10)),
    _q("dim7", "dim7", "diminished seventh", "diminished seventh chord", (0, 3, 6, 9)),
    _q("aug", "aug", "augmented", "augmented triad", (0, 4, 8)),
    _q("sus4", "sus4", "suspended fourth", "suspended fourth chord", (0, 5, 7)),
    _q("sus2", "sus2", "suspended second", "suspended second chord", (0, 2, 7)),
    _q("sus4(b7)", "7sus4", "seventh suspended fourth", "seventh chord with suspended fourth", (0, 5, 7, 10)),
    _q("maj6", "6", "major sixth", "major sixth chord", (0, 4, 7, 9)),
    _q("min6", "m6", "minor sixth", "minor sixth chord", (0, 3, 7, 9)),
    _q("maj(9)", "add9", "added ninth", "major triad with added ninth", (0, 2, 4, 7)),
    _q("min(9)", "madd9", "minor added ninth", "minor triad with added ninth", (0, 2, 3, 7)),
    _q("9", "9", "dominant ninth", "dominant ninth chord", (0, 2, 4, 7, 10)),
    _q("min9", "m9", "minor ninth", "minor ninth chord", (0, 2, 3, 7, 10)),
    _q("maj9", "maj9", "major ninth", "major ninth chord", (0, 2, 4, 7, 11), "maj7 add 9"),
    _q("minmaj7", "m(maj7)", "minor major seventh", "minor major seventh chord", (0, 3, 7, 11), "mM7"),
    _q("maj6(9)", "6/9", "sixth added ninth", "major sixth chord with added ninth", (0, 2, 4, 7, 9), "6 add 9"),
    _q("7(b9)", "7b9", "dominant seventh flat ninth", "dominant seventh chord with flat ninth", (0, 1, 4, 7, 10)),
    _q("7(#9)", "7#9", "dominant seventh sharp ninth", "dominant seventh chord with sharp ninth", (0, 3, 4, 7, 10)),
    _q("aug(b7)", "7#5", "augmented seventh", "augmented seventh chord", (0, 4, 8, 10)),
    _q("(3,b5,b7)", "7b5", "dominant seventh flat fifth", "dominant seventh chord with flat fifth", (0, 4, 6, 10)),
    _q("aug(7)", "maj7#5", "augmented major seventh", "augmented major seventh chord", (0, 4, 8, 11)),
    _q("sus4(b7,9)", "9sus4", "ninth suspended fourth", "ninth chord with suspended fourth", (0, 2, 5, 7, 10),
       "7sus4 add 9"),
    _q("min11", "m11", "minor eleventh", "minor eleventh chord", (0, 2, 3, 5, 7, 10)),
    _q("7(9,13)", "13", "dominant thirteenth", "dominant thirteenth chord", (0, 2, 4, 7, 9, 10), "9 add 13"),
    _q("maj(11)", "add11", "added eleventh", "major triad with added eleventh", (0, 4, 5, 7)),
    _q("min(11)", "madd11", "minor added eleventh", "minor triad with added eleventh", (0, 3, 5, 7), "m add 11"),
    _q("(3,b7)", "7(no5)", "dominant seventh without fifth", "dominant seventh chord without fifth", (0, 4, 10),
       "7 omit5"),
    _q("(b3,b7)", "m7(no5)", "minor seventh without fifth", "minor seventh chord without fifth", (0, 3, 10),
       "m7 omit5"),
    _q("(3,7)", "maj7(no5)", "major seventh without fifth", "major seventh chord without fifth", (0, 4, 11),
       "maj7 omit5"),
    _q("(5,b7)", "7(no3)", "seventh without third", "seventh chord without third", (0, 7, 10), "7 omit3"),
    _q("5", "5", "power", "power chord (fifth)", (0, 7), "power"),
)
#: Harte shorthand -> quality.
QUALITIES: dict[str, Quality] = {q.harte: q for q in VOCABULARY}
#: The recogniser's vocabulary, in its template order. Sets can coincide (maj6 = min7 of the
#: sixth, dim7 and aug are symmetric): the recogniser then chooses the root by the bass and the prior.
RECOGNISED: tuple[str, ...] = ("maj", "min", "dim", "aug", "sus2", "sus4", "7", "maj7", "min7", "hdim7",
                               "dim7", "maj6", "min6", "sus4(b7)")
#: The quality classes the pictures colour by (labels of chord data): these nine, else "other".
LABELS: tuple[str, ...] = tuple(QUALITIES[h].name for h in ("maj", "min", "dim", "aug", "7", "maj7", "min7",
                                                             "hdim7", "dim7")) + ("other",)
#: Harte degree of each semitone above the root.
DEGREES = ("1", "b2", "2", "b3", "3", "4", "b5", "5", "#5", "6", "b7", "7")


def chord_set(root: int, quality: str) -> tuple[int, ...]:
    """Sorted pitch classes of ``quality`` (a Harte name) on ``root`` (C = 0)."""
    return tuple(sorted((root + i) % 12 for i in QUALITIES[quality].intervals))


def templates() -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Every (root, quality) of :data:`RECOGNISED`: binary templates ``(12 * Q, 12)`` and their names."""
    names = [(root, quality) for quality in RECOGNISED for root in range(12)]
    rows = np.zeros((len(names), 12), dtype=np.float64)
    for k, (root, quality) in enumerate(names):
        rows[k, list(chord_set(root, quality))] = 1.0
    return rows, names


def harte_label(pitch_classes: Sequence[int], root: int, bass: int | None = None,
                quality: str | None = None) -> str:
    """The Harte label of a chord: ``quality`` if given (a vocabulary name), else the
    :data:`RECOGNISED` quality whose set on ``root`` equals ``pitch_classes``, else an interval
    list. ``bass`` other than the root adds ``/degree``. An empty set is ``N``."""
    if not pitch_classes:
        return "N"
    pcs = tuple(sorted(set(int(p) % 12 for p in pitch_classes)))
    if quality is None:
        quality = next((q for q in RECOGNISED if chord_set(root, q) == pcs), None)
    if quality is None:
        degrees = sorted({(pc - root) % 12 for pc in pcs} - {0})
        quality = "(" + (",".join(DEGREES[d] for d in degrees) or "1") + ")"   # a lone note: "C:(1)"
    label = f"{note_name(root)}:{quality}"
    if bass is not None and bass >= 0 and bass != root:
        label += "/" + DEGREES[(bass - root) % 12]
    return label
