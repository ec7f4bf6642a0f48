"""Listening: chord specs, voicing, MIDI / MusicXML written and read back, audio through FluidSynth."""
from __future__ import annotations

import wave

import numpy as np
import pretty_midi
import pytest
from music21 import converter, harmony

from chordvae.chords.names import name_chord
from chordvae.errors import ChordVAEError
from chordvae.listen import audio
from chordvae.listen.audio import find_soundfont, render_wav
from chordvae.listen.chordspec import parse_chord
from chordvae.listen.midi import RenderOptions, write_chords
from chordvae.listen.voicing import voice

CHORDS = [(0, 4, 7), (2, 5, 7, 11), (0, 4, 9), (0, 2, 6, 9)]   # C, G7, Am, D7
ROOTS = [0, 7, 9, 2]


@pytest.mark.parametrize("text, pcs, bass", [
    ("C E G", (0, 4, 7), 0), ("A C E G", (0, 4, 7, 9), 9), ("Bb D F", (2, 5, 10), 10),
    ("F# A C#", (1, 6, 9), 6), ("E- G B-", (3, 7, 10), 3), ("0,4,7", (0, 4, 7), 0), ("7, 11, 2, 5", (2, 5, 7, 11), 7),
    ("Cmaj7", (0, 4, 7, 11), 0), ("Am", (0, 4, 9), 9), ("G7", (2, 5, 7, 11), 7), ("F#m7b5", (0, 4, 6, 9), 6),
    ("Bbsus4", (3, 5, 10), 10),
    # lower case as musicians type it: bb = B-flat, eb = E-flat, b = B natural
    ("bb d f", (2, 5, 10), 10), ("eb g bb", (3, 7, 10), 3), ("b d# f#", (3, 6, 11), 11), ("c e g", (0, 4, 7), 0),
    ("Cb Fbb G##4", (3, 9, 11), 11),
])
def test_chord_specs(text, pcs, bass):
    spec = parse_chord(text)
    assert (spec.pitch_classes, spec.bass, spec.z) == (pcs, bass, None)


def test_latent_point_spec():
    assert parse_chord("z:0.5,-1.2").z == (0.5, -1.2)


@pytest.mark.parametrize("text", ["H# blah", "", "13,4", "xyz", "C E H", "z:a,b"])
def test_nonsense_is_refused_with_the_accepted_forms(text):
    with pytest.raises(ChordVAEError, match="note names.*pitch classes.*chord symbol.*latent point"):
        parse_chord(text)


@pytest.mark.parametrize("pcs, root", [
    ((0, 4, 7), 0), ((0, 4, 9), 9), ((2, 5, 7, 11), 7), ((2, 5, 11), 11), ((2, 4, 7, 11), 4),
    ((0, 4, 5, 9), 5), ((0, 2, 6, 9), 2), ((1, 5, 8), 1), ((0, 3, 8), 8), ((2, 6, 9), 2),
])   # C E G, A C E, G B D F, B D F, E G B D, F A C E, D F# A C, Db F Ab, Ab C Eb, D F# A
def test_chord_roots_are_the_ones_musicians_name(pcs, root):
    assert name_chord(pcs).root == root


def test_voicing_puts_the_bass_below_in_close_position():
    notes = voice((2, 5, 7, 11))  # G7: root G in the bass
    assert notes[0] == 43 and notes[0] < min(notes[1:])
    assert sorted(n % 12 for n in notes[1:]) == [2, 5, 7, 11] and max(notes[1:]) - min(notes[1:]) < 12
    assert voice((0, 4, 7), bass=4)[0] == 40
    with pytest.raises(ValueError):
        voice(())


