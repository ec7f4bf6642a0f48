"""Moving through a trained latent space: samples, straight and spherical walks, grids.

Everything returns latent points ``(N, latent_dim)`` or decoded probabilities
``(N, *event_shape)``; how a decoded event sounds or looks is the adapter's business.
"""
from __future__ import annotations

import torch

from .errors import ChordVAEError
from .plots import LatentPlane
from .runs import Run
from .sequence import SequenceVAE
from .vae import VAE


def parse_point(text: str, latent_dim: int) -> torch.Tensor:
    """``"0.5,-1.2"`` (or ``"z:0.5,-1.2"``) -> a latent point of shape ``(latent_dim,)``."""
    body = text.strip().removeprefix("z:")
    try:
        values = [float(v) for v in body.split(",")]
    except ValueError:
        raise ChordVAEError(f"cannot read the latent point {text!r}: expected numbers like 0.5,-1.2") from None
    if len(values) != latent_dim:
        raise ChordVAEError(f"the latent point {text!r} has {len(values)} coordinates; "
                            f"this model's latent space has {latent_dim}")
    return torch.tensor(values)


def sample(latent_dim: int, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` draws from the prior N(0, I), shape ``(n, latent_dim)``."""
    return torch.randn(n, latent_dim, generator=torch.Generator().manual_seed(seed))


def interpolate(a: torch.Tensor, b: torch.Tensor, steps: int, spherical: bool = False) -> torch.Tensor:
    """``steps`` points from ``a`` to ``b`` inclusive, shape ``(steps, D)``.

    ``spherical``: slerp (Shoemake; White 2016 for generative models), which keeps the
    points at a typical distance from the origin instead of cutting through its low-norm middle.
    """
    t = torch.linspace(0, 1, steps).unsqueeze(1)
    if not spherical:
        return (1 - t) * a + t * b
    cos = torch.dot(a, b) / (a.norm() * b.norm()).clamp(min=1e-12)
    omega = torch.arccos(cos.clamp(-1, 1))
    if torch.sin(omega) < 1e-6:  # same or opposite directions: no single great circle, walk straight
        return (1 - t) * a + t * b
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def grid(run: Run, n: int, scale: float = 1.0) -> torch.Tensor:
    """The ``latent_space.png`` grid, row by row from the top left, shape ``(n * n, D)``, in the
    plane stored in the checkpoint (older checkpoints: computed from the run's data)."""
    plane = run.plane or LatentPlane.of(run.model, run.data().validation)
    return plane.grid(n, scale)[0].reshape(n * n, -1)


@torch.no_grad()
def decode(model: VAE, z: torch.Tensor) -> torch.Tensor:
    """Bernoulli probabilities of the decoded events, ``(N, *event_shape)`` (a sequence model
    decodes frames of 0/1 directly: autoregressive outputs have no per-key probabilities)."""
    if isinstance(model, SequenceVAE):
        return model.decode(z)
    return torch.sigmoid(model.decode(z))


@torch.no_grad()
def encode(model: VAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and standard deviation of q(z|x), each ``(N, D)``."""
    mu, logvar = model.encode(x)
    return mu, torch.exp(0.5 * logvar)
