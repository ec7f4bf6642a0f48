"""What a chord VAE learned: the circle of fifths in its latent space, and whether latent
neighbours are musical neighbours."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..plane import LatentPlane, posterior_means
from ..vae import VAE
from .names import name_chord
from .vectors import chord_vector
from .vocabulary import QUALITIES

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
def circle_of_fifths(model: VAE, dims: int = 12, plane: LatentPlane | None = None) -> CircleOfFifths:
    """Encode the 36 chords (``dims`` 24: with the root as bass) and project their posterior
    means onto ``plane`` (the run's; None: the plane of their own two principal directions, the
    latent space itself when 2-D)."""
    chords = circle_chords()
    x = torch.from_numpy(np.stack([chord_vector(pcs, dims, root) for _, _, root, pcs in chords])).float()
    means = posterior_means(model, x)
    plane = plane or LatentPlane(model.latent_dim, means)
    return CircleOfFifths([c[0] for c in chords], [c[1] for c in chords], [c[3] for c in chords],
                          means, plane.project(means).numpy(), plane)


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
