"""A latent per frame: the sequence VAE as a state-space model. Knows nothing of music.

With ``SequenceConfig(latent_per="frame")`` every scored frame t of a window has its own latent
z_t of ``latent_dim`` dimensions (a window's point is the ``window * latent_dim`` numbers of its
frames, frame by frame), as in the deep Markov model (Krishnan et al. 2017), the VRNN (Chung et
al. 2015) and the SRNN (Fraccaro et al. 2016):

- p(x, z) = prod_t p(z_t | x_<t) p(x_t | x_<t, z_t): a GRU over the previous frames gives a
  state h_t (teacher-forced in training, with word dropout); a learned prior over z_t (a
  Gaussian, or a mixture of ``prior_components`` Gaussians, from h_t) and the frame's output (MADE
  or independent Bernoulli) read it, the output with z_t.
- q(z_t | x_<=t) = N(mu, sigma^2) from h_t and the frame x_t (a small MLP).

So each frame is a continuous mixture of frame outputs, and the true posterior factorises over
the frames as q does. The importance-weighted bound is therefore taken frame by frame (K draws
of z_t for each frame; the product of the frames' unbiased estimates is unbiased for the window),
which is far tighter than K draws of a whole window's latents. Decoding a window from its
latents alone (no teacher forcing) runs the GRU on its own output, each frame greedy given z_t.
Free bits keep z_t in use: without them the GRU predicts the frame and z_t collapses
(benchmarks/README.md, "Choosing the latent per frame").
"""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import nn

from .batch import Masked
from .priors import LOG_2PI, gaussian_kl, log_normal, marginal_kl
from .vae import VAE, Losses

if TYPE_CHECKING:
    from .sequence import SequenceConfig


class FramePosterior(nn.Module):
    """q(z_t | h_t, x_t): ``(..., hidden + keys)`` -> mean and log-variance, ``(..., 2 * latent)``."""

    def __init__(self, state: int, keys: int, hidden: int, latent: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(state + keys, hidden), nn.Tanh(), nn.Linear(hidden, 2 * latent))

    def forward(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([h, x], -1))


class ConditionalPrior(nn.Module):
    """p(z_t | h_t): a diagonal Gaussian, or a mixture of ``components`` of them, whose weights,
    means and log-variances are linear in the state h_t. Parameters are a tuple ``(logits, mu,
    logvar)``: ``(..., K)`` (None for one Gaussian) and ``(..., K, latent)`` each."""

    def __init__(self, state: int, latent: int, components: int):
        super().__init__()
        self.k, self.latent = max(components, 1), latent
        self.net = nn.Linear(state, self.k * 2 * latent + (self.k if self.k > 1 else 0))

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        out = self.net(h)
        logits = out[..., :self.k] if self.k > 1 else None
        mu, logvar = out[..., -2 * self.k * self.latent:].unflatten(-1, (self.k, 2 * self.latent)).chunk(2, -1)
        return logits, mu, logvar

    @staticmethod
    def log_prob(z: torch.Tensor, params: tuple) -> torch.Tensor:
        """log p(z_t | h_t) for ``z`` ``(..., latent)`` (leading draws broadcast), shape ``z.shape[:-1]``."""
        logits, mu, logvar = params
        per_component = log_normal(z.unsqueeze(-2), mu, logvar)
        if logits is None:
            return per_component[..., 0]
        return torch.logsumexp(torch.log_softmax(logits, -1) + per_component, -1)

    @staticmethod
    def kl(mu: torch.Tensor, logvar: torch.Tensor, params: tuple) -> torch.Tensor | None:
        """KL(N(mu, exp(logvar)) || p(z_t | h_t)) per dimension ``(..., latent)`` for one Gaussian;
        None for a mixture (no closed form)."""
        logits, prior_mu, prior_logvar = params
        return None if logits is not None else gaussian_kl(mu, logvar, prior_mu[..., 0, :], prior_logvar[..., 0, :])

    @classmethod
    def dimension_kl(cls, mu: torch.Tensor, logvar: torch.Tensor, params: tuple) -> torch.Tensor:
        """KL per dimension for reports: :meth:`kl`, or for a mixture the marginal one
        (:func:`chordvae.priors.marginal_kl`)."""
        exact = cls.kl(mu, logvar, params)
        if exact is not None:
            return exact
        return marginal_kl(mu, logvar, *params, generator=torch.Generator(device=mu.device).manual_seed(0))

    @staticmethod
    def sample(params: tuple, generator: torch.Generator | None = None) -> torch.Tensor:
        """One draw ``(..., latent)``."""
        logits, mu, logvar = params
        if logits is None:
            index = torch.zeros(mu.shape[:-2], dtype=torch.long, device=mu.device)
        else:
            flat = torch.softmax(logits, -1).reshape(-1, logits.shape[-1])
            index = torch.multinomial(flat, 1, generator=generator).view(logits.shape[:-1])
        pick = index[..., None, None].expand(*index.shape, 1, mu.shape[-1])
        mu, logvar = mu.gather(-2, pick)[..., 0, :], logvar.gather(-2, pick)[..., 0, :]
        return mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=generator, device=mu.device)


