"""Priors of the core VAE: the standard normal and the Gaussian mixture fitted to the codes."""
from __future__ import annotations

import math

import pytest
import torch
from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal

from chordvae.priors import GaussianMixture, StandardNormal
from chordvae.vae import ModelConfig, build_model


def two_clusters(n: int = 2000) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(n, 2, generator=g) * 0.2 + torch.tensor([3.0, -1.0])
    b = torch.randn(n // 3, 2, generator=g) * 0.5 + torch.tensor([-2.0, 2.0])
    return torch.cat([a, b])


def test_an_unfitted_mixture_is_the_standard_normal():
    z = torch.randn(5, 3)
    mixture = GaussianMixture(4, 3)
    torch.testing.assert_close(mixture.log_prob(z), StandardNormal().log_prob(z))
    torch.testing.assert_close(StandardNormal().log_prob(z), Normal(0.0, 1.0).log_prob(z).sum(-1))
    assert mixture.kl_per_dim(torch.zeros(1, 3), torch.zeros(1, 3)) is not None


def test_a_fitted_mixture_finds_the_clusters_and_its_density_is_torchs():
    z = two_clusters()
    mixture = GaussianMixture(2, 2)
    mixture.fit(z, generator=torch.Generator().manual_seed(1))
    assert mixture.fitted and mixture.kl_per_dim(torch.zeros(1, 2), torch.zeros(1, 2)) is None
    means = sorted(mixture.means.detach().tolist())
    assert means[0] == pytest.approx([-2.0, 2.0], abs=0.1) and means[1] == pytest.approx([3.0, -1.0], abs=0.05)
    weights = sorted(torch.softmax(mixture.logits, 0).tolist())
    assert weights == pytest.approx([0.25, 0.75], abs=0.01)
    reference = MixtureSameFamily(Categorical(logits=mixture.logits.detach()),
                                  Independent(Normal(mixture.means.detach(), (0.5 * mixture.logvars.detach()).exp()), 1))
    points = torch.randn(7, 2) * 3
    torch.testing.assert_close(mixture.log_prob(points), reference.log_prob(points), atol=1e-4, rtol=1e-4)
    # and on draws of S x B points at once, as the IWAE bound asks
    torch.testing.assert_close(mixture.log_prob(points.view(7, 1, 2).expand(7, 3, 2)),
                               reference.log_prob(points).unsqueeze(1).expand(7, 3), atol=1e-4, rtol=1e-4)


def test_a_fitted_mixture_integrates_to_one():
    mixture = GaussianMixture(3, 1)
    mixture.fit(torch.cat([torch.randn(300, 1) * s + c for s, c in ((0.1, -2.0), (0.5, 0.5), (1.0, 3.0))]),
                generator=torch.Generator().manual_seed(0))
    grid = torch.linspace(-12, 14, 20001).unsqueeze(1)
    mass = torch.logsumexp(mixture.log_prob(grid), 0).exp().item() * (grid[1, 0] - grid[0, 0]).item()
    assert mass == pytest.approx(1.0, abs=1e-3)


def test_mixture_samples_follow_it():
    mixture = GaussianMixture(2, 2)
    mixture.fit(two_clusters(), generator=torch.Generator().manual_seed(1))
    draws = mixture.sample(20000, 2, generator=torch.Generator().manual_seed(2))
    near_big = ((draws - torch.tensor([3.0, -1.0])).norm(dim=1) < 1).float().mean().item()
    assert near_big == pytest.approx(0.75, abs=0.02)
    torch.testing.assert_close(mixture.sample(5, 2, generator=torch.Generator().manual_seed(3)),
                               mixture.sample(5, 2, generator=torch.Generator().manual_seed(3)))


def test_a_vae_with_a_mixture_prior_estimates_its_kl_from_the_draws():
    model = build_model(ModelConfig("mlp", (6,), latent_dim=2, hidden=(8,)))
    model.prior = GaussianMixture(2, 2)
    x = (torch.rand(4000, 6) < 0.5).float()
    closed = model.loss(x, generator=torch.Generator().manual_seed(0)).kl     # unfitted: N(0, I), closed form
    model.prior.fit(two_clusters(), generator=torch.Generator().manual_seed(1))
    estimated = model.loss(x, samples=64, generator=torch.Generator().manual_seed(0)).kl
    mu, logvar = model.encode(x)
    z = mu + (0.5 * logvar).exp() * torch.randn(256, *mu.shape, generator=torch.Generator().manual_seed(5))
    log_q = Independent(Normal(mu, (0.5 * logvar).exp()), 1).log_prob(z)
    reference = (log_q - model.prior.log_prob(z)).mean(0)
    assert estimated.mean().item() == pytest.approx(reference.mean().item(), rel=0.02)
    assert estimated.mean() > closed.mean() + 1.0        # the codes sit far from the mixture's bumps
    assert math.isfinite(model.iwae_loss(x[:8], 4).loss.sum().item())


def test_marginal_kl_is_the_exact_kl_for_one_component_and_a_positive_estimate_for_a_mixture():
    from chordvae.priors import gaussian_kl, marginal_kl

    torch.manual_seed(0)
    mu, logvar = torch.randn(6, 3), torch.randn(6, 3) * 0.3
    means, logvars = torch.randn(1, 3), torch.randn(1, 3) * 0.3
    estimate = marginal_kl(mu, logvar, torch.zeros(1), means, logvars, draws=4000)
    exact = gaussian_kl(mu, logvar, means[0], logvars[0])
    torch.testing.assert_close(estimate, exact, atol=0.05, rtol=0.05)
    # a posterior sitting on one of two far bumps: about log 2 per dimension, the other bump's weight
    bumps = torch.tensor([[-6.0, -6.0], [6.0, 6.0]])
    kl = marginal_kl(torch.full((1, 2), 6.0), torch.zeros(1, 2), torch.zeros(2), bumps, torch.zeros(2, 2), draws=2000)
    torch.testing.assert_close(kl, torch.full((1, 2), math.log(2)), atol=0.03, rtol=0)
