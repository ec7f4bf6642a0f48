"""Baselines of sequence runs: the n-gram over frames, the per-frame VAE, and evaluate (--on) on progression runs."""
from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from chordvae.baselines import FrameNGram, IndependentBernoulli, fold_assignment
from chordvae.batch import Masked
from chordvae.cli import main
from chordvae.frame_vae import FRAME_VAE, FrameVAEConfig, train_frame_vae
from chordvae.runs import load_run
from chordvae.sequence import frames_of, windows
from tests.helpers import midi_file

D = 4
ALL_FRAMES = torch.tensor(list(itertools.product([0.0, 1.0], repeat=D)))      # every frame of D bits


def iid_pieces(lengths, seed=0, d=D) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(n, d, generator=g) < 0.3).float() for n in lengths]


def markov_pieces(lengths, seed=0) -> list[torch.Tensor]:
    """Pieces that walk a cycle of 5 frames (with a rare jump): the next frame depends on the last."""
    cycle = ALL_FRAMES[[3, 9, 12, 5, 14]]
    rng = np.random.default_rng(seed)
    pieces = []
    for n in lengths:
        state = [int(rng.integers(5))]
        for _ in range(n - 1):
            state.append((state[-1] + 1) % 5 if rng.random() < 0.95 else int(rng.integers(5)))
        pieces.append(cycle[state])
    return pieces


def every_frame_after(history: torch.Tensor) -> Masked:
    """One window per frame of D bits, each after ``history`` ``(C, D)`` (unscored): (2^D, C + 1, D)."""
    c = len(history)
    x = torch.cat([history.expand(len(ALL_FRAMES), c, D), ALL_FRAMES[:, None]], 1)
    mask = torch.zeros(len(ALL_FRAMES), c + 1, dtype=torch.bool)
    mask[:, c] = True
    return Masked(x, mask)


@pytest.mark.parametrize("make", [iid_pieces, markov_pieces])
@pytest.mark.parametrize("order", [None, 1, 3])
def test_ngram_is_a_distribution_over_all_frames_in_every_context(make, order):
    x, piece = windows(make([9, 14, 30, 6, 21, 17]), 5, 3)
    model = (FrameNGram() if order is None else FrameNGram(order, (0.7, 0.4, 0.9)[:order])).fit(x, piece)
    seen, unseen = x.x[2, :3], torch.tensor([[1.0, 1, 1, 1], [1, 1, 1, 1], [0, 1, 1, 1]])
    frequent = ALL_FRAMES[[9, 12, 5]]
    for history in (torch.zeros(3, D), seen, unseen, frequent, torch.zeros(0, D), ALL_FRAMES[[5]]):
        p = torch.exp(-model.nll(every_frame_after(history)))
        assert p.sum().item() == pytest.approx(1.0, abs=1e-9)
        assert (p > 0).all()                     # a frame never seen still has probability


