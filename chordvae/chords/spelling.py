"""Note names: how chordvae spells a pitch class, one convention everywhere.

Accidentals are ASCII, ``b`` for flat and ``#`` for sharp (``Bb``, ``F#m``), as musicians type
them and as :func:`~chordvae.listen.chordspec.parse_chord` reads them back; music21's ``-`` is
written only where a string goes to music21 (:func:`music21_note`). The letter depends on what
the note is:

- a pitch class on its own (legends, Harte labels, the explorer's bars): :data:`PITCH_NAMES`,
  C C# D Eb E F F# G Ab A Bb B;
- a chord's root (:func:`root_name`): spelled in the key the chord implies (major for a chord
  with a major third or none, minor for a minor third), as the note whose key signature has
  fewer accidentals; the two ties, F#/Gb major and D#/Eb minor, go to sharps. So Db, Eb, F#, Ab,
  Bb and B major, but C#m, D#m, F#m, G#m and Bbm;
- a note above a root (a slash chord's bass, :func:`degree_name`): by its degree, so D/F#,
  C7/Bb, E/G#, Ab/C;
- notes that form no chord symbol (:func:`spell_set`): as in the major key that holds most of
  them (fewest accidentals first), so D E B and C# F# A# B.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

LETTERS = "CDEFGAB"
LETTER_PCS = (0, 2, 4, 5, 7, 9, 11)
MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
#: A pitch class on its own (C = 0).
PITCH_NAMES = ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")
#: Scale degree (1-7) of each semitone above a root, where the chord does not say otherwise.
DEGREE_OF = (1, 2, 2, 3, 3, 4, 4, 5, 6, 6, 7, 7)


def note_name(pc: int) -> str:
    """A pitch class on its own: ``10`` -> ``"Bb"``."""
    return PITCH_NAMES[int(pc) % 12]


def music21_note(name: str) -> str:
    """A note name as music21 reads it: ``"Bb"`` -> ``"B-"``, ``"F#"`` -> ``"F#"``."""
    return name[0] + name[1:].replace("b", "-")


def _spell(letter: int, pc: int) -> str | None:
    """``pc`` written on letter index ``letter`` (0 = C), or None beyond a double accidental."""
    acc = (pc - LETTER_PCS[letter % 7] + 6) % 12 - 6
    return None if abs(acc) > 2 else LETTERS[letter % 7] + ("#" * acc if acc > 0 else "b" * -acc)


@lru_cache(maxsize=None)
def _key(tonic: int, minor: bool) -> tuple[int, tuple[str, ...]]:
    """The spelling of the key on pitch class ``tonic`` with the fewest accidentals (ties: sharps):
    its tonic's letter index and its seven notes."""
    best: tuple[tuple[int, int], int, tuple[str, ...]] | None = None
    for letter in range(7):
        first = _spell(letter, tonic)
        if first is None or len(first) > 2:
            continue
        notes = tuple(_spell(letter + k, tonic + step) or "??" for k, step in enumerate(MINOR if minor else MAJOR))
        rank = (sum(len(n) - 1 for n in notes), "b" in first)
        if best is None or rank < best[0]:
            best = (rank, letter, notes)
    return best[1], best[2]


def root_name(root: int, minor: bool) -> str:
    """A chord root spelled in its implied key (``minor``: the chord has a minor third)."""
    return _key(int(root) % 12, minor)[1][0]


def degree_name(root: str, interval: int, degree: int | None = None) -> str:
    """The note ``interval`` semitones above the note named ``root``, written as its ``degree``
    (1-7; default :data:`DEGREE_OF`): ``("D", 4)`` -> ``"F#"``, ``("C", 10)`` -> ``"Bb"``;
    :func:`note_name` where that needs a double accidental."""
    letter = LETTERS.index(root[0])
    pc = (LETTER_PCS[letter] + root.count("#") - root[1:].count("b") + interval) % 12
    name = _spell(letter + (degree or DEGREE_OF[interval % 12]) - 1, pc)
    return name if name is not None and len(name) <= 2 else note_name(pc)


@lru_cache(maxsize=1)
def _major_keys() -> list[tuple[int, int, bool, dict[int, str]]]:
    """The 12 major keys as (mask of their pitch classes, accidentals, flats, pitch class -> name)."""
    keys = []
    for tonic in range(12):
        notes = _key(tonic, False)[1]
        pcs = [(tonic + step) % 12 for step in MAJOR]
        keys.append((sum(1 << pc for pc in pcs), sum(len(n) - 1 for n in notes), any("b" in n for n in notes),
                     dict(zip(pcs, notes))))
    return keys


@lru_cache(maxsize=4096)
def spell_set(pitch_classes: tuple[int, ...]) -> tuple[str, ...]:
    """Notes that form no chord symbol, spelled as in the major key holding most of them
    (fewest accidentals first, then sharps); black keys outside it take the key's accidental
    (in C major, the one most of them usually have; ties: sharps)."""
    mask = sum(1 << pc for pc in set(pitch_classes))
    _, accidentals, flats, spelled = min(_major_keys(), key=lambda k: (-bin(k[0] & mask).count("1"), k[1], k[2]))
    if not accidentals:   # C major: the outside notes' usual accidental
        usual = [note_name(pc)[1:] for pc in pitch_classes if pc not in spelled and len(note_name(pc)) > 1]
        flats = usual.count("b") > usual.count("#")

    def outside(pc: int) -> str:
        name = note_name(pc)
        return name if len(name) == 1 else _spell(LETTERS.index(note_name(pc + 1 if flats else pc - 1)), pc)

    return tuple(spelled.get(pc) or outside(pc) for pc in pitch_classes)


def spelled(pitch_classes: Sequence[int]) -> str:
    """``(2, 4, 11)`` -> ``"D E B"``: :func:`spell_set` joined by spaces."""
    return " ".join(spell_set(tuple(int(p) % 12 for p in pitch_classes)))
