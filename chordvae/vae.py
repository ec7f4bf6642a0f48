"""The VAE core: encoder -> (mu, logvar) -> z = mu + sigma * eps -> decoder -> log p(x | z).

Knows nothing of digits or music. An *event* is one example of any shape (an image
``(1, 28, 28)``, a chord vector ``(12,)``, a masked sequence of frames); sets of events are
tensors or :class:`chordvae.batch.Batch` objects. The decoder is a :class:`Likelihood`: the
training, IWAE and evaluation code use nothing else of it. The mlp and conv decoders model
values in [0, 1] as independent Bernoulli variables. Losses are in nats per example.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Callable, NamedTuple, Protocol

import torch
import torch.nn.functional as F
from torch import nn

from .batch import Events
from .priors import LOG_2PI, StandardNormal, log_normal


@dataclass
class ModelConfig:
    """Everything needed to rebuild a model: stored in every checkpoint.

    arch: ``"conv"`` (the Keras example; events ``(C, H, W)`` with H, W divisible by 4)
    or ``"mlp"`` (any event shape, flattened). ``hidden`` is the MLP's hidden sizes,
    encoder side; the decoder mirrors them.
    """

    arch: str
    event_shape: tuple[int, ...]
    latent_dim: int = 2
    hidden: tuple[int, ...] = (400,)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        return cls(arch=d["arch"], event_shape=tuple(d["event_shape"]),
                   latent_dim=int(d["latent_dim"]), hidden=tuple(d.get("hidden", ())))


class Losses(NamedTuple):
    """Per-example losses in nats, each of shape ``(B,)``; ``loss`` = reconstruction + beta * kl."""

    loss: torch.Tensor
    reconstruction: torch.Tensor
    kl: torch.Tensor


def reparameterize(mu: torch.Tensor, logvar: torch.Tensor,
                   generator: torch.Generator | None = None) -> torch.Tensor:
    """z = mu + exp(logvar / 2) * eps with eps ~ N(0, I); gradients flow to mu and logvar."""
    eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
    return mu + torch.exp(0.5 * logvar) * eps


def bernoulli_nll(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """-log p(x | logits) summed over all event dimensions, shape ``(B,)`` (from logits: stable)."""
    nll = F.binary_cross_entropy_with_logits(logits, x, reduction="none")
    return nll.flatten(1).sum(1)


class Likelihood(Protocol):
    """What a VAE's decoder is: p(x | z) for latent points ``z`` of shape ``(B, latent_dim)`` or
    ``(S, B, latent_dim)`` (S draws for each of B events)."""

    def log_prob(self, x: Events, z: torch.Tensor) -> torch.Tensor:
        """log p(x_b | z_b) in nats: shape ``(B,)``, or ``(S, B)`` for ``z`` ``(S, B, latent_dim)``
        (each of the S draws scores the same ``x``)."""
        ...

    def sample(self, z: torch.Tensor, generator: torch.Generator | None = None) -> Events:
        """Events x ~ p(x | z), one per latent point ``z`` ``(N, latent_dim)``."""
        ...

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        """E[x | z] for ``z`` ``(N, latent_dim)`` (Bernoulli: the probabilities), where the
        likelihood has a closed-form one."""
        ...


class BernoulliLikelihood(nn.Module):
    """Independent Bernoulli variables: a subclass's ``forward`` maps ``z`` ``(N, latent_dim)`` to
    logits with ``prod(event_shape)`` entries per row, and sets ``event_shape``."""

    event_shape: tuple[int, ...]

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """Logits ``(*z.shape[:-1], *event_shape)``."""
        flat = z.reshape(-1, z.shape[-1])
        return self(flat).view(*z.shape[:-1], *self.event_shape)

    def log_prob(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        lead = z.shape[:-1]
        logits = self.logits(z.reshape(-1, z.shape[-1]))
        target = x.expand(*lead, *self.event_shape).reshape(logits.shape)
        return -bernoulli_nll(logits, target).view(lead)

    def mean(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(z))

    def sample(self, z: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.bernoulli(self.mean(z), generator=generator)


class BernoulliDecoder(BernoulliLikelihood):
    """Any network ``z (N, latent_dim) -> logits (N, ...)`` as an independent Bernoulli decoder."""

    def __init__(self, net: nn.Module, event_shape: tuple[int, ...]):
        super().__init__()
        self.net = net
        self.event_shape = tuple(event_shape)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ArchitectureConfig(Protocol):
    """What a model family's configuration gives the core (:class:`ModelConfig` for the mlp and
    conv families, :class:`chordvae.sequence.SequenceConfig` for sequences): its latent size, its
    ``arch`` name and a JSON form that rebuilds it."""

    latent_dim: int

    @property
    def arch(self) -> str: ...

    def to_dict(self) -> dict: ...


class VAE(nn.Module):
    """A VAE from an encoder ``events -> (B, 2 * latent_dim)`` and a decoder that is a
    :class:`Likelihood` (and a module)."""

    def __init__(self, config: ArchitectureConfig, encoder: nn.Module, decoder: nn.Module,
                 prior: StandardNormal | None = None):
        super().__init__()
        self.config = config
        self.encoder = encoder
        self.decoder = decoder
        self.prior = prior if prior is not None else StandardNormal()

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    def encode(self, x: Events) -> tuple[torch.Tensor, torch.Tensor]:
        """Posterior mean and log-variance of q(z|x), each ``(B, latent_dim)``."""
        h = self.encoder(x)
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar

    @property
    def kl_closed_form(self) -> bool:
        """Whether the KL has a closed form per latent dimension (not for a mixture prior)."""
        return self.prior.closed_form

    def refit_modules(self) -> list[nn.Module]:
        """What a refit epoch (``TrainConfig.refit_epochs``) trains to the plain ELBO, everything
        else frozen as it is evaluated: the posterior and the prior."""
        return [self.encoder, self.prior]

    def codes(self, x: Events) -> tuple[torch.Tensor, torch.Tensor]:
        """What latent diagnostics count, per example of ``x``: posterior means ``(B, latent_dim)``
        and the KL per dimension ``(B, latent_dim)`` (a mixture prior: the marginal one,
        :func:`chordvae.priors.marginal_kl`)."""
        mu, logvar = self.encode(x)
        return mu, self.prior.dimension_kl(mu, logvar)

    def log_joint(self, x: Events, z: torch.Tensor) -> torch.Tensor:
        """log p(x, z) = log p(x | z) + log p(z) in nats per example, ``(B,)`` for z ``(B, latent_dim)``."""
        return self.decoder.log_prob(x, z) + self.prior.log_prob(z)

    def decode_mean(self, z: torch.Tensor) -> torch.Tensor:
        """The decoded events E[x | z] for ``z`` ``(N, latent_dim)``: Bernoulli probabilities
        ``(N, *event_shape)`` for the mlp and conv decoders."""
        return self.decoder.mean(z)

    def log_weights(self, x: Events, mu: torch.Tensor, logvar: torch.Tensor, samples: int,
                    generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``samples`` draws z ~ q(z|x) for each example of ``x`` (posterior ``mu``, ``logvar``):
        ``(log p(x|z), log p(z) - log q(z|x))``, each of shape ``(samples, B)``. A model whose
        latents fall into F groups that are independent under q and whose joint p(x, z) is a
        product of one factor per group (a latent per frame: :mod:`chordvae.stepwise`) gives
        ``(samples, B, F)``: importance weighting then works group by group (:func:`iwae_nll`)."""
        eps = torch.randn((samples, *mu.shape), generator=generator, device=mu.device, dtype=mu.dtype)
        std = torch.exp(0.5 * logvar)
        z = mu + std * eps                                              # (samples, B, D)
        log_px = self.decoder.log_prob(x, z)
        log_q = -0.5 * (eps.pow(2) + logvar + LOG_2PI).sum(-1)                # log N(z; mu, std^2)
        return log_px, self.prior.log_prob(z) - log_q

    def kl(self, mu: torch.Tensor, logvar: torch.Tensor, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """KL(q(z|x) || p(z)) per example ``(B,)`` and per dimension ``(B, D)`` where the prior has a
        closed form (else None, and the KL is estimated from the draws ``z`` ``(S, B, D)``)."""
        per_dim = self.prior.kl_per_dim(mu, logvar)
        if per_dim is not None:
            return per_dim.sum(1), per_dim
        return (log_normal(z, mu, logvar) - self.prior.log_prob(z)).mean(0), None

    def iwae_loss(self, x: Events, samples: int, beta: float = 1.0,
                  generator: torch.Generator | None = None) -> Losses:
        """The importance-weighted bound with ``samples`` draws (Burda et al. 2016) as a loss:
        -log (1/K) sum_k p(x|z_k) p(z_k)^beta / q(z_k|x)^beta per example; ``reconstruction``
        and ``kl`` are the ELBO's parts (mean over the draws; the KL closed form where the prior
        has one), for reporting."""
        mu, logvar = self.encode(x)
        log_px, log_ratio = self.log_weights(x, mu, logvar, samples, generator)
        bound = sum_groups(torch.logsumexp(log_px + beta * log_ratio, 0) - math.log(samples))
        per_dim = self.prior.kl_per_dim(mu, logvar) if log_px.dim() == 2 else None
        kl = per_dim.sum(1) if per_dim is not None else -sum_groups(log_ratio.mean(0))
        return Losses(-bound, -sum_groups(log_px.mean(0)).detach(), kl.detach())

    def sample_prior(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws from the prior, ``(n, latent_dim)``."""
        return self.prior.sample(n, self.latent_dim, generator=generator)

    def loss(self, x: Events, beta: float = 1.0, samples: int = 1,
             free_bits: float = 0.0, generator: torch.Generator | None = None) -> Losses:
        """Negative ELBO per example, with ``samples`` Monte-Carlo draws of z per example.

        The reconstruction term is the mean over the draws (the 1/M sum estimator); the KL
        term is closed form where the prior has one, else estimated from the same draws.
        ``free_bits`` (nats per latent dimension, averaged over the batch) stops the optimiser
        pushing a dimension's KL below that floor (without a closed form: the whole KL below
        ``free_bits * latent_dim``); the reported ``kl`` is always the true KL (or its estimate).
        ``generator`` draws the noise (default: torch's global one).
        """
        mu, logvar = self.encode(x)
        if samples == 1:
            z = reparameterize(mu, logvar, generator).unsqueeze(0)
            rec = -self.decoder.log_prob(x, z[0])
        else:
            z = reparameterize(mu.repeat(samples, 1), logvar.repeat(samples, 1), generator).view(samples, *mu.shape)
            rec = -self.decoder.log_prob(x, z).mean(0)
        kl, kl_dims = self.kl(mu, logvar, z)
        if free_bits > 0 and kl_dims is not None:
            kl_train = kl_dims.mean(0).clamp(min=free_bits).sum().expand_as(kl)
        elif free_bits > 0:
            kl_train = kl.mean().clamp(min=free_bits * mu.shape[1]).expand_as(kl)
        else:
            kl_train = kl
        return Losses(rec + beta * kl_train, rec, kl)


@torch.no_grad()
def iwae_nll(model: VAE, x: Events, k: int, batch_size: int = 256, chunk: int = 128,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Importance-weighted bound on -log p(x) with ``k`` samples (Burda et al. 2016), shape ``(N,)``.

    -log (1/K) sum_k p(x|z_k) p(z_k) / q(z_k|x), z_k ~ q(z|x). Examples go in batches and
    samples in chunks combined by a running log-sum-exp, so memory does not grow with K.
    K = 1 is the single-sample negative ELBO; the bound falls towards -log p(x) as K grows.
    Where the model's latents fall into independent groups (see :meth:`VAE.log_weights`), each
    group gets its own K-sample estimate and their logarithms add up: still a bound, and tighter.
    """
    out = []
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        mu, logvar = model.encode(xb)
        total = torch.tensor(-math.inf, dtype=torch.float64)   # on the CPU: MPS has no float64
        for start in range(0, k, chunk):
            log_px, log_ratio = model.log_weights(xb, mu, logvar, min(chunk, k - start), generator)
            total = torch.logaddexp(total, torch.logsumexp((log_px + log_ratio).cpu().double(), 0))
        out.append(-sum_groups(total - math.log(k)))
    return torch.cat(out)


def sum_groups(values: torch.Tensor) -> torch.Tensor:
    """``(B,)`` values as they are; ``(B, F)`` values of independent latent groups summed to ``(B,)``."""
    return values.sum(1) if values.dim() == 2 else values


class MLPEncoder(nn.Sequential):
    def __init__(self, in_features: int, hidden: tuple[int, ...], latent_dim: int):
        layers: list[nn.Module] = [nn.Flatten()]
        for h in hidden:
            layers += [nn.Linear(in_features, h), nn.ReLU()]
            in_features = h
        layers.append(nn.Linear(in_features, 2 * latent_dim))
        super().__init__(*layers)


class MLPDecoder(BernoulliLikelihood, nn.Sequential):
    def __init__(self, event_shape: tuple[int, ...], hidden: tuple[int, ...], latent_dim: int):
        layers: list[nn.Module] = []
        width = latent_dim
        for h in reversed(hidden):
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, math.prod(event_shape)))
        super().__init__(*layers)
        self.event_shape = tuple(event_shape)


