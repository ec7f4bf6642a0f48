"""Pictures of sequence runs (polyphonic windows, chord progressions), all in the run's stored
latent plane: the grid of windows decoded from the plane (``latent_space.png``), windows at
their posterior means (``label_clusters.png``) and, for progressions, the progression map:
the corpus's windows coloured by corpus, key mode or cadence, with a piece's path drawn on it."""
from __future__ import annotations

from collections import Counter
from typing import Sequence

import matplotlib
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from ..chords.stats import CORPUS_COLOURS
from ..plane import LatentPlane
from ..plots import label_plane, tight
from ..progressions.frames import progression_text
from ..vae import VAE
from .labels import place_labels

#: what the progression map can be coloured by
MAP_COLOURINGS = ("corpus", "mode", "cadence")
MODE_COLOURS = {"major": "#d95f02", "minor": "#1b9e77"}
#: the most frequent cadences (or corpora, when a run has more than this many) get their own
#: colour, the rest are "other" (grey): a legend stays readable
MAP_COLOURS = 9
OTHER_COLOUR = "0.75"


@torch.no_grad()
def decoded_grid(model: VAE, plane: LatentPlane, n: int, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Windows decoded greedily (``decode_mean``) at the n x n grid of ``plane`` over
    [-scale, scale]^2, row by row from the top: ``(n * n, T, D)``, and the grid's ticks ``(n,)``."""
    z, ticks = plane.grid(n, scale)
    return model.decode_mean(z.reshape(n * n, -1)), ticks


def _grid_ticks(ax, ticks: torch.Tensor, centres_x: np.ndarray, centres_y: np.ndarray) -> None:
    labels = [f"{t:.1f}" for t in ticks.tolist()]
    ax.set_xticks(centres_x, labels)
    ax.set_yticks(centres_y, labels)


def piano_roll_grid_figure(model: VAE, plane: LatentPlane, n: int, scale: float, title: str) -> Figure:
    """An n x n grid of windows decoded from the plane, each a piano roll (time across, keys up)."""
    rolls, ticks = decoded_grid(model, plane, n, scale)               # (n * n, W, K)
    w, keys = rolls.shape[1], rolls.shape[2]
    tiles = rolls.reshape(n, n, w, keys).flip(-1).permute(0, 3, 1, 2)   # (row, key, column, frame)
    canvas = torch.nn.functional.pad(tiles, (0, 1, 0, 0, 0, 0, 0, 0), value=0.5)
    fig = Figure(figsize=(2 + n * 1.6, 2 + n * 1.6))
    ax = fig.subplots()
    ax.imshow(canvas.reshape(n * keys, n * (w + 1)).numpy(), cmap="Greys", aspect="auto",
              interpolation="nearest", vmin=0, vmax=1)
    _grid_ticks(ax, ticks, np.arange(n) * (w + 1) + w / 2, (np.arange(n) * keys + keys / 2)[::-1])
    label_plane(ax, plane, title)
    return fig


def progression_grid_figure(model: VAE, plane: LatentPlane, n: int, scale: float, beats_per_bar: int,
                            title: str) -> Figure:
    """An n x n grid of progressions decoded from the plane, each written bar by bar."""
    frames, ticks = decoded_grid(model, plane, n, scale)
    fig = Figure(figsize=(2 + n * 3.2, 2 + n * 1.2))
    ax = fig.subplots()
    for i, window in enumerate(frames.numpy()):
        row, col = divmod(i, n)
        text = progression_text(window, beats_per_bar).replace(" | ", " |\n| ")
        ax.text(col + 0.5, n - row - 0.5, text, ha="center", va="center", fontsize=7, family="monospace")
    ax.set_xlim(0, n)
    ax.set_ylim(0, n)
    _grid_ticks(ax, ticks, np.arange(n) + 0.5, np.arange(n) + 0.5)
    label_plane(ax, plane, title)
    return fig


def density_figure(points: np.ndarray, values: np.ndarray, plane: LatentPlane, title: str, label: str) -> Figure:
    """Windows at their posterior means ``points`` ``(N, 2)``, coloured by a number each
    (``values`` ``(N,)``, named ``label`` on the colour bar)."""
    fig = Figure(figsize=(9, 7))
    ax = fig.subplots()
    sc = ax.scatter(points[:, 0], points[:, 1], c=values, s=6, cmap="viridis")
    fig.colorbar(sc, ax=ax, label=label)
    label_plane(ax, plane, title)
    return fig


def map_colours(labels: Sequence[str], by: str, names: Sequence[str] = ()) -> dict[str, object]:
    """A colour per label of the progression map coloured ``by`` (one of :data:`MAP_COLOURINGS`):
    corpora in the chord pictures' colours (in the order of ``names``; of more than
    :data:`MAP_COLOURS` corpora, only the most frequent in ``labels`` have one), modes in two,
    the :data:`MAP_COLOURS` most frequent cadences in their own; the rest are grey ("other")."""
    if by == "corpus":
        order = list(names) or list(dict.fromkeys(labels))
        if len(order) > MAP_COLOURS:            # as many as there are corpus colours: none twice
            common = {c for c, _ in Counter(labels).most_common(min(MAP_COLOURS, len(CORPUS_COLOURS)))}
            order = [name for name in order if name in common]
        return {name: CORPUS_COLOURS[i % len(CORPUS_COLOURS)] for i, name in enumerate(order)}
    if by == "mode":
        return dict(MODE_COLOURS)
    palette = [c for i, c in enumerate(matplotlib.colormaps["tab10"].colors) if i != 7]   # no grey: that is "other"
    common = [c for c, _ in Counter(labels).most_common(MAP_COLOURS)]
    return {c: palette[i] for i, c in enumerate(common)}


def progression_map_figure(points: np.ndarray, labels: Sequence[str], by: str, plane: LatentPlane, title: str,
                           names: Sequence[str] = (), path: np.ndarray | None = None,
                           path_labels: Sequence[str] = (), path_name: str = "") -> Figure:
    """The progression map: windows at their posterior means ``points`` ``(N, 2)`` coloured by
    their ``labels`` (corpus, mode or cadence: ``by``), with a legend of how many windows each
    colour holds. ``path`` ``(M, 2)``: a piece's windows in order, drawn as a line from its
    start (a circle) to its end (a square), its points named by ``path_labels`` where they fit
    ("" names none)."""
    colours = map_colours(labels, by, names)
    labels = np.asarray(labels, dtype=object)
    fig = Figure(figsize=(11, 8))
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    counts = Counter(labels.tolist())
    size = float(np.clip(3000 / max(len(points), 1), 4, 30))    # dots shrink as they grow many
    other = ~np.isin(labels, list(colours))
    handles = []
    if other.any():
        ax.scatter(points[other, 0], points[other, 1], s=size, color=OTHER_COLOUR, alpha=0.6, linewidths=0)
        handles.append(Patch(color=OTHER_COLOUR, label=f"other ({int(other.sum())})"))
    for label, colour in colours.items():
        chosen = labels == label
        if chosen.any():
            ax.scatter(points[chosen, 0], points[chosen, 1], s=size, color=colour, alpha=0.7, linewidths=0)
            handles.insert(len(handles) - bool(other.any()), Patch(color=colour, label=f"{label} ({counts[label]})"))
    legend = ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8,
                       title={"corpus": "corpus", "mode": "key (mode)", "cadence": "last chord in the key"}[by])
    if path is not None and len(path):
        ax.plot(path[:, 0], path[:, 1], "-", color="black", lw=1.2, alpha=0.8, zorder=3)
        ax.scatter(path[:, 0], path[:, 1], s=14, color="black", zorder=4)
        start = ax.scatter(path[:1, 0], path[:1, 1], s=90, facecolors="white", edgecolors="black", zorder=5,
                           label=f"{path_name} (start)")
        end = ax.scatter(path[-1:, 0], path[-1:, 1], s=90, marker="s", facecolors="white", edgecolors="black",
                         zorder=5, label="end")
        ax.add_artist(legend)
        ax.legend(handles=[start, end], loc="lower left", bbox_to_anchor=(1.01, 0), fontsize=8, title="path")
    shown = points if path is None or not len(path) else np.concatenate([points, path])
    lo, hi = shown.min(0), shown.max(0)
    pad = 0.05 * np.maximum(hi - lo, 1e-3)
    ax.set_xlim(lo[0] - pad[0], hi[0] + pad[0])
    ax.set_ylim(lo[1] - pad[1], hi[1] + pad[1])
    label_plane(ax, plane, title)
    tight(fig)
    named = [k for k, label in enumerate(path_labels) if label]
    if path is not None and named:
        place_labels(ax, [path_labels[k] for k in named], path[named], fontsize=7)
    return fig