def test_midi_round_trip_with_pretty_midi_and_music21(tmp_path):
    options = RenderOptions(bpm=120, beats=2, program=48, velocity=90)
    path = tmp_path / "walk.mid"
    write_chords(CHORDS, path, options, basses=[None, 11, None, None])
    pm = pretty_midi.PrettyMIDI(str(path))
    (inst,) = pm.instruments
    assert inst.program == 48
    for i, pcs in enumerate(CHORDS):
        notes = [n for n in inst.notes if abs(n.start - i * 1.0) < 1e-3]
        assert {n.pitch % 12 for n in notes} == set(pcs)
        assert all(abs(n.end - (i + 1) * 1.0) < 1e-3 and n.velocity == 90 for n in notes)
        lowest = min(notes, key=lambda n: n.pitch)
        assert lowest.pitch % 12 == (11 if i == 1 else ROOTS[i])  # given bass, else the root
    chords = converter.parse(str(path)).chordify().recurse().getElementsByClass("Chord")
    assert [tuple(sorted({p.pitchClass for p in c.pitches})) for c in chords] == CHORDS


def test_musicxml_has_chord_symbols_and_pitches(tmp_path):
    path = tmp_path / "walk.musicxml"
    write_chords(CHORDS[:3], path)
    score = converter.parse(str(path))
    symbols = list(score.recurse().getElementsByClass(harmony.ChordSymbol))
    assert [s.figure for s in symbols] == ["C", "G7", "Am"]
    chords = [c for c in score.recurse().getElementsByClass("Chord") if not isinstance(c, harmony.ChordSymbol)]
    assert [tuple(sorted({p.pitchClass for p in c.pitches})) for c in chords] == CHORDS[:3]


def test_unknown_output_type_is_refused(tmp_path):
    with pytest.raises(ChordVAEError, match=".mid or .musicxml"):
        write_chords(CHORDS, tmp_path / "x.mp3")


def test_wav_is_real_audio_of_the_expected_length(tmp_path):
    try:
        find_soundfont()
        import fluidsynth  # noqa: F401
    except (ChordVAEError, ImportError, OSError) as e:
        pytest.skip(f"no synthesizer here: {e}")
    pm = write_chords(CHORDS[:2], tmp_path / "two.mid", RenderOptions(bpm=120, beats=2))
    render_wav(pm, tmp_path / "two.wav")
    with wave.open(str(tmp_path / "two.wav")) as w:
        rate, frames = w.getframerate(), w.readframes(w.getnframes())
    samples = np.frombuffer(frames, dtype="<i2").astype(float) / 32768
    assert 2.0 <= len(samples) / rate <= 2.0 + 3.0  # two 1-second chords plus the synth's release
    assert np.sqrt(np.mean(samples[: 2 * rate] ** 2)) > 0.01  # not silence


def test_missing_soundfont_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setattr(audio, "SOUNDFONT_PLACES", (str(tmp_path / "none.sf2"),))
    monkeypatch.setattr(audio, "BUNDLED", str(tmp_path / "bundled.sf2"))
    monkeypatch.delenv("CHORDVAE_SOUNDFONT", raising=False)
    with pytest.raises(ChordVAEError, match="fluid-soundfont-gm"):
        find_soundfont()
    with pytest.raises(ChordVAEError, match="not found"):
        find_soundfont(str(tmp_path / "given.sf2"))


def test_musicxml_names_every_chord_truthfully(tmp_path):
    """A symbol music21 reads back as the chord's notes and bass, or the notes as text."""
    from music21 import expressions

    path = tmp_path / "names.musicxml"
    write_chords([(0, 4, 7), (2, 4, 11), (1, 5, 8, 10), (0, 1, 2)], path, basses=[4, None, None, None])
    score = converter.parse(str(path))
    symbols = list(score.recurse().getElementsByClass(harmony.ChordSymbol))
    assert [(sorted({p.pitchClass for p in s.pitches}), s.bass().pitchClass) for s in symbols] == \
        [([0, 4, 7], 4), ([2, 4, 11], 4), ([1, 5, 8, 10], 10)]
    texts = [t.content for t in score.recurse().getElementsByClass(expressions.TextExpression)]
    assert texts == ["C C# D"]
