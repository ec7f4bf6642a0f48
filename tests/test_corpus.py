"""The corpus engine and chord vectors: mixed good/bad folders, parallel = serial, the cache."""
from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from chordvae.chords import corpus as corpus_module
from chordvae.chords.corpus import find_files, read_corpus
from chordvae.chords.events import ChordEvent
from chordvae.chords.extract import PieceChords
from chordvae.chords.segment import Segmentation
from chordvae.chords.vectors import chord_vectors
from chordvae.cli import main
from chordvae.errors import DataError
from test_chord_extraction import midi_file, score_file

SEG = Segmentation()


@pytest.fixture
def mixed(tmp_path):
    folder = tmp_path / "corpus"
    (folder / "sub").mkdir(parents=True)
    midi_file(folder / "a.mid", [(0, 1, [60, 64, 67]), (1, 2, [62, 65, 69])])
    midi_file(folder / "sub" / "B.MIDI", [(0, 1, [55, 59, 62, 65])])
    score_file(folder / "c.musicxml")
    (folder / "zero.mid").write_bytes(b"")
    (folder / "noise.mid").write_bytes(bytes(range(256)))
    good = (folder / "a.mid").read_bytes()
    (folder / "cut.mid").write_bytes(good[: len(good) // 2])
    (folder / "broken.xml").write_bytes(b"<score-partwise><part>")
    midi_file(folder / "silent.mid", [])
    (folder / "readme.txt").write_text("not music")
    return folder


def test_good_files_are_used_and_bad_ones_named(mixed, tmp_path):
    corpus = read_corpus([mixed], Segmentation(min_notes=2), jobs=1, progress=False)
    used = sorted(p.source.rsplit("/", 1)[1] for p in corpus.pieces)
    assert used == ["B.MIDI", "a.mid", "c.musicxml"]
    reasons = {path.rsplit("/", 1)[1]: reason for path, reason in corpus.skipped}
    assert set(reasons) == {"zero.mid", "noise.mid", "cut.mid", "broken.xml", "silent.mid"}
    assert reasons["zero.mid"] == "empty file" and reasons["silent.mid"] == "no notes"
    assert "5 skipped" in corpus.summary() and f"{corpus.n_events} chords" in corpus.summary()
    corpus.write_skipped(tmp_path / "skipped.tsv")
    assert len((tmp_path / "skipped.tsv").read_text().splitlines()) == 5


def test_only_bad_files_is_an_error(tmp_path):
    (tmp_path / "zero.mid").write_bytes(b"")
    (tmp_path / "noise.mid").write_bytes(b"garbage")
    with pytest.raises(DataError, match="no usable chords in 2 files"):
        read_corpus([tmp_path], SEG, jobs=1, progress=False)


def test_strict_stops_at_the_first_bad_file(mixed):
    with pytest.raises(DataError, match="broken.xml"):
        read_corpus([mixed], SEG, jobs=1, strict=True, progress=False)


def test_missing_and_empty_sources(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        find_files([tmp_path / "nope"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no MIDI or score files"):
        find_files([tmp_path / "empty"])


def test_parallel_and_serial_extraction_agree(mixed):
    serial = read_corpus([mixed], SEG, jobs=1, progress=False, use_cache=False)
    parallel = read_corpus([mixed], SEG, jobs=2, progress=False, use_cache=False)
    assert parallel.pieces == serial.pieces and parallel.skipped == serial.skipped


def test_a_warm_cache_parses_nothing(mixed, monkeypatch):
    calls = []
    real = corpus_module.extract_file

    def counting(*args):
        calls.append(args)
        return real(*args)

    monkeypatch.setattr(corpus_module, "extract_file", counting)
    cold = read_corpus([mixed], SEG, jobs=1, progress=False)
    assert len(calls) == 8  # every music file, good or bad
    warm = read_corpus([mixed], SEG, jobs=1, progress=False)
    assert len(calls) == 8 and warm.pieces == cold.pieces and warm.skipped == cold.skipped
    read_corpus([mixed], Segmentation(mode="beat"), jobs=1, progress=False)
    assert len(calls) == 16  # other settings are not served from the cache


def test_a_corrupt_cache_entry_is_recomputed(mixed):
    cold = read_corpus([mixed], SEG, jobs=1, progress=False)
    from chordvae.cache import cache_dir
    for entry in cache_dir("chords").iterdir():
        entry.write_text("{not json")
    assert read_corpus([mixed], SEG, jobs=1, progress=False).pieces == cold.pieces


def test_a_slow_file_times_out(mixed, monkeypatch):
    import time

    def slow(path, seg):
        time.sleep(5)

    monkeypatch.setattr(corpus_module, "extract_file", slow)
    result = corpus_module._extract(str(mixed / "a.mid"), SEG, time_limit=0.2)
    assert result == corpus_module.Skip("timed out after 0.2s", lasting=False)


def test_extract_command_writes_json_lines(mixed, tmp_path):
    out = tmp_path / "chords.jsonl"
    result = CliRunner().invoke(main, ["extract", str(mixed), "--out", str(out), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    import json
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert set(rows[0]) == {"source", "start_beats", "end_beats", "start_s", "end_s", "pitch_classes", "bass",
                            "root", "quality", "sounding", "confidence", "label", "name"}
    assert rows[0]["pitch_classes"] == [0, 4, 7] and rows[0]["name"] == "C major triad"
    assert rows[0]["label"] == "C:maj" and rows[0]["root"] == 0 and rows[0]["quality"] == "maj"
    result = CliRunner().invoke(main, ["extract", str(tmp_path / "nope"), "--out", str(out)])
    assert result.exit_code == 1 and "does not exist" in result.output


def piece(events, tonic=0, mode="major"):
    return PieceChords("x", [ChordEvent("x", 0, 1, 0, 1, pcs, bass) for pcs, bass in events], tonic, mode)


def test_vectors_features_and_transpositions():
    g_major = piece([((2, 7, 11), 7), ((0, 2, 6, 9), 0)], tonic=7)
    x, idx = chord_vectors([g_major, piece([((0, 4, 7), 4)])], "pitch-class+bass")
    assert x.shape == (3, 24) and list(idx) == [0, 0, 1]
    assert list(np.flatnonzero(x[0, :12])) == [2, 7, 11] and np.flatnonzero(x[0, 12:]).tolist() == [7]
    x, _ = chord_vectors([g_major], transpose="c")
    assert list(np.flatnonzero(x[0])) == [0, 4, 7]  # G major in G -> C major in C
    x, _ = chord_vectors([piece([((4, 9, 0), 9)], tonic=9, mode="minor")], transpose="c")
    assert list(np.flatnonzero(x[0])) == [0, 4, 9]  # already A minor: unchanged
    x, idx = chord_vectors([g_major], "pitch-class+bass", transpose="all")
    assert x.shape == (24, 24)
    for k in range(12):
        assert sorted(np.flatnonzero(x[2 * k, :12])) == sorted((pc + k) % 12 for pc in (2, 7, 11))
        assert np.flatnonzero(x[2 * k, 12:]).tolist() == [(7 + k) % 12]
