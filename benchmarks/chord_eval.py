"""Chord truth for the development sets, and duration-weighted scores of chord events against it.

Truth loaders return :class:`Piece` objects whose spans are on the time axis the data set is
aligned on: seconds for POP909 (``chord_midi.txt`` is on the MIDI file's clock), quarter-note
beats for rn-dev (the scores' offsets; the MIDI exports have the same ticks). :func:`score`
compares chord events with such spans the way rn-dev's README describes its held-out test:
weighted by the duration of the truth spans; where predictions overlap, the one that started
last counts.

    from benchmarks.chord_eval import load_pop909, load_rn_dev, score
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "datasets"
METRICS = ("coverage", "exact", "triad", "jaccard", "root", "bass")


@dataclass(frozen=True)
class Span:
    """One truth chord: ``start``/``end`` in the piece's unit; pitch classes, C = 0; ``root``
    and ``bass`` -1 for no chord; ``triad``: the root, third and fifth the prediction must hold;
    ``key``: the local key (``chordvae.chords.keys``: tonic + 12 if minor), -1 unknown."""

    start: float
    end: float
    pitch_classes: frozenset[int]
    root: int
    bass: int
    triad: frozenset[int]
    label: str | None = None
    supported: bool = True
    key: int = -1


@dataclass
class Piece:
    """A music file and its truth; ``unit`` is ``"seconds"`` or ``"beats"``."""

    name: str
    path: Path
    group: str
    unit: str
    spans: list[Span] = field(default_factory=list)


NOTE_NAMES = {"C": 0, "D": 2, "E": 4, "F": 5, "G": 7, "A": 9, "B": 11}


def parse_key(text: str) -> int:
    """``"E- major"`` (music21), ``"Gb:maj"`` / ``"A:min"`` (POP909) -> tonic + 12 if minor."""
    tonic, mode = text.replace(":", " ").split()
    pc = NOTE_NAMES[tonic[0].upper()] + sum({"#": 1, "-": -1, "b": -1}[a] for a in tonic[1:])
    return pc % 12 + (12 if mode.startswith("min") else 0)


def _pop909_keys(song: Path) -> tuple[np.ndarray, np.ndarray]:
    """A POP909 song's key changes: start times (seconds, the audio's clock, close to the MIDI's) and keys."""
    rows = [line.split("\t") for line in (song / "key_audio.txt").read_text().splitlines() if line.strip()]
    return np.array([float(r[0]) for r in rows]), np.array([parse_key(r[2]) for r in rows])


def load_pop909(folder: Path = SHARED / "pop909-dev", limit: int | None = None) -> list[Piece]:
    """POP909 songs with their Harte chord labels (seconds on the MIDI clock) and keys; ``N``
    spans have an empty set and root -1."""
    import mir_eval

    pieces = []
    for song in sorted(p for p in folder.iterdir() if p.is_dir())[:limit]:
        spans = []
        key_start, song_keys = _pop909_keys(song)
        for line in (song / "chord_midi.txt").read_text().splitlines():
            start, end, label = line.split("\t")
            root, bitmap, bass = mir_eval.chord.encode(label)
            if root < 0:
                spans.append(Span(float(start), float(end), frozenset(), -1, -1, frozenset(), label))
                continue
            pcs = frozenset(int(root + i) % 12 for i in np.flatnonzero(bitmap))
            triad = frozenset((root + i) % 12 for i in (0, 3, 4, 6, 7, 8) if bitmap[i])
            key = int(song_keys[max(np.searchsorted(key_start, float(start), side="right") - 1, 0)])
            spans.append(Span(float(start), float(end), pcs, int(root), int(root + bass) % 12, triad, label,
                              key=key))
        pieces.append(Piece(song.name, song / f"{song.name}.mid", "pop", "seconds", spans))
    return pieces


def load_rn_dev(folder: Path = SHARED / "rn-dev", limit: int | None = None,
                groups: Sequence[str] = ("textbooks", "lieder")) -> list[Piece]:
    """rn-dev's expert analyses as spans in quarter-note beats, with the MIDI exports as files."""
    manifest = json.loads((folder / "manifest.json").read_text())
    pieces = []
    for entry in manifest["pieces"]:
        if entry["group"] not in groups:
            continue
        spans = []
        for line in (folder / entry["truth"]).read_text().splitlines():
            d = json.loads(line)
            spans.append(Span(d["start_beats"], d["end_beats"], frozenset(d["pitch_classes"]), d["root_pc"],
                              d["bass_pc"], frozenset(d["triad_pcs"]), None, d["supported"], parse_key(d["key"])))
        pieces.append(Piece(entry["name"], folder / entry["midi"], entry["group"], "beats", spans))
    return pieces[:limit]


