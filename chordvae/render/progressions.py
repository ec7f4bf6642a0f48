"""``chordvae explore`` for progression runs: one self-contained HTML page that shows, decodes,
plays, morphs and searches a progression run's latent plane.

Python exports what the page needs as JSON (see :func:`progression_data`): the sequence model's
weights under their state-dict names (the MADE's masks applied), the run's stored plane, the
corpus's windows (those ``chordvae similar`` searches: one on every bar) at their posterior means
with what :mod:`chordvae.progressions.annotate` says of them (file, bars, key, corpus, mode,
cadence), the means themselves (8-bit, for the nearest windows, when the page has room), the
chord-name table of
:func:`~chordvae.progressions.frames.frame_symbols` for every pitch-class set and bass (so the
page names every decoded beat as ``chordvae decode`` does, without a second namer) and the vocabulary's
symbol suffixes (for the typed-progression box). The page runs the encoder (a BiGRU; with a latent
per beat, the posterior's MLP on the decoder GRU's states) and the greedy decoder (GRU + MADE or
Bernoulli frames) itself.

Typed progressions in the page: chord symbols as chordvae writes them (``C``, ``Am7``, ``G/B``,
``Bbmaj7``), pitch-class lists (``0,4,7``), ``N`` (no chord), one chord per bar or bars with
beats (``| C . G . |``). Roman numerals, other music21 figures and file spans need the CLI
(``chordvae encode``); the page says so when it meets one.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import asdict
from typing import Any

import numpy as np
import torch
from matplotlib.colors import to_hex

from ..chords.names import name_chord
from ..chords.pcset import from_mask
from ..chords.spelling import LETTER_PCS, LETTERS, PITCH_NAMES
from ..chords.vocabulary import VOCABULARY
from ..datasets.progressions import Progressions
from ..errors import ChordVAEError
from ..listen.midi import RenderOptions
from ..listen.voicing import BASS_LOW, MIDDLE_C
from ..pictures.sequences import OTHER_COLOUR, map_colours
from ..plane import MARGIN
from ..progressions.annotate import MODES, key_name
from ..progressions.corpus import read_progressions
from ..progressions.frames import frame_symbols
from ..progressions.search import WindowPoints, run_options, window_points
from ..runs import Run
from ..sequence import OUTPUTS, SequenceConfig
from .explorer import _b64

#: at most this many corpus windows are drawn (a fixed random sample beyond: the page says so)
MAX_POINTS = 60_000
#: the windows' latent means are in the page (8 bits per coordinate) up to this many numbers;
#: beyond, their coordinates along the means' first MAX_MEANS // windows principal directions
MAX_MEANS = 500_000
#: the configuration fields whose meaning the page's encoder and decoder implement
#: the page decodes points and encodes typed progressions, and never draws from the prior, so
#: ``prior_components`` changes nothing it runs
KNOWN_CONFIG = {"arch", "keys", "window", "context", "latent_dim", "encoder_hidden", "decoder_hidden",
                "output", "made_hidden", "input_dropout", "context_dropout", "dropout", "pooling", "feed",
                "prior_components", "latent_per"}
_QUANT = 32767  # plane coordinates are stored as int16 fractions of the view's half-width


def expected_weights(config: SequenceConfig) -> set[str]:
    """The state-dict names of the sequence model the page implements for ``config``."""
    names = set()
    gru = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0")
    if config.latent_dim and config.latent_per == "frame":
        names |= {f"encoder.net.{i}.{w}" for i in (0, 2) for w in ("weight", "bias")}
    elif config.latent_dim:
        names |= {f"encoder.gru.{w}{s}" for w in gru for s in ("", "_reverse")}
        names |= {"encoder.posterior.weight", "encoder.posterior.bias",
                  "decoder.initial.weight", "decoder.initial.bias"}
    names |= {f"decoder.gru.{w}" for w in gru}
    if config.output == "made":
        names |= {f"decoder.frame.{w}" for w in ("w_in", "w_out", "w_direct", "mask_in", "mask_out",
                                                  "mask_direct", "context_hidden.weight", "context_hidden.bias",
                                                  "context_out.weight", "context_out.bias")}
    else:
        names |= {"decoder.frame.linear.weight", "decoder.frame.linear.bias"}
    return names


def model_weights(model: torch.nn.Module) -> dict[str, Any]:
    """The config and the weights (base64 float32, row-major, by state-dict name; the MADE's
    masks multiplied in) of a sequence model the page can run; ChordVAEError (one line) otherwise."""
    config = model.config
    if not isinstance(config, SequenceConfig):
        raise ChordVAEError("the progression page runs sequence models only")
    stored = config.to_dict()
    unknown = sorted(set(stored) - KNOWN_CONFIG)
    if unknown or config.output not in OUTPUTS:
        raise ChordVAEError(f"the progression page does not implement this model's {', '.join(unknown) or 'output'} "
                            "(its decoder runs in the page): update chordvae/render/progressions.js")
    state = {k: v.detach().float().cpu() for k, v in model.state_dict().items()
             if not k.startswith(("prior.", "decoder.prior."))}   # the page never draws from the prior
    expected = expected_weights(config)
    if set(state) != expected:
        extra, missing = sorted(set(state) - expected), sorted(expected - set(state))
        raise ChordVAEError("the progression page does not know this model's weights "
                            f"(unknown: {', '.join(extra) or 'none'}; missing: {', '.join(missing) or 'none'})")
    for name in ("w_in", "w_out", "w_direct"):
        key = f"decoder.frame.{name}"
        if key in state:
            state[key] = state[key] * state.pop(f"decoder.frame.mask_{name[2:]}")
    return {"config": asdict(config), "weights": {k: _b64(v.numpy().astype("<f4")) for k, v in state.items()}}


def name_table() -> dict[str, Any]:
    """The chord symbols the page writes, from :func:`~chordvae.progressions.frames.frame_symbols`
    itself (the one namer behind it): for every pitch-class mask 1..4095 one line of tab-separated
    symbols, of the set over each of its pitch classes as the bass (ascending; empty where equal to
    the last) then without a bass; and each set's root (:func:`name_chord`, what voicing uses)."""
    masks = np.arange(1, 4096)
    sizes = np.array([len(from_mask(int(m))) for m in masks])
    frames = np.zeros((int(sizes.sum()) + len(masks), 24), dtype=np.uint8)
    row = 0
    for mask, size in zip(masks.tolist(), sizes.tolist()):
        pcs = from_mask(mask)
        frames[row:row + size + 1, list(pcs)] = 1
        frames[np.arange(row, row + size), [12 + pc for pc in pcs]] = 1
        row += size + 1
    symbols = frame_symbols(frames)
    lines, row = [], 0
    for size in sizes.tolist():
        plain = symbols[row + size]
        lines.append("\t".join([s if s != plain else "" for s in symbols[row:row + size]] + [plain]))
        row += size + 1
    return {"symbols": "\n".join(lines), "roots": [-1] + [name_chord(from_mask(int(m))).root for m in masks]}


