"""Chords: MIDI / MusicXML corpora as pitch-class chord vectors (12 dims, or 24 with the bass)."""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, ClassVar, Mapping

import numpy as np
import torch

from ..batch import Augment
from ..chords.analysis import circle_of_fifths, neighbourhood_overlap
from ..chords.corpus import Corpus, file_digest
from ..chords.names import mask_labels, name_chord
from ..chords.pcset import rows_to_masks
from ..chords.options import ChordOptions, read
from ..chords.sources import canonical, resolve
from ..chords.stats import compare_corpora, write_comparison
from ..chords.vectors import chord_vector, chord_vectors, transpose_blocks
from ..chords.vocabulary import LABELS
from ..errors import ChordVAEError, DataError
from ..listen.chords import render_chords
from ..listen.chordspec import parse_chord
from ..listen.midi import RenderOptions
from ..train import TrainConfig
from ..meta import DatasetMeta
from ..pictures import chords as pictures
from ..plane import LatentPlane, plane_agreement, posterior_means
from ..plots import save_figure
from ..vae import VAE
from .base import Data, DatasetAdapter, Pieces
from .seen import split_parts

VALIDATION_FRACTION = 0.1  # of the pieces: whole pieces are held out, never single chords


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
    colourings: ClassVar[tuple[str, ...]] = pictures.COLOURINGS

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
        files = fingerprint(specs)
        return ChordData(events[mask], events[~mask], labels[mask], labels[~mask], list(LABELS),
                         meta=DatasetMeta(self.name, specs, opts.to_dict(), seed, {
                             "pieces": len(corpus.pieces), "skipped": len(corpus.skipped),
                             "corpora": corpus_counts(corpus), "fingerprint": files}),
                         notices=[corpus.summary(), split_note], corpus_names=names, train_groups=torch.from_numpy(piece[train_mask]),
                         piece_parts=split_parts([files[p.source] for p in corpus.pieces], piece, train_mask),
                         train_corpus=corpus_of_event[mask], validation_corpus=corpus_of_event[~mask])

    def augmentation(self, options: ChordOptions | Mapping[str, Any]) -> Augment | None:
        """With ``transpose random``, every training chord in a random key each epoch."""
        opts = ChordOptions.coerce(options)
        if opts.transpose != "random":
            return None
        return partial(random_keys, blocks=2 if opts.features == "pitch-class+bass" else 1)

    def load_pieces(self, sources: list[str], options: ChordOptions | Mapping[str, Any]) -> Pieces:
        opts = ChordOptions.coerce(options)
        corpus = read(list(sources), opts, progress=self.progress)
        x, piece = chord_vectors(corpus.pieces, opts.features, opts.transpose, opts.pitch_set)
        files = fingerprint(list(sources))
        return Pieces(torch.from_numpy(x).float(), torch.from_numpy(piece), len(corpus.pieces),
                      [corpus.summary()], [files[p.source] for p in corpus.pieces])

    def reload(self, meta: DatasetMeta) -> Data:
        """The data of ``meta``, refused when files were added, removed or changed since (the
        held-out pieces would no longer be those the run was validated on)."""
        if "fingerprint" in meta.extra:
            changes = corpus_changes(meta.extra["fingerprint"], fingerprint(meta.sources))
            if changes:
                raise DataError(f"the corpus has changed since this run was trained ({changes}): the "
                                "held-out pieces would differ; restore the files or train a new run")
        return self.load(meta.sources, meta.options, meta.seed)

    def metrics(self, model: VAE, x: torch.Tensor) -> dict[str, float]:
        """Exact pitch-class-set reconstruction rate and per-pitch-class accuracy (from the posterior mean)."""
        predicted = decode_means(model, x)[:, :12] >= 0.5
        correct = predicted == (x[:, :12] >= 0.5)
        return {"exact_set_rate": correct.all(1).float().mean().item(),
                "pitch_class_accuracy": correct.float().mean().item()}

    def plot_latent_space(self, model: VAE, data: Data | None, meta: DatasetMeta,
                          path: Path, n: int | None = None, scale: float | None = None,
                          plane: LatentPlane | None = None, colour_by: str = "quality") -> None:
        """Decoded chords on an n x n grid (n = 12) of the run's plane over [-scale, scale]^2
        (default: where the corpus's chords lie), coloured by quality, root or corpus (grey: in none)."""
        plane = plane or _corpus_plane(model, data)
        save_figure(pictures.latent_space_figure(model, plane, pictures.Colouring(colour_by, data),
                                                 n or self.default_grid, scale or self.default_scale(plane)), path)

    def plot_label_clusters(self, model: VAE, data: Data, meta: DatasetMeta, path: Path,
                            plane: LatentPlane | None = None, colour_by: str = "quality") -> None:
        """The corpus's distinct chords at their posterior means in the run's plane (see
        :func:`chordvae.pictures.chords.label_clusters_figure`)."""
        plane = plane or _corpus_plane(model, data)
        save_figure(pictures.label_clusters_figure(model, data, plane, pictures.Colouring(colour_by, data)), path)

    def plot_extra(self, model: VAE, data: Data, meta: DatasetMeta, run_dir: Path,
                   plane: LatentPlane | None = None) -> list[Path]:
        """``circle_of_fifths.png`` for a run trained in all 12 keys (transpose all or random;
        elsewhere the major, minor and seventh chords of rare keys lie off the corpus's plane and
        the rings tangle); with several corpora, ``corpora.json`` and ``corpora.png`` compare their chords."""
        paths = []
        circle_path = Path(run_dir) / "circle_of_fifths.png"
        if meta.options.get("transpose", "none") in ("all", "random"):
            plane = plane or _corpus_plane(model, data)
            circle = circle_of_fifths(model, data.event_shape[0], plane)
            save_figure(pictures.circle_of_fifths_figure(
                circle, f"chords at their posterior means, circle-of-fifths order (trained with transpose "
                f"{meta.options['transpose']})"),
                circle_path)
            paths.append(circle_path)
        else:
            circle_path.unlink(missing_ok=True)   # a picture of an earlier plane would mislead
        names = getattr(data, "corpus_names", [])
        if len(names) < 2:
            return paths
        x = torch.cat([data.train, data.validation])[:, :12].numpy() >= 0.5
        corpus = torch.cat([data.train_corpus, data.validation_corpus]).numpy()
        comparison = [Path(run_dir) / "corpora.json", Path(run_dir) / "corpora.png"]
        pieces = {c["name"]: c["pieces"] for c in meta.extra.get("corpora", [])}
        write_comparison(compare_corpora(x, corpus, names, pieces), *comparison)
        return paths + comparison

    def latent_figures(self, model: VAE, x: torch.Tensor, plane: LatentPlane | None = None) -> dict[str, float]:
        """Latent vs musical neighbourhood over the distinct chords of ``x`` (see
        :func:`~chordvae.chords.analysis.neighbourhood_overlap`) and, given the run's ``plane``, the
        share of the events whose dot lies where the plane decodes to that chord (``plane_agreement``)."""
        distinct = torch.unique(x, dim=0)
        figures = {"plane_agreement": plane_agreement(model, plane, x)} if plane is not None else {}
        if len(distinct) < 2:
            return figures
        return {**neighbourhood_overlap(posterior_means(model, distinct), distinct[:, :12]), **figures}

    def parse_event(self, text: str, meta: DatasetMeta) -> torch.Tensor:
        """A typed chord ("C E G", "0,4,7", "Cmaj7") as a vector of the run's features."""
        spec = parse_chord(text)
        if spec.pitch_classes is None:
            raise ChordVAEError(f"{text!r} is a latent point, not a chord")
        dims = 24 if meta.options["features"] == "pitch-class+bass" else 12
        bass = spec.bass if spec.bass is not None or dims == 12 else name_chord(spec.pitch_classes).root
        return torch.from_numpy(chord_vector(spec.pitch_classes, dims, bass)).float()

    def render(self, probs: torch.Tensor, path: Path, options: RenderOptions) -> list[str]:
        """Decoded chords as MIDI, MusicXML and WAV: :func:`chordvae.listen.chords.render_chords`."""
        return render_chords(probs, path, options)


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


