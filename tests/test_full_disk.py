"""A full disk, a read-only folder, a busy run directory: clean one-line errors, the last good
state kept, the cache never in the way. On real small tmpfs mounts (root only; skipped otherwise)."""
from __future__ import annotations

import errno
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pretty_midi
import pytest
from click.testing import CliRunner

from chordvae import runs
from chordvae.checkpoint import load_checkpoint
from chordvae.cli import main
from chordvae.train import TrainConfig

CHORDS = [[60, 64, 67], [57, 60, 64], [53, 57, 60], [55, 59, 62, 65], [62, 65, 69]]
#: a small, quick chord model: its checkpoint is about 40 kB
SMALL = ["--hidden", "32", "--min-duration", "0", "--jobs", "1", "-q"]


def _mount(folder: Path, options: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'mount failed'}); needs root")


@pytest.fixture
def disk(tmp_path):
    """Mount small tmpfs file systems under ``tmp_path``: ``disk(name, size)``; unmounted after the test."""
    mounted = []

    def mount(name: str = "disk", size: str = "2m", read_only: bool = False) -> Path:
        folder = tmp_path / name
        _mount(folder, f"size={size}" + (",ro" if read_only else ""))
        mounted.append(folder)
        return folder

    yield mount
    for folder in reversed(mounted):
        subprocess.run(["umount", "-l", str(folder)], check=False)


def fill(folder: Path) -> Path:
    """Fill ``folder``'s file system to the last byte with one file; delete it to free the space."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as f:
        for size in (1 << 16, 4096, 1):
            try:
                while True:
                    f.write(b"\0" * size)
            except OSError as e:
                assert e.errno == errno.ENOSPC
    assert shutil.disk_usage(folder).free == 0
    return filler


def remount_read_only(folder: Path) -> None:
    subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)


def one_error_line(result, *fragments: str) -> str:
    """The command failed with exactly one line on stderr, an ``error:`` naming every fragment,
    and no traceback; returns that line."""
    assert result.exit_code not in (0, None), result.output
    assert "Traceback" not in result.output, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0], result.output
    return lines[0]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    """Six small MIDI pieces of block chords."""
    folder = tmp_path_factory.mktemp("corpus")
    for k in range(6):
        pm = pretty_midi.PrettyMIDI(initial_tempo=120)
        piano = pretty_midi.Instrument(0)
        for i in range(20):
            piano.notes += [pretty_midi.Note(80, p, i * 0.5, i * 0.5 + 0.5) for p in CHORDS[(i + k) % 5]]
        pm.instruments.append(piano)
        pm.write(str(folder / f"p{k}.mid"))
    return folder


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("shared-cache")


@pytest.fixture(autouse=True)
def _shared_cache(shared_cache, monkeypatch):
    """This module's tests share one cache: the corpus is parsed, and its chords named, once."""
    monkeypatch.setenv("CHORDVAE_CACHE", str(shared_cache))


@pytest.fixture(scope="module")
def chord_run(tmp_path_factory, corpus, shared_cache) -> Path:
    out = tmp_path_factory.mktemp("run") / "run"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHORDVAE_CACHE", str(shared_cache))
        result = CliRunner().invoke(main, ["train", "-d", "chords", str(corpus), "--epochs", "2", "-o", str(out),
                                           *SMALL])
    assert result.exit_code == 0, result.output
    return out


def metric_epochs(run_dir: Path) -> list[int]:
    text = (run_dir / "metrics.jsonl").read_text()
    assert text.endswith("\n")
    return [json.loads(line)["epoch"] for line in text.splitlines()]


# --- training ---------------------------------------------------------------------------------

def test_training_onto_a_full_disk_fails_in_one_line_and_leaves_no_run_without_a_model(disk, corpus):
    out = disk("full", "1m") / "run"
    fill(out.parent)
    result = CliRunner().invoke(main, ["train", "-d", "chords", str(corpus), "--epochs", "2", "-o", str(out), *SMALL])
    one_error_line(result, str(out), "the disk is full")
    assert not out.exists()  # config.json without a model would be a run that is not one


