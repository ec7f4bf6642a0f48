"""Window annotations: file, bars, corpus, recognised progression, key mode and cadence."""
from __future__ import annotations

import numpy as np
from music21 import chord, harmony, meter, stream

from chordvae.progressions.annotate import annotate, key_name
from chordvae.progressions.corpus import read_progressions
from chordvae.progressions.windows import tiling_windows, training_windows
from tests.helpers import midi_file


def song(path, figures, beats=4):
    """One block chord per bar of ``beats`` beats at 120 bpm, from music21's chord symbols."""
    chords = []
    for bar, figure in enumerate(figures):
        s = harmony.ChordSymbol(figure.replace("b", "-"))
        pcs = sorted({p.pitchClass for p in s.pitches})
        t = bar * beats * 0.5
        chords.append((t, t + beats * 0.5, [60 + p for p in pcs] + [36 + s.bass().pitchClass]))
    return midi_file(path, chords)


MAJOR = ["C", "F", "G7", "C", "Am", "Dm", "G", "C"]
MINOR = ["Am", "Dm", "E7", "Am", "F", "Dm", "E", "Am"]


def test_windows_name_their_file_bars_progression_key_and_cadence(tmp_path):
    (tmp_path / "pop").mkdir()
    (tmp_path / "folk").mkdir()
    song(tmp_path / "pop" / "major.mid", MAJOR)
    song(tmp_path / "folk" / "minor.mid", MINOR)
    corpus = read_progressions([str(tmp_path)], progress=False)
    infos = annotate(corpus, training_windows(corpus, bars=2))
    major = [i for i in infos if i.path.endswith("major.mid")]
    minor = [i for i in infos if i.path.endswith("minor.mid")]
    assert [i.first_bar for i in major] == list(range(1, 9))
    assert [i.last_bar for i in major] == [2, 3, 4, 5, 6, 7, 8, 8]   # the last window is cut by the piece's end
    assert major[1].bars == "2-3" and major[-1].bars == "8"
    assert major[0].progression == "| C . . . | F . . . |"
    assert major[-1].progression == "| C . . . |"
    assert {i.corpus for i in major} == {"pop"} and {i.corpus for i in minor} == {"folk"}
    assert {(i.key, i.mode) for i in major} == {("C major", "major")}
    assert {(i.key, i.mode) for i in minor} == {("a minor", "minor")}
    # the last chord of each window in the key, as music21 numbers it
    assert [i.cadence for i in major] == ["IV", "V", "I", "vi", "ii", "V", "I", "I"]
    assert [i.cadence for i in minor] == ["iv", "V", "i", "VI", "iv", "V", "i", "i"]


def test_a_transposed_window_keeps_its_cadence_in_its_moved_key(tmp_path):
    song(tmp_path / "major.mid", MAJOR)
    corpus = read_progressions([str(tmp_path)], progress=False)
    windows = training_windows(corpus, bars=2, transpose="all")
    infos = annotate(corpus, windows)
    up2 = [i for i in infos if i.shift == 2]
    assert {i.key for i in up2} == {"D major"}
    assert up2[0].progression == "| D . . . | G . . . |"
    assert [i.cadence for i in up2] == ["IV", "V", "I", "vi", "ii", "V", "I", "I"]


def test_tiles_after_a_pickup_name_the_pickup_bar_zero(tmp_path):
    # a score in 4/4 with a one-beat pickup (G) before eight bars: bar 0 is the pickup
    part = stream.Part()
    for number, figure in enumerate(["G"] + MAJOR):
        m = stream.Measure(number=number)
        s = harmony.ChordSymbol(figure)
        pitches = [36 + s.bass().pitchClass] + [60 + p for p in sorted({p.pitchClass for p in s.pitches})]
        if number == 0:
            m.timeSignature = meter.TimeSignature("4/4")
            m.paddingLeft = 3.0
        m.append(chord.Chord(pitches, quarterLength=1.0 if number == 0 else 4.0))
        part.append(m)
    path = tmp_path / "up.musicxml"
    stream.Score([part]).write("musicxml", fp=str(path))
    corpus = read_progressions([str(path)], progress=False)
    infos = annotate(corpus, tiling_windows(corpus, bars=4))
    assert [(i.first_bar, i.last_bar) for i in infos] == [(0, 3), (4, 7), (8, 8)]
    assert infos[0].progression == "| N . . G | C . . . | F . . . | G7 . . . |"
    assert infos[0].cadence == "V" and infos[-1].progression == "| C . . . |"


def test_key_names_spell_as_the_chord_names_do():
    assert key_name(3, True) == "Eb major" and key_name(1, False) == "c# minor"
    assert key_name(10, False) == "bb minor" and np.all([key_name(k, True) for k in range(12)])


def test_annotating_some_windows_gives_theirs_in_the_order_asked(tmp_path):
    song(tmp_path / "major.mid", MAJOR)
    corpus = read_progressions([str(tmp_path)], progress=False)
    windows = training_windows(corpus, bars=2, transpose="all")
    every = annotate(corpus, windows)
    chosen = np.array([40, 3, 17])
    assert annotate(corpus, windows, chosen) == [every[i] for i in chosen]
