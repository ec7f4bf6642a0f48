"""Moving through a latent space: prior samples, walks, latent points."""
from __future__ import annotations

import pytest
import torch

from chordvae import explore
from chordvae.errors import ChordVAEError
from chordvae.vae import ModelConfig, build_model


def test_linear_walk_ends_at_both_points_in_equal_steps():
    a, b = torch.tensor([1.0, -2.0]), torch.tensor([-3.0, 2.0])
    walk = explore.interpolate(a, b, 5)
    torch.testing.assert_close(walk[0], a)
    torch.testing.assert_close(walk[-1], b)
    steps = walk.diff(dim=0).norm(dim=1)
    torch.testing.assert_close(steps, torch.full((4,), (b - a).norm().item() / 4))


def test_slerp_keeps_the_norm_between_points_of_equal_norm():
    a, b = torch.tensor([2.0, 0.0, 0.0]), torch.tensor([0.0, 2.0, 0.0])
    walk = explore.interpolate(a, b, 7, spherical=True)
    torch.testing.assert_close(walk[0], a)
    torch.testing.assert_close(walk[-1], b)
    torch.testing.assert_close(walk.norm(dim=1), torch.full((7,), 2.0))
    assert explore.interpolate(a, b, 7)[3].norm() < 1.5  # the straight line cuts through the middle


def test_slerp_follows_the_arc_by_hand():
    # a quarter circle of radius 2 in three steps: 0, 45 and 90 degrees
    walk = explore.interpolate(torch.tensor([2.0, 0.0]), torch.tensor([0.0, 2.0]), 3, spherical=True)
    r = 2 ** 0.5
    torch.testing.assert_close(walk, torch.tensor([[2.0, 0.0], [r, r], [0.0, 2.0]]))
    # 60 degrees apart, unequal norms 1 and 3: the midpoint is (sin 30 / sin 60) * (a + b)
    a, b = torch.tensor([1.0, 0.0]), torch.tensor([1.5, 1.5 * 3 ** 0.5])
    mid = explore.interpolate(a, b, 3, spherical=True)[1]
    torch.testing.assert_close(mid, torch.tensor([2.5, 1.5 * 3 ** 0.5]) / 3 ** 0.5)


def test_slerp_of_parallel_points_falls_back_to_the_line():
    a = torch.tensor([1.0, 1.0])
    walk = explore.interpolate(a, 2 * a, 3, spherical=True)
    torch.testing.assert_close(walk, torch.tensor([[1.0, 1.0], [1.5, 1.5], [2.0, 2.0]]))
    # opposite points: no great circle is defined; the walk stays finite and straight
    walk = explore.interpolate(a, -a, 3, spherical=True)
    torch.testing.assert_close(walk, torch.tensor([[1.0, 1.0], [0.0, 0.0], [-1.0, -1.0]]))


def test_prior_samples_are_seeded():
    model = build_model(ModelConfig("mlp", (12,), latent_dim=3, hidden=(8,)))
    torch.testing.assert_close(explore.sample(model, 4, seed=1), explore.sample(model, 4, seed=1))
    assert not torch.equal(explore.sample(model, 4, seed=1), explore.sample(model, 4, seed=2))
    assert explore.sample(model, 4).shape == (4, 3)


@pytest.mark.parametrize("text", ["z:0.5,-1.2", "0.5,-1.2", " z:0.5,-1.2 "])
def test_latent_points_parse(text):
    torch.testing.assert_close(explore.parse_point(text, 2), torch.tensor([0.5, -1.2]))


@pytest.mark.parametrize("text, message", [("z:1,2,3", "has 3 coordinates"), ("z:a,b", "cannot read")])
def test_bad_latent_points_are_refused(text, message):
    with pytest.raises(ChordVAEError, match=message):
        explore.parse_point(text, 2)