def corpus_points(run: Run) -> WindowPoints:
    """The windows the page shows: those ``chordvae similar`` searches, one on every bar of every
    piece of the run's corpus (read as the run read it, through the cache), at their posterior means."""
    options = run_options(run)
    corpus = read_progressions(list(run.dataset_meta.sources), options, progress=run.adapter.progress)
    return window_points(run.model, corpus, options)


def ranked_means(means: torch.Tensor) -> tuple[torch.Tensor, dict[str, Any] | None]:
    """The coordinates the page ranks windows by, from their posterior means ``(N, L)``: the means
    themselves up to :data:`MAX_MEANS` numbers, else their coordinates ``(N, k)`` along the
    means' first k = max(2, MAX_MEANS // N) principal directions, with what maps a latent point
    there (``centre`` (L,), ``basis`` (k, L) orthonormal rows) and the share of the means'
    variance those directions hold; None for the means themselves."""
    k = max(2, MAX_MEANS // max(len(means), 1))
    if k >= means.shape[1]:
        return means, None
    centre = means.mean(0)
    _, sizes, basis = torch.linalg.svd((means - centre).double(), full_matrices=False)
    share = (sizes[:k] ** 2).sum() / (sizes ** 2).sum()
    basis = basis[:k].float()
    return (means - centre) @ basis.T, {"centre": centre.tolist(), "basis": basis.tolist(), "variance": share.item()}


@torch.no_grad()
def progression_data(run: Run, extent: float | None = None, max_points: int = MAX_POINTS) -> dict[str, Any]:
    """Everything the progression page shows, as JSON-ready values; the page shows
    [-extent, extent]^2 of the plane (None: a square that holds every window)."""
    if not isinstance(run.adapter, Progressions):
        raise ChordVAEError(f"the progression page is for progression runs; {run.dir} is a {run.dataset} run")
    model = run.model.eval()
    exported = model_weights(model)
    if not model.latent_dim:
        raise ChordVAEError(f"{run.dir} has no latent space (latent size 0): nothing to explore")
    points = corpus_points(run)
    total = len(points)
    chosen = np.arange(total)
    if total > max_points:
        chosen = np.sort(torch.randperm(total, generator=torch.Generator().manual_seed(0))[:max_points].numpy())
    infos = points.infos(chosen)
    plane = run.latent_plane()
    uv = plane.project(points.means[chosen])
    extent = extent or max(plane.extent or 0.0, round(MARGIN * uv.abs().max().item() + 0.05, 1))
    scale = max(extent, uv.abs().max().item())
    files = list(dict.fromkeys(info.path for info in infos))
    corpus_of = {info.path: info.corpus for info in infos}
    names = list(dict.fromkeys(points.corpus.corpus))
    keys = [key_name(tonic, major) for major in (True, False) for tonic in range(12)]
    cadences = [c for c, _ in Counter(info.cadence for info in infos).most_common()]
    cadence_colours = map_colours([info.cadence for info in infos], "cadence")
    columns = {
        "uv": np.round(uv.numpy() / scale * _QUANT).astype("<i2"),
        "file": _index([info.path for info in infos], files, "<u2"),
        "bar": np.array([info.first_bar for info in infos], dtype="<i2"),
        "span": np.array([info.last_bar - info.first_bar for info in infos], dtype=np.uint8),
        "key": _index([info.key for info in infos], keys, np.uint8),
    }
    shifts = np.array([info.shift for info in infos], dtype=np.uint8)
    if shifts.any():
        columns["shift"] = shifts
    means, ranking = ranked_means(points.means[chosen])
    step = means.abs().amax(0).clamp(min=1e-6) / 127
    columns["means"] = torch.round(means / step).to(torch.int8).numpy()
    meta = run.dataset_meta
    options = run_options(run)
    return {
        "title": f"chordvae progression explorer: {run.dir.name}",
        "run": {"dir": run.dir.name, "epoch": run.epoch, "latentDim": model.latent_dim,
                "note": plane.note.replace("events", "windows"), "axes": list(plane.axis_labels),
                "bars": options.bars, "beatsPerBar": meta.extra["beats_per_bar"],
                "window": model.config.window, "transpose": options.transpose, "layoutRoot": options.root},
        "model": exported,
        "plane": {**plane.to_dict(), "extent": extent},
        "names": name_table(),
        "parser": {"letters": LETTERS, "letterPcs": list(LETTER_PCS),
                   "suffixes": {q.symbol: list(q.intervals) for q in VOCABULARY}},
        "pitchNames": list(PITCH_NAMES),
        "voicing": {"bassLow": BASS_LOW, "middleC": MIDDLE_C},
        "render": {"bpm": RenderOptions.bpm, "velocity": RenderOptions.velocity, "program": RenderOptions.program},
        "points": {"scale": scale, "n": len(chosen), "total": total, "meanSteps": step.tolist(), "ranking": ranking,
                   **{k: _b64(v) for k, v in columns.items()}},
        "files": _short(files),
        "keys": keys,
        "colourings": [
            _colouring("corpus", [corpus_of[f] for f in files], names,
                       map_colours([corpus_of[f] for f in files], "corpus", names), by_file=True),
            _colouring("mode", [info.mode for info in infos], list(MODES), map_colours([], "mode")),
            _colouring("cadence", [info.cadence for info in infos], cadences, cadence_colours),
        ],
    }


def _index(values: list[str], labels: list[str], dtype: Any) -> np.ndarray:
    """Each value's index in ``labels``."""
    where = {label: i for i, label in enumerate(labels)}
    return np.array([where[v] for v in values], dtype=dtype)


def _colouring(name: str, values: list[str], labels: list[str], colours: dict[str, Any],
               by_file: bool = False) -> dict[str, Any]:
    """A colouring of the points as the progression map colours them (labels without a colour
    there grey): ``values`` one per point, or with ``by_file`` one per file of the page's ``files``."""
    wide = len(labels) > 255
    return {"name": name, "labels": labels, "wide": wide, "byFile": by_file,
            "colours": [to_hex(colours.get(label, OTHER_COLOUR)) for label in labels],
            "of": _b64(_index(values, labels, "<u2" if wide else np.uint8))}


def _short(paths: list[str]) -> list[str]:
    """The files without the folder they all share."""
    if len(paths) < 2:
        return [p.rsplit("/", 1)[-1] for p in paths]
    parts = [p.split("/") for p in paths]
    common = 0
    while all(len(p) > common + 1 and p[common] == parts[0][common] for p in parts):
        common += 1
    return ["/".join(p[common:]) for p in parts]


