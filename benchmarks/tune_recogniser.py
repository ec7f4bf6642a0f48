"""Fit the recogniser's parameters on the development data (pop909-dev and rn-dev), never on anything else.

Coordinate search: each parameter in turn tries the values of its grid with the others fixed,
keeping the best by the objective, for a few rounds. The objective is the mean of pop909-dev's
exact and root agreement and rn-dev's exact and triad agreement for the textbook (chorale
texture) and song groups, all duration-weighted (benchmarks/chord_eval.py). The notes of every
piece are read once and kept in memory.

    python benchmarks/tune_recogniser.py --rounds 2            # prints every step and the fitted options
    python benchmarks/tune_recogniser.py --rounds 0            # only the current defaults' scores
"""
from __future__ import annotations

import argparse
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.chord_eval import add, load_pop909, load_rn_dev, rates, score_events  # noqa: E402
from chordvae.chords.readers import read_notes  # noqa: E402
from chordvae.chords.recognise import RecogniserOptions, recognise  # noqa: E402

GRID: dict[str, list] = {
    "melody_weight": [0.2, 0.35, 0.5, 0.7, 1.0],
    "evidence_notes": [1.0, 2.0, 3.0, 5.0],
    "concentration": [6.0, 8.0, 11.0, 15.0, 20.0],
    "non_chord_mass": [0.05, 0.1, 0.15, 0.22, 0.3],
    "bass_weight": [0.0, 0.5, 1.0, 1.5, 2.5],
    "bass_root": [0.5, 0.6, 0.75, 0.85],
    "bass_out": [0.05, 0.1, 0.2, 0.3],
    "no_chord_prior": [-6.0, -4.5, -3.0, -1.5],
    "absorb_beats": [0.0, 0.5, 1.0, 2.0],
    "rhythm_prior": [10.0, 30.0, 100.0, 300.0, float("inf")],
    "change_prob": [(0.2, 0.05, 0.01, 0.002), (0.1, 0.03, 0.005, 0.001), (0.3, 0.05, 0.01, 0.002),
                    (0.2, 0.1, 0.01, 0.002), (0.2, 0.05, 0.02, 0.002), (0.2, 0.05, 0.01, 0.0005),
                    (0.2, 0.05, 0.01, 0.005)],
}
QUALITY_STEPS = [-1.0, -0.5, 0.5, 1.0]
_PIECES: list = []


def _load(piece):
    return piece, read_notes(piece.path)


def _score_piece(args):
    index, options = args
    piece, notes = _PIECES[index]
    return piece.group, score_events(recognise(notes, options), piece)


def evaluate(options: RecogniserOptions, pool: ProcessPoolExecutor) -> dict[str, dict[str, float]]:
    """Rates per group (pop, textbooks, lieder) for ``options``."""
    totals: dict[str, dict] = {}
    for group, result in pool.map(_score_piece, [(i, options) for i in range(len(_PIECES))], chunksize=8):
        totals[group] = add(totals.get(group, {}), result)
    return {g: rates(t) for g, t in totals.items()}


def objective(r: dict[str, dict[str, float]]) -> float:
    return (r["pop"]["exact"] + r["pop"]["root"] + r["textbooks"]["exact"] + r["textbooks"]["triad"]
            + r["lieder"]["exact"] + r["lieder"]["triad"]) / 6


def line(r: dict[str, dict[str, float]]) -> str:
    return (f"objective {objective(r):.4f} | pop exact {r['pop']['exact']:.3f} root {r['pop']['root']:.3f} | "
            f"textbooks exact {r['textbooks']['exact']:.3f} triad {r['textbooks']['triad']:.3f} | "
            f"lieder exact {r['lieder']['exact']:.3f} triad {r['lieder']['triad']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--params", default=None,
                        help="comma-separated parameters to search (default: all; qualities as quality:NAME)")
    args = parser.parse_args()
    pieces = load_pop909() + load_rn_dev()
    with ProcessPoolExecutor(args.jobs) as pool:
        _PIECES.extend(pool.map(_load, pieces, chunksize=8))
    best = RecogniserOptions()
    start = time.time()
    with ProcessPoolExecutor(args.jobs) as pool:  # forked after loading: workers share the notes
        result = evaluate(best, pool)
        print(f"defaults: {line(result)}", flush=True)
        score = objective(result)
        for round_ in range(args.rounds):
            steps = [*GRID.items(), *[(f"quality:{q}", None) for q in best.quality_prior]]
            if args.params:
                steps = [(name, values) for name, values in steps if name in args.params.split(",")]
            for name, values in steps:
                for value in (values if values is not None else _quality_values(best, name)):
                    candidate = _with(best, name, value)
                    if candidate == best:
                        continue
                    result = evaluate(candidate, pool)
                    trial = objective(result)
                    mark = "*" if trial > score + 1e-4 else " "
                    print(f"{mark} round {round_ + 1} {name} = {value}: {line(result)}", flush=True)
                    if mark == "*":
                        best, score = candidate, trial
    print(f"\nfitted in {time.time() - start:.0f} s: objective {score:.4f}")
    print(asdict(best))


def _quality_values(options: RecogniserOptions, name: str) -> list[float]:
    current = options.quality_prior[name.split(":", 1)[1]]
    return [round(current + step, 2) for step in QUALITY_STEPS]


def _with(options: RecogniserOptions, name: str, value) -> RecogniserOptions:
    if name.startswith("quality:"):
        return replace(options, quality_prior={**options.quality_prior, name.split(":", 1)[1]: value})
    return replace(options, **{name: value})


if __name__ == "__main__":
    main()
