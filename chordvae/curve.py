"""Learning curves: how much data does the VAE need?

The same pieces are held out throughout; for each requested number of training pieces and each
repeat, a fresh VAE trains on that many of the remaining pieces (repeat r draws its own order of
them, and each count takes the first n, so a repeat's training sets are nested) for at least
``steps`` optimiser updates and at least ``epochs`` passes over its data (small sets are not
starved of updates, large ones see their data as often as a normal run would), and is scored on the held-out pieces: importance-weighted NLL
(nats per event), the adapter's figures (chords: exact set rate) and the two baselines
(:mod:`chordvae.baselines`) fitted on the same training pieces: independent Bernoulli and the
empirical sets for chords; for sequences (windows of frames, e.g. progressions: nats per frame)
independent Bernoulli over frames and the n-gram over frames (:class:`~chordvae.baselines.FrameNGram`,
cross-validated over the training pieces). A sequence model trains on the pieces' tiled windows
(those its adapter's ``load_pieces`` gives), not on the overlapping windows of ``train``.
"""
from __future__ import annotations

import textwrap
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
from matplotlib.figure import Figure

from .baselines import EmpiricalSets, FrameNGram, IndependentBernoulli
from .batch import Augment, Events, Masked
from .datasets import get_adapter
from .datasets.base import Pieces
from .errors import ChordVAEError
from .evaluate import iwae_nll
from .fileio import check_writable, write_json
from .plots import save_figure
from .threads import training_threads
from .train import TrainConfig, fit, torch_settings
from .sequence import build_any, frames_of

#: the baselines of a curve over single events (chords), and over sequences
BASELINES = ("independent Bernoulli", "empirical sets")
SEQUENCE_BASELINES = ("independent Bernoulli", "n-gram")
#: the NLL axis's ticks when it is logarithmic (nats)
LOG_TICKS = (0.5, 1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10, 12, 15, 20, 30, 50, 100)
#: the least number of updates of a curve's model when neither the curve nor the dataset asks more
MIN_STEPS = 2000


@dataclass(frozen=True)
class CurveConfig:
    """``pieces``: training-set sizes in pieces (0 = every training piece); ``repeats`` per size;
    ``held_out``: fraction of the pieces scored (at least one); each model trains for
    max(``epochs``, ``steps`` / batches per epoch) epochs (``steps`` None: the dataset's own
    minimum of updates, at least :data:`MIN_STEPS`); ``iw_samples``: K of the IWAE bound."""

    pieces: tuple[int, ...]
    repeats: int = 3
    held_out: float = 0.1
    steps: int | None = None
    epochs: int = 30
    iw_samples: int = 1000
    seed: int = 0

    def updates(self, train: TrainConfig) -> int:
        """The least number of optimiser updates a model trains for (see ``steps``)."""
        return self.steps if self.steps is not None else max(train.min_steps, MIN_STEPS)

    def validate(self) -> None:
        if not self.pieces or any(n < 0 for n in self.pieces):
            raise ChordVAEError("give piece counts as positive whole numbers (or all), e.g. 5,10,20,all")
        if self.repeats < 1 or (self.steps is not None and self.steps < 1) or self.epochs < 1 \
                or self.iw_samples < 1:
            raise ChordVAEError("repeats, steps, epochs and importance samples must be at least 1")
        if not 0 < self.held_out < 1:
            raise ChordVAEError("the held-out fraction must be between 0 and 1")


def learning_curve(pieces: Pieces, config: CurveConfig, model_config: Any, train: TrainConfig,
                   metrics: Callable[[Any, torch.Tensor], dict[str, float]] | None = None,
                   log: Callable[[str], None] = print, augment: Augment | None = None) -> dict[str, Any]:
    """Train and score one model per (piece count, repeat); returns the points and a summary.

    ``model_config``: a :class:`~chordvae.vae.ModelConfig`, or a sequence model's config for
    events that are windows (:class:`~chordvae.batch.Masked`); ``metrics(model, x)`` adds
    figures on the held-out events (e.g. the exact set rate); ``augment`` changes each training
    batch (:data:`~chordvae.batch.Augment`).
    """
    config.validate()
    rng = np.random.default_rng(config.seed)
    order = rng.permutation(pieces.n_pieces)
    n_held = max(1, round(config.held_out * pieces.n_pieces))
    held, pool = order[:n_held], order[n_held:]
    counts = [n or len(pool) for n in config.pieces]
    if max(counts) > len(pool) or not pool.size:
        raise ChordVAEError(f"--pieces {max(counts)} is more than the {len(pool)} training pieces "
                            f"({pieces.n_pieces} pieces, {n_held} held out)")
    piece = pieces.piece.numpy()
    x_held = pieces.events[torch.from_numpy(np.isin(piece, held))]
    log(f"held out {n_held} of {pieces.n_pieces} pieces ({_count(x_held)} events); "
        f"training on {', '.join(map(str, counts))} of the other {len(pool)}, {config.repeats} repeat(s), "
        f"each model for at least {config.updates(train)} updates and {config.epochs} epochs")
    points = []
    for r in range(config.repeats):
        shuffled = np.random.default_rng(config.seed + 1 + r).permutation(pool)
        for n in counts:
            chosen = torch.from_numpy(np.isin(piece, shuffled[:n]))
            point = _train_and_score(pieces.events[chosen], x_held, model_config, train, config, config.seed + r,
                                     metrics, pieces.piece[chosen], augment)
            points.append({"pieces": n, "repeat": r, **point})
            log(f"  {n:5d} pieces ({point['chords']} chords), repeat {r + 1}: held-out NLL {point['nll']:.3f}"
                + "".join(f", {k} {v:.3f}" for k, v in point["figures"].items()))
    return {"pieces": counts, "held_out": {"pieces": n_held, "events": _count(x_held)},
            "baselines": list(SEQUENCE_BASELINES if isinstance(x_held, Masked) else BASELINES),
            "training_pieces": len(pool), "config": asdict(config), "updates": config.updates(train),
            "training": train.to_dict(),
            "model": model_config.to_dict(), "points": points, "summary": summarise(points)}