def random_keys(x: torch.Tensor, generator: torch.Generator, blocks: int = 1) -> torch.Tensor:
    """``x`` ``(N, ..., F)`` with its first ``blocks`` 12-wide pitch-class blocks moved up by a
    random number of semitones per row (0 to 11, the same for every block and frame of a row),
    drawn from ``generator``; later columns (a no-chord bit) stay."""
    shift = torch.randint(12, (len(x),), generator=generator).numpy()
    return torch.from_numpy(transpose_blocks(x.cpu().numpy(), shift, blocks)).to(x.device)


def quality_labels(pitch_classes: np.ndarray) -> np.ndarray:
    """Quality index into LABELS for each row of a binary ``(N, 12)`` array, shape ``(N,)``
    (each distinct pitch-class set named once)."""
    distinct, inverse = np.unique(rows_to_masks(pitch_classes), return_inverse=True)
    per_code = np.array([LABELS.index(label) for label in mask_labels(distinct.tolist())], dtype=np.int64)
    return per_code[inverse.reshape(-1)]


def _corpus_plane(model: VAE, data: Data) -> LatentPlane:
    """The plane of all the corpus's events, for pictures drawn without the run's stored plane."""
    return LatentPlane.of(model, data.events())


@torch.no_grad()
def decode_means(model: VAE, x: torch.Tensor) -> torch.Tensor:
    """Decoded probabilities at the posterior means of ``x``, shape ``(N, features)``."""
    return model.decode_mean(posterior_means(model, x))


def _split_by_piece(piece: np.ndarray, n_pieces: int, seed: int) -> tuple[np.ndarray, str]:
    """Boolean training mask over events: whole pieces held out for validation, chosen by seed."""
    rng = np.random.default_rng(seed)
    if n_pieces < 2:
        mask = rng.random(len(piece)) >= VALIDATION_FRACTION
        return mask, "only one piece: validating on a random tenth of its chords"
    n_val = max(1, round(VALIDATION_FRACTION * n_pieces))
    held_out = rng.permutation(n_pieces)[:n_val]
    return ~np.isin(piece, held_out), f"validation: {n_val} of {n_pieces} pieces held out (seed {seed})"
