"""Many corpora in one space: named sources, corpus statistics, scoring another corpus, learning curves."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from chordvae.chords.sources import bundled, canonical, resolve
from chordvae.chords.stats import set_stats
from chordvae.cli import main
from chordvae.datasets.chords import Chords
from chordvae.errors import ChordVAEError
from tests.helpers import midi_file

DATA = Path(__file__).resolve().parents[1] / "data" / "midi"
MAJOR = [[60, 64, 67], [65, 69, 72], [67, 71, 74]]        # C, F, G
MINOR = [[57, 60, 64], [62, 65, 69], [64, 67, 71]]        # Am, Dm, Em


def _piece(path: Path, chords: list[list[int]], n: int = 12) -> None:
    """``n`` chords of one beat (0.5 s at 120 bpm), cycling through ``chords``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    midi_file(path, [(i * 0.5, i * 0.5 + 0.5, chords[i % len(chords)]) for i in range(n)])


@pytest.fixture(scope="module")
def two_genres(tmp_path_factory) -> Path:
    """songs/major/m0..m5.mid (major triads only), songs/minor/n0..n3.mid (minor triads only)."""
    root = tmp_path_factory.mktemp("songs") / "songs"
    for k in range(6):
        _piece(root / "major" / f"m{k}.mid", MAJOR[k % 3:] + MAJOR[:k % 3])
    for k in range(4):
        _piece(root / "minor" / f"n{k}.mid", MINOR[k % 3:] + MINOR[:k % 3], n=9)
    return root


def test_sources_are_named_by_subfolder_by_name_and_by_stem(two_genres):
    files = resolve([str(two_genres)])
    assert {(f.path.name, f.corpus) for f in files} == (
        {(f"m{k}.mid", "major") for k in range(6)} | {(f"n{k}.mid", "minor") for k in range(4)})
    named = resolve([f"happy={two_genres / 'major'}", str(two_genres / "minor" / "n0.mid")])
    assert [f.corpus for f in named] == ["happy"] * 6 + ["n0"]
    # a file named twice is read once, for the first source naming it
    assert [f.corpus for f in resolve([f"a={two_genres / 'minor'}", f"b={two_genres}"])].count("a") == 4
    assert canonical(f"x={two_genres}") == f"x={two_genres.resolve()}" and canonical("m21:bach") == "m21:bach"


def test_every_event_knows_its_corpus(two_genres, tmp_path):
    out = tmp_path / "chords.jsonl"
    result = CliRunner().invoke(main, ["extract", str(two_genres), "--out", str(out), "--jobs", "1"])
    assert result.exit_code == 0, result.output
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(events) == 6 * 12 + 4 * 9
    for e in events:
        major = {pc % 12 for pc in e["pitch_classes"]} in [{pc % 12 for pc in c} for c in MAJOR]
        assert e["corpus"] == ("major" if major else "minor"), e
        assert e["corpus"] == Path(e["source"]).parent.name


def test_training_data_carries_corpus_labels_and_named_sources(two_genres):
    data = Chords().load([f"M={two_genres / 'major'}", f"m={two_genres / 'minor'}"], {"jobs": 1}, seed=0)
    assert data.corpus_names == ["M", "m"]
    assert data.meta.extra["corpora"] == [{"name": "M", "pieces": 6, "chords": 72}, {"name": "m", "pieces": 4, "chords": 36}]
    assert data.meta.sources == [f"M={(two_genres / 'major').resolve()}", f"m={(two_genres / 'minor').resolve()}"]
    import torch
    x = torch.cat([data.train, data.validation])
    corpus = torch.cat([data.train_corpus, data.validation_corpus]).tolist()
    major = {frozenset(pc % 12 for pc in c) for c in MAJOR}
    minor = {frozenset(pc % 12 for pc in c) for c in MINOR}
    sets = [frozenset(np.flatnonzero(row.numpy()).tolist()) for row in x]
    assert all((s in major and c == 0) or (s in minor and c == 1) for s, c in zip(sets, corpus))
    assert corpus.count(0) == 72 and corpus.count(1) == 36


