"""The corpus engine and chord vectors: mixed good/bad folders, parallel = serial, the cache."""
from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from chordvae.batch import Masked
from chordvae.chords import corpus as corpus_module
from chordvae.chords.corpus import read_corpus, reason_kind
from chordvae.chords.sources import find_files
from chordvae.chords.events import ChordEvent
from chordvae.chords.extract import PieceChords
from chordvae.chords.segment import Segmentation
from chordvae.chords.vectors import chord_vectors
from chordvae.chords.workers import WorkerDied, run_tasks
from chordvae.cli import main
from chordvae.errors import DataError
from tests.helpers import midi_file, score_file

SEG = Segmentation()
REPO = Path(__file__).resolve().parents[1]


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


def counting_tasks(monkeypatch) -> list[str]:
    """The paths given to parsing workers from now on (``run_tasks`` runs in this process)."""
    given: list[str] = []
    real = corpus_module.run_tasks

    def counting(function, tasks, *args, **kwargs):
        given.extend(task[0] for task in tasks)
        return real(function, tasks, *args, **kwargs)

    monkeypatch.setattr(corpus_module, "run_tasks", counting)
    return given


def test_strict_refuses_a_bad_file_known_from_the_cache_before_parsing_anything(mixed, monkeypatch):
    read_corpus([mixed / "zero.mid", mixed / "a.mid"], SEG, jobs=1, progress=False)
    given = counting_tasks(monkeypatch)
    with pytest.raises(DataError, match="zero.mid: empty file"):
        read_corpus([mixed / "a.mid", mixed / "c.musicxml", mixed / "zero.mid"], SEG, jobs=1, strict=True,
                    progress=False)
    assert given == [str(mixed / "c.musicxml")] and multiprocessing.active_children() == []   # never started


def test_strict_with_several_jobs_stops_at_once(mixed, tmp_path):
    """CHORDVAE_TEST_HANG_ON makes the worker given hang.mid sleep for an hour instead of reading
    it (a file a parser needs hours for): the bad file found meanwhile ends the command at once."""
    midi_file(mixed / "hang.mid", [(0, 1, [60, 64, 67])])
    code = ("import multiprocessing, time\n"
            "from chordvae.chords.corpus import read_corpus\n"
            "from chordvae.chords.segment import Segmentation\n"
            "from chordvae.errors import DataError\n"
            "start = time.monotonic()\n"
            "try:\n"
            f"    read_corpus([{str(mixed / 'hang.mid')!r}, {str(mixed / 'zero.mid')!r}], Segmentation(), jobs=2,\n"
            "                strict=True, progress=False)\n"
            "except DataError as e:\n"
            "    print(e)\n"
            "print(time.monotonic() - start < 20, multiprocessing.active_children())\n")
    env = {**os.environ, "CHORDVAE_TEST_HANG_ON": "hang.mid",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"{mixed / 'zero.mid'}: empty file", "True []"]


def test_closing_the_task_stream_kills_busy_workers_at_once():
    start = time.monotonic()
    tasks = run_tasks(time.sleep, [(0,), (120,), (120,)], jobs=2, context=multiprocessing.get_context("forkserver"))
    assert next(tasks) == (0, None)
    tasks.close()   # what --strict does at the first bad file: the two-minute task is not waited for
    assert time.monotonic() - start < 60 and multiprocessing.active_children() == []


def test_a_dead_worker_costs_only_its_own_task():
    tasks = [(0,), (1,), (2,), (3,), (4,)]
    results = dict(run_tasks(os._exit, tasks, jobs=2, context=multiprocessing.get_context("forkserver")))
    # os._exit(0) and os._exit(k) all end their worker: every task is named, with its exit code
    assert results == {k: WorkerDied(k) for k in range(5)}
    assert str(WorkerDied(-11)).startswith("worker process died (killed by SIGSEGV")


