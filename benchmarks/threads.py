"""Training time on 1 thread against torch's default, with and without a competing busy process.

For the chord model of the main job (mlp 12-256-128-4 on the bundled corpus data/midi) and
MNIST's two networks (mlp 784-400-20 and the Keras conv VAE, on the shared test digits), each
repeat trains a fresh model with chordvae's ``fit`` for a fixed number of epochs on 1 thread and
on torch's default count, in alternating order (runs interleaved), first on the machine as it
is and then while a ``python -c 'while True: pass'`` process keeps one core busy. Prints the
median seconds of each, their ratio, and the count chordvae chooses by itself
(:func:`chordvae.threads.training_threads`), with the machine's load average before and after.

    python benchmarks/threads.py [--repeats 3] [--chord-epochs 20] [--mnist-digits 8000]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import torch

from chordvae.datasets import get_adapter
from chordvae.datasets.idx import MNIST_SOURCE, load_split, locate
from chordvae.threads import forward_macs, training_threads
from chordvae.train import torch_settings
from chordvae.train import TrainConfig, fit
from chordvae.vae import ModelConfig, build_model

REPO = Path(__file__).resolve().parents[1]


@contextmanager
def busy_core(on: bool) -> Iterator[None]:
    """A process spinning on one core for the duration of the block (when ``on``)."""
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if on else None
    try:
        time.sleep(0.5 if on else 0)
        yield
    finally:
        if spinner is not None:
            spinner.kill()
            spinner.wait()


def train_seconds(config: ModelConfig, train: torch.Tensor, validation: torch.Tensor, epochs: int,
                  threads: int, seed: int) -> float:
    """Wall seconds of ``fit`` for ``epochs`` epochs (validation included) on ``threads`` threads."""
    torch.manual_seed(seed)
    model = build_model(config)
    with torch_settings(threads):
        start = time.perf_counter()
        fit(model, train, validation, TrainConfig(epochs=epochs, seed=seed), progress=False, log=lambda s: None)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chord-epochs", type=int, default=20)
    parser.add_argument("--mnist-epochs", type=int, default=1)
    parser.add_argument("--mnist-digits", type=int, default=8000, help="training digits per MNIST epoch")
    parser.add_argument("--data-dir", type=Path, default=REPO.parent / "shared" / "datasets" / "mnist")
    args = parser.parse_args()
    default = torch.get_num_threads()
    chords = get_adapter("chords")
    chords.progress = False
    data = chords.load([str(REPO / "data" / "midi")], {}, seed=0)
    x_train, _, x_val, _, _ = load_split(locate(MNIST_SOURCE, args.data_dir, download=False), "official", 0)
    digits = torch.from_numpy(x_train[:args.mnist_digits]).unsqueeze(1).float().div(255)
    digits_val = torch.from_numpy(x_val).unsqueeze(1).float().div(255)
    jobs = [("chords mlp 12-256-128-4", ModelConfig("mlp", (12,), 4, (256, 128)), data.train, data.validation,
             args.chord_epochs),
            ("MNIST mlp 784-400-20", ModelConfig("mlp", (1, 28, 28), 20, (400,)), digits, digits_val,
             args.mnist_epochs),
            ("MNIST conv (Keras)", ModelConfig("conv", (1, 28, 28), 2), digits, digits_val, args.mnist_epochs)]
    print(f"torch {torch.__version__}, {os.cpu_count()} cores, torch's default {default} threads; "
          f"{args.repeats} repeats, interleaved; load average before: {os.getloadavg()[0]:.1f}")
    print(f"{'model':26s} {'MACs/step':>10s} {'busy core':>9s} {'1 thread':>9s} {f'{default} threads':>10s} "
          f"{'ratio':>6s} {'chordvae':>8s}")
    for name, config, train, validation, epochs in jobs:
        model = build_model(config)
        work = forward_macs(model, torch.zeros(1, *config.event_shape)) * 128
        chosen = training_threads(model, torch.zeros(1, *config.event_shape), 128)
        for busy in (False, True):
            seconds: dict[int, list[float]] = {1: [], default: []}
            with busy_core(busy):
                for r in range(args.repeats):
                    for n in ((1, default) if r % 2 == 0 else (default, 1)):
                        seconds[n].append(train_seconds(config, train, validation, epochs, n, seed=r))
            one, many = statistics.median(seconds[1]), statistics.median(seconds[default])
            print(f"{name:26s} {work / 1e6:9.1f}M {'yes' if busy else 'no':>9s} {one:8.2f}s {many:9.2f}s "
                  f"{many / one:6.2f} {chosen:8d}", flush=True)
    print(f"(seconds: median wall time of {args.chord_epochs} chord epochs / {args.mnist_epochs} MNIST epoch(s) "
          f"on {len(digits)} digits, validation included; ratio: {default} threads / 1 thread; "
          f"load average after: {os.getloadavg()[0]:.1f})")


if __name__ == "__main__":
    main()
