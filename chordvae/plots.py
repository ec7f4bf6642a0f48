"""Generic pictures of a latent space: projections, decoded grids, loss curves.

Dataset adapters draw the decoded events themselves; this module supplies the latent
geometry they share. All functions take a model in eval mode on CPU. Figures are
``matplotlib.figure.Figure`` objects saved straight to PNG: no pyplot backend is chosen,
so importing chordvae never changes a notebook's backend.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import torch
from matplotlib.figure import Figure

from .fileio import atomic_path
from .latent import LatentPlane
from .vae import VAE


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
