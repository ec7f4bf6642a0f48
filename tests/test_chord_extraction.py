"""From one music file to chord events: MIDI and MusicXML built in the tests, with known chords."""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from music21 import chord, converter, meter, stream

from chordvae.chords import readers
from chordvae.chords.sources import default_sources
from chordvae.chords.extract import FileRejected, extract_file, find_key
from chordvae.chords.readers import read_notes
from chordvae.chords.segment import Segmentation
from tests.helpers import midi_file, score_file

DATA = Path(__file__).resolve().parents[1] / "data" / "midi"


def seg(**kw):
    return Segmentation(**{"mode": "onset", "min_duration": 0.0, **kw})


def test_c_major_triad(tmp_path):
    piece = extract_file(midi_file(tmp_path / "c.mid", [(0, 1, [48, 64, 67, 72])]), seg())
    (e,) = piece.events
    assert e.pitch_classes == (0, 4, 7) and e.bass == 0 and e.name == "C major triad"
    assert (e.start_beats, e.end_beats, e.start_s, e.end_s) == (0, 2, 0, 1)  # 120 bpm: 2 beats per second
    assert (piece.key_tonic, piece.key_mode) == (0, "major")


def test_drums_never_count(tmp_path):
    path = midi_file(tmp_path / "d.mid", [(0, 1, [57, 60, 64])], drums=[(0, 1, 36), (0, 1, 42), (0, 1, 46)])
    (e,) = extract_file(path, seg()).events
    assert e.pitch_classes == (0, 4, 9) and e.name == "A minor triad" and e.bass == 9


def test_overlapping_notes_make_their_own_chords(tmp_path):
    # C E G held for two beats; B enters halfway and lasts beyond: C E G, then C E G B, then B alone.
    path = midi_file(tmp_path / "o.mid", [(0, 1, [60, 64, 67]), (0.5, 1.5, [71])])
    events = extract_file(path, seg(mode="onset", min_notes=1)).events
    assert [e.pitch_classes for e in events] == [(0, 4, 7), (0, 4, 7, 11), (11,)]
    assert [(e.start_beats, e.end_beats) for e in events] == [(0, 1), (1, 2), (2, 3)]
    assert events[1].name == "C major seventh chord"


def test_beat_segmentation_drops_a_passing_tone_that_onset_keeps(tmp_path):
    # A C major triad for a beat; the top voice moves E -> F (a sixteenth passing tone) -> E.
    path = midi_file(tmp_path / "p.mid", [(0, 0.5, [48, 55]), (0, 0.375, [64]), (0.375, 0.5, [65])])
    onset = extract_file(path, seg(mode="onset")).events
    beat = extract_file(path, seg(mode="beat", threshold=0.5)).events
    assert (0, 5, 7) in [e.pitch_classes for e in onset]
    assert [e.pitch_classes for e in beat] == [(0, 4, 7)]


def test_identical_consecutive_chords_merge(tmp_path):
    path = midi_file(tmp_path / "m.mid", [(0, 0.5, [60, 64, 67]), (0.5, 1, [60, 64, 67])])
    (e,) = extract_file(path, seg()).events
    assert (e.start_beats, e.end_beats) == (0, 2)


def test_beats_and_seconds_under_a_tempo_change(tmp_path):
    # Two chords of 2 beats each; the tempo doubles from 120 to 240 bpm at beat 2.
    path = midi_file(tmp_path / "t.mid", [(0, 2, [60, 64, 67]), (2, 4, [62, 65, 69])],
                     tempo_changes=[(0, 120), (960, 240)])
    a, b = extract_file(path, seg()).events
    assert (a.start_beats, a.end_beats, a.start_s, a.end_s) == pytest.approx((0, 2, 0, 1))
    assert (b.start_beats, b.end_beats, b.start_s, b.end_s) == pytest.approx((2, 4, 1, 1.5))
    assert b.name == "D minor triad"


def test_musicxml_pickup_tempo_and_ties(tmp_path):
    events = extract_file(score_file(tmp_path / "s.musicxml"), seg(min_notes=2)).events
    # beat 0 (pickup): G B G; beats 1-3: G D G (the tied G is one note); beat 3-4: A C F
    assert [(e.start_beats, e.end_beats) for e in events] == [(0, 1), (1, 3), (3, 4)]
    assert [e.pitch_classes for e in events] == [(7, 11), (2, 7), (0, 5, 9)]
    assert [e.bass for e in events] == [7, 7, 5]
    assert [(e.start_s, e.end_s) for e in events] == [(0, 1), (1, 3), (3, 4)]  # 60 bpm


