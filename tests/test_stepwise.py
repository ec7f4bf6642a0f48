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
from tests.helpers import random_pieces


def stepwise(latent: int = 2, d: int = 4, window: int = 5, context: int = 0, output: str = "made",
             components: int = 0) -> StepwiseVAE:
    torch.manual_seed(0)
    model = build_sequence(SequenceConfig(keys=d, window=window, context=context, latent_dim=latent,
                                          latent_per="frame", encoder_hidden=8, decoder_hidden=12,
                                          made_hidden=10, output=output, prior_components=components)).eval()
    assert isinstance(model, StepwiseVAE) and model.latent_dim == window * latent
    return model


@torch.no_grad()
def exact_nll(model: StepwiseVAE, batch: Masked, points: int = 4001, width: float = 12.0) -> float:
    """-log p(x) = -sum_t log integral p(z_t | h_t) p(x_t | h_t, z_t) dz_t for a one-dimensional
    z_t, by quadrature frame by frame."""
    h, prior, mu, _, mask = model.terms(batch)
    grid = torch.linspace(-width, width, points)
    z = grid.view(points, 1, 1, 1).expand(points, *mu.shape)
    log_prior = model.decoder.prior.log_prob(z, prior)
    log_px = model._frame_log_px(batch.x, h, z)
    per_frame = torch.logsumexp(log_px + log_prior, 0) + math.log(grid[1].item() - grid[0].item())
    return -(per_frame * mask).sum().item()


@pytest.mark.parametrize("components", [0, 3])
@torch.no_grad()
def test_the_bound_frame_by_frame_falls_towards_the_exact_likelihood_and_beats_whole_windows(components):
    model = stepwise(latent=1, d=3, window=4, components=components)
    model.decoder.frame.context_out.weight.mul_(6)           # an output that depends on z_t: a wide gap at K = 1
    model.decoder.prior.net.weight.mul_(3)
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
    gain = np.array(per_window) - np.array(per_frame)          # the same draws, weighed both ways
    assert gain.mean() > max(0.05, 3 * gain.std() / np.sqrt(len(gain))) and np.mean(per_frame) > exact


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
    h, (_, prior_mu, _), mu, _, mask = model.terms(batch)
    together = (model._frame_log_px(batch.x[:, 2:], h, mu.unsqueeze(0))[0] * mask).sum(1)
    kl = model.loss(batch).kl
    for i, piece in enumerate(pieces):
        alone = Masked(torch.cat([torch.zeros(1, 2, 4), piece.unsqueeze(0)], 1),
                       torch.cat([torch.zeros(1, 2, dtype=torch.bool), torch.ones(1, len(piece), dtype=torch.bool)], 1))
        for one in (alone, noisy[i:i + 1]):
            h_i, (_, prior_i, _), mu_i, _, mask_i = model.terms(one)
            n = len(piece)
            assert torch.allclose(mu_i[0, :n], mu[i, :n], atol=1e-5) and torch.allclose(prior_i[0, :n], prior_mu[i, :n], atol=1e-5)
            log_px = (model._frame_log_px(one.x[:, 2:], h_i, mu_i.unsqueeze(0))[0] * mask_i).sum(1)
            assert log_px.item() == pytest.approx(together[i].item(), abs=1e-4)
            assert model.loss(one).kl.item() == pytest.approx(kl[i].item(), abs=1e-5)


@torch.no_grad()
def test_the_mixture_prior_is_the_mixture_torch_knows_and_samples_follow_it():
    model = stepwise(latent=2, components=3)
    h = torch.randn(2, 5, 12)
    logits, mu, logvar = params = model.decoder.prior(h)
    assert logits.shape == (2, 5, 3) and mu.shape == logvar.shape == (2, 5, 3, 2)
    mixture = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=logits),
        torch.distributions.Independent(torch.distributions.Normal(mu, (0.5 * logvar).exp()), 1))
    z = torch.randn(7, 2, 5, 2) * 2
    assert torch.allclose(model.decoder.prior.log_prob(z, params), mixture.log_prob(z), atol=1e-5)
    assert model.decoder.prior.kl(mu[..., 0, :], logvar[..., 0, :], params) is None
    one = (None, mu[..., :1, :], logvar[..., :1, :])            # one component: a closed-form KL
    assert torch.allclose(model.decoder.prior.kl(mu[..., 0, :], logvar[..., 0, :], one).sum(-1),
                          torch.zeros(2, 5), atol=1e-6)
    wide = (torch.tensor([0.0, 0.0]), torch.tensor([[-5.0], [5.0]]), torch.full((2, 1), -4.0))
    draws = torch.stack([model.decoder.prior.sample(wide, torch.Generator().manual_seed(s)) for s in range(400)])
    assert (draws.abs() - 5).abs().max() < 0.7 and 0.4 < (draws > 0).float().mean() < 0.6


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
    windows_ = Masked(frames, torch.ones(5, 6, dtype=torch.bool))
    assert model.decoder.greedy_matches(windows_, z).all()
    other = z.clone()
    other[:, :2] += 40.0                                   # a far z_0 changes the first frame of some window
    assert not model.decoder.greedy_matches(windows_, other)[:, 0].all()


