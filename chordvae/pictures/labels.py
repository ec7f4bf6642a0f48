"""Text labels beside points that never overlap one another (for any picture of points)."""
from __future__ import annotations

import itertools
from typing import Any, Sequence

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.text import Text
from matplotlib.transforms import Bbox

#: candidate offsets (in points) of a label's corner from its point: beside it first, then further out
_OFFSETS = [(dx * r, dy * r) for r in (3, 9, 16, 26) for dx, dy in
            ((1, 1), (1, -1), (-1, 1), (-1, -1), (1.4, 0), (-1.4, 0), (0, 1.4), (0, -1.4))]


def place_labels(ax: Axes, texts: Sequence[str], points: np.ndarray, colours: Sequence[Any] | None = None,
                 fontsize: float = 8) -> list[Text]:
    """Write ``texts[i]`` beside ``points[i]`` (data coordinates, ``(N, 2)``) in priority order, each at the
    first candidate position inside the axes that overlaps no label placed before; a label placed away
    from its point gets a thin line to it, and one that fits nowhere is left out. The axes' limits and
    the figure's layout must be final. Returns the labels drawn."""
    fig = ax.figure
    if fig.canvas is None or not hasattr(fig.canvas, "get_renderer"):
        FigureCanvasAgg(fig)
    renderer = fig.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    scale = fig.dpi / 72                       # points -> pixels
    placed: list[Bbox] = []
    drawn = []
    for i, (text, xy) in enumerate(zip(texts, points)):
        colour = colours[i] if colours is not None else "black"
        probe = ax.text(0, 0, text, fontsize=fontsize)
        box = probe.get_window_extent(renderer)
        probe.remove()
        w, h = box.width, box.height
        px, py = ax.transData.transform(xy)
        for dx, dy in _OFFSETS:
            x0 = px + dx * scale - (w if dx < 0 else w / 2 if dx == 0 else 0)
            y0 = py + dy * scale - (h if dy < 0 else h / 2 if dy == 0 else 0)
            candidate = Bbox.from_bounds(x0, y0, w, h)
            if frame.containsx(x0) and frame.containsx(x0 + w) and frame.containsy(y0) \
                    and frame.containsy(y0 + h) and not any(candidate.overlaps(b) for b in placed):
                break
        else:
            continue
        placed.append(candidate)
        far = max(abs(dx), abs(dy)) > 4
        drawn.append(ax.annotate(text, xy, xytext=((x0 - px) / scale, (y0 - py) / scale),
                                 textcoords="offset points", ha="left", va="bottom", fontsize=fontsize,
                                 color=colour, arrowprops={"arrowstyle": "-", "color": "0.5", "lw": 0.5,
                                                           "shrinkA": 0, "shrinkB": 2} if far else None))
    return drawn


def label_overlap(texts: Sequence[Text]) -> float:
    """The largest area (square pixels) that two of ``texts`` share on their figure's canvas (the
    text itself: an annotation's line to its point is not counted)."""
    if not texts:
        return 0.0
    canvas = texts[0].figure.canvas
    canvas.draw()                   # annotations find their final place when drawn
    renderer = canvas.get_renderer()
    boxes = [Text.get_window_extent(t, renderer) for t in texts]
    worst = 0.0
    for a, b in itertools.combinations(boxes, 2):
        inter = Bbox.intersection(a, b)
        if inter is not None:
            worst = max(worst, inter.width * inter.height)
    return worst
