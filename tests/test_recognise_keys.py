"""The recogniser's key prior: a local key per frame, and chords read in their key."""
from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from chordvae.chords import keys
from chordvae.chords.readers import read_notes
from chordvae.chords.recognise import RecogniserOptions, States, analysis_frames, key_posterior, recognise
from chordvae.errors import ChordVAEError
from tests.helpers import midi_file

C, F, G = (48, 64, 67, 72), (41, 65, 69, 72), (43, 62, 67, 71)
DM, AM, E7 = (50, 62, 65, 69), (45, 64, 69, 72), (40, 62, 68, 71)
NO_KEY = replace(RecogniserOptions(), key_weight=0.0)


def blocks(tmp_path, chords, name="k.mid"):
    """One chord (MIDI pitches) per bar of four beats at 120 bpm, held."""
    return read_notes(midi_file(tmp_path / name, [(2.0 * i, 2.0 * (i + 1), chord) for i, chord in enumerate(chords)]))


def labels(notes, options=RecogniserOptions()):
    return [e.label for e in recognise(notes, options)]


def test_the_key_prior_and_its_moves_are_on_by_default_and_checked():
    assert RecogniserOptions().key_weight > 0 and RecogniserOptions().move_weight > 0
    for bad in ({"key_weight": -1.0}, {"key_concentration": 0.0}, {"key_change": 1.0}, {"move_weight": -0.5}):
        with pytest.raises(ChordVAEError):
            RecogniserOptions(**bad)


def test_the_key_chain_finds_the_key_of_a_cadence(tmp_path):
    for chords, key in (([C, F, G, C], "C major"), ([AM, DM, E7, AM], "A minor")):
        notes = blocks(tmp_path, chords)
        frames = analysis_frames(notes)
        posterior = key_posterior(frames)
        assert posterior.shape == (len(frames.profile), keys.KEYS)
        assert np.allclose(posterior.sum(1), 1)
        assert keys.key_name(int(posterior.sum(0).argmax())) == key


def test_an_incomplete_leading_tone_chord_is_read_in_its_key(tmp_path):
    # C major; then B and D over a B bass, resolving to C: vii°, not a B minor chord
    notes = blocks(tmp_path, [C, F, DM, C, (47, 59, 74), C, C])
    assert labels(notes)[4] == "B:dim"
    assert labels(notes, NO_KEY)[4] == "B:min"


def test_a_dominant_under_a_held_tonic_is_read_in_a_minor_key(tmp_path):
    # A minor; then G# and B over a G# bass under a held A, resolving to A minor: V6, not G# minor
    notes = blocks(tmp_path, [AM, DM, AM, (44, 59, 69), AM, AM])
    assert labels(notes)[3] == "E:maj/3"
    assert labels(notes, NO_KEY)[3] == "Ab:min"


def test_the_model_favours_the_key_s_own_chords():
    model = keys.load_model()
    names = States.vocabulary().names
    ratios = model.chord_ratios(names)               # (KEYS, S), no chord first
    assert ratios.shape == (keys.KEYS, len(names) + 1) and np.all(ratios[:, 0] == 1)
    c_major, a_minor = 0, 12 + 9
    state = {name: s + 1 for s, name in enumerate(names)}
    assert ratios[c_major, state[(7, "maj")]] > 1 > ratios[c_major, state[(1, "maj")]]    # V, not bII
    assert ratios[c_major, state[(2, "7")]] > ratios[c_major, state[(2, "min7")]] / 10     # V/V is allowed
    assert ratios[a_minor, state[(4, "maj")]] > 1 > ratios[a_minor, state[(6, "maj")]]    # V in minor, not bVI of C
    # the qualities of one triad share their entry: the key does not choose V7 over V
    assert ratios[c_major, state[(7, "7")]] == ratios[c_major, state[(7, "maj")]]
    # no chord gets the best chord's prior: the key never turns silence into a chord
    prior = keys.chord_prior(np.full((3, keys.KEYS), 1 / keys.KEYS), ratios)
    assert np.allclose(prior[:, 0], prior[:, 1:].max(1))


def test_the_key_s_moves_favour_cadences():
    model = keys.load_model()
    names = States.vocabulary().names
    moves = model.move_ratios(names)                  # (KEYS, S, S), no chord first
    assert moves.shape == (keys.KEYS, len(names) + 1, len(names) + 1)
    assert np.all(np.diagonal(moves, axis1=1, axis2=2) == 0)
    c_major, g_major, a_minor = 0, 7, 12 + 9
    state = {name: s + 1 for s, name in enumerate(names)}
    c, g, g7, f, db, e, am = (state[n] for n in ((0, "maj"), (7, "maj"), (7, "7"), (5, "maj"), (1, "maj"),
                                                  (4, "maj"), (9, "min")))
    # V -> I in its key: likelier than chance, than I -> V's chance of going to bII, and than in
    # another key, where the same move is I -> IV
    assert moves[c_major, g, c] > 0 > moves[c_major, c, db]
    assert moves[c_major, g, c] > moves[g_major, g, c]
    assert moves[c_major, g7, c] == moves[c_major, g, c]          # moves pool the qualities of one triad
    assert moves[a_minor, e, am] > moves[c_major, e, am]          # V -> i in A minor, III -> vi in C
    assert moves[c_major, f, g] > moves[c_major, f, db]           # IV -> V, not IV -> bII


def test_the_moves_decode_a_cadence_as_without_them(tmp_path):
    for chords in ([C, F, G, C], [AM, DM, E7, AM]):
        notes = blocks(tmp_path, chords)
        assert labels(notes) == labels(notes, replace(RecogniserOptions(), move_weight=0.0))


def test_a_broken_key_model_is_refused(tmp_path):
    path = tmp_path / "keys.json"
    data = keys.load_model().to_json()
    data["profiles"] = data["profiles"][:1]
    path.write_text(json.dumps(data))
    with pytest.raises(ChordVAEError, match="wrong shapes"):
        keys.load_model(path)
    data = keys.load_model().to_json()
    data["moves"] = data["moves"][:1]
    path.write_text(json.dumps(data))
    with pytest.raises(ChordVAEError, match="wrong shapes"):
        keys.load_model(path)
    path.write_text("{")
    with pytest.raises(ChordVAEError, match="cannot read"):
        keys.load_model(path)
