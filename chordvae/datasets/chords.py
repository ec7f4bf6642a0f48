"""Chords: MIDI / MusicXML corpora as pitch-class chord vectors (12 dims, or 24 with the bass)."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Mapping

import matplotlib
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch, Rectangle

from ..chords.analysis import circle_of_fifths, neighbourhood_overlap, plot_circle_of_fifths
from ..chords.corpus import Corpus, file_digest
from ..chords.events import PITCH_NAMES, QUALITIES, chord_name, chord_quality, chord_root, chord_symbol
from ..chords.pcset import from_mask, rows_to_masks, to_mask
from ..chords.options import ChordOptions, read
from ..chords.sources import canonical, resolve
from ..chords.stats import CORPUS_COLOURS, compare_corpora, write_comparison
from ..chords.vectors import chord_vector, chord_vectors
from ..errors import ChordVAEError, DataError
from ..listen.audio import render_wav
from ..listen.chordspec import parse_chord
from ..listen.midi import RenderOptions, write_chords
from ..train import TrainConfig
from ..plots import LatentPlane, latent_grid, posterior_means, save_figure
from ..vae import VAE
from .base import Data, DatasetAdapter, Pieces

VALIDATION_FRACTION = 0.1  # of the pieces: whole pieces are held out, never single chords
QUALITY_COLOURS = dict(zip(QUALITIES, matplotlib.colormaps["tab10"].colors))
ROOT_COLOURS = [matplotlib.colormaps["hsv"](k / 12) for k in range(12)]   # a colour circle of roots
COLOURINGS = ("quality", "root", "corpus")
REGION_MASS = 0.7   # share of a corpus's chords inside the line drawn around its region
@dataclass
class ChordData(Data):
    """Chord data that also knows each event's corpus: ``train_corpus`` / ``validation_corpus``
    are int64 ``(N,)`` indices into ``corpus_names``."""

    corpus_names: list[str] = field(default_factory=list)
    train_corpus: torch.Tensor | None = None
    validation_corpus: torch.Tensor | None = None


class Chords(DatasetAdapter):
    """Chord events from music files, as binary pitch-class vectors (C = index 0).

    Sources: named sources (``bach=data/midi/bach``, ``m21:palestrina``, files, folders; see
    :mod:`chordvae.chords.sources`); none = the Bach chorales in music21's corpus.
    Options: a :class:`ChordOptions` (or its flat dict). Labels are chord qualities;
    validation holds out whole pieces. The meta stores a fingerprint of every file read
    (sha256 of its content), and reloading refuses a corpus that has changed since.
    """

    name: ClassVar[str] = "chords"
    default_arch: ClassVar[str] = "mlp"
    default_hidden: ClassVar[tuple[int, ...]] = (256, 128)
    default_latent_dim: ClassVar[int] = 4
    # measured in benchmarks/chord_quality.py: beta 0.5 reconstructs more chords exactly and has
    # a lower importance-weighted NLL than beta 1 on the bundled chorales
    default_training: ClassVar[TrainConfig] = TrainConfig(
        epochs=1000, beta=0.5, patience=100, lr_patience=30, validation_samples=16)
    colourings: ClassVar[tuple[str, ...]] = COLOURINGS

    def load(self, sources: list[str], options: ChordOptions | Mapping[str, Any], seed: int,
             run_dir: Path | None = None) -> ChordData:
        opts = ChordOptions.coerce(options)
        specs = [canonical(s) for s in sources]
        corpus = read(specs, opts, progress=self.progress)
        if run_dir is not None:
            corpus.write_skipped(Path(run_dir) / "skipped.tsv")
        x, piece = chord_vectors(corpus.pieces, opts.features, opts.transpose, opts.pitch_set)
        train_mask, split_note = _split_by_piece(piece, len(corpus.pieces), seed)
        events = torch.from_numpy(x).float()
        labels = torch.from_numpy(quality_labels(x[:, :12]))
        names, corpus_of_piece = corpus_index(corpus)
        corpus_of_event = torch.from_numpy(corpus_of_piece[piece])
        mask = torch.from_numpy(train_mask)
        return ChordData(events[mask], events[~mask], labels[mask], labels[~mask], list(QUALITIES),
                         meta={"sources": specs, "options": opts.to_dict(), "seed": seed,
                               "pieces": len(corpus.pieces), "skipped": len(corpus.skipped),
                               "corpora": corpus_counts(corpus), "fingerprint": fingerprint(specs)},
                         notices=[corpus.summary(), split_note], corpus_names=names, train_groups=torch.from_numpy(piece[train_mask]),
                         train_corpus=corpus_of_event[mask], validation_corpus=corpus_of_event[~mask])

    def load_pieces(self, sources: list[str], options: ChordOptions | Mapping[str, Any]) -> Pieces:
        opts = ChordOptions.coerce(options)
        corpus = read(list(sources), opts, progress=self.progress)
        x, piece = chord_vectors(corpus.pieces, opts.features, opts.transpose, opts.pitch_set)
        return Pieces(torch.from_numpy(x).float(), torch.from_numpy(piece), len(corpus.pieces),
                      [corpus.summary()])

    def reload(self, meta: dict[str, Any]) -> Data:
        """The data of ``meta``, refused when files were added, removed or changed since (the
        held-out pieces would no longer be those the run was validated on)."""
        if "fingerprint" in meta:
            changes = corpus_changes(meta["fingerprint"], fingerprint(meta["sources"]))
            if changes:
                raise DataError(f"the corpus has changed since this run was trained ({changes}): the "
                                "held-out pieces would differ; restore the files or train a new run")
        return self.load(meta["sources"], meta["options"], meta["seed"])

    def metrics(self, model: VAE, x: torch.Tensor) -> dict[str, float]:
        """Exact pitch-class-set reconstruction rate and per-pitch-class accuracy (from the posterior mean)."""
        predicted = decode_means(model, x)[:, :12] >= 0.5
        correct = predicted == (x[:, :12] >= 0.5)
        return {"exact_set_rate": correct.all(1).float().mean().item(),
                "pitch_class_accuracy": correct.float().mean().item()}

    def plot_latent_space(self, model: VAE, data: Data | None, meta: dict[str, Any],
                          path: Path, n: int | None = None, scale: float = 1.0,
                          colour_by: str = "quality") -> None:
        """Decoded chords on an n x n latent grid (n = 12), each cell coloured by the decoded
        chord's quality, root, or the corpus in which it is most frequent (grey: in none)."""
        n = n or self.default_grid
        plane, z, ticks = latent_grid(model, data.validation, n, scale)
        with torch.no_grad():
            probs = torch.sigmoid(model.decode(z))[:, :12].numpy()
        sets = probs >= 0.5
        colouring = Colouring(colour_by, data)
        fig = Figure(figsize=(max(8, 0.9 * n), max(8, 0.9 * n)))
        ax = fig.subplots()
        for k in range(n * n):
            row, col = divmod(k, n)
            pcs = tuple(np.flatnonzero(sets[k]).tolist())
            ax.add_patch(Rectangle((col, n - 1 - row), 1, 1, color=colouring.of(pcs),
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
        colouring.legend(ax)
        ax.set_title("decoded chords on the latent grid (pitch classes with p ≥ 0.5; shade = confidence)"
                     + (f"\n{plane.note}" if plane.note else ""))
        save_figure(fig, path)

    def plot_label_clusters(self, model: VAE, data: Data, meta: dict[str, Any], path: Path,
                            colour_by: str = "quality", labelled: int = 20) -> None:
        """One point per distinct chord of the corpus at its posterior mean, sized by frequency,
        coloured by quality, root or corpus; the most frequent ones named. With several corpora,
        a line around each corpus's region: its densest part holding REGION_MASS of its chords."""
        events = torch.cat([data.train, data.validation])
        distinct, inverse, counts = torch.unique(events, dim=0, return_inverse=True, return_counts=True)
        means = posterior_means(model, distinct)
        plane = LatentPlane(model.latent_dim, posterior_means(model, events))
        points = plane.project(means).numpy()
        pcs = [tuple(np.flatnonzero(v[:12].numpy() >= 0.5).tolist()) for v in distinct]
        colouring = Colouring(colour_by, data)
        fig = Figure(figsize=(11, 9))
        ax = fig.subplots()
        sizes = 8 + 400 * (counts.numpy() / counts.max().item()) ** 0.5
        ax.scatter(points[:, 0], points[:, 1], s=sizes, c=[colouring.of(p) for p in pcs], alpha=0.7,
                   edgecolors="k", linewidths=0.3)
        for i in torch.argsort(counts, descending=True)[:labelled].tolist():
            ax.annotate(chord_symbol(pcs[i]), points[i], fontsize=8, xytext=(4, 4), textcoords="offset points")
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
            ax.legend(handles=handles, loc="lower left", bbox_to_anchor=(1.01, 0), fontsize=8,
                      title=f"corpus ({REGION_MASS:.0%} region)")
        ax.set_title(f"{len(distinct)} distinct chords ({len(events)} events) at their posterior means"
                     + (f"\n{plane.note}" if plane.note else ""))
        save_figure(fig, path)

    def plot_extra(self, model: VAE, data: Data, meta: dict[str, Any], run_dir: Path) -> list[Path]:
        """``circle_of_fifths.png``; with several corpora, ``corpora.json`` and ``corpora.png``
        compare their chords."""
        paths = [self._circle_of_fifths(model, data, meta, Path(run_dir) / "circle_of_fifths.png")]
        names = getattr(data, "corpus_names", [])
        if len(names) < 2:
            return paths
        x = torch.cat([data.train, data.validation])[:, :12].numpy() >= 0.5
        corpus = torch.cat([data.train_corpus, data.validation_corpus]).numpy()
        comparison = [Path(run_dir) / "corpora.json", Path(run_dir) / "corpora.png"]
        pieces = {c["name"]: c["pieces"] for c in meta.get("corpora", [])}
        write_comparison(compare_corpora(x, corpus, names, pieces), *comparison)
        return paths + comparison

    @staticmethod
    def _circle_of_fifths(model: VAE, data: Data, meta: dict[str, Any], path: Path) -> Path:
        """``circle_of_fifths.png``: the major, minor and dominant-seventh chords at their posterior
        means in circle-of-fifths order (most telling for a model trained with ``--transpose all``)."""
        circle = circle_of_fifths(model, data.event_shape[0])
        transpose = meta["options"].get("transpose", "none")
        plot_circle_of_fifths(circle, path, title=f"chords at their posterior means, circle-of-fifths order "
                                                  f"(trained with transpose {transpose})")
        return path

    def latent_figures(self, model: VAE, x: torch.Tensor) -> dict[str, float]:
        """Latent vs musical neighbourhood over the distinct chords of ``x`` (see
        :func:`~chordvae.chords.analysis.neighbourhood_overlap`)."""
        distinct = torch.unique(x, dim=0)
        if len(distinct) < 2:
            return {}
        return neighbourhood_overlap(posterior_means(model, distinct), distinct[:, :12])

    def parse_event(self, text: str, meta: dict[str, Any]) -> torch.Tensor:
        """A typed chord ("C E G", "0,4,7", "Cmaj7") as a vector of the run's features."""
        spec = parse_chord(text)
        if spec.pitch_classes is None:
            raise ChordVAEError(f"{text!r} is a latent point, not a chord")
        dims = 24 if meta["options"]["features"] == "pitch-class+bass" else 12
        bass = spec.bass if spec.bass is not None or dims == 12 else chord_root(spec.pitch_classes)
        return torch.from_numpy(chord_vector(spec.pitch_classes, dims, bass)).float()

    def render(self, probs: torch.Tensor, path: Path, options: RenderOptions) -> list[str]:
        """Decoded chords, voiced and played one after another: MIDI (``.mid``) or MusicXML
        (``.musicxml``), plus a WAV through FluidSynth when ``options.wav`` is set.

        A chord is the pitch classes with probability >= ``options.min_prob``, or the
        ``options.notes`` most probable ones; the bass is the bass dimension's most probable
        pitch class when the model has one, else the chord's root. Empty decodes are reported
        and left out.
        """
        p = probs[:, :12].numpy()
        if options.notes:
            top = np.argsort(-p, axis=1)[:, :options.notes]
            chosen = np.zeros_like(p, dtype=bool)
            np.put_along_axis(chosen, top, True, axis=1)
        else:
            chosen = p >= options.min_prob
        basses = probs[:, 12:].argmax(1).tolist() if probs.shape[1] == 24 else [None] * len(p)
        chords, kept_basses, lines = [], [], []
        for i, row in enumerate(chosen):
            pcs = tuple(np.flatnonzero(row).tolist())
            if not pcs:
                lines.append(f"{i + 1:3d}  (empty: no pitch class reaches p >= {options.min_prob}; left out)")
                continue
            chords.append(pcs)
            kept_basses.append(basses[i] if basses[i] in pcs else None)
            lines.append(f"{i + 1:3d}  {chord_name(pcs):34s} {chord_symbol(pcs):8s} {list(pcs)}")
        if not chords:
            raise ChordVAEError("every decoded chord is empty; lower --min-prob or use --notes K")
        written = write_chords(chords, path, options, basses=kept_basses)
        if options.wav:
            try:
                render_wav(written, options.wav, soundfont=options.soundfont)
                lines.append(f"audio: {options.wav}")
            except ChordVAEError as e:
                lines.append(f"no audio: {e} (the chords are still in {path})")
        return lines


def corpus_index(corpus: Corpus) -> tuple[list[str], np.ndarray]:
    """The corpus names in order of first appearance, and each piece's index into them ``(pieces,)``."""
    names = list(dict.fromkeys(p.corpus for p in corpus.pieces))
    return names, np.array([names.index(p.corpus) for p in corpus.pieces], dtype=np.int64)


def corpus_counts(corpus: Corpus) -> list[dict[str, Any]]:
    """Each corpus's name with its numbers of pieces and chords, in order of first appearance."""
    counts: dict[str, dict[str, Any]] = {}
    for p in corpus.pieces:
        entry = counts.setdefault(p.corpus, {"name": p.corpus, "pieces": 0, "chords": 0})
        entry["pieces"] += 1
        entry["chords"] += len(p.events)
    return list(counts.values())


def fingerprint(sources: list[str]) -> dict[str, str]:
    """``{file: sha256 of its content}`` for every music file of ``sources`` (none: the default corpus)."""
    return {str(f.path): file_digest(f.path) for f in resolve(sources)}


def corpus_changes(before: Mapping[str, str], now: Mapping[str, str]) -> str:
    """What differs between two fingerprints, e.g. ``"1 file added: x.mid; 2 changed: a.mid, b.mid"``; "" if none."""
    groups = {"added": sorted(set(now) - set(before)), "removed": sorted(set(before) - set(now)),
              "changed": sorted(f for f in set(before) & set(now) if before[f] != now[f])}
    parts = []
    for what, files in groups.items():
        if files:
            shown = ", ".join(files[:3]) + (f" and {len(files) - 3} more" if len(files) > 3 else "")
            parts.append(f"{len(files)} file{'s' * (len(files) != 1)} {what}: {shown}")
    return "; ".join(parts)


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


class Colouring:
    """The colour of a pitch-class set by ``quality``, ``root`` (music21's) or ``corpus`` (the one
    whose chords include the set most often, as a share of that corpus; grey when none does)."""

    def __init__(self, by: str, data: Data | None):
        if by not in COLOURINGS:
            raise ChordVAEError(f"chords can be coloured by {', '.join(COLOURINGS)}, not {by!r}")
        self.by = by
        self.names = list(getattr(data, "corpus_names", [])) if data is not None else []
        if by == "corpus":
            if not self.names:
                raise ChordVAEError("colouring by corpus needs the run's data with its corpus names")
            codes = rows_to_masks(torch.cat([data.train, data.validation])[:, :12].numpy() >= 0.5)
            corpus = torch.cat([data.train_corpus, data.validation_corpus]).numpy()
            shares: dict[int, np.ndarray] = {}
            totals = np.bincount(corpus, minlength=len(self.names))
            for code, c in zip(codes.tolist(), corpus.tolist()):
                shares.setdefault(code, np.zeros(len(self.names)))[c] += 1 / totals[c]
            self.corpus_of = {code: int(np.argmax(v)) for code, v in shares.items()}

    def of(self, pitch_classes: tuple[int, ...]) -> Any:
        if self.by == "quality":
            return QUALITY_COLOURS[chord_quality(pitch_classes) if len(pitch_classes) >= 3 else "other"]
        if self.by == "root":
            return ROOT_COLOURS[chord_root(pitch_classes)] if pitch_classes else "lightgrey"
        c = self.corpus_of.get(to_mask(pitch_classes)) if pitch_classes else None
        return "lightgrey" if c is None else CORPUS_COLOURS[c % len(CORPUS_COLOURS)]

    def legend(self, ax: Axes) -> Any:
        """Draw the legend to the right of ``ax`` and return it."""
        if self.by == "quality":
            items = QUALITY_COLOURS.items()
        elif self.by == "root":
            items = zip(PITCH_NAMES, ROOT_COLOURS)
        else:
            items = [(n, CORPUS_COLOURS[i % len(CORPUS_COLOURS)]) for i, n in enumerate(self.names)]
        return ax.legend(handles=[Patch(color=c, label=label) for label, c in items],
                         loc="upper left", bbox_to_anchor=(1.01, 1), fontsize=8, title=self.by)


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
