"""Chords as people type them: note names, pitch classes, chord symbols, or a latent point."""
from __future__ import annotations

import re
from dataclasses import dataclass

from ..chords.names import parse_symbol
from ..errors import ChordVAEError

FORMS = ('note names ("C E G", "Bb D F"), pitch classes ("0,4,7"), a chord symbol ("Cmaj7", "Am", "G7") '
         'or a latent point ("z:0.5,-1.2")')
_NOTE = re.compile(r"^([A-Ga-g])(#{1,2}|b{1,2}|-{1,2})?\d?$")
_STEPS = {"c": 0, "d": 2, "e": 4, "f": 5, "g": 7, "a": 9, "b": 11}


@dataclass(frozen=True)
class ChordSpec:
    """What the user typed, parsed: exactly one of ``pitch_classes`` (sorted, C = 0) and ``z``.
    ``bass`` is the first note named (note names), or the symbol's bass (chord symbols);
    ``root`` the symbol's root (chord symbols only)."""

    text: str
    pitch_classes: tuple[int, ...] | None = None
    bass: int | None = None
    z: tuple[float, ...] | None = None
    root: int | None = None


def parse_chord(text: str) -> ChordSpec:
    """Parse one chord; anything unreadable raises ChordVAEError listing the accepted forms."""
    t = text.strip()
    try:
        if t.lower().startswith("z:"):
            return ChordSpec(text, z=tuple(float(v) for v in t[2:].split(",")))
        if re.fullmatch(r"\d+(\s*,\s*\d+)*", t):
            pcs = [int(v) for v in t.split(",")]
            if all(0 <= pc < 12 for pc in pcs):
                return ChordSpec(text, tuple(sorted(set(pcs))), pcs[0])
        elif t and all(_NOTE.match(tok) for tok in t.split()) and len(t.split()) > 1:
            pcs = [_pitch_class(tok) for tok in t.split()]
            return ChordSpec(text, tuple(sorted(set(pcs))), pcs[0])
        elif t and " " not in t:
            return _symbol(text, t)
    except ValueError:
        pass
    raise ChordVAEError(f"cannot read the chord {text!r}: give {FORMS}")


def _pitch_class(note: str) -> int:
    """A note name as musicians type it -> pitch class: ``"Bb"``, ``"bb"``, ``"B-"`` = 10,
    ``"b"`` = 11, ``"eb"`` = 3, ``"F#4"`` = 6 (an octave digit is ignored)."""
    letter, accidentals = _NOTE.match(note).groups()
    accidentals = accidentals or ""
    return (_STEPS[letter.lower()] + accidentals.count("#") - len(accidentals.replace("#", ""))) % 12


def _symbol(text: str, figure: str) -> ChordSpec:
    """A chord symbol: as chordvae writes them (:func:`~chordvae.chords.names.parse_symbol`), else
    as music21 reads it."""
    from music21 import harmony

    ours = parse_symbol(figure)
    if ours is not None:
        return ChordSpec(text, *ours)
    figure = re.sub(r"^([A-G])b", r"\1-", figure)  # music21 writes flats as "-": Bb7 -> B-7
    try:
        symbol = harmony.ChordSymbol(figure)
        pitches = symbol.pitches
    except Exception:  # music21 raises several kinds on figures it cannot read
        raise ValueError(figure) from None
    if not pitches or symbol.root() is None:
        raise ValueError(figure)
    return ChordSpec(text, tuple(sorted({p.pitchClass for p in pitches})), symbol.bass().pitchClass,
                     root=symbol.root().pitchClass)
