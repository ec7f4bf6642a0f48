"""Pictures of a chord run, all in the run's stored latent plane: ``latent_space.png`` (the decoded
grid), ``label_clusters.png`` (the corpus's chords at their posterior means) and
``circle_of_fifths.png`` (for runs trained on all transpositions); and the colourings they and
the explorer page share."""
from __future__ import annotations

import colorsys
import re
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.colors import to_rgba
from matplotlib.patches import Patch
from matplotlib.text import Text

from ..chords.analysis import FIFTHS, RINGS, CircleOfFifths
from ..chords.names import name_chord
from ..chords.spelling import PITCH_NAMES
from ..chords.vocabulary import LABELS
from ..chords.pcset import rows_to_masks, to_mask
from ..chords.stats import CORPUS_COLOURS
from ..errors import ChordVAEError
from ..plane import LatentPlane, posterior_means
from ..plots import tight
from ..vae import VAE
from .labels import place_labels

if TYPE_CHECKING:
    from ..datasets.base import Data

QUALITY_COLOURS = dict(zip(LABELS, matplotlib.colormaps["tab10"].colors))
#: roots coloured round the circle of fifths, so that related roots get related hues
ROOT_COLOURS = [colorsys.hsv_to_rgb(FIFTHS.index(pc) / 12, 0.65, 0.85) for pc in range(12)]
COLOURINGS = ("quality", "root", "corpus")
REGION_MASS = 0.7   # share of a corpus's chords inside the line drawn around its region
MARGIN = 0.06       # of the dots' spread, added around them by label_clusters.png's axes


def corpus_owners(codes: np.ndarray, corpus: np.ndarray, n_corpora: int) -> dict[int, int]:
    """For each pitch-class set (``codes`` ``(N,)``, one per event, from ``corpus`` ``(N,)``), the
    corpus whose chords include it most often as a share of that corpus's chords."""
    distinct, inverse = np.unique(codes, return_inverse=True)
    shares = np.zeros((len(distinct), n_corpora))
    totals = np.bincount(corpus, minlength=n_corpora)
    np.add.at(shares, (inverse.reshape(-1), corpus), 1 / totals[corpus])
    return dict(zip(distinct.tolist(), shares.argmax(1).tolist()))


class Colouring:
    """The colour of a pitch-class set by ``quality``, ``root`` (on a colour circle of fifths) or
    ``corpus`` (see :func:`corpus_owners`; grey when no corpus has it). The explorer page uses the same."""

    def __init__(self, by: str, data: Data | None):
        if by not in COLOURINGS:
            raise ChordVAEError(f"chords can be coloured by {', '.join(COLOURINGS)}, not {by!r}")
        self.by = by
        self.names = list(getattr(data, "corpus_names", [])) if data is not None else []
        if by == "corpus":
            if not self.names:
                raise ChordVAEError("colouring by corpus needs the run's data with its corpus names")
            self.owner = corpus_owners(rows_to_masks(torch.cat([data.train, data.validation])[:, :12].numpy() >= 0.5),
                                       torch.cat([data.train_corpus, data.validation_corpus]).numpy(),
                                       len(self.names))

    def of(self, pitch_classes: tuple[int, ...]) -> Any:
        if self.by == "quality":
            return QUALITY_COLOURS[name_chord(pitch_classes).label]
        if self.by == "root":
            return ROOT_COLOURS[name_chord(pitch_classes).root] if pitch_classes else "lightgrey"
        c = self.owner.get(to_mask(pitch_classes)) if pitch_classes else None
        return "lightgrey" if c is None else CORPUS_COLOURS[c % len(CORPUS_COLOURS)]

    def items(self) -> list[tuple[str, Any]]:
        """The legend: (label, colour) pairs."""
        if self.by == "quality":
            return list(QUALITY_COLOURS.items())
        if self.by == "root":
            return [(PITCH_NAMES[pc], ROOT_COLOURS[pc]) for pc in FIFTHS]
        return [(n, CORPUS_COLOURS[i % len(CORPUS_COLOURS)]) for i, n in enumerate(self.names)]

    def legend(self, ax: Axes) -> Any:
        """Draw the legend to the right of ``ax`` and return it."""
        return ax.legend(handles=[Patch(color=c, label=label) for label, c in self.items()],
                         loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, title=self.by)


def _pitch_classes(events: torch.Tensor) -> list[tuple[int, ...]]:
    return [tuple(np.flatnonzero(v[:12].numpy() >= 0.5).tolist()) for v in events]


