"""chordvae on the polyphonic-music benchmark (Boulanger-Lewandowski et al. 2012): test NLL per
time step in nats, printed under the published table.

Trains the dataset's default sequence VAE (``chordvae train --dataset jsb-chorales``) and the
same decoder without a latent (stored in RUN/no-latent, where ``chordvae evaluate`` finds it),
then scores both on the test split. Everything is chosen on the valid split (early stopping);
test is only scored here, at the end.

    python benchmarks/polyphonic.py --data-dir ../shared/datasets/polyphonic --out runs/bench-jsb
"""
from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from chordvae import runs
from chordvae.sequence import ABLATION

#: test NLL per time step (nats) as published; (bound, importance-sampled estimate)
PUBLISHED = {
    "jsb-chorales": [
        ("independent Bernoulli per key (train, Laplace)", None, 11.06),
        ("DMM (Krishnan et al. 2017)", 6.93, 6.39),
        ("DMM-Aug", 6.77, 6.29),
        ("DMM-Aug-NADE", 5.34, 5.12),
    ],
}


def train_pair(dataset: str, data_dir: str | None, out: Path, epochs: int | None, threads: int,
               log, only: str | None = None, shift: int | None = None) -> dict[str, float]:
    """Train the VAE into ``out`` and its ablation into ``out/no-latent``; wall seconds of each.
    ``shift``: training windows moved by up to this many semitones (None: the dataset's default)."""
    options = {"data_dir": data_dir, "shift": shift}
    config = runs.training_config(dataset, threads=threads)
    if epochs:
        config = replace(config, epochs=epochs)
    seconds = {}
    for name, latent, target in (("vae", None, out), ("no-latent", 0, out / ABLATION)):
        if only is not None and name != only:
            continue
        if (target / "model.pt").exists():
            log(f"{target} already trained; kept")
            continue
        start = time.perf_counter()
        runs.train(dataset, options=options, latent_dim=latent, config=config, out=target, progress=False,
                   log=lambda line, n=name: log(f"[{n}] {line}"))
        seconds[name] = time.perf_counter() - start
    return seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dataset", default="jsb-chorales")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", type=Path, required=True, help="run directory (reused when it holds a run)")
    p.add_argument("--epochs", type=int, default=None, help="epoch cap (default: the dataset's)")
    p.add_argument("--shift", type=int, default=None,
                   help="training windows moved by up to this many semitones (default: the dataset's, 2)")
    p.add_argument("-k", type=int, default=100, help="importance samples of the estimate")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--train-only", choices=["vae", "no-latent"], default=None,
                   help="train this one and stop (to train the two side by side)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    seconds = train_pair(args.dataset, args.data_dir, args.out, args.epochs, args.threads, print, args.train_only,
                         args.shift)
    for name, value in seconds.items():
        print(f"wall seconds: {name} {value:.0f}")
        (args.out / f"seconds-{name}.txt").write_text(f"{value:.1f}\n")
    for name, run in (("vae", args.out), ("no-latent", args.out / ABLATION)):
        epochs = sorted(m["seconds"] for m in runs.read_metrics(run))
        if epochs:
            print(f"{name}: {len(epochs)} epochs, median {epochs[len(epochs) // 2]:.1f} s per epoch "
                  f"(fastest {epochs[0]:.1f} s, sum {sum(epochs):.0f} s; training only, from metrics.jsonl)")
    if args.train_only:
        return
    reports = {part: runs.evaluate_run(args.out, part, args.k, progress=False) for part in ("validation", "test")}
    summary = json.loads((args.out / "summary.json").read_text())
    ablation_summary = json.loads((args.out / ABLATION / "summary.json").read_text())
    timing = {name: float((args.out / f"seconds-{name}.txt").read_text()) for name in ("vae", "no-latent")
              if (args.out / f"seconds-{name}.txt").exists()}
    test, valid = reports["test"], reports["validation"]

    print(f"\n{args.dataset}: NLL per time step in nats (lower is better); bound = negative ELBO")
    print(f"| model | {args.dataset} test | bound | estimate |")
    print("|---|---|---|---|")
    for name, bound, estimate in PUBLISHED.get(args.dataset, []):
        print(f"| {name} | {estimate:.2f} | {bound if bound is not None else '-'} | {estimate:.2f} |")
    n, base = test["nll"], test["baselines"]
    print(f"| independent Bernoulli (chordvae baseline) | {base['independent Bernoulli']:.2f} | - | - |")
    print(f"| chordvae: same decoder, no latent ({ablation_summary['epochs_trained']} epochs, "
          f"weights of {ablation_summary['weights_epoch']}, {timing.get('no-latent', float('nan')):.0f} s) | "
          f"{base['same decoder, no latent']:.2f} | - | exact |")
    print(f"| **chordvae: sequence VAE** ({summary['epochs_trained']} epochs, weights of "
          f"{summary['weights_epoch']}, {timing.get('vae', float('nan')):.0f} s) | **{n['iwae']:.2f}** | "
          f"{n['elbo']:.2f} | {n['iwae']:.2f} (IWAE, K={n['k']}) |")
    lat, rec = test["latent"], test["reconstruction"]
    print(f"\nlatent: {lat['active_units']} of {lat['latent_dim']} units active; KL {n['kl']:.3f} nats per frame; "
          f"from z alone (posterior mean, greedy, no teacher forcing) on test: "
          f"{rec['exact_frames']:.1%} of frames exact, key F1 {rec['key_f1']:.3f}")
    print(f"valid (what the defaults were chosen on): VAE {valid['nll']['iwae']:.3f} (IWAE K={valid['nll']['k']}), "
          f"{valid['nll']['elbo']:.3f} (ELBO), no latent {valid['baselines']['same decoder, no latent']:.3f}, "
          f"{valid['reconstruction']['exact_frames']:.1%} frames exact from z")


if __name__ == "__main__":
    main()
