"""Choose how the recogniser names an event's bass and where it cuts a chord at a bass change.

The recogniser's chords are decoded as usual (default options); only the bass changes:

- an event's bass (``chordvae.chords.recognise._event_basses``): its frames' chord-tone basses,
  each weighted by its metrical level (``--level-weights``: downbeat, strong beat, beat, between
  beats), the lowest one's weight times a bonus (``--bonuses``; ``inf`` is the lowest chord tone,
  the rule before); the heaviest is the bass;
- the cut at a bass change (``RecogniserOptions.bass_split_beats``, ``--splits``).

Scored on the fit pieces only (rn-dev's ``fit`` half and the first ``--pop-limit`` pop909-train
songs; rn-dev's ``check`` half and pop909-dev stay held out for ``chord_recognition.py
--rn-dev-part check``). Exact sets, triads and roots do not depend on the bass; each line prints
them once and the bass per setting.

    python benchmarks/fit_bass.py
"""
from __future__ import annotations

import argparse
import itertools
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.chord_eval import SHARED, add, load_pop909, load_rn_dev, rates, rn_dev_part, score_events  # noqa: E402
from chordvae.chords import recognise as rec  # noqa: E402
from chordvae.chords.readers import read_notes  # noqa: E402
from chordvae.chords.recognise import RecogniserOptions, analysis_frames  # noqa: E402


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--pop-limit", type=int, default=60, help="the first N pop909-train songs")
    parser.add_argument("--level-weights", default="1,1,1,1;2,1.5,1.25,1;3,2,1.5,1;4,2,1.5,1",
                        help="';'-separated weight vectors (downbeat, strong beat, beat, between beats)")
    parser.add_argument("--bonuses", default="1,2,3,4,6,inf")
    parser.add_argument("--splits", default="1", help="bass_split_beats values")
    args = parser.parse_args()
    start = time.perf_counter()
    pieces = rn_dev_part(load_rn_dev(args.data / "rn-dev"), "fit") \
        + load_pop909(args.data / "pop909-train", limit=args.pop_limit)
    read = [(p, notes, analysis_frames(notes)) for p, notes in ((p, read_notes(p.path)) for p in pieces)]
    read = [r for r in read if r[2] is not None]
    print(f"read {len(read)} fit pieces in {time.perf_counter() - start:.0f} s", flush=True)
    settings = list(itertools.product([np.array(floats(w)) for w in args.level_weights.split(";")],
                                      floats(args.bonuses)))
    for split in floats(args.splits):
        options = replace(RecogniserOptions(), bass_split_beats=split)
        totals: list[dict[str, dict]] = [{} for _ in settings]
        for piece, notes, frames in read:
            events = rec.recognise(notes, options, frames)
            first = np.searchsorted(frames.grid.edges, [e.start_beats - 1e-6 for e in events])
            last = np.searchsorted(frames.grid.edges, [e.end_beats - 1e-6 for e in events])
            tones = np.zeros((len(events), 12), dtype=bool)
            for i, e in enumerate(events):
                tones[i, list(e.pitch_classes)] = True
            roots = np.array([e.root for e in events], dtype=np.int64)
            for k, (weights, bonus) in enumerate(settings):
                basses = rec._event_basses(frames.bass, frames.grid.level, first, last, tones, roots, weights, bonus)
                rebassed = [replace(e, bass=int(b)) for e, b in zip(events, basses)]
                totals[k][piece.group] = add(totals[k].get(piece.group, {}), score_events(rebassed, piece))
        groups = sorted(totals[0])
        print(f"bass_split_beats {split}: " + " | ".join(
            f"{g} exact {r['exact']:.3f} triad {r['triad']:.3f} root {r['root']:.3f}"
            for g, r in ((g, rates(totals[0][g])) for g in groups)), flush=True)
        print(f"  {'level weights':<22} {'bonus':>5}  " + " ".join(f"{g + ' bass':>15}" for g in groups))
        for (weights, bonus), total in zip(settings, totals):
            print(f"  {','.join(f'{w:g}' for w in weights):<22} {bonus:>5g}  "
                  + " ".join(f"{rates(total[g])['bass']:15.3f}" for g in groups), flush=True)
    print(f"{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
