"""Runs: train a dataset into a run directory, reload it, redraw its pictures.

A run directory holds ``config.json``, ``model.pt``, ``metrics.jsonl``, ``loss.png``,
``latent_space.png``, ``label_clusters.png`` and whatever the adapter reports
(e.g. ``skipped.tsv`` for a chord corpus). Everything here is what the CLI calls.
"""
from __future__ import annotations

import json
import re
import shutil
from contextlib import contextmanager
from datetime import datetime
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import torch

from . import __version__
from .checkpoint import Checkpoint, load_checkpoint, store_latent_plane
from .datasets import Data, DatasetAdapter, get_adapter
from .errors import ChordVAEError, TrainingInterrupted
from .fileio import check_writable, locked, write_json, write_text
from .meta import DatasetMeta, Options
from .plane import LatentPlane
from .plots import plot_losses
from .threads import training_threads
from .train import TrainConfig, fit, run_directory, torch_settings
from .vae import VAE


PARTS = ("validation", "train", "test")  # the parts of a run's data that evaluate scores (test: if it has one)


@dataclass
class Run:
    """A trained run: its directory, model, adapter, stored configuration and metrics;
    ``plane`` is the latent plane of its pictures, stored in the checkpoint (None for checkpoints
    older than it: see :meth:`latent_plane`)."""

    dir: Path
    model: VAE
    adapter: DatasetAdapter
    dataset_meta: DatasetMeta
    training: TrainConfig
    epoch: int  # the epoch whose weights the model holds (the best one after early stopping)
    plane: LatentPlane | None = None

    @property
    def dataset(self) -> str:
        return self.dataset_meta.dataset

    @property
    def metrics(self) -> list[dict]:
        return read_metrics(self.dir)

    def data(self) -> Data:
        """Reload the data this run was trained on, split as it was."""
        return self.adapter.reload(self.dataset_meta)

    def latent_plane(self, data: Data | None = None) -> LatentPlane:
        """The plane every picture, page and ``decode`` uses: the stored one; a checkpoint written
        before planes were stored gets the plane of its data (``data``, else reloaded)."""
        if self.plane is None:
            data = data if data is not None else self.data()
            self.plane = LatentPlane.of(self.model, data.events())
        return self.plane


def read_metrics(run_dir: Path) -> list[dict]:
    """The run's metrics records; a last line without its newline (cut off by a crash) is not one."""
    path = Path(run_dir) / "metrics.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().split("\n")[:-1] if line.strip()]


def load_run(run_dir: str | Path, progress: bool = True) -> Run:
    """Load a run directory from its checkpoint alone (``progress``: bars when its data is reloaded)."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ChordVAEError(f"run directory {run_dir} does not exist")
    ckpt = load_checkpoint(run_dir / "model.pt")
    adapter = get_adapter(ckpt.dataset)
    adapter.progress = progress
    return Run(run_dir, ckpt.model, adapter, ckpt.dataset_meta, ckpt.training, ckpt.weights_epoch, ckpt.latent_plane)


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
    ``overrides`` (TrainConfig fields) applied; an ``epochs`` given is kept as the cap (the
    default's ``min_steps`` is dropped unless given too)."""
    if "epochs" in overrides:
        overrides = {"min_steps": 0, **overrides}
    return replace(get_adapter(dataset).default_training, **overrides)


