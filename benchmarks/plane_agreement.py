"""Do the pictures tell the truth? For the README's main job (``chordvae train --dataset chords
data/midi``, every default), the share of the corpus's chord events (training and validation,
weighted by count) whose dot in the latent plane lies where the plane decodes to that very chord:

- before: the plane chordvae drew until issue 14, the first two principal directions of the
  validation events' posterior means with the other coordinates held at their mean;
- after: the plane stored in the run's checkpoint, whose other coordinates follow the nearby
  chords' posterior means (:mod:`chordvae.plane`).

It also names what the dots of the ten most frequent chords decode to in each plane.

    python benchmarks/plane_agreement.py [--run RUN_DIR]   # without --run: trains the main job first
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from chordvae import runs
from chordvae.chords.names import name_chord
from chordvae.plane import LatentPlane, distinct_events, posterior_means

DATA = Path(__file__).resolve().parents[1] / "data" / "midi"


def symbol(row: torch.Tensor) -> str:
    pcs = tuple(torch.nonzero(row[:12] >= 0.5).flatten().tolist())
    return name_chord(pcs).symbol if pcs else "(empty)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", type=Path, help="a finished main-job run (default: train one)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = args.run
        if run_dir is None:
            run_dir = Path(tmp) / "main"
            runs.train("chords", [str(DATA)], out=run_dir, progress=False, log=lambda line: None)
        measure(run_dir)


@torch.no_grad()
def measure(run_dir: Path) -> None:
    """Print both planes' agreement for the run at ``run_dir``, and the ten commonest chords' dots."""
    run = runs.load_run(run_dir, progress=False)
    data = run.data()
    events = torch.cat([data.train, data.validation])
    distinct, counts = distinct_events(events)
    means = posterior_means(run.model, distinct)
    before = LatentPlane(run.model.latent_dim, posterior_means(run.model, data.validation))
    after = run.latent_plane(data)
    print(f"run {run_dir}: latent {run.model.latent_dim}, {len(events)} events, {len(distinct)} distinct chords")
    print(f"plane kernel bandwidth {after.bandwidth:.4f}, extent {after.extent}")
    print("| plane | events whose dot decodes to their chord |\n|---|---|")
    for name, plane in (("before: flat, other coordinates at their mean", before),
                        ("after: stored, other coordinates follow the data", after)):
        print(f"| {name} | {100 * plane.agreement_of(run.model, distinct, counts, means):.1f}% |")
    print("\n| chord | events | its dot decodes to (before) | (after) |\n|---|---|---|---|")
    for i in torch.argsort(counts, descending=True)[:10].tolist():
        decoded = [symbol(run.model.decode_mean(p.to_latent(p.project(means[i:i + 1])))[0])
                   for p in (before, after)]
        print(f"| {symbol(distinct[i])} | {counts[i].item()} | {decoded[0]} | {decoded[1]} |")


if __name__ == "__main__":
    main()
