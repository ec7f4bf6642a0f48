"""The chord recogniser on pieces whose right answer a musician can state, and on real music."""
from __future__ import annotations

import numpy as np
import pretty_midi
import pytest
from music21 import meter, note, stream

from benchmarks.chord_eval import SHARED, add, load_pop909, load_rn_dev, rates, score_events
from chordvae.chords.readers import read_notes
from chordvae.chords.recognise import melody_tracks, recognise
from chordvae.chords.segment import Segmentation, segment

BEAT = 0.5  # seconds per beat at 120 bpm


def write_midi(path, tracks, drums=(), shift=0.0, meter_=(4, 4)):
    """tracks: {name: [(start_beat, end_beat, pitch), ...]} (or (name, notes) pairs, names may
    repeat); every note moved by ``shift`` beats."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(*meter_, 0))
    for name, notes in (tracks.items() if isinstance(tracks, dict) else tracks):
        inst = pretty_midi.Instrument(0, name=name)
        inst.notes += [pretty_midi.Note(80, p, (s + shift) * BEAT, (e + shift) * BEAT) for s, e, p in notes]
        pm.instruments.append(inst)
    if drums:
        kit = pretty_midi.Instrument(0, is_drum=True, name="drums")
        kit.notes += [pretty_midi.Note(100, p, s * BEAT, e * BEAT) for s, e, p in drums]
        pm.instruments.append(kit)
    pm.write(str(path))
    return path


def chords_of(path):
    return [(e.label, e.start_beats, e.end_beats) for e in recognise(read_notes(path))]


def alberti(bars):
    """C-G-E-G style broken chords in eighths, one bar per (low, high, middle) triple."""
    notes = []
    for bar, (low, high, middle) in enumerate(bars):
        for i, pitch in enumerate([low, high, middle, high] * 2):
            notes.append((4 * bar + 0.5 * i, 4 * bar + 0.5 * (i + 1), pitch))
    return notes


PROGRESSION = [(48, 55, 52), (53, 60, 57), (55, 62, 59), (48, 55, 52)]   # C, F, G, C
# stepwise, with a passing tone on the second beat of bars 1-3
MELODY = [(0, 1, 76), (1, 2, 74), (2, 4, 72), (4, 5, 81), (5, 6, 79), (6, 8, 77),
          (8, 9, 74), (9, 10, 72), (10, 12, 71), (12, 16, 72)]


def test_alberti_bass_under_a_melody_gives_one_chord_per_bar(tmp_path):
    path = write_midi(tmp_path / "a.mid", {"Melody": MELODY, "Piano": alberti(PROGRESSION)})
    assert chords_of(path) == [("C:maj", 0, 4), ("F:maj", 4, 8), ("G:maj", 8, 12), ("C:maj", 12, 16)]


def test_arpeggiated_dominant_seventh(tmp_path):
    pitches = [43, 47, 50, 53, 55, 59, 62, 65] * 2                  # G B D F up two octaves, twice
    path = write_midi(tmp_path / "g7.mid", {"Piano": [(0.25 * i, 0.25 * (i + 1), p) for i, p in enumerate(pitches)]})
    (event,) = recognise(read_notes(path))
    assert event.label == "G:7" and event.pitch_classes == (2, 5, 7, 11) and event.root == 7


def test_passing_tone_makes_no_chord(tmp_path):
    # C major held for a bar; the top voice walks E - D - C in eighths across beats 2 and 3
    held = [(0, 4, 48), (0, 4, 55), (0, 4, 60)]
    top = [(0, 1.5, 64), (1.5, 2, 62), (2, 4, 60)]
    path = write_midi(tmp_path / "p.mid", {"Piano": held + top})
    assert chords_of(path) == [("C:maj", 0, 4)]


def test_suspension_makes_no_chord(tmp_path):
    # bar 1: C major; bar 2: G major whose third (B) is delayed by the held C (a 4-3 suspension)
    lower = [(0, 4, 48), (0, 4, 55), (0, 4, 64), (4, 8, 43), (4, 8, 50), (4, 8, 55)]
    top = [(0, 5, 72), (5, 8, 71)]
    path = write_midi(tmp_path / "s.mid", {"Piano": lower + top})
    assert chords_of(path) == [("C:maj", 0, 4), ("G:maj", 4, 8)]


def test_melody_over_a_held_triad_keeps_the_triad(tmp_path):
    scale = [(0.5 * i, 0.5 * (i + 1), p) for i, p in enumerate([72, 74, 76, 77, 79, 81, 83, 84] * 2)]
    path = write_midi(tmp_path / "m.mid", {"Voice": scale, "Piano": [(0, 8, 48), (0, 8, 52), (0, 8, 55)]})
    assert chords_of(path) == [("C:maj", 0, 8)]


def test_the_melody_is_a_line_over_chords_whatever_the_names(tmp_path):
    line = [(i, i + 1, p) for i, p in enumerate([76, 77, 79, 77, 76, 74, 72, 71])]
    low = [(i, i + 1, p) for i, p in enumerate([60, 62, 64, 62, 60, 59, 57, 55])]
    chords = [(2 * i, 2 * i + 2, p) for i in range(4) for p in (48, 52, 55)]

    def melody(tracks):
        return list(melody_tracks(read_notes(write_midi(tmp_path / "m.mid", tracks))))

    # a named voice over a piano: the voice; the piano's right hand, a single high line, is harmony
    assert melody({"Voice": line, "Piano": low, "Piano LH": chords}) == [True, False, False]
    assert melody({"Voice": low, "Piano": line, "Piano LH": chords}) == [True, False, False]
    # four voices, each a single line: harmony, though one is named a soprano (or a canto)
    assert melody({"Soprano": line, "Alto": low, "Tenor": low, "Bass": low}) == [False] * 4
    assert melody({"Canto": line, "Basso": low}) == [False, False]
    # an unnamed single line well above chords is a melody, but not the top line of an instrument
    # written as one track per voice (a piano's right hand under a voice, all of one name)
    assert melody({"Track 1": line, "Track 2": chords}) == [True, False]
    high = [(a, b, p + 12) for a, b, p in line]
    assert melody([("Part_1", line), ("Part_2", high), ("Part_2", chords)]) == [True, False, False]


def test_a_drum_track_changes_nothing(tmp_path):
    tracks = {"Melody": MELODY, "Piano": alberti(PROGRESSION)}
    drums = [(0.5 * i, 0.5 * i + 0.25, p) for i in range(32) for p in (36, 42)]
    plain = chords_of(write_midi(tmp_path / "plain.mid", tracks))
    assert chords_of(write_midi(tmp_path / "drums.mid", tracks, drums=drums)) == plain


def test_a_six_eight_bar_has_two_beats(tmp_path):
    midi = write_midi(tmp_path / "68.mid", {"Piano": [(0, 6, 60), (0, 6, 64), (0, 6, 67)]}, meter_=(6, 8))
    assert np.allclose(read_notes(midi).beats[:4], [0, 1.5, 3, 4.5])
    part = stream.Part()
    part.append(meter.TimeSignature("6/8"))
    part.repeatAppend(note.Note("C4", quarterLength=0.5), 12)
    score = stream.Score([part])
    path = tmp_path / "68.musicxml"
    score.write("musicxml", fp=str(path))
    assert np.allclose(read_notes(path).beats, [0, 1.5, 3, 4.5])


def test_chords_that_move_by_the_quarter_in_six_four(tmp_path):
    # a 6/4 beat is a dotted minim; four voices change chord on every quarter note
    voicings = [(48, 64, 67, 72), (53, 65, 69, 72), (55, 62, 67, 71), (57, 64, 69, 72), (50, 62, 65, 69),
                (55, 62, 65, 71), (48, 64, 67, 72), (53, 65, 69, 72), (55, 62, 67, 71), (48, 64, 67, 72),
                (48, 64, 67, 72), (48, 64, 67, 72)]
    voices = {name: [(i, i + 1, chord[v]) for i, chord in enumerate(voicings)]
              for v, name in enumerate(["Bass", "Tenor", "Alto", "Soprano"])}
    path = write_midi(tmp_path / "64.mid", voices, meter_=(6, 4))
    assert chords_of(path) == [("C:maj", 0, 1), ("F:maj", 1, 2), ("G:maj", 2, 3), ("A:min", 3, 4),
                               ("D:min", 4, 5), ("G:7", 5, 6), ("C:maj", 6, 7), ("F:maj", 7, 8),
                               ("G:maj", 8, 9), ("C:maj", 9, 12)]


def test_notes_off_the_grid_get_their_chords_on_the_right_beats(tmp_path):
    tracks = {"Melody": MELODY, "Piano": alberti(PROGRESSION)}
    path = write_midi(tmp_path / "late.mid", tracks, shift=1 / 3)
    found = chords_of(path)
    assert [label for label, _, _ in found] == ["C:maj", "F:maj", "G:maj", "C:maj"]
    assert np.allclose([start for _, start, _ in found[1:]], [4 + 1 / 3, 8 + 1 / 3, 12 + 1 / 3], atol=1e-3)


def test_a_lost_sixteenth_anacrusis_moves_the_grid(tmp_path):
    # 2/4 whose MIDI file lost a sixteenth-note upbeat: every chord starts a sixteenth after the
    # file's bar line; under a right hand of even sixteenths (its onsets on every phase alike),
    # the held bass marks the real beat
    starts = [0.25 + 2 * bar for bar in range(4)]
    triads = [(48, 52, 55), (53, 57, 60), (55, 59, 62), (48, 52, 55)]   # C F G C
    left = [(t, t + 2, chord[0] - 12) for t, chord in zip(starts, triads)]
    right = [(t + i / 4, t + (i + 1) / 4, chord[i % 3] + 24) for t, chord in zip(starts, triads) for i in range(8)]
    path = write_midi(tmp_path / "upbeat.mid", {"Piano": left, "Piano RH": [(0, 0.25, 79)] + right}, meter_=(2, 4))
    found = chords_of(path)
    assert [label for label, _, _ in found] == ["C:maj", "F:maj", "G:maj", "C:maj"]
    assert np.allclose([start for _, start, _ in found[1:]], starts[1:])


def test_a_bass_moving_under_a_held_chord_makes_two_chords(tmp_path):
    # C major held for two bars in the upper voices; the bass is C in bar 1 and E in bar 2: I, I6
    upper = [(0, 8, 60), (0, 8, 64), (0, 8, 67)]
    path = write_midi(tmp_path / "i6.mid", {"Piano": upper + [(0, 4, 48), (4, 8, 52)]})
    found = [(e.label, e.bass, e.start_beats, e.end_beats) for e in recognise(read_notes(path))]
    assert found == [("C:maj", 0, 0, 4), ("C:maj/3", 4, 4, 8)]


def test_a_bass_arpeggio_keeps_one_chord(tmp_path):
    # the bass walks C E G C in eighths under a held C major: one chord, its bass the lowest C
    upper = [(0, 4, 60), (0, 4, 64), (0, 4, 67)]
    walk = [(0.5 * i, 0.5 * (i + 1), p) for i, p in enumerate([36, 40, 43, 48] * 2)]
    path = write_midi(tmp_path / "walk.mid", {"Piano": upper + walk})
    assert [(e.label, e.bass) for e in recognise(read_notes(path))] == [("C:maj", 0)]


def test_a_passing_low_fifth_is_not_the_bass(tmp_path):
    # C major held; the bass plays C with one eighth-note low G between beats: the bass is C
    upper = [(0, 4, 60), (0, 4, 64), (0, 4, 67)]
    line = [(0, 1.5, 48), (1.5, 2, 43), (2, 4, 48)]
    path = write_midi(tmp_path / "passing.mid", {"Piano": upper + line})
    assert [(e.label, e.bass) for e in recognise(read_notes(path))] == [("C:maj", 0)]


@pytest.mark.parametrize("bass", [50, 53, 56])
def test_a_diminished_seventh_is_named_for_the_chord_it_resolves_to(tmp_path, bass):
    # C, then B D F Ab over D, F or Ab (the same notes as D, F and Ab diminished sevenths), then C:
    # vii°7 of C, its root B whatever its inversion
    dim7 = [(4, 8, p) for p in (bass, 62, 65, 68, 71)]
    tonic = [(a, b, p) for a, b in ((0, 4), (8, 12)) for p in (48, 60, 64, 67)]
    path = write_midi(tmp_path / "d.mid", {"Piano": tonic + dim7})
    found = [(e.root, e.quality, e.bass) for e in recognise(read_notes(path))]
    assert found == [(0, "maj", 0), (11, "dim7", bass % 12), (0, "maj", 0)]


def test_event_bass_weighs_beats_and_the_lowest_note():
    from chordvae.chords.recognise import _event_basses

    c_major = np.isin(np.arange(12), (0, 4, 7))
    level = np.array([0, 3, 2, 3, 1, 3, 2, 3])

    def bass_of(bass, **options):
        return _event_basses(np.array(bass), level, np.array([0]), np.array([8]), c_major[None], np.array([0]),
                             **options)[0]

    # the root on the beats, the fifth below it on two off-beats: the root; on every off-beat: the fifth
    assert bass_of([48, 43, 48, 48, 48, 43, 48, 48]) == 0
    assert bass_of([48, 43, 48, 43, 48, 43, 48, 43]) == 7
    # the low E on the downbeat and strong beat, a higher C elsewhere: the lowest, heard on the strong beats
    assert bass_of([40, 48, 48, 48, 40, 48, 48, 48]) == 4
    # bonus inf: always the lowest chord tone; non-chord tones and silence do not count
    assert bass_of([48, 43, 48, 48, 48, 48, 48, 48], bonus=np.inf) == 7
    assert bass_of([-1, 50, -1, 50, -1, -1, -1, -1]) == 0
    # several events at once, each from its own frames and chord tones; a chord-less event's root
    bass = np.array([48, 48, 52, 52, 43, 43, 50, 50])
    tones = np.array([c_major, c_major, np.isin(np.arange(12), (7, 11, 2)), c_major])
    assert _event_basses(bass, level, np.array([0, 2, 4, 6]), np.array([2, 4, 6, 8]), tones,
                         np.array([0, 0, 7, 5])).tolist() == [0, 4, 7, 5]


def test_bass_parts_need_a_held_bass():
    from chordvae.chords.recognise import _bass_parts

    c_major, beats = (0, 4, 7), np.ones(10, dtype=bool)
    # C for 4 frames, a passing D (not a chord tone) and E for 1 frame, then E for 4: cut before the long E
    bass = np.array([48, 48, 48, 48, 50, 52, 52, 52, 52, 52])
    assert _bass_parts(bass, beats, c_major, 0, 2) == [(0, 5), (5, 10)]
    assert _bass_parts(bass, beats, c_major, 0, 6) == [(0, 10)]       # no part long enough
    assert _bass_parts(bass, beats, c_major, 0, 0) == [(0, 10)]       # splitting off
    assert _bass_parts(bass, np.arange(10) % 2 == 0, c_major, 0, 2) == [(0, 6), (6, 10)]   # E counts from a beat
    assert _bass_parts(bass, np.arange(10) % 4 == 0, c_major, 0, 2) == [(0, 8), (8, 10)]
    assert _bass_parts(bass, np.arange(10) % 4 == 0, c_major, 0, 3) == [(0, 10)]   # from the beat on, too short
    assert _bass_parts(np.array([-1, -1, 50]), beats, c_major, 0, 1) == [(0, 3)]   # no chord tone in the bass
    # the fifth must be held twice as long: G for 3 frames stays in the C chord, G for 4 does not
    assert _bass_parts(np.array([48] * 4 + [43] * 3), beats, c_major, 0, 2) == [(0, 7)]
    assert _bass_parts(np.array([48] * 4 + [43] * 4), beats, c_major, 0, 2) == [(0, 4), (4, 8)]


def test_events_carry_what_the_issue_asks(tmp_path):
    path = write_midi(tmp_path / "a.mid", {"Melody": MELODY, "Piano": alberti(PROGRESSION)})
    event = recognise(read_notes(path))[2]
    assert (event.root, event.quality, event.bass, event.pitch_classes) == (7, "maj", 7, (2, 7, 11))
    assert (event.start_s, event.end_s) == (4.0, 6.0)
    assert set(event.sounding) >= {2, 7, 11} and 0.5 < event.confidence <= 1
    assert event.name == "G major triad"


POP = SHARED / "pop909-dev"


@pytest.mark.skipif(not POP.exists(), reason=f"pop909-dev not found at {POP}")
def test_real_pop_songs_agree_with_their_labels_far_above_the_slicer():
    recognised, sliced = {}, {}
    for piece in load_pop909(limit=3):
        notes = read_notes(piece.path)
        recognised = add(recognised, score_events(recognise(notes), piece))
        sliced = add(sliced, score_events(segment(notes, Segmentation(mode="onset")), piece))
    ours, theirs = rates(recognised), rates(sliced)
    assert ours["exact"] >= 0.7 and ours["root"] >= 0.8 and ours["coverage"] >= 0.95
    assert ours["exact"] >= theirs["exact"] + 0.3



RN_DEV = SHARED / "rn-dev"


@pytest.mark.skipif(not RN_DEV.exists(), reason=f"rn-dev not found at {RN_DEV}")
def test_expert_song_analyses_agree_far_above_the_slicer():
    # four songs (voice and piano) against their expert Roman-numeral analyses, on the MIDI exports
    recognised, sliced = {}, {}
    for piece in load_rn_dev(groups=("lieder",), limit=4):
        notes = read_notes(piece.path)
        recognised = add(recognised, score_events(recognise(notes), piece))
        sliced = add(sliced, score_events(segment(notes, Segmentation(mode="onset")), piece))
    ours, theirs = rates(recognised), rates(sliced)
    assert ours["exact"] >= 0.6 and ours["triad"] >= 0.7 and ours["coverage"] >= 0.95
    assert ours["exact"] >= theirs["exact"] + 0.1 and ours["triad"] >= theirs["triad"] + 0.1

def _chain(seed=0, frames=30, states=7):
    rng = np.random.default_rng(seed)
    emission = rng.normal(size=(frames, states)) * 3
    log_change = np.log(rng.uniform(0.01, 0.5, size=frames))
    trans = [np.where(np.eye(states, dtype=bool), 1 - np.exp(lc), np.exp(lc) / (states - 1)) for lc in log_change]
    return emission, log_change, trans


def test_decoder_matches_a_full_transition_matrix():
    from chordvae.chords.recognise import _posterior, _viterbi

    emission, log_change, trans = _chain()
    frames, states = emission.shape
    alpha, beta = np.zeros_like(emission), np.ones_like(emission)
    alpha[0] = np.exp(emission[0]) / states
    for t in range(1, frames):
        alpha[t] = alpha[t - 1] @ trans[t] * np.exp(emission[t])
    for t in range(frames - 1, 0, -1):
        beta[t - 1] = trans[t] @ (beta[t] * np.exp(emission[t]))
    expected = alpha * beta / (alpha * beta).sum(1, keepdims=True)
    posterior, changes = _posterior(emission, log_change)
    assert np.allclose(posterior, expected, atol=1e-12)
    # P(change into t) = 1 - sum_j P(s[t-1] = j, s[t] = j)
    stay = np.array([(alpha[t - 1] * np.diag(trans[t]) * np.exp(emission[t]) * beta[t]).sum()
                     / (alpha[t - 1] @ trans[t] * np.exp(emission[t]) * beta[t]).sum() for t in range(1, frames)])
    assert np.allclose(changes[1:], 1 - stay, atol=1e-12)
    delta, back = emission[0].copy(), np.zeros(emission.shape, dtype=int)
    for t in range(1, frames):
        scores = delta[:, None] + np.log(trans[t])
        back[t], delta = scores.argmax(0), scores.max(0) + emission[t]
    path = [int(delta.argmax())]
    for t in range(frames - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    assert _viterbi(emission, log_change).tolist() == path[::-1]


def test_the_harmonic_rhythm_is_learned_per_place_in_the_bar(tmp_path):
    # 3/4 read a beat off (a MIDI file that lost its anacrusis): the chord changes on the second
    # beat of every file bar. Both are "other beats" (level 2), but the second beat's place
    # learns a change rate far above the third's.
    from chordvae.chords.recognise import Grid, RecogniserOptions, _levels, _piece_rhythm

    bars, sub = 24, 2
    beats = np.arange(3 * bars + 1.0)
    notes = read_notes(write_midi(tmp_path / "b.mid", {"Piano": [(b, b + 1, 60) for b in beats[:-1]]}, meter_=(3, 4)))
    level, place = _levels(notes, beats, sub, np.zeros((3 * bars * sub, 12)), reliable_bars=True)
    grid = Grid(np.arange(3 * bars * sub + 1) / sub, level, place)
    chord = (np.arange(len(level)) - sub) // (3 * sub) % 2   # two chords, alternating from beat 2 of each bar
    emission = np.where(chord[:, None] == np.arange(2)[None, :], 0.0, -4.0)
    rate = _piece_rhythm(emission, grid, RecogniserOptions())
    second, third = rate[sub::3 * sub][1:], rate[2 * sub::3 * sub]
    assert (level[sub::3 * sub] == 2).all() and (level[2 * sub::3 * sub] == 2).all()
    assert second.min() > 10 * third.max()
    flat = _piece_rhythm(emission, grid, RecogniserOptions(place_prior=float("inf")))
    assert np.allclose(flat[sub::3 * sub], flat[2 * sub::3 * sub][0])   # per level only: one rate


def test_the_learned_emission_at_the_templates_weights_scores_as_the_templates():
    # the learned emission's form holds the hand-set templates: started from them, it scores alike
    from benchmarks.fit_emission import template_weights
    from chordvae.chords.emission import features
    from chordvae.chords.recognise import RecogniserOptions, States, _emission

    options, states = RecogniserOptions(), States.vocabulary()
    rng = np.random.default_rng(0)
    profile = rng.random((40, 12)) * (rng.random((40, 12)) < 0.4) * rng.uniform(0.1, 3, (40, 1))
    profile[profile.sum(1) == 0, 0] = 1.0   # no silent frame (silence is scored differently)
    bass = rng.integers(36, 60, 40)
    bass[::5] = -1
    length = np.full(40, 0.5)
    notes_w, bass_w, bias = template_weights(options).state_matrices(states.names)
    x, bass_class = features(profile, bass, length, options.evidence_notes)
    learned = x @ notes_w.T + bass_w[:, bass_class].T + bias
    assert np.allclose(learned, _emission(profile, bass, length, states, options))


def _fit_parts(states) -> list[tuple]:
    """Random frames for fit_emission.fit: three pieces (two pop, one rn-dev), labels held for 8 frames."""
    from chordvae.chords import emission

    rng = np.random.default_rng(1)

    def part(frames: int, is_pop: bool) -> tuple:
        label = np.repeat(rng.integers(0, len(states.names) + 1, frames // 8), 8)
        label[rng.random(frames) < 0.1] = -1
        return (rng.random((frames, emission.BLOCKS * 12)), rng.integers(0, emission.BASS_CLASSES, frames),
                label, rng.integers(0, 4, frames), is_pop)

    return [part(64, True), part(48, False), part(32, True)]


def test_the_emission_fit_in_batches_of_chunks_fits_the_same_weights(capsys):
    # fit_emission.py sums the gradient over batches of chunks to bound memory: the same fit
    from benchmarks.fit_emission import fit
    from chordvae.chords.recognise import RecogniserOptions, States

    options, states = RecogniserOptions(), States.vocabulary()
    parts = _fit_parts(states)
    whole, batched = (fit(parts, 2.0, options, states, 1e-3, 2, 16, batch=batch) for batch in (64, 2))
    capsys.readouterr()
    for a, b in zip((whole.notes, whole.bass, whole.bias, whole.no_chord),
                    (batched.notes, batched.bass, batched.bias, batched.no_chord)):
        assert np.allclose(a, b, atol=1e-4)
    assert not np.allclose(whole.notes, fit(parts, 2.0, options, states, 1e-3, 0, 16, batch=64).notes, atol=1e-4)


def test_the_emission_fit_can_hold_the_biases_of_a_fitted_model(capsys):
    # --hold biases: rn-dev weighted up moves only the weights' pattern, never the balance between
    # qualities (each quality's bias and mean note and bass weights) or the no-chord score
    from benchmarks.fit_emission import fit, template_weights
    from chordvae.chords.emission import load_model
    from chordvae.chords.recognise import RecogniserOptions, States

    options, states = RecogniserOptions(), States.vocabulary()
    parts, held = _fit_parts(states), load_model()
    model = fit(parts, 2.0, options, states, 1e-3, 3, 16, 64, held, frozenset({"biases"}))
    capsys.readouterr()
    assert np.allclose(model.bias, held.bias) and np.allclose(model.no_chord, held.no_chord)
    assert np.allclose(model.notes.mean(-1), held.notes.mean(-1), atol=1e-4)
    assert np.allclose(model.bass.mean(-1), held.bass.mean(-1), atol=1e-4)
    template = template_weights(options)
    pattern = model.notes - model.notes.mean(-1, keepdims=True)
    assert not np.allclose(pattern, template.notes - template.notes.mean(-1, keepdims=True), atol=1e-3)
    assert not np.allclose(model.bass, held.bass, atol=1e-3)
    with_bass = fit(parts, 2.0, options, states, 1e-3, 3, 16, 64, held, frozenset({"biases", "bass"}))
    capsys.readouterr()
    assert np.array_equal(with_bass.bass, held.bass.astype(np.float32))
    assert np.allclose(with_bass.bias, held.bias)


def test_the_learned_emission_names_its_weights_in_the_cache_key():
    from chordvae.chords.emission import load_model
    from chordvae.chords.recognise import RecogniserOptions

    learned, templates = RecogniserOptions(emission="learned"), RecogniserOptions(emission="templates")
    assert load_model().digest in learned.cache_key() and load_model().digest not in templates.cache_key()


def test_decoder_moves_weigh_a_change_by_where_it_goes():
    from chordvae.chords.recognise import _viterbi

    # state 1 for two frames, then states 2 and 3 equally likely: the uniform chain takes the
    # first of them; a move 1 -> 3 that the key makes likelier decides for 3, in that key only
    emission = np.array([[0, 5, 0, 0], [0, 5, 0, 0], [0, 0, 5, 5], [0, 0, 5, 5]], dtype=float)
    log_change = np.log(np.full(4, 0.1))
    assert _viterbi(emission, log_change).tolist() == [1, 1, 2, 2]
    moves = np.zeros((2, 4, 4), dtype=np.float32)
    moves[1, 1, 3] = 1.0
    assert _viterbi(emission, log_change, moves, np.zeros(4, dtype=int)).tolist() == [1, 1, 2, 2]
    assert _viterbi(emission, log_change, moves, np.ones(4, dtype=int)).tolist() == [1, 1, 3, 3]
    # a move made unlikely enough is not taken: the chain stays
    moves[1, 1, 2:] = -20.0
    assert _viterbi(emission, log_change, moves, np.ones(4, dtype=int)).tolist() == [1, 1, 1, 1]