def test_the_disk_fills_after_some_epochs_the_last_checkpoint_survives_and_resume_continues(disk, corpus):
    out = disk("fills", "1m") / "run"
    filler = []

    def log(line: str) -> None:  # the disk fills up right after epoch 2 is saved
        if line.startswith("epoch 2/"):
            filler.append(fill(out.parent))

    config = TrainConfig(epochs=4, batch_size=32, seed=3)
    with pytest.raises(OSError) as failure:
        runs.train("chords", [str(corpus)], options={"min_duration": 0, "jobs": 1}, hidden=(32,), config=config,
                   out=out, progress=True, log=log)
    assert failure.value.errno == errno.ENOSPC and str(failure.value.filename).startswith(str(out))
    assert load_checkpoint(out).epoch == 2  # the last good model.pt, intact
    assert metric_epochs(out) == [1, 2]  # no line of the epoch that was not saved, no partial line
    assert not list(out.glob(".*.tmp"))  # the failed write left no temporary file
    filler[0].unlink()
    result = CliRunner().invoke(main, ["train", "--resume", str(out), "--epochs", "4", "-q"])
    assert result.exit_code == 0, result.output
    assert load_checkpoint(out).epoch == 4 and metric_epochs(out) == [1, 2, 3, 4]


# --- every command that writes -------------------------------------------------------------------

WRITERS = {
    "train": lambda run, corpus, d: ["train", "-d", "chords", str(corpus), "--epochs", "1", "-o", str(d / "new"),
                                     *SMALL],
    "plot": lambda run, corpus, d: ["plot", str(run), "--overwrite", "-q"],
    "evaluate": lambda run, corpus, d: ["evaluate", str(run), "--iw-samples", "2", "-q"],
    "curve": lambda run, corpus, d: ["curve", "-d", "chords", str(corpus), "--pieces", "2", "--repeats", "1",
                                     "--steps", "1", "--epochs", "1", "--iw-samples", "2", "--hidden", "8",
                                     "--min-duration", "0", "--jobs", "1", "-o", str(d / "curve"), "-q"],
    "sample": lambda run, corpus, d: ["sample", str(run), "-n", "4", "-o", str(d / "s.mid")],
    "sample-musicxml": lambda run, corpus, d: ["sample", str(run), "-n", "4", "-o", str(d / "s.musicxml")],
    "explore": lambda run, corpus, d: ["explore", str(run), "--grid", "16", "-o", str(d / "e.html"), "-q"],
    "extract": lambda run, corpus, d: ["extract", str(corpus), "--jobs", "1", "-o", str(d / "x.jsonl"), "-q"],
}


@pytest.mark.parametrize("command", sorted(WRITERS))
def test_every_writing_command_on_a_full_disk_says_so_in_one_line(command, disk, chord_run, corpus):
    full = disk("full", "1m")
    run = full / "run"
    shutil.copytree(chord_run, run)
    fill(full)
    result = CliRunner().invoke(main, WRITERS[command](run, corpus, full))
    one_error_line(result, str(full), "the disk is full")
    assert not list(full.rglob(".*.tmp"))
    assert load_checkpoint(run).epoch == 2


# --- read-only output (issue 14.6) ------------------------------------------------------------------

def test_curve_into_a_read_only_folder_fails_before_any_training(disk, corpus):
    read_only = disk("ro", "64k", read_only=True)
    started = time.perf_counter()
    result = CliRunner().invoke(main, WRITERS["curve"](None, corpus, read_only))
    one_error_line(result, f"cannot use {read_only / 'curve'}: Read-only file system")
    assert result.stdout == ""  # no corpus read, no model trained
    assert time.perf_counter() - started < 5