def test_workers_have_a_limited_address_space_and_the_caller_survives_their_exhaustion():
    import resource

    context = multiprocessing.get_context("forkserver")
    limit = 2 << 30
    (_, (soft, _)), = run_tasks(resource.getrlimit, [(resource.RLIMIT_AS,)], jobs=1, context=context,
                                address_space=limit)
    assert soft == limit and resource.getrlimit(resource.RLIMIT_AS)[0] != limit   # the caller keeps its own
    (_, died), = run_tasks(bytearray, [(3 << 30,)], jobs=1, context=context, address_space=limit)
    assert isinstance(died, WorkerDied)   # MemoryError in the worker, nothing in the caller
    assert bytearray(3 << 30)[-1] == 0    # which can still allocate that much


def test_a_file_that_exhausts_its_worker_is_skipped_for_good(mixed, monkeypatch):
    def hungry(path, seg, corpus):
        raise MemoryError

    monkeypatch.setattr(corpus_module, "extract_file", hungry)
    assert corpus_module._extract(str(mixed / "a.mid"), "mixed", SEG, time_limit=0) == \
        corpus_module.Skip("too large to read in 4 GiB of memory")


def test_every_file_is_parsed_in_a_worker_even_with_one_job(mixed, monkeypatch):
    """So a file's parse never runs in the caller's process (its memory is not limited)."""
    def in_caller(*args):
        raise AssertionError("parsed in the calling process")

    monkeypatch.setattr(corpus_module, "extract_file", in_caller)   # not seen by the workers
    corpus = read_corpus([mixed / "a.mid", mixed / "zero.mid"], SEG, jobs=1, progress=False, use_cache=False)
    assert [p.source for p in corpus.pieces] == [str(mixed / "a.mid")] and corpus.pieces[0].corpus == "a"


def test_a_worker_that_really_dies_loses_nothing_but_its_file(mixed, tmp_path):
    """CHORDVAE_TEST_DIE_ON makes the worker given die.mid exit at once, as on a segfault."""
    good = [mixed / f"g{k}.mid" for k in range(6)]
    for k, path in enumerate(good + [mixed / "die.mid"]):
        midi_file(path, [(0, 1, [60 + k, 64 + k, 67 + k])])
    out = tmp_path / "chords.jsonl"
    env = {**os.environ, "CHORDVAE_TEST_DIE_ON": "die.mid",
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "chordvae", "extract", str(mixed), "-o", str(out), "--jobs", "2"],
                          env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    used = {json.loads(line)["source"] for line in out.read_text().splitlines()}
    assert used == {str(p) for p in good + [mixed / "a.mid", mixed / "c.musicxml", mixed / "sub" / "B.MIDI"]}
    skipped = dict(line.split("\t") for line in (tmp_path / "skipped.tsv").read_text().splitlines())
    assert set(skipped) == {str(mixed / n) for n in ("die.mid", "zero.mid", "noise.mid", "cut.mid", "broken.xml",
                                                      "silent.mid")}
    assert skipped[str(mixed / "die.mid")] == "worker process died (exit code 1; out of memory or crashed) while reading it"
    assert f"skipped {mixed / 'die.mid'}: worker process died" in done.stderr


def test_worker_processes_import_no_torch(mixed):
    """The forkserver preloads the corpus module and each worker reads and key-analyses files:
    none of that may import torch (it would cost every pool start for nothing)."""
    code = ("import sys\n"
            "from chordvae.chords import corpus\n"
            f"for path in {[str(mixed / 'a.mid'), str(mixed / 'c.musicxml')]!r}:\n"
            "    assert corpus._extract(path, 'x', corpus.Segmentation(min_notes=2), 60.0).events\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_warm_read_and_its_json_lines_import_neither_music21_nor_torch(mixed, tmp_path):
    """Reading cached files and writing their events (with their names, made without music21)
    is what a warm `chordvae extract` does: music21's and torch's imports would be most of its time."""
    code = ("import sys\n"
            "from chordvae.chords.options import read\n"
            f"corpus = read([{str(mixed / 'a.mid')!r}, {str(mixed / 'c.musicxml')!r}], progress=False)\n"
            f"corpus.write_jsonl({str(tmp_path / 'out.jsonl')!r})\n"
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'music21', 'torch'}))\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    runs = [subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
            for _ in range(2)]
    assert [r.returncode for r in runs] == [0, 0], runs[0].stderr + runs[1].stderr
    assert runs[1].stdout.strip() == "[]"
    assert '"name": "C major triad"' in (tmp_path / "out.jsonl").read_text()