@torch.no_grad()
def latent_space_figure(model: VAE, plane: LatentPlane, colouring: Colouring, n: int = 12,
                        scale: float | None = None) -> Figure:
    """Decoded chords on the n x n grid of ``plane`` over [-scale, scale]^2 (default: the plane's
    extent, which holds every chord's dot), each cell sampled where its most frequent chord's dot
    is (else at its centre; :meth:`LatentPlane.grid` ``on_data``), coloured by the decoded chord and
    shaded by the decoder's confidence, its symbol shrunk to fit the cell."""
    z, ticks = plane.grid(n, scale, on_data=True)
    probs = model.decode_mean(z.reshape(n * n, -1))[:, :12].numpy()
    sets = probs >= 0.5
    step = (ticks[1] - ticks[0]).item() if n > 1 else 2 * (scale or plane.extent or 1.0)
    fig = Figure(figsize=(9.5, 8))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    half = ticks[-1].item() + step / 2
    ax.set_xlim(-half, half)
    ax.set_ylim(-half, half)
    ax.set_aspect("equal")
    ax.set_xlabel(plane.axis_labels[0])
    ax.set_ylabel(plane.axis_labels[1])
    colouring.legend(ax)
    ax.set_title("decoded chords on the latent grid (pitch classes with p ≥ 0.5; shade = confidence),\n"
                 "each cell decoded at the dot of its most frequent chord, else at its centre"
                 + (f"\n{plane.note}" if plane.note else ""), fontsize=10)
    tight(fig)
    ax.apply_aspect()   # the equal aspect shrinks the axes at draw time: measure the cells as drawn
    renderer = fig.canvas.get_renderer()
    cell = abs(ax.transData.transform((step, 0))[0] - ax.transData.transform((0, 0))[0])  # pixels
    base = min(10.0, max(5.0, 11 - n / 3))
    pcs = [tuple(np.flatnonzero(row).tolist()) for row in sets]
    shade = 0.35 + 0.5 * np.abs(probs - 0.5).mean(1) * 2
    colours = np.array([to_rgba(colouring.of(p), a) for p, a in zip(pcs, shade)]).reshape(n, n, 4)
    ax.imshow(colours, extent=(-half, half, -half, half), interpolation="nearest", zorder=0)
    for k in range(n * n):
        row, col = divmod(k, n)
        text = ax.text(ticks[col].item(), ticks[n - 1 - row].item(), name_chord(pcs[k]).symbol if pcs[k] else "—",
                       ha="center", va="center", fontsize=base, linespacing=0.9)
        _fit_text(text, 0.92 * cell, renderer)
    return fig


def _fit_text(text: Text, width: float, renderer: Any) -> None:
    """Make ``text`` at most ``width`` pixels wide: broken onto two lines at the break nearest its
    middle (a space, comma, "add" or "omit"), then in a smaller font as far as needed."""
    if text.get_window_extent(renderer).width <= width:
        return
    label = text.get_text()
    breaks = [m.start() for m in re.finditer(r" |,|(?=add)|(?=omit)", label) if 0 < m.start() < len(label)]
    if breaks:
        cut = min(breaks, key=lambda b: abs(b - len(label) / 2))
        text.set_text(label[:cut].rstrip() + "\n" + label[cut:].lstrip(" ,"))
    wide = text.get_window_extent(renderer).width
    if wide > width:
        text.set_fontsize(max(3.0, text.get_fontsize() * width / wide))


@torch.no_grad()
def label_clusters_figure(model: VAE, data: Data, plane: LatentPlane, colouring: Colouring,
                          labelled: int = 20) -> Figure:
    """One point per distinct chord of the corpus at its posterior mean, sized by frequency,
    coloured by ``colouring``; the ``labelled`` most frequent named without overlaps. With several
    corpora, a line around each corpus's region: its densest part holding REGION_MASS of its chords."""
    events = torch.cat([data.train, data.validation])
    distinct, inverse, counts = torch.unique(events, dim=0, return_inverse=True, return_counts=True)
    points = plane.project(posterior_means(model, distinct)).numpy()
    pcs = _pitch_classes(distinct)
    fig = Figure(figsize=(11, 9))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    sizes = 8 + 400 * (counts.numpy() / counts.max().item()) ** 0.5
    ax.scatter(points[:, 0], points[:, 1], s=sizes, c=[colouring.of(p) for p in pcs], alpha=0.7,
               edgecolors="k", linewidths=0.3)
    ax.set_xlabel(plane.axis_labels[0])
    ax.set_ylabel(plane.axis_labels[1])
    legend = colouring.legend(ax)
    names = getattr(data, "corpus_names", [])
    if len(names) > 1:
        corpus = torch.cat([data.train_corpus, data.validation_corpus]).numpy()
        per_corpus = np.zeros((len(distinct), len(names)))
        np.add.at(per_corpus, (inverse.numpy(), corpus), 1)
        handles = []
        for c, name in enumerate(names):
            colour = CORPUS_COLOURS[c % len(CORPUS_COLOURS)]
            if density_region(ax, points, per_corpus[:, c], colour):
                handles.append(Line2D([], [], color=colour, lw=2, label=name))
        ax.add_artist(legend)
        legend.set_clip_on(False)   # add_artist clips to the axes; this legend lies beside them
        ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(1.01, 0), fontsize=8,
                  title=f"corpus ({REGION_MASS:.0%} region)")
    _fit_limits(ax, points)
    ax.set_title(f"{len(distinct)} distinct chords ({len(events)} events) at their posterior means"
                 + (f"\n{plane.note}" if plane.note else ""), fontsize=10)
    tight(fig)
    top = torch.argsort(counts, descending=True, stable=True)[:labelled].numpy()
    place_labels(ax, [name_chord(pcs[i]).symbol for i in top], points[top])
    return fig


