"""MNIST and Fashion-MNIST: 28 x 28 greyscale images as (1, 28, 28) events in [0, 1]."""
from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch
from matplotlib.figure import Figure

from ..errors import ChordVAEError
from ..meta import DatasetMeta
from ..plane import LatentPlane, posterior_means
from ..plots import label_plane, save_figure
from ..vae import VAE
from .base import Data, DatasetAdapter
from .idx import FASHION_MNIST_SOURCE, MNIST_SOURCE, IdxSource, load_split, locate

if TYPE_CHECKING:  # pretty_midi is not needed to load data
    from ..listen.midi import RenderOptions


class MNIST(DatasetAdapter):
    """Handwritten digits, as in the Keras VAE example (conv network by default).

    Options: ``data_dir`` (folder with the IDX gz files; default: the cache, downloading
    what is missing) and ``split`` (``official``: train on the training split, validate on
    the test split; ``all``: train on all 70,000 as the Keras example does).
    """

    name: ClassVar[str] = "mnist"
    default_arch: ClassVar[str] = "conv"
    default_grid: ClassVar[int] = 30
    source: ClassVar[IdxSource] = MNIST_SOURCE
    label_names: ClassVar[list[str]] = [str(d) for d in range(10)]

    def load(self, sources: list[str], options: dict[str, Any], seed: int,
             run_dir: Path | None = None) -> Data:
        if sources:
            raise ChordVAEError(f"{self.name} takes no paths; use --data-dir to say where its files are")
        split = options.get("split") or "official"
        data_dir = str(Path(options["data_dir"]).resolve()) if options.get("data_dir") else None
        files = locate(self.source, Path(data_dir) if data_dir else None)
        x_train, y_train, x_val, y_val, notices = load_split(files, split, seed)
        return Data(train=_to_events(x_train), validation=_to_events(x_val),
                    train_labels=torch.from_numpy(y_train), validation_labels=torch.from_numpy(y_val),
                    label_names=list(self.label_names),
                    meta=DatasetMeta(self.name, [], {"data_dir": data_dir, "split": split}, seed),
                    notices=notices)

    def default_scale(self, plane: LatentPlane) -> float:
        """The Keras example's grid: [-1, 1]^2."""
        return 1.0

    def plot_latent_space(self, model: VAE, data: Data | None, meta: DatasetMeta,
                          path: Path, n: int | None = None, scale: float | None = None,
                          plane: LatentPlane | None = None) -> None:
        """The Keras example's ``plot_latent_space``: an n x n grid of decoded images (n = 30)."""
        n = n or self.default_grid
        plane = plane or LatentPlane.of(model, data.validation)
        z, ticks = plane.grid(n, scale or self.default_scale(plane))
        with torch.no_grad():
            images = model.decode_mean(z.reshape(n * n, -1))[:, 0]
        h, w = images.shape[1:]
        figure = images.reshape(n, n, h, w).permute(0, 2, 1, 3).reshape(n * h, n * w)
        fig = Figure(figsize=(10, 10))
        ax = fig.subplots()
        ax.imshow(figure.numpy(), cmap="Greys_r")
        centres = np.arange(n) * w + w // 2
        labels = [f"{t:.1f}" for t in ticks.tolist()]
        step = max(1, n // 10)
        ax.set_xticks(centres[::step], labels[::step])
        ax.set_yticks(centres[::step], labels[::-1][::step])
        label_plane(ax, plane, f"{self.name}: decoded latent grid")
        save_figure(fig, path)

    def plot_label_clusters(self, model: VAE, data: Data, meta: DatasetMeta, path: Path,
                            plane: LatentPlane | None = None) -> None:
        """The Keras example's ``plot_label_clusters``: validation posterior means by label."""
        means = posterior_means(model, data.validation)
        plane = plane or LatentPlane.of(model, data.validation)
        points = plane.project(means).numpy()
        fig = Figure(figsize=(10, 8))
        ax = fig.subplots()
        sc = ax.scatter(points[:, 0], points[:, 1], c=data.validation_labels.numpy(),
                        cmap="tab10", s=4, vmin=-0.5, vmax=9.5)
        bar = fig.colorbar(sc, ax=ax, ticks=range(10))
        bar.ax.set_yticklabels(data.label_names)
        label_plane(ax, plane, f"{self.name}: posterior means of {len(points)} validation images")
        save_figure(fig, path)


    def render(self, probs: torch.Tensor, path: Path, options: RenderOptions) -> list[str]:
        """Decoded images tiled into one PNG, ``columns`` per row (default: a square)."""
        path = Path(path)
        if path.suffix.lower() != ".png":
            raise ChordVAEError(f"{self.name} runs write decoded images as PNG; got {path.name}")
        n = len(probs)
        columns = options.columns or math.ceil(math.sqrt(n))
        rows = math.ceil(n / columns)
        h, w = probs.shape[-2:]
        canvas = torch.zeros(rows * columns, h, w)
        canvas[:n] = probs[:, 0]
        tiled = canvas.reshape(rows, columns, h, w).permute(0, 2, 1, 3).reshape(rows * h, columns * w)
        fig = Figure(figsize=(max(2, columns * 0.6), max(2, rows * 0.6)))
        ax = fig.subplots()
        ax.imshow(tiled.numpy(), cmap="Greys_r", vmin=0, vmax=1)
        ax.axis("off")
        save_figure(fig, path)
        return [f"{i + 1:3d}  image {i + 1}: row {i // columns + 1}, column {i % columns + 1}" for i in range(n)]


class FashionMNIST(MNIST):
    """Zalando's Fashion-MNIST: same format, ten clothing classes."""

    name: ClassVar[str] = "fashion-mnist"
    source: ClassVar[IdxSource] = FASHION_MNIST_SOURCE
    label_names: ClassVar[list[str]] = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]


def _to_events(images: np.ndarray) -> torch.Tensor:
    """uint8 ``(N, 28, 28)`` -> float32 ``(N, 1, 28, 28)`` in [0, 1], in one vectorised step."""
    return torch.from_numpy(images).unsqueeze(1).float().div_(255.0)
