"""Chord names: one spelling, the lead-sheet vocabulary, and names that are true to their notes."""
from __future__ import annotations

import os
import re
import subprocess
import sys
import warnings

import mir_eval
import numpy as np
import pytest

from chordvae.chords.names import REST_SYMBOL, mask_labels, name_chord, parse_symbol
from chordvae.chords.pcset import from_mask, to_mask
from chordvae.chords.spelling import LETTER_PCS, LETTERS, PITCH_NAMES, root_name
from chordvae.chords.vocabulary import LABELS, QUALITIES, RECOGNISED, VOCABULARY
from chordvae.listen.chordspec import parse_chord


@pytest.mark.parametrize("pcs, bass, symbol", [
    # issue 14's cases: what music21 wrote before on the left
    ((3, 6, 11), None, "B"),            # "C-" (wrong: C-flat)
    ((2, 5, 10), None, "Bb"),           # "B-"
    ((3, 6, 10), None, "D#m"),          # "E-m"
    ((1, 5, 10), None, "Bbm"),          # "A#m", next to "A-" in one table
    ((0, 3, 8), None, "Ab"),            # "A-"
    ((0, 5, 10), None, "Fsus4"),        # "CsusaddB-,omitG"
    ((2, 4, 11), None, "E7(no3)"),      # "Epower" for D E B: D was dropped
    ((1, 6, 10, 11), None, "F#add11"),  # "F#": B was dropped
    # the vocabulary
    ((0, 4, 7), None, "C"), ((0, 4, 9), None, "Am"), ((2, 5, 7, 11), None, "G7"), ((0, 4, 7, 11), None, "Cmaj7"),
    ((0, 2, 5, 9), None, "Dm7"), ((2, 5, 11), None, "Bdim"), ((2, 5, 9, 11), None, "Bm7b5"),
    ((0, 3, 6, 9), None, "Cdim7"), ((0, 4, 8), None, "Caug"), ((0, 5, 7), None, "Csus4"),
    ((0, 2, 7), None, "Gsus4"), ((0, 2, 7), 0, "Csus2"), ((0, 5, 7, 10), None, "C7sus4"),
    ((0, 4, 7, 9), None, "Am7"), ((0, 4, 7, 9), 0, "C6"), ((0, 3, 7, 9), None, "Am7b5"), ((0, 3, 7, 9), 0, "Cm6"),
    ((0, 2, 4, 7), None, "Cadd9"), ((0, 2, 3, 7), None, "Cmadd9"), ((0, 2, 4, 7, 10), None, "C9"),
    ((0, 2, 4, 7, 11), None, "Cmaj9"), ((0, 2, 3, 7, 10), None, "Cm9"), ((0, 3, 7, 11), None, "Cm(maj7)"),
    ((0, 2, 4, 7, 9), None, "C6/9"), ((0, 1, 4, 7, 10), None, "C7b9"), ((0, 3, 4, 7, 10), None, "C7#9"),
    ((0, 4, 8, 10), None, "C7#5"), ((0, 4, 8, 11), None, "Cmaj7#5"), ((0, 4, 10), None, "C7(no5)"),
    ((0, 7), None, "C5"), ((0, 5), None, "F5"),
    # roots spelled in their key: Db major but C#m, F# and F#m, G#m but Ab
    ((1, 5, 8), None, "Db"), ((1, 4, 8), None, "C#m"), ((1, 6, 10), None, "F#"), ((1, 6, 9), None, "F#m"),
    ((3, 8, 11), None, "G#m"), ((1, 5, 8, 11), None, "Db7"), ((3, 7, 10), None, "Eb"),
    # slash chords: the bass by its degree above the root
    ((0, 4, 7), 4, "C/E"), ((2, 7, 11), 11, "G/B"), ((2, 6, 9), 6, "D/F#"), ((0, 4, 7, 10), 10, "C7/Bb"),
    ((4, 8, 11), 8, "E/G#"), ((0, 3, 8), 0, "Ab/C"), ((0, 4, 7), 2, "C/D"),
    # no symbol fits: the notes, spelled in one key, from the bass up when it is known
    ((0, 1, 2), None, "C C# D"), ((0, 1, 2, 3, 4), None, "C C# D D# E"), ((0, 1, 2, 3), None, "C Db D Eb"), ((0, 1, 2), 2, "D C C#"),
    ((4,), None, "E only"), ((), None, REST_SYMBOL),
])
def test_chords_are_named_as_musicians_write_them(pcs, bass, symbol):
    assert name_chord(pcs, bass).symbol == symbol


@pytest.mark.parametrize("pcs, bass, root, name", [
    ((0, 4, 7), None, None, "C major triad"), ((1, 5, 8, 10), None, None, "Bb minor seventh chord"),
    ((2, 7, 11), 11, None, "G major triad over B"), ((0, 4, 7, 9), None, 0, "C major sixth chord"),
    ((2, 4, 11), None, None, "E seventh chord without third"),
    ((0, 1, 2), None, None, "the notes C C# D (no chord symbol)"), ((4,), None, None, "the single note E"),
])
def test_names_in_words(pcs, bass, root, name):
    assert name_chord(pcs, bass, root).name == name


