"""Chord names: the one naming function behind the pictures, the explorer page, the CLI tables,
the extracted events and MusicXML.

:func:`name_chord` names a pitch-class set by the quality of
:data:`~chordvae.chords.vocabulary.VOCABULARY` whose set on some root equals it exactly (``Bbm7``,
``F#``, ``Fsus4``, ``E7(no3)``), so a symbol always means exactly the notes it names. A known
root (the recogniser's) or bass decides between readings of one set (C E G A: ``Am7``, over C
``C6``); a bass other than the root is written after a slash (``G/B``). A set that no symbol
fits is named by its notes (``D E B``; one note: ``E only``); the empty set is ``—``. Notes are
spelled as :mod:`~chordvae.chords.spelling` says.

Naming is pure and needs no music21: the sets of every root and quality (a few hundred) are
tabled at import, and each name is memoised in memory; nothing is written anywhere.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Iterable

from .pcset import from_mask, to_mask
from .spelling import DEGREE_OF, LETTER_PCS, LETTERS, degree_name, music21_note, root_name, spell_set
from .vocabulary import LABELS, VOCABULARY, Quality

REST_SYMBOL = "—"


@dataclass(frozen=True)
class ChordName:
    """The name of a pitch-class set (sorted, C = 0). ``root`` is the symbol's root (for a set
    without a symbol, the root of the largest chord of the vocabulary inside it; -1 when
    empty); ``quality`` None when no symbol fits; ``bass`` the bass given, if any. ``symbol``
    is the lead-sheet symbol (``"Bbm7"``, ``"G/B"``, ``"D E B"``), ``name`` the same in words
    (``"Bb minor seventh chord"``), ``music21`` a figure music21's ``ChordSymbol`` reads (None
    without a symbol)."""

    pitch_classes: tuple[int, ...]
    root: int
    quality: Quality | None
    bass: int | None
    symbol: str
    name: str
    music21: str | None

    @property
    def label(self) -> str:
        """The quality class the pictures colour by: one of :data:`~chordvae.chords.vocabulary.LABELS`."""
        return self.quality.name if self.quality is not None and self.quality.name in LABELS else "other"


def _table() -> dict[int, list[tuple[int, int, Quality]]]:
    """mask -> every (preference, root, quality) whose set it is, best first."""
    table: dict[int, list[tuple[int, int, Quality]]] = {}
    for rank, quality in enumerate(VOCABULARY):
        for root in range(12):
            table.setdefault(to_mask(root + i for i in quality.intervals), []).append((rank, root, quality))
    return {mask: sorted(readings, key=lambda r: r[:2]) for mask, readings in table.items()}


def _rooting() -> dict[int, list[tuple[int, int]]]:
    """size -> (mask, root) of the sets of that size the root of an unnamed set is looked for in,
    in vocabulary order, then the major and the minor third."""
    rooting: dict[int, list[tuple[int, int]]] = {}
    for intervals in [q.intervals for q in VOCABULARY] + [(0, 4), (0, 3)]:
        rooting.setdefault(len(intervals), []).extend((to_mask(r + i for i in intervals), r) for r in range(12))
    return rooting


_READINGS = _table()
_ROOTING = _rooting()
_SYMBOL = re.compile(r"([A-G][#b]?)(.*?)(?:/([A-G][#b]?))?")
_SUFFIXES = {q.symbol: q for q in VOCABULARY}


def name_chord(pitch_classes: Iterable[int], bass: int | None = None, root: int | None = None) -> ChordName:
    """The name of a pitch-class set (any order, C = 0), with its ``bass`` and ``root`` if known."""
    mask = to_mask(pitch_classes)
    return _name(mask, None if bass is None or bass < 0 else bass % 12, None if root is None or root < 0 else root % 12)


@lru_cache(maxsize=1 << 16)
def _name(mask: int, bass: int | None, root: int | None) -> ChordName:
    pcs = from_mask(mask)
    if not pcs:
        return ChordName(pcs, -1, None, bass, REST_SYMBOL, "rest", None)
    readings = _READINGS.get(mask)
    if not readings:
        return _notes(pcs, bass)
    _, r, quality = min(readings, key=lambda x: (root is not None and x[1] != root, bass is not None and x[1] != bass, x[0]))
    minor = 3 in quality.intervals and 4 not in quality.intervals
    spelled = root_name(r, minor)
    slash = ""
    if bass is not None and bass != r:
        slash = degree_name(spelled, (bass - r) % 12, _degree(quality, (bass - r) % 12))
    figure = music21_note(spelled) + (quality.symbol if quality.music21 is None else quality.music21)
    return ChordName(pcs, r, quality, bass, spelled + quality.symbol + (f"/{slash}" if slash else ""),
                     f"{spelled} {quality.long}" + (f" over {slash}" if slash else ""),
                     figure + (f"/{music21_note(slash)}" if slash else ""))


def _degree(quality: Quality, interval: int) -> int:
    """The degree (1-7) a note ``interval`` semitones above the root has in ``quality``."""
    if interval in (6, 8) and 7 not in quality.intervals and interval in quality.intervals:
        return 5            # b5 of a diminished chord, #5 of an augmented one
    if interval == 3 and 4 in quality.intervals:
        return 2            # #9
    return DEGREE_OF[interval]


def _notes(pcs: tuple[int, ...], bass: int | None) -> ChordName:
    """A set no symbol fits: its notes from the bass up (the bass first, when known)."""
    mask = to_mask(pcs)
    root = bass if bass in pcs else pcs[0]      # no third, fifth or chord inside
    for size in sorted((s for s in _ROOTING if s <= len(pcs)), reverse=True):
        roots = [r for m, r in _ROOTING[size] if m & mask == m]
        if roots:   # the largest chord inside, on the bass where one is
            root = bass if bass in roots else roots[0]
            break
    ordered = pcs if bass is None else (bass,) + tuple(sorted(set(pcs) - {bass}, key=lambda pc: (pc - bass) % 12))
    notes = " ".join(spell_set(ordered))
    if len(ordered) == 1:
        return ChordName(pcs, root, None, bass, f"{notes} only", f"the single note {notes}", None)
    return ChordName(pcs, root, None, bass, notes, f"the notes {notes} (no chord symbol)", None)


def mask_labels(masks: Iterable[int]) -> list[str]:
    """The quality class (:attr:`ChordName.label`) of each pitch-class mask."""
    return [_name(int(m), None, None).label for m in masks]


def parse_symbol(text: str) -> tuple[tuple[int, ...], int] | None:
    """A symbol as :func:`name_chord` writes it, read back: ``"Bbm7"`` -> ``((1, 5, 8, 10), 10)``,
    ``"D/F#"`` -> ``((2, 6, 9), 6)`` (sorted pitch classes with the bass added, and the bass);
    None when ``text`` is not one."""
    m = _SYMBOL.fullmatch(text.strip())
    if m is None or m.group(2) not in _SUFFIXES:
        return None
    root = _pitch_class(m.group(1))
    bass = _pitch_class(m.group(3)) if m.group(3) else root
    return from_mask(to_mask([root + i for i in _SUFFIXES[m.group(2)].intervals] + [bass])), bass


def _pitch_class(note: str) -> int:
    return (LETTER_PCS[LETTERS.index(note[0])] + note.count("#") - note[1:].count("b")) % 12
