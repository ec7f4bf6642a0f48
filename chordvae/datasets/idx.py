"""MNIST-format (IDX) files: reading, finding, downloading and splitting them (numpy only)."""
from __future__ import annotations

import gzip
import hashlib
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..cache import cache_dir
from ..errors import DataError
from ..fileio import atomic_path

FILES = {"train_images": "train-images-idx3-ubyte.gz", "train_labels": "train-labels-idx1-ubyte.gz",
         "test_images": "t10k-images-idx3-ubyte.gz", "test_labels": "t10k-labels-idx1-ubyte.gz"}
SPLIT_FILES = {"train": ("train_images", "train_labels"), "test": ("test_images", "test_labels")}
#: IDX magic numbers: unsigned bytes, with 3 dimensions (images) or 1 (labels).
MAGIC = {3: 0x00000803, 1: 0x00000801}


@dataclass(frozen=True)
class IdxSource:
    """One dataset's files: the MD5 of each (for downloads), HTTPS mirrors, extra local folders."""

    name: str
    md5: dict[str, str]
    mirrors: tuple[str, ...]
    extra_dirs: tuple[Path, ...] = ()


MNIST_SOURCE = IdxSource(
    "mnist",
    {"train_images": "f68b3c2dcbeaaa9fbdd348bbdeb94873", "train_labels": "d53e105ee54ea40749a09fcbcd1e9432",
     "test_images": "9fb629c4189551a2d022fa330f9573f3", "test_labels": "ec29112dd5afa0611ce80d1b7f02629c"},
    ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"))
FASHION_MNIST_SOURCE = IdxSource(
    "fashion-mnist",
    {"train_images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "train_labels": "25c81989df183df01b3e8a0aad5dffbe",
     "test_images": "bef4ecab320f06d8554ea6380940ec79", "test_labels": "bb300cfdad3c16e7a12a480ee83cd310"},
    ("https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/",),
    (Path("/usr/share/datasets/fashion-mnist"),))


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file (gzipped or plain) of unsigned bytes as a uint8 array of its stored shape.

    Checks the magic number, the dimensions and that the payload size matches exactly;
    anything wrong raises DataError naming the file.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        data = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: cannot read it ({e})") from None
    if len(data) < 4:
        raise DataError(f"{path}: not an IDX file (only {len(data)} bytes)")
    magic = int.from_bytes(data[:4], "big")
    ndim = data[3]
    if magic != MAGIC.get(ndim):
        raise DataError(f"{path}: wrong magic number 0x{magic:08x} (expected 0x00000803 for images "
                        f"or 0x00000801 for labels)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated header")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(shape))
    if len(data) != expected:
        raise DataError(f"{path}: header promises {shape} ({expected} bytes) but the file holds "
                        f"{len(data)} bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def locate(source: IdxSource, data_dir: Path | None = None, download: bool = True,
           mirrors: Sequence[str] | None = None) -> dict[str, Path]:
    """Paths of the files of every complete split (images + labels) that can be had.

    With ``data_dir`` only that folder is searched. Otherwise the cache folder and the
    source's extra folders are searched, and splits missing there are downloaded into the
    cache (MD5-checked, atomically). Raises DataError when no complete split is found.
    """
    if data_dir is not None:
        if not data_dir.is_dir():
            raise DataError(f"data folder {data_dir} does not exist")
        folders = [data_dir]
    else:
        folders = [cache_dir(source.name), *source.extra_dirs]
    found = _complete_splits(folders)
    failure = ""
    if data_dir is None and download and len(found) < len(FILES):
        errors = []
        for key in [k for k in FILES if k not in found]:
            try:
                found[key] = fetch(source, key, mirrors or source.mirrors)
            except DataError as e:
                errors.append(str(e))
        failure = f"; download failed: {errors[0]}" if errors else ""
        found = {k: v for k, v in found.items() if k in _complete_keys(found)}
    if not found:
        names = ", ".join(FILES.values())
        where = data_dir or cache_dir(source.name)
        raise DataError(f"{source.name} files not found: put {names} (or at least one split's pair) in "
                        f"{where} or pass --data-dir{failure}")
    return found


def _complete_splits(folders: Sequence[Path]) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for folder in folders:
        for key, name in FILES.items():
            for candidate in (folder / name, folder / name.removesuffix(".gz")):
                if key not in found and candidate.is_file():
                    found[key] = candidate
    return {k: v for k, v in found.items() if k in _complete_keys(found)}


def _complete_keys(found: dict[str, Path]) -> set[str]:
    return {k for pair in SPLIT_FILES.values() if all(p in found for p in pair) for k in pair}


def fetch(source: IdxSource, key: str, mirrors: Sequence[str], timeout: float = 30.0) -> Path:
    """Download one file into the cache from the first mirror that serves it with the right MD5."""
    name = FILES[key]
    target = cache_dir(source.name) / name
    errors = []
    for mirror in mirrors:
        url = mirror.rstrip("/") + "/" + name
        try:
            with atomic_path(target) as tmp:
                digest = hashlib.md5()
                with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
                    while chunk := response.read(1 << 16):
                        digest.update(chunk)
                        out.write(chunk)
                if digest.hexdigest() != source.md5[key]:
                    raise DataError(f"{url}: checksum mismatch (MD5 {digest.hexdigest()}, "
                                    f"expected {source.md5[key]}); file discarded")
            return target
        except DataError as e:
            errors.append(str(e))
        except (urllib.error.URLError, OSError) as e:
            errors.append(f"{url}: {getattr(e, 'reason', e)}")
    raise DataError("; ".join(errors) or "no mirror given")


def load_split(files: dict[str, Path], split: str, seed: int, validation_fraction: float = 1 / 6,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """Training and validation images (uint8 ``(N, 28, 28)``) and labels (int64 ``(N,)``).

    ``official``: train on the training split, validate on the test split. ``all``: train on
    both (all 70,000 digits, as the Keras example does), validate on the test split. When
    only one split is present, it is divided deterministically by ``seed``; a notice says so.
    """
    splits = {name: _read_pair(files, *keys) for name, keys in SPLIT_FILES.items() if keys[0] in files}
    notices: list[str] = []
    if len(splits) == 1:
        (name, (x, y)), = splits.items()
        order = np.random.default_rng(seed).permutation(len(x))
        n_val = int(round(len(x) * validation_fraction))
        val, train = order[:n_val], order[n_val:]
        notices.append(f"only the official {name} split is present: training on {len(train)} of its "
                       f"images and validating on the other {len(val)} (split by seed {seed})")
        return x[train], y[train], x[val], y[val], notices
    (x_train, y_train), (x_test, y_test) = splits["train"], splits["test"]
    if split == "all":
        notices.append(f"training on all {len(x_train) + len(x_test)} images (train + test, as the Keras "
                       f"example does); validation on the test split is therefore not held out")
        return (np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test]),
                x_test, y_test, notices)
    return x_train, y_train, x_test, y_test, notices


def _read_pair(files: dict[str, Path], images_key: str, labels_key: str) -> tuple[np.ndarray, np.ndarray]:
    images, labels = read_idx(files[images_key]), read_idx(files[labels_key])
    if images.ndim != 3 or labels.ndim != 1:
        raise DataError(f"{files[images_key]} / {files[labels_key]}: expected images (N, H, W) and labels (N,)")
    if len(images) != len(labels):
        raise DataError(f"{files[images_key]} holds {len(images)} images but {files[labels_key]} "
                        f"holds {len(labels)} labels")
    return images, labels.astype(np.int64)