def test_ngram_order_one_is_the_discounted_frequency_table():
    frames = torch.tensor([[1.0, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [1, 1, 0, 1]])
    x = Masked(frames[None], torch.ones(1, len(frames), dtype=torch.bool))
    d = 0.3
    model = FrameNGram(1, (d,)).fit(x)
    n, distinct = len(frames), 3
    p = (frames.sum(0).double() + 1) / (n + 2)                               # add-one Bernoulli by hand
    bernoulli = (ALL_FRAMES.double() * p + (1 - ALL_FRAMES.double()) * (1 - p)).prod(1)
    counts = torch.tensor([float(sum(torch.equal(f, g) for g in frames)) for f in ALL_FRAMES], dtype=torch.float64)
    expected = (counts - d).clamp(min=0) / n + d * distinct / n * bernoulli
    got = torch.exp(-model.nll(every_frame_after(torch.zeros(0, D))))
    assert torch.allclose(got, expected, atol=1e-12)
    assert torch.allclose(got, torch.exp(-model.nll(every_frame_after(ALL_FRAMES[[1, 6]]))))   # no history used
    assert expected[8].item() == pytest.approx((3 - d) / 6 + d * 3 / 6 * bernoulli[8].item())  # [1,0,0,0]: 3 of 6


def test_cross_validation_scores_each_fold_with_a_model_of_the_other_training_folds():
    x, piece = windows(markov_pieces([40, 25, 33, 50, 18, 29, 44, 21], seed=3), 6, 4)
    model = FrameNGram(folds=4).fit(x, piece)
    fold = fold_assignment(len(x), piece, 4)
    assert all(len(set(fold[(piece == p).numpy()])) == 1 for p in piece.unique())     # pieces stay whole
    for order in (1, 2, 3):
        discounts = tuple(model.cv[k]["discount"] for k in range(1, order + 1))
        total = 0.0
        for f in range(4):
            held = torch.from_numpy(fold == f)
            fitted = FrameNGram(order, discounts).fit(x[~held])
            total += fitted.nll(x[held]).sum().item()
        assert model.cv[order]["nll"] == pytest.approx(total / x.frames, rel=1e-9)
    assert model.order >= 2                                  # the cycle is found: history helps
    assert model.order == min(model.cv, key=lambda k: model.cv[k]["nll"])
    iid_x, iid_piece = windows(iid_pieces([40, 25, 33, 50, 18, 29, 44, 21], seed=3), 6, 4)
    assert FrameNGram(folds=4).fit(iid_x, iid_piece).order == 1   # no history to learn


def test_ngram_reads_the_frames_before_the_window_as_history():
    pieces = markov_pieces([60, 45, 80, 52], seed=1)
    train, piece = windows(pieces, 8, 3)
    model = FrameNGram(2, (0.5, 0.5)).fit(train, piece)
    held, _ = windows(markov_pieces([40], seed=9), 8, 3)
    blind = Masked(held.x.clone(), held.mask)
    blind.x[:, :3] = 0                                       # the context hidden: the first frame loses its history
    with_context = model.nll(held).view(-1)
    assert len(with_context) == held.frames                  # exactly the frames the VAE scores
    assert with_context.sum() < model.nll(blind).sum()


def test_frame_vae_is_deterministic_given_the_seed():
    frames = torch.cat(iid_pieces([300], seed=2, d=6))
    config = FrameVAEConfig(steps=30, hidden=(16,), latent_dim=2)
    a, _ = train_frame_vae(frames, 5, config)
    b, _ = train_frame_vae(frames, 5, config)
    c, _ = train_frame_vae(frames, 6, config)
    for (name, wa), wb, wc in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(wa, wb), name
    assert any(not torch.equal(wa, wc) for wa, wc in zip(a.state_dict().values(), c.state_dict().values()))


TRIADS = {"C": [0, 4, 7], "G": [7, 11, 2], "Am": [9, 0, 4], "F": [5, 9, 0], "Dm": [2, 5, 9], "Em": [4, 7, 11],
          "D": [2, 6, 9], "A": [9, 1, 4], "Bm": [11, 2, 6], "E": [4, 8, 11]}
SONGS = {"a": "C G Am F C G F C", "b": "Am F C G Am F G Am", "c": "D A Bm G D A G D",
         "d": "F C Dm F F C G F", "e": "G D Em C G D C G", "f": "C Am F G C Am F G"}
NEW = {"x": "C F G C Am Dm G C", "y": "D G A D Bm Em A D"}


def write_songs(folder, songs):
    """One root-position triad per 4/4 bar at 120 bpm, the root doubled two octaves down."""
    for name, figures in songs.items():
        chords = [(2.0 * bar, 2.0 * bar + 2, [60 + p for p in TRIADS[f]] + [36 + TRIADS[f][0]])
                  for bar, f in enumerate(figures.split())]
        midi_file(folder / f"{name}.mid", chords)
    return folder


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    songs = write_songs(tmp_path_factory.mktemp("songs"), SONGS)
    out = tmp_path_factory.mktemp("runs") / "run"
    result = CliRunner().invoke(main, ["train", "--dataset", "progressions", str(songs), "--bars", "2",
                                       "--epochs", "2", "--hidden", "8,8", "--latent-dim", "2",
                                       "--threads", "1", "--quiet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return songs, out


def test_the_report_prints_both_baselines_fitted_on_the_training_pieces(run):
    _, out = run
    result = CliRunner().invoke(main, ["evaluate", str(out), "--iw-samples", "3", "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    stored = out / FRAME_VAE / "model.pt"
    assert stored.is_file()
    ngram_name = f"n-gram, order {report['ngram']['order']}"
    assert set(report["baselines"]) == {"independent Bernoulli", ngram_name, "VAE per frame (IWAE)"}
    loaded = load_run(out, progress=False)
    data = loaded.data()
    assert data.train_tiled.frames == frames_of(data.train_tiled).shape[0] < data.train.frames   # every beat once
    ngram = FrameNGram().fit(data.train_tiled, data.train_tiled_groups)
    assert report["baselines"][ngram_name] == pytest.approx(ngram.nll(data.validation).mean().item())
    bernoulli = IndependentBernoulli().fit(frames_of(data.train_tiled)).nll(frames_of(data.validation)).mean()
    assert report["baselines"]["independent Bernoulli"] == pytest.approx(bernoulli.item())
    modified = stored.stat().st_mtime_ns
    text = CliRunner().invoke(main, ["evaluate", str(out), "--iw-samples", "3", "--quiet"])
    assert text.exit_code == 0, text.output
    assert ngram_name in text.output and "VAE per frame (IWAE)" in text.output and "cross-validation" in text.output
    assert stored.stat().st_mtime_ns == modified          # kept beside the run, not trained again


def test_evaluate_on_scores_new_pieces_of_a_progression_run(run, tmp_path):
    songs, out = run
    (tmp_path / "new").mkdir()
    new = write_songs(tmp_path / "new", NEW)
    result = CliRunner().invoke(main, ["evaluate", str(out), "--on", str(new), "--iw-samples", "3", "--quiet"])
    assert result.exit_code == 0, result.output
    assert "0 in the run's training split, 0 held out for its validation, 2 new" in result.output
    assert "64 frames in 8 windows of 8" in result.output           # 2 songs x 8 bars x 4 beats
    report = json.loads((out / "evaluation-on-new.json").read_text())
    assert report["part"] == "on" and report["frames"] == 64 and "VAE per frame (IWAE)" in report["baselines"]
    seen = CliRunner().invoke(main, ["evaluate", str(out), "--on", str(songs), "--quiet"])
    assert seen.exit_code != 0 and seen.output.startswith("error:") and "0 new" in seen.output
    assert "Traceback" not in seen.output


def test_curve_on_progressions_scores_beats_with_the_ngram(run, tmp_path):
    songs, _ = run
    result = CliRunner().invoke(main, ["curve", "--dataset", "progressions", str(songs), "--bars", "2",
                                       "--pieces", "2,all", "--repeats", "1", "--steps", "5", "--epochs", "1",
                                       "--iw-samples", "3", "--hidden", "8,8", "--threads", "1", "--quiet",
                                       "--out", str(tmp_path / "c")])
    assert result.exit_code == 0, result.output
    curve = json.loads((tmp_path / "c" / "curve.json").read_text())
    assert curve["baselines"] == ["independent Bernoulli", "n-gram"]
    assert curve["pieces"] == [2, 5] and curve["held_out"] == {"pieces": 1, "events": 32}   # 8 bars x 4 beats
    assert [p["chords"] for p in curve["points"]] == [64, 160]                              # training beats
    assert all(p["baselines"]["n-gram"] < p["baselines"]["independent Bernoulli"] for p in curve["points"])
    wrong = CliRunner().invoke(main, ["curve", "--dataset", "progressions", str(songs), "--pieces", "2",
                                      "--features", "pitch-class", "--out", str(tmp_path / "d")])
    assert wrong.exit_code != 0 and "--features do not apply" in wrong.output
