"""Epoch time of chordvae's trainer against a plain PyTorch loop fed like pytorch/examples' VAE.

Both train the same network (``mlp`` 784-400-20, or the Keras ``conv`` model) on the same
real digits for the same epochs, runs interleaved and repeated; prints seconds per epoch
(medians), their ratio, and the final validation loss of each (median, and its spread over
the seeds). ``--profile`` also prints where an epoch's time goes: forward, backward and the
optimiser step (fused and unfused Adam), the reference's data pipeline alone, and for ``conv``
an epoch in the default against the channels-last memory format.

    python benchmarks/training.py --data-dir ../shared/datasets/mnist --epochs 3 --repeats 3 [--profile]
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from chordvae.datasets.idx import MNIST_SOURCE, load_split, locate
from chordvae.train import TrainConfig, evaluate_losses, fit
from chordvae.vae import ModelConfig, build_model


class DigitDataset(Dataset):
    """What torchvision's MNIST + ToTensor does: each item converted on access."""

    def __init__(self, images: np.ndarray, labels: np.ndarray):
        self.images, self.labels = images, labels

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int):
        return torch.from_numpy(self.images[i]).float().div(255).unsqueeze(0), int(self.labels[i])


def reference(config: ModelConfig, x_train: np.ndarray, y_train: np.ndarray, val: torch.Tensor,
              epochs: int, seed: int) -> tuple[list[float], float]:
    """The pytorch/examples VAE loop: DataLoader(batch 128, shuffle), BCE(sum) + KLD, Adam 1e-3."""
    torch.manual_seed(seed)
    model = build_model(config)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(DigitDataset(x_train, y_train), batch_size=128, shuffle=True)
    times = []
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        for data, _ in loader:
            optimizer.zero_grad()
            logits, mu, logvar = model(data)
            bce = F.binary_cross_entropy(torch.sigmoid(logits), data, reduction="sum")
            kld = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
            ((bce + kld) / len(data)).backward()
            optimizer.step()
        times.append(time.perf_counter() - start)
    model.eval()
    return times, evaluate_losses(model, val)["loss"]


def ours(config: ModelConfig, train: torch.Tensor, val: torch.Tensor, epochs: int,
         seed: int) -> tuple[list[float], float]:
    torch.manual_seed(seed)
    model = build_model(config)
    history = fit(model, train, val, TrainConfig(epochs=epochs, seed=seed), progress=False, log=lambda s: None).history
    return [m["seconds"] for m in history], history[-1]["validation"]["loss"]


def profile_epoch(config: ModelConfig, train: torch.Tensor, seed: int, fused: bool = True,
                  channels_last: bool = False) -> dict[str, float]:
    """Seconds spent in forward (the loss), backward and the Adam step over one epoch of
    chordvae's loop (shuffled tensor slices of 128), and the whole epoch."""
    torch.manual_seed(seed)
    model = build_model(config)
    data = train[torch.randperm(len(train))]
    if channels_last:
        model.to(memory_format=torch.channels_last)
        data = data.contiguous(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, fused=fused)
    spent = {"forward": 0.0, "backward": 0.0, "optimiser": 0.0}
    start = time.perf_counter()
    for i in range(0, len(data), 128):
        t0 = time.perf_counter()
        loss = model.loss(data[i:i + 128]).loss.mean()
        t1 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t2 = time.perf_counter()
        optimizer.step()
        t3 = time.perf_counter()
        spent["forward"] += t1 - t0
        spent["backward"] += t2 - t1
        spent["optimiser"] += t3 - t2
    spent["epoch"] = time.perf_counter() - start
    return spent


def data_pipeline_epoch(x_train: np.ndarray, y_train: np.ndarray) -> float:
    """Seconds the reference's DataLoader takes to deliver one epoch, with no training."""
    start = time.perf_counter()
    for _ in DataLoader(DigitDataset(x_train, y_train), batch_size=128, shuffle=True):
        pass
    return time.perf_counter() - start


def profile(arch: str, config: ModelConfig, train: torch.Tensor, x_train: np.ndarray, y_train: np.ndarray,
            repeats: int) -> None:
    """Print the medians over ``repeats`` of each part of an epoch (runs interleaved)."""
    runs: dict[str, list[dict[str, float]]] = {"fused": [], "unfused": []}
    if arch == "conv":
        runs["channels-last"] = []
    pipeline = []
    for r in range(repeats):
        runs["fused"].append(profile_epoch(config, train, seed=r))
        runs["unfused"].append(profile_epoch(config, train, seed=r, fused=False))
        if arch == "conv":
            runs["channels-last"].append(profile_epoch(config, train, seed=r, channels_last=True))
        pipeline.append(data_pipeline_epoch(x_train, y_train))
    med = {k: {part: statistics.median(run[part] for run in v) for part in v[0]} for k, v in runs.items()}
    fused, unfused = med["fused"], med["unfused"]
    print(f"  profile of one epoch (medians of {repeats}): forward {fused['forward']:.3f} s, "
          f"backward {fused['backward']:.3f} s, optimiser {fused['optimiser']:.3f} s fused Adam "
          f"({unfused['optimiser']:.3f} s unfused); the reference's DataLoader alone "
          f"{statistics.median(pipeline):.3f} s")
    if arch == "conv":
        last = med["channels-last"]["epoch"]
        print(f"  epoch in the default memory format {fused['epoch']:.3f} s, channels-last {last:.3f} s "
              f"({last / fused['epoch'] - 1:+.0%} time)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared/datasets/mnist")
    parser.add_argument("--arch", choices=["mlp", "conv", "both"], default="both")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--profile", action="store_true", help="also print where an epoch's time goes")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    x_train, y_train, x_val, y_val, notices = load_split(locate(MNIST_SOURCE, args.data_dir), "official", 0)
    train = torch.from_numpy(x_train).unsqueeze(1).float().div(255)
    val = torch.from_numpy(x_val).unsqueeze(1).float().div(255)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{len(train)} training / {len(val)} validation digits; {args.epochs} epochs x {args.repeats} repeats")
    for line in notices:
        print(line)
    archs = ["mlp", "conv"] if args.arch == "both" else [args.arch]
    for arch in archs:
        config = ModelConfig(arch, (1, 28, 28), latent_dim=20 if arch == "mlp" else 2, hidden=(400,))
        results: dict[str, tuple[list[float], list[float]]] = {"chordvae": ([], []), "reference": ([], [])}
        for r in range(args.repeats):
            for name in (("chordvae", "reference") if r % 2 == 0 else ("reference", "chordvae")):
                if name == "chordvae":
                    times, loss = ours(config, train, val, args.epochs, seed=r)
                else:
                    times, loss = reference(config, x_train, y_train, val, args.epochs, seed=r)
                results[name][0].extend(times)
                results[name][1].append(loss)
        med = {k: statistics.median(v[0]) for k, v in results.items()}
        label = "mlp 784-400-20" if arch == "mlp" else "conv (Keras example, latent 2)"
        print(f"\n{label}")
        print(f"  {'':10s} {'s/epoch (median)':>17s} {'final val loss: median (min-max over seeds)':>44s}")
        for k in ("chordvae", "reference"):
            losses = results[k][1]
            print(f"  {k:10s} {med[k]:17.3f} {statistics.median(losses):24.2f} "
                  f"({min(losses):.2f}-{max(losses):.2f})")
        print(f"  ratio chordvae/reference epoch time: {med['chordvae'] / med['reference']:.3f}")
        if args.profile:
            profile(arch, config, train, x_train, y_train, args.repeats)


if __name__ == "__main__":
    main()
