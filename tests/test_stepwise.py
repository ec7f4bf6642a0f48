"""A latent per frame (chordvae.stepwise): its bound, masks, sampling and storage."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from chordvae.batch import Masked
from chordvae.checkpoint import load_checkpoint, save_checkpoint
from chordvae.config import TrainConfig
from chordvae.meta import DatasetMeta
from chordvae.sequence import SequenceConfig, build_sequence, reconstruction, windows
from chordvae.stepwise import StepwiseVAE
from chordvae.vae import iwae_nll
from test_sequence import random_pieces


def stepwise(latent: int = 2, d: int = 4, window: int = 5, context: int = 0, output: str = "made") -> StepwiseVAE:
    torch.manual_seed(0)
    model = build_sequence(SequenceConfig(keys=d, window=window, context=context, latent_dim=latent,
                                          latent_per="frame", encoder_hidden=8, decoder_hidden=12,
                                          made_hidden=10, output=output)).eval()
    assert isinstance(model, StepwiseVAE) and model.latent_dim == window * latent
    return model


@torch.no_grad()
def exact_nll(model: StepwiseVAE, batch: Masked, points: int = 4001, width: float = 12.0) -> float:
    """-log p(x) = -sum_t log integral p(z_t | h_t) p(x_t | h_t, z_t) dz_t for a one-dimensional
    z_t, by quadrature frame by frame."""
    h, prior_mu, prior_logvar, _, _, mask = model.terms(batch)
    z = torch.linspace(-width, width, points).view(points, 1, 1, 1)
    log_prior = -0.5 * ((z - prior_mu) ** 2 / prior_logvar.exp() + prior_logvar + math.log(2 * math.pi)).sum(-1)
    log_px = model._frame_log_px(batch.x, h, z.expand(points, *prior_mu.shape))
    per_frame = torch.logsumexp(log_px + log_prior, 0) + math.log(z[1].item() - z[0].item())
    return -(per_frame * mask).sum().item()


@torch.no_grad()
def test_the_bound_frame_by_frame_falls_towards_the_exact_likelihood_and_beats_whole_windows():
    model = stepwise(latent=1, d=3, window=4)
    model.decoder.frame.context_out.weight.mul_(6)           # an output that depends on z_t: a wide gap at K = 1
    model.decoder.prior.weight.mul_(3)
    batch, _ = windows(random_pieces([4, 3, 2], d=3, seed=3), 4, 0)
    exact = exact_nll(model, batch)

    def bound(k: int, repeats: int) -> float:
        return float(np.mean([iwae_nll(model, batch, k, generator=torch.Generator().manual_seed(s)).sum().item()
                              for s in range(repeats)]))

    bounds = [bound(1, 200), bound(10, 40), bound(1000, 4)]
    assert all(a > b for a, b in zip(bounds, bounds[1:])), (bounds, exact)
    assert bounds[-1] >= exact - 0.01 and bounds[-1] - exact < 0.03 < 0.3 < bounds[0] - exact

    # K draws of the whole window's latents (one weight per window) are a looser bound
    mu, logvar = model.encode(batch)
    per_frame, per_window = [], []
    for s in range(300):
        log_px, log_ratio = model.log_weights(batch, mu, logvar, 3, torch.Generator().manual_seed(s))
        per_frame.append(-(torch.logsumexp(log_px + log_ratio, 0) - math.log(3)).sum().item())
        per_window.append(-(torch.logsumexp((log_px + log_ratio).sum(-1), 0) - math.log(3)).sum().item())
    assert np.mean(per_window) > np.mean(per_frame) + 0.2 > exact + 0.2


@pytest.mark.parametrize("output", ["made", "bernoulli"])
@torch.no_grad()
def test_a_padded_batch_scores_each_piece_as_alone(output):
    model = stepwise(output=output, window=6, context=2)
    pieces = random_pieces([2, 6, 4, 1], d=4)
    batch, _ = windows(pieces, 6, 2)
    assert (batch.mask[:, 2:].sum(1) < 6).any()
    padding = ~batch.mask
    padding[:, :2] = False                                  # the context is read, not padding
    noisy = Masked(batch.x + padding.unsqueeze(-1).float(), batch.mask)     # padding holds junk
    h, prior_mu, _, mu, _, mask = model.terms(batch)
    together = (model._frame_log_px(batch.x[:, 2:], h, mu.unsqueeze(0))[0] * mask).sum(1)
    kl = model.loss(batch).kl
    for i, piece in enumerate(pieces):
        alone = Masked(torch.cat([torch.zeros(1, 2, 4), piece.unsqueeze(0)], 1),
                       torch.cat([torch.zeros(1, 2, dtype=torch.bool), torch.ones(1, len(piece), dtype=torch.bool)], 1))
        for one in (alone, noisy[i:i + 1]):
            h_i, prior_i, _, mu_i, _, mask_i = model.terms(one)
            n = len(piece)
            assert torch.allclose(mu_i[0, :n], mu[i, :n], atol=1e-5) and torch.allclose(prior_i[0, :n], prior_mu[i, :n], atol=1e-5)
            log_px = (model._frame_log_px(one.x[:, 2:], h_i, mu_i.unsqueeze(0))[0] * mask_i).sum(1)
            assert log_px.item() == pytest.approx(together[i].item(), abs=1e-4)
            assert model.loss(one).kl.item() == pytest.approx(kl[i].item(), abs=1e-5)


def test_free_bits_floor_each_dimension_per_frame():
    model = stepwise(latent=3)
    batch, _ = windows(random_pieces([5, 3], d=4), 5, 0)
    plain = model.loss(batch, generator=torch.Generator().manual_seed(0))
    floored = model.loss(batch, free_bits=50.0, generator=torch.Generator().manual_seed(0))
    frames = batch.frames
    assert torch.allclose(floored.reconstruction, plain.reconstruction)
    assert torch.allclose(floored.kl, plain.kl)                          # the reported KL is the true one
    assert floored.loss.sum().item() == pytest.approx(plain.reconstruction.sum().item() + 50.0 * 3 * frames, rel=1e-5)


@torch.no_grad()
def test_samples_are_latent_points_that_decode_to_their_frames():
    model = stepwise(window=6)
    z = model.sample_prior(5, generator=torch.Generator().manual_seed(1))
    assert z.shape == (5, 6 * 2)
    frames = model.decode_mean(z)
    assert frames.shape == (5, 6, 4) and frames.sum() > 0
    assert model.decodes_back(Masked(frames, torch.ones(5, 6, dtype=torch.bool)), z).all()
    other = z.clone()
    other[:, :2] += 40.0                                   # a far z_0 changes the first frame of some window
    assert not model.decodes_back(Masked(frames, torch.ones(5, 6, dtype=torch.bool)), other).all()


def test_a_stepwise_run_is_stored_and_rebuilt_from_its_checkpoint(tmp_path):
    model = stepwise()
    path = tmp_path / "model.pt"
    save_checkpoint(path, model, None, TrainConfig(), DatasetMeta("toy", [], {}, 0), 1)
    loaded = load_checkpoint(path).model
    assert isinstance(loaded, StepwiseVAE) and loaded.config == model.config
    batch, _ = windows(random_pieces([5, 3], d=4), 5, 0)
    assert torch.equal(loaded.encode(batch)[0], model.encode(batch)[0])


def test_reconstruction_decodes_each_frame_from_its_own_latent():
    """Frames that z_t alone decides: with an output that reads only z_t, greedy decoding of the
    posterior means gives exactly the frames whose keys' signs z_t carries."""
    model = stepwise(latent=4, d=4, window=5)
    with torch.no_grad():
        frame = model.decoder.frame
        frame.w_in.zero_(), frame.w_direct.zero_(), frame.w_out.zero_(), frame.context_hidden.weight.zero_()
        frame.context_out.weight.zero_()
        frame.context_out.weight[:, 12:] = torch.eye(4) * 10      # key i's logit: 10 * z_t[i]
        frame.context_out.bias.zero_()
        net = model.encoder.net
        net[0].weight.zero_(), net[0].bias.zero_()
        net[0].weight[:4, 12:] = torch.eye(4)                     # posterior mean: tanh(x_t - 0.5)
        net[0].bias[:4] = -0.5
        net[2].weight.zero_(), net[2].bias.zero_()
        net[2].weight[:4, :4] = torch.eye(4)
    batch, _ = windows(random_pieces([5, 4, 5], d=4, seed=2), 5, 0)
    assert reconstruction(model, batch) == {"exact_frames": 1.0, "key_f1": 1.0}


def test_a_latent_per_frame_takes_no_options_of_a_window_latent():
    for option in ({"feed": "none"}, {"prior_components": 8}, {"context_dropout": 0.5}):
        with pytest.raises(ValueError, match="latent per frame"):
            build_sequence(SequenceConfig(latent_per="frame", **option))
    with pytest.raises(ValueError, match="latent per 'bar'"):
        build_sequence(SequenceConfig(latent_per="bar"))
