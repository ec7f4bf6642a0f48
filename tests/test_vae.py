"""The VAE core: closed-form KL, reparameterisation, the loss by hand, architectures."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.distributions import Normal, kl_divergence as torch_kl

from chordvae.checkpoint import load_checkpoint, save_checkpoint
from chordvae.config import TrainConfig
from chordvae.meta import DatasetMeta
from chordvae.priors import kl_divergence
from chordvae.vae import VAE, BernoulliDecoder, ModelConfig, bernoulli_nll, build_model, reparameterize


def test_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mu, logvar = torch.randn(5, 3, generator=g), torch.randn(5, 3, generator=g)
    expected = torch_kl(Normal(mu, (0.5 * logvar).exp()), Normal(torch.zeros(3), torch.ones(3)))
    torch.testing.assert_close(kl_divergence(mu, logvar), expected)


def test_kl_is_zero_only_at_the_prior():
    assert kl_divergence(torch.zeros(1, 4), torch.zeros(1, 4)).sum() == 0
    assert kl_divergence(torch.full((1, 4), 0.1), torch.zeros(1, 4)).sum() > 0


def test_reparameterised_sample_carries_gradients():
    mu = torch.tensor([[0.5, -1.0]], requires_grad=True)
    logvar = torch.tensor([[0.2, -0.3]], requires_grad=True)
    g = torch.Generator().manual_seed(1)
    z = reparameterize(mu, logvar, generator=g)
    z.sum().backward()
    eps = torch.randn(1, 2, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(mu.grad, torch.ones(1, 2))
    torch.testing.assert_close(logvar.grad, 0.5 * torch.exp(0.5 * logvar.detach()) * eps)


def test_sample_statistics_follow_mu_and_sigma():
    mu, logvar = torch.full((20000, 1), 2.0), torch.full((20000, 1), math.log(0.25))
    z = reparameterize(mu, logvar, generator=torch.Generator().manual_seed(0))
    assert abs(z.mean().item() - 2.0) < 0.02 and abs(z.std().item() - 0.5) < 0.02


class _Fixed(nn.Module):
    def __init__(self, out: torch.Tensor):
        super().__init__()
        self.out = out

    def forward(self, x):
        return self.out.expand(x.shape[0], -1)


def test_loss_equals_hand_computed_value():
    # Encoder: mu = 0.3, logvar = log(1e-12) (so z = mu for any eps); decoder: constant logits.
    config = ModelConfig("mlp", (2,), latent_dim=1)
    logits = torch.tensor([[0.0, 2.0]])
    model = VAE(config, _Fixed(torch.tensor([[0.3, math.log(1e-12)]])), BernoulliDecoder(_Fixed(logits), (2,)))
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    out = model.loss(x, beta=0.5)
    p = torch.sigmoid(logits)[0]
    rec = torch.tensor([-(math.log(p[0]) + math.log(1 - p[1])), -(math.log(1 - p[0]) + math.log(p[1]))])
    kl = -0.5 * (1 + math.log(1e-12) - 0.09 - 1e-12)
    torch.testing.assert_close(out.reconstruction, rec)
    torch.testing.assert_close(out.kl, torch.full((2,), kl))
    torch.testing.assert_close(out.loss, rec + 0.5 * kl)


def test_bernoulli_nll_is_stable_for_extreme_logits():
    nll = bernoulli_nll(torch.tensor([[100.0, -100.0]]), torch.tensor([[1.0, 0.0]]))
    assert torch.isfinite(nll).all() and nll.item() < 1e-30 + 1e-6


def test_monte_carlo_samples_average_the_reconstruction():
    torch.manual_seed(0)
    model = build_model(ModelConfig("mlp", (12,), 2, (16,)))
    x = torch.bernoulli(torch.full((64, 12), 0.3))
    many = torch.stack([model.loss(x, samples=50).reconstruction for _ in range(4)])
    single = torch.stack([model.loss(x).reconstruction for _ in range(200)])
    assert many.std(0).mean() < single.std(0).mean()
    torch.testing.assert_close(many.mean(0), single.mean(0), atol=0.15, rtol=0.02)


def test_free_bits_floor_the_trained_kl_but_not_the_reported_one():
    model = build_model(ModelConfig("mlp", (12,), 4, (16,)))
    x = torch.zeros(8, 12)
    torch.manual_seed(0)
    plain = model.loss(x)
    torch.manual_seed(0)
    floored = model.loss(x, free_bits=10.0)
    torch.testing.assert_close(plain.kl, floored.kl)
    assert (floored.loss - floored.reconstruction).mean().item() >= 40.0 - 1e-4


def test_conv_architecture_is_the_keras_example():
    model = build_model(ModelConfig("conv", (1, 28, 28), latent_dim=2))
    convs = [m for m in model.encoder if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [(32, (3, 3), (2, 2)), (64, (3, 3), (2, 2))]
    dense = [m for m in model.encoder if isinstance(m, nn.Linear)]
    assert [d.out_features for d in dense] == [16, 4]
    mu, logvar = model.encode(torch.rand(3, 1, 28, 28))
    assert mu.shape == logvar.shape == (3, 2)
    assert model.decode_mean(torch.zeros(3, 2)).shape == (3, 1, 28, 28)
    tconvs = [m.out_channels for m in model.decoder if isinstance(m, nn.ConvTranspose2d)]
    assert tconvs == [64, 32, 1]


def test_mlp_serves_any_event_shape():
    model = build_model(ModelConfig("mlp", (12,), latent_dim=3, hidden=(32, 16)))
    assert model.decode_mean(torch.zeros(5, 3)).shape == (5, 12)
    assert model.loss(torch.rand(5, 12)).loss.shape == (5,)


@pytest.mark.parametrize("config", [ModelConfig("conv", (12,)), ModelConfig("rnn", (12,)),
                                    ModelConfig("mlp", (12,), latent_dim=0)])
def test_impossible_configs_are_refused(config):
    with pytest.raises(ValueError):
        build_model(config)


def test_checkpoint_round_trip(tmp_path):
    torch.manual_seed(0)
    model = build_model(ModelConfig("mlp", (12,), latent_dim=2, hidden=(8,)))
    save_checkpoint(tmp_path / "model.pt", model, None, TrainConfig(epochs=1), DatasetMeta("chords", seed=3), epoch=1)
    ckpt = load_checkpoint(tmp_path)
    x = torch.rand(4, 12)
    with torch.no_grad():
        torch.testing.assert_close(ckpt.model.encode(x), model.encode(x))
        torch.testing.assert_close(ckpt.model.decode_mean(torch.ones(2, 2)), model.decode_mean(torch.ones(2, 2)))
    assert (ckpt.dataset, ckpt.dataset_meta, ckpt.epoch) == ("chords", DatasetMeta("chords", seed=3), 1)
    assert ckpt.training == TrainConfig(epochs=1)
    assert [p.name for p in tmp_path.iterdir()] == ["model.pt"]  # no temporary file left behind


@pytest.mark.parametrize("config", [ModelConfig("mlp", (2, 3), latent_dim=2, hidden=(8,)),
                                    ModelConfig("conv", (1, 4, 8), latent_dim=2)])
def test_the_bernoulli_decoders_keep_the_likelihood_contract(config):
    torch.manual_seed(0)
    decoder = build_model(config).decoder
    x = torch.bernoulli(torch.full((5, *config.event_shape), 0.5))
    z = torch.randn(3, 5, 2)
    with torch.no_grad():
        log_px = decoder.log_prob(x, z)
        assert log_px.shape == (3, 5) and (log_px < 0).all()
        for s in range(3):   # each draw scores the same events, as one (B, latent) batch does
            torch.testing.assert_close(log_px[s], decoder.log_prob(x, z[s]))
        probs = decoder.mean(z[0])
        by_hand = (x * probs.log() + (1 - x) * (1 - probs).log()).flatten(1).sum(1)
        torch.testing.assert_close(decoder.log_prob(x, z[0]), by_hand)
        draws = torch.stack([decoder.sample(z[0], torch.Generator().manual_seed(k)) for k in range(2000)])
    assert draws.shape == (2000, 5, *config.event_shape) and set(draws.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(draws.mean(0), probs, atol=0.05, rtol=0)
