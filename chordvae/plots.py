"""Generic pictures of a latent space: projections, decoded grids, loss curves.

Dataset adapters draw the decoded events themselves; this module supplies the latent
geometry they share. All functions take a model in eval mode on CPU.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from .fileio import atomic_path  # noqa: E402
from .vae import VAE  # noqa: E402


@torch.no_grad()
def posterior_means(model: VAE, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Posterior means of q(z|x), shape ``(N, latent_dim)``."""
    return torch.cat([model.encode(x[i:i + batch_size])[0] for i in range(0, len(x), batch_size)])


class LatentPlane:
    """The 2-D plane pictures are drawn in: the latent space itself when it is 2-D, else
    the plane through the posterior means' centre spanned by their two principal directions."""

    def __init__(self, latent_dim: int, means: torch.Tensor | None = None):
        self.latent_dim = latent_dim
        if latent_dim == 2:
            self.centre = torch.zeros(2)
            self.basis = torch.eye(2)
            self.axis_labels = ("z[0]", "z[1]")
            self.note = ""
        else:
            if means is None or len(means) < 2:
                raise ValueError("a latent space of more than 2 dimensions needs posterior means to project")
            self.centre = means.mean(0)
            if latent_dim == 1:
                self.basis = torch.tensor([[1.0], [0.0]])
            else:
                _, _, v = torch.pca_lowrank(means - self.centre, q=2, center=False)
                self.basis = v[:, :2].T.contiguous()
            self.axis_labels = ("PC1", "PC2")
            self.note = f"{latent_dim}-D latent space: first two principal directions of the posterior means"

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
    means = posterior_means(model, reference) if model.latent_dim != 2 else None
    plane = LatentPlane(model.latent_dim, means)
    z, ticks = plane.grid(n, scale)
    return plane, z.reshape(n * n, -1), ticks


def plot_losses(metrics: Sequence[dict], path: str | Path) -> None:
    """Train and validation curves of loss, reconstruction and KL per epoch."""
    epochs = [m["epoch"] for m in metrics]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for ax, key in zip(axes, ("loss", "reconstruction_loss", "kl_loss")):
        for split, style in (("train", "-"), ("validation", "--")):
            ax.plot(epochs, [m[split][key] for m in metrics], style, marker="o", ms=3, label=split)
        ax.set_title(key.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats per example")
        ax.legend()
    save_figure(fig, path)


def save_figure(fig: plt.Figure, path: str | Path) -> None:
    """Save ``fig`` as PNG atomically and close it."""
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)