def test_training_into_a_read_only_folder_fails_before_reading_the_corpus(disk, corpus, chord_run):
    read_only = disk("ro", "64k", read_only=True)
    missing = corpus.parent / "not-read-yet"  # the folder is refused before the sources are looked at
    result = CliRunner().invoke(main, ["train", "-d", "chords", str(missing), "-o", str(read_only), *SMALL])
    one_error_line(result, f"cannot use {read_only}: Read-only file system")
    folder = disk("ro-run", "1m")
    shutil.copytree(chord_run, folder / "run")
    remount_read_only(folder)
    result = CliRunner().invoke(main, ["train", "--resume", str(folder / "run"), "--epochs", "3", "-q"])
    one_error_line(result, f"cannot use {folder / 'run'}: Read-only file system")  # not a file after the work
    assert result.stdout == ""


def test_evaluate_on_a_read_only_run_prints_its_report_then_says_what_it_could_not_write(disk, chord_run):
    folder = disk("ro-run", "1m")
    run = folder / "run"
    shutil.copytree(chord_run, run)
    remount_read_only(folder)
    result = CliRunner().invoke(main, ["evaluate", str(run), "--iw-samples", "2", "-q"])
    one_error_line(result, str(run / "evaluation-validation.json"), "Read-only file system")
    assert "negative ELBO" in result.stdout  # the report came first: the work is not lost


# --- the cache ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("trouble", ["full", "read-only"])
def test_a_full_or_read_only_cache_warns_once_and_extraction_goes_on(trouble, disk, corpus, tmp_path, monkeypatch):
    cache = disk("cache", "64k", read_only=trouble == "read-only")
    if trouble == "full":
        fill(cache)
    monkeypatch.setenv("CHORDVAE_CACHE", str(cache))
    out = tmp_path / "chords.jsonl"
    result = CliRunner().invoke(main, ["extract", str(corpus), "--jobs", "1", "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert len(out.read_text().splitlines()) == 120  # 6 pieces of 20 chords
    warnings = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and str(cache) in warnings[0], result.stderr
    assert "error" not in result.output


def test_training_with_a_full_cache_goes_on(disk, corpus, tmp_path, monkeypatch):
    cache = disk("cache", "64k")
    fill(cache)
    monkeypatch.setenv("CHORDVAE_CACHE", str(cache))
    result = CliRunner().invoke(main, ["train", "-d", "chords", str(corpus), "--epochs", "1",
                                       "-o", str(tmp_path / "run"), *SMALL])
    assert result.exit_code == 0, result.output
    assert result.stderr.count("warning: cannot write to the cache") == 1, result.stderr


# --- one training per run directory (issue 14.4) -------------------------------------------------------------

def test_a_second_training_into_a_busy_run_directory_is_refused(corpus, tmp_path):
    out = tmp_path / "run"
    first = subprocess.Popen([sys.executable, "-m", "chordvae", "train", "-d", "chords", str(corpus),
                              "--epochs", "100000", "--patience", "0", "--lr-patience", "0", "-o", str(out), *SMALL],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "model.pt").exists():
            assert first.poll() is None, first.stderr.read()
            assert time.monotonic() < deadline, "the first training never saved an epoch"
            time.sleep(0.1)
        runner = CliRunner()
        for args in (["train", "-d", "chords", str(corpus), "--seed", "1", "-o", str(out), *SMALL],
                     ["train", "--resume", str(out), "-q"]):
            one_error_line(runner.invoke(main, args), f"{out} is in use")
        assert first.poll() is None  # the first goes on undisturbed
        assert load_checkpoint(out).training.seed == 0
    finally:
        first.kill()
        first.wait()
    epochs = [m["epoch"] for m in runs.read_metrics(out)]
    assert epochs == list(range(1, len(epochs) + 1))  # one seed's epochs, each once
    # the lock ends with the process however it ends: the run can be resumed at once
    result = CliRunner().invoke(main, ["train", "--resume", str(out), "--epochs", str(load_checkpoint(out).epoch + 1),
                                       "-q"])
    assert result.exit_code == 0, result.output
