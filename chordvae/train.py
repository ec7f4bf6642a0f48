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
from .fileio import write_json
from .plots import LatentPlane
from .stopping import EarlyStopping
from .vae import VAE, iwae_nll

METRIC_KEYS = ("loss", "reconstruction_loss", "kl_loss")
OBJECTIVES = ("elbo", "iwae")


@dataclass
class TrainConfig:
    """Optimisation settings (Adam; ``weight_decay`` > 0 multiplies the weights by
    ``1 - learning_rate * weight_decay`` every step, decoupled from the gradient: AdamW).
    ``beta`` weighs the KL term; ``warmup_epochs`` ramps it linearly from 0 to ``beta`` over
    that many epochs; ``free_bits`` is a per-dimension KL floor in nats (during the first
    ``free_bits_epochs`` epochs only, when that is not 0); ``mc_samples`` draws
    of z per example estimate the reconstruction term.
    ``objective`` ``iwae`` trains on the importance-weighted bound with ``mc_samples`` draws
    instead of the ELBO (Burda et al. 2016).

    ``epochs`` is the cap. Early stopping watches the validation loss (the negative ELBO with
    ``validation_samples`` draws per example, the same draws every epoch; with ``iwae``, the
    validation bound with ``mc_samples`` draws): after ``patience`` epochs in a row that are not
    below the best by more than ``min_delta`` nats, training stops and the checkpoint keeps the
    best epoch's weights (``patience`` 0: run every epoch, keep the last). ``lr_patience`` such
    epochs multiply the learning rate by ``lr_factor`` (PyTorch's ReduceLROnPlateau; 0: a
    constant rate). Both start when the KL warm-up ends."""

    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    beta: float = 1.0
    warmup_epochs: int = 0
    free_bits: float = 0.0
    free_bits_epochs: int = 0
    mc_samples: int = 1
    objective: str = "elbo"
    validation_samples: int = 1
    patience: int = 0
    min_delta: float = 0.0
    lr_patience: int = 0
    lr_factor: float = 0.5
    seed: int = 0
    device: str = "auto"
    threads: int | None = None

    def validate(self) -> None:
        checks = [(self.epochs >= 1, "epochs must be at least 1"),
                  (self.batch_size >= 1, "batch size must be at least 1"),
                  (self.learning_rate > 0, "learning rate must be positive"),
                  (self.weight_decay >= 0, "weight decay must be non-negative"),
                  (self.beta >= 0, "beta must be non-negative"),
                  (self.warmup_epochs >= 0, "warm-up epochs must be non-negative"),
                  (self.free_bits >= 0, "free bits must be non-negative"),
                  (self.free_bits_epochs >= 0, "free-bits epochs must be non-negative"),
                  (self.mc_samples >= 1, "Monte-Carlo samples must be at least 1"),
                  (self.objective in OBJECTIVES, f"objective must be one of {', '.join(OBJECTIVES)}"),
                  (self.objective == "elbo" or self.free_bits == 0, "free bits need the elbo objective"),
                  (self.validation_samples >= 1, "validation samples must be at least 1"),
                  (self.patience >= 0, "patience must be non-negative"),
                  (self.min_delta >= 0, "the minimum improvement must be non-negative"),
                  (self.lr_patience >= 0, "learning-rate patience must be non-negative"),
                  (0 < self.lr_factor < 1, "the learning-rate factor must be between 0 and 1"),
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
def evaluate_losses(model: VAE, x: torch.Tensor, beta: float = 1.0, batch_size: int = 2048,
                    samples: int = 1, generator: torch.Generator | None = None) -> dict[str, float]:
    """Mean loss, reconstruction and KL (nats per example) over ``x``, the reconstruction
    averaged over ``samples`` z draws per example (from ``generator`` when given: the same
    draws every epoch make epochs comparable)."""
    sums = []
    for i in range(0, len(x), batch_size):
        out = model.loss(x[i:i + batch_size], beta=beta, samples=samples, generator=generator)
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
        batch_order_state: torch.Tensor | None = None, stopping_state: dict[str, Any] | None = None,
        extra_metrics: Callable[[VAE, torch.Tensor], dict[str, float]] | None = None,
        progress: bool = True, log: Callable[[str], None] = print) -> list[dict]:
    """Train ``model`` from epoch ``start_epoch + 1`` until ``config.epochs`` or early stopping.

    After each epoch one JSON object is appended to ``run_dir/metrics.jsonl`` and the
    checkpoint ``run_dir/model.pt`` is replaced atomically. ``checkpoint_info`` holds the
    ``dataset`` name and ``dataset_meta`` stored with it; the checkpoint also stores the
    random states (``batch_order_state`` restores the shuffling generator on resume, torch's
    global state is the caller's to restore) and the latent plane of the validation events.
    With early stopping it holds the best epoch's weights (and plane), plus what resuming
    needs: the last weights and ``stopping``, the early-stopping counters and learning-rate
    schedule, to pass back as ``stopping_state`` with the best weights as its ``best_weights``.
    The end is logged and written to ``run_dir/summary.json``; with early stopping ``model``
    ends with the best weights. A NaN or infinite loss raises :class:`TrainingDiverged` and
    leaves the last good checkpoint in place. Returns the metrics of the epochs run.
    """
    config.validate()
    device = resolve_device(config.device)
    model.to(device)
    train, validation = train.to(device), validation.to(device)
    images = isinstance(train, torch.Tensor) and train.dim() == 4   # not a masked batch of sequences
    if images:  # channels-last convolutions train ~30% faster on CPU (benchmarks/README.md)
        model.to(memory_format=torch.channels_last)
    # one fused kernel for all parameters: the optimiser step takes a third of the time
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay,
                                  fused=fused_adam(device))
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)
    generator = torch.Generator().manual_seed(config.seed)
    if batch_order_state is not None:
        generator.set_state(batch_order_state)
    scheduler = (torch.optim.lr_scheduler.ReduceLROnPlateau(
        optimizer, factor=config.lr_factor, patience=config.lr_patience,
        threshold=config.min_delta, threshold_mode="abs") if config.lr_patience else None)
    stopper = EarlyStopping(config.patience, config.min_delta, keep_weights=config.patience > 0)
    if stopping_state is not None:
        stopper.load_state_dict(stopping_state, stopping_state.get("best_weights"))
        if scheduler is not None and stopping_state.get("scheduler") is not None:
            scheduler.load_state_dict(stopping_state["scheduler"])
    saved_plane = (stopping_state or {}).get("plane")
    best_plane = LatentPlane.from_dict(saved_plane) if saved_plane else None
    history = []
    epoch = start_epoch
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
            batch = shuffled[i:i + config.batch_size]
            if config.objective == "iwae":
                out = model.iwae_loss(batch, config.mc_samples, beta=beta)
            else:
                free_bits = config.free_bits if epoch <= (config.free_bits_epochs or epoch) else 0.0
                out = model.loss(batch, beta=beta, samples=config.mc_samples, free_bits=free_bits)
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
        same_draws = torch.Generator(device).manual_seed(config.seed)
        record = {"epoch": epoch, "seconds": round(seconds, 4), "beta": beta,
                  "learning_rate": optimizer.param_groups[0]["lr"],
                  "train": per_example(sums, len(train)),
                  "validation": evaluate_losses(model, validation, beta=config.beta,
                                                samples=config.validation_samples, generator=same_draws)}
        if config.objective == "iwae":
            record["validation"]["iwae_loss"] = iwae_nll(model, validation, config.mc_samples,
                                                         generator=same_draws).mean().item()
        if extra_metrics is not None:
            record["validation"].update(extra_metrics(model, validation))
        monitored = record["validation"]["iwae_loss" if config.objective == "iwae" else "loss"]
        plane = LatentPlane.of(model, validation)
        if epoch >= config.warmup_epochs:  # while beta ramps up, the losses are not comparable
            if stopper.step(epoch, monitored, model):
                best_plane = plane
            if scheduler is not None:
                scheduler.step(monitored)
        if stopper.should_stop:
            record["stopped"] = stopper.reason()
        best = stopper.best_weights
        save_checkpoint(run_dir / "model.pt", model, optimizer, config.to_dict(),
                        checkpoint_info["dataset"], checkpoint_info["dataset_meta"], epoch,
                        batch_order=generator, latent_plane=best_plane if best is not None else plane,
                        weights=best, weights_epoch=stopper.best_epoch if best is not None else epoch,
                        stopping={**stopper.state_dict(),
                                  "scheduler": scheduler.state_dict() if scheduler is not None else None,
                                  "plane": best_plane.to_dict() if best_plane is not None else None})
        with open(run_dir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")
        history.append(record)
        log(format_epoch(record, config.epochs))
        if stopper.should_stop:
            break
    if stopper.best_weights is not None:
        model.load_state_dict(stopper.best_weights)
    model.cpu()
    _finish(run_dir, config, epoch, stopper, optimizer, log)
    return history


def _finish(run_dir: Path, config: TrainConfig, epoch: int, stopper: EarlyStopping,
            optimizer: torch.optim.Optimizer, log: Callable[[str], None]) -> None:
    """Say why training ended and write ``summary.json``."""
    if stopper.should_stop:
        why = f"stopped early after epoch {epoch}: {stopper.reason()}"
    else:
        why = f"reached the epoch cap ({config.epochs})"
    kept = stopper.best_epoch if stopper.best_weights is not None else epoch
    log(f"{why}; model.pt holds the weights of epoch {kept}")
    write_json(run_dir / "summary.json", {
        "epochs_trained": epoch, "stopped_early": stopper.should_stop, "reason": why,
        "weights_epoch": kept, "best_epoch": stopper.best_epoch,
        "best_validation_loss": stopper.best_loss if stopper.best_epoch else None,
        "final_learning_rate": optimizer.param_groups[0]["lr"]})


def format_epoch(record: dict, epochs: int) -> str:
    """One summary line for an epoch's metrics record."""
    t, v = record["train"], record["validation"]
    line = (f"epoch {record['epoch']}/{epochs} ({record['seconds']:.1f}s)  "
            f"loss {t['loss']:.3f}  rec {t['reconstruction_loss']:.3f}  kl {t['kl_loss']:.3f}  |  "
            f"val loss {v['loss']:.3f}  rec {v['reconstruction_loss']:.3f}  kl {v['kl_loss']:.3f}")
    extras = [f"{k} {val:.3f}" for k, val in v.items() if k not in METRIC_KEYS]
    return line + ("  " + "  ".join(extras) if extras else "")