def test_the_summary_groups_reasons_by_kind_with_balanced_brackets(mixed):
    (mixed / "bomb.musicxml").write_bytes(b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'b'>]><score-partwise/>")
    (mixed / "tracks.mid").write_bytes(b"MThd" + (6).to_bytes(4, "big") + (1).to_bytes(2, "big")
                                       + (60000).to_bytes(2, "big") + (480).to_bytes(2, "big"))
    (mixed / "noise2.mid").write_bytes(b"RIFF, not MIDI")
    corpus = read_corpus([mixed], Segmentation(min_notes=2), jobs=1, progress=False)
    head, reasons = corpus.summary().split(" (skipped: ")
    assert head == f"3 files used, 8 skipped, {corpus.n_events} chords" and reasons.endswith(")")
    assert sorted(reasons[:-1].split(", ")) == ["1 XML declares entities", "1 empty file", "1 malformed MIDI",
                                                "1 malformed score", "1 no notes", "1 too many tracks",
                                                "2 not a MIDI file"]
    assert reason_kind("compressed MusicXML too large (unpacks to 300 MB > 200 MB)") == "compressed MusicXML too large"


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
    given = counting_tasks(monkeypatch)
    cold = read_corpus([mixed], SEG, jobs=1, progress=False)
    assert len(given) == 8  # every music file, good or bad
    warm = read_corpus([mixed], SEG, jobs=1, progress=False)
    assert len(given) == 8 and warm.pieces == cold.pieces and warm.skipped == cold.skipped
    read_corpus([mixed], Segmentation(mode="beat"), jobs=1, progress=False)
    assert len(given) == 16  # other settings are not served from the cache


def test_a_corrupt_cache_entry_is_recomputed(mixed):
    cold = read_corpus([mixed], SEG, jobs=1, progress=False)
    from chordvae.cache import cache_dir
    for entry in cache_dir("chords").iterdir():
        entry.write_text("{not json")
    assert read_corpus([mixed], SEG, jobs=1, progress=False).pieces == cold.pieces


def test_a_slow_file_times_out(mixed, monkeypatch):
    import time

    def slow(path, seg, corpus):
        time.sleep(5)

    monkeypatch.setattr(corpus_module, "extract_file", slow)
    result = corpus_module._extract(str(mixed / "a.mid"), "mixed", SEG, time_limit=0.2)
    assert result == corpus_module.Skip("timed out after 0.2s", lasting=False)


