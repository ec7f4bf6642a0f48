"""Count the harmonic rhythm of the last beat of a bar, per metre, on labelled development data.

The recogniser's harmonic-rhythm prior has a change probability per metrical level (downbeat,
the bar's other strong beat, another beat, between beats). This script measures, on the fit data
of benchmarks/fit_keys.py (the first ``--pop-limit`` pop909-train songs and rn-dev's ``fit``
half; rn-dev's ``check`` half and pop909-dev stay held out), how often the truth chord changes on
each beat of bars of three and of four beats, and prints the factor by which the last beat of
such a bar changes more (or less) often than the bar's other ordinary beat (beat 2): the two
factors of ``RecogniserOptions.last_beat_change``. Each source's ratio counts alike (their mean,
over the sources with at least ``MIN_BEATS`` of both beats).
``--grid`` then scores the recogniser on the fit pieces only (rn-dev's fit half, the first
``--check-songs`` pop909-train songs) without the split, with the split alone (factors 1, 1: each
piece's own rate for the last beats) and with the measured factors.

    python benchmarks/fit_rhythm.py --grid
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.chord_eval import SHARED, load_pop909, load_rn_dev, rn_dev_part  # noqa: E402
from benchmarks.fit_keys import Labelled, evaluate, labelled  # noqa: E402
from chordvae.chords.recognise import LAST_BEAT, RecogniserOptions, States  # noqa: E402

#: A rate counts when measured on at least this many beats.
MIN_BEATS = 100


def beat_rates(data: list[Labelled]) -> dict[tuple[str, int, int], float]:
    """Truth change rate per (source, beats in the bar, beat of the bar) on beats 2 and last of
    bars of three and four beats, from the frames' metrical levels (frames with truth on both sides)."""
    changes: dict[tuple[str, int, int], np.ndarray] = {}
    for d in data:
        source = "pop" if d.piece.group == "pop" else "rn-dev"
        level, rhythm = d.frames.grid.level, d.frames.grid.rhythm
        known = np.concatenate([[False], (d.state[1:] >= 0) & (d.state[:-1] >= 0)])
        change = np.concatenate([[False], d.state[1:] != d.state[:-1]])
        down = np.flatnonzero(level == 0)
        if len(down) < 2:
            continue
        bar = np.searchsorted(down, np.arange(len(level)), side="right") - 1
        size = np.diff(np.concatenate([down, [len(level)]])) // d.frames.sub
        inside = bar >= 0
        beat = (np.arange(len(level)) - down[np.clip(bar, 0, None)]) // d.frames.sub
        for beats in (3, 4):
            in_bar = inside & known & (size[np.clip(bar, 0, None)] == beats) & (level < 3)
            for position, mask in ((1, in_bar & (beat == 1) & (level == 2)),
                                   (beats - 1, in_bar & (rhythm == LAST_BEAT + beats - 3))):
                key = (source, beats, position)
                changes[key] = changes.get(key, np.zeros(2)) + (change[mask].sum(), mask.sum())
    return {k: c / n for k, (c, n) in changes.items() if n >= MIN_BEATS}


def factors(rates: dict[tuple[str, int, int], float]) -> tuple[float, float]:
    """The last beat's change rate over beat 2's, for bars of three and of four beats (the mean
    of the sources' ratios, over the sources that measure both beats)."""
    def ratio(beats: int) -> float:
        sources = {s for s, b, _ in rates if b == beats}
        return float(np.mean([rates[(s, beats, beats - 1)] / rates[(s, beats, 1)] for s in sources
                              if (s, beats, beats - 1) in rates and (s, beats, 1) in rates]))
    return round(ratio(3), 2), round(ratio(4), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--pop-limit", type=int, default=150, help="the first N pop909-train songs")
    parser.add_argument("--grid", action="store_true", help="score the recogniser with and without the factors")
    parser.add_argument("--check-songs", type=int, default=60)
    args = parser.parse_args()
    start = time.perf_counter()
    options, states = RecogniserOptions(), States.vocabulary()
    pieces = load_pop909(args.data / "pop909-train", limit=args.pop_limit) \
        + rn_dev_part(load_rn_dev(args.data / "rn-dev"), "fit")
    data = [d for d in (labelled(p, options, states) for p in pieces) if d is not None]
    print(f"read {len(data)} pieces in {time.perf_counter() - start:.0f} s", flush=True)
    rates = beat_rates(data)
    for (source, beats, position), rate in sorted(rates.items()):
        print(f"{source:7s} bars of {beats} beats, beat {position + 1}: truth changes {rate:.3f}")
    measured = factors(rates)
    print(f"last_beat_change = {measured} (bars of three, of four beats)", flush=True)
    if not args.grid:
        return
    check = [d for d in data if d.piece.group != "pop"] + [d for d in data if d.piece.group == "pop"][:args.check_songs]
    for name, value in (("no split", None), ("split, factors 1", (1.0, 1.0)), (f"factors {measured}", measured)):
        print(f"{name}:", evaluate(check, replace(options, last_beat_change=value)), flush=True)


if __name__ == "__main__":
    main()
