"""Sequence VAEs: events are windows of binary frames ``(T, D)`` with a mask saying which frames count.

Knows nothing of music. A window may begin with ``context`` frames that the decoder reads but
does not score (the frames before the window in its piece), so that windows tiling a piece give
a proper likelihood of the whole piece: the product over windows of p(window | context).

A model is the core's :class:`chordvae.vae.VAE` (:func:`build_sequence`) over
:class:`chordvae.batch.Masked` windows ``x`` ``(N, T, D)`` with a bool mask ``(N, T)`` (True: a
frame that is scored):

- :class:`SequenceEncoder`: a bidirectional GRU over the window -> masked mean -> q(z | x) =
  N(mu, diag(sigma^2)).
- :class:`SequenceDecoder`, the likelihood: a GRU over frames, teacher-forced, conditioned on z
  (initial state and an input at every step); each frame is either independent Bernoulli over
  the D keys or a MADE over the keys in order (autoregressive within a frame, Germain et al. 2015).
- ``latent_dim`` 0 gives the same decoder without a latent (the ablation): the encoder then has
  no weights and gives a posterior with no dimensions, so the KL is 0.

Losses are in nats per window (summed over its scored frames), as the core's VAE gives nats
per example, so ``chordvae.train.fit`` and ``chordvae.vae.iwae_nll`` work unchanged.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .batch import Masked
from .priors import GaussianMixture
from .stepwise import build_stepwise
from .vae import VAE, ModelConfig, build_model, iwae_nll

OUTPUTS = ("made", "bernoulli")
#: how the encoder summarises its BiGRU: the mean over the scored frames, or the two ends (the
#: forward state at the last scored frame and the backward state at the first)
POOLINGS = ("mean", "ends")
#: what the decoder reads at each step of the window: the previous frame (teacher forcing in
#: training, its own output when generating) or nothing but z (frames independent given z and
#: the context, a conductor-like decoder that must put the window in z)
FEEDS = ("frames", "none")
#: a latent per window (one point z for the whole window) or per frame (z_t for every frame, a
#: state-space model: :mod:`chordvae.stepwise`)
LATENT_SCOPES = ("window", "frame")
ARCH = "sequence"
#: where the same decoder without a latent is stored beside a run (``RUN/no-latent/model.pt``)
ABLATION = "no-latent"
#: importance samples of ``evaluate`` on sequence runs
SEQUENCE_K = 100


def made_masks(d: int, hidden: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """MADE masks for ``d`` ordered binary units and one hidden layer of ``hidden`` units:
    input -> hidden ``(hidden, d)``, hidden -> output ``(d, hidden)`` and the direct input ->
    output connection ``(d, d)``, so that output i depends on inputs 0..i-1 only."""
    degree_in = torch.arange(d)                                    # input i is unit i
    degree_hidden = torch.arange(hidden) % max(d - 1, 1)           # each hidden unit sees inputs <= its degree
    in_hidden = (degree_hidden[:, None] >= degree_in[None, :]).float()
    hidden_out = (degree_in[:, None] > degree_hidden[None, :]).float()
    direct = (degree_in[:, None] > degree_in[None, :]).float()
    return in_hidden, hidden_out, direct


class MADE(nn.Module):
    """p(frame | h) = prod_i Bernoulli(x_i | x_<i, h) over ``d`` keys, for a context ``h``
    ``(..., context)``: one masked hidden layer, the context added to it and to the output."""

    def __init__(self, d: int, context: int, hidden: int):
        super().__init__()
        in_hidden, hidden_out, direct = made_masks(d, hidden)
        self.register_buffer("mask_in", in_hidden)
        self.register_buffer("mask_out", hidden_out)
        self.register_buffer("mask_direct", direct)
        self.w_in = nn.Parameter(torch.randn(hidden, d) / math.sqrt(d))
        self.w_out = nn.Parameter(torch.randn(d, hidden) / math.sqrt(hidden))
        self.w_direct = nn.Parameter(torch.zeros(d, d))
        self.context_hidden = nn.Linear(context, hidden)
        self.context_out = nn.Linear(context, d)
        self.d = d

    def logits(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Logits ``(..., d)`` of key i given keys < i of ``x`` ``(..., d)`` and context ``h``."""
        a = torch.relu(F.linear(x, self.w_in * self.mask_in) + self.context_hidden(h))
        return (F.linear(a, self.w_out * self.mask_out) + F.linear(x, self.w_direct * self.mask_direct)
                + self.context_out(h))

    def log_prob(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """log p(x | h) per frame, shape ``x.shape[:-1]``."""
        return -F.binary_cross_entropy_with_logits(self.logits(x, h), x, reduction="none").sum(-1)

    @torch.no_grad()
    def sample(self, h: torch.Tensor, greedy: bool = False,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Frames ``(..., d)`` drawn key by key (``greedy``: each key its more likely value)."""
        x = torch.zeros(*h.shape[:-1], self.d, device=h.device)
        a_ctx, o_ctx = self.context_hidden(h), self.context_out(h)
        w_in, w_out, w_direct = self.w_in * self.mask_in, self.w_out * self.mask_out, self.w_direct * self.mask_direct
        for i in range(self.d):
            a = torch.relu(F.linear(x, w_in) + a_ctx)
            logit = a @ w_out[i] + x @ w_direct[i] + o_ctx[..., i]
            if greedy:
                x[..., i] = (logit > 0).float()
            else:
                u = torch.rand(logit.shape, generator=generator, device=h.device)
                x[..., i] = (u < torch.sigmoid(logit)).float()
        return x


class BernoulliFrame(nn.Module):
    """p(frame | h): independent Bernoulli keys with logits linear in ``h``."""

    def __init__(self, d: int, context: int):
        super().__init__()
        self.linear = nn.Linear(context, d)

    def logits(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """Logits ``(..., d)`` of the keys given ``h`` (``x`` is not read: keys are independent)."""
        return self.linear(h)

    def log_prob(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        return -F.binary_cross_entropy_with_logits(self.logits(x, h), x, reduction="none").sum(-1)

    @torch.no_grad()
    def sample(self, h: torch.Tensor, greedy: bool = False,
               generator: torch.Generator | None = None) -> torch.Tensor:
        p = torch.sigmoid(self.linear(h))
        if greedy:
            return (p > 0.5).float()
        return (torch.rand(p.shape, generator=generator, device=h.device) < p).float()


@dataclass
class SequenceConfig:
    """A sequence model: ``keys`` per frame, windows of ``window`` scored frames after
    ``context`` unscored ones; GRU sizes ``encoder_hidden`` / ``decoder_hidden``; ``output``
    ``made`` (with ``made_hidden`` units) or ``bernoulli``; ``latent_dim`` 0: no latent;
    ``input_dropout``: while training, each previous frame the decoder reads is blanked with
    this probability (word dropout, Bowman et al. 2016: makes the decoder lean on z);
    ``context_dropout``: while training, a window's context is blanked with this probability (as
    at a piece's start), so that the decoder also learns to decode a window from z alone;
    ``dropout`` on the decoder's GRU outputs; ``pooling`` (:data:`POOLINGS`) and ``feed``
    (:data:`FEEDS`) as their constants say; ``prior_components`` K > 0: the prior is a mixture
    of K Gaussians (:class:`chordvae.priors.GaussianMixture`, the standard normal until training
    fits it to the codes), 0: N(0, I); ``latent_per`` (:data:`LATENT_SCOPES`): ``frame`` gives
    every frame its own ``latent_dim`` latents with a learned prior given the previous frames, a
    Gaussian or, with ``prior_components`` K > 0, a mixture of K (:mod:`chordvae.stepwise`;
    ``encoder_hidden`` is then its posterior's hidden layer). Configs
    stored without ``pooling``, ``feed`` or ``latent_per`` load as ``mean``, ``frames`` and
    ``window``, what they were trained with."""

    keys: int = 88
    window: int = 16
    context: int = 16
    latent_dim: int = 16
    encoder_hidden: int = 128
    decoder_hidden: int = 256
    output: str = "made"
    made_hidden: int = 256
    input_dropout: float = 0.0
    context_dropout: float = 0.0
    dropout: float = 0.0
    pooling: str = "ends"
    feed: str = "frames"
    prior_components: int = 0
    latent_per: str = "window"

    def validate(self) -> None:
        if self.output not in OUTPUTS:
            raise ValueError(f"unknown frame output {self.output!r}; choose from {', '.join(OUTPUTS)}")
        if self.pooling not in POOLINGS or self.feed not in FEEDS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)} and feed one of {', '.join(FEEDS)}")
        if self.window < 1 or self.context < 0 or self.latent_dim < 0 or self.keys < 1 or self.prior_components < 0:
            raise ValueError("a sequence model needs window >= 1, context >= 0, latent >= 0, keys >= 1 "
                             "and prior components >= 0")
        if not (0 <= self.input_dropout < 1 and 0 <= self.dropout < 1 and 0 <= self.context_dropout <= 1):
            raise ValueError("dropout rates must be in [0, 1)")
        if self.latent_per not in LATENT_SCOPES:
            raise ValueError(f"a latent per {self.latent_per!r}? choose from {', '.join(LATENT_SCOPES)}")
        if self.latent_per == "frame" and (self.feed != "frames" or self.context_dropout):
            raise ValueError("a latent per frame reads the previous frames: it takes no feed none or context dropout")

    @property
    def arch(self) -> str:
        return ARCH

    def to_dict(self) -> dict[str, Any]:
        """The fields, plus ``arch: "sequence"`` so that a checkpoint knows which family to build."""
        return {"arch": ARCH, **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SequenceConfig":
        return cls(**{"pooling": "mean", "feed": "frames", **{k: v for k, v in d.items() if k != "arch"}})


def build_any(config: dict[str, Any]) -> VAE:
    """The untrained model of a stored config: a sequence VAE (:func:`build_sequence`) when its
    ``arch`` is ``sequence``, else the core's VAE (:func:`chordvae.vae.build_model`)."""
    if config.get("arch") == ARCH:
        return build_sequence(SequenceConfig.from_dict(config))
    return build_model(ModelConfig.from_dict(config))


class SequenceEncoder(nn.Module):
    """q(z | scored frames): a bidirectional GRU over the scored frames, pooled as
    ``config.pooling`` says -> ``(B, 2 * latent_dim)``; with ``latent_dim`` 0 no weights and
    ``(B, 0)``."""

    def __init__(self, config: SequenceConfig):
        super().__init__()
        self.context, self.latent_dim, self.pooling = config.context, config.latent_dim, config.pooling
        if config.latent_dim:
            self.gru = nn.GRU(config.keys, config.encoder_hidden, batch_first=True, bidirectional=True)
            self.posterior = nn.Linear(2 * config.encoder_hidden, 2 * config.latent_dim)

    def forward(self, batch: Masked) -> torch.Tensor:
        x, m = batch.x[:, self.context:], batch.mask[:, self.context:].float()
        if not self.latent_dim:
            return x.new_zeros(len(x), 0)
        # packed: the backward direction starts at each window's last scored frame, not in its padding
        lengths = m.sum(1).clamp(min=1).long().cpu()
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, last = self.gru(packed)
        if self.pooling == "ends":   # forward state after the last scored frame, backward after the first
            return self.posterior(torch.cat([last[0], last[1]], -1))
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        pooled = (out * m.unsqueeze(-1)).sum(1) / m.sum(1, keepdim=True).clamp(min=1)
        return self.posterior(pooled)


def frame_output(config: SequenceConfig) -> nn.Module:
    """p(frame | decoder state, z): a MADE or independent Bernoulli over ``config.keys``, reading
    ``decoder_hidden + latent_dim`` numbers."""
    context = config.decoder_hidden + config.latent_dim
    if config.output == "made":
        return MADE(config.keys, context, config.made_hidden)
    return BernoulliFrame(config.keys, context)


class SequenceDecoder(nn.Module):
    """p(x | z) over masked windows, a :class:`chordvae.vae.Likelihood`: a GRU over the frames,
    conditioned on z ``(B, latent_dim)`` through its initial state and an input at every step,
    and a frame output (MADE or independent Bernoulli) on its state and z."""

    def __init__(self, config: SequenceConfig):
        super().__init__()
        c, d = config, config.keys
        self.config = config
        if c.latent_dim:
            self.initial = nn.Linear(c.latent_dim, c.decoder_hidden)
        self.gru = nn.GRU(d + c.latent_dim, c.decoder_hidden, batch_first=True)
        self.drop = nn.Dropout(c.dropout)
        self.frame = frame_output(c)

    def _states(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Decoder contexts ``(B, T, H + latent)``: frame t's from frames < t and z ``(B, latent)``."""
        prev = torch.cat([x.new_zeros(len(x), 1, x.shape[2]), x[:, :-1]], 1)
        if self.config.feed == "none":            # only the context is read: frames after it come from z
            prev[:, self.config.context + 1:] = 0
        if self.training and self.config.input_dropout > 0:
            keep = torch.rand(prev.shape[:2], device=x.device) >= self.config.input_dropout
            prev = prev * keep.unsqueeze(-1)
        c = self.config.context
        if self.training and c and self.config.context_dropout > 0:
            blank = torch.rand(len(x), device=x.device) < self.config.context_dropout
            prev[blank, :c + 1] = 0
        zt = z.unsqueeze(1).expand(-1, x.shape[1], -1)
        h0 = torch.tanh(self.initial(z)).unsqueeze(0) if self.config.latent_dim else None
        out, _ = self.gru(torch.cat([prev, zt], -1), h0)
        return torch.cat([self.drop(out), zt], -1)

    def log_prob(self, batch: Masked, z: torch.Tensor) -> torch.Tensor:
        """log p(x | z) summed over the scored frames, teacher-forced: ``(B,)`` for z
        ``(B, latent_dim)``, ``(S, B)`` for z ``(S, B, latent_dim)``."""
        lead = z.shape[:-1]
        x, mask = batch.x, batch.mask.float()
        if z.dim() == 3:                          # S draws: the batch S times over, as one batch
            x, mask = x.repeat(len(z), 1, 1), mask.repeat(len(z), 1)
            z = z.reshape(len(x), z.shape[-1])
        return (self.frame.log_prob(x, self._states(x, z)) * mask).sum(1).view(lead)

    @torch.no_grad()
    def greedy_matches(self, batch: Masked, z: torch.Tensor) -> torch.Tensor:
        """Whether greedy decoding from z ``(B, latent_dim)`` alone (blank context) gives each
        scored frame of ``batch`` once it gave every earlier one: ``(B, window)`` bool, True where
        not scored. One teacher-forced pass: by induction over the frames (and over the keys of a
        frame), a window decodes back exactly (:meth:`generate`, greedy) iff all its frames match."""
        c = self.config.context
        x = batch.x.clone()
        x[:, :c] = 0
        predicted = (self.frame.logits(x, self._states(x, z)) > 0).float()
        return (predicted == x).all(-1)[:, c:] | ~batch.mask[:, c:]

    @torch.no_grad()
    def generate(self, z: torch.Tensor, length: int, context: torch.Tensor | None = None,
                 greedy: bool = False, generator: torch.Generator | None = None) -> torch.Tensor:
        """Frames ``(B, length, keys)`` decoded from z ``(B, latent_dim)`` one at a time, each
        fed back (no teacher forcing; with ``feed none`` nothing is), after reading ``context``
        ``(B, C, keys)``; without one, the model's context is blank, as at a piece's start (and
        as context dropout trains it); ``greedy``: every key takes its more likely value, else
        keys are sampled."""
        b = len(z)
        h = torch.tanh(self.initial(z)).unsqueeze(0) if self.config.latent_dim else None
        prev = z.new_zeros(b, 1, self.config.keys)
        zt = z.unsqueeze(1)
        if context is None:
            context = z.new_zeros(b, self.config.context, self.config.keys)
        if context.shape[1]:
            inputs = torch.cat([prev, context[:, :-1]], 1)
            _, h = self.gru(torch.cat([inputs, zt.expand(-1, inputs.shape[1], -1)], -1), h)
            prev = context[:, -1:]
        frames = []
        for _ in range(length):
            out, h = self.gru(torch.cat([prev, zt], -1), h)
            frame = self.frame.sample(torch.cat([out, zt], -1), greedy=greedy, generator=generator)
            frames.append(frame)
            prev = frame if self.config.feed == "frames" else torch.zeros_like(frame)
        return torch.cat(frames, 1)

    def sample(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Sampled frames ``(N, window, keys)`` from z ``(N, latent_dim)`` alone (blank context)."""
        return self.generate(z, self.config.window, generator=generator)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        """Greedy frames ``(N, window, keys)`` from z alone (blank context, no teacher forcing): an
        autoregressive decoder has no per-key probabilities, so its most likely frames stand in."""
        return self.generate(z, self.config.window, greedy=True)


#: the first state-dict names of the sequence checkpoints written before the model was a core VAE
_RENAMED = {"encoder": "encoder.gru", "posterior": "encoder.posterior", "initial": "decoder.initial",
            "decoder": "decoder.gru", "frame": "decoder.frame"}


def _rename_old_keys(module: nn.Module, state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
    """A load_state_dict pre-hook: a state dict of the old layout (``frame.*`` at the top) is
    renamed in place to the core VAE's (``decoder.frame.*``, ...)."""
    if not any(k.startswith(prefix + "frame.") for k in state_dict):
        return
    for key in [k for k in state_dict if k.startswith(prefix)]:
        head, _, rest = key[len(prefix):].partition(".")
        if head in _RENAMED:
            state_dict[f"{prefix}{_RENAMED[head]}.{rest}"] = state_dict.pop(key)


def build_sequence(config: SequenceConfig) -> VAE:
    """An untrained sequence VAE: the core's VAE with a :class:`SequenceEncoder`, a
    :class:`SequenceDecoder` and the config's prior (it also loads the state dicts of the older
    sequence checkpoints); with a latent per frame, a :class:`chordvae.stepwise.StepwiseVAE`."""
    config.validate()
    if config.latent_per == "frame" and config.latent_dim:
        return build_stepwise(config, frame_output(config))
    mixture = config.prior_components and config.latent_dim
    prior = GaussianMixture(config.prior_components, config.latent_dim) if mixture else None
    model = VAE(config, SequenceEncoder(config), SequenceDecoder(config), prior)
    model.register_load_state_dict_pre_hook(_rename_old_keys)
    return model


def windows(pieces: list[torch.Tensor], window: int, context: int,
            stride: int | None = None) -> tuple[Masked, torch.Tensor]:
    """Cut every piece (``(T_i, D)`` tensors) into windows of ``window`` frames starting every
    ``stride`` frames (default ``window``: the windows tile the piece, every frame is scored in
    exactly one), each preceded by up to ``context`` frames of the same piece (zeros before its
    start); a window running past the piece's end is padded (mask False). Returns the windows
    ``(N, context + window, D)`` and the piece of each window ``(N,)``."""
    if not pieces:
        raise ValueError("no pieces to cut into windows")
    stride = stride or window
    d = pieces[0].shape[1]
    lengths = torch.tensor([len(p) for p in pieces])
    counts = (lengths - window).clamp(min=0).add(stride - 1).div(stride, rounding_mode="floor") + 1
    padded = torch.zeros(len(pieces), context + int(counts.max() - 1) * stride + window, d)
    for i, p in enumerate(pieces):      # one copy per piece, not per frame
        padded[i, context:context + len(p)] = p
    piece = torch.repeat_interleave(torch.arange(len(pieces)), counts)
    start = torch.cat([torch.arange(int(n)) for n in counts]) * stride          # in unpadded frames
    offsets = torch.arange(context + window)
    x = padded[piece[:, None], start[:, None] + offsets[None, :]]                # (N, C + W, D)
    frame = start[:, None] + offsets[None, :] - context                            # frame index in its piece
    mask = (offsets[None, :] >= context) & (frame < lengths[piece][:, None])
    return Masked(x, mask), piece


@torch.no_grad()
def sequence_nll(model: VAE, data: Masked, k: int, batch_size: int = 256,
                 generator: torch.Generator | None = None) -> dict[str, float]:
    """NLL per scored frame in nats over ``data``: the sum over windows of the K-sample IWAE bound
    on -log p(window | context) (K = 1: the negative ELBO) divided by the number of scored frames;
    ``elbo`` is the negative ELBO per frame with one draw, ``kl`` its KL part per frame."""
    frames = data.frames
    bound = iwae_nll(model, data, k, batch_size=max(1, batch_size // max(1, min(k, 128) // 8)),
                     generator=generator).sum().item()
    rec = kl = 0.0
    for i in range(0, len(data), batch_size):
        out = model.loss(data[i:i + batch_size], generator=generator)
        rec += out.reconstruction.sum().item()
        kl += out.kl.sum().item()
    return {"iwae": bound / frames, "k": k, "elbo": (rec + kl) / frames, "kl": kl / frames, "frames": frames}


@torch.no_grad()
def reconstruction(model: VAE, data: Masked, with_context: bool = False, searched: bool = False,
                   batch_size: int = 512) -> dict[str, float]:
    """Decode each window's posterior mean greedily without teacher forcing, from z alone (a blank
    context, as at a piece's start; or, ``with_context``, after reading the frames before the
    window): the share of scored frames reproduced exactly, and F1 over sounding keys.
    ``searched``: from the points :func:`exact_points` finds instead of the means (adds the share of
    windows that decode back whole)."""
    c = model.config.context
    exact = tp = fp = fn = whole = 0.0
    for i in range(0, len(data), batch_size):
        b = data[i:i + batch_size]
        x, m = b.x[:, c:], b.mask[:, c:].float()
        if searched:
            mu, found = exact_points(model, b)
            whole += found.sum().item()
        else:
            mu, _ = model.encode(b)
        y = model.decoder.generate(mu, x.shape[1], context=b.x[:, :c] if with_context else None, greedy=True)
        exact += (((y == x).all(-1).float()) * m).sum().item()
        w = m.unsqueeze(-1)
        tp += (y * x * w).sum().item()
        fp += (y * (1 - x) * w).sum().item()
        fn += ((1 - y) * x * w).sum().item()
    out = {"exact_frames": exact / data.frames, "key_f1": 2 * tp / max(2 * tp + fp + fn, 1.0)}
    return out | ({"exact_windows": whole / len(data)} if searched else {})


def exact_points(model: VAE, data: Masked, steps: int = 200,
                 learning_rate: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """Latent points ``(B, latent_dim)`` that decode back to the windows of ``data`` greedily
    from z alone (blank context, no teacher forcing: :meth:`SequenceDecoder.greedy_matches`), and
    whether each does ``(B,)``: from the posterior mean, Adam steps on
    log p(x, z) (teacher-forced, so differentiable), each window keeping the first point that
    decodes back; a window for which none is found in ``steps`` keeps its posterior mean. With a
    latent per frame each frame keeps the first z_t that gives it back (given the frames before
    it, which is all greedy decoding needs), so a window is found once all its frames are; frames
    the steps do not find are then searched among draws from their prior
    (:meth:`chordvae.stepwise.StepwiseVAE.search_frames`).
    Inference in the model, not a change to it: the encoder's mean is a fast guess of that point."""
    model.eval()
    per_frame = model.config.latent_per == "frame"

    def matched(z: torch.Tensor) -> torch.Tensor:           # (B, units): frames, or the whole window
        matches = model.decoder.greedy_matches(data, z)
        return matches if per_frame else matches.all(1, keepdim=True)

    with torch.no_grad():
        mu = model.encode(data)[0]
    best, found = mu.clone(), matched(mu)
    units = found.shape[1]
    z = mu.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([z], lr=learning_rate)
    for _ in range(steps):
        if found.all():
            break
        with torch.enable_grad():
            objective = -model.log_joint(data, z).sum()
            z.grad, = torch.autograd.grad(objective, z)
        optimizer.step()
        new = matched(z.detach()) & ~found
        best.view(len(best), units, -1)[new] = z.detach().view(len(z), units, -1)[new]
        found = found | new
    if per_frame and not found.all():
        best, found = model.search_frames(data, best, found)
    return best, found.all(1)


def frames_of(data: Masked) -> torch.Tensor:
    """The scored frames of ``data``, ``(F, D)``."""
    return data.x[data.mask]


@torch.no_grad()
def sequence_report(model: VAE, train: Masked, x: Masked, k: int, seed: int = 0,
                    ablation: VAE | None = None, train_groups: torch.Tensor | None = None,
                    frame_model: VAE | None = None) -> dict[str, Any]:
    """``evaluate`` for a sequence run, in nats per frame over the scored frames of ``x``: the
    K-sample bound and the ELBO, per-dimension KL and active units, reconstruction from z
    alone (from the posterior means, and from the points :func:`exact_points` searches), and beside them the baselines fitted on the scored frames of ``train`` (windows that
    should tile the training pieces; ``train_groups`` ``(N_train,)`` their pieces): independent
    Bernoulli, the n-gram over frames (:class:`chordvae.baselines.FrameNGram`, orders 1-4 and
    smoothing by cross-validation over the pieces), and when given ``ablation`` (the same
    decoder without a latent) and ``frame_model`` (a VAE of single frames scoring each frame
    alone: :mod:`chordvae.frame_vae`)."""
    from .baselines import FrameNGram, IndependentBernoulli
    from .evaluate import latent_diagnostics
    from .frame_vae import frame_vae_nll

    model.eval()
    generator = torch.Generator().manual_seed(seed)
    report: dict[str, Any] = {"kind": "sequence", "windows": len(x), "frames": x.frames,
                              "window": model.config.window, "context": model.config.context,
                              "latent_per": model.config.latent_per}
    report["nll"] = sequence_nll(model, x, k, generator=generator)
    if model.latent_dim:
        report["latent"] = latent_diagnostics(model, x)
        report["reconstruction"] = reconstruction(model, x)
        report["reconstruction_searched"] = reconstruction(model, x, searched=True)
        if model.config.context:
            report["reconstruction_with_context"] = reconstruction(model, x, with_context=True)
    bernoulli = IndependentBernoulli().fit(frames_of(train))
    baselines = {"independent Bernoulli": bernoulli.nll(frames_of(x)).mean().item()}
    ngram = FrameNGram().fit(train, train_groups)
    baselines[f"n-gram, order {ngram.order}"] = ngram.nll(x).mean().item()
    report["ngram"] = {"order": ngram.order, "discounts": list(ngram.discounts), "folds": ngram.folds,
                       "cv": {str(order): v for order, v in ngram.cv.items()}}
    if ablation is not None:
        baselines["same decoder, no latent"] = sequence_nll(ablation, x, 1)["iwae"]
    if frame_model is not None:
        baselines["VAE per frame (IWAE)"] = frame_vae_nll(frame_model, frames_of(x), seed=seed)
    report["baselines"] = baselines
    return report


def format_sequence_report(report: dict[str, Any]) -> str:
    """The sequence report as a readable table (nats per frame)."""
    from .evaluate import kl_dims_text

    n = report["nll"]
    rows = [f"{report['frames']} frames in {report['windows']} windows of {report['window']} "
            f"(after {report['context']} context frames); nats per frame",
            f"  negative ELBO              {n['elbo']:10.4f}",
            f"    KL                       {n['kl']:10.4f}",
            f"  IWAE bound, K={n['k']:<11d}{n['iwae']:10.4f}"]
    if "latent" in report:
        lat, rec = report["latent"], report["reconstruction"]
        per = report.get("latent_per", "window")
        rows += [f"  active latent units        {lat['active_units']:4d} of {lat['latent_dim']} per {per}   "
                 f"{kl_dims_text(lat, f', nats per {per}')}",
                 "  from z alone (posterior mean, greedy, no teacher forcing):",
                 f"    frames exactly right     {rec['exact_frames']:10.4f}",
                 f"    F1 over sounding keys    {rec['key_f1']:10.4f}"]
        if "reconstruction_searched" in report:
            rs = report["reconstruction_searched"]
            rows += ["  from a point that decodes back, searched from the mean (exact_points; greedy):",
                     f"    frames exactly right     {rs['exact_frames']:10.4f}",
                     f"    windows exactly right    {rs['exact_windows']:10.4f}"]
        if "reconstruction_with_context" in report:
            rc = report["reconstruction_with_context"]
            rows += [f"  from z after the {report['context']} frames before the window (greedy):",
                     f"    frames exactly right     {rc['exact_frames']:10.4f}",
                     f"    F1 over sounding keys    {rc['key_f1']:10.4f}"]
    rows.append("  NLL per frame, lower is better:")
    ranking = sorted([(f"sequence VAE (IWAE, K={n['k']})", n["iwae"])] + list(report["baselines"].items()),
                     key=lambda r: -r[1])
    rows += [f"    {name:26s} {value:10.4f}" for name, value in ranking]
    if "ngram" in report:
        g = report["ngram"]
        rows.append(f"  (n-gram: interpolated absolute discounting, discounts {', '.join(f'{d:g}' for d in g['discounts'])}"
                    f", order and discounts chosen by {g['folds']}-fold cross-validation over the training pieces)")
    return "\n".join(rows)
