"""How musically right is each segmentation? Checked against human Roman-numeral analyses.

music21's corpus ships Riemenschneider analyses of Bach chorales (RomanText, with their BWV
numbers). For each analysed chorale, the chord each segmentation extracts from the score is
compared beat by beat with the analysis' chord; for each quarter-note beat the extracted chord
is the event covering most of that beat:

- exact: the extracted pitch-class set equals the analysed chord's;
- within: the analysed chord's pitch classes are all in the extracted set (extra notes allowed);
- no chord: the segmentation has no event there (e.g. dropped for too few notes);
- jaccard: mean |A ∩ B| / |A ∪ B| over beats (0 where there is no event);
- events right: of the events extracted (each one a training example), the share whose
  pitch-class set equals the analysed chord at the event's middle (events with min-notes 3).

    python benchmarks/segmentation_accuracy.py

(MIDI exported by music21 from these chorales expands their repeats, so it no longer lines up
with the analyses; the comparison is therefore made on the MusicXML scores.)
"""
from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import music21
import numpy as np
from music21 import converter, corpus, roman

from chordvae.chords.readers import read_notes
from chordvae.chords.segment import Segmentation, segment

SETTINGS = {
    "onset": Segmentation(mode="onset", min_duration=0.25),
    "onset, min-duration 0.5": Segmentation(mode="onset", min_duration=0.5),
    "onset, min-duration 1": Segmentation(mode="onset", min_duration=1.0),
    "beat, threshold 0.5": Segmentation(mode="beat", threshold=0.5),
    "beat, threshold 0.6": Segmentation(mode="beat", threshold=0.6),
    "beat, threshold 0.75": Segmentation(mode="beat", threshold=0.75),
    "beat, threshold 0.25": Segmentation(mode="beat", threshold=0.25),
    "bar, threshold 0.5": Segmentation(mode="bar", threshold=0.5),
}


def chorale(bwv: str) -> Path:
    """The chorale's MusicXML file in music21's corpus (some also come as kern)."""
    found = corpus.getWork(f"bach/bwv{bwv}")
    found = found if isinstance(found, list) else [found]
    return next((Path(p) for p in found if str(p).endswith(".mxl")), Path(found[0]))


def analyses() -> list[tuple[str, Path]]:
    """(BWV, analysis file) pairs whose chorale is in music21's corpus."""
    folder = Path(music21.__file__).parent / "corpus" / "bach" / "choraleAnalyses"
    pairs = []
    for path in sorted(folder.glob("riemenschneider*.rntxt")):
        bwv = next(line.split(":", 1)[1].strip() for line in path.read_text().splitlines()
                   if line.startswith("BWV:"))
        try:
            chorale(bwv)
        except Exception:  # music21 raises CorpusException when the chorale is not shipped
            continue
        pairs.append((bwv, path))
    return pairs


def numerals(path: Path) -> list[tuple[float, float, frozenset[int]]]:
    """(start, end, pitch classes) of every analysed chord, in beats."""
    return [(float(r.offset), float(r.offset + r.quarterLength), frozenset(p.pitchClass for p in r.pitches))
            for r in converter.parse(path).flatten().getElementsByClass(roman.RomanNumeral)]


def beat_truth(chords: list[tuple[float, float, frozenset[int]]]) -> tuple[np.ndarray, list[frozenset[int]]]:
    """Starts of the analysed quarter-note beats and the analysed chord's pitch classes at each."""
    times, sets = [], []
    for start, end, pcs in chords:
        for b in np.arange(np.floor(start), np.ceil(end)):
            middle = b + 0.5
            if start <= middle < end:
                times.append(b)
                sets.append(pcs)
    return np.array(times), sets


def score(events, beats: np.ndarray, truth: list[frozenset[int]]) -> np.ndarray:
    """Per beat: (exact, within, no chord, jaccard) of the event covering most of the beat."""
    starts = np.array([e.start_beats for e in events])
    ends = np.array([e.end_beats for e in events])
    rows = []
    for b, true in zip(beats, truth):
        overlap = np.minimum(ends, b + 1) - np.maximum(starts, b)
        k = int(overlap.argmax())
        if overlap[k] <= 0:
            rows.append((0, 0, 1, 0.0))
            continue
        got = set(events[k].pitch_classes)
        rows.append((got == true, true <= got, 0, len(got & true) / len(got | true)))
    return np.array(rows, dtype=float)


def events_right(events, chords: list[tuple[float, float, frozenset[int]]]) -> tuple[int, int]:
    """(events equal to the analysed chord at their middle, events inside the analysed span)."""
    right = total = 0
    for e in events:
        middle = (e.start_beats + e.end_beats) / 2
        true = next((pcs for start, end, pcs in chords if start <= middle < end), None)
        if true is not None and len(e.pitch_classes) >= 3:
            total += 1
            right += set(e.pitch_classes) == true
    return right, total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.parse_args()
    pairs = analyses()
    results = {name: [] for name in SETTINGS}
    counts = {name: np.zeros(2) for name in SETTINGS}
    for bwv, analysis in pairs:
        notes = read_notes(chorale(bwv))
        chords = numerals(analysis)
        beats, truth = beat_truth(chords)
        for name, seg in SETTINGS.items():
            events = segment(notes, replace(seg, min_notes=1))
            results[name].append(score(events, beats, truth))
            counts[name] += events_right(events, chords)
    beats = sum(len(r) for r in results[next(iter(SETTINGS))])
    print(f"{len(pairs)} analysed chorales, {beats} analysed beats; min-notes 1 so that "
          f"no chord is dropped before comparison\n")
    print(f"{'segmentation':24s} {'exact':>7s} {'within':>7s} {'no chord':>9s} {'jaccard':>8s} "
          f"{'events right':>13s} {'events':>7s}")
    for name, rows in results.items():
        m = np.concatenate(rows).mean(0)
        right, total = counts[name]
        print(f"{name:24s} {m[0]:7.1%} {m[1]:7.1%} {m[2]:9.1%} {m[3]:8.3f} {right / total:13.1%} {int(total):7d}")


if __name__ == "__main__":
    main()
