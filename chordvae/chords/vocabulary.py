"""The chord vocabulary: qualities as interval sets above a root, and Harte labels.

Labels follow Harte et al. (2005), the syntax ``mir_eval.chord`` reads: ``C:maj``, ``G:7/3``
(G dominant seventh, third in the bass), ``N`` for no chord, and for a pitch-class set outside
the vocabulary an interval list such as ``C:(3,#5,7)``.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

#: Harte quality -> semitones above the root. Sets can coincide (maj6 = min7 of the sixth,
#: dim7 and aug are symmetric): the recogniser then chooses the root by the bass and the prior.
QUALITIES: dict[str, tuple[int, ...]] = {
    "maj": (0, 4, 7), "min": (0, 3, 7), "dim": (0, 3, 6), "aug": (0, 4, 8),
    "sus2": (0, 2, 7), "sus4": (0, 5, 7),
    "7": (0, 4, 7, 10), "maj7": (0, 4, 7, 11), "min7": (0, 3, 7, 10), "hdim7": (0, 3, 6, 10),
    "dim7": (0, 3, 6, 9), "maj6": (0, 4, 7, 9), "min6": (0, 3, 7, 9), "sus4(b7)": (0, 5, 7, 10),
}
ROOT_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
#: Harte degree of each semitone above the root.
DEGREES = ("1", "b2", "2", "b3", "3", "4", "b5", "5", "#5", "6", "b7", "7")


def chord_set(root: int, quality: str) -> tuple[int, ...]:
    """Sorted pitch classes of ``quality`` on ``root`` (C = 0)."""
    return tuple(sorted((root + i) % 12 for i in QUALITIES[quality]))


def templates() -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Every (root, quality) of the vocabulary: binary templates ``(12 * Q, 12)`` and their names."""
    names = [(root, quality) for quality in QUALITIES for root in range(12)]
    rows = np.zeros((len(names), 12), dtype=np.float64)
    for k, (root, quality) in enumerate(names):
        rows[k, list(chord_set(root, quality))] = 1.0
    return rows, names


def harte_label(pitch_classes: Sequence[int], root: int, bass: int | None = None,
                quality: str | None = None) -> str:
    """The Harte label of a chord: ``quality`` if given (a vocabulary name), else the vocabulary
    quality whose set on ``root`` equals ``pitch_classes``, else an interval list. ``bass`` other
    than the root adds ``/degree``. An empty set is ``N``."""
    if not pitch_classes:
        return "N"
    pcs = tuple(sorted(set(int(p) % 12 for p in pitch_classes)))
    if quality is None:
        quality = next((q for q in QUALITIES if chord_set(root, q) == pcs), None)
    if quality is None:
        degrees = sorted({(pc - root) % 12 for pc in pcs} - {0})
        quality = "(" + (",".join(DEGREES[d] for d in degrees) or "1") + ")"   # a lone note: "C:(1)"
    label = f"{ROOT_NAMES[root]}:{quality}"
    if bass is not None and bass >= 0 and bass != root:
        label += "/" + DEGREES[(bass - root) % 12]
    return label