def test_extract_command_writes_json_lines(mixed, tmp_path):
    out = tmp_path / "chords.jsonl"
    result = CliRunner().invoke(main, ["extract", str(mixed), "--out", str(out), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert set(rows[0]) == {"source", "start_beats", "end_beats", "start_s", "end_s", "pitch_classes", "bass",
                            "root", "quality", "sounding", "confidence", "label", "name", "symbol", "corpus"}
    assert rows[0]["pitch_classes"] == [0, 4, 7] and rows[0]["name"] == "C major triad"
    assert {(Path(r["source"]).name, r["corpus"]) for r in rows} >= {("a.mid", "corpus"), ("B.MIDI", "sub")}
    assert rows[0]["label"] == "C:maj" and rows[0]["root"] == 0 and rows[0]["quality"] == "maj"
    assert rows[0]["symbol"] == "C"
    result = CliRunner().invoke(main, ["extract", str(tmp_path / "nope"), "--out", str(out)])
    assert result.exit_code == 1 and "does not exist" in result.output


def test_extract_names_every_skipped_file_on_stderr_and_beside_its_output(mixed, tmp_path):
    (mixed / "new\nline.mid").write_bytes(b"")   # a hostile name must not break the one-line-per-file lists
    out = tmp_path / "chords.jsonl"
    result = CliRunner().invoke(main, ["extract", str(mixed), "-o", str(out), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    bad = {"zero.mid": "empty file", "noise.mid": "not a MIDI file (no MThd header)", "new\\nline.mid": "empty file",
           "silent.mid": "no notes", "cut.mid": "malformed MIDI", "broken.xml": "malformed score"}
    lines = result.stderr.splitlines()
    assert len(lines) == 6 and all(line.startswith(f"skipped {mixed}") for line in lines), result.stderr
    for name, reason in bad.items():
        assert any(line.startswith(f"skipped {mixed / name}: {reason}") for line in lines), (name, result.stderr)
    table = [line.split("\t") for line in (tmp_path / "skipped.tsv").read_text().splitlines()]
    assert sorted(Path(p).name for p, _ in table) == sorted(bad)
    assert result.stdout.startswith("3 files used, 6 skipped") and "skipped.tsv" in result.stdout
    quiet = CliRunner().invoke(main, ["extract", str(mixed), "-o", str(out), "-q"])
    assert quiet.exit_code == 0 and quiet.stderr == "" and quiet.stdout.startswith("3 files used, 6 skipped")


def piece(events, tonic=0, mode="major"):
    return PieceChords("x", [ChordEvent("x", 0, 1, 0, 1, pcs, bass) for pcs, bass in events], tonic, mode, "x")


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


def test_random_keys_move_every_block_of_a_row_by_one_shift_and_keep_the_rest():
    from chordvae.datasets.chords import Chords, random_keys
    from chordvae.datasets.progressions import Progressions

    x, _ = chord_vectors([piece([((0, 4, 7), 4), ((2, 5, 9), 2)])], "pitch-class+bass")
    rows = torch.from_numpy(np.tile(x, (50, 1))).float()
    moved = random_keys(rows, torch.Generator().manual_seed(1), blocks=2)
    shift = (moved[:, 12:].argmax(1) - rows[:, 12:].argmax(1)) % 12     # the bass's move
    for r in range(len(rows)):
        expected = np.roll(rows[r].view(2, 12).numpy(), int(shift[r]), axis=1).reshape(24)
        assert np.array_equal(moved[r].numpy(), expected)
    assert len(set(shift.tolist())) > 6                                     # keys at random, not one
    again = random_keys(rows, torch.Generator().manual_seed(1), blocks=2)
    assert torch.equal(moved, again)                                        # the generator fixes them
    assert Chords().augmentation({"transpose": "none"}) is None
    assert Chords().augmentation({"transpose": "random", "features": "pitch-class+bass"}) is not None
    # progression windows: the no-chord bit and the mask stay where they are
    frames = torch.zeros(30, 3, 25)
    frames[:, 0, [0, 4, 7, 12]] = 1
    frames[:, 1, 24] = 1
    windows = Masked(frames, torch.tensor([[True, True, False]]).expand(30, 3))
    augment = Progressions().augmentation({"transpose": "random"})
    out = augment(windows, torch.Generator().manual_seed(0))
    assert torch.equal(out.mask, windows.mask) and torch.equal(out.x[:, 1:], frames[:, 1:])
    shift = out.x[:, 0, 12:24].argmax(1)                                    # the bass C moved to the shift
    assert all(sorted(np.flatnonzero(out.x[r, 0, :12].numpy())) == sorted((pc + int(shift[r])) % 12 for pc in (0, 4, 7))
               for r in range(30))
    assert Progressions().augmentation({"transpose": "all"}) is None


def test_each_file_is_hashed_once_for_the_cache_key_and_the_runs_fingerprint(mixed, monkeypatch):
    from chordvae.datasets.chords import Chords

    hashed = []
    real = corpus_module.sha256_file
    monkeypatch.setattr(corpus_module, "sha256_file", lambda path: hashed.append(str(path)) or real(path))
    adapter = Chords()
    adapter.progress = False
    data = adapter.load([str(mixed)], {"jobs": 1}, seed=0)     # cache keys, then the meta's fingerprint
    assert sorted(hashed) == sorted(data.meta.extra["fingerprint"]) and len(hashed) == 8
    adapter.reload(data.meta)                                    # the check, the cache keys, the meta
    assert len(hashed) == 8
    midi_file(mixed / "a.mid", [(0, 1, [60, 63, 67])])           # a changed file is hashed again
    with pytest.raises(DataError, match="1 file changed: .*a.mid"):
        adapter.reload(data.meta)
    assert hashed[8:] == [str(mixed / "a.mid")]