def _pc(note: str) -> int:
    return (LETTER_PCS[LETTERS.index(note[0])] + note.count("#") - note[1:].count("b")) % 12


def test_every_name_is_true_to_its_pitch_class_set():
    """All 4,096 sets, without a bass and over each of their notes: a symbol whose notes are the
    set (read back by the parser, which knows nothing of how the name was chosen), or the notes."""
    readings = {to_mask(r + i for i in q.intervals) for q in VOCABULARY for r in range(12)}
    for mask in range(1, 4096):
        pcs = from_mask(mask)
        for bass in (None, *pcs):
            named = name_chord(pcs, bass)
            assert "-" not in named.symbol
            if named.quality is not None:
                root_text = re.match(r"[A-G][b#]?", named.symbol).group()
                assert re.fullmatch(r"[A-G][b#]?", named.symbol.removeprefix(root_text + named.quality.symbol).removeprefix("/") or "C"), named
                assert _pc(root_text) == named.root
                assert parse_symbol(named.symbol) == (pcs, named.root if bass is None else bass), named
                assert {(named.root + i) % 12 for i in named.quality.intervals} == set(pcs)
            else:
                assert mask not in readings, named           # only where no symbol fits
                notes = named.symbol.removesuffix(" only").split()
                assert all(re.fullmatch(r"[A-G][b#]?", n) for n in notes), named
                assert sorted(_pc(n) for n in notes) == list(pcs), named
                assert bass is None or _pc(notes[0]) == bass
                assert len({n[1:] for n in notes if len(n) > 1}) <= 1, named  # sharps or flats, not both
                assert named.root in pcs


def test_the_issue_cases_read_back_to_their_sets():
    for symbol, pcs in (("Fsus4", (0, 5, 10)), ("E7(no3)", (2, 4, 11)), ("F#add11", (1, 6, 10, 11)),
                        ("Bbm", (1, 5, 10)), ("B", (3, 6, 11))):
        assert parse_chord(symbol).pitch_classes == pcs


def test_one_spelling_for_roots_and_lone_pitch_classes():
    assert [root_name(r, minor=False) for r in range(12)] == \
        ["C", "Db", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"]
    assert [root_name(r, minor=True) for r in range(12)] == \
        ["C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "Bb", "B"]
    assert PITCH_NAMES == ("C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B")


def test_one_quality_type_serves_recogniser_labels_and_names():
    assert all(h in QUALITIES for h in RECOGNISED)
    # the picture classes are the old English ones, so legends and corpora.json keys stay
    assert LABELS == ("major", "minor", "diminished", "augmented", "dominant seventh", "major seventh",
                      "minor seventh", "half-diminished seventh", "diminished seventh", "other")
    # music21 called D# F# A "other" (it spelled it Eb F# A); it is a diminished triad
    assert mask_labels([to_mask((3, 6, 9)), to_mask((0, 4, 7)), to_mask((0, 2)), to_mask((0, 2, 4, 7))]) == \
        ["diminished", "major", "other", "other"]
    for q in VOCABULARY:   # each quality's Harte name means its intervals
        root, bitmap, _ = mir_eval.chord.encode(f"C:{q.harte}", reduce_extended_chords=True)
        assert root == 0 and tuple(np.flatnonzero(bitmap)) == q.intervals, q


def test_music21_reads_every_symbol_as_its_notes():
    from music21 import harmony

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for q in VOCABULARY:
            for root in range(12):
                for bass in (None, (root + q.intervals[1]) % 12) if root in (1, 6, 10) else (None,):
                    named = name_chord([root + i for i in q.intervals], bass, root)
                    symbol = harmony.ChordSymbol(named.music21)
                    assert sorted({p.pitchClass for p in symbol.pitches}) == list(named.pitch_classes), named
                    assert bass is None or symbol.bass().pitchClass == bass


def test_naming_is_pure_and_needs_no_music21(tmp_path):
    code = ("import sys\n"
            "from chordvae.chords import names\n"
            "from chordvae.listen.voicing import voice\n"
            "n = [names.name_chord(names.from_mask(m), bass) for m in range(4096) for bass in (None, 0)]\n"
            "voice((0, 4, 7))\n"
            "assert 'music21' not in sys.modules\n")
    env = {**os.environ, "CHORDVAE_CACHE": str(tmp_path / "cache"), "XDG_CACHE_HOME": str(tmp_path / "xdg")}
    subprocess.run([sys.executable, "-c", code], check=True, env=env)
    assert not (tmp_path / "cache").exists() and not (tmp_path / "xdg").exists()   # nothing written
