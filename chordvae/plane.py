"""The latent plane: the one 2-D view of a latent space that every picture, the explorer page
and ``decode --grid`` / ``xy:`` points share, stored in the checkpoint.

When the latent space is 2-D the plane is the space itself. Otherwise its two coordinates
(u, v) run along the first two principal directions of the corpus's posterior means, and the
other D - 2 coordinates are not held at their mean (a flat slice misses most chords) but
*follow the data*: at a plane point they are the count-weighted kernel average of the hidden
coordinates of the corpus's events whose posterior means project nearby (Nadaraya-Watson, a
Gaussian kernel in the plane). So at the spot where an event's dot is drawn the decoder sees
close to that event's own posterior mean. The kernel's bandwidth is the smoothest of a few
that keeps the most dots in their own decoded region (see :meth:`LatentPlane.of`).
Core module: torch only.
"""
from __future__ import annotations

from typing import Any

import torch

from .batch import Events
from .vae import VAE

#: at most this many distinct events (the most frequent) steer the hidden coordinates
MAX_ANCHORS = 2048
#: kernel bandwidths tried, in units of the dots' typical nearest-neighbour distance, smooth first
BANDWIDTHS = (8.0, 4.0, 2.0, 1.0, 0.5, 0.25, 0.125, 0.0625)
#: the smoothest bandwidth whose agreement is within this of the best one is kept
AGREEMENT_SLACK = 0.02
#: the plane's default view is the dots' bounding square widened by this factor
MARGIN = 1.05
_CHUNK = 8192   # plane points per kernel evaluation: (chunk, anchors) floats at a time


@torch.no_grad()
def posterior_means(model: VAE, x: torch.Tensor, batch_size: int = 4096) -> torch.Tensor:
    """Posterior means of q(z|x), shape ``(N, latent_dim)``."""
    return torch.cat([model.encode(x[i:i + batch_size])[0] for i in range(0, len(x), batch_size)])