def test_set_statistics_of_a_known_distribution():
    rows = np.zeros((8, 12), dtype=np.uint8)
    rows[:6, [0, 4, 7]] = 1      # C major six times
    rows[6:, [9, 0, 4]] = 1      # A minor twice
    s = set_stats(rows)
    assert s["chords"] == 8 and s["distinct_sets"] == 2
    assert s["entropy_nats"] == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert s["quality_shares"]["major"] == pytest.approx(0.75) and s["quality_shares"]["minor"] == pytest.approx(0.25)
    assert s["top_chords"][0] == {"chord": "C", "pitch_classes": [0, 4, 7], "share": 0.75}


@pytest.fixture(scope="module")
def major_run(two_genres, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("major") / "run"
    result = CliRunner().invoke(main, ["train", "--dataset", "chords", str(two_genres / "major"),
                                       "--epochs", "30", "--lr", "3e-3", "--jobs", "1", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    return out


def test_evaluate_on_scores_a_corpus_the_model_never_saw(major_run, two_genres):
    runner = CliRunner()
    result = runner.invoke(main, ["evaluate", str(major_run), "--iw-samples", "20", "--json"])
    own = json.loads(result.output)
    result = runner.invoke(main, ["evaluate", str(major_run), "--on", str(two_genres / "minor"),
                                  "--iw-samples", "20"])
    assert result.exit_code == 0, result.output
    assert "0 in the run's training split, 0 held out for its validation, 4 new" in result.output
    assert "scored the new pieces only: 4 pieces, 36 events" in result.output
    report = json.loads((major_run / "evaluation-on-minor.json").read_text())
    assert report["examples"] == 36 and report["on"]["pieces"] == 4
    assert math.isfinite(report["iwae"]["nll"])
    # minor triads were never seen: they cost more than the held-out major pieces
    assert report["iwae"]["nll"] > own["iwae"]["nll"] + 1.0
    assert report["baselines"]["empirical sets"] > own["baselines"]["empirical sets"]
    result = runner.invoke(main, ["evaluate", str(major_run), "--on", f"sad={two_genres / 'minor' / 'n1.mid'}",
                                  "--iw-samples", "5"])
    assert result.exit_code == 0 and "1 pieces, 9 events;" in result.output, result.output
    assert json.loads((major_run / "evaluation-on-sad.json").read_text())["on"]["sources"][0].startswith("sad=")
    result = runner.invoke(main, ["evaluate", str(major_run), "--on", str(two_genres / "nowhere")])
    assert result.exit_code == 1 and "does not exist" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_evaluate_on_scores_only_the_pieces_the_run_has_not_seen(major_run, two_genres, tmp_path):
    """The run held out 1 of major's 6 pieces, but m_k and m_k+3 have the same content, so every
    major piece was trained on (a piece is its content: a renamed copy is the same piece).
    Only the minor pieces are new, and only they are scored, unless --include-seen."""
    copy = tmp_path / "again" / "renamed.mid"
    copy.parent.mkdir()
    copy.write_bytes((two_genres / "major" / "m0.mid").read_bytes())
    runner = CliRunner()
    result = runner.invoke(main, ["evaluate", str(major_run), "--on", str(two_genres), "--on", str(copy.parent),
                                  "--iw-samples", "5", "--json", "-q"])
    assert result.exit_code == 0, result.output
    on = json.loads(result.output)["on"]
    assert on["read"] == 11 and on["counts"] == {"train": 7, "new": 4}, on
    assert on["parts"] == "7 in the run's training split, 0 held out for its validation, 4 new"
    assert on["pieces"] == 4 and json.loads(result.output)["examples"] == 36
    result = runner.invoke(main, ["evaluate", str(major_run), "--on", str(two_genres), "--include-seen",
                                  "--iw-samples", "5", "--json", "-q"])
    report = json.loads(result.output)
    assert report["on"]["pieces"] == 10 and report["examples"] == 6 * 12 + 4 * 9 and report["on"]["include_seen"]
    result = runner.invoke(main, ["evaluate", str(major_run), "--on", str(two_genres / "major"), "-q"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("error: ") and "6 in the run's training split, 0 held out" in result.output
    assert "--include-seen" in result.output and len(result.output.strip().splitlines()) == 1
    result = runner.invoke(main, ["evaluate", str(major_run), "--include-seen"])
    assert result.exit_code != 0 and "--on" in result.output


def test_pieces_are_told_apart_by_content_as_trained_held_out_or_new():
    import torch
    from chordvae.datasets.base import Pieces
    from chordvae.datasets.seen import classify, keep, split_parts

    piece = np.array([0, 0, 1, 1, 2, 3, 3])
    trained = np.array([True, True, False, False, True, False, True])   # piece 3: partly (one-piece splits)
    seen = split_parts(["a", "b", "c", "d"], piece, trained)
    assert seen == {"a": "train", "b": "validation", "c": "train", "d": "train"}
    assert split_parts(["a", "b", "a"], np.array([0, 1, 2]), np.array([False, True, True]))["a"] == "train"
    other = Pieces(torch.arange(5.0)[:, None], torch.tensor([0, 1, 1, 2, 3]), 4, ids=["x", "b", "a", "y"])
    parts = classify(other, seen)
    assert parts == ["new", "validation", "train", "new"]
    new = keep(other, parts, {"new"})
    assert new.n_pieces == 2 and new.ids == ["x", "y"] and new.events[:, 0].tolist() == [0.0, 4.0]
    assert new.piece.tolist() == [0, 1]
    assert classify(Pieces(torch.zeros(1, 1), torch.zeros(1, dtype=torch.long), 1), seen) == ["unknown"]


def test_pictures_coloured_by_corpus_and_compared(two_genres, tmp_path):
    out = tmp_path / "run"
    runner = CliRunner()
    result = runner.invoke(main, ["train", "--dataset", "chords", str(two_genres), "--epochs", "2", "--jobs", "1",
                                  "--color-by", "corpus", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    stats = {c["name"]: c for c in json.loads((out / "corpora.json").read_text())["corpora"]}
    assert set(stats) == {"major", "minor"}
    assert stats["major"]["quality_shares"]["major"] == 1.0 and stats["minor"]["quality_shares"]["minor"] == 1.0
    assert stats["major"]["distinct_sets"] == 3 and stats["major"]["pieces"] == 6
    assert stats["major"]["entropy_nats"] == pytest.approx(math.log(3))
    assert (out / "corpora.png").stat().st_size > 0
    before = {p.name: p.read_bytes() for p in out.glob("*.png")}
    result = runner.invoke(main, ["plot", str(out), "--colour-by", "root"])
    assert result.exit_code == 2 and "-o DIR" in result.output and "--overwrite" in result.output, result.output
    result = runner.invoke(main, ["plot", str(out), "--colour-by", "root", "-o", str(tmp_path / "by-root")])
    assert result.exit_code == 0 and str(tmp_path / "by-root" / "corpora.png") in result.output, result.output
    assert {p.name: p.read_bytes() for p in out.glob("*.png")} == before   # the run's own pictures are kept
    assert {p.name for p in (tmp_path / "by-root").glob("*.png")} == set(before)
    assert (tmp_path / "by-root" / "latent_space.png").read_bytes() != before["latent_space.png"]


def test_corpora_lists_the_bundled_samples_and_music21_composers():
    from music21 import corpus

    result = CliRunner().invoke(main, ["corpora"])
    assert result.exit_code == 0, result.output
    for name in ("bach", "pop"):
        n = len(list((DATA / name).glob("*.mid")))
        assert n > 0 and re.search(rf"\n  {name} +{n} files +{DATA / name}\n", result.output), result.output
    monteverdi = sum(p.suffix in (".mxl", ".xml", ".krn", ".abc", ".mid") for p in corpus.getComposer("monteverdi"))
    assert monteverdi > 0 and re.search(rf"\n  m21:monteverdi +{monteverdi} files\n", result.output)
    assert set(bundled()) >= {"bach", "pop"}
    result = CliRunner().invoke(main, ["corpora", str(DATA), "m21:nobody-at-all"])
    assert result.exit_code == 1 and "no readable files by 'nobody-at-all'" in result.output


def test_a_curve_trains_its_models_as_long_as_the_dataset_asks_unless_told():
    """Without ``--steps`` a curve's model makes at least the dataset's minimum of updates
    (progressions 8,000), and never fewer than 2,000; ``--steps`` overrides both."""
    from chordvae.curve import CurveConfig
    from chordvae.runs import training_config

    progressions, chords = training_config("progressions"), training_config("chords")
    assert progressions.min_steps == 8000 and chords.min_steps == 0
    assert CurveConfig((5,)).updates(progressions) == 8000
    assert CurveConfig((5,)).updates(chords) == 2000
    assert CurveConfig((5,), steps=10).updates(progressions) == 10
    with pytest.raises(ChordVAEError, match="at least 1"):
        CurveConfig((5,), steps=0).validate()


def test_a_curve_far_above_the_others_puts_the_likelihoods_on_a_log_axis():
    """The independent Bernoulli of progressions (10 nats per beat) beside a VAE and an n-gram near
    2 would squash them on a linear axis: the NLL panels go logarithmic, with labelled ticks."""
    from chordvae.curve import curve_figure

    def result(far: float) -> dict:
        point = lambda v: {"mean": v, "min": v, "max": v}   # noqa: E731
        summary = [{"pieces": n, "chords": point(100 * n), "nll": point(2.2 - 0.1 * i), "n-gram": point(2.5 - 0.2 * i),
                    "independent Bernoulli": point(far)} for i, n in enumerate((10, 100))]
        return {"summary": summary, "baselines": ["independent Bernoulli", "n-gram"],
                "held_out": {"pieces": 3, "events": 30}, "config": {"repeats": 1}}

    far, near = curve_figure(result(10.3)), curve_figure(result(3.0))
    assert [ax.get_yscale() for ax in far.axes] == ["log", "log"]
    assert [t.get_text() for t in far.axes[0].get_yticklabels()] == ["2", "2.5", "3", "4", "5", "6", "8", "10", "12"]
    assert "log scale" in far.axes[0].get_ylabel()
    assert [ax.get_yscale() for ax in near.axes] == ["linear", "linear"]


def test_curve_writes_the_requested_piece_counts(two_genres, tmp_path):
    result = CliRunner().invoke(main, ["curve", "--dataset", "chords", str(two_genres / "major"), "--pieces", "1,2,all",
                                       "--repeats", "2", "--held-out", "0.2", "--steps", "10", "--iw-samples", "5",
                                       "--jobs", "1", "--threads", "1", "-o", str(tmp_path / "c"), "-q"])
    assert result.exit_code == 0, result.output
    curve = json.loads((tmp_path / "c" / "curve.json").read_text())
    assert curve["pieces"] == [1, 2, 5]          # 6 pieces, 1 held out: all = 5
    assert [s["pieces"] for s in curve["summary"]] == [1, 2, 5]
    assert len(curve["points"]) == 6 and curve["held_out"] == {"pieces": 1, "events": 12}
    assert [p["chords"] for p in curve["points"] if p["pieces"] == 5] == [60, 60]
    assert all(math.isfinite(p["nll"]) for p in curve["points"])
    assert (tmp_path / "c" / "curve.png").stat().st_size > 0
    # the models are the ones `chordvae train` makes, on a fixed budget (nothing watches the held-out pieces)
    assert curve["model"]["latent_dim"] == 4 and curve["training"]["beta"] == 0.5
    assert curve["training"]["patience"] == 0 and curve["training"]["lr_patience"] == 0 and curve["updates"] == 10
    result = CliRunner().invoke(main, ["curve", "--dataset", "chords", str(two_genres / "major"), "--pieces", "9",
                                       "--jobs", "1", "-o", str(tmp_path / "d")])
    assert result.exit_code == 1 and "more than the 5 training pieces" in result.output
