"""End to end: train on data/midi, then listen to the space through the CLI."""
from __future__ import annotations

import json
import wave
from pathlib import Path

import pretty_midi
import pytest
import torch
from click.testing import CliRunner

from chordvae import runs
from chordvae.cli import main
from chordvae.datasets.chords import Chords
from chordvae.errors import ChordVAEError
from chordvae.listen.audio import find_soundfont
from chordvae.vae import ModelConfig, build_model
from tests.helpers import midi_file

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
    assert not (bach_run / "circle_of_fifths.png").exists()      # drawn for --transpose all only
    config = json.loads((bach_run / "config.json").read_text())
    assert config["model"]["event_shape"] == [24] and config["dataset_meta"]["pieces"] == 60
    assert [(c["name"], c["pieces"]) for c in config["dataset_meta"]["corpora"]] == [("bach", 40), ("pop", 20)]
    assert (bach_run / "corpora.png").exists() and (bach_run / "corpora.json").exists()
    last = json.loads((bach_run / "metrics.jsonl").read_text().splitlines()[-1])
    # the logged figures are those of the final model on the held-out chords, recomputed here by hand
    run = runs.load_run(bach_run)
    x = run.data().validation
    with torch.no_grad():
        predicted = run.model.decode_mean(run.model.encode(x)[0])[:, :12] >= 0.5
    truth = x[:, :12] > 0.5
    assert last["validation"]["exact_set_rate"] == pytest.approx((predicted == truth).all(1).float().mean().item())
    assert last["validation"]["pitch_class_accuracy"] == pytest.approx((predicted == truth).float().mean().item())


def test_chord_metrics_of_a_known_prediction():
    # a decoder that always answers C E G, whatever z: its rates on four chords are known by hand
    model = build_model(ModelConfig("mlp", (12,), latent_dim=2, hidden=(8,)))
    with torch.no_grad():
        model.decoder[-1].weight.zero_()
        model.decoder[-1].bias.copy_(torch.tensor([10.0 if pc in (0, 4, 7) else -10.0 for pc in range(12)]))
    x = torch.zeros(4, 12)
    for row, pcs in enumerate([(0, 4, 7), (0, 4, 7), (0, 4, 9), (2, 5, 7, 11)]):
        x[row, list(pcs)] = 1.0
    metrics = Chords().metrics(model, x)
    # exact: the two C E G rows; per pitch class: 12 + 12 + 10 (7, 9 wrong) + 7 (0, 2, 4, 5, 11 wrong) of 48
    assert metrics == pytest.approx({"exact_set_rate": 0.5, "pitch_class_accuracy": 41 / 48})


def test_sample_decode_encode_write_playable_midi(bach_run, tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["sample", str(bach_run), "-n", "6", "--notes", "3", "--bpm", "60",
                                  "--beats", "1", "--out", str(tmp_path / "s.mid")])
    assert result.exit_code == 0, result.output
    pm = pretty_midi.PrettyMIDI(str(tmp_path / "s.mid"))
    assert abs(pm.get_end_time() - 6.0) < 1e-3  # six chords of one beat at 60 bpm
    result = runner.invoke(main, ["sample", str(bach_run), "-n", "2", "--out", str(tmp_path / "s.wav")])
    assert result.exit_code == 1 and "use .mid or .musicxml (audio: --wav FILE.wav)" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not (tmp_path / "s.wav").exists()
    result = runner.invoke(main, ["decode", str(bach_run), "--grid", "3", "--out", str(tmp_path / "g.musicxml")])
    assert result.exit_code == 0 and (tmp_path / "g.musicxml").stat().st_size > 0, result.output
    result = runner.invoke(main, ["encode", str(bach_run), "C E G", "G7"])
    assert result.exit_code == 0 and result.output.count("mean z:") == 2 and result.output.count(" xy:") == 2, result.output
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
    result = runner.invoke(main, ["interpolate", str(run), "Am", "z:0,0,0,0", "--slerp", "--steps", "3",
                                  "--out", str(tmp_path / "w2.mid"), "--wav", str(tmp_path / "w2.wav")])
    assert result.exit_code == 0, result.output
    assert "A minor triad" in result.output
    if _synthesizer():
        assert f"audio: {tmp_path / 'w2.wav'}" in result.output
        with wave.open(str(tmp_path / "w2.wav")) as w:
            assert w.getnframes() >= 3 * 2 * 60 / 90 * w.getframerate()   # 3 chords of 2 beats at 90 bpm
    else:
        assert "no audio:" in result.output and not (tmp_path / "w2.wav").exists()


def _synthesizer() -> bool:
    """Whether FluidSynth and a SoundFont are installed (CI installs them)."""
    try:
        find_soundfont()
        import fluidsynth  # noqa: F401
    except (ChordVAEError, ImportError, OSError):
        return False
    return True


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


def test_segment_and_transpose_through_the_cli(tmp_path):
    # C major for a beat with an E -> F sixteenth passing tone: onset keeps C F G, beat drops it
    passing = tmp_path / "passing"
    passing.mkdir()
    midi_file(passing / "p.mid", [(0, 0.5, [48, 55]), (0, 0.375, [64]), (0.375, 0.5, [65])])
    sets = {}
    for mode in ("onset", "beat"):
        out = tmp_path / f"{mode}.jsonl"
        result = CliRunner().invoke(main, ["extract", str(passing), "-o", str(out), "--segment", mode,
                                           "--min-duration", "0", "--jobs", "1", "-q"])
        assert result.exit_code == 0, result.output
        sets[mode] = [json.loads(line)["pitch_classes"] for line in out.read_text().splitlines()]
    assert [0, 5, 7] in sets["onset"] and sets["beat"] == [[0, 4, 7]]
    # two pieces in G major (I IV V I, twice): --transpose c moves their chords to C major
    folder = tmp_path / "g-major"
    folder.mkdir()
    progression = [[55, 59, 62], [60, 64, 67], [62, 66, 69], [55, 59, 62]] * 2
    for k in range(2):
        midi_file(folder / f"g{k}.mid", [(i * 0.5, i * 0.5 + 0.5, chord) for i, chord in enumerate(progression)])
    found = {}
    for transpose in ("none", "c"):
        run = tmp_path / f"run-{transpose}"
        result = CliRunner().invoke(main, ["train", "--dataset", "chords", str(folder), "--segment", "onset",
                                           "--transpose", transpose, "--epochs", "1", "--out", str(run),
                                           "--jobs", "1", "-q"])
        assert result.exit_code == 0, result.output
        data = runs.load_run(run).data()
        found[transpose] = {tuple(torch.nonzero(v).flatten().tolist()) for v in torch.cat([data.train, data.validation])}
    assert found == {"none": {(2, 7, 11), (0, 4, 7), (2, 6, 9)}, "c": {(0, 4, 7), (0, 5, 9), (2, 7, 11)}}