@torch.no_grad()
def decodes_to(model: VAE, z: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Whether decoding each latent point ``z`` ``(N, D)`` gives back the binary event ``x`` ``(N, ...)``
    (every dimension on the same side of p = 0.5), bool ``(N,)``."""
    probs = model.decode_mean(z.to(x.device))
    return ((probs >= 0.5) == (x >= 0.5)).flatten(1).all(1).cpu()


def distinct_events(x: Events) -> tuple[Events, torch.Tensor]:
    """The distinct events of ``x`` ``(N, ...)`` and how often each occurs ``(K,)``. Events that
    are not one tensor (masked sequences: no two windows are taken to be the same) are all distinct."""
    if not isinstance(x, torch.Tensor):
        return x, torch.ones(len(x), dtype=torch.long)
    distinct, counts = torch.unique(x.flatten(1), dim=0, return_counts=True)
    return distinct.view(-1, *x.shape[1:]), counts


@torch.no_grad()
def plane_agreement(model: VAE, plane: LatentPlane, x: torch.Tensor) -> float:
    """The share of the events ``x`` ``(N, ...)`` whose dot in ``plane`` (the projection of the
    event's posterior mean) lies where the plane decodes to the event itself."""
    distinct, counts = distinct_events(x)
    return plane.agreement_of(model, distinct, counts)


class LatentPlane:
    """The 2-D plane pictures are drawn in (see the module's docstring).

    ``centre`` ``(D,)`` and ``basis`` ``(2, D)`` (orthonormal rows) fix the plane coordinates:
    :meth:`project` maps a latent point to (u, v). :meth:`to_latent` maps (u, v) back to the
    latent point the pictures decode: ``centre + (u, v) @ basis`` plus the hidden coordinates,
    a softmax-weighted average of ``lifts`` ``(K, D)`` (each anchor's posterior mean minus its
    projection) with weights ``log_weights`` ``(K,)`` (log counts) minus the squared distance to
    the ``anchors`` ``(K, 2)`` over twice the squared ``bandwidth``. No anchors: a flat plane.
    ``extent``: the default view is [-extent, extent]^2 (it holds every dot). ``agreement``:
    the share of the events (weighted by count) whose dot decodes to the event itself.
    """

    def __init__(self, latent_dim: int, means: torch.Tensor | None = None, *,
                 centre: torch.Tensor | None = None, basis: torch.Tensor | None = None,
                 counts: torch.Tensor | None = None):
        """The flat plane of posterior ``means`` ``(N, D)`` (each weighted by ``counts`` ``(N,)``
        when given; not needed when D = 2), or of a stored ``centre`` and ``basis``."""
        self.latent_dim = latent_dim
        self.axis_labels = ("z[0]", "z[1]") if latent_dim == 2 else ("PC1", "PC2")
        self.anchors, self.lifts = torch.zeros(0, 2), torch.zeros(0, latent_dim)
        self.log_weights, self.bandwidth = torch.zeros(0), 0.0
        self.extent: float | None = None
        self.agreement: float | None = None
        if centre is not None and basis is not None:
            self.centre, self.basis = centre.float(), basis.float()
        elif latent_dim == 2:
            self.centre, self.basis = torch.zeros(2), torch.eye(2)
        elif latent_dim == 0:   # a model without a latent (a sequence decoder's ablation)
            self.centre, self.basis = torch.zeros(0), torch.zeros(2, 0)
        else:
            if means is None or len(means) < 2:
                raise ValueError("a latent space of more than 2 dimensions needs posterior means to project")
            means = means.detach().cpu().double()
            w = torch.ones(len(means), dtype=torch.float64) if counts is None else counts.detach().cpu().double()
            w = w / w.sum()
            centre = w @ means
            if latent_dim == 1:
                basis = torch.tensor([[1.0], [0.0]])
            else:  # exact SVD (not a randomised PCA): the same means always give the same plane
                _, _, vh = torch.linalg.svd((means - centre) * w.sqrt()[:, None], full_matrices=False)
                signs = torch.sign(vh[:2].gather(1, vh[:2].abs().argmax(1, keepdim=True)))
                basis = vh[:2] * signs   # largest component positive
            self.centre, self.basis = centre.float(), basis.float().contiguous()

    @property
    def note(self) -> str:
        """What the plane is, for a picture's title ("" for a 2-D latent space)."""
        if self.latent_dim == 2:
            return ""
        hidden = ("follow the posterior means of the events nearby" if len(self.anchors) else "at their mean")
        return (f"{self.latent_dim}-D latent space: the posterior means' first two principal directions;\n"
                f"the other {self.latent_dim - 2} coordinates {hidden}")

    @classmethod
    @torch.no_grad()
    def of(cls, model: VAE, reference: torch.Tensor) -> LatentPlane:
        """The plane of ``model``'s posterior means of the ``reference`` events ``(N, ...)``.

        Only the ``MAX_ANCHORS`` most frequent distinct events count (ties in a fixed random
        order; for chords that is every chord). Beyond 2-D the hidden coordinates follow them;
        of the ``BANDWIDTHS`` (times the median distance from a dot to its nearest other dot)
        the smoothest whose agreement is within ``AGREEMENT_SLACK`` of the best is kept.
        """
        distinct, counts = distinct_events(reference)
        tie_break = torch.rand(len(counts), generator=torch.Generator().manual_seed(0))
        top = torch.argsort(counts + tie_break, descending=True)[:MAX_ANCHORS]
        distinct, counts = distinct[top], counts[top]
        means = posterior_means(model, distinct).cpu()
        plane = cls(model.latent_dim, means if model.latent_dim != 2 else None, counts=counts)
        points = plane.project(means)
        plane.extent = round(MARGIN * points.abs().max().item() + 0.05, 1)
        if isinstance(distinct, torch.Tensor):   # "decodes to itself" is defined for binary events
            if model.latent_dim > 2 and len(distinct) > 1:
                plane._follow(model, distinct, counts, means, points)
            plane.agreement = plane.agreement_of(model, distinct, counts, means)
        return plane

    def _follow(self, model: VAE, distinct: torch.Tensor, counts: torch.Tensor, means: torch.Tensor,
                points: torch.Tensor) -> None:
        """Set the anchors from the events' dots and choose the bandwidth (see :meth:`of`)."""
        self.anchors = points.contiguous()
        self.lifts = (means - self.centre - points @ self.basis).contiguous()
        self.log_weights = counts.double().log().float()
        gaps = torch.cdist(self.anchors, self.anchors)
        gaps.fill_diagonal_(float("inf"))
        nearest = gaps.min(1).values
        spacing = max(nearest[nearest.isfinite()].median().item(), 1e-3 * (self.extent or 1.0))
        agreements = []
        for factor in BANDWIDTHS:
            self.bandwidth = factor * spacing
            agreements.append(self.agreement_of(model, distinct, counts, means))
        best = max(agreements)
        self.bandwidth = next(f for f, a in zip(BANDWIDTHS, agreements) if a >= best - AGREEMENT_SLACK) * spacing

    def agreement_of(self, model: VAE, distinct: torch.Tensor, counts: torch.Tensor,
                     means: torch.Tensor | None = None) -> float:
        """The share of events (``distinct`` ``(K, ...)`` weighted by ``counts`` ``(K,)``) whose dot,
        at the projection of its posterior mean, decodes to the event itself."""
        means = posterior_means(model, distinct).cpu() if means is None else means
        agrees = decodes_to(model, self.to_latent(self.project(means)), distinct)
        return (counts[agrees].sum() / counts.sum()).item()

    def to_dict(self) -> dict[str, Any]:
        """Everything as lists and numbers, for the checkpoint and the explorer page."""
        return {"latent_dim": self.latent_dim, "centre": self.centre.tolist(), "basis": self.basis.tolist(),
                "extent": self.extent, "agreement": self.agreement, "bandwidth": self.bandwidth,
                "anchors": self.anchors.tolist(), "lifts": self.lifts.tolist(),
                "log_weights": self.log_weights.tolist()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LatentPlane:
        """The plane of :meth:`to_dict`; a dict of the older flat format (centre and basis only) gives
        that flat plane."""
        plane = cls(d["latent_dim"], centre=torch.tensor(d["centre"]), basis=torch.tensor(d["basis"]))
        if d.get("anchors"):
            plane.anchors = torch.tensor(d["anchors"], dtype=torch.float32).view(-1, 2)
            plane.lifts = torch.tensor(d["lifts"], dtype=torch.float32).view(len(plane.anchors), -1)
            plane.log_weights = torch.tensor(d["log_weights"], dtype=torch.float32)
            plane.bandwidth = float(d["bandwidth"])
        plane.extent, plane.agreement = d.get("extent"), d.get("agreement")
        return plane

    def project(self, z: torch.Tensor) -> torch.Tensor:
        """Latent points ``(N, D)`` -> plane coordinates ``(N, 2)``."""
        return (z.cpu().float() - self.centre) @ self.basis.T

    def to_latent(self, uv: torch.Tensor) -> torch.Tensor:
        """Plane coordinates ``(N, 2)`` -> the latent points ``(N, D)`` the pictures decode there."""
        uv = uv.float()
        z = self.centre + uv @ self.basis
        if not len(self.anchors):
            return z
        hidden = []
        for chunk in uv.split(_CHUNK):
            logits = self.log_weights - torch.cdist(chunk, self.anchors).square() / (2 * self.bandwidth ** 2)
            hidden.append(torch.softmax(logits, 1) @ self.lifts)
        return z + torch.cat(hidden)

    def grid(self, n: int, scale: float | None = None, on_data: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """An n x n grid over [-scale, scale]^2 of the plane (default: its ``extent``, else 1):
        ``(z (n, n, D), ticks (n,))``, ticks the cell centres' coordinates.

        Each cell is sampled at its centre; with ``on_data``, a cell that holds dots of the corpus's
        chords (the anchors) is sampled at its most frequent one instead, so that a picture of the
        grid names each frequent chord where its dot is (its region may be smaller than a cell).
        Row 0 is the top of the picture (largest second coordinate), as in the Keras example.
        """
        scale = scale or self.extent or 1.0
        ticks = torch.linspace(-scale, scale, n)
        u = ticks.view(1, n).expand(n, n)
        v = ticks.flip(0).view(n, 1).expand(n, n)
        uv = torch.stack([u, v], -1).reshape(n * n, 2)
        if on_data and len(self.anchors) and n > 1:
            uv = uv.clone()
            step = (ticks[1] - ticks[0]).item()
            col = torch.round((self.anchors[:, 0] + scale) / step).long()
            row = n - 1 - torch.round((self.anchors[:, 1] + scale) / step).long()
            inside = (col >= 0) & (col < n) & (row >= 0) & (row < n)
            cell = (row * n + col)[inside]
            weight = self.log_weights[inside]
            best = torch.full((n * n,), -torch.inf).scatter_reduce(0, cell, weight, "amax")
            chosen = weight == best[cell]            # the most frequent anchor of its cell (ties: any)
            uv[cell[chosen]] = self.anchors[inside][chosen]
        return self.to_latent(uv).view(n, n, -1), ticks
