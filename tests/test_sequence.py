"""Sequence VAEs: windows, masks, the MADE output, the IWAE bound and MIDI from piano rolls."""
from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from chordvae._pretty_midi import pretty_midi
from chordvae.listen.midi import RenderOptions
from chordvae.listen.piano_roll import roll_notes, write_piano_roll
from chordvae.batch import Masked
from chordvae.sequence import MADE, SequenceConfig, build_sequence, exact_points, windows
from chordvae.vae import VAE, iwae_nll
from tests.helpers import random_pieces


@pytest.mark.parametrize("window,context,stride", [(4, 0, None), (4, 3, None), (5, 6, None), (1, 2, None)])
def test_windows_tile_every_frame_exactly_once(window, context, stride):
    pieces = random_pieces([1, 4, 7, 12, 13])
    batch, piece = windows(pieces, window, context, stride)
    assert batch.x.shape[1:] == (context + window, 5)
    assert batch.frames == sum(len(p) for p in pieces)
    assert (~batch.mask[:, :context]).all()
    for i, p in enumerate(pieces):
        own = batch[piece == i]
        # the scored frames, window after window, are the piece itself, each frame once
        assert torch.equal(own.x[own.mask], p)
        for j in range(len(own)):   # the context is the frames just before the window (zeros before the start)
            start = j * window
            expected = torch.zeros(context, 5)
            before = p[max(0, start - context):start]
            if len(before):
                expected[context - len(before):] = before
            assert torch.equal(own.x[j, :context], expected)


def test_overlapping_training_windows_cover_every_frame():
    pieces = random_pieces([3, 10, 17])
    batch, piece = windows(pieces, 8, 2, stride=3)
    assert batch.frames > sum(len(p) for p in pieces)           # overlapping
    for i, p in enumerate(pieces):
        own = batch[piece == i]
        assert torch.equal(own.x[-1][own.mask[-1]], p[-int(own.mask[-1].sum()):])   # the end is reached
        assert own.x[0, 2:2 + min(8, len(p))].equal(p[:8])


def tiny(latent: int = 2, output: str = "made", d: int = 5, window: int = 6, context: int = 0,
         components: int = 0) -> VAE:
    torch.manual_seed(0)
    return build_sequence(SequenceConfig(keys=d, window=window, context=context, latent_dim=latent,
                                      encoder_hidden=8, decoder_hidden=12, output=output, made_hidden=10,
                                      prior_components=components)).eval()


@pytest.mark.parametrize("output", ["made", "bernoulli"])
def test_a_padded_batch_scores_each_piece_as_alone(output):
    """Masks: pieces of different lengths padded into one batch give what each gives unpadded."""
    model = tiny(output=output)
    pieces = random_pieces([2, 6, 4, 1])
    batch, _ = windows(pieces, 6, 0)                 # one window per piece, padded to 6 frames
    assert (batch.mask.sum(1) < 6).any()
    mu, logvar = model.encode(batch)
    z = mu + 0.3
    together = model.decoder.log_prob(batch, z)
    for i, p in enumerate(pieces):
        alone = Masked(p.unsqueeze(0), torch.ones(1, len(p), dtype=torch.bool))
        mu_i, logvar_i = model.encode(alone)
        assert torch.allclose(mu_i[0], mu[i], atol=1e-5) and torch.allclose(logvar_i[0], logvar[i], atol=1e-5)
        assert torch.allclose(model.decoder.log_prob(alone, z[i:i + 1])[0], together[i], atol=1e-4)
    # and padding changes nothing whatever it holds
    noisy = Masked(batch.x + (~batch.mask).unsqueeze(-1).float(), batch.mask)
    assert torch.allclose(model.decoder.log_prob(noisy, z), together, atol=1e-4)
    assert torch.allclose(model.encode(noisy)[0], mu, atol=1e-5)


def test_made_is_a_normalised_distribution_over_all_frames():
    torch.manual_seed(1)
    d = 6
    made = MADE(d, context=3, hidden=9)
    with torch.no_grad():
        made.w_direct.normal_()         # exercise the direct connections too
    frames = torch.tensor(list(itertools.product([0.0, 1.0], repeat=d)))   # all 2^d frames
    for h in torch.randn(3, 3):
        log_p = made.log_prob(frames, h.expand(len(frames), 3))
        assert torch.logsumexp(log_p, 0).item() == pytest.approx(0.0, abs=1e-5)
        assert log_p.std() > 0.1       # not uniform: the context and the masks matter


