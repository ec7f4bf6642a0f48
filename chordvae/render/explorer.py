"""``chordvae explore``: one self-contained HTML page that shows and plays a chord run's latent plane.

Python exports what the page needs (decoder weights, the plane, a decoded background grid, the
corpus's distinct chords, the names of every pitch-class set that can appear) as JSON into
the template ``explorer.html`` with its script and style inlined; the page runs the decoder
itself, so every point of the plane decodes, and writes its own MIDI.
"""
from __future__ import annotations

import base64
import html
import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import torch
from matplotlib.colors import to_hex
from torch import nn

from ..chords.names import name_chord
from ..chords.pcset import from_mask, rows_to_masks
from ..chords.spelling import PITCH_NAMES
from ..chords.stats import CORPUS_COLOURS
from ..datasets.chords import ChordData, Chords
from ..datasets.progressions import Progressions
from ..errors import ChordVAEError
from ..fileio import write_text
from ..listen.midi import RenderOptions
from ..listen.voicing import BASS_LOW, MIDDLE_C
from ..chords.vocabulary import LABELS
from ..pictures.chords import QUALITY_COLOURS, ROOT_COLOURS, Colouring
from ..plane import LatentPlane, posterior_means
from ..runs import Run
from ..vae import VAE

THRESHOLD = RenderOptions.min_prob   # a pitch class sounds from this probability on, as in `decode`
NO_SET = 0xFFFF                       # background cell whose decode is empty
NAMES_FINER = 2                      # chords are named on a grid this much finer than the background's


@dataclass
class ExplorerOptions:
    """``grid``: background cells per side (the chords decoded on a grid twice as fine are named);
    ``extent``: the page shows [-extent, extent]^2 of the plane (None: the plane's, which holds the corpus's chords)."""

    grid: int = 256
    extent: float | None = None


def write_explorer(run: Run, out: str | Path, options: ExplorerOptions = ExplorerOptions()) -> Path:
    """Write the explorer page of a chord run (or of a progression run:
    :mod:`chordvae.render.progressions`) to ``out`` (a file, or a folder to hold ``explorer.html``)
    atomically; returns the path written."""
    out = Path(out)
    if out.is_dir():
        out = out / "explorer.html"
    if isinstance(run.adapter, Progressions):
        from .progressions import progression_data

        write_text(out, page(progression_data(run, options.extent), "progressions"))
    else:
        write_text(out, page(explorer_data(run, options)))
    return out


def page(data: dict[str, Any], name: str = "explorer") -> str:
    """The template ``NAME.html`` filled with ``data`` (JSON in a non-executed script element), the
    shared script ``common.js`` and its own script ``NAME.js``, and the style ``explorer.css``
    (with ``NAME.css`` after it when there is one)."""
    files = resources.files(__package__)
    styles = ["explorer.css"] + ([f"{name}.css"] if name != "explorer" and files.joinpath(f"{name}.css").is_file() else [])
    parts = {"STYLE": "\n".join(files.joinpath(f).read_text(encoding="utf-8") for f in styles),
             "SCRIPT": "\n".join(files.joinpath(f).read_text(encoding="utf-8") for f in ("common.js", f"{name}.js")),
             "DATA": json.dumps(data, separators=(",", ":")).replace("<", "\\u003c"),  # no "</script>" inside
             "TITLE": html.escape(data["title"])}
    template = files.joinpath(f"{name}.html").read_text(encoding="utf-8")
    return re.sub(r"/\*(STYLE|SCRIPT|DATA|TITLE)\*/", lambda m: parts[m.group(1)], template)