def train(dataset: str, sources: Sequence[str] = (), *, options: Options | Mapping[str, Any] | None = None,
          arch: str | None = None, latent_dim: int | None = None, hidden: Sequence[int] | None = None,
          config: TrainConfig | None = None, out: str | Path | None = None,
          progress: bool = True, log: Callable[[str], None] = print, colour_by: str | None = None) -> Run:
    """Train a VAE on ``dataset`` (a registered adapter name) and write a run directory.

    ``sources`` are paths for the adapter (may be empty); ``options`` its dataset options (its
    typed options, e.g. a ChordOptions, or their dict).
    ``arch``, ``latent_dim`` and ``hidden`` default to the adapter's choice, ``config`` to
    :func:`training_config`; ``colour_by`` colours the pictures (one of the adapter's
    ``colourings``). ``progress=False`` logs only how the run ended (no bars, notices or
    epoch lines). Without ``config.threads`` the CPU thread count is chosen from the model's size
    and the idle cores (:func:`chordvae.threads.training_threads`) and stored in the run's
    config; either way it is set for the training only. Returns the finished run. One training
    at a time writes into a run directory: another one there raises ChordVAEError.
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
        created = not run_dir.exists()
        run_dir.mkdir(parents=True, exist_ok=True)
    with locked(run_dir, _in_use(run_dir)), torch_settings(seed=config.seed):
        if (run_dir / "model.pt").exists():
            raise ChordVAEError(f"{run_dir} already holds a run; use --resume {run_dir} or another --out")
        check_writable(run_dir)  # before the corpus is read
        try:
            data = adapter.load(list(sources), options if options is not None else {}, config.seed,
                                run_dir=run_dir)
            model = adapter.build_model(data, arch, latent_dim, hidden)   # an adapter may bring its own family
            model_config = model.config
            config = replace(config.scaled_to(len(data.train)),
                             threads=training_threads(model, data.train[:1], config.batch_size, config.threads))
        except BaseException as e:
            if created:  # nothing was trained: leave no empty run directory behind
                shutil.rmtree(run_dir, ignore_errors=True)
            if isinstance(e, ValueError):
                raise ChordVAEError(str(e)) from None
            raise
        say = log if progress else _silent   # quiet: only the end of the run and errors
        for notice in data.notices:
            say(notice)
        try:
            write_json(run_dir / "config.json", {
                "chordvae_version": __version__, "dataset": dataset, "dataset_meta": data.meta.to_dict(),
                "model": model_config.to_dict(), "training": config.to_dict(),
                "train_size": len(data.train), "validation_size": len(data.validation)})
            (run_dir / "metrics.jsonl").unlink(missing_ok=True)
            latent = f"latent {model.latent_dim}" + (f", {model_config.latent_dim} per frame"
                                                     if model.latent_dim != model_config.latent_dim else "")
            say(f"training a VAE ({model_config.arch}, {latent}) on {len(data.train)} "
                f"events of the {dataset} dataset, validating on {len(data.validation)} "
                f"({_threads(config.threads)})")
            return _train_and_draw(run_dir, model, adapter, data, config, None, config.threads, progress, log,
                                   colour_by)
        except BaseException:
            if not (run_dir / "model.pt").exists():  # not one epoch saved: leave no run without a model
                _discard(run_dir, created)
            raise


def _in_use(run_dir: Path) -> str:
    return (f"{run_dir} is in use: another chordvae is training into it; wait for it to end "
            f"(then --resume {run_dir}) or choose another --out")


def _discard(run_dir: Path, created: bool) -> None:
    """Remove a run directory that holds no model: the folder if this run made it, else the
    files training wrote into it."""
    if created:
        shutil.rmtree(run_dir, ignore_errors=True)
    else:
        for name in ("config.json", "metrics.jsonl"):
            (run_dir / name).unlink(missing_ok=True)


def resume(run_dir: str | Path, epochs: int | None = None, threads: int | None = None,
           progress: bool = True, log: Callable[[str], None] = print) -> Run:
    """Continue a run from its checkpoint up to ``epochs`` in all (default: its configured epochs).

    Everything else comes from the checkpoint, random states included: a run of 2 epochs
    resumed to 4 ends with the same weights as a run of 4. ``threads`` sets torch's CPU threads
    for this training only (default: the run's own). Refused (ChordVAEError) while another
    training writes there.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise ChordVAEError(f"no checkpoint at {run_dir / 'model.pt'}")
    with locked(run_dir, _in_use(run_dir)):
        ckpt = load_checkpoint(run_dir / "model.pt")
        check_writable(run_dir)
        config = replace(ckpt.training, epochs=epochs) if epochs is not None else ckpt.training
        if ckpt.epoch >= config.epochs:
            raise ChordVAEError(f"{run_dir} has already trained {ckpt.epoch} epochs; "
                                f"pass --epochs above {ckpt.epoch} to continue")
        if config.patience and ckpt.stopping is not None and ckpt.stopping.bad_epochs >= config.patience:
            raise ChordVAEError(f"{run_dir} stopped early after epoch {ckpt.epoch}: its validation loss had "
                                f"not improved for {config.patience} epochs; there is nothing to resume")
        adapter = get_adapter(ckpt.dataset)
        adapter.progress = progress
        data = adapter.reload(ckpt.dataset_meta)
        kept = [m for m in read_metrics(run_dir) if m["epoch"] <= ckpt.epoch]
        write_text(run_dir / "metrics.jsonl", "".join(json.dumps(m) + "\n" for m in kept))
        threads = training_threads(ckpt.model, data.train[:1], config.batch_size, threads or config.threads)
        (log if progress else _silent)(f"resuming {run_dir} at epoch {ckpt.epoch + 1} of {config.epochs} "
                                       f"({_threads(threads)})")
        return _train_and_draw(run_dir, ckpt.model, adapter, data, config, ckpt, threads, progress, log)


def _train_and_draw(run_dir: Path, model: VAE, adapter: DatasetAdapter, data: Data, config: TrainConfig,
                    resume_from: Checkpoint | None, threads: int, progress: bool, log: Callable[[str], None],
                    colour_by: str | None = None) -> Run:
    """Train into ``run_dir`` on ``threads`` CPU threads (from ``resume_from`` when given: its
    random state too), then store the latent plane and draw the run's pictures."""
    with _interruptible(run_dir), torch_settings(threads):
        if resume_from is not None and resume_from.rng_state is not None:
            torch.set_rng_state(resume_from.rng_state)
        state = fit(model, data.train, data.validation, config,
                    run_directory(run_dir, config, data.meta, log), resume=resume_from,
                    extra_metrics=adapter.metrics, progress=progress, log=log,
                    augment=adapter.augmentation(data.meta.options))
    model.eval()
    run = Run(run_dir, model, adapter, data.meta, config, state.weights_epoch, _store_plane(run_dir, model, data))
    draw_pictures(run, data, colour_by=colour_by)
    return run


def _store_plane(run_dir: Path, model: VAE, data: Data) -> LatentPlane:
    """The latent plane of the trained ``model``'s posterior means of all ``data`` (training and
    validation events), stored into ``run_dir/model.pt``."""
    plane = LatentPlane.of(model, data.events())
    store_latent_plane(run_dir / "model.pt", plane)
    return plane


def draw_pictures(run: Run, data: Data | None = None, n: int | None = None, scale: float | None = None,
                  colour_by: str | None = None, out: str | Path | None = None) -> list[Path]:
    """(Re)draw ``loss.png``, ``latent_space.png``, ``label_clusters.png`` and the adapter's further
    pictures into ``out`` (created; default: the run directory), all in the run's stored latent
    plane; ``scale`` (default: the adapter's choice) is the half-width of the ``latent_space.png``
    grid, ``colour_by`` one of the adapter's ``colourings``."""
    _check_colouring(run.adapter, colour_by)
    colouring = {"colour_by": colour_by} if colour_by is not None else {}
    out = Path(out) if out is not None else run.dir
    out.mkdir(parents=True, exist_ok=True)   # before the data is read: an unwritable place fails first
    data = data if data is not None else run.data()
    plane = run.latent_plane(data)
    paths = []
    metrics = run.metrics
    if metrics:
        plot_losses(metrics, out / "loss.png", kept_epoch=run.epoch)
        paths.append(out / "loss.png")
    run.adapter.plot_latent_space(run.model, data, run.dataset_meta, out / "latent_space.png",
                                  n=n, scale=scale, plane=plane, **colouring)
    run.adapter.plot_label_clusters(run.model, data, run.dataset_meta, out / "label_clusters.png",
                                    plane=plane, **colouring)
    paths += [out / "latent_space.png", out / "label_clusters.png"]
    return paths + run.adapter.plot_extra(run.model, data, run.dataset_meta, out, plane=plane)


def _silent(line: str) -> None:
    """A log that says nothing (quiet runs)."""


def _threads(n: int) -> str:
    return f"{n} CPU thread{'s' * (n != 1)}"


@contextmanager
def _interruptible(run_dir: Path) -> Iterator[None]:
    """Turn Ctrl-C during training into :class:`TrainingInterrupted`, which says whether the run
    directory holds a checkpoint to resume from."""
    try:
        yield
    except KeyboardInterrupt:
        raise TrainingInterrupted(str(run_dir), (run_dir / "model.pt").exists()) from None


def _check_colouring(adapter: DatasetAdapter, colour_by: str | None) -> None:
    if colour_by is not None and colour_by not in adapter.colourings:
        choices = ", ".join(adapter.colourings) or "nothing (their colours are fixed)"
        raise ChordVAEError(f"{adapter.name} pictures can be coloured by {choices}, not {colour_by!r}")


def evaluate_run(run_dir: str | Path, part: str = "validation", k: int | None = None,
                 seed: int = 0, progress: bool = True, on: Sequence[str] = (),
                 show: Callable[[dict[str, Any]], None] | None = None, include_seen: bool = False) -> dict[str, Any]:
    """Evaluate a run on the ``validation``, ``train`` or (where the data has one) ``test`` part
    of its data, as its adapter scores events (:meth:`DatasetAdapter.evaluation`); writes
    ``evaluation-<part>.json``. ``on``: score these sources instead (read with the run's dataset
    options; e.g. another corpus) and write ``evaluation-on-<names>.json``: only their pieces the
    run has not seen (neither in its training split nor held out for its validation), or every
    piece with ``include_seen``; the report says how many were which. The baselines are still
    fitted on the run's training part. ``k``: importance samples (default: the adapter's). ``show`` receives the report before it is written, so that a run
    directory that cannot be written loses nothing.
    """
    from .datasets.seen import classify, describe, keep

    if part not in PARTS:
        raise ChordVAEError(f"unknown part {part!r}; choose {' or '.join(PARTS)}")
    run = load_run(run_dir, progress=progress)
    data = run.data()
    if on:
        read = run.adapter.load_pieces_for(list(on), run.dataset_meta)
        parts = classify(read, data.piece_parts)
        pieces = read if include_seen else keep(read, parts, {"new", "unknown"})
        if not len(pieces.events):
            raise ChordVAEError(f"{' '.join(on)}: {describe(parts)}; nothing new to score "
                                "(--include-seen scores the pieces the run has seen)")
        x = pieces.events
        if x.shape[1:] != data.train.shape[1:]:
            raise ChordVAEError(f"the events of {' '.join(on)} have shape {tuple(x.shape[1:])}, "
                                f"the model's {tuple(data.train.shape[1:])}")
    elif part == "test":
        if data.test is None:
            raise ChordVAEError(f"{run.dataset_meta.dataset} has no test split; score the validation or train part")
        x = data.test
    else:
        x = data.validation if part == "validation" else data.train
    report = run.adapter.evaluation(run, data, x, k, seed, progress)
    report.update({"run": str(run.dir), "part": part, "epoch": run.epoch})
    name = f"evaluation-{part}.json"
    if on:
        report.update({"part": "on", "on": {"sources": list(on), "read": read.n_pieces, "pieces": pieces.n_pieces,
                                              "parts": describe(parts), "include_seen": include_seen,
                                              "counts": {p: parts.count(p) for p in dict.fromkeys(parts)},
                                              "notices": pieces.notices}})
        short = [s.partition("=")[0] if "=" in s else Path(s).name for s in on]   # a source's name or stem
        name = "evaluation-on-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", "+".join(short)) + ".json"
    if show is not None:
        show(report)
    write_json(run.dir / name, report)
    return report

