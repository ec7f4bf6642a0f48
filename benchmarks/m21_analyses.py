"""Chord truth from music21's own RomanText analyses: Bach chorales and Monteverdi madrigals.

FINAL-CHECK data (issue 8): report figures on it, never tune on it.

music21's corpus ships Riemenschneider analyses of Bach chorales
(``bach/choraleAnalyses/riemenschneider*.rntxt``, each naming its BWV) and analyses of
Monteverdi madrigals (``monteverdi/madrigal.B.N.rntxt`` beside ``madrigal.B.N.mxl``). Each
numeral is placed on the SCORE's timeline (quarter-note offsets, as chordvae's score reader
gives them) by its bar number and its offset in that bar; a span lasts until the next numeral.

Alignment is verified per piece as rn-dev's README does: the chord-tone ratio (share of
sounding note time, inside analysed spans, whose pitch class is in the labelled chord) must be
at least :data:`MIN_CHORD_TONE_RATIO`, and the score's parts must be in step (every bar starts
at the same offset in every part). Pieces that fail are dropped with the reason.

The MIDI exports are written by music21 from the same scores with repeat barlines, voltas
and chord-symbol elements removed first (music21 expands repeats when writing MIDI, and sounds
chord symbols), cached, and kept only where their sounding notes match the score's exactly on
a 1/24-beat grid: then the truth's beats are the MIDI's beats too.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, replace
from pathlib import Path

import music21
import numpy as np

from benchmarks.chord_eval import Piece, Span
from chordvae.cache import cache_dir
from chordvae.chords.readers import Notes, read_notes
from chordvae.fileio import atomic_path

CORPUS = Path(music21.__file__).parent / "corpus"
MIN_CHORD_TONE_RATIO = 0.65
GRID = 24   # steps per quarter note when comparing a MIDI export with its score


@dataclass(frozen=True)
class Analysis:
    """An analysis and its score in music21's corpus; ``group`` ``chorales`` or ``madrigals``."""

    name: str
    group: str
    score: Path
    analysis: Path


@dataclass(frozen=True)
class Dropped:
    """A piece left out of the evaluation, and why."""

    name: str
    group: str
    reason: str


def analyses(groups: tuple[str, ...] = ("chorales", "madrigals")) -> list[Analysis]:
    """Every analysis in music21's corpus whose score is shipped too (cheap: no parsing)."""
    found = []
    if "chorales" in groups:
        for path in sorted((CORPUS / "bach" / "choraleAnalyses").glob("riemenschneider*.rntxt")):
            bwv = re.search(r"^BWV:\s*(\S+)", path.read_text(), re.M)
            score = CORPUS / "bach" / f"bwv{bwv.group(1)}.mxl" if bwv else None
            if score is not None and score.exists():
                found.append(Analysis(f"bwv{bwv.group(1)}", "chorales", score, path))
    if "madrigals" in groups:
        for path in sorted((CORPUS / "monteverdi").glob("madrigal.*.rntxt")):
            if path.with_suffix(".mxl").exists():
                found.append(Analysis(path.stem, "madrigals", path.with_suffix(".mxl"), path))
    return found


