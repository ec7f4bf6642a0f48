"""How long ``chordvae evaluate --on`` takes on a large corpus, and whether scoring each distinct
chord once (weighted by its count) gives the figures of scoring every chord.

1. ``evaluate RUN --on SOURCE`` end to end through the Python API the CLI calls (reading the
   corpus, warm from the cache when it was read before; the run's own corpus; the IWAE bound
   with K = 1000; baselines and the corpus's own floor), and the same for the run's held-out
   pieces, with the NLL figures that compare corpora fairly.
2. On the first ``--subset`` events of SOURCE, each over ``--seeds`` seeds (the Monte-Carlo
   spread): scoring every event against scoring each distinct event once with ``--budget``
   IWAE estimates in all, both timed.

    python benchmarks/evaluation.py [--run RUN] [--on m21:palestrina] [--subset 5000] [--budget 1000]

Without ``--run`` it first trains the main job (``chordvae train --dataset chords data/midi``).
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from chordvae import runs
from chordvae.evaluate import evaluate

REPO = Path(__file__).resolve().parents[1]


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.4f} ({min(values):.4f}-{max(values):.4f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, default=None, help="a chord run (default: train the main job)")
    parser.add_argument("--on", default="m21:palestrina")
    parser.add_argument("--subset", type=int, default=5000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--budget", type=int, default=1000, help="IWAE estimates of the distinct-event run on the subset")
    args = parser.parse_args()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} cores; "
          f"load average {os.getloadavg()[0]:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run
        if run_dir is None:
            start = time.perf_counter()
            run_dir = runs.train("chords", [str(REPO / "data" / "midi")], out=Path(tmp) / "main",
                                 progress=False, log=lambda s: None).dir
            print(f"trained the main job in {time.perf_counter() - start:.0f} s")
        for on in ([args.on], []):
            start = time.perf_counter()
            report = runs.evaluate_run(run_dir, on=on, progress=False)
            seconds = time.perf_counter() - start
            floor = report["own_floor"]
            what = f"--on {args.on}" if on else "the run's held-out pieces"
            extra = f" ({report['on']['parts']})" if on else ""
            print(f"\nevaluate {what}{extra}: {seconds:.1f} s for {report['examples']} events "
                  f"({report['distinct_examples']} distinct), K = {report['iwae']['k']}")
            print(f"  VAE IWAE NLL {report['iwae']['nll']:.3f} ({report['iwae']['estimates']} estimates); "
                  f"empirical sets of the run's training split {report['baselines']['empirical sets']:.3f}; "
                  f"entropy of this corpus's chords {floor['entropy']:.3f}; VAE above it {floor['vae_above']:.3f}")
        run = runs.load_run(run_dir, progress=False)
        data = run.data()
        pieces = run.adapter.load_pieces([args.on], run.dataset_meta.options)
        x = pieces.events[:args.subset]
        print(f"\nthe first {len(x)} events of {args.on}, K = 1000, seeds 0-{args.seeds - 1}: median (min-max)")
        for name, options in ((f"every event ({len(x)} estimates)", {"distinct": False}),
                              (f"distinct events, {args.budget} estimates", {"budget": args.budget})):
            seconds, nll, elbo = [], [], []
            for seed in range(args.seeds):
                start = time.perf_counter()
                report = evaluate(run.model, data.train, x, 1000, seed=seed, train_groups=data.train_groups,
                                  **options)
                seconds.append(time.perf_counter() - start)
                nll.append(report["iwae"]["nll"])
                elbo.append(report["elbo"]["loss"])
            print(f"  {name:34s} {statistics.median(seconds):6.1f} s   IWAE NLL {_spread(nll)}   "
                  f"negative ELBO {_spread(elbo)}")
    print(f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
