"""Corpus statistics: how the chords of several corpora differ (``corpora.json``, ``corpora.png``).

Computed from binary pitch-class rows ``(N, 12)`` (the events as trained on): the share of each
chord quality, the most frequent pitch-class sets, the number of distinct sets and the entropy
of the set distribution in nats (plug-in estimate, -sum p log p over the sets seen).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from ..fileio import write_json
from ..plots import save_figure
from .names import mask_labels, name_chord
from .pcset import from_mask, rows_to_masks
from .vocabulary import LABELS

CORPUS_COLOURS = matplotlib.colormaps["Dark2"].colors   # corpus i is drawn in CORPUS_COLOURS[i % 8]


def set_stats(pitch_classes: np.ndarray, top: int = 10) -> dict[str, Any]:
    """Statistics of one corpus's binary pitch-class rows ``(N, 12)``: chords, distinct sets,
    entropy (nats), quality shares (fractions of the chords, in LABELS order) and the ``top``
    most frequent sets with their shares."""
    codes, counts = np.unique(rows_to_masks(pitch_classes), return_counts=True)
    p = counts / counts.sum()
    quality = np.array([LABELS.index(label) for label in mask_labels(codes.tolist())], dtype=np.int64)
    shares = np.bincount(quality, weights=p, minlength=len(LABELS))
    order = np.argsort(-counts, kind="stable")[:top]
    return {"chords": int(counts.sum()), "distinct_sets": int(len(codes)),
            "entropy_nats": float(-(p * np.log(p)).sum()),
            "quality_shares": {q: float(s) for q, s in zip(LABELS, shares)},
            "top_chords": [{"chord": name_chord(from_mask(int(codes[i]))).symbol,
                            "pitch_classes": list(from_mask(int(codes[i]))), "share": float(p[i])}
                           for i in order]}


def compare_corpora(pitch_classes: np.ndarray, corpus: np.ndarray, names: Sequence[str],
                    pieces: dict[str, int] | None = None, top: int = 10) -> list[dict[str, Any]]:
    """:func:`set_stats` for each corpus: rows ``(N, 12)``, ``corpus`` int ``(N,)`` into ``names``;
    ``pieces`` (name -> number of pieces) is copied in when given."""
    return [{"name": name, **({"pieces": pieces[name]} if pieces and name in pieces else {}),
             **set_stats(pitch_classes[corpus == i], top)} for i, name in enumerate(names) if (corpus == i).any()]


def write_comparison(stats: list[dict[str, Any]], json_path: Path, png_path: Path, top: int = 10) -> None:
    """``corpora.json`` (the stats as they are) and ``corpora.png``: quality shares side by side,
    and a table of distinct sets, entropy and the most frequent chords per corpus."""
    write_json(json_path, {"corpora": stats})
    fig = Figure(figsize=(8 + 2.2 * len(stats), 6))
    bars, table = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 0.4 + 0.45 * len(stats)]})
    y = np.arange(len(LABELS))
    height = 0.8 / len(stats)
    for k, s in enumerate(stats):
        bars.barh(y + k * height, [100 * s["quality_shares"][q] for q in LABELS], height, label=s["name"],
                  color=CORPUS_COLOURS[k % len(CORPUS_COLOURS)])
    bars.set_yticks(y + 0.4 - height / 2, LABELS)
    bars.invert_yaxis()
    bars.set_xlabel("% of chords")
    bars.set_title("chord qualities")
    bars.legend(title="corpus")
    rows = ["chords", "distinct sets", "entropy (nats)"] + [f"#{i + 1}" for i in range(top)]
    cells = [[f"{s['chords']}", f"{s['distinct_sets']}", f"{s['entropy_nats']:.2f}"]
             + [f"{t['chord']} {100 * t['share']:.1f}%" for t in s["top_chords"][:top]]
             + [""] * (top - len(s["top_chords"][:top])) for s in stats]
    table.axis("off")
    table.table(cellText=np.array(cells).T.tolist(), rowLabels=rows, colLabels=[s["name"] for s in stats],
                loc="center").scale(1, 1.4)
    table.set_title("most frequent chords")
    save_figure(fig, png_path)