def _count(x: Events) -> int:
    """Events scored: frames for windows of sequences, else examples."""
    return x.frames if isinstance(x, Masked) else len(x)


def _train_and_score(x_train: Events, x_held: Events, model_config: Any, train: TrainConfig, config: CurveConfig,
                     seed: int, metrics: Callable | None, groups: torch.Tensor,
                     augment: Augment | None = None) -> dict[str, Any]:
    """Train one model on ``x_train`` (of pieces ``groups``) and score ``x_held`` (nats per event)."""
    settings = replace(train, epochs=config.epochs, min_steps=config.updates(train), seed=seed).scaled_to(len(x_train))
    with torch_settings(seed=seed):   # the caller's threads and random state come back afterwards
        model = build_any(model_config.to_dict())
        torch.set_num_threads(training_threads(model, x_train[:1], train.batch_size, train.threads))
        fit(model, x_train, x_held, settings, progress=False, log=lambda line: None, augment=augment)
    model.eval()
    generator = torch.Generator().manual_seed(seed)
    nll = iwae_nll(model, x_held, config.iw_samples, generator=generator).sum().item() / _count(x_held)
    if isinstance(x_held, Masked):
        frames = frames_of(x_held)
        baselines = {SEQUENCE_BASELINES[0]: IndependentBernoulli().fit(frames_of(x_train)).nll(frames).mean().item(),
                     SEQUENCE_BASELINES[1]: FrameNGram().fit(x_train, groups).nll(x_held).mean().item()}
    else:
        baselines = {BASELINES[0]: IndependentBernoulli().fit(x_train).nll(x_held).mean().item(),
                     BASELINES[1]: EmpiricalSets().fit(x_train).nll(x_held).mean().item()}
    return {"chords": _count(x_train), "epochs": settings.epochs, "nll": nll,
            "figures": metrics(model, x_held) if metrics else {}, "baselines": baselines}