def load(item: Analysis) -> Piece | Dropped:
    """The piece's truth spans on the score's timeline (beats), or why it is dropped."""
    from music21 import converter, roman, stream

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = converter.parse(item.score)
        numerals = list(converter.parse(item.analysis, format="romantext").flatten()
                        .getElementsByClass(roman.RomanNumeral))
    bar_starts: dict[int, set[float]] = {}
    for part in score.parts:
        first: dict[int, float] = {}
        for m in part.getElementsByClass(stream.Measure):
            first.setdefault(m.number, float(m.offset))
        for number, offset in first.items():
            bar_starts.setdefault(number, set()).add(offset)
    out_of_step = sorted(n for n, offsets in bar_starts.items() if len(offsets) > 1)
    if out_of_step:
        return Dropped(item.name, item.group, f"score's parts out of step ({len(out_of_step)} of "
                                              f"{len(bar_starts)} bars start at different offsets, first bar {out_of_step[0]})")
    starts, chords = [], []
    for rn in numerals:
        bar = rn.getContextByClass(stream.Measure)
        if bar is None or bar.number not in bar_starts:
            return Dropped(item.name, item.group, f"analysis labels bar {getattr(bar, 'number', '?')}, "
                                                  "which the score does not have")
        starts.append(min(bar_starts[bar.number]) + float(rn.getOffsetBySite(bar)))
        chords.append(rn)
    notes = read_notes(item.score)
    spans = []
    for k, (start, rn) in enumerate(zip(starts, chords)):
        end = start + float(rn.quarterLength)
        if k + 1 < len(starts):
            end = min(end, starts[k + 1])
        if end <= start:
            continue
        pcs = frozenset(p.pitchClass for p in rn.pitches)
        triad = frozenset(p.pitchClass for p in (rn.root(), rn.third, rn.fifth) if p is not None)
        triad = triad if len(pcs) > 2 else pcs
        spans.append(Span(start, end, pcs, rn.root().pitchClass, rn.bass().pitchClass, triad, None,
                          pcs <= _sounding(notes, start, end)))
    ratio = chord_tone_ratio(notes, spans)
    if ratio < MIN_CHORD_TONE_RATIO:
        shift = max(range(12), key=lambda t: chord_tone_ratio(notes, spans, t))
        why = (f", the analysis fits the notes {shift} semitones away ({chord_tone_ratio(notes, spans, shift):.2f})"
               if shift and chord_tone_ratio(notes, spans, shift) >= MIN_CHORD_TONE_RATIO else "")
        return Dropped(item.name, item.group, f"chord-tone ratio {ratio:.2f} < {MIN_CHORD_TONE_RATIO}{why}")
    return Piece(item.name, item.score, item.group, "beats", spans)


def midi_version(piece: Piece) -> Piece | Dropped:
    """The same truth with the score's MIDI export as the file, if it sounds exactly like the score."""
    midi = midi_export(piece.path)
    if not same_notes(read_notes(piece.path), read_notes(midi)):
        return Dropped(piece.name, piece.group, "MIDI export does not sound like the score")
    return replace(piece, path=midi)


def _sounding(notes: Notes, start: float, end: float) -> frozenset[int]:
    """Pitch classes sounding anywhere in [start, end)."""
    live = (notes.start < end) & (notes.end > start)
    return frozenset(int(p) % 12 for p in np.unique(notes.pitch[live]))


def chord_tone_ratio(notes: Notes, spans: list[Span], transpose: int = 0) -> float:
    """Share of sounding note time inside ``spans`` whose pitch class (moved up ``transpose``
    semitones) is in the span's chord."""
    total = inside = 0.0
    pcs = (notes.pitch.astype(np.int64) + transpose) % 12
    for span in spans:
        overlap = np.clip(np.minimum(notes.end, span.end) - np.maximum(notes.start, span.start), 0, None)
        total += overlap.sum()
        inside += overlap[np.isin(pcs, list(span.pitch_classes))].sum()
    return inside / total if total else 0.0


def midi_export(score_path: Path) -> Path:
    """music21's MIDI export of a score without repeats or chord symbols (cached per music21 version)."""
    from music21 import bar, converter, harmony, spanner, stream

    out = cache_dir("bench-m21-midi") / f"{score_path.stem}-music21-{music21.__version__}.mid"
    if out.exists():
        return out
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        score = converter.parse(score_path)
        for m in score.recurse().getElementsByClass(stream.Measure):
            if isinstance(m.leftBarline, bar.Repeat):
                m.leftBarline = None
            if isinstance(m.rightBarline, bar.Repeat):
                m.rightBarline = bar.Barline("regular")
        for s in [score, *score.recurse(streamsOnly=True)]:
            s.removeByClass([spanner.RepeatBracket, harmony.ChordSymbol])
        with atomic_path(out) as tmp:
            score.write("midi", fp=str(tmp))
    return out


def same_notes(a: Notes, b: Notes) -> bool:
    """Do ``a`` and ``b`` sound the same pitches at every 1/:data:`GRID` beat?"""
    return np.array_equal(_roll(a), _roll(b))


def _roll(notes: Notes) -> np.ndarray:
    steps = int(np.ceil(notes.end.max() * GRID)) + 1
    roll = np.zeros((steps + 1, 128), dtype=np.int32)
    np.add.at(roll, (np.rint(notes.start * GRID).astype(int), notes.pitch), 1)
    np.add.at(roll, (np.rint(notes.end * GRID).astype(int), notes.pitch), -1)
    return np.cumsum(roll, axis=0) > 0
