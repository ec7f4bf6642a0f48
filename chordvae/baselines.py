"""Baselines a VAE must beat, fitted on the training split; all scores in nats per example."""
from __future__ import annotations

import math

import numpy as np
import torch

from .chords.pcset import rows_to_masks


class IndependentBernoulli:
    """Each dimension its own coin, with add-one (Laplace) smoothing: p_d = (n_d + 1) / (N + 2)."""

    def fit(self, x: torch.Tensor) -> "IndependentBernoulli":
        flat = x.flatten(1).double()
        self.p = (flat.sum(0) + 1) / (len(flat) + 2)
        return self

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        """-log p(x), shape ``(N,)`` (cross-entropy for values between 0 and 1)."""
        flat = x.flatten(1).double()
        return -(flat * self.p.log() + (1 - flat) * (1 - self.p).log()).sum(1)


#: smoothing values cross-validation chooses from: 10^-4 to 10 in quarter decades
ALPHAS = tuple(float(a) for a in 10.0 ** np.arange(-4, 1.01, 0.25))


class EmpiricalSets:
    """The smoothed empirical distribution over all 2^D binary vectors (12 pitch classes: 4,096 sets):
    p(s) = (count(s) + alpha) / (N + alpha 2^D), the practical floor for data whose sets repeat,
    as chords do; unseen sets still get a little mass.

    ``alpha=None`` (default) chooses alpha from :data:`ALPHAS` by ``folds``-fold
    cross-validation on the training data, folds made of whole ``groups`` (pieces) when given,
    so the floor is as good as this family gets without seeing the test data. After
    :meth:`fit`, ``alpha`` is the value used.
    """

    def __init__(self, alpha: float | None = None, folds: int = 5):
        self.alpha = alpha
        self.folds = folds

    def fit(self, x: torch.Tensor, groups: torch.Tensor | np.ndarray | None = None) -> "EmpiricalSets":
        """Count the training vectors ``x`` ``(N, D)``; ``groups`` ``(N,)`` (e.g. piece indices)
        keep each group within one cross-validation fold."""
        codes = _codes(x)
        self.n, self.dims = len(codes), x.flatten(1).shape[1]
        if self.alpha is None:
            self.alpha = cross_validated_alpha(codes, self.dims, groups, self.folds)
        values, counts = np.unique(codes, return_counts=True)
        self.counts = dict(zip(values.tolist(), counts.tolist()))
        return self

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        counts = np.array([self.counts.get(c, 0) for c in _codes(x).tolist()], dtype=np.float64)
        log_total = math.log(self.n + self.alpha * 2.0 ** self.dims)
        return torch.from_numpy(log_total - np.log(counts + self.alpha))


def cross_validated_alpha(codes: np.ndarray, dims: int, groups: torch.Tensor | np.ndarray | None = None,
                          folds: int = 5, alphas: tuple[float, ...] = ALPHAS) -> float:
    """The alpha of ``alphas`` with the lowest total held-out NLL of the smoothed empirical
    distribution over ``folds`` folds of ``codes`` (integer-coded vectors of ``dims`` bits).

    Folds are made of whole ``groups`` (shuffled with a fixed seed); without groups, or with
    fewer than two, each example is its own group.
    """
    groups = np.arange(len(codes)) if groups is None else np.asarray(groups)
    distinct = np.unique(groups)
    if len(distinct) < 2:
        groups, distinct = np.arange(len(codes)), np.arange(len(codes))
    if len(distinct) < 2:
        raise ValueError("cross-validation needs at least two training examples")
    fold_of = dict(zip(np.random.default_rng(0).permutation(distinct).tolist(),
                       np.arange(len(distinct)) % min(folds, len(distinct))))
    fold = np.array([fold_of[g] for g in groups.tolist()])
    a = np.array(alphas)[:, None]
    total = np.zeros(len(alphas))
    for k in np.unique(fold):
        train, held_out = codes[fold != k], codes[fold == k]
        values, counts = np.unique(train, return_counts=True)
        position = np.clip(np.searchsorted(values, held_out), 0, max(len(values) - 1, 0))
        seen = np.where(values[position] == held_out, counts[position], 0) if len(values) else 0 * held_out
        total += (np.log(len(train) + a * 2.0 ** dims) - np.log(seen[None, :] + a)).sum(1)
    return float(alphas[int(np.argmin(total))])


def _codes(x: torch.Tensor) -> np.ndarray:
    """Binary rows -> integers (at most 62 dimensions)."""
    return rows_to_masks(x.flatten(1).numpy())
