"""The CLI and API contract: one vocabulary, one-line errors, checkpoints that stand alone, exact resume."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import click
import pytest
import torch
from click.testing import CliRunner

from chordvae import runs
from chordvae.checkpoint import load_checkpoint
from chordvae.chords.segment import Segmentation
from chordvae.cli import main
from chordvae.chords.options import ChordOptions
from chordvae.datasets.mnist import MNIST
from chordvae.train import TrainConfig
from tests.helpers import midi_file

REPO = Path(__file__).resolve().parents[1]
CHORDS = [[60, 64, 67], [57, 60, 64], [53, 57, 60], [55, 59, 62, 65]]


def one_error_line(result, *fragments: str) -> None:
    """The command failed with exactly one ``error:`` line naming every fragment, no traceback."""
    assert result.exit_code != 0, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0], result.output


def write_corpus(folder: Path, pieces: int = 6) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(pieces):
        midi_file(folder / f"p{k}.mid", [(i * 0.5, i * 0.5 + 0.5, CHORDS[(i + k) % 4]) for i in range(16)])
    return folder


@pytest.fixture(scope="module")
def chord_run(tmp_path_factory):
    """A 2-epoch chord run with a 3-D latent space, on a corpus of its own."""
    root = tmp_path_factory.mktemp("chordrun")
    corpus = write_corpus(root / "corpus")
    out = root / "run"
    result = CliRunner().invoke(main, ["train", "-d", "chords", str(corpus), "--epochs", "2", "--latent-dim", "3",
                                       "--min-duration", "0", "--jobs", "1", "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    return out, corpus


# --- the vocabulary -------------------------------------------------------------------------

def test_bare_chordvae_prints_the_help_and_succeeds():
    result = CliRunner().invoke(main, [])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output and "train" in result.output and "error" not in result.output


def test_every_option_of_every_command_has_help_text():
    missing = [f"{name} {param.opts[0]}" for name, command in main.commands.items()
               for param in command.params if isinstance(param, click.Option) and not param.help]
    assert missing == []


def test_one_vocabulary_across_commands():
    def options(name):
        return {opt for p in main.commands[name].params for opt in p.opts}
    for name in ("sample", "interpolate", "decode"):
        assert "--min-prob" in options(name) and "--threshold" not in options(name), name
    assert "--part" in options("evaluate") and "--split" not in options("evaluate")
    for name in ("train", "extract", "plot", "sample", "interpolate", "decode"):
        assert {"-o", "--out"} <= options(name), name
    for name in ("train", "extract", "plot", "evaluate"):   # the commands that read data show progress
        assert {"-q", "--quiet"} <= options(name), name


def test_chord_options_are_one_list_the_cli_offers_in_full():
    train = {p.name for p in main.commands["train"].params}
    extract = {p.name for p in main.commands["extract"].params}
    assert set(ChordOptions.names()) <= train      # a new Segmentation field needs only its click option
    assert set(ChordOptions.names()) - {"features", "transpose", "pitch_set"} <= extract
    opts = ChordOptions.from_dict({"segment": "beat", "threshold": 0.6, "features": "pitch-class+bass",
                                   "jobs": None, "strict": True})
    assert opts.segmentation == Segmentation(mode="beat", threshold=0.6)
    assert opts.features == "pitch-class+bass" and opts.strict and opts.jobs is None
    assert ChordOptions.from_dict(opts.to_dict()) == opts
    assert opts.to_dict()["segment"] == "beat" and "mode" not in opts.to_dict()
    with pytest.raises(Exception, match="unknown chord option.*segmnt"):
        ChordOptions.from_dict({"segmnt": "beat"})


def test_the_run_stores_the_chord_options_it_was_given(chord_run):
    meta = load_checkpoint(chord_run[0]).dataset_meta
    assert ChordOptions.from_dict(meta.options) == ChordOptions(Segmentation(min_duration=0.0), jobs=1)
    assert meta.options["segment"] == "chords" and meta.options["pitch_set"] == "chord"


# --- listening from the checkpoint alone ----------------------------------------------------

def test_decode_grid_z_and_evaluate_train_need_no_corpus_reread(chord_run, tmp_path):
    run, _ = chord_run
    runner = CliRunner()
    result = runner.invoke(main, ["decode", str(run), "--notes", "3", "-o", str(tmp_path / "g.mid")])
    assert result.exit_code == 0, result.output
    numbered = [line for line in result.output.splitlines() if line.strip()[:1].isdigit()]
    assert len(numbered) == 144       # the 12 x 12 grid of latent_space.png
    for point in ("z:0.5,-1.2,0", "0.5,-1.2,0"):
        result = runner.invoke(main, ["decode", str(run), "--z", point, "--notes", "3", "-o", str(tmp_path / "z.mid")])
        assert result.exit_code == 0, result.output
        assert len([line for line in result.output.splitlines() if line.strip()[:1].isdigit()]) == 1
    result = runner.invoke(main, ["decode", str(run), "--z", "z:1,2", "-o", str(tmp_path / "bad.mid")])
    one_error_line(result, "has 2 coordinates", "3")
    result = runner.invoke(main, ["decode", str(run), "--grid", "2", "--min-prob", "1", "-o", str(tmp_path / "e.mid")])
    one_error_line(result, "every decoded chord is empty", "--min-prob")


def test_decode_grid_uses_the_plane_stored_at_the_end_of_training(chord_run, tmp_path):
    run, corpus = chord_run
    from chordvae import explore
    from chordvae.plane import LatentPlane
    loaded = runs.load_run(run)
    assert loaded.plane is not None and loaded.plane.basis.shape == (2, 3)
    stored = explore.grid(loaded, 4)
    data = loaded.data()
    fresh = LatentPlane.of(loaded.model, torch.cat([data.train, data.validation]))
    fresh = fresh.grid(4, fresh.extent, on_data=True)[0].reshape(16, 3)
    torch.testing.assert_close(stored, fresh)      # the picture's plane, not another one
    moved = tmp_path / "moved"                     # and the corpus is not read for it
    corpus.rename(moved)
    try:
        result = CliRunner().invoke(main, ["decode", str(run), "--grid", "3", "--notes", "3",
                                           "-o", str(tmp_path / "g.mid")])
        assert result.exit_code == 0, result.output
    finally:
        moved.rename(corpus)


def test_evaluate_on_the_training_part_through_the_cli(chord_run):
    run, _ = chord_run
    result = CliRunner().invoke(main, ["evaluate", str(run), "--part", "train", "--iw-samples", "5", "--json", "-q"])
    assert result.exit_code == 0, result.output
    report = json.loads((run / "evaluation-train.json").read_text())
    config = json.loads((run / "config.json").read_text())
    assert report["part"] == "train" and report["examples"] == config["train_size"] != config["validation_size"]


def test_evaluate_refuses_a_corpus_changed_since_training(chord_run):
    run, corpus = chord_run
    runner = CliRunner()
    midi_file(corpus / "new.mid", [(i * 0.5, i * 0.5 + 0.5, CHORDS[i % 4]) for i in range(16)])
    try:
        result = runner.invoke(main, ["evaluate", str(run), "--iw-samples", "2", "-q"])
    finally:
        (corpus / "new.mid").unlink()
    one_error_line(result, "corpus has changed", "1 file added", "new.mid")
    original = (corpus / "p0.mid").read_bytes()
    midi_file(corpus / "p0.mid", [(0, 1, CHORDS[0])])
    try:
        result = runner.invoke(main, ["evaluate", str(run), "--iw-samples", "2", "-q"])
    finally:
        (corpus / "p0.mid").write_bytes(original)
    one_error_line(result, "1 file changed", "p0.mid")
    assert runner.invoke(main, ["evaluate", str(run), "--iw-samples", "2", "-q"]).exit_code == 0


def test_mnist_stores_its_data_folder_resolved(shared_mnist, monkeypatch):
    monkeypatch.chdir(shared_mnist.parent)
    data = MNIST().load([], {"data_dir": shared_mnist.name}, seed=0)
    assert data.meta.options["data_dir"] == str(shared_mnist.resolve())


# --- errors ----------------------------------------------------------------------------------

def test_file_system_errors_are_one_line(tmp_path):
    runner = CliRunner()
    corpus = write_corpus(tmp_path / "corpus", pieces=1)
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    folder = tmp_path / "folder"
    folder.mkdir()
    one_error_line(runner.invoke(main, ["extract", str(corpus), "--jobs", "1", "-o", str(folder)]),
                   str(folder), "is a directory")
    one_error_line(runner.invoke(main, ["extract", str(corpus), "--jobs", "1", "-q", "-o", str(a_file / "x.jsonl")]),
                   str(a_file / "x.jsonl"), "is a file, not a folder")
    one_error_line(runner.invoke(main, ["train", "-d", "toy", "--epochs", "1", "-o", str(a_file)]),
                   str(a_file), "is a file")
    assert a_file.read_text() == "x"


def test_a_checkpoint_run_directory_under_a_file_is_one_line(tmp_path):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    result = CliRunner().invoke(main, ["train", "-d", "toy", "--epochs", "1", "-q", "-o", str(a_file / "run")])
    one_error_line(result, str(a_file / "run"))


@pytest.mark.parametrize("content, says", [
    ([1, 2, 3], "it holds a list"),
    ({"weights": torch.zeros(3)}, "a dict without"),
    ("truncated", "torch cannot read it"),
    ("text", "torch cannot read it"),
])
def test_a_file_that_is_not_a_chordvae_checkpoint_is_named(tmp_path, content, says):
    run = tmp_path / "run"
    run.mkdir()
    path = run / "model.pt"
    if content == "truncated":
        torch.save({"a": torch.zeros(100)}, path)
        path.write_bytes(path.read_bytes()[:200])
    elif content == "text":
        path.write_text("hello")
    else:
        torch.save(content, path)
    result = CliRunner().invoke(main, ["encode", str(run), "C E G"])
    one_error_line(result, str(path), "is not a chordvae checkpoint", says)


# --- runs ------------------------------------------------------------------------------------

def test_runs_started_in_the_same_second_get_their_own_folders(tmp_path, monkeypatch):
    class Frozen(datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime(2026, 1, 2, 3, 4, 5)
    monkeypatch.setattr(runs, "datetime", Frozen)
    made = [runs.new_run_dir("toy", tmp_path / "runs") for _ in range(3)]
    assert [p.name for p in made] == ["toy-20260102-030405", "toy-20260102-030405-2", "toy-20260102-030405-3"]
    assert all(p.is_dir() for p in made)
    monkeypatch.chdir(tmp_path)
    first = CliRunner().invoke(main, ["train", "-d", "toy", "--epochs", "1", "-q"])
    second = CliRunner().invoke(main, ["train", "-d", "toy", "--epochs", "1", "-q"])
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output
    assert first.output != second.output
    assert (tmp_path / "runs" / "toy-20260102-030405-5" / "model.pt").exists()


def _weights(run_dir):
    return load_checkpoint(run_dir).model.state_dict()


def test_two_plus_two_epochs_equal_four(tmp_path):
    config = dict(batch_size=32, learning_rate=1e-2, seed=3, mc_samples=2)
    runs.train("toy", config=TrainConfig(epochs=4, **config), out=tmp_path / "four", progress=False, log=str)
    runs.train("toy", config=TrainConfig(epochs=2, **config), out=tmp_path / "two", progress=False, log=str)
    result = CliRunner().invoke(main, ["train", "--resume", str(tmp_path / "two"), "--epochs", "4", "-q",
                                       "--threads", "1"])
    assert result.exit_code == 0, result.output
    four, resumed = _weights(tmp_path / "four"), _weights(tmp_path / "two")
    for name in four:
        assert torch.equal(four[name], resumed[name]), name
    metrics = [runs.read_metrics(tmp_path / name) for name in ("four", "two")]
    assert [m["train"] for m in metrics[0]] == [m["train"] for m in metrics[1]]


def test_resume_refuses_options_that_cannot_change(tmp_path):
    runs.train("toy", config=TrainConfig(epochs=1, batch_size=64), out=tmp_path / "run", progress=False, log=str)
    for extra in (["--lr", "0.1"], ["-d", "toy"], ["--latent-dim", "3"], ["some/path"], ["-o", "elsewhere"],
                  ["--seed", "0"], ["--segment", "beat"]):
        result = CliRunner().invoke(main, ["train", "--resume", str(tmp_path / "run"), "--epochs", "2", *extra])
        one_error_line(result, "cannot change", "--epochs", extra[0] if extra[0].startswith("-") else "PATHS")
    assert load_checkpoint(tmp_path / "run").epoch == 1


def test_importing_chordvae_leaves_the_matplotlib_backend_alone(tmp_path):
    code = ("import matplotlib; matplotlib.use('svg')\n"
            "import chordvae.cli, chordvae.runs, chordvae.datasets.chords, chordvae.datasets.mnist\n"
            "from chordvae.plots import plot_losses\n"
            "m = {'train': {'loss': 1, 'reconstruction_loss': 1, 'kl_loss': 0}}\n"
            f"plot_losses([dict(m, epoch=1, validation=m['train'])], {str(tmp_path / 'l.png')!r})\n"
            "print(matplotlib.get_backend())")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "svg"
    assert (tmp_path / "l.png").read_bytes()[:4] == b"\x89PNG"


def test_standard_output_stays_clean_where_the_environment_says_ci(tmp_path):
    """pyfluidsynth prints where it found its library whenever $CI is set; a command's standard
    output (e.g. ``evaluate --json``, piped to another program) must not carry that line."""
    code = ("import chordvae.listen.audio, chordvae.listen.midi\n"
            "from chordvae.chords import readers\n"
            "print('clean')")
    env = {**os.environ, "PYTHONPATH": str(REPO), "CI": "true"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout == "clean\n"
