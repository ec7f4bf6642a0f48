"""From a corpus to a chord latent space, end to end through the Python API.

Reads a corpus (default: the bundled Bach chorales in data/midi), looks at its chords,
trains the VAE, draws both pictures, and prints where major, minor and seventh chords
sit in the learned space.

    python examples/chord_space_walkthrough.py [PATH ...] [--epochs 30] [--out runs/chord-walkthrough]
"""
from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path

import torch

from chordvae import runs
from chordvae.chords.options import read
from chordvae.plane import posterior_means
from chordvae.train import TrainConfig

DATA = Path(__file__).resolve().parents[1] / "data" / "midi"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", default=[str(DATA)])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default="runs/chord-walkthrough")
    args = parser.parse_args()

    # 1. Read the corpus: chord events with times, pitch classes, bass and names.
    corpus = read(args.paths)
    print(corpus.summary())
    events = [e for piece in corpus.pieces for e in piece.events]
    print("the first chords of", Path(corpus.pieces[0].source).name)
    for e in corpus.pieces[0].events[:6]:
        print(f"  beats {e.start_beats:6.2f}-{e.end_beats:6.2f}  {e.name:32s} bass {e.bass}")
    print("most frequent chords:")
    for name, count in Counter(e.name for e in events).most_common(8):
        print(f"  {count:6d}  {name}")

    # 2. Train the VAE (latent 2, so the space can be drawn) and draw both pictures.
    run = runs.train("chords", args.paths, config=TrainConfig(epochs=args.epochs), out=args.out)
    print(f"pictures: {run.dir / 'latent_space.png'}, {run.dir / 'label_clusters.png'}")

    # 3. Where do the chord qualities sit? Mean and spread of their posterior means.
    data = run.data()
    means = posterior_means(run.model, torch.cat([data.train, data.validation]))
    labels = torch.cat([data.train_labels, data.validation_labels])
    for quality in ("major", "minor", "dominant seventh", "minor seventh", "diminished"):
        m = means[labels == data.label_names.index(quality)]
        if len(m):
            print(f"{quality:18s} {len(m):6d} chords  centre {m.mean(0).numpy().round(2)}  "
                  f"spread {m.std(0).numpy().round(2)}")


if __name__ == "__main__":
    main()
