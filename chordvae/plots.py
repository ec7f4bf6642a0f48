"""Generic pictures of a latent space: projections, decoded grids, loss curves.

Dataset adapters draw the decoded events themselves; this module supplies the latent
geometry they share. All functions take a model in eval mode on CPU. Figures are
``matplotlib.figure.Figure`` objects saved straight to PNG: no pyplot backend is chosen,
so importing chordvae never changes a notebook's backend.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import torch
from matplotlib.figure import Figure

from .fileio import atomic_path
from .vae import VAE


@torch.no_grad()
def posterior_means(model: VAE, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Posterior means of q(z|x), shape ``(N, latent_dim)``."""
    return torch.cat([model.encode(x[i:i + batch_size])[0] for i in range(0, len(x), batch_size)])


class LatentPlane:
    """The 2-D plane pictures are drawn in: the latent space itself when it is 2-D, else
    the plane through the posterior means' centre spanned by their two principal directions."""

    def __init__(self, latent_dim: int, means: torch.Tensor | None = None, *,
                 centre: torch.Tensor | None = None, basis: torch.Tensor | None = None):
        """From posterior ``means`` ``(N, D)`` (not needed when D = 2), or a stored ``centre``
        ``(D,)`` and ``basis`` ``(2, D)``."""
        self.latent_dim = latent_dim
        self.axis_labels = ("z[0]", "z[1]") if latent_dim == 2 else ("PC1", "PC2")
        self.note = "" if latent_dim == 2 else \
            f"{latent_dim}-D latent space: first two principal directions of the posterior means"
        if centre is not None and basis is not None:
            self.centre, self.basis = centre, basis
        elif latent_dim == 2:
            self.centre, self.basis = torch.zeros(2), torch.eye(2)
        elif latent_dim == 0:   # a model without a latent (a sequence decoder's ablation)
            self.centre, self.basis = torch.zeros(0), torch.zeros(2, 0)
        else:
            if means is None or len(means) < 2:
                raise ValueError("a latent space of more than 2 dimensions needs posterior means to project")
            means = means.detach().cpu().float()
            self.centre = means.mean(0)
            if latent_dim == 1:
                self.basis = torch.tensor([[1.0], [0.0]])
            else:  # exact SVD (not a randomised PCA): the same means always give the same plane
                _, _, vh = torch.linalg.svd(means - self.centre, full_matrices=False)
                signs = torch.sign(vh[:2].gather(1, vh[:2].abs().argmax(1, keepdim=True)))
                self.basis = (vh[:2] * signs).contiguous()  # largest component positive

    @classmethod
    def of(cls, model: VAE, reference: torch.Tensor) -> LatentPlane:
        """The plane of ``model``'s posterior means of the ``reference`` events."""
        return cls(model.latent_dim, posterior_means(model, reference) if model.latent_dim != 2 else None)

    def to_dict(self) -> dict[str, Any]:
        """``centre`` ``(D,)`` and ``basis`` ``(2, D)`` as lists, for the checkpoint."""
        return {"latent_dim": self.latent_dim, "centre": self.centre.tolist(), "basis": self.basis.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LatentPlane:
        return cls(d["latent_dim"], centre=torch.tensor(d["centre"]), basis=torch.tensor(d["basis"]))

    def project(self, z: torch.Tensor) -> torch.Tensor:
        """Latent points ``(N, D)`` -> plane coordinates ``(N, 2)``."""
        return (z - self.centre) @ self.basis.T

    def grid(self, n: int, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
        """An n x n grid over [-scale, scale]^2 in the plane: ``(z (n, n, D), ticks (n,))``.

        Row 0 is the top of the picture (largest second coordinate), as in the Keras example.
        """
        ticks = torch.linspace(-scale, scale, n)
        u = ticks.view(1, n).expand(n, n)
        v = ticks.flip(0).view(n, 1).expand(n, n)
        plane = torch.stack([u, v], -1)
        return self.centre + plane @ self.basis, ticks


@torch.no_grad()
def latent_grid(model: VAE, reference: torch.Tensor, n: int,
                scale: float) -> tuple[LatentPlane, torch.Tensor, torch.Tensor]:
    """The n x n grid of ``latent_space.png``: ``(plane, z (n * n, D) row by row from the
    top left, ticks (n,))``; ``reference`` events fix the plane when the space is not 2-D."""
    plane = LatentPlane.of(model, reference)
    z, ticks = plane.grid(n, scale)
    return plane, z.reshape(n * n, -1), ticks


def plot_losses(metrics: Sequence[dict], path: str | Path) -> None:
    """Train and validation curves of loss, reconstruction and KL per epoch."""
    epochs = [m["epoch"] for m in metrics]
    fig = Figure(figsize=(13, 3.6))
    axes = fig.subplots(1, 3)
    for ax, key in zip(axes, ("loss", "reconstruction_loss", "kl_loss")):
        for split, style in (("train", "-"), ("validation", "--")):
            ax.plot(epochs, [m[split][key] for m in metrics], style, marker="o", ms=3, label=split)
        ax.set_title(key.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats per example")
        ax.legend()
    save_figure(fig, path)


def save_figure(fig: Figure, path: str | Path) -> None:
    """Save ``fig`` as PNG atomically."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
