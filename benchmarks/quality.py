"""Model quality against published numbers and baselines (issue: evaluate honestly).

1. MNIST, the Keras example's conv VAE (latent 2, batch 128, Adam, 30 epochs) on the real
   digits at hand; the Keras example logs its training loss per epoch.
2. Chords from music21's Bach chorales, whole pieces held out: the VAE's importance-weighted
   NLL (K = 1000) against the independent-Bernoulli baseline and the empirical-set floor, for
   several latent sizes, with the exact pitch-class-set reconstruction rate and active units.

    python benchmarks/quality.py [--mnist-dir ../shared/datasets/mnist] [--epochs 30] [--out runs/quality]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

from chordvae import runs
from chordvae.train import TrainConfig

KERAS_EPOCH_30 = {"loss": 146.9508, "reconstruction_loss": 140.1473, "kl_loss": 6.7960}  # keras-io vae.md log


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-dir", default=str(Path(__file__).resolve().parents[2] / "shared/datasets/mnist"))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--latent", type=int, nargs="*", default=[2, 4, 8, 16])
    parser.add_argument("--free-bits", type=float, nargs="*", default=[0.0])
    parser.add_argument("--hidden", type=int, nargs="*", default=None, help="mlp hidden sizes (default: the adapter's)")
    parser.add_argument("--skip-mnist", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("runs/quality"))
    args = parser.parse_args()
    quiet = dict(progress=False, log=lambda s: None)
    results = {}

    if not args.skip_mnist:
        run = runs.train("mnist", options={"data_dir": args.mnist_dir}, arch="conv", latent_dim=2,
                         config=TrainConfig(epochs=args.epochs), out=args.out / "mnist-conv", **quiet)
        last = run.metrics[-1]
        results["mnist"] = {"train": last["train"], "validation": last["validation"],
                            "train_size": len(run.data().train), "keras_epoch_30_train": KERAS_EPOCH_30}
        print(f"MNIST conv, latent 2, {args.epochs} epochs on {results['mnist']['train_size']} digits: "
              f"train loss {last['train']['loss']:.2f}, validation loss {last['validation']['loss']:.2f} "
              f"(Keras example, 70,000 digits, epoch 30 train loss {KERAS_EPOCH_30['loss']:.2f})")

    print("\nchords, music21's Bach chorales, 10% of pieces held out; nats per chord")
    print(f"{'latent':>6s} {'free bits':>9s} {'-ELBO':>8s} {'IWAE':>8s} {'indep.':>8s} {'empirical':>9s} "
          f"{'exact set':>9s} {'active':>7s}")
    for latent in args.latent:
        for free_bits in args.free_bits:
            name = f"chords-z{latent}-fb{free_bits:g}"
            runs.train("chords", [], latent_dim=latent, hidden=args.hidden, out=args.out / name,
                       config=TrainConfig(epochs=args.epochs, free_bits=free_bits), **quiet)
            r = runs.evaluate_run(args.out / name, k=1000)
            results[name] = r
            b = r["baselines"]
            print(f"{latent:6d} {free_bits:9g} {r['elbo']['loss']:8.3f} {r['iwae']['nll']:8.3f} "
                  f"{b['independent Bernoulli']:8.3f} {b['empirical sets']:9.3f} "
                  f"{r['figures']['exact_set_rate']:9.1%} {r['latent']['active_units']:4d}/{latent}")
    (args.out / "quality.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
