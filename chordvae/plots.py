"""Generic pictures: loss curves, and saving a figure.

Dataset adapters draw their own pictures (in the latent plane of :mod:`chordvae.plane`).
Figures are ``matplotlib.figure.Figure`` objects saved straight to PNG: no pyplot backend is
chosen, so importing chordvae never changes a notebook's backend.
"""
from __future__ import annotations

import warnings

from pathlib import Path
from typing import Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .fileio import atomic_path
from .plane import LatentPlane


def label_plane(ax: Axes, plane: LatentPlane, title: str) -> None:
    """Name ``ax``'s axes after ``plane``'s coordinates and title it, with the plane's note (how
    a latent space of more than 2 dimensions is shown) on a second line."""
    ax.set_xlabel(plane.axis_labels[0])
    ax.set_ylabel(plane.axis_labels[1])
    ax.set_title(title + (f"\n{plane.note}" if plane.note else ""))


def plot_losses(metrics: Sequence[dict], path: str | Path, kept_epoch: int | None = None) -> None:
    """``loss.png``: :func:`loss_figure` saved to ``path``."""
    save_figure(loss_figure(metrics, kept_epoch), path)


def loss_figure(metrics: Sequence[dict], kept_epoch: int | None = None) -> Figure:
    """Train and validation curves of loss, reconstruction and KL per epoch; a dotted line marks
    ``kept_epoch``, the epoch whose weights the run keeps."""
    epochs = [m["epoch"] for m in metrics]
    fig = Figure(figsize=(13, 3.6))
    axes = fig.subplots(1, 3)
    for ax, key in zip(axes, ("loss", "reconstruction_loss", "kl_loss")):
        for split, style in (("train", "-"), ("validation", "--")):
            ax.plot(epochs, [m[split][key] for m in metrics], style, marker="o" if len(epochs) <= 60 else None,
                    ms=3, label=split)
        if kept_epoch is not None:
            ax.axvline(kept_epoch, color="0.3", ls=":", lw=1.2, label=f"kept (epoch {kept_epoch})")
        ax.set_title(key.replace("_", " "))
        ax.set_xlabel("epoch")
        ax.set_ylabel("nats per example")
        ax.legend()
    return fig


def tight(fig: Figure) -> None:
    """``fig.tight_layout()``, quietly: where a tall title leaves it no room it changes nothing,
    and :func:`save_figure` crops to what is drawn anyway."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Tight layout not applied", UserWarning)
        fig.tight_layout()


def save_figure(fig: Figure, path: str | Path) -> None:
    """Save ``fig`` as PNG atomically, cropped to what is drawn (legends beside the axes included)."""
    tight(fig)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight", pad_inches=0.1)