def test_made_keys_depend_only_on_lower_keys():
    made = MADE(7, context=2, hidden=20)
    x = torch.rand(1, 7, requires_grad=True)
    for i in range(7):
        grad, = torch.autograd.grad(made.logits(x, torch.zeros(1, 2))[0, i], x)
        assert (grad[0, i:] == 0).all() and (i == 0 or grad[0, :i].abs().sum() > 0)


def exact_log_likelihood(model: VAE, batch: Masked, points: int = 4001, width: float = 9.0) -> torch.Tensor:
    """log p(x) = log integral of p(z) p(x | z) dz for a one-dimensional latent, by quadrature."""
    z = torch.linspace(-width, width, points).unsqueeze(1)       # (points, 1)
    log_prior = model.prior.log_prob(z)
    out = []
    for i in range(len(batch)):
        log_px = model.decoder.log_prob(batch[i:i + 1], z.unsqueeze(1))[:, 0]   # z as (points, 1, 1)
        out.append(torch.logsumexp(log_px + log_prior, 0) + math.log(z[1, 0] - z[0, 0]))
    return torch.stack(out)


@pytest.mark.parametrize("prior", ["normal", "mixture"])
@torch.no_grad()
def test_iwae_bound_falls_towards_the_exact_log_likelihood(prior):
    model = tiny(latent=1, d=3, window=3, components=3 if prior == "mixture" else 0)
    if prior == "mixture":                                    # three bumps, none at 0
        model.prior.fit(torch.cat([torch.randn(200, 1) * 0.3 + c for c in (-2.0, 1.0, 2.5)]),
                        generator=torch.Generator().manual_seed(0))
        assert model.prior.log_prob(torch.zeros(1, 1)) < -3
    model.decoder.initial.weight.mul_(8)                      # a decoder that depends on z: a wide gap at K = 1
    model.decoder.frame.context_out.weight.mul_(4)
    batch, _ = windows(random_pieces([3, 2, 3, 1], d=3, seed=5), 3, 0)
    exact = -exact_log_likelihood(model, batch).sum().item()

    def bound(k: int, repeats: int) -> float:
        return float(np.mean([iwae_nll(model, batch, k, generator=torch.Generator().manual_seed(s)).sum().item()
                              for s in range(repeats)]))

    bounds = [bound(1, 200), bound(10, 50), bound(100, 10), bound(3000, 2 if prior == "normal" else 10)]
    assert all(a > b for a, b in zip(bounds, bounds[1:])), (bounds, exact)
    # a posterior far from the mixture's narrow bumps: heavier-tailed weights, a noisier estimate
    slack = 0.01 if prior == "normal" else 0.05
    assert bounds[-1] >= exact - slack
    assert bounds[-1] - exact < 3 * slack < 0.3 < bounds[0] - exact


def test_no_latent_ablation_has_the_same_decoder_and_no_kl():
    model = tiny(latent=0)
    batch, _ = windows(random_pieces([6, 3]), 6, 0)
    out = model.loss(batch)
    assert (out.kl == 0).all() and torch.allclose(out.loss, out.reconstruction)
    assert torch.allclose(iwae_nll(model, batch, 5), out.loss.detach().double(), atol=1e-4)


def test_state_dicts_of_the_old_sequence_layout_still_load():
    """Checkpoints written when the sequence model was its own module (GRUs at ``encoder.*`` and
    ``decoder.*``, ``posterior.*``, ``initial.*`` and ``frame.*`` at the top) load into the core VAE."""
    model = tiny(latent=2)
    old_name = {"encoder.gru": "encoder", "encoder.posterior": "posterior", "decoder.initial": "initial",
                "decoder.gru": "decoder", "decoder.frame": "frame"}
    old = {}
    for key, value in model.state_dict().items():
        first, second, rest = key.split(".", 2)
        old[f"{old_name[first + '.' + second]}.{rest}"] = value
    assert {k.split(".")[0] for k in old} == {"encoder", "posterior", "initial", "decoder", "frame"}
    torch.manual_seed(1)
    fresh = build_sequence(model.config).eval()
    fresh.load_state_dict(old)                       # strict: every weight found
    batch, _ = windows(random_pieces([6, 3]), 6, 0)
    z = torch.randn(2, 2)
    assert torch.equal(fresh.decoder.log_prob(batch, z), model.decoder.log_prob(batch, z))
    assert torch.equal(fresh.encode(batch)[0], model.encode(batch)[0])
    fresh.load_state_dict(model.state_dict())        # and the new layout as it is


