"""End to end: train on data/midi, then listen to the space through the CLI."""
from __future__ import annotations

import json
from pathlib import Path

import pretty_midi
import pytest
from click.testing import CliRunner

from chordvae.cli import main
from test_chord_extraction import midi_file

DATA = Path(__file__).resolve().parents[1] / "data" / "midi"


@pytest.fixture(scope="module")
def bach_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("bach") / "run"
    result = CliRunner().invoke(main, ["train", "--dataset", "chords", str(DATA), "--epochs", "3",
                                       "--features", "pitch-class+bass", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    return out


def test_training_on_the_bundled_corpus_writes_a_full_run(bach_run):
    for name in ("config.json", "model.pt", "metrics.jsonl", "loss.png", "latent_space.png",
                 "label_clusters.png", "skipped.tsv"):
        assert (bach_run / name).exists(), name
    config = json.loads((bach_run / "config.json").read_text())
    assert config["model"]["event_shape"] == [24] and config["dataset_meta"]["pieces"] == 60
    assert [(c["name"], c["pieces"]) for c in config["dataset_meta"]["corpora"]] == [("bach", 40), ("pop", 20)]
    assert (bach_run / "corpora.png").exists() and (bach_run / "corpora.json").exists()
    last = json.loads((bach_run / "metrics.jsonl").read_text().splitlines()[-1])
    assert 0 <= last["validation"]["exact_set_rate"] <= 1 and last["validation"]["pitch_class_accuracy"] > 0.7


def test_sample_decode_encode_write_playable_midi(bach_run, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["sample", str(bach_run), "-n", "6", "--notes", "3", "--bpm", "60",
                                  "--beats", "1", "--out", str(tmp_path / "s.mid")])
    assert result.exit_code == 0, result.output
    pm = pretty_midi.PrettyMIDI(str(tmp_path / "s.mid"))
    assert abs(pm.get_end_time() - 6.0) < 1e-3  # six chords of one beat at 60 bpm
    result = runner.invoke(main, ["decode", str(bach_run), "--grid", "3", "--out", str(tmp_path / "g.musicxml")])
    assert result.exit_code == 0 and (tmp_path / "g.musicxml").stat().st_size > 0, result.output
    result = runner.invoke(main, ["encode", str(bach_run), "C E G", "G7"])
    assert result.exit_code == 0 and result.output.count("mean [") == 2, result.output
    result = runner.invoke(main, ["encode", str(bach_run), "H# blah"])
    assert result.exit_code == 1 and "cannot read the chord" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_interpolation_endpoints_decode_back_to_the_chords_given(tmp_path):
    # A corpus of four chord types, repeated: a model trained briefly must give them back.
    chords = [[60, 64, 67], [57, 60, 64], [53, 57, 60], [55, 59, 62, 65]]
    folder = tmp_path / "four"
    folder.mkdir()
    for k in range(8):
        midi_file(folder / f"p{k}.mid", [(i * 0.5, i * 0.5 + 0.5, chords[(i + k) % 4]) for i in range(40)])
    run = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(main, ["train", "--dataset", "chords", str(folder), "--epochs", "60", "--lr", "3e-3",
                                  "--min-duration", "0", "--out", str(run), "-q", "--jobs", "1"])
    assert result.exit_code == 0, result.output
    result = runner.invoke(main, ["interpolate", str(run), "C E G", "G7", "--steps", "5",
                                  "--out", str(tmp_path / "walk.mid")])
    assert result.exit_code == 0, result.output
    lines = [line for line in result.output.splitlines() if line.strip()[:1].isdigit()]
    assert "C major triad" in lines[0] and "G dominant seventh chord" in lines[-1], result.output
    pm = pretty_midi.PrettyMIDI(str(tmp_path / "walk.mid"))
    first = {n.pitch % 12 for n in pm.instruments[0].notes if n.start < 1e-6}
    assert first == {0, 4, 7}
    result = runner.invoke(main, ["interpolate", str(run), "Am", "z:0,0", "--slerp", "--steps", "3",
                                  "--out", str(tmp_path / "w2.mid"), "--wav", str(tmp_path / "w2.wav")])
    assert result.exit_code == 0, result.output
    assert "A minor triad" in result.output
    assert (tmp_path / "w2.wav").exists() or "no audio" in result.output


def test_a_folder_of_only_broken_files_fails_in_one_line(tmp_path):
    (tmp_path / "zero.mid").write_bytes(b"")
    (tmp_path / "noise.mid").write_bytes(bytes(range(200)))
    (tmp_path / "bad.musicxml").write_text("<score-partwise><part>")
    result = CliRunner().invoke(main, ["train", "--dataset", "chords", str(tmp_path), "--epochs", "1",
                                       "--jobs", "1", "--out", str(tmp_path / "run"), "-q"])
    assert result.exit_code == 1
    assert "no usable chords in 3 files" in result.output and "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert not (tmp_path / "run").exists()  # no empty run directory left behind
    result = CliRunner().invoke(main, ["train", "--dataset", "chords", str(tmp_path / "nothing-here")])
    assert result.exit_code == 1 and "does not exist" in result.output
