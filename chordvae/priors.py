"""Priors p(z) of the core's VAE: the standard normal, and a Gaussian mixture fitted to the codes.

Knows nothing of music. A prior gives ``log_prob(z)`` in nats for points ``(..., latent_dim)``,
draws ``sample(n)``, and, where it has one, the closed-form KL of a diagonal Gaussian posterior
per latent dimension (``kl_per_dim``; None: the VAE estimates the KL from its draws of z).

:class:`GaussianMixture` is the standard normal until :meth:`GaussianMixture.fit` is called
(on posterior draws of the training events): then K diagonal Gaussians with learnable weights,
means and variances, trained with the encoder (an "ex-post" density of the codes, Ghosh et al.
2020; a learned mixture prior, as in Tomczak and Welling's VampPrior, 2018).
"""
from __future__ import annotations

import math

import torch
from torch import nn

LOG_2PI = math.log(2 * math.pi)


def log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dimension, shape ``z.shape[:-1]``."""
    return -0.5 * ((z - mu).pow(2) / logvar.exp() + logvar + LOG_2PI).sum(-1)


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)) per latent dimension, shape ``(B, D)``."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor, prior_mu: torch.Tensor,
                prior_logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(prior_mu, diag(exp(prior_logvar)))) per dimension,
    elementwise (any shape)."""
    return 0.5 * (prior_logvar - logvar + (logvar.exp() + (mu - prior_mu).pow(2)) / prior_logvar.exp() - 1)


def components_log_prob(z: torch.Tensor, means: torch.Tensor, logvars: torch.Tensor) -> torch.Tensor:
    """log N(z; m_k, diag(exp(logvar_k))) for every component k: ``(..., K)`` for ``z`` ``(..., D)``
    and ``means``, ``logvars`` ``(K, D)``, by products of matrices (no ``(..., K, D)`` tensor)."""
    precision = (-logvars).exp()                                                       # (K, D)
    quadratic = (z.pow(2) @ precision.T - 2 * z @ (means * precision).T
                 + (means.pow(2) * precision).sum(1))
    return -0.5 * (quadratic + logvars.sum(1) + z.shape[-1] * LOG_2PI)


def marginal_kl(mu: torch.Tensor, logvar: torch.Tensor, logits: torch.Tensor, means: torch.Tensor,
                logvars: torch.Tensor, draws: int = 32, generator: torch.Generator | None = None) -> torch.Tensor:
    """KL per dimension between a diagonal Gaussian q ``(..., D)`` and a mixture of diagonal Gaussians
    (weights' ``logits`` ``(..., K)``, ``means`` and ``logvars`` ``(..., K, D)``) taken one dimension at
    a time: KL(q_d || p_d) with p_d the mixture's marginal in dimension d, estimated from ``draws``
    draws of q. A mixture's KL does not split over dimensions; these marginal ones say how much each
    dimension departs from the prior, for reports (they need not add up to the whole KL)."""
    log_weights = torch.log_softmax(logits, -1).unsqueeze(-1)                         # (..., K, 1)
    total = torch.zeros_like(mu)
    for _ in range(draws):
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        z = mu + (0.5 * logvar).exp() * eps
        log_q = -0.5 * (eps.pow(2) + logvar + LOG_2PI)
        per_component = -0.5 * ((z.unsqueeze(-2) - means).pow(2) / logvars.exp() + logvars + LOG_2PI)
        total += log_q - torch.logsumexp(log_weights + per_component, -2)
    return total / draws


class StandardNormal(nn.Module):
    """p(z) = N(0, I): no parameters, so checkpoints of models with it hold no prior weights."""

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)

    def kl_per_dim(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor | None:
        return kl_divergence(mu, logvar)

    @property
    def closed_form(self) -> bool:
        """Whether the KL of a diagonal Gaussian posterior has a closed form per dimension."""
        return True

    def dimension_kl(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """KL per dimension for reports: :meth:`kl_per_dim` where there is a closed form, else
        the marginal one (:func:`marginal_kl`)."""
        return kl_divergence(mu, logvar)

    def sample(self, n: int, latent_dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` draws ``(n, latent_dim)``."""
        return torch.randn(n, latent_dim, generator=generator)


class GaussianMixture(StandardNormal):
    """p(z) = sum_k pi_k N(z; m_k, diag(s_k^2)) over ``components`` K, once fitted; before, the
    standard normal (``fitted`` is a buffer, so a checkpoint knows which)."""

    def __init__(self, components: int, latent_dim: int):
        super().__init__()
        self.logits = nn.Parameter(torch.zeros(components))
        self.means = nn.Parameter(torch.zeros(components, latent_dim))
        self.logvars = nn.Parameter(torch.zeros(components, latent_dim))
        self.register_buffer("fitted", torch.tensor(False))

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        if not self.fitted:
            return super().log_prob(z)
        return torch.logsumexp(components_log_prob(z, self.means, self.logvars) + torch.log_softmax(self.logits, 0), -1)

    def kl_per_dim(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor | None:
        return None if self.fitted else super().kl_per_dim(mu, logvar)

    @property
    def closed_form(self) -> bool:
        return not bool(self.fitted)

    def dimension_kl(self, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        if not self.fitted:
            return super().dimension_kl(mu, logvar)
        return marginal_kl(mu, logvar, self.logits, self.means, self.logvars,
                           generator=torch.Generator(device=mu.device).manual_seed(0))

    def sample(self, n: int, latent_dim: int, generator: torch.Generator | None = None) -> torch.Tensor:
        if not self.fitted:
            return super().sample(n, latent_dim, generator)
        with torch.no_grad():
            k = torch.multinomial(torch.softmax(self.logits, 0), n, replacement=True, generator=generator)
            eps = torch.randn(n, latent_dim, generator=generator)
            return self.means[k] + (0.5 * self.logvars[k]).exp() * eps

    @torch.no_grad()
    def fit(self, z: torch.Tensor, iterations: int = 50, generator: torch.Generator | None = None,
            min_variance: float = 1e-3) -> None:
        """Fit the mixture to points ``z`` ``(N, latent_dim)`` by expectation-maximisation, from K
        of them drawn as means (with repeats when N < K) and the points' variance; afterwards
        ``fitted`` is True."""
        k = len(self.logits)
        first = (torch.randperm(len(z), generator=generator)[:k] if len(z) >= k
                 else torch.randint(len(z), (k,), generator=generator))
        means = z[first].clone()
        variances = z.var(0).clamp(min=min_variance).expand(k, -1).clone()
        log_weights = torch.full((k,), -math.log(k))
        for _ in range(iterations):
            resp = torch.softmax(components_log_prob(z, means, variances.log()) + log_weights, 1)   # (N, K)
            counts = resp.sum(0) + 1e-8
            log_weights = (counts / len(z)).log()
            means = resp.T @ z / counts[:, None]
            variances = (resp.T @ z.pow(2) / counts[:, None] - means.pow(2)).clamp(min=min_variance)
        self.logits.copy_(log_weights)
        self.means.copy_(means)
        self.logvars.copy_(variances.log())
        self.fitted.fill_(True)
