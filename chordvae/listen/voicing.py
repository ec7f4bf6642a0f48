"""Voicing: a pitch-class set -> MIDI notes a piano can play."""
from __future__ import annotations

from typing import Sequence

from ..chords.names import name_chord

BASS_LOW = 36       # C2: the bass note lies in C2..B2
MIDDLE_C = 60


def voice(pitch_classes: Sequence[int], bass: int | None = None) -> list[int]:
    """MIDI note numbers, ascending: the bass (given, else the chord's root) in C2..B2, then
    every pitch class in close position upwards from middle C."""
    pcs = sorted(set(pitch_classes))
    if not pcs:
        raise ValueError("cannot voice an empty chord")
    bass = name_chord(pcs).root if bass is None else bass
    upper = [MIDDLE_C + pc for pc in pcs]
    return [BASS_LOW + bass % 12, *upper]
