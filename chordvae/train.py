"""The training loop: data as one tensor, batches as slices, one metrics line per epoch."""
from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import torch
from tqdm.auto import tqdm

from .checkpoint import save_checkpoint
from .errors import ChordVAEError, TrainingDiverged
from .plots import LatentPlane
from .vae import VAE

METRIC_KEYS = ("loss", "reconstruction_loss", "kl_loss")


@dataclass
class TrainConfig:
    """Optimisation settings (Adam). ``beta`` weighs the KL term; ``warmup_epochs`` ramps it
    linearly from 0 to ``beta`` over that many epochs; ``free_bits`` is a per-dimension KL
    floor in nats; ``mc_samples`` draws of z per example estimate the reconstruction term."""

    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 1e-3
    beta: float = 1.0
    warmup_epochs: int = 0
    free_bits: float = 0.0
    mc_samples: int = 1
    seed: int = 0
    device: str = "auto"
    threads: int | None = None

    def validate(self) -> None:
        checks = [(self.epochs >= 1, "epochs must be at least 1"),
                  (self.batch_size >= 1, "batch size must be at least 1"),
                  (self.learning_rate > 0, "learning rate must be positive"),
                  (self.beta >= 0, "beta must be non-negative"),
                  (self.warmup_epochs >= 0, "warm-up epochs must be non-negative"),
                  (self.free_bits >= 0, "free bits must be non-negative"),
                  (self.mc_samples >= 1, "Monte-Carlo samples must be at least 1"),
                  (self.threads is None or self.threads >= 1, "threads must be at least 1")]
        for ok, message in checks:
            if not ok:
                raise ChordVAEError(message)

    def beta_at(self, epoch: int) -> float:
        """KL weight during 1-based ``epoch``."""
        if self.warmup_epochs == 0:
            return self.beta
        return self.beta * min(1.0, epoch / self.warmup_epochs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def resolve_device(name: str) -> torch.device:
    """``auto`` picks CUDA, then Apple MPS, then the CPU; other names are passed to torch."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError) as e:
        raise ChordVAEError(f"device {name!r} is not available: {str(e).splitlines()[0]}") from None
    return device


@torch.no_grad()
def evaluate_losses(model: VAE, x: torch.Tensor, beta: float = 1.0,
                    batch_size: int = 2048) -> dict[str, float]:
    """Mean loss, reconstruction and KL (nats per example) over ``x``, one z draw each."""
    sums = []
    for i in range(0, len(x), batch_size):
        out = model.loss(x[i:i + batch_size], beta=beta)
        sums.append(torch.stack([out.loss.sum(), out.reconstruction.sum(), out.kl.sum()]))
    return per_example(sums, len(x))


def per_example(batch_sums: list[torch.Tensor], n: int) -> dict[str, float]:
    """Batch sums ``(3,)`` of loss, reconstruction and KL (float32, on any device) -> means per
    example, added up in float64 on the CPU (Apple's MPS has no float64)."""
    totals = torch.stack(batch_sums).to("cpu", torch.float64).sum(0)
    return dict(zip(METRIC_KEYS, (totals / n).tolist()))


def fused_adam(device: torch.device, version: str = torch.__version__) -> bool:
    """Whether Adam can run fused on ``device`` with torch ``version``: CUDA (torch >= 2.0), CPU (>= 2.4)."""
    major, minor = (int(v) for v in version.split("+")[0].split(".")[:2])
    needed = {"cuda": (2, 0), "cpu": (2, 4)}.get(device.type)
    return needed is not None and (major, minor) >= needed


def fit(model: VAE, train: torch.Tensor, validation: torch.Tensor, config: TrainConfig,
        run_dir: Path, checkpoint_info: dict[str, Any],
        optimizer_state: dict | None = None, start_epoch: int = 0,
        batch_order_state: torch.Tensor | None = None,
        extra_metrics: Callable[[VAE, torch.Tensor], dict[str, float]] | None = None,
        progress: bool = True, log: Callable[[str], None] = print) -> list[dict]:
    """Train ``model`` from epoch ``start_epoch + 1`` to ``config.epochs``.

    After each epoch one JSON object is appended to ``run_dir/metrics.jsonl`` and the
    checkpoint ``run_dir/model.pt`` is replaced atomically. ``checkpoint_info`` holds the
    ``dataset`` name and ``dataset_meta`` stored with it; the checkpoint also stores the
    random states (``batch_order_state`` restores the shuffling generator on resume, torch's
    global state is the caller's to restore) and the latent plane of the validation events. A NaN or infinite loss raises
    :class:`TrainingDiverged` and leaves the last good checkpoint in place.
    Returns the metrics of the epochs run.
    """
    config.validate()
    device = resolve_device(config.device)
    model.to(device)
    train, validation = train.to(device), validation.to(device)
    images = train.dim() == 4
    if images:  # channels-last convolutions train ~30% faster on CPU (benchmarks/README.md)
        model.to(memory_format=torch.channels_last)
    # one fused kernel for all parameters: the optimiser step takes a third of the time
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate, fused=fused_adam(device))
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    generator = torch.Generator().manual_seed(config.seed)
    if batch_order_state is not None:
        generator.set_state(batch_order_state)
    history = []
    for epoch in range(start_epoch + 1, config.epochs + 1):
        beta = config.beta_at(epoch)
        model.train()
        start = time.perf_counter()
        order = torch.randperm(len(train), generator=generator).to(device)
        shuffled = train[order]
        if images:
            shuffled = shuffled.contiguous(memory_format=torch.channels_last)
        sums = []
        bar = tqdm(range(0, len(train), config.batch_size), desc=f"epoch {epoch}/{config.epochs}",
                   unit="batch", leave=False, disable=None if progress else True)
        for i in bar:
            out = model.loss(shuffled[i:i + config.batch_size], beta=beta,
                             samples=config.mc_samples, free_bits=config.free_bits)
            objective = out.loss.mean()
            if not torch.isfinite(objective):
                raise TrainingDiverged(
                    f"loss became {objective.item()} in epoch {epoch}; try a lower learning rate. "
                    f"The last good checkpoint is kept in {run_dir / 'model.pt'}")
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            optimizer.step()
            sums.append(torch.stack([(out.reconstruction + config.beta * out.kl).sum(),
                                     out.reconstruction.sum(), out.kl.sum()]).detach())
        seconds = time.perf_counter() - start
        model.eval()
        record = {"epoch": epoch, "seconds": round(seconds, 4), "beta": beta,
                  "train": per_example(sums, len(train)),
                  "validation": evaluate_losses(model, validation, beta=config.beta)}
        if extra_metrics is not None:
            record["validation"].update(extra_metrics(model, validation))
        save_checkpoint(run_dir / "model.pt", model, optimizer, config.to_dict(),
                        checkpoint_info["dataset"], checkpoint_info["dataset_meta"], epoch,
                        batch_order=generator, latent_plane=LatentPlane.of(model, validation))
        with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        history.append(record)
        log(format_epoch(record, config.epochs))
    model.cpu()
    return history


def format_epoch(record: dict, epochs: int) -> str:
    """One summary line for an epoch's metrics record."""
    t, v = record["train"], record["validation"]
    line = (f"epoch {record['epoch']}/{epochs} ({record['seconds']:.1f}s)  "
            f"loss {t['loss']:.3f}  rec {t['reconstruction_loss']:.3f}  kl {t['kl_loss']:.3f}  |  "
            f"val loss {v['loss']:.3f}  rec {v['reconstruction_loss']:.3f}  kl {v['kl_loss']:.3f}")
    extras = [f"{k} {val:.3f}" for k, val in v.items() if k not in METRIC_KEYS]
    return line + ("  " + "  ".join(extras) if extras else "")
