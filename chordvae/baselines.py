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


class EmpiricalSets:
    """The smoothed empirical distribution over all 2^D binary vectors (12 pitch classes: 4,096 sets):
    p(s) = (count(s) + alpha) / (N + alpha 2^D). With a small alpha this is the practical floor
    for data whose sets repeat, as chords do; unseen sets still get a little mass."""

    def __init__(self, alpha: float = 0.1):
        self.alpha = alpha

    def fit(self, x: torch.Tensor) -> "EmpiricalSets":
        codes = _codes(x)
        values, counts = np.unique(codes, return_counts=True)
        self.counts = dict(zip(values.tolist(), counts.tolist()))
        self.n, self.dims = len(codes), x.flatten(1).shape[1]
        return self

    def nll(self, x: torch.Tensor) -> torch.Tensor:
        counts = np.array([self.counts.get(c, 0) for c in _codes(x).tolist()], dtype=np.float64)
        log_total = math.log(self.n + self.alpha * 2.0 ** self.dims)
        return torch.from_numpy(log_total - np.log(counts + self.alpha))


def _codes(x: torch.Tensor) -> np.ndarray:
    """Binary rows -> integers (at most 62 dimensions)."""
    return rows_to_masks(x.flatten(1).numpy())
