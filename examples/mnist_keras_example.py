"""Reproduce the Keras "Variational AutoEncoder" example through chordvae's Python API.

Conv encoder (32/64, stride 2) -> Dense 16 -> latent 2; mirrored transposed-conv decoder;
Adam, batch 128, 30 epochs on all 70,000 digits (``split="all"``, as the example does).
Writes the example's two pictures, ``latent_space.png`` and ``label_clusters.png``.

    python examples/mnist_keras_example.py [--data-dir DIR] [--epochs 30] [--out runs/keras-mnist]
"""
from __future__ import annotations

import argparse

from chordvae import runs
from chordvae.train import TrainConfig


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None, help="folder with the MNIST IDX .gz files (default: cache/download)")
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--out", default="runs/keras-mnist")
    args = parser.parse_args()

    run = runs.train("mnist", options={"data_dir": args.data_dir, "split": "all"}, arch="conv",
                     latent_dim=2, config=TrainConfig(epochs=args.epochs, batch_size=128,
                                                      learning_rate=1e-3), out=args.out)
    last = run.metrics[-1]
    print(f"after {last['epoch']} epochs: train loss {last['train']['loss']:.2f} "
          f"(reconstruction {last['train']['reconstruction_loss']:.2f}, kl {last['train']['kl_loss']:.2f})")
    print(f"pictures: {run.dir / 'latent_space.png'} and {run.dir / 'label_clusters.png'}")


if __name__ == "__main__":
    main()
