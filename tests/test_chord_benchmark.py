"""The chord-recognition benchmark's scoring, baselines and music21 truth, on hand-made cases."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pretty_midi
import pytest

from benchmarks.chord_eval import Piece, Span, rates, score
from chordvae.chords.pcset import from_mask
from chordvae.chords.vocabulary import harte_label

mir_eval = pytest.importorskip("mir_eval")

C_MAJOR = frozenset({0, 4, 7})


def span(start: float, end: float, pcs=C_MAJOR, root: int = 0, bass: int = 0, label: str | None = None,
         supported: bool = True) -> Span:
    return Span(start, end, frozenset(pcs), root, bass, frozenset(pcs), label, supported)


def scored(preds: list[tuple[float, float, set[int], int, int]], spans: list[Span], **kw) -> dict[str, float]:
    """Rates of predictions given as (start, end, pitch classes, bass, root)."""
    starts, ends, sets, basses, roots = zip(*preds) if preds else ((), (), (), (), ())
    return rates(score(np.array(starts, float), np.array(ends, float), [frozenset(s) for s in sets],
                       list(basses), list(roots), spans, **kw))


def test_half_a_span_with_the_exact_set_scores_half():
    r = scored([(0.0, 2.0, {0, 4, 7}, 0, 0)], [span(0.0, 4.0)])
    assert r == pytest.approx({"coverage": 0.5, "exact": 0.5, "triad": 0.5, "jaccard": 0.5, "root": 0.5, "bass": 0.5})


def test_a_seventh_over_the_triad_holds_the_triad_but_is_not_exact():
    r = scored([(0.0, 4.0, {0, 4, 7, 10}, 4, 0)], [span(0.0, 4.0)])
    assert r == pytest.approx({"coverage": 1.0, "exact": 0.0, "triad": 1.0, "jaccard": 0.75, "root": 1.0, "bass": 0.0})


def test_where_predictions_overlap_the_one_that_started_last_counts():
    # A minor from 0 to 4, C major from 1 to 2 on top of it: C major counts only on [1, 2)
    preds = [(0.0, 4.0, {9, 0, 4}, 9, 9), (1.0, 2.0, {0, 4, 7}, 0, 0)]
    r = scored(preds, [span(0.0, 4.0)])
    assert r["coverage"] == pytest.approx(1.0)
    assert r["exact"] == pytest.approx(0.25)
    assert r["jaccard"] == pytest.approx(0.25 + 0.75 * 0.5)   # {9, 0, 4} vs {0, 4, 7}: 2 of 4


def test_weighting_is_by_truth_duration_and_no_chord_spans_are_skipped():
    spans = [span(0.0, 1.0, (), -1, -1), span(1.0, 2.0), span(2.0, 5.0, {7, 11, 2}, 7, 7)]
    r = scored([(0.0, 5.0, {7, 11, 2}, 7, 7)], spans)
    assert r["exact"] == pytest.approx(3 / 4) and r["coverage"] == pytest.approx(1.0)
    only = scored([(0.0, 5.0, {7, 11, 2}, 7, 7)], [span(1.0, 2.0), span(2.0, 5.0, {7, 11, 2}, 7, 7, supported=False)],
                  supported_only=True)
    assert only["exact"] == pytest.approx(0.0) and only["coverage"] == pytest.approx(1.0)


def test_mir_eval_scores_count_gaps_as_no_chord():
    from benchmarks.chord_recognition import mir_eval_sums
    from benchmarks.chord_systems import Prediction

    piece = Piece("p", Path("p.mid"), "pop", "seconds",
                  [span(0.0, 2.0, label="C:maj"), span(2.0, 4.0, {9, 0, 4}, 9, 9, label="A:min")])
    pred = Prediction(np.array([0.0, 2.0, 3.0]), np.array([1.0, 3.0, 4.0]), [C_MAJOR] * 3, [0, 9, 0], [0, 9, 0],
                      ["C:maj7", "A:min", "C:maj"])
    sums = mir_eval_sums(pred, piece)
    assert {m: a / b for m, (a, b) in sums.items()} == pytest.approx({"root": 0.5, "majmin": 0.5, "sevenths": 0.25})


def test_every_pitch_class_set_gets_a_harte_label_mir_eval_reads_back():
    for mask in range(1, 4096):
        pcs = from_mask(mask)
        for root, bass in ((pcs[0], pcs[-1]), (pcs[-1], pcs[0])):
            label = harte_label(pcs, root, bass)
            got_root, bitmap, got_bass = mir_eval.chord.encode(label)
            assert (got_root, (got_root + got_bass) % 12) == (root, bass), label
            assert {(got_root + i) % 12 for i in np.flatnonzero(bitmap)} == set(pcs), label


@pytest.fixture
def two_chords(tmp_path) -> Path:
    """C major for two beats, then G major over B for two (120 bpm: a beat is 0.5 s)."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120.0)
    piano = pretty_midi.Instrument(0)
    for pitches, start in (((48, 64, 67), 0.0), ((47, 62, 67), 1.0)):
        piano.notes += [pretty_midi.Note(90, p, start, start + 1.0) for p in pitches]
    pm.instruments.append(piano)
    path = tmp_path / "two.mid"
    pm.write(str(path))
    return path


@pytest.mark.parametrize("system", ["chordify", "onset"])
def test_slicing_baselines_find_both_chords_with_bass_root_and_label(two_chords, system):
    from benchmarks.chord_systems import predict

    pred = predict(system, two_chords, "seconds")
    assert np.allclose(pred.starts, [0.0, 1.0]) and np.allclose(pred.ends, [1.0, 2.0])
    assert pred.sets == [C_MAJOR, frozenset({7, 11, 2})]
    assert pred.basses == [0, 11] and pred.roots == [0, 7]
    assert pred.labels == ["C:maj", "G:maj/3"]
    beats = predict(system, two_chords, "beats")
    assert np.allclose(beats.starts, [0.0, 2.0]) and np.allclose(beats.ends, [2.0, 4.0])


def test_a_chorale_analysis_lands_on_its_score_and_a_transposed_one_is_dropped():
    from benchmarks import m21_analyses

    found = {a.name: a for a in m21_analyses.analyses(("chorales",))}
    piece = m21_analyses.load(found["bwv281"])
    assert isinstance(piece, Piece) and piece.unit == "beats" and piece.path == found["bwv281"].score
    first = piece.spans[0]
    assert (first.start, first.pitch_classes, first.root) == (0.0, frozenset({5, 9, 0}), 5)   # I in F major
    assert m21_analyses.chord_tone_ratio(m21_analyses.read_notes(piece.path), piece.spans) > 0.9
    midi = m21_analyses.midi_version(piece)
    assert isinstance(midi, Piece) and midi.path.suffix == ".mid" and midi.spans == piece.spans
    assert m21_analyses.same_notes(m21_analyses.read_notes(midi.path), m21_analyses.read_notes(piece.path))
    dropped = m21_analyses.load(found["bwv145.5"])
    assert isinstance(dropped, m21_analyses.Dropped) and "10 semitones away" in dropped.reason


def test_same_notes_tells_a_shifted_copy_apart(two_chords):
    from dataclasses import replace

    from benchmarks.m21_analyses import same_notes
    from chordvae.chords.readers import read_notes

    notes = read_notes(two_chords)
    assert same_notes(notes, read_notes(two_chords))
    assert not same_notes(notes, replace(notes, start=notes.start + 0.5, end=notes.end + 0.5))
