"""The progressions dataset: the sequence VAE trained on chord progressions through the CLI."""
from __future__ import annotations

import pretty_midi
import pytest
import torch
from click.testing import CliRunner

from chordvae.batch import Masked
from chordvae.cli import main
from chordvae.datasets import dataset_names, get_adapter
from chordvae.progressions.corpus import ProgressionOptions, read_progressions
from chordvae.progressions.frames import progression_text
from chordvae.progressions.typed import parse_progression
from chordvae.progressions.windows import split
from chordvae.runs import load_run
from tests.helpers import midi_file

PIECES = {
    "a": ["C", "G", "Am", "F", "C", "G", "F", "C"],
    "b": ["Am", "F", "C", "G", "Am", "F", "G", "Am"],
    "c": ["D", "A", "Bm", "G", "D", "A", "G", "D"],
    "d": ["F", "C", "Dm", "Bb", "F", "C", "Bb", "F"],
    "e": ["G", "D", "Em", "C", "G", "D", "C", "G"],
    "f": ["C", "Am", "F", "G", "C", "Am", "F", "G"],
}


def song(path, figures):
    """One block chord per 4/4 bar at 120 bpm (tones from middle C, the bass two octaves down)."""
    from music21 import harmony

    chords = []
    for bar, figure in enumerate(figures):
        s = harmony.ChordSymbol(figure.replace("b", "-"))   # music21 writes flats as -
        pcs = sorted({p.pitchClass for p in s.pitches})
        chords.append((bar * 2.0, bar * 2.0 + 2.0, [60 + p for p in pcs] + [36 + s.bass().pitchClass]))
    return midi_file(path, chords)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny run: six pieces of eight bars, windows of 2 bars, 2 epochs."""
    folder = tmp_path_factory.mktemp("songs")
    for name, figures in PIECES.items():
        song(folder / f"{name}.mid", figures)
    run = tmp_path_factory.mktemp("runs") / "run"
    out = CliRunner().invoke(main, ["train", "--dataset", "progressions", str(folder), "--bars", "2",
                                    "--epochs", "2", "--hidden", "8,8", "--latent-dim", "2",
                                    "--threads", "1", "--quiet", "--out", str(run)])
    assert out.exit_code == 0, out.output
    return folder, run


def test_registered():
    assert "progressions" in dataset_names()
    assert get_adapter("progressions").name == "progressions"


def test_train_writes_a_sequence_run(trained):
    folder, run_dir = trained
    for name in ("model.pt", "loss.png", "latent_space.png", "label_clusters.png", "metrics.jsonl"):
        assert (run_dir / name).is_file(), name
    run = load_run(run_dir, progress=False)
    config = run.model.config
    assert (config.keys, config.window, config.context, config.latent_dim) == (25, 8, 0, 2)
    assert run.dataset_meta.options["bars"] == 2
    data = run.data()
    assert isinstance(data.train, Masked) and data.train.x.shape[1:] == (8, 25)
    # held-out pieces are whole: no training window comes from a held-out piece
    corpus = read_progressions([str(folder)], ProgressionOptions(bars=2), progress=False)
    train, held = split(corpus, ProgressionOptions(bars=2), 0, 8)
    assert set(train.piece.tolist()).isdisjoint(held.piece.tolist())
    assert torch.equal(data.validation.x, held.frames) and torch.equal(data.train.x, train.frames)


def test_evaluate_prints_a_report(trained):
    _, run = trained
    out = CliRunner().invoke(main, ["evaluate", str(run), "--iw-samples", "3", "--quiet"])
    assert out.exit_code == 0, out.output
    assert "nats per frame" in out.output and "independent Bernoulli" in out.output


def test_typed_progressions_are_windows_of_the_run(trained):
    _, run_dir = trained
    run = load_run(run_dir, progress=False)
    adapter, meta = run.adapter, run.dataset_meta
    chords = adapter.parse_event("C G", meta)
    assert chords.x.shape == (1, 8, 25) and chords.mask.tolist() == [[True] * 8]      # no context
    assert progression_text(chords.x[0].numpy(), 4) == "| C . . . | G . . . |"
    assert torch.equal(adapter.parse_event("| C . . . | G . . . |", meta).x, chords.x)
    assert torch.equal(adapter.parse_event("I V", meta).x, chords.x)      # numerals without a key: in C
    with pytest.raises(Exception, match="beats"):
        adapter.parse_event("C G Am", meta)                                 # 12 beats > 8


def test_a_corpus_window_reads_back_and_encodes(trained):
    folder, run_dir = trained
    run = load_run(run_dir, progress=False)
    event = run.adapter.parse_event(f"{folder / 'a.mid'}:3-4", run.dataset_meta)
    typed = parse_progression("Am F")
    assert torch.equal(event.x[0], torch.from_numpy(typed.frames))
    mu, _ = run.model.encode(event)
    # the CLI prints the same posterior mean for the file's bars and the typed chords
    out = CliRunner().invoke(main, ["encode", str(run_dir), f"{folder / 'a.mid'}:3-4", "Am F"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert len(lines) == 2
    means = [line.split("mean z:")[1].split()[0] for line in lines]
    assert means[0] == means[1] == ",".join(f"{v:.3f}" for v in mu[0].tolist())


def test_decode_interpolate_sample_write_midi(trained, tmp_path):
    _, run = trained
    cli = CliRunner()
    out = cli.invoke(main, ["interpolate", str(run), "C G", "I IV", "--steps", "3", "-o", str(tmp_path / "i.mid")])
    assert out.exit_code == 0, out.output
    lines = [line for line in out.output.splitlines() if line.strip().startswith(("1", "2", "3"))]
    assert len(lines) == 3 and all(line.count("|") == 3 for line in lines)
    midi = pretty_midi.PrettyMIDI(str(tmp_path / "i.mid"))
    assert midi.get_end_time() <= 3 * 8 * 60 / 90 + 1e-6
    out = cli.invoke(main, ["decode", str(run), "--grid", "2", "-o", str(tmp_path / "d.mid")])
    assert out.exit_code == 0, out.output
    assert (tmp_path / "d.mid").is_file()
    out = cli.invoke(main, ["decode", str(run), "--grid", "2", "-o", str(tmp_path / "d.musicxml")])
    assert out.exit_code == 0 and (tmp_path / "d.musicxml").is_file(), out.output
    out = cli.invoke(main, ["decode", str(run), "--grid", "2", "-o", str(tmp_path / "d.mp3")])
    assert out.exit_code == 1 and out.output.startswith("error: ") and ".mid or .musicxml" in out.output


def test_render_holds_repeated_chords():
    frames = torch.from_numpy(parse_progression("| C . . G | N . . C |").frames)[None]
    from chordvae.listen.midi import RenderOptions
    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "x.mid"
        lines = get_adapter("progressions").render(frames, path, RenderOptions(bpm=60))
        notes = pretty_midi.PrettyMIDI(str(path)).instruments[0].notes
    assert lines == ["  1  | C . . G | N . . C |"]
    spans = sorted({(round(n.start, 3), round(n.end, 3)) for n in notes})
    assert spans == [(0.0, 3.0), (3.0, 4.0), (7.0, 8.0)]     # C held 3 beats, silence for N


def test_bad_input_is_one_line(trained, tmp_path):
    folder, run = trained
    out = CliRunner().invoke(main, ["encode", str(run), "C Xq"])
    assert out.exit_code == 1 and out.output.startswith("error: ") and len(out.output.splitlines()) == 1
    out = CliRunner().invoke(main, ["train", "--dataset", "mnist", "--bars", "2", "-o", str(tmp_path / "r")])
    assert out.exit_code != 0 and "--bars does not apply" in out.output
    out = CliRunner().invoke(main, ["train", "--dataset", "progressions", "--quiet", "-o", str(tmp_path / "r")])
    assert out.exit_code == 1 and "PATHS" in out.output
    out = CliRunner().invoke(main, ["train", "--dataset", "progressions", str(folder), "--segment", "beat",
                                    "-o", str(tmp_path / "r")])
    assert out.exit_code != 0 and "segment do not apply to --dataset progressions" in out.output