@pytest.mark.parametrize("name, content, reason", [
    ("empty.mid", b"", "empty file"),
    ("noise.mid", bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8)), "not a MIDI file"),
    ("broken.xml", b"<?xml version='1.0'?><score-partwise><part id='P1'><measure>", "malformed score"),
    ("bomb.musicxml", b"<?xml version='1.0'?><!DOCTYPE lolz [<!ENTITY lol 'lol'><!ENTITY lol2 "
                      b"'&lol;&lol;&lol;'>]><score-partwise>&lol2;</score-partwise>", "declares entities"),
    ("utf16.musicxml", "<?xml version='1.0' encoding='UTF-16'?><!DOCTYPE x [<!ENTITY a 'b'>]>"
                       "<score-partwise>&a;</score-partwise>".encode("utf-16"), "declares entities"),
    ("external.xml", b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY % p SYSTEM 'http://127.0.0.1/x.dtd'> %p;]>"
                     b"<score-partwise/>", "declares entities"),
    ("fake.mxl", b"PK not a zip at all", "not a zip"),
    ("notes.txt", b"C E G", "unsupported file type"),
    ("book.abc", b"X:1\nT:One\nM:4/4\nL:1/4\nK:C\nCEGc|\n\nX:2\nT:Two\nM:4/4\nL:1/4\nK:G\nGBdg|\n",
     "a collection of 2 pieces"),
])
def test_bad_files_are_rejected_with_a_reason(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(FileRejected, match=reason) as info:
        extract_file(path, seg())
    assert "\n" not in str(info.value)


def test_an_abc_file_of_one_pieces_voices_is_one_piece(tmp_path):
    # two tunes of one title are two voices of one piece (as music21's Josquin chansons are written)
    voices = "".join(f"X:{k}\nT:Duo\nM:4/4\nL:1/4\nK:C\n{line}|\n\n" for k, line in ((1, "e2g2"), (2, "C2G,2")))
    path = tmp_path / "duo.abc"
    path.write_text(voices)
    notes = read_notes(path)
    assert len(notes.track_names) == 2 and sorted(notes.pitch.tolist()) == [55, 60, 76, 79]
    assert sorted(zip(notes.start.tolist(), notes.pitch.tolist())) == [(0, 60), (0, 76), (2, 55), (2, 79)]


def test_truncated_and_note_less_midi_are_rejected(tmp_path):
    good = midi_file(tmp_path / "good.mid", [(0, 1, [60, 64, 67])]).read_bytes()
    (tmp_path / "cut.mid").write_bytes(good[: len(good) // 2])
    with pytest.raises(FileRejected, match="malformed MIDI"):
        extract_file(tmp_path / "cut.mid", seg())
    with pytest.raises(FileRejected, match="no notes"):
        extract_file(midi_file(tmp_path / "silent.mid", []), seg())
    with pytest.raises(FileRejected, match="no chord of at least 3"):
        extract_file(midi_file(tmp_path / "dyad.mid", [(0, 1, [60, 64])]), seg())


def test_midi_claiming_thousands_of_tracks_is_refused_unread(tmp_path):
    header = b"MThd" + (6).to_bytes(4, "big") + (1).to_bytes(2, "big") + (60000).to_bytes(2, "big") + (480).to_bytes(2, "big")
    (tmp_path / "tracks.mid").write_bytes(header + b"MTrk" + (0).to_bytes(4, "big"))
    with pytest.raises(FileRejected, match="too many tracks"):
        extract_file(tmp_path / "tracks.mid", seg())


def test_a_note_lasting_days_is_refused(tmp_path):
    # pretty_midi itself refuses ticks past 10^7; at 24 ticks per beat a day-long note stays below that
    path = midi_file(tmp_path / "long.mid", [(0, 24 * 3600, [60, 64, 67])], resolution=24)
    with pytest.raises(FileRejected, match="too long"):
        extract_file(path, seg(mode="beat"))


def test_bar_segmentation_gives_one_chord_per_bar(tmp_path):
    # 4/4 at 120 bpm (two seconds a bar): C E G with a half-beat passing F, then D F A with a passing E
    path = midi_file(tmp_path / "bars.mid", [(0, 2, [48, 55]), (0, 1, [64]), (1, 1.25, [65]), (1.25, 2, [64]),
                                             (2, 4, [50, 57, 65]), (3, 3.25, [64])])
    events = extract_file(path, seg(mode="bar")).events
    assert [e.pitch_classes for e in events] == [(0, 4, 7), (2, 5, 9)]
    assert [(e.start_beats, e.end_beats, e.start_s, e.end_s) for e in events] == [(0, 4, 0, 2), (4, 8, 2, 4)]
    assert len(extract_file(path, seg(mode="onset")).events) > 2


def test_bar_segmentation_follows_the_score_bars_pickup_included(tmp_path):
    # 3/4 with a one-beat pickup: bars [0, 1) and [1, 4); in the full bar G and D sound 2 of 3 beats,
    # A, C and F the last beat only
    path = score_file(tmp_path / "s.musicxml")
    half = extract_file(path, seg(mode="bar", threshold=0.5, min_notes=2)).events
    assert [(e.start_beats, e.end_beats, e.pitch_classes) for e in half] == [(0, 1, (7, 11)), (1, 4, (2, 7))]
    third = extract_file(path, seg(mode="bar", threshold=0.3, min_notes=2)).events
    assert [e.pitch_classes for e in third] == [(7, 11), (0, 2, 5, 7, 9)]


def test_the_note_count_guard_of_each_reader(tmp_path, monkeypatch):
    monkeypatch.setattr(readers, "MAX_NOTES", 5)   # the guard, with a limit a test can reach quickly
    midi = midi_file(tmp_path / "six.mid", [(0, 1, [60, 64, 67]), (1, 2, [62, 65, 69])])
    with pytest.raises(FileRejected, match=r"too many notes \(6 > 5\)"):
        read_notes(midi)
    with pytest.raises(FileRejected, match=r"too many notes \(> 5\)"):
        read_notes(score_file(tmp_path / "s.musicxml"))   # nine notes
    assert len(read_notes(midi_file(tmp_path / "five.mid", [(0, 1, [60, 64, 67, 71, 74])])).pitch) == 5


def test_compressed_musicxml_that_unpacks_too_large_is_refused_unread(tmp_path):
    bomb = tmp_path / "bomb.mxl"   # 201 MiB of zeros, deflated to about a megabyte
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as z, \
            z.open("score.xml", "w", force_zip64=True) as member:
        for _ in range(201):
            member.write(bytes(1 << 20))
    assert bomb.stat().st_size < 2_000_000
    with pytest.raises(FileRejected, match=r"compressed MusicXML too large \(unpacks to 211 MB > 200 MB\)"):
        extract_file(bomb, seg())


def key_agrees_with_music21_analyze_key(path):
    expected = converter.parse(str(path)).analyze("key")
    assert find_key(read_notes(path)) == (expected.tonic.pitchClass, expected.mode)


# each list on its own: an empty one fails at collection (empty_parameter_set_mark in pyproject.toml)
@pytest.mark.parametrize("path", default_sources()[:6], ids=lambda p: p.name)
def test_find_key_agrees_with_music21_analyze_key_on_scores(path):
    key_agrees_with_music21_analyze_key(path)


@pytest.mark.parametrize("path", sorted((DATA / "bach").glob("*.mid"))[:2], ids=lambda p: p.name)
def test_find_key_agrees_with_music21_analyze_key_on_midi(path):
    key_agrees_with_music21_analyze_key(path)


def test_a_tempo_mark_without_a_number_keeps_the_tempo_before_it(tmp_path):
    # As in a Brahms song's score: a playback tempo (60 bpm) in bar 1, then a metric modulation,
    # "half = dotted half", that gives no number (music21 cannot turn it into seconds).
    score = stream.Score()
    part = stream.Part()
    for k, pitches in enumerate((["C4", "E4", "G4"], ["D4", "F4", "A4"])):
        bar = stream.Measure(number=k + 1)
        if k == 0:
            bar.append(meter.TimeSignature("3/4"))
        bar.append(chord.Chord(pitches, quarterLength=3))
        part.append(bar)
    score.insert(0, part)
    path = tmp_path / "t.musicxml"
    score.write("musicxml", fp=str(path))
    text = path.read_text()
    for bar, mark in (("1", '<direction-type><words/></direction-type><sound tempo="60"/>'),
                      ("2", '<direction-type><metronome parentheses="yes"><beat-unit>half</beat-unit>'
                            '<beat-unit>half</beat-unit><beat-unit-dot/></metronome></direction-type>')):
        at = text.index(">", text.index(f'number="{bar}"')) + 1
        text = text[:at] + f"<direction>{mark}</direction>" + text[at:]
    path.write_text(text)
    events = extract_file(path, seg()).events
    assert [(e.start_s, e.end_s) for e in events] == [(0, 3), (3, 6)]