@torch.no_grad()
def test_prior_draws_find_latents_for_the_frames_the_mean_misses_and_keep_the_others():
    model = stepwise(window=6, components=3)
    model.decoder.frame.context_out.weight[:, -2:] *= 8      # frames that depend on z_t, as a trained model's do
    model.decoder.prior.net.weight.mul_(2)
    z = model.sample_prior(40, generator=torch.Generator().manual_seed(2))
    batch = Masked(model.decode_mean(z), torch.ones(40, 6, dtype=torch.bool))
    batch.mask[:5, 4:] = False                                # padding is never searched
    mu = model.encode(batch)[0]
    before = model.decoder.greedy_matches(batch, mu)
    points, found = model.search_frames(batch, mu, before)
    assert found.sum() > before.sum() and (found | ~before).all()
    assert model.decoder.greedy_matches(batch, points)[found].all()      # each found frame decodes back
    per_frame = (points != mu).view(40, 6, -1).any(-1)
    assert not per_frame[before].any() and not per_frame[~found].any()   # only frames that were missed move
    again, _ = model.search_frames(batch, mu, before)
    assert torch.equal(points, again)                                    # the same draws every time


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
    for option in ({"feed": "none"}, {"context_dropout": 0.5}):
        with pytest.raises(ValueError, match="latent per frame"):
            build_sequence(SequenceConfig(latent_per="frame", **option))
    with pytest.raises(ValueError, match="latent per 'bar'"):
        build_sequence(SequenceConfig(latent_per="bar"))


@pytest.mark.parametrize("components", [0, 3])
def test_latent_diagnostics_count_frames_and_give_a_kl_per_dimension(components):
    from chordvae.evaluate import kl_dims_text, latent_diagnostics

    model = stepwise(latent=3, components=components)
    batch, _ = windows(random_pieces([5, 3, 4], d=4), 5, 0)
    diag = latent_diagnostics(model, batch)
    assert diag["latent_dim"] == 3 and len(diag["kl_per_dim"]) == 3 and all(v >= 0 for v in diag["kl_per_dim"])
    assert diag["kl_marginal"] == bool(components)
    assert ("marginal" in kl_dims_text(diag)) == bool(components)
    if not components:      # one Gaussian: the closed form, frame by frame, is what the loss's KL adds up
        total = model.loss(batch).kl.sum().item() / batch.frames
        assert sum(diag["kl_per_dim"]) == pytest.approx(total, rel=1e-4)


@pytest.mark.parametrize("components", [0, 3])
def test_refit_epochs_train_only_the_prior_and_lower_the_kl(components):
    """With a latent per frame the refit epochs fit p(z_t | h_t) alone: the posterior, the GRU and
    the frame output stay as free bits left them (so do the latents' decodings), the KL falls."""
    from chordvae.train import fit

    data, _ = windows(random_pieces([6, 6, 5, 6, 4, 6], d=4, seed=2), 5, 0)
    model = stepwise(components=components).train()
    parts = (model.encoder, model.decoder.gru, model.decoder.frame, model.decoder.prior)
    snapshots = []

    class Snapshot:
        def on_epoch_end(self, state, record) -> None:
            kl = model.eval().loss(data, generator=torch.Generator().manual_seed(0)).kl.sum().item()
            snapshots.append([torch.cat([p.detach().flatten() for p in m.parameters()]).clone() for m in parts] + [kl])

        def on_train_end(self, state) -> None:
            pass

    fit(model, data, data, TrainConfig(epochs=8, batch_size=3, learning_rate=1e-2, free_bits=50.0, refit_epochs=5,
                                       threads=1), progress=False, log=lambda line: None, callbacks=[Snapshot()])
    before, after = snapshots[2], snapshots[-1]            # after the 3 epochs with free bits; after the refit
    assert not torch.equal(snapshots[1][0], before[0])      # free-bit epochs train the posterior
    assert all(torch.equal(b, a) for b, a in zip(before[:3], after[:3]))
    assert not torch.equal(before[3], after[3])
    assert after[4] < before[4] - 1.0

