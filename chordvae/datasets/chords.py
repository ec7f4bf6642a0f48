"""Chords: MIDI / MusicXML corpora as pitch-class chord vectors (12 dims, or 24 with the bass)."""
from __future__ import annotations

import sys
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.patches import Patch

from ..chords.corpus import Corpus, default_sources, read_corpus
from ..chords.events import QUALITIES, chord_name, chord_quality, chord_root, chord_symbol
from ..chords.pcset import from_mask, rows_to_masks
from ..chords.segment import Segmentation
from ..chords.vectors import FEATURES, PITCH_SETS, TRANSPOSE, chord_vectors
from ..errors import ChordVAEError
from ..listen.audio import render_wav
from ..listen.chordspec import parse_chord
from ..listen.midi import RenderOptions, write_chords
from ..plots import LatentPlane, latent_grid, posterior_means, save_figure
from ..vae import VAE
from .base import Data, DatasetAdapter

VALIDATION_FRACTION = 0.1  # of the pieces: whole pieces are held out, never single chords
QUALITY_COLOURS = dict(zip(QUALITIES, plt.get_cmap("tab10").colors))
SEGMENT_KEYS = {"segment": "mode", "threshold": "threshold", "min_notes": "min_notes",
                "min_duration": "min_duration"}


class Chords(DatasetAdapter):
    """Chord events from music files, as binary pitch-class vectors (C = index 0).

    Sources: MIDI and score files or folders; none = the Bach chorales in music21's corpus.
    Options: ``segment``, ``threshold``, ``min_notes``, ``min_duration`` (see
    :class:`~chordvae.chords.segment.Segmentation`), ``features`` (``pitch-class`` or
    ``pitch-class+bass``), ``transpose`` (``none``, ``all``, ``c``), ``pitch_set`` (``chord``,
    ``sounding``), ``jobs``, ``strict``,
    ``no_cache``. Labels are chord qualities; validation holds out whole pieces.
    """

    name: ClassVar[str] = "chords"
    default_arch: ClassVar[str] = "mlp"
    default_hidden: ClassVar[tuple[int, ...]] = (256, 128)

    def load(self, sources: list[str], options: dict[str, Any], seed: int,
             run_dir: Path | None = None) -> Data:
        features = options.get("features") or FEATURES[0]
        transpose = options.get("transpose") or TRANSPOSE[0]
        pitch_set = options.get("pitch_set") or PITCH_SETS[0]
        paths = [str(Path(s).resolve()) for s in sources]
        seg = segmentation(options)
        corpus = read(paths, options)
        if run_dir is not None:
            corpus.write_skipped(Path(run_dir) / "skipped.tsv")
        x, piece = chord_vectors(corpus.pieces, features, transpose, pitch_set)
        train_mask, split_note = _split_by_piece(piece, len(corpus.pieces), seed)
        events = torch.from_numpy(x).float()
        labels = torch.from_numpy(quality_labels(x[:, :12]))
        resolved = {"segment": seg.mode, "threshold": seg.threshold, "min_notes": seg.min_notes,
                    "min_duration": seg.min_duration, "features": features, "transpose": transpose,
                    "pitch_set": pitch_set,
                    "jobs": options.get("jobs"), "strict": bool(options.get("strict")),
                    "no_cache": bool(options.get("no_cache"))}
        mask = torch.from_numpy(train_mask)
        return Data(events[mask], events[~mask], labels[mask], labels[~mask], list(QUALITIES),
                    meta={"sources": paths, "options": resolved, "seed": seed,
                          "pieces": len(corpus.pieces), "skipped": len(corpus.skipped)},
                    notices=[corpus.summary(), split_note])

    def metrics(self, model: VAE, x: torch.Tensor) -> dict[str, float]:
        """Exact pitch-class-set reconstruction rate and per-pitch-class accuracy (from the posterior mean)."""
        predicted = decode_means(model, x)[:, :12] >= 0.5
        correct = predicted == (x[:, :12] >= 0.5)
        return {"exact_set_rate": correct.all(1).float().mean().item(),
                "pitch_class_accuracy": correct.float().mean().item()}

    def plot_latent_space(self, model: VAE, data: Data | None, meta: dict[str, Any],
                          path: Path, n: int | None = None, scale: float = 1.0) -> None:
        """Decoded chords on an n x n latent grid (n = 12), each cell coloured by quality."""
        n = n or 12
        plane, z, ticks = latent_grid(model, data.validation, n, scale)
        with torch.no_grad():
            probs = torch.sigmoid(model.decode(z))[:, :12].numpy()
        sets = probs >= 0.5
        fig, ax = plt.subplots(figsize=(max(8, 0.9 * n), max(8, 0.9 * n)))
        for k in range(n * n):
            row, col = divmod(k, n)
            pcs = tuple(np.flatnonzero(sets[k]).tolist())
            quality = chord_quality(pcs) if len(pcs) >= 3 else "other"
            ax.add_patch(plt.Rectangle((col, n - 1 - row), 1, 1, color=QUALITY_COLOURS[quality],
                                       alpha=0.35 + 0.5 * float(np.abs(probs[k] - 0.5).mean() * 2)))
            ax.text(col + 0.5, n - 0.5 - row, chord_symbol(pcs) if pcs else "—",
                    ha="center", va="center", fontsize=max(5, 11 - n // 3))
        ax.set_xlim(0, n)
        ax.set_ylim(0, n)
        step = max(1, n // 8)
        labels = [f"{t:.1f}" for t in ticks.tolist()]
        ax.set_xticks(np.arange(n)[::step] + 0.5, labels[::step])
        ax.set_yticks(np.arange(n)[::step] + 0.5, labels[::step])
        ax.set_xlabel(plane.axis_labels[0])
        ax.set_ylabel(plane.axis_labels[1])
        ax.set_aspect("equal")
        _quality_legend(ax)
        ax.set_title("decoded chords on the latent grid (pitch classes with p ≥ 0.5; shade = confidence)"
                     + (f"\n{plane.note}" if plane.note else ""))
        save_figure(fig, path)

    def plot_label_clusters(self, model: VAE, data: Data, meta: dict[str, Any], path: Path,
                            labelled: int = 20) -> None:
        """One point per distinct chord of the corpus at its posterior mean, sized by frequency,
        coloured by quality; the most frequent ones named."""
        events = torch.cat([data.train, data.validation])
        distinct, counts = torch.unique(events, dim=0, return_counts=True)
        means = posterior_means(model, distinct)
        plane = LatentPlane(model.latent_dim, posterior_means(model, events))
        points = plane.project(means).numpy()
        pcs = [tuple(np.flatnonzero(v[:12].numpy() >= 0.5).tolist()) for v in distinct]
        colours = [QUALITY_COLOURS[chord_quality(p)] for p in pcs]
        fig, ax = plt.subplots(figsize=(11, 9))
        sizes = 8 + 400 * (counts.numpy() / counts.max().item()) ** 0.5
        ax.scatter(points[:, 0], points[:, 1], s=sizes, c=colours, alpha=0.7, edgecolors="k", linewidths=0.3)
        for i in torch.argsort(counts, descending=True)[:labelled].tolist():
            ax.annotate(chord_symbol(pcs[i]), points[i], fontsize=8, xytext=(4, 4), textcoords="offset points")
        ax.set_xlabel(plane.axis_labels[0])
        ax.set_ylabel(plane.axis_labels[1])
        _quality_legend(ax)
        ax.set_title(f"{len(distinct)} distinct chords ({len(events)} events) at their posterior means"
                     + (f"\n{plane.note}" if plane.note else ""))
        save_figure(fig, path)


    def parse_event(self, text: str, meta: dict[str, Any]) -> torch.Tensor:
        """A typed chord ("C E G", "0,4,7", "Cmaj7") as a vector of the run's features."""
        spec = parse_chord(text)
        if spec.pitch_classes is None:
            raise ChordVAEError(f"{text!r} is a latent point, not a chord")
        vector = torch.zeros(24 if meta["options"]["features"] == "pitch-class+bass" else 12)
        vector[list(spec.pitch_classes)] = 1.0
        if len(vector) == 24:
            bass = spec.bass if spec.bass is not None else chord_root(spec.pitch_classes)
            vector[12 + bass] = 1.0
        return vector

    def render(self, probs: torch.Tensor, path: Path, options: dict[str, Any]) -> list[str]:
        """Decoded chords, voiced and played one after another: MIDI (``.mid``) or MusicXML
        (``.musicxml``), plus a WAV through FluidSynth when ``options["wav"]`` is set.

        A chord is the pitch classes with probability >= ``threshold`` (0.5), or the ``notes``
        most probable ones; the bass is the bass dimension's most probable pitch class when the
        model has one, else the chord's root. Empty decodes are reported and left out.
        """
        p = probs[:, :12].numpy()
        if options.get("notes"):
            top = np.argsort(-p, axis=1)[:, :options["notes"]]
            chosen = np.zeros_like(p, dtype=bool)
            np.put_along_axis(chosen, top, True, axis=1)
        else:
            chosen = p >= options.get("threshold", 0.5)
        basses = probs[:, 12:].argmax(1).tolist() if probs.shape[1] == 24 else [None] * len(p)
        chords, kept_basses, lines = [], [], []
        for i, row in enumerate(chosen):
            pcs = tuple(np.flatnonzero(row).tolist())
            if not pcs:
                lines.append(f"{i + 1:3d}  (empty: no pitch class reaches p >= {options.get('threshold', 0.5)}; left out)")
                continue
            chords.append(pcs)
            kept_basses.append(basses[i] if basses[i] in pcs else None)
            lines.append(f"{i + 1:3d}  {chord_name(pcs):34s} {chord_symbol(pcs):8s} {list(pcs)}")
        if not chords:
            raise ChordVAEError("every decoded chord is empty; lower --threshold or use --notes K")
        render_options = RenderOptions(**{k: options[k] for k in ("bpm", "beats", "program", "velocity")
                                          if options.get(k) is not None})
        written = write_chords(chords, path, render_options, basses=kept_basses)
        if options.get("wav"):
            try:
                render_wav(written, options["wav"], soundfont=options.get("soundfont"))
                lines.append(f"audio: {options['wav']}")
            except ChordVAEError as e:
                lines.append(f"no audio: {e} (the chords are still in {path})")
        return lines


def segmentation(options: dict[str, Any]) -> Segmentation:
    """The Segmentation the options ask for (unset ones keep their defaults)."""
    return Segmentation(**{field: options[key] for key, field in SEGMENT_KEYS.items()
                           if options.get(key) is not None})


def read(sources: list[str], options: dict[str, Any]) -> Corpus:
    """Read the chord corpus of ``sources`` (none: music21's Bach chorales) as the options say;
    unless ``options["progress"]`` is false, show a progress bar and name each skipped file on stderr."""
    progress = options.get("progress", True)
    return read_corpus(sources or default_sources(), segmentation(options), jobs=options.get("jobs"),
                       strict=bool(options.get("strict")), use_cache=not options.get("no_cache"),
                       progress=progress, report=_to_stderr if progress else None)


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def quality_labels(pitch_classes: np.ndarray) -> np.ndarray:
    """Quality index into QUALITIES for each row of a binary ``(N, 12)`` array, shape ``(N,)``.

    music21 names each distinct pitch-class set once (at most 4,096), not each event.
    """
    codes = rows_to_masks(pitch_classes)
    distinct, inverse = np.unique(codes, return_inverse=True)
    per_code = np.array([QUALITIES.index(_quality_of_code(int(c))) for c in distinct], dtype=np.int64)
    return per_code[inverse.reshape(-1)]


@lru_cache(maxsize=4096)
def _quality_of_code(code: int) -> str:
    return chord_quality(from_mask(code))


@torch.no_grad()
def decode_means(model: VAE, x: torch.Tensor) -> torch.Tensor:
    """Decoded probabilities at the posterior means of ``x``, shape ``(N, features)``."""
    return torch.sigmoid(model.decode(posterior_means(model, x)))


def _split_by_piece(piece: np.ndarray, n_pieces: int, seed: int) -> tuple[np.ndarray, str]:
    """Boolean training mask over events: whole pieces held out for validation, chosen by seed."""
    rng = np.random.default_rng(seed)
    if n_pieces < 2:
        mask = rng.random(len(piece)) >= VALIDATION_FRACTION
        return mask, "only one piece: validating on a random tenth of its chords"
    n_val = max(1, round(VALIDATION_FRACTION * n_pieces))
    held_out = rng.permutation(n_pieces)[:n_val]
    return ~np.isin(piece, held_out), f"validation: {n_val} of {n_pieces} pieces held out (seed {seed})"


def _quality_legend(ax: plt.Axes) -> None:
    ax.legend(handles=[Patch(color=c, label=q) for q, c in QUALITY_COLOURS.items()],
              loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, title="quality")
