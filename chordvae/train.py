"""The training loop: data as one tensor (or :class:`~chordvae.batch.Batch`), batches as slices.

:func:`fit` runs :func:`train_epoch` and :func:`validate` once per epoch on a :class:`TrainState`
and hands each epoch's record to its callbacks: :class:`EarlyStop`, :class:`LRSchedule`,
:class:`Checkpointer` (``model.pt`` and ``metrics.jsonl``, written together) and
:class:`Summary` (``summary.json``). Without callbacks nothing is written to disk.
"""
from __future__ import annotations

import json
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import torch
from tqdm.auto import tqdm

from .batch import Augment, Events
from .checkpoint import Checkpoint, StoppingState, save_checkpoint
from .config import TrainConfig
from .errors import ChordVAEError, TrainingDiverged
from .fileio import appending, write_json
from .meta import DatasetMeta
from .priors import GaussianMixture
from .stopping import EarlyStopping
from .vae import VAE, iwae_nll

METRIC_KEYS = ("loss", "reconstruction_loss", "kl_loss")
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
def evaluate_losses(model: VAE, x: Events, beta: float = 1.0, batch_size: int = 2048,
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


@contextmanager
def torch_settings(threads: int | None = None, seed: int | None = None) -> Iterator[None]:
    """Run a block with ``threads`` CPU threads and torch's global generator seeded with ``seed``
    (None: leave each as it is); afterwards the caller's thread count and random state are back."""
    saved_threads, saved_rng = torch.get_num_threads(), torch.random.get_rng_state()
    try:
        if threads:
            torch.set_num_threads(threads)
        if seed is not None:
            torch.manual_seed(seed)
        yield
    finally:
        torch.set_num_threads(saved_threads)
        torch.random.set_rng_state(saved_rng)


@dataclass
class TrainState:
    """Everything training changes, passed explicitly from step to step: the model, the optimiser,
    the generator that shuffles each epoch, early stopping (best loss, epoch and weights), the
    learning-rate schedule (None: constant), the epochs trained, whether to stop, and the metrics
    record of every epoch run in this session (the latent plane is drawn once, after training)."""

    model: VAE
    optimizer: torch.optim.Optimizer
    batch_order: torch.Generator
    stopper: EarlyStopping
    scheduler: torch.optim.lr_scheduler.ReduceLROnPlateau | None = None
    epoch: int = 0
    stop: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def start(cls, model: VAE, config: TrainConfig, device: torch.device,
              resume: Checkpoint | None = None) -> TrainState:
        """A fresh state for ``model`` (already on ``device``), or the one ``resume`` stored:
        its optimiser, shuffling generator, stopping counters and schedule, epoch count and its
        last weights (the model's), the best ones going back to early stopping."""
        # one fused kernel for all parameters: the optimiser step takes a third of the time
        optimizer = torch.optim.AdamW(model.parameters(), lr=config.learning_rate,
                                      weight_decay=config.weight_decay, fused=fused_adam(device))
        scheduler = (torch.optim.lr_scheduler.ReduceLROnPlateau(
            optimizer, factor=config.lr_factor, patience=config.lr_patience,
            threshold=config.min_delta, threshold_mode="abs") if config.lr_patience else None)
        state = cls(model, optimizer, torch.Generator().manual_seed(config.seed),
                    EarlyStopping(config.patience, config.min_delta, keep_weights=config.patience > 0),
                    scheduler)
        if resume is None:
            return state
        if resume.optimizer_state is not None:
            optimizer.load_state_dict(resume.optimizer_state)
        if resume.batch_order_state is not None:
            state.batch_order.set_state(resume.batch_order_state)
        state.epoch = resume.epoch
        best_weights = None
        if resume.last_state_dict is not None:  # the checkpoint's weights are the best epoch's
            best_weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            model.load_state_dict(resume.last_state_dict)
        if resume.stopping is not None:
            stopping = resume.stopping
            state.stopper.load_state_dict({"best_loss": stopping.best_loss, "best_epoch": stopping.best_epoch,
                                           "bad_epochs": stopping.bad_epochs}, best_weights)
            if scheduler is not None and stopping.scheduler is not None:
                scheduler.load_state_dict(stopping.scheduler)
        return state

    @property
    def weights_epoch(self) -> int:
        """The epoch whose weights the model ends with: the best one when early stopping keeps weights."""
        return self.stopper.best_epoch if self.stopper.best_weights is not None else self.epoch

    def stopping_state(self) -> StoppingState:
        """Early stopping and the schedule, as a checkpoint stores them."""
        return StoppingState(self.stopper.best_loss, self.stopper.best_epoch, self.stopper.bad_epochs,
                             self.scheduler.state_dict() if self.scheduler is not None else None)

    def end_reason(self, config: TrainConfig) -> str:
        if self.stop:
            return f"stopped early after epoch {self.epoch}: {self.stopper.reason()}"
        return f"reached the epoch cap ({config.epochs})"


def channels_last(events: Events) -> bool:
    """Whether ``events`` are images ``(N, C, H, W)``: channels-last convolutions train ~30%
    faster on CPU (benchmarks/README.md)."""
    return isinstance(events, torch.Tensor) and events.dim() == 4


def train_epoch(state: TrainState, train: Events, config: TrainConfig, progress: bool = True,
                augment: Augment | None = None) -> dict[str, Any]:
    """One pass over ``train`` in a new shuffled order (``state.batch_order``), one optimiser step
    per batch, each batch changed by ``augment`` first when given (drawing from
    ``state.batch_order``): the epoch's ``beta``, ``learning_rate``, ``seconds`` and ``train``
    losses per example (the loss with the full ``beta``). A NaN or infinite loss raises :class:`TrainingDiverged`."""
    epoch = state.epoch + 1
    beta = config.beta_at(epoch)
    model = state.model
    refit = config.refits(epoch) and model.latent_dim > 0
    if refit:
        fit_prior(model, train, config.seed)
    model.train(not refit)                    # refitting: all but the refitted parts as evaluated, frozen
    model.requires_grad_(not refit)
    for module in model.refit_modules() if refit else ():
        module.train().requires_grad_(True)
    device = next(model.parameters()).device
    start = time.perf_counter()
    order = torch.randperm(len(train), generator=state.batch_order).to(device)
    shuffled = train[order]
    if channels_last(shuffled):
        shuffled = shuffled.contiguous(memory_format=torch.channels_last)
    sums = []
    bar = tqdm(range(0, len(train), config.batch_size), desc=f"epoch {epoch}/{config.epochs}",
               unit="batch", leave=False, disable=None if progress else True)
    for i in bar:
        batch = shuffled[i:i + config.batch_size]
        if augment is not None:
            batch = augment(batch, state.batch_order)
        if config.objective == "iwae":
            out = model.iwae_loss(batch, config.mc_samples, beta=beta)
        else:
            free_bits = config.free_bits if epoch <= (config.free_bits_epochs or epoch) and not refit else 0.0
            out = model.loss(batch, beta=beta, samples=config.mc_samples, free_bits=free_bits)
        objective = out.loss.mean()
        if not torch.isfinite(objective):
            raise TrainingDiverged(f"loss became {objective.item()} in epoch {epoch}; try a lower learning rate")
        state.optimizer.zero_grad(set_to_none=True)
        objective.backward()
        state.optimizer.step()
        sums.append(torch.stack([(out.reconstruction + config.beta * out.kl).sum(),
                                 out.reconstruction.sum(), out.kl.sum()]).detach())
    return {"epoch": epoch, "seconds": round(time.perf_counter() - start, 4), "beta": beta,
            "learning_rate": state.optimizer.param_groups[0]["lr"], "train": per_example(sums, len(train))}


@torch.no_grad()
def fit_prior(model: VAE, train: Events, seed: int, batch_size: int = 4096) -> None:
    """Fit a model's not yet fitted mixture prior to one posterior draw of z per training event
    (drawn with ``seed``); other priors stay as they are."""
    prior = model.prior
    if not isinstance(prior, GaussianMixture) or prior.fitted:
        return
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    codes = []
    for i in range(0, len(train), batch_size):
        mu, logvar = model.encode(train[i:i + batch_size])
        eps = torch.randn(mu.shape, generator=generator).to(mu.device)
        codes.append((mu + torch.exp(0.5 * logvar) * eps).cpu())
    prior.fit(torch.cat(codes).to(prior.means.device), generator=generator)


def validate(model: VAE, validation: Events, config: TrainConfig,
             extra_metrics: Callable[[VAE, Events], dict[str, float]] | None = None) -> dict[str, float]:
    """Validation losses per example with the full ``beta`` and ``validation_samples`` draws, the
    same draws every epoch (seeded with ``config.seed``); with the ``iwae`` objective also
    ``iwae_loss``, the bound with ``mc_samples`` draws; then ``extra_metrics``."""
    model.eval()
    device = next(model.parameters()).device
    same_draws = torch.Generator(device).manual_seed(config.seed)
    figures = evaluate_losses(model, validation, beta=config.beta, samples=config.validation_samples,
                              generator=same_draws)
    if config.objective == "iwae":
        figures["iwae_loss"] = iwae_nll(model, validation, config.mc_samples, generator=same_draws).mean().item()
    if extra_metrics is not None:
        figures.update(extra_metrics(model, validation))
    return figures


def monitored_loss(record: dict[str, Any], config: TrainConfig) -> float:
    """The validation figure early stopping and the schedule watch."""
    return record["validation"]["iwae_loss" if config.objective == "iwae" else "loss"]


class Callback:
    """Called by :func:`fit` after each epoch (in order) and once at the end."""

    def on_epoch_end(self, state: TrainState, record: dict[str, Any]) -> None:
        """``record``: the epoch's metrics (a callback may add to it)."""

    def on_train_end(self, state: TrainState) -> None:
        """After the last epoch, the model still holding its last weights."""

    def on_diverged(self) -> str:
        """A sentence added to the error when the loss became NaN or infinite ('' for none)."""
        return ""


@dataclass
class EarlyStop(Callback):
    """Records the monitored validation loss in ``state.stopper`` once the KL warm-up is over
    (while beta ramps up, the losses are not comparable) and, with refit epochs, once the refit
    has begun (before it the prior is not fitted to the codes: the kept weights are a refitted
    epoch's); sets ``state.stop`` and the record's ``stopped`` when it has not improved for
    ``patience`` epochs."""

    config: TrainConfig

    def on_epoch_end(self, state: TrainState, record: dict[str, Any]) -> None:
        refitted = not self.config.refit_epochs or self.config.refits(state.epoch)
        if state.epoch >= self.config.warmup_epochs and refitted:
            state.stopper.step(state.epoch, monitored_loss(record, self.config), state.model)
        if state.stopper.should_stop:
            state.stop = True
            record["stopped"] = state.stopper.reason()


@dataclass
class LRSchedule(Callback):
    """Steps ``state.scheduler`` (ReduceLROnPlateau) on the monitored loss after the warm-up."""

    config: TrainConfig

    def on_epoch_end(self, state: TrainState, record: dict[str, Any]) -> None:
        if state.scheduler is not None and state.epoch >= self.config.warmup_epochs:
            state.scheduler.step(monitored_loss(record, self.config))


@dataclass
class Checkpointer(Callback):
    """Replaces ``path`` atomically after every epoch: the weights every later command loads (the
    best epoch's under early stopping) and all a resume needs. ``meta`` says what the data was.
    The epoch's record is appended to ``metrics`` as one JSON line together with the checkpoint:
    both or neither (a full disk, Ctrl-C), so ``metrics.jsonl`` and ``model.pt`` never disagree."""

    path: Path
    metrics: Path
    config: TrainConfig
    meta: DatasetMeta

    def on_epoch_end(self, state: TrainState, record: dict[str, Any]) -> None:
        with appending(self.metrics, json.dumps(record) + "\n"):
            save_checkpoint(self.path, state.model, state.optimizer, self.config, self.meta, state.epoch,
                            batch_order=state.batch_order, weights=state.stopper.best_weights,
                            weights_epoch=state.weights_epoch, stopping=state.stopping_state())

    def on_diverged(self) -> str:
        return f"The last good checkpoint is kept in {self.path}"


@dataclass
class Summary(Callback):
    """At the end, says why training ended and writes ``run_dir/summary.json``."""

    run_dir: Path
    config: TrainConfig
    log: Callable[[str], None] = print

    def on_train_end(self, state: TrainState) -> None:
        why = state.end_reason(self.config)
        self.log(f"{why}; model.pt holds the weights of epoch {state.weights_epoch}")
        write_json(self.run_dir / "summary.json", {
            "epochs_trained": state.epoch, "stopped_early": state.stop, "reason": why,
            "weights_epoch": state.weights_epoch, "best_epoch": state.stopper.best_epoch,
            "best_validation_loss": state.stopper.best_loss if state.stopper.best_epoch else None,
            "final_learning_rate": state.optimizer.param_groups[0]["lr"]})


def run_directory(run_dir: Path, config: TrainConfig, meta: DatasetMeta,
                  log: Callable[[str], None] = print) -> list[Callback]:
    """Early stopping, the schedule, and what a run directory records: ``model.pt``,
    ``metrics.jsonl`` and ``summary.json``."""
    return [EarlyStop(config), LRSchedule(config),
            Checkpointer(run_dir / "model.pt", run_dir / "metrics.jsonl", config, meta),
            Summary(run_dir, config, log)]


def fit(model: VAE, train: Events, validation: Events, config: TrainConfig,
        callbacks: Sequence[Callback] | None = None, resume: Checkpoint | None = None,
        extra_metrics: Callable[[VAE, Events], dict[str, float]] | None = None,
        progress: bool = True, log: Callable[[str], None] = print, augment: Augment | None = None) -> TrainState:
    """Train ``model`` from epoch 1 (or the epoch after ``resume``'s) until ``config.epochs`` or
    until a callback sets ``state.stop``; one line per epoch goes to ``log``.

    ``callbacks`` default to early stopping and the learning-rate schedule, nothing on disk
    (:func:`run_directory` adds the run directory's files). ``augment`` changes every training
    batch at random (:data:`chordvae.batch.Augment`; validation is never changed). With early
    stopping keeping weights the model ends with the best epoch's. A NaN or infinite loss raises :class:`TrainingDiverged`
    (whatever was written stays as it was). Returns the final state, the epochs' records in
    ``history``; the model ends on the CPU.
    """
    config.validate()
    callbacks = [EarlyStop(config), LRSchedule(config)] if callbacks is None else list(callbacks)
    device = resolve_device(config.device)
    model.to(device)
    train, validation = train.to(device), validation.to(device)
    if channels_last(train):
        model.to(memory_format=torch.channels_last)
    state = TrainState.start(model, config, device, resume)
    while state.epoch < config.epochs and not state.stop:
        try:
            record = train_epoch(state, train, config, progress, augment)
        except TrainingDiverged as e:
            notes = [note for note in (c.on_diverged() for c in callbacks) if note]
            raise TrainingDiverged(". ".join([str(e), *notes])) from None
        state.epoch = record["epoch"]
        record["validation"] = validate(model, validation, config, extra_metrics)
        for callback in callbacks:
            callback.on_epoch_end(state, record)
        state.history.append(record)
        if progress:   # quiet: only the end of the run
            log(format_epoch(record, config.epochs))
    for callback in callbacks:
        callback.on_train_end(state)
    if state.stopper.best_weights is not None:
        model.load_state_dict(state.stopper.best_weights)
    model.cpu()
    return state


def format_epoch(record: dict, epochs: int) -> str:
    """One summary line for an epoch's metrics record."""
    t, v = record["train"], record["validation"]
    line = (f"epoch {record['epoch']}/{epochs} ({record['seconds']:.1f}s)  "
            f"loss {t['loss']:.3f}  rec {t['reconstruction_loss']:.3f}  kl {t['kl_loss']:.3f}  |  "
            f"val loss {v['loss']:.3f}  rec {v['reconstruction_loss']:.3f}  kl {v['kl_loss']:.3f}")
    extras = [f"{k} {val:.3f}" for k, val in v.items() if k not in METRIC_KEYS]
    return line + ("  " + "  ".join(extras) if extras else "")
