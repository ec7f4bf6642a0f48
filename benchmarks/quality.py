"""Model quality against published numbers and baselines (issue: evaluate honestly).

1. MNIST, the Keras example's conv VAE (latent 2, batch 128, Adam, 30 epochs) on the real
   digits at hand; the Keras example logs its training loss per epoch. ``--compare-init E``
   also trains it E epochs from PyTorch's default initialisation and from Keras's
   (Glorot-uniform weights, zero biases), for ``--init-seeds`` seeds, and prints the
   validation loss and KL of each.
2. Chords from music21's Bach chorales, whole pieces held out: the VAE's importance-weighted
   NLL (K = 1000) against the independent-Bernoulli baseline and the empirical-set floor, for
   several latent sizes, with the exact pitch-class-set reconstruction rate and active units.

    python benchmarks/quality.py [--mnist-dir ../shared/datasets/mnist] [--epochs 30] [--out runs/quality]
    python benchmarks/quality.py --skip-chords --compare-init 6 --epochs 0
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from chordvae import runs
from chordvae.datasets import get_adapter
from chordvae.train import TrainConfig, fit
from chordvae.vae import ModelConfig, build_model

# the keras-io vae.md log: 70,000 digits, batch 128, so 547 Adam steps per epoch
KERAS_STEPS_PER_EPOCH = math.ceil(70_000 / 128)
KERAS = {4: {"loss": 159.9900, "reconstruction_loss": 153.2400, "kl_loss": 6.1900},
         30: {"loss": 146.9508, "reconstruction_loss": 140.1473, "kl_loss": 6.7960}}


def compare_init(mnist_dir: str, epochs: int, seeds: int) -> dict[str, list[dict[str, float]]]:
    """The Keras conv VAE trained ``epochs`` epochs from each initialisation, for each seed (the
    same digits, the same draws of z and batch order; only the initial weights differ): the last
    epoch's validation figures, ``{"pytorch default" | "keras": [per seed]}``."""
    data = get_adapter("mnist").load([], {"data_dir": mnist_dir}, seed=0)
    config = ModelConfig("conv", data.event_shape, latent_dim=2)
    found: dict[str, list[dict[str, float]]] = {"pytorch default": [], "keras": []}
    for seed in range(seeds):
        for init in found:
            torch.manual_seed(seed)
            model = build_model(config)   # Keras's initialisation
            if init == "pytorch default":   # the draws the layers' constructors make under this seed
                torch.manual_seed(seed)
                for module in model.modules():
                    if hasattr(module, "reset_parameters"):
                        module.reset_parameters()
            torch.manual_seed(1000 + seed)
            history = fit(model, data.train, data.validation, TrainConfig(epochs=epochs, seed=seed),
                          progress=False, log=lambda s: None).history
            found[init].append(history[-1]["validation"])
            print(f"MNIST conv, seed {seed}, {init} initialisation, {epochs} epochs: validation loss "
                  f"{found[init][-1]['loss']:.1f}, KL {found[init][-1]['kl_loss']:.2f} nats", flush=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-dir", default=str(Path(__file__).resolve().parents[2] / "shared/datasets/mnist"))
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--latent", type=int, nargs="*", default=[2, 4, 8, 16])
    parser.add_argument("--free-bits", type=float, nargs="*", default=[0.0])
    parser.add_argument("--hidden", type=int, nargs="*", default=None, help="mlp hidden sizes (default: the adapter's)")
    parser.add_argument("--skip-mnist", action="store_true")
    parser.add_argument("--skip-chords", action="store_true")
    parser.add_argument("--compare-init", type=int, default=0, metavar="EPOCHS",
                        help="also train MNIST conv this many epochs from each initialisation")
    parser.add_argument("--init-seeds", type=int, default=3, help="seeds for --compare-init")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--out", type=Path, default=Path("runs/quality"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    quiet = dict(progress=False, log=lambda s: None)
    results = {}
    if args.compare_init:
        results["init"] = compare_init(args.mnist_dir, args.compare_init, args.init_seeds)

    if not args.skip_mnist and args.epochs:
        run = runs.train("mnist", options={"data_dir": args.mnist_dir}, arch="conv", latent_dim=2,
                         config=TrainConfig(epochs=args.epochs), out=args.out / "mnist-conv", **quiet)
        metrics = run.metrics
        last = metrics[-1]
        best = min(metrics, key=lambda m: m["validation"]["loss"])
        train_size = len(run.data().train)
        results["mnist"] = {"train": last["train"], "validation": last["validation"], "train_size": train_size,
                            "best_validation": {"epoch": best["epoch"], **best["validation"]}, "keras": KERAS}
        steps = args.epochs * math.ceil(train_size / 128)
        for epoch, keras in KERAS.items():
            print(f"Keras example, epoch {epoch} (70,000 digits, {epoch * KERAS_STEPS_PER_EPOCH:,} Adam steps): "
                  f"train loss {keras['loss']:.2f} (rec {keras['reconstruction_loss']:.2f}, KL {keras['kl_loss']:.2f})")
        t, v = last["train"], last["validation"]
        print(f"chordvae, MNIST conv, latent 2, {args.epochs} epochs on {train_size} digits ({steps:,} Adam steps): "
              f"train loss {t['loss']:.2f} (rec {t['reconstruction_loss']:.2f}, KL {t['kl_loss']:.2f}), "
              f"validation loss {v['loss']:.2f} (best {best['validation']['loss']:.2f} at epoch {best['epoch']})")

    if not args.skip_chords:
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
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "quality.json").write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