def summarise(points: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per piece count: mean, min and max over repeats of chords, NLL, figures and baselines."""
    out = []
    for n in dict.fromkeys(p["pieces"] for p in points):
        group = [p for p in points if p["pieces"] == n]
        series = {"chords": [p["chords"] for p in group], "nll": [p["nll"] for p in group]}
        series.update({k: [p["figures"][k] for p in group] for k in group[0]["figures"]})
        series.update({k: [p["baselines"][k] for p in group] for k in group[0]["baselines"]})
        out.append({"pieces": n, **{k: {"mean": float(np.mean(v)), "min": float(np.min(v)),
                                         "max": float(np.max(v))} for k, v in series.items()}})
    return out


def pieces_needed(result: dict[str, Any], tolerance: float = 0.1) -> int | None:
    """The fewest training pieces whose mean held-out NLL is within ``tolerance`` nats of the
    mean NLL at the largest count (the full-data reference); None if no point has been run."""
    summary = sorted(result["summary"], key=lambda s: s["pieces"])
    if not summary:
        return None
    full = summary[-1]["nll"]["mean"]
    return next(s["pieces"] for s in summary if s["nll"]["mean"] <= full + tolerance)


def within_message(result: dict[str, Any], tolerance: float = 0.1) -> str:
    """What :func:`pieces_needed` found, in words that stay true when only the largest count qualifies."""
    counts = sorted(s["pieces"] for s in result["summary"])
    needed = pieces_needed(result, tolerance)
    if needed is None:
        return "no point was run"
    if len(counts) == 1:
        return f"only one count was run ({counts[0]} pieces): nothing to compare its NLL with"
    if needed == counts[-1]:
        return (f"none of the smaller counts ({', '.join(map(str, counts[:-1]))} pieces) comes within {tolerance:g} "
                f"nats of the VAE's NLL on {counts[-1]} pieces: more data still helps")
    return f"the VAE comes within {tolerance:g} nats of its NLL on {counts[-1]} pieces from {needed} pieces on"


def curve_figure(result: dict[str, Any], title: str = "") -> Figure:
    """``curve.png``'s figure: held-out NLL (with the baselines; on a log axis when the largest is
    over 3 times the smallest) and the figures (e.g. exact set rate) against training pieces (top)
    and training chords (bottom); bands span the repeats."""
    summary = sorted(result["summary"], key=lambda s: s["pieces"])
    baselines = result.get("baselines", BASELINES)
    figures = [k for k in summary[0] if k not in ("pieces", "chords", "nll", *baselines)]
    unit = "frame" if "n-gram" in baselines else "chord"
    fig = Figure(figsize=(6 * (1 + len(figures)), 8))
    axes = fig.subplots(2, 1 + len(figures), squeeze=False)
    for row, xkey in enumerate(("pieces", "chords")):
        x = [s["pieces"] if xkey == "pieces" else s["chords"]["mean"] for s in summary]
        panels = [("nll", ["nll", *baselines])] + [(f, [f]) for f in figures]
        for ax, (ylabel, keys) in zip(axes[row], panels):
            for key in keys:
                mean = [s[key]["mean"] for s in summary]
                line, = ax.plot(x, mean, marker="o", ms=4, label="VAE (IWAE)" if key == "nll" else key,
                                ls="-" if key in ("nll", *figures) else "--")
                ax.fill_between(x, [s[key]["min"] for s in summary], [s[key]["max"] for s in summary],
                                color=line.get_color(), alpha=0.2)
            ax.set_xscale("log")
            ax.set_xticks(x, [_tick(v) for v in x])
            ax.minorticks_off()
            values = [s[k][m] for s in summary for k in keys for m in ("min", "max")]
            if ylabel == "nll" and min(values) > 0 and max(values) > 3 * min(values):
                ax.set_yscale("log")                # a far baseline would squash the others
                ax.minorticks_off()
                ticks = [t for t in LOG_TICKS if min(values) / 1.2 <= t <= max(values) * 1.2]
                ax.set_yticks(ticks, [f"{t:g}" for t in ticks])
            ax.set_xlabel(f"training {'frames' if xkey == 'chords' and unit == 'frame' else xkey}")
            ax.set_ylabel(f"held-out NLL (nats per {unit}{', log scale' if ax.get_yscale() == 'log' else ''})"
                          if ylabel == "nll" else ylabel.replace("_", " "))
            ax.legend(fontsize=8)
    held = result["held_out"]
    fig.suptitle(textwrap.fill(f"{title}learning curve: {held['pieces']} held-out pieces ({held['events']} events); "
                               f"bands: min–max over {result['config']['repeats']} repeat(s)", 70 * (1 + len(figures))))
    return fig


def _tick(value: float) -> str:
    """A tick label short enough not to run into its neighbours on a log axis: 950, 8,625, 165k."""
    return f"{value / 1000:.0f}k" if value >= 100_000 else f"{value:,.0f}"


def run_curve(dataset: str, sources: Sequence[str], options: Any, config: CurveConfig,
              train: TrainConfig | None, out: str | Path, latent_dim: int | None = None,
              hidden: Sequence[int] | None = None, arch: str | None = None, progress: bool = True,
              log: Callable[[str], None] = print) -> dict[str, Any]:
    """Read ``sources`` through the dataset's adapter (with its ``options``, e.g. a ChordOptions),
    run :func:`learning_curve` and write ``curve.json`` and ``curve.png`` into ``out``; returns the result.

    ``train``, ``latent_dim``, ``hidden`` and ``arch`` default to the dataset's (what ``chordvae
    train`` uses), except that every model trains for the curve's fixed budget: the held-out
    pieces are the test, so no early stopping or learning-rate schedule may watch them.
    """
    adapter = get_adapter(dataset)
    train = replace(train or adapter.default_training, patience=0, lr_patience=0)
    config.validate()
    train.validate()
    out = Path(out)
    check_writable(out)  # before the work, not after it
    adapter.progress = progress
    with torch_settings(train.threads):
        pieces = adapter.load_pieces(list(sources), options)
        for notice in pieces.notices:
            log(notice)
        model_config = adapter.model_config(tuple(pieces.events.shape[1:]), arch, latent_dim, hidden)
        result = learning_curve(pieces, config, model_config, train, adapter.metrics, log,
                                adapter.augmentation(options))
    result.update({"dataset": dataset, "sources": list(sources), "pieces_within_0.1_nats": pieces_needed(result)})
    write_json(out / "curve.json", result)
    save_figure(curve_figure(result, title=f"{' '.join(sources) or dataset}: "), out / "curve.png")
    return result