def test_reconstruction_from_z_does_not_teacher_force():
    model = tiny(latent=2)
    z = torch.randn(3, 2)
    a = model.decoder.generate(z, 6, greedy=True)
    assert a.shape == (3, 6, 5) and set(a.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(a, model.decode_mean(z))            # greedy is deterministic in z


def test_held_keys_become_one_note():
    roll = np.zeros((6, 4), dtype=np.uint8)
    roll[0:3, 1] = 1
    roll[4:6, 1] = 1
    roll[2:6, 3] = 1
    assert sorted(roll_notes(roll)) == [(1, 0, 3), (1, 4, 6), (3, 2, 6)]


def test_sampled_midi_has_the_right_length_and_pitch_range(tmp_path):
    model = build_sequence(SequenceConfig(window=8, context=0, latent_dim=2, encoder_hidden=8,
                                       decoder_hidden=16, made_hidden=16)).eval()
    with torch.no_grad():
        model.decoder.frame.context_out.bias.fill_(2.0)       # every key likely: the whole range sounds
    frames = model.decoder.generate(torch.randn(3, 2), 8)      # sampled, not greedy
    path = tmp_path / "s.mid"
    lines = write_piano_roll(frames, path, RenderOptions(bpm=120), lowest=21)
    assert len(lines) == 3
    pm = pretty_midi.PrettyMIDI(str(path))
    notes = pm.instruments[0].notes
    pitches = [n.pitch for n in notes]
    assert 21 <= min(pitches) and max(pitches) <= 108 and max(pitches) - min(pitches) > 60
    last = max(n.end for n in notes)
    assert last <= 24 * 0.5 + 1e-6                    # 3 windows x 8 quarter notes at 120 bpm
    roll = (frames > 0).reshape(-1, 88)
    assert last == pytest.approx(0.5 * (int(roll.any(1).nonzero().max()) + 1))
    assert len(notes) == len(roll_notes(roll.numpy()))


def test_reconstruction_counts_exact_frames_and_key_f1():
    class First(torch.nn.Module):
        """z is the window's first frame (and a log-variance of 0)."""

        def forward(self, batch):
            return torch.cat([batch.x[:, 0], torch.zeros_like(batch.x[:, 0])], 1)

    class Echo(torch.nn.Module):
        """Decodes every window as z repeated."""

        def generate(self, z, length, context=None, greedy=False, generator=None):
            return z.unsqueeze(1).expand(-1, length, -1)

    from chordvae.sequence import reconstruction
    model = VAE(SequenceConfig(keys=3, window=2, context=0, latent_dim=3), First(), Echo())
    x = torch.tensor([[[1., 0, 1], [1, 0, 1]], [[0, 1, 0], [1, 1, 0]]])
    mask = torch.tensor([[True, True], [True, False]])                # the second window's last frame is padding
    r = reconstruction(model, Masked(x, mask))
    assert r["exact_frames"] == pytest.approx(1.0)
    r = reconstruction(model, Masked(x, torch.ones(2, 2, dtype=torch.bool)))
    assert r["exact_frames"] == pytest.approx(0.75)
    assert r["key_f1"] == pytest.approx(2 * 6 / (2 * 6 + 0 + 1))      # tp 6, fp 0, fn 1


def test_free_bits_can_stop_after_some_epochs(tmp_path):
    """TrainConfig.free_bits_epochs: the floor holds during the first epochs only (the JSB default)."""
    from chordvae.train import TrainConfig, fit

    data, _ = windows(random_pieces([6, 6, 5, 6, 4, 6], seed=2), 6, 0)
    kls = {}
    for n in (0, 2):     # 0: the floor always holds
        torch.manual_seed(3)
        config = TrainConfig(epochs=6, batch_size=3, learning_rate=1e-2, free_bits=50.0, free_bits_epochs=n,
                             threads=1)
        model = tiny(latent=2)
        with torch.no_grad():
            model.encoder.posterior.bias[:2] = 3.0            # posterior means far from 0: a KL to pay
        history = fit(model, data, data, config, progress=False, log=lambda line: None).history
        kls[n] = [r["train"]["kl_loss"] for r in history]
    assert kls[0][:2] == pytest.approx(kls[2][:2])     # the same first two epochs
    assert kls[2][5] < kls[0][5] - 1.0                 # then the KL is paid for, and falls (nats)


def test_refit_epochs_freeze_the_decoder_and_fit_the_mixture_prior():
    """TrainConfig.refit_epochs: the last epochs change only the encoder and the prior (fitted to
    the codes first), on the ELBO without the free-bits floor."""
    from chordvae.train import TrainConfig, fit

    data, _ = windows(random_pieces([6, 6, 5, 6, 4, 6], seed=2), 6, 0)
    model = tiny(latent=2, components=4).train()
    config = TrainConfig(epochs=4, batch_size=3, learning_rate=1e-2, free_bits=50.0, refit_epochs=2, threads=1)
    snapshots = []
    fit(model, data, data, config, progress=False, log=lambda line: None,
        callbacks=[_Snapshot(snapshots)])
    (dec1, enc1, prior1), (dec2, enc2, prior2), (dec3, enc3, prior3), (dec4, _, prior4) = snapshots
    assert not torch.equal(dec1, dec2) and not prior1                  # epochs 1-2 train everything
    assert torch.equal(dec2, dec3) and torch.equal(dec3, dec4)         # 3-4 refit: the decoder is frozen
    assert not torch.equal(enc2, enc3) and prior3 and prior4           # the encoder moves; the prior is fitted
    assert model.latent_dim and model.loss(data).kl.mean() < 2 * 50.0  # no floor of 50 nats per dimension


class _Snapshot:
    """A training callback keeping (decoder weights, encoder weights, prior fitted) after each epoch."""

    def __init__(self, out: list):
        self.out = out

    def on_epoch_end(self, state, record) -> None:
        m = state.model
        self.out.append((torch.cat([p.detach().flatten() for p in m.decoder.parameters()]).clone(),
                         torch.cat([p.detach().flatten() for p in m.encoder.parameters()]).clone(),
                         bool(m.prior.fitted)))

    def on_train_end(self, state) -> None:
        pass


@pytest.mark.parametrize("output,feed,context,per", [("made", "frames", 0, "window"), ("bernoulli", "frames", 2, "window"),
                                                     ("made", "none", 3, "window"), ("made", "frames", 2, "frame")])
def test_greedy_matches_say_exactly_which_windows_greedy_decoding_gives_back(output, feed, context, per):
    """One teacher-forced pass tells which windows decoding from z alone reproduces: checked against
    generate() on windows it produced (all back), and on the same windows with one key flipped."""
    torch.manual_seed(0)
    model = build_sequence(SequenceConfig(keys=4, window=5, context=context, latent_dim=3, encoder_hidden=8,
                                          decoder_hidden=12, output=output, made_hidden=10, feed=feed,
                                          latent_per=per)).eval()
    z = torch.randn(40, model.latent_dim) * 2
    decoded = model.decoder.generate(z, 5, greedy=True)
    x = torch.cat([torch.rand(40, context, 4).round(), decoded], 1)       # any context: decoding blanks it
    mask = torch.ones(40, context + 5, dtype=torch.bool)
    mask[:, :context] = False
    mask[:5, -1] = False                                                    # padding counts as matched
    assert model.decoder.greedy_matches(Masked(x, mask), z).all()
    flipped = x.clone()
    rows, frames, keys = torch.arange(40), context + torch.randint(0, 5, (40,)), torch.randint(0, 4, (40,))
    flipped[rows, frames, keys] = 1 - flipped[rows, frames, keys]
    matches = model.decoder.greedy_matches(Masked(flipped, mask), z)
    redecoded = model.decoder.generate(z, 5, greedy=True)
    truth = ((redecoded == flipped[:, context:]).all(-1) | ~mask[:, context:]).all(1)
    assert torch.equal(matches.all(1), truth)
    assert not truth[5:].any()


@pytest.mark.parametrize("per", ["window", "frame"])
def test_exact_points_find_a_point_that_decodes_back_or_keep_the_posterior_mean(per):
    torch.manual_seed(0)
    model = build_sequence(SequenceConfig(keys=4, window=4, context=0, latent_dim=2, encoder_hidden=8,
                                          decoder_hidden=12, made_hidden=10, latent_per=per)).eval()
    if per == "frame":                                      # frames that depend on their z_t as a trained model's do
        with torch.no_grad():
            model.decoder.frame.context_out.weight[:, 12:] *= 8
    z = torch.randn(12, model.latent_dim) * 1.5
    windows_back = model.decoder.generate(z, 4, greedy=True)                 # each has a point: its z
    batch = Masked(windows_back, torch.ones(12, 4, dtype=torch.bool))
    mu = model.encode(batch)[0]
    before = model.decoder.greedy_matches(batch, mu).all(1)
    points, found = exact_points(model, batch, steps=300)
    assert found.sum() > before.sum()                                        # inference finds more than the encoder
    again = (model.decoder.generate(points, 4, greedy=True) == windows_back).all(-1).all(1)
    assert torch.equal(again, found)
    if per == "window":
        torch.testing.assert_close(points[~found], mu[~found].detach())
    else:                       # a frame's z_t moves only to a point that gives the frame back
        moved = (points != mu).view(12, 4, -1).any(-1)
        assert moved.any() and model.decoder.greedy_matches(batch, points)[moved].all()
    from chordvae.sequence import reconstruction     # what evaluate reports beside the means' figures
    plain, searched = reconstruction(model, batch), reconstruction(model, batch, searched=True)
    assert searched["exact_windows"] == pytest.approx(found.float().mean().item())
    assert plain["exact_frames"] < searched["exact_frames"] <= 1.0


@pytest.mark.parametrize("pooling", ["mean", "ends"])
def test_both_poolings_ignore_padding(pooling):
    torch.manual_seed(0)
    model = build_sequence(SequenceConfig(keys=5, window=6, context=0, latent_dim=2, encoder_hidden=8,
                                          decoder_hidden=12, made_hidden=10, pooling=pooling)).eval()
    batch, _ = windows(random_pieces([2, 6, 4]), 6, 0)
    noisy = Masked(batch.x + (~batch.mask).unsqueeze(-1).float(), batch.mask)
    assert torch.allclose(model.encode(noisy)[0], model.encode(batch)[0], atol=1e-5)


def test_old_configs_load_with_the_pooling_and_feed_they_were_trained_with():
    stored = {k: v for k, v in SequenceConfig().to_dict().items() if k not in ("pooling", "feed")}
    old = SequenceConfig.from_dict(stored)
    assert (old.pooling, old.feed) == ("mean", "frames")
    assert SequenceConfig().pooling == "ends"


def test_a_decoder_fed_nothing_scores_each_frame_from_z_and_the_context_alone():
    """feed none: changing a frame of the window changes no other frame's log-probability."""
    torch.manual_seed(0)
    config = SequenceConfig(keys=5, window=4, context=2, latent_dim=2, encoder_hidden=8, decoder_hidden=12,
                            made_hidden=10, feed="none")
    model = build_sequence(config).eval()
    x = (torch.rand(1, 6, 5) < 0.5).float()
    z = torch.randn(1, 2)

    def per_frame(x: torch.Tensor) -> torch.Tensor:
        return model.decoder.frame.log_prob(x, model.decoder._states(x, z))[0]

    changed = x.clone()
    changed[0, 3] = 1 - changed[0, 3]                    # the window's second frame
    before, after = per_frame(x), per_frame(changed)
    assert not torch.allclose(before[3], after[3])
    assert torch.allclose(before[4:], after[4:]) and torch.allclose(before[:3], after[:3])
    context_changed = x.clone()
    context_changed[0, 1] = 1 - context_changed[0, 1]    # the frame before the window: read
    assert not torch.allclose(per_frame(context_changed)[2:], before[2:])
    # generating feeds nothing back either: each greedy frame is the greedy frame of the scoring state
    frames = model.decoder.generate(z, 4, context=x[:, :2], greedy=True)
    assert torch.equal(frames, model.decoder.frame.sample(model.decoder._states(x, z)[:, 2:], greedy=True))


def test_context_dropout_blanks_the_context_while_training():
    torch.manual_seed(0)
    config = SequenceConfig(keys=5, window=3, context=3, latent_dim=2, encoder_hidden=8, decoder_hidden=12,
                            made_hidden=10, context_dropout=1.0)
    model = build_sequence(config)
    x = (torch.rand(2, 6, 5) < 0.5).float()
    z = torch.randn(2, 2)
    blank = x.clone()
    blank[:, :3] = 0
    model.train()
    assert torch.allclose(model.decoder._states(x, z), model.decoder._states(blank, z))
    model.eval()                                          # scoring reads the context
    assert not torch.allclose(model.decoder._states(x, z), model.decoder._states(blank, z))