def circle_of_fifths_figure(circle: CircleOfFifths, title: str = "") -> Figure:
    """Each ring of :class:`CircleOfFifths` drawn as a closed line through its chords in fifths
    order, each chord named beside its dot (no two names overlap); thin grey lines join relative
    major and minor."""
    fig = Figure(figsize=(9, 8))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    p = circle.points
    for k in range(12):  # C -- Am, G -- Em, ...
        ax.plot(p[[k, 12 + k], 0], p[[k, 12 + k], 1], color="0.8", lw=0.8, zorder=1)
    colours = []
    for ring, quality in enumerate(RINGS):
        idx = list(range(12 * ring, 12 * ring + 12)) + [12 * ring]
        colour = QUALITY_COLOURS[quality.name]
        colours += [colour] * 12
        ax.plot(p[idx, 0], p[idx, 1], "-o", color=colour, ms=5, lw=1.2, label=quality.name, zorder=2)
    ax.set_xlabel(circle.plane.axis_labels[0])
    ax.set_ylabel(circle.plane.axis_labels[1])
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=9)
    _fit_limits(ax, p)
    note = f"\n{circle.plane.note}" if circle.plane.note else ""
    ax.set_title((title or "major, minor and dominant-seventh chords at their posterior means, "
                  "in circle-of-fifths order") + note, fontsize=10)
    tight(fig)
    place_labels(ax, circle.labels, p, colours=colours, fontsize=9)
    return fig


def _fit_limits(ax: Axes, points: np.ndarray) -> None:
    """Axes that hold ``points`` ``(N, 2)`` with a margin of MARGIN of their spread, and no more."""
    lo, hi = points.min(0), points.max(0)
    pad = MARGIN * np.maximum(hi - lo, 1e-3)
    ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
    ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])


def density_region(ax: Axes, points: np.ndarray, weights: np.ndarray, colour: Any,
                   mass: float = REGION_MASS, n: int = 120) -> bool:
    """Outline the densest region holding ``mass`` of the weight of ``points`` ``(M, 2)``.

    The density is a Gaussian kernel estimate (Scott's bandwidth per axis, from the effective
    number of points); the line is its level above which ``mass`` of the weighted points lie.
    Returns False (nothing drawn) when fewer than 3 points carry weight.
    """
    keep = weights > 0
    if keep.sum() < 3:
        return False
    p, w = points[keep], weights[keep] / weights[keep].sum()
    centre = w @ p
    spread = np.sqrt(w @ (p - centre) ** 2)
    bandwidth = np.maximum(spread, 1e-3 + 0.02 * np.ptp(points, 0)) * (1 / (w ** 2).sum()) ** (-1 / 6)

    def density(x: np.ndarray, y: np.ndarray) -> np.ndarray:   # at (x_i, y_j) pairs: (len(y), len(x))
        kx = np.exp(-0.5 * ((x[:, None] - p[None, :, 0]) / bandwidth[0]) ** 2)
        ky = np.exp(-0.5 * ((y[:, None] - p[None, :, 1]) / bandwidth[1]) ** 2)
        return (ky * w) @ kx.T

    gaps = (p[:, None, :] - p[None, :, :]) / bandwidth            # (M, M, 2)
    at_points = np.exp(-0.5 * (gaps ** 2).sum(-1)) @ w
    order = np.argsort(-at_points)
    level = at_points[order][np.searchsorted(np.cumsum(w[order]), mass)]
    lo, hi = points.min(0) - 3 * bandwidth, points.max(0) + 3 * bandwidth
    gx, gy = np.linspace(lo[0], hi[0], n), np.linspace(lo[1], hi[1], n)
    ax.contour(gx, gy, density(gx, gy), levels=[level], colors=[colour], linewidths=2)
    return True
