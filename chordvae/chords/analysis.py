"""What a chord VAE learned: the circle of fifths in its latent space, and whether latent
neighbours are musical neighbours."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np
import torch
from matplotlib.figure import Figure

from ..latent import LatentPlane, posterior_means
from ..plots import save_figure
from ..vae import VAE
from .names import name_chord
from .vectors import chord_vector
from .vocabulary import LABELS, QUALITIES

#: roots in circle-of-fifths order: C G D A E B F# Db Ab Eb Bb F
FIFTHS = tuple(7 * k % 12 for k in range(12))
#: the qualities of the rings
RINGS = (QUALITIES["maj"], QUALITIES["min"], QUALITIES["7"])


@dataclass
class CircleOfFifths:
    """The 24 major and minor triads and 12 dominant sevenths, each ring in fifths order
    (the minor ring starts on A, the relative minor of C). ``means`` ``(36, latent_dim)`` are
    their posterior means; ``points`` ``(36, 2)`` the plotted coordinates (``plane``)."""

    labels: list[str]
    kinds: list[str]
    pitch_classes: list[tuple[int, ...]]
    means: torch.Tensor
    points: np.ndarray
    plane: LatentPlane


def circle_chords() -> list[tuple[str, str, int, tuple[int, ...]]]:
    """``(label, kind, root, pitch classes)`` of the 36 chords, ring by ring in fifths order."""
    chords = []
    for quality in RINGS:
        for root in FIFTHS:
            root = (root + 9) % 12 if quality.harte == "min" else root
            named = name_chord([root + i for i in quality.intervals], root=root)
            chords.append((named.symbol, quality.name, root, named.pitch_classes))
    return chords


@torch.no_grad()
def circle_of_fifths(model: VAE, dims: int = 12) -> CircleOfFifths:
    """Encode the 36 chords (``dims`` 24: with the root as bass) and project their posterior
    means onto the plane of their two principal directions (the latent space itself when 2-D)."""
    chords = circle_chords()
    x = torch.from_numpy(np.stack([chord_vector(pcs, dims, root) for _, _, root, pcs in chords])).float()
    means = posterior_means(model, x)
    plane = LatentPlane(model.latent_dim, means)
    return CircleOfFifths([c[0] for c in chords], [c[1] for c in chords], [c[3] for c in chords],
                          means, plane.project(means).numpy(), plane)


def plot_circle_of_fifths(circle: CircleOfFifths, path: str | Path, title: str = "") -> None:
    """Each ring of :class:`CircleOfFifths` drawn as a closed line through its chords in fifths
    order, each chord named at its posterior mean; thin grey lines join relative major and minor."""
    colours = matplotlib.colormaps["tab10"].colors  # the quality colours of the other pictures
    fig = Figure(figsize=(9, 8))
    ax = fig.subplots()
    p = circle.points
    for k in range(12):  # C -- Am, G -- Em, ...
        ax.plot(p[[k, 12 + k], 0], p[[k, 12 + k], 1], color="0.8", lw=0.8, zorder=1)
    for ring, quality in enumerate(RINGS):
        idx = list(range(12 * ring, 12 * ring + 12)) + [12 * ring]
        colour = colours[LABELS.index(quality.name)]
        ax.plot(p[idx, 0], p[idx, 1], "-o", color=colour, ms=5, lw=1.2, label=quality.name, zorder=2)
        for i in idx[:-1]:
            ax.annotate(circle.labels[i], p[i], fontsize=9, xytext=(4, 3), textcoords="offset points", color=colour)
    ax.set_xlabel(circle.plane.axis_labels[0])
    ax.set_ylabel(circle.plane.axis_labels[1])
    ax.legend(loc="best", fontsize=9)
    note = f"\n{circle.plane.note}" if circle.plane.note else ""
    ax.set_title((title or "major, minor and dominant-seventh chords at their posterior means, "
                  "in circle-of-fifths order") + note, fontsize=10)
    save_figure(fig, path)


def neighbourhood_overlap(means: torch.Tensor, sets: torch.Tensor, k: int = 5) -> dict[str, float]:
    """How much latent neighbourhood means musical neighbourhood.

    ``means`` ``(N, D)`` are the posterior means of N distinct chords, ``sets`` ``(N, 12)``
    their binary pitch classes. For each chord, the mean pitch-class Jaccard overlap
    |A ∩ B| / |A ∪ B| with its ``k`` nearest other chords in the latent space (Euclidean),
    averaged over chords (``neighbour_jaccard``); the same overlap averaged over all pairs of
    distinct chords (``random_pair_jaccard``, what random neighbours would give); and their
    ``ratio`` (1: the latent space ignores pitch content).
    """
    n = len(means)
    if n < 2:
        raise ValueError("the neighbourhood overlap needs at least two distinct chords")
    a = (sets >= 0.5).double()
    inter = a @ a.T
    union = a.sum(1, keepdim=True) + a.sum(1) - inter
    jaccard = torch.where(union > 0, inter / union.clamp(min=1), torch.ones_like(inter))
    distance = torch.cdist(means.double(), means.double())
    distance.fill_diagonal_(float("inf"))
    k = min(k, n - 1)
    nearest = distance.topk(k, largest=False).indices                       # (N, k)
    neighbour = jaccard.gather(1, nearest).mean().item()
    off_diagonal = ~torch.eye(n, dtype=torch.bool)
    random_pair = jaccard[off_diagonal].mean().item()
    return {"neighbour_jaccard": neighbour, "random_pair_jaccard": random_pair,
            "neighbourhood_ratio": neighbour / random_pair if random_pair > 0 else float("inf")}