class ConvEncoder(nn.Sequential):
    """The Keras example: Conv 32 and 64 (3x3, stride 2, same) -> Dense 16 -> z_mean, z_log_var."""

    def __init__(self, event_shape: tuple[int, ...], latent_dim: int):
        c, h, w = event_shape
        super().__init__(
            nn.Conv2d(c, 32, 3, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(),
            nn.Linear(64 * (h // 4) * (w // 4), 16), nn.ReLU(),
            nn.Linear(16, 2 * latent_dim),
        )


class ConvDecoder(BernoulliLikelihood, nn.Sequential):
    """The Keras example mirrored: Dense 7*7*64 -> ConvT 64, 32 (stride 2) -> ConvT to C channels."""

    def __init__(self, event_shape: tuple[int, ...], latent_dim: int):
        c, h, w = event_shape
        super().__init__(
            nn.Linear(latent_dim, 64 * (h // 4) * (w // 4)), nn.ReLU(),
            nn.Unflatten(1, (64, h // 4, w // 4)),
            nn.ConvTranspose2d(64, 64, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 3, stride=2, padding=1, output_padding=1), nn.ReLU(),
            nn.ConvTranspose2d(32, c, 3, padding=1),
        )
        self.event_shape = tuple(event_shape)


def keras_init(model: nn.Module) -> None:
    """Glorot-uniform weights and zero biases, as Keras initialises its layers.

    PyTorch's default (smaller) initialisation lets the conv VAE's posterior collapse in
    its first epochs on MNIST (KL 0.07 nats after 6 epochs, against 3.6 with this one).
    """
    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.xavier_uniform_(module.weight)
            nn.init.zeros_(module.bias)


def build_model(config: ModelConfig) -> VAE:
    """Build an untrained VAE from its config with its architecture's builder (see
    :data:`ARCHITECTURES`); raises ValueError on an impossible config."""
    if config.latent_dim < 1:
        raise ValueError(f"latent size must be at least 1, got {config.latent_dim}")
    builder = ARCHITECTURES.get(config.arch)
    if builder is None:
        raise ValueError(f"unknown architecture {config.arch!r}; choose from {', '.join(ARCHITECTURES)}")
    if isinstance(builder, str):  # "module:function", imported when first used
        module_name, _, attr = builder.partition(":")
        builder = getattr(__import__(module_name, fromlist=[attr]), attr)
    return builder(config)


def _mlp(config: ModelConfig) -> VAE:
    n = math.prod(config.event_shape)
    model = VAE(config, MLPEncoder(n, config.hidden, config.latent_dim),
                MLPDecoder(config.event_shape, config.hidden, config.latent_dim))
    keras_init(model)
    return model


def _conv(config: ModelConfig) -> VAE:
    shape = config.event_shape
    if len(shape) != 3 or shape[1] % 4 or shape[2] % 4:
        raise ValueError(f"the conv network needs (channels, height, width) events with "
                         f"height and width divisible by 4, got {shape}")
    model = VAE(config, ConvEncoder(shape, config.latent_dim), ConvDecoder(shape, config.latent_dim))
    keras_init(model)
    return model


#: architecture name -> a builder ``ModelConfig -> VAE`` (Keras initialisation for these two), or
#: ``"module:function"`` naming one, imported only when a model of that architecture is built
ARCHITECTURES: dict[str, Callable[[ModelConfig], VAE] | str] = {"conv": _conv, "mlp": _mlp}
