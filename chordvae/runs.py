"""Runs: train a dataset into a run directory, reload it, redraw its pictures.

A run directory holds ``config.json``, ``model.pt``, ``metrics.jsonl``, ``loss.png``,
``latent_space.png``, ``label_clusters.png`` and whatever the adapter reports
(e.g. ``skipped.tsv`` for a chord corpus). Everything here is what the CLI calls.
"""
from __future__ import annotations

import json
import shutil
from datetime import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from . import __version__
from .checkpoint import load_checkpoint
from .datasets import Data, DatasetAdapter, get_adapter
from .errors import ChordVAEError
from .fileio import write_json, write_text
from .plots import LatentPlane, plot_losses
from .train import TrainConfig, fit
from .vae import VAE, ModelConfig, build_model


PARTS = ("validation", "train")  # the parts of a run's data that evaluate scores


@dataclass
class Run:
    """A trained run: its directory, model, adapter, stored configuration and metrics;
    ``plane`` is the latent plane of its pictures (None for checkpoints older than it)."""

    dir: Path
    model: VAE
    adapter: DatasetAdapter
    dataset: str
    dataset_meta: dict[str, Any]
    training: dict[str, Any]
    epoch: int
    plane: LatentPlane | None = None

    @property
    def metrics(self) -> list[dict]:
        return read_metrics(self.dir)

    def data(self) -> Data:
        """Reload the data this run was trained on, split as it was."""
        return self.adapter.reload(self.dataset_meta)


def read_metrics(run_dir: Path) -> list[dict]:
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def load_run(run_dir: str | Path, progress: bool = True) -> Run:
    """Load a run directory from its checkpoint alone (``progress``: bars when its data is reloaded)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ChordVAEError(f"run directory {run_dir} does not exist")
    ckpt = load_checkpoint(run_dir / "model.pt")
    adapter = get_adapter(ckpt.dataset)
    adapter.progress = progress
    return Run(run_dir, ckpt.model, adapter, ckpt.dataset, ckpt.dataset_meta, ckpt.training, ckpt.epoch,
               ckpt.latent_plane)


def new_run_dir(dataset: str, parent: str | Path = "runs") -> Path:
    """Create and return ``parent/<dataset>-<date>-<time>``, adding ``-2``, ``-3``, ... when that
    name is taken: the folder is made atomically, so runs started in the same second never share one."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    stem = f"{dataset}-{datetime.now():%Y%m%d-%H%M%S}"
    for k in range(1, 10_000):
        path = parent / (stem if k == 1 else f"{stem}-{k}")
        try:
            path.mkdir()
            return path
        except FileExistsError:
            continue
    raise ChordVAEError(f"cannot find a free run directory name for {parent / stem}")


def train(dataset: str, sources: Sequence[str] = (), *, options: dict[str, Any] | None = None,
          arch: str | None = None, latent_dim: int = 2, hidden: Sequence[int] | None = None,
          config: TrainConfig | None = None, out: str | Path | None = None,
          progress: bool = True, log: Callable[[str], None] = print) -> Run:
    """Train a VAE on ``dataset`` (a registered adapter name) and write a run directory.

    ``sources`` are paths for the adapter (may be empty); ``options`` its dataset options.
    ``arch`` and ``hidden`` default to the adapter's choice. Returns the finished run.
    """
    config = config or TrainConfig()
    config.validate()
    adapter = get_adapter(dataset)
    adapter.progress = progress
    if out is None:
        run_dir, created = new_run_dir(dataset), True
    else:
        run_dir = Path(out)
        if run_dir.exists() and not run_dir.is_dir():
            raise ChordVAEError(f"{run_dir} is a file; --out names the folder a run is written to")
        if (run_dir / "model.pt").exists():
            raise ChordVAEError(f"{run_dir} already holds a run; use --resume {run_dir} or another --out")
        created = not run_dir.exists()
        run_dir.mkdir(parents=True, exist_ok=True)
    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    try:
        data = adapter.load(list(sources), options if options is not None else {}, config.seed,
                            run_dir=run_dir)
        model_config = ModelConfig(arch=arch or adapter.default_arch, event_shape=data.event_shape,
                                   latent_dim=latent_dim,
                                   hidden=tuple(hidden) if hidden else adapter.default_hidden)
        model = build_model(model_config)
    except BaseException as e:
        if created:  # nothing was trained: leave no empty run directory behind
            shutil.rmtree(run_dir, ignore_errors=True)
        if isinstance(e, ValueError):
            raise ChordVAEError(str(e)) from None
        raise
    for notice in data.notices:
        log(notice)
    write_json(run_dir / "config.json", {
        "chordvae_version": __version__, "dataset": dataset, "dataset_meta": data.meta,
        "model": model_config.to_dict(), "training": config.to_dict(),
        "train_size": len(data.train), "validation_size": len(data.validation)})
    (run_dir / "metrics.jsonl").unlink(missing_ok=True)
    log(f"training a {model_config.arch} VAE (latent {latent_dim}) on {len(data.train)} {dataset} "
        f"training events, validating on {len(data.validation)}")
    fit(model, data.train, data.validation, config, run_dir,
        {"dataset": dataset, "dataset_meta": data.meta},
        extra_metrics=adapter.metrics, progress=progress, log=log)
    model.eval()
    run = Run(run_dir, model, adapter, dataset, data.meta, config.to_dict(), config.epochs,
              LatentPlane.of(model, data.validation))
    draw_pictures(run, data)
    return run


