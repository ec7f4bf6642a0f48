"""Moving through a trained latent space: samples, straight and spherical walks, grids.

Everything returns latent points ``(N, latent_dim)`` or decoded probabilities
``(N, *event_shape)``; how a decoded event sounds or looks is the adapter's business.
"""
from __future__ import annotations

import torch

from .batch import Events
from .errors import ChordVAEError
from .plane import LatentPlane
from .runs import Run
from .sequence import SequenceConfig, exact_points
from .vae import VAE


POINT_PREFIXES = ("z:", "xy:")


def is_point(text: str) -> bool:
    """Whether ``text`` names a point (``z:...`` or ``xy:...``) rather than an event."""
    return text.strip().lower().startswith(POINT_PREFIXES)


def is_plane_point(text: str) -> bool:
    """Whether ``text`` is a point of the pictures' plane (``xy:...``)."""
    return text.strip().lower().startswith("xy:")


def plane_point(text: str) -> torch.Tensor:
    """``"xy:0.5,-1.2"`` -> plane coordinates ``(2,)``."""
    values = _coordinates(text)
    if len(values) != 2:
        raise ChordVAEError(f"the plane point {text!r} has {len(values)} coordinates; a plane point has 2")
    return torch.tensor(values)


def _coordinates(text: str) -> list[float]:
    body = text.strip()
    prefix = next((p for p in POINT_PREFIXES if body.lower().startswith(p)), "")
    try:
        return [float(v) for v in body[len(prefix):].split(",")]
    except ValueError:
        raise ChordVAEError(f"cannot read the point {text!r}: expected numbers like "
                            f"{prefix or 'z:'}0.5,-1.2") from None


def parse_point(text: str, latent_dim: int, plane: LatentPlane | None = None) -> torch.Tensor:
    """A latent point of shape ``(latent_dim,)`` from ``"z:0.5,-1.2,..."`` (raw latent coordinates;
    the ``z:`` may be left out) or ``"xy:0.5,-1.2"`` (coordinates in the pictures' ``plane``, as their
    axes show them: the point the pictures and the explorer page decode there)."""
    if is_plane_point(text):
        if plane is None:
            raise ChordVAEError(f"{text!r} is a point of the pictures' plane, and no plane was given")
        return plane.to_latent(plane_point(text)[None])[0]
    values = _coordinates(text)
    if len(values) != latent_dim:
        hint = " (a point of the pictures' plane is written xy:0.5,-1.2)" if len(values) == 2 else ""
        raise ChordVAEError(f"the latent point {text!r} has {len(values)} coordinates; "
                            f"this model's latent space has {latent_dim}{hint}")
    return torch.tensor(values)


def sample(model: VAE, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` draws from the model's prior (N(0, I), its fitted mixture, or frame by frame for a
    latent per frame), shape ``(n, latent_dim)``."""
    return model.sample_prior(n, generator=torch.Generator().manual_seed(seed))


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


def grid(run: Run, n: int, scale: float | None = None) -> torch.Tensor:
    """The ``latent_space.png`` grid over [-scale, scale]^2 (default: the picture's), row by row
    from the top left, shape ``(n * n, D)``, in the plane stored in the checkpoint: each cell at its
    most frequent chord's dot, else at its centre, as the picture decodes it."""
    plane = run.latent_plane()
    return plane.grid(n, scale or run.adapter.default_scale(plane), on_data=True)[0].reshape(n * n, -1)


@torch.no_grad()
def decode(model: VAE, z: torch.Tensor) -> torch.Tensor:
    """Bernoulli probabilities of the decoded events, ``(N, *event_shape)`` (a sequence model
    decodes frames of 0/1 directly: autoregressive outputs have no per-key probabilities)."""
    return model.decode_mean(z)


def point_of(model: VAE, x: Events) -> tuple[torch.Tensor, bool]:
    """The latent point ``(D,)`` of one event: its posterior mean; for a sequence model a point
    that decodes back to it exactly when inference finds one
    (:func:`chordvae.sequence.exact_points`). Also whether the point decodes back (True for
    other models, whose decoding is not compared)."""
    if isinstance(model.config, SequenceConfig) and model.latent_dim:
        z, found = exact_points(model, x)
        return z[0], bool(found[0])
    return model.encode(x)[0][0].detach(), True


@torch.no_grad()
def encode(model: VAE, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and standard deviation of q(z|x), each ``(N, D)``."""
    mu, logvar = model.encode(x)
    return mu, torch.exp(0.5 * logvar)