@torch.no_grad()
def explorer_data(run: Run, options: ExplorerOptions = ExplorerOptions()) -> dict[str, Any]:
    """Everything the page shows, as JSON-ready values (weights as base64 float32)."""
    if not isinstance(run.adapter, Chords):
        raise ChordVAEError(f"the explorer page is for chord runs and progression runs; {run.dir} is a {run.dataset} run")
    model = run.model.eval()
    data = run.data()
    events = torch.cat([data.train, data.validation])
    distinct, counts = torch.unique(events, dim=0, return_counts=True)
    plane = run.latent_plane(data)
    points = plane.project(posterior_means(model, distinct))
    extent = options.extent or plane.extent or _fit_extent(points)
    n = options.grid
    probs = _decode_grid(model, plane, n, extent)
    grid_masks = rows_to_masks(probs >= THRESHOLD)
    fine_masks = rows_to_masks(_decode_grid(model, plane, NAMES_FINER * n, extent) >= THRESHOLD)
    point_masks = rows_to_masks(distinct[:, :12].numpy())
    masks = sorted((set(grid_masks.tolist()) | set(fine_masks.tolist()) | set(point_masks.tolist())) - {0})
    index = {m: i for i, m in enumerate(masks)}
    named = [name_chord(from_mask(m)) for m in masks]
    qualities = [LABELS.index(n.label) for n in named]
    cells = np.array([index.get(int(m), NO_SET) for m in grid_masks], dtype="<u2")
    confidence = np.abs(probs - 0.5).mean(1) * 2
    point_sets = [index[int(m)] for m in point_masks]
    roots = [n.root for n in named]
    return {
        "title": f"chordvae explorer: {run.dir.name}",
        "run": {"dir": run.dir.name, "epoch": run.epoch, "latentDim": model.latent_dim,
                "note": plane.note, "axes": list(plane.axis_labels)},
        "decoder": _decoder_layers(model.decoder),
        "outputs": int(np.prod(model.config.event_shape)),
        "threshold": THRESHOLD,
        "plane": {**plane.to_dict(), "extent": extent},
        "background": {"n": n, "cells": _b64(cells), "confidence": _b64((confidence * 255).round().astype(np.uint8))},
        "sets": {"masks": masks, "names": [n.name for n in named],
                 "symbols": [n.symbol for n in named], "roots": roots, "qualities": qualities},
        "pitchNames": list(PITCH_NAMES),
        "voicing": {"bassLow": BASS_LOW, "middleC": MIDDLE_C},
        "render": {"bpm": RenderOptions.bpm, "beats": RenderOptions.beats, "velocity": RenderOptions.velocity,
                   "program": RenderOptions.program},
        "points": {"u": _rounded(points[:, 0]), "v": _rounded(points[:, 1]),
                   "count": counts.tolist(), "set": point_sets, "events": len(events)},
        "colourings": _colourings(qualities, roots, point_sets, _corpus_of(data, distinct)),
    }


def _colourings(qualities: list[int], roots: list[int], point_sets: list[int],
                corpus: tuple[list[str], list[int]] | None) -> list[dict[str, Any]]:
    """The point colourings the page can switch between: labels, colours and each point's label,
    in the colours of the run's pictures (:mod:`chordvae.pictures.chords`)."""
    colourings = [
        {"name": "quality", "labels": list(LABELS), "colours": [to_hex(QUALITY_COLOURS[q]) for q in LABELS],
         "of": [qualities[s] for s in point_sets]},
        {"name": "root", "labels": list(PITCH_NAMES),
         "colours": [to_hex(c) for c in ROOT_COLOURS], "of": [roots[s] for s in point_sets]},
    ]
    if corpus is not None:
        names, of = corpus
        colourings.append({"name": "corpus", "labels": names, "of": of,
                           "colours": [to_hex(CORPUS_COLOURS[k % len(CORPUS_COLOURS)]) for k in range(len(names))]})
    return colourings


def _decoder_layers(decoder: nn.Module) -> list[dict[str, Any]]:
    """The MLP decoder as a list of affine layers (weights ``(out, in)`` row-major), each maybe
    followed by a ReLU."""
    modules = list(decoder.children()) if isinstance(decoder, nn.Sequential) else [decoder]
    layers: list[dict[str, Any]] = []
    for module in modules:
        if isinstance(module, nn.Linear):
            layers.append({"in": module.in_features, "out": module.out_features, "relu": False,
                           "w": _b64(module.weight.detach().float().numpy()),
                           "b": _b64(module.bias.detach().float().numpy())})
        elif isinstance(module, nn.ReLU) and layers:
            layers[-1]["relu"] = True
        else:
            raise ChordVAEError(f"the explorer page runs mlp decoders only; this one has a {type(module).__name__}")
    return layers


def _corpus_of(data: ChordData, distinct: torch.Tensor) -> tuple[list[str], list[int]] | None:
    """For a run whose pieces come from several named corpora: their names, and for each distinct
    event ``(K, features)`` the corpus the pictures colour it by (:class:`Colouring`). None for one corpus."""
    if len(data.corpus_names) < 2:
        return None
    colouring = Colouring("corpus", data)
    return data.corpus_names, [colouring.owner[int(m)] for m in rows_to_masks(distinct[:, :12].numpy() >= 0.5)]


@torch.no_grad()
def _decode_grid(model: VAE, plane: LatentPlane, n: int, extent: float) -> np.ndarray:
    """Pitch-class probabilities ``(n * n, 12)`` on the plane's n x n grid, row by row from the top left."""
    z, _ = plane.grid(n, extent)
    return model.decode_mean(z.reshape(n * n, -1))[:, :12].numpy()


def _fit_extent(points: torch.Tensor) -> float:
    """Half-width of a square view holding the corpus's chords with a margin (at least 1)."""
    return round(max(1.0, 1.08 * points.abs().max().item()), 2)


def _b64(array: np.ndarray) -> str:
    return base64.b64encode(np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()).decode()


def _rounded(values: torch.Tensor) -> list[float]:
    return [round(v, 4) for v in values.tolist()]