def resume(run_dir: str | Path, epochs: int | None = None, threads: int | None = None,
           progress: bool = True, log: Callable[[str], None] = print) -> Run:
    """Continue a run from its checkpoint up to ``epochs`` in all (default: its configured epochs).

    Everything else comes from the checkpoint, random states included: a run of 2 epochs
    resumed to 4 ends with the same weights as a run of 4. ``threads`` only sets torch's
    CPU threads for this session.
    """
    run_dir = Path(run_dir)
    ckpt = load_checkpoint(run_dir / "model.pt")
    config = TrainConfig(**ckpt.training)
    if epochs is not None:
        config.epochs = epochs
    if ckpt.epoch >= config.epochs:
        raise ChordVAEError(f"{run_dir} has already trained {ckpt.epoch} epochs; "
                            f"pass --epochs above {ckpt.epoch} to continue")
    if threads or config.threads:
        torch.set_num_threads(threads or config.threads)
    adapter = get_adapter(ckpt.dataset)
    adapter.progress = progress
    data = adapter.reload(ckpt.dataset_meta)
    kept = [m for m in read_metrics(run_dir) if m["epoch"] <= ckpt.epoch]
    write_text(run_dir / "metrics.jsonl", "".join(json.dumps(m) + "\n" for m in kept))
    if ckpt.rng_state is not None:
        torch.set_rng_state(ckpt.rng_state)
    log(f"resuming {run_dir} at epoch {ckpt.epoch + 1} of {config.epochs}")
    model = ckpt.model
    fit(model, data.train, data.validation, config, run_dir,
        {"dataset": ckpt.dataset, "dataset_meta": ckpt.dataset_meta},
        optimizer_state=ckpt.optimizer_state, start_epoch=ckpt.epoch,
        batch_order_state=ckpt.batch_order_state,
        extra_metrics=adapter.metrics, progress=progress, log=log)
    model.eval()
    run = Run(run_dir, model, adapter, ckpt.dataset, ckpt.dataset_meta, config.to_dict(), config.epochs,
              LatentPlane.of(model, data.validation))
    draw_pictures(run, data)
    return run


def draw_pictures(run: Run, data: Data | None = None, n: int | None = None, scale: float = 1.0) -> list[Path]:
    """(Re)draw ``loss.png``, ``latent_space.png`` and ``label_clusters.png`` into the run directory."""
    data = data if data is not None else run.data()
    paths = []
    metrics = run.metrics
    if metrics:
        plot_losses(metrics, run.dir / "loss.png")
        paths.append(run.dir / "loss.png")
    run.adapter.plot_latent_space(run.model, data, run.dataset_meta, run.dir / "latent_space.png",
                                  n=n, scale=scale)
    run.adapter.plot_label_clusters(run.model, data, run.dataset_meta, run.dir / "label_clusters.png")
    return paths + [run.dir / "latent_space.png", run.dir / "label_clusters.png"]


def evaluate_run(run_dir: str | Path, part: str = "validation", k: int | None = None,
                 seed: int = 0, progress: bool = True) -> dict[str, Any]:
    """Evaluate a run on the ``validation`` or ``train`` part of its data; writes
    ``evaluation-<part>.json``. ``k`` importance samples default to 1000 for small events
    (chords) and 100 for images.
    """
    from .evaluate import evaluate

    if part not in PARTS:
        raise ChordVAEError(f"unknown part {part!r}; choose {' or '.join(PARTS)}")
    run = load_run(run_dir, progress=progress)
    data = run.data()
    x = data.validation if part == "validation" else data.train
    k = k or (1000 if x[0].numel() <= 64 else 100)
    report = evaluate(run.model, data.train, x, k, seed=seed, extra=run.adapter.metrics(run.model, x))
    report.update({"run": str(run.dir), "part": part, "epoch": run.epoch})
    write_json(run.dir / f"evaluation-{part}.json", report)
    return report
