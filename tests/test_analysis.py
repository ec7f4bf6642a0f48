"""What the VAE learned: the circle-of-fifths picture from real posterior means, the
neighbourhood number on a hand-made case, the cross-validated smoothing of the floor."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from chordvae.baselines import ALPHAS, EmpiricalSets, cross_validated_alpha
from chordvae.chords.analysis import circle_chords, circle_of_fifths, neighbourhood_overlap
from chordvae.pictures.chords import circle_of_fifths_figure
from chordvae.plots import save_figure
from chordvae.train import TrainConfig, fit
from chordvae.vae import ModelConfig, build_model


def test_the_circle_holds_the_36_chords_in_fifths_order():
    chords = circle_chords()
    assert [c[0] for c in chords[:4]] == ["C", "G", "D", "A"] and chords[0][3] == (0, 4, 7)
    assert [c[0] for c in chords[12:14]] == ["Am", "Em"]
    assert chords[12][3] == (0, 4, 9) and chords[24][3] == (0, 4, 7, 10)     # Am, C7
    assert chords[1 + 24][0] == "G7" and chords[1 + 24][3] == (2, 5, 7, 11)
    assert len({c[3] for c in chords}) == 36


@pytest.mark.parametrize("latent", [2, 3])
def test_the_picture_is_drawn_at_the_posterior_means_of_a_trained_model(tmp_path, latent):
    torch.manual_seed(0)
    x = torch.zeros(36, 12)
    for i, (_, _, _, pcs) in enumerate(circle_chords()):
        x[i, list(pcs)] = 1
    model = build_model(ModelConfig("mlp", (12,), latent_dim=latent, hidden=(32,)))
    fit(model, x.repeat(4, 1), x, TrainConfig(epochs=20, batch_size=16, learning_rate=1e-2, threads=1),
        progress=False, log=lambda s: None)
    model.eval()
    circle = circle_of_fifths(model)
    with torch.no_grad():
        means = model.encode(x)[0]
    torch.testing.assert_close(circle.means, means)
    if latent == 2:
        np.testing.assert_allclose(circle.points, means.numpy(), rtol=0, atol=1e-6)
    else:  # the plane of the means' two principal directions
        centred = (means - means.mean(0)).double()
        projected = torch.from_numpy(circle.points).double()
        assert projected.shape == (36, 2)
        basis = circle.plane.basis.double()
        torch.testing.assert_close(projected, centred @ basis.T, rtol=0, atol=1e-5)
        top2 = torch.linalg.svdvals(centred)[:2]
        torch.testing.assert_close(torch.linalg.svdvals(projected), top2, rtol=1e-4, atol=1e-5)
    save_figure(circle_of_fifths_figure(circle), tmp_path / "circle_of_fifths.png")
    assert (tmp_path / "circle_of_fifths.png").read_bytes()[:4] == b"\x89PNG"


def test_neighbourhood_overlap_by_hand():
    # C and Am share two of four pitch classes, F# and D#m too; the two pairs share none
    sets = torch.zeros(4, 12)
    for i, pcs in enumerate([(0, 4, 7), (9, 0, 4), (6, 10, 1), (3, 6, 10)]):
        sets[i, list(pcs)] = 1
    means = torch.tensor([[0.0, 0.0], [0.1, 0.0], [10.0, 0.0], [10.1, 0.0]])
    near = neighbourhood_overlap(means, sets, k=1)
    assert near["neighbour_jaccard"] == pytest.approx(0.5)
    assert near["random_pair_jaccard"] == pytest.approx(1 / 6)
    assert near["neighbourhood_ratio"] == pytest.approx(3.0)
    far = neighbourhood_overlap(torch.tensor([[0.0], [10.0], [0.1], [10.1]]), sets, k=1)
    assert far["neighbour_jaccard"] == pytest.approx(0.0) and far["neighbourhood_ratio"] == 0.0
    everyone = neighbourhood_overlap(means, sets, k=5)       # k capped at the 3 others: random pairs
    assert everyone["neighbourhood_ratio"] == pytest.approx(1.0)


def test_smoothing_is_chosen_by_cross_validation_over_whole_pieces():
    # every piece repeats one set no other piece has: held-out pieces are all unseen sets
    codes = np.repeat(np.arange(10), 20)
    assert cross_validated_alpha(codes, 12, groups=codes) == max(ALPHAS)
    # ... while folds of single chords always see the rest of their piece
    assert cross_validated_alpha(codes, 12) == min(ALPHAS)
    x = torch.from_numpy(((codes[:, None] >> np.arange(12)) & 1).astype(np.float32))
    fitted = EmpiricalSets().fit(x, torch.from_numpy(codes))
    assert fitted.alpha == max(ALPHAS)
    assert EmpiricalSets(alpha=0.5).fit(x, torch.from_numpy(codes)).alpha == 0.5
