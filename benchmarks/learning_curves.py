"""How much data does the chord VAE need? Learning curves on the Bach chorales, the pop sample and pop909-dev.

Runs ``chordvae curve`` (chordvae.curve.run_curve) on each corpus (skipped when its curve.json
exists; ``--again`` reruns; progress goes to stderr), then prints each curve and the fewest
training pieces whose mean held-out NLL is within 0.1 nats of the NLL at the largest count (all
training pieces).

    python benchmarks/learning_curves.py [--steps 1500] [--epochs 40] [--repeats 2] [--out runs/curves]
    python benchmarks/learning_curves.py --dataset progressions [--steps ...]   # progression models, nats per beat
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from chordvae.curve import CurveConfig, pieces_needed, run_curve
from chordvae.runs import training_config
from cross_corpus import POP909  # benchmarks/ is on the path of a script run from it

REPO = Path(__file__).resolve().parents[1]
CORPORA = {  # name: (sources, piece counts; 0 = every training piece)
    "chorales": ([], (5, 10, 20, 50, 100, 200, 0)),          # music21's ~400 Bach chorales
    "pop-sample": ([str(REPO / "data" / "midi" / "pop")], (2, 5, 10, 0)),
    "pop909-dev": ([str(POP909)], (5, 10, 20, 50, 0)),                  # 100 POP909 songs, when present
}
PROGRESSION_CORPORA = {"pop909-dev": ([str(POP909)], (10, 30, 0))}     # windows of 4 bars


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=["chords", "progressions"], default="chords")
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--iw-samples", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("runs/curves"))
    parser.add_argument("--again", action="store_true", help="rerun curves that already have a curve.json")
    args = parser.parse_args()
    chords = args.dataset == "chords"
    for name, (sources, counts) in (CORPORA if chords else PROGRESSION_CORPORA).items():
        if not all(Path(s).exists() for s in sources):
            print(f"\n{name}: skipped, {' '.join(sources)} is not here", file=sys.stderr)
            continue
        out = args.out / (name if chords else f"progressions-{name}")
        if args.again or not (out / "curve.json").exists():
            config = CurveConfig(counts, args.repeats, steps=args.steps, epochs=args.epochs,
                                 iw_samples=args.iw_samples)
            run_curve(args.dataset, sources, {} if chords else {"bars": 4}, config,
                      training_config(args.dataset, threads=args.threads), out,
                      progress=False, log=lambda line: print(line, file=sys.stderr))
        result = json.loads((out / "curve.json").read_text())
        held = result["held_out"]
        unit = "chord" if chords else "beat"
        baselines = result.get("baselines", ["independent Bernoulli", "empirical sets"])
        print(f"\n{name}: {result['training_pieces']} training pieces, {held['pieces']} held out "
              f"({held['events']} {unit}s); at least {result['config']['steps']} updates and "
              f"{result['config']['epochs']} epochs per model, "
              f"{result['config']['repeats']} repeats; held-out nats per {unit} (mean, [min, max])")
        print(f"{'pieces':>7s} {unit + 's':>7s} {'VAE (IWAE)':>22s}" + (f" {'exact set':>9s}" if chords else "")
              + "".join(f" {b:>22s}" for b in baselines))
        for s in result["summary"]:
            print(f"{s['pieces']:7d} {s['chords']['mean']:7.0f} {s['nll']['mean']:8.3f} "
                  f"[{s['nll']['min']:.3f}, {s['nll']['max']:.3f}]"
                  + (f" {s['exact_set_rate']['mean']:9.1%}" if chords else "")
                  + "".join(f" {s[b]['mean']:22.3f}" for b in baselines))
        print(f"within 0.1 nats of the NLL on all {result['pieces'][-1]} training pieces from "
              f"{pieces_needed(result, 0.1)} pieces on")


if __name__ == "__main__":
    main()