class StepwiseDecoder(nn.Module):
    """The generative side: the GRU over previous frames, the prior p(z_t | h_t) and the frame
    output p(x_t | h_t, z_t). Latent points are ``(B, window * latent_dim)``, frame by frame."""

    def __init__(self, config: SequenceConfig, frame: nn.Module):
        super().__init__()
        self.config = config
        self.gru = nn.GRU(config.keys, config.decoder_hidden, batch_first=True)
        self.drop = nn.Dropout(config.dropout)
        self.prior = ConditionalPrior(config.decoder_hidden, config.latent_dim, config.prior_components)
        self.frame = frame

    def states(self, x: torch.Tensor) -> torch.Tensor:
        """States ``(B, T, hidden)``: frame t's from frames < t of ``x`` ``(B, T, keys)`` (in training
        each previous frame is blanked with probability ``input_dropout``)."""
        prev = torch.cat([x.new_zeros(len(x), 1, x.shape[2]), x[:, :-1]], 1)
        if self.training and self.config.input_dropout > 0:
            prev = prev * (torch.rand(prev.shape[:2], device=x.device) >= self.config.input_dropout).unsqueeze(-1)
        return self.drop(self.gru(prev)[0])

    def frames_of(self, z: torch.Tensor) -> torch.Tensor:
        """``(B, window * latent_dim)`` -> ``(B, window, latent_dim)``."""
        return z.view(len(z), self.config.window, self.config.latent_dim)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, length: int, context: torch.Tensor | None = None,
                 greedy: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        """Frames ``(B, length, keys)`` from latents ``z`` ``(B, length * latent_dim)``, each fed
        back (no teacher forcing) after reading ``context`` ``(B, C, keys)`` (default: blank, as at
        a piece's start); ``greedy``: every key its more likely value, else sampled."""
        return self.unroll(z, length, context, greedy, generator)[0]

    @torch.no_grad()
    def unroll(self, z: torch.Tensor | None, length: int, context: torch.Tensor | None = None,
               greedy: bool = False, generator: torch.Generator | None = None,
               n: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """:meth:`generate`; with ``z`` None, for ``n`` windows whose latents are drawn from the
        prior as they go (ancestral sampling). Returns the frames and the latents used
        ``(B, length * latent_dim)``."""
        c = self.config
        b = n if z is None else len(z)
        device = self.prior.net.weight.device
        if context is None:
            context = torch.zeros(b, c.context, c.keys, device=device)
        h = None
        prev = torch.zeros(b, 1, c.keys, device=device)
        if context.shape[1]:
            _, h = self.gru(torch.cat([prev, context[:, :-1]], 1), h)
            prev = context[:, -1:]
        zs = None if z is None else z.view(b, length, c.latent_dim)
        frames, used = [], []
        for t in range(length):
            out, h = self.gru(prev, h)
            if zs is None:
                zt = self.prior.sample(self.prior(out), generator)
            else:
                zt = zs[:, t:t + 1]
            prev = self.frame.sample(torch.cat([out, zt], -1), greedy=greedy, generator=generator)
            frames.append(prev)
            used.append(zt)
        return torch.cat(frames, 1), torch.cat(used, 1).flatten(1)

    @torch.no_grad()
    def greedy_matches(self, batch: Masked, z: torch.Tensor) -> torch.Tensor:
        """Whether greedy decoding from latents ``z`` ``(B, window * latent_dim)`` alone (blank
        context) gives each scored frame of ``batch`` once it gave every earlier one: ``(B, window)``
        bool, True where not scored; one teacher-forced pass (see
        :meth:`chordvae.sequence.SequenceDecoder.greedy_matches`)."""
        c = self.config.context
        x = batch.x.clone()
        x[:, :c] = 0
        return self.frame_matches(x[:, c:], self.states(x)[:, c:], self.frames_of(z)) | ~batch.mask[:, c:]

    def frame_matches(self, x: torch.Tensor, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Whether greedy decoding from states ``h`` ``(..., hidden)`` and latents ``z``
        ``(..., latent_dim)`` gives the frames ``x`` ``(..., keys)``: ``x.shape[:-1]`` bool."""
        return ((self.frame.logits(x, torch.cat([h, z], -1)) > 0).float() == x).all(-1)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        """Greedy frames ``(N, window, keys)`` from latents ``z`` ``(N, window * latent_dim)`` alone."""
        return self.generate(z, self.config.window, greedy=True)

    def sample(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Frames ``(N, window, keys)`` sampled given latents ``z`` (blank context)."""
        return self.generate(z, self.config.window, generator=generator)


class StepwiseVAE(VAE):
    """The core's VAE with a latent per frame (see the module docstring): ``latent_dim`` is
    ``window * config.latent_dim``; losses are nats per window, as for every sequence VAE."""

    @property
    def latent_dim(self) -> int:
        return self.config.window * self.config.latent_dim

    @property
    def kl_closed_form(self) -> bool:
        return self.decoder.prior.k == 1

    def refit_modules(self) -> list[nn.Module]:
        """Only the prior p(z_t | h_t): refitting q(z_t) to the plain ELBO let the GRU take over and
        z_t collapse (trials on JSB, issue 16's closing note), while a prior fitted to the
        posteriors that free bits trained costs the codes less and leaves what they decode to as
        it is (benchmarks/README.md, "A latent per beat")."""
        return [self.decoder.prior]

    def terms(self, batch: Masked) -> tuple[torch.Tensor, tuple, torch.Tensor, torch.Tensor, torch.Tensor]:
        """For the window's positions (after the context): states ``h`` ``(B, W, hidden)``, the
        prior's parameters (:class:`ConditionalPrior`), the posterior's means and log-variances
        ``(B, W, latent)`` and the scored-frame mask ``(B, W)`` as floats."""
        c = self.config.context
        h = self.decoder.states(batch.x)[:, c:]
        mu, logvar = self.encoder(h, batch.x[:, c:]).chunk(2, -1)
        return h, self.decoder.prior(h), mu, logvar, batch.mask[:, c:].float()

    def encode(self, x: Masked) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior means and log-variances, each ``(B, window * latent_dim)``, frame by frame."""
        _, _, mu, logvar, _ = self.terms(x)
        return mu.flatten(1), logvar.flatten(1)

    def codes(self, x: Masked) -> tuple[torch.Tensor, torch.Tensor]:
        """Per scored frame of ``x`` (F of them): posterior means ``(F, latent_dim)`` and
        KL(q(z_t) || p(z_t | h_t)) per dimension ``(F, latent_dim)`` (a mixture prior: the marginal
        one, :meth:`ConditionalPrior.dimension_kl`)."""
        _, (logits, prior_mu, prior_logvar), mu, logvar, mask = self.terms(x)
        scored = mask.bool()
        prior = (None if logits is None else logits[scored], prior_mu[scored], prior_logvar[scored])
        return mu[scored], self.decoder.prior.dimension_kl(mu[scored], logvar[scored], prior)

    def _frame_log_px(self, x: torch.Tensor, h: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x_t | h_t, z_t) ``(S, B, W)`` for draws ``z`` ``(S, B, W, latent)``."""
        s = len(z)
        return self.decoder.frame.log_prob(x.expand(s, *x.shape), torch.cat([h.expand(s, *h.shape), z], -1))

    def _draws(self, x: Masked, terms: tuple, mu: torch.Tensor, logvar: torch.Tensor, samples: int,
               generator: torch.Generator | None) -> tuple[torch.Tensor, torch.Tensor]:
        """For ``samples`` draws z ~ q(mu, logvar) ``(S, B, W, latent)``, per frame ``(S, B, W)``:
        log p(x_t | h_t, z_t) and log p(z_t | h_t) - log q(z_t), both 0 where a frame is not
        scored (``terms``: :meth:`terms` of ``x``)."""
        h, prior, _, _, mask = terms
        eps = torch.randn((samples, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + (0.5 * logvar).exp() * eps
        log_px = self._frame_log_px(x.x[:, self.config.context:], h, z) * mask
        log_q = -0.5 * (eps.pow(2) + logvar + LOG_2PI).sum(-1)
        return log_px, (self.decoder.prior.log_prob(z, prior) - log_q) * mask

    def log_weights(self, x: Masked, mu: torch.Tensor, logvar: torch.Tensor, samples: int,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Per frame: ``(log p(x_t | h_t, z_t), log p(z_t | h_t) - log q(z_t))``, each
        ``(samples, B, window)``, 0 where a frame is not scored (the core's IWAE then weighs
        each frame on its own and adds the frames up)."""
        return self._draws(x, self.terms(x), self.decoder.frames_of(mu), self.decoder.frames_of(logvar),
                           samples, generator)

    def loss(self, x: Masked, beta: float = 1.0, samples: int = 1, free_bits: float = 0.0,
             generator: torch.Generator | None = None) -> Losses:
        """Negative ELBO per window: reconstruction (mean over ``samples`` draws) + beta * KL, the KL
        in closed form frame by frame (a mixture prior: estimated from the draws); ``free_bits``
        floors each latent dimension's KL per scored frame, averaged over the batch's frames (a
        mixture prior: the whole KL per frame, at ``free_bits * latent_dim``)."""
        terms = self.terms(x)
        _, prior, mu, logvar, mask = terms
        log_px, log_ratio = self._draws(x, terms, mu, logvar, samples, generator)
        rec = -log_px.sum(-1).mean(0)
        kl_dims = self.decoder.prior.kl(mu, logvar, prior)
        if kl_dims is not None:
            kl_dims = kl_dims * mask.unsqueeze(-1)                       # (B, W, latent)
        else:
            kl_dims = -log_ratio.mean(0).unsqueeze(-1)                   # (B, W, 1): the whole KL per frame
        kl = kl_dims.sum((1, 2))
        if free_bits > 0:
            frames = mask.sum().clamp(min=1)
            floor = free_bits * self.config.latent_dim / kl_dims.shape[-1]
            kl_train = ((kl_dims.sum((0, 1)) / frames).clamp(min=floor).sum() * frames / len(mask)).expand_as(kl)
        else:
            kl_train = kl
        return Losses(rec + beta * kl_train, rec, kl)

    def log_joint(self, x: Masked, z: torch.Tensor) -> torch.Tensor:
        """log p(x, z) = sum_t log p(x_t | h_t, z_t) + log p(z_t | h_t) over the scored frames,
        ``(B,)`` for latents ``z`` ``(B, window * latent_dim)``."""
        h, prior, _, _, mask = self.terms(x)
        z = self.decoder.frames_of(z)
        log_px = self._frame_log_px(x.x[:, self.config.context:], h, z.unsqueeze(0))[0]
        return ((log_px + self.decoder.prior.log_prob(z, prior)) * mask).sum(1)

    @torch.no_grad()
    def search_frames(self, x: Masked, z: torch.Tensor, found: torch.Tensor, draws: int = 2048,
                      widen: float = 2.0, chunk: int = 128) -> tuple[torch.Tensor, torch.Tensor]:
        """Latents for the frames of ``x`` that ``z`` ``(B, window * latent_dim)`` does not give
        back (``found`` ``(B, window)`` False): ``draws`` draws per frame from its prior
        p(z_t | h_t) with standard deviations ``widen`` times wider (the frames before it as
        they are), each frame keeping the draw that gives it back greedily with the highest
        density under the prior itself. Returns the latents and ``found`` with those frames
        added; the draws come from a generator seeded with 0 (the same answer every time)."""
        generator = torch.Generator(device=z.device).manual_seed(0)
        h, prior, _, _, mask = self.terms(x)
        todo = ~found & mask.bool()
        z, found = self.decoder.frames_of(z).clone(), found.clone()
        if not todo.any():
            return z.flatten(1), found
        frames, h = x.x[:, self.config.context:][todo], h[todo]
        prior = tuple(None if p is None else p[todo] for p in prior)
        wide = (prior[0], prior[1], prior[2] + 2 * math.log(widen))
        best = torch.full((len(frames),), -math.inf, device=z.device)
        chosen = z[todo]
        for start in range(0, draws, chunk):
            n = min(chunk, draws - start)
            zs = self.decoder.prior.sample(tuple(None if p is None else p.expand(n, *p.shape) for p in wide),
                                           generator)
            score = self.decoder.prior.log_prob(zs, prior).masked_fill(
                ~self.decoder.frame_matches(frames.expand(n, *frames.shape), h.expand(n, *h.shape), zs), -math.inf)
            top, pick = score.max(0)
            better = top > best
            chosen[better] = zs[pick, torch.arange(len(pick), device=z.device)][better]
            best = torch.maximum(best, top)
        z[todo] = chosen
        found[todo] = best > -math.inf
        return z.flatten(1), found

    @torch.no_grad()
    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` latent points ``(n, window * latent_dim)`` drawn frame by frame from p(z_t | h_t),
        each frame decoded greedily and fed back: decoding a point (``decode_mean``) gives those
        frames again."""
        return self.decoder.unroll(None, self.config.window, greedy=True, generator=generator, n=n)[1]


def build_stepwise(config: SequenceConfig, frame: nn.Module) -> StepwiseVAE:
    """An untrained sequence VAE with a latent per frame, its frame output ``frame`` (reading the
    GRU state and z_t)."""
    encoder = FramePosterior(config.decoder_hidden, config.keys, config.encoder_hidden, config.latent_dim)
    return StepwiseVAE(config, encoder, StepwiseDecoder(config, frame))