#: rn-dev's pieces split in two halves for fitting and checking (benchmarks/fit_emission.py):
#: each group (textbooks, lieder) shuffled with this seed, its first half ``fit``, the rest ``check``.
RN_DEV_SPLIT_SEED = 19
RN_DEV_PARTS = ("all", "fit", "check")


def rn_dev_part(pieces: list[Piece], part: str = "all") -> list[Piece]:
    """The pieces of ``pieces`` (rn-dev) in ``part``: ``all``, ``fit`` or ``check`` (whole pieces,
    half of each group, drawn with :data:`RN_DEV_SPLIT_SEED`)."""
    if part == "all":
        return pieces
    chosen = set()
    for group in sorted({p.group for p in pieces}):
        names = sorted(p.name for p in pieces if p.group == group)
        order = np.random.default_rng(RN_DEV_SPLIT_SEED).permutation(len(names))
        half = order[: len(names) // 2] if part == "fit" else order[len(names) // 2:]
        chosen.update(names[i] for i in half)
    return [p for p in pieces if p.name in chosen]


def score(starts: np.ndarray, ends: np.ndarray, sets: Sequence[frozenset[int]], basses: Sequence[int],
          roots: Sequence[int], spans: Sequence[Span], supported_only: bool = False) -> dict[str, float]:
    """Duration-weighted agreement of predicted chords with truth ``spans``.

    ``starts``/``ends`` (K,) in the spans' unit, sorted by start; ``sets``, ``basses``, ``roots``:
    the prediction's pitch classes, bass and root (-1 when unknown). Returns the truth duration
    (``duration``) and the weighted sum of each metric (divide by ``duration`` for a rate), so
    pieces add up: coverage (some prediction present), exact (same set), triad (prediction
    holds the truth's root, third and fifth), jaccard, root, bass. ``N`` spans are skipped.
    """
    totals = dict.fromkeys(("duration",) + METRICS, 0.0)
    starts, ends = np.asarray(starts, dtype=float), np.asarray(ends, dtype=float)
    for span in spans:
        if not span.pitch_classes or (supported_only and not span.supported):
            continue
        length = span.end - span.start
        totals["duration"] += length
        # cut the span at every prediction boundary inside it; the last-started prediction wins
        cuts = np.unique(np.concatenate([[span.start, span.end], starts, ends]))
        cuts = cuts[(cuts >= span.start) & (cuts <= span.end)]
        for a, b in zip(cuts[:-1], cuts[1:]):
            mid = 0.5 * (a + b)
            live = np.flatnonzero((starts <= mid) & (ends > mid))
            if len(live) == 0:
                continue
            k = live[-1]
            w = b - a
            pred = sets[k]
            totals["coverage"] += w
            totals["exact"] += w * (pred == span.pitch_classes)
            totals["triad"] += w * span.triad.issubset(pred)
            totals["jaccard"] += w * len(pred & span.pitch_classes) / len(pred | span.pitch_classes)
            totals["root"] += w * (roots[k] == span.root)
            totals["bass"] += w * (basses[k] == span.bass)
    return totals


def score_events(events: Sequence, piece: Piece, supported_only: bool = False) -> dict[str, float]:
    """:func:`score` for chordvae ChordEvents (seconds or beats, as the piece's truth is)."""
    events = sorted(events, key=lambda e: e.start_beats)
    if piece.unit == "seconds":
        starts = [e.start_s for e in events]
        ends = [e.end_s for e in events]
    else:
        starts = [e.start_beats for e in events]
        ends = [e.end_beats for e in events]
    return score(np.array(starts), np.array(ends), [frozenset(e.pitch_classes) for e in events],
                 [e.bass for e in events], [e.root for e in events], piece.spans, supported_only)


def rates(totals: dict[str, float]) -> dict[str, float]:
    """Weighted sums -> rates in [0, 1]."""
    d = totals["duration"] or 1.0
    return {m: totals[m] / d for m in METRICS}


def add(a: dict[str, float], b: dict[str, float]) -> dict[str, float]:
    return {k: a.get(k, 0.0) + b[k] for k in b}
