"""Runs: train a dataset into a run directory, reload it, redraw its pictures.

A run directory holds ``config.json``, ``model.pt``, ``metrics.jsonl``, ``loss.png``,
``latent_space.png``, ``label_clusters.png`` and whatever the adapter reports
(e.g. ``skipped.tsv`` for a chord corpus). Everything here is what the CLI calls.
"""
from __future__ import annotations

import json
import re
import shutil
from datetime import datetime
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

from . import __version__
from .checkpoint import load_checkpoint
from .datasets import Data, DatasetAdapter, get_adapter
from .errors import ChordVAEError
from .fileio import write_json, write_text
from .plots import LatentPlane, plot_losses
from .sequence import ABLATION, SEQUENCE_K, SequenceVAE, sequence_report
from .train import TrainConfig, fit
from .vae import VAE, ModelConfig, build_model


PARTS = ("validation", "train", "test")  # the parts of a run's data that evaluate scores (test: if it has one)


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
    epoch: int  # the epoch whose weights the model holds (the best one after early stopping)
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
    return Run(run_dir, ckpt.model, adapter, ckpt.dataset, ckpt.dataset_meta, ckpt.training, ckpt.weights_epoch,
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


def training_config(dataset: str, **overrides: Any) -> TrainConfig:
    """The dataset's default training settings (its adapter's ``default_training``) with
    ``overrides`` (TrainConfig fields) applied."""
    return replace(get_adapter(dataset).default_training, **overrides)


def train(dataset: str, sources: Sequence[str] = (), *, options: dict[str, Any] | None = None,
          arch: str | None = None, latent_dim: int | None = None, hidden: Sequence[int] | None = None,
          config: TrainConfig | None = None, out: str | Path | None = None,
          progress: bool = True, log: Callable[[str], None] = print, colour_by: str | None = None) -> Run:
    """Train a VAE on ``dataset`` (a registered adapter name) and write a run directory.

    ``sources`` are paths for the adapter (may be empty); ``options`` its dataset options.
    ``arch``, ``latent_dim`` and ``hidden`` default to the adapter's choice, ``config`` to
    :func:`training_config`; ``colour_by`` colours the pictures (one of the adapter's
    ``colourings``). Returns the finished run.
    """
    config = config or training_config(dataset)
    config.validate()
    adapter = get_adapter(dataset)
    _check_colouring(adapter, colour_by)
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
        model = adapter.build_model(data, latent_dim, hidden)   # an adapter's own family (sequences)
        if model is None:
            model = build_model(ModelConfig(arch=arch or adapter.default_arch, event_shape=data.event_shape,
                                            latent_dim=latent_dim or adapter.default_latent_dim,
                                            hidden=tuple(hidden) if hidden else adapter.default_hidden))
        model_config = model.config
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
    log(f"training a {model_config.arch} VAE (latent {model_config.latent_dim}) on {len(data.train)} {dataset} "
        f"training events, validating on {len(data.validation)}")
    fit(model, data.train, data.validation, config, run_dir,
        {"dataset": dataset, "dataset_meta": data.meta},
        extra_metrics=adapter.metrics, progress=progress, log=log)
    model.eval()
    run = Run(run_dir, model, adapter, dataset, data.meta, config.to_dict(),
              load_checkpoint(run_dir / "model.pt").weights_epoch,
              LatentPlane.of(model, data.validation))
    draw_pictures(run, data, colour_by=colour_by)
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
    stopping = dict(ckpt.stopping or {})
    if config.patience and stopping.get("bad_epochs", 0) >= config.patience:
        raise ChordVAEError(f"{run_dir} stopped early after epoch {ckpt.epoch}: its validation loss had "
                            f"not improved for {config.patience} epochs; there is nothing to resume")
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
    if ckpt.last_state_dict is not None:  # the checkpoint's weights are the best epoch's
        stopping["best_weights"] = {k: v.clone() for k, v in model.state_dict().items()}
        model.load_state_dict(ckpt.last_state_dict)
    fit(model, data.train, data.validation, config, run_dir,
        {"dataset": ckpt.dataset, "dataset_meta": ckpt.dataset_meta},
        optimizer_state=ckpt.optimizer_state, start_epoch=ckpt.epoch,
        batch_order_state=ckpt.batch_order_state, stopping_state=stopping if ckpt.stopping else None,
        extra_metrics=adapter.metrics, progress=progress, log=log)
    model.eval()
    run = Run(run_dir, model, adapter, ckpt.dataset, ckpt.dataset_meta, config.to_dict(),
              load_checkpoint(run_dir / "model.pt").weights_epoch, LatentPlane.of(model, data.validation))
    draw_pictures(run, data)
    return run


def draw_pictures(run: Run, data: Data | None = None, n: int | None = None, scale: float = 1.0,
                  colour_by: str | None = None) -> list[Path]:
    """(Re)draw ``loss.png``, ``latent_space.png``, ``label_clusters.png`` and the adapter's further
    pictures into the run directory; ``colour_by`` is one of the adapter's ``colourings``."""
    _check_colouring(run.adapter, colour_by)
    colouring = {"colour_by": colour_by} if colour_by is not None else {}
    data = data if data is not None else run.data()
    paths = []
    metrics = run.metrics
    if metrics:
        plot_losses(metrics, run.dir / "loss.png")
        paths.append(run.dir / "loss.png")
    run.adapter.plot_latent_space(run.model, data, run.dataset_meta, run.dir / "latent_space.png",
                                  n=n, scale=scale, **colouring)
    run.adapter.plot_label_clusters(run.model, data, run.dataset_meta, run.dir / "label_clusters.png",
                                    **colouring)
    paths += [run.dir / "latent_space.png", run.dir / "label_clusters.png"]
    return paths + run.adapter.plot_extra(run.model, data, run.dataset_meta, run.dir)


def _check_colouring(adapter: DatasetAdapter, colour_by: str | None) -> None:
    if colour_by is not None and colour_by not in adapter.colourings:
        choices = ", ".join(adapter.colourings) or "nothing (their colours are fixed)"
        raise ChordVAEError(f"{adapter.name} pictures can be coloured by {choices}, not {colour_by!r}")


def evaluate_run(run_dir: str | Path, part: str = "validation", k: int | None = None,
                 seed: int = 0, progress: bool = True, on: Sequence[str] = ()) -> dict[str, Any]:
    """Evaluate a run on the ``validation`` or ``train`` part of its data; writes
    ``evaluation-<part>.json``. ``on``: score these sources instead (every event, read with the
    run's dataset options; e.g. another corpus) and write ``evaluation-on-<names>.json``; the
    baselines are still fitted on the run's training part. ``k`` importance samples default to
    1000 for small events (chords) and 100 for images.
    """
    from .evaluate import evaluate

    if part not in PARTS:
        raise ChordVAEError(f"unknown part {part!r}; choose {' or '.join(PARTS)}")
    run = load_run(run_dir, progress=progress)
    data = run.data()
    if on:
        pieces = run.adapter.load_pieces(list(on), run.dataset_meta.get("options", {}))
        x = pieces.events
        if x.shape[1:] != data.train.shape[1:]:
            raise ChordVAEError(f"the events of {' '.join(on)} have shape {tuple(x.shape[1:])}, "
                                f"the model's {tuple(data.train.shape[1:])}")
    elif part == "test":
        if data.test is None:
            raise ChordVAEError(f"{run.dataset} has no test split; score the validation or train part")
        x = data.test
    else:
        x = data.validation if part == "validation" else data.train
    if isinstance(run.model, SequenceVAE):
        report = sequence_report(run.model, data.train_tiled or data.train, x, k or SEQUENCE_K, seed,
                                 ablation=_ablation(run.dir))
        report.update({"run": str(run.dir), "part": part, "epoch": run.epoch})
        write_json(run.dir / f"evaluation-{part}.json", report)
        return report
    k = k or (1000 if x[0].numel() <= 64 else 100)
    report = evaluate(run.model, data.train, x, k, seed=seed, extra={**run.adapter.metrics(run.model, x),
                                                                   **run.adapter.latent_figures(run.model, x)},
                      train_groups=data.train_groups)
    report.update({"run": str(run.dir), "part": part, "epoch": run.epoch})
    name = f"evaluation-{part}.json"
    if on:
        report.update({"part": "on", "on": {"sources": list(on), "pieces": pieces.n_pieces,
                                              "notices": pieces.notices}})
        short = [s.partition("=")[0] if "=" in s else Path(s).name for s in on]   # a source's name or stem
        name = "evaluation-on-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", "+".join(short)) + ".json"
    write_json(run.dir / name, report)
    return report


def _ablation(run_dir: Path) -> SequenceVAE | None:
    """The same decoder without a latent, when one was trained beside the run (``RUN/no-latent``)."""
    path = run_dir / ABLATION / "model.pt"
    return load_checkpoint(path).model if path.is_file() else None
