"""MNIST-format (IDX) files: reading, finding, downloading and splitting them (numpy only)."""
from __future__ import annotations

import gzip
import hashlib
import http.client
import io
import urllib.error
import urllib.request
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..cache import cache_dir
from ..errors import ChordVAEError, DataError
from ..fileio import atomic_path

FILES = {"train_images": "train-images-idx3-ubyte.gz", "train_labels": "train-labels-idx1-ubyte.gz",
         "test_images": "t10k-images-idx3-ubyte.gz", "test_labels": "t10k-labels-idx1-ubyte.gz"}
#: The official splits and their (images, labels) keys into FILES.
SPLIT_FILES = {"train": ("train_images", "train_labels"), "test": ("test_images", "test_labels")}
#: What ``load_split`` can do with the official splits.
SPLITS = ("official", "all")
#: IDX magic numbers by number of dimensions: unsigned bytes (0x08), 3 dims (images) or 1 (labels).
MAGIC = {3: 0x00000803, 1: 0x00000801}
GZIP_MAGIC = b"\x1f\x8b"
#: Largest IDX file read, unpacked (MNIST's training images are 47 MB): a gzip bomb or a wrong
#: file is refused before it fills memory.
MAX_IDX_BYTES = 256_000_000
#: Largest download (Fashion-MNIST's training images are 26 MB gzipped).
MAX_DOWNLOAD_BYTES = 64_000_000


@dataclass(frozen=True)
class IdxSource:
    """One dataset's files: its ``name`` (also its cache folder), the MD5 of each gz file
    as published (checked on download only), HTTPS mirrors tried in order, and extra local
    folders searched after the cache."""

    name: str
    md5: dict[str, str]
    mirrors: tuple[str, ...]
    extra_dirs: tuple[Path, ...] = ()


#: MD5s as in torchvision's mnist.py; the test files' match ../shared/datasets/mnist.
MNIST_SOURCE = IdxSource(
    "mnist",
    {"train_images": "f68b3c2dcbeaaa9fbdd348bbdeb94873", "train_labels": "d53e105ee54ea40749a09fcbcd1e9432",
     "test_images": "9fb629c4189551a2d022fa330f9573f3", "test_labels": "ec29112dd5afa0611ce80d1b7f02629c"},
    ("https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"))
#: MD5s as published by Zalando (README) and torchvision. Debian's dataset-fashion-mnist
#: recompressed the files (other gz MD5s), which is fine: local files are not MD5-checked.
FASHION_MNIST_SOURCE = IdxSource(
    "fashion-mnist",
    {"train_images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d", "train_labels": "25c81989df183df01b3e8a0aad5dffbe",
     "test_images": "bef4ecab320f06d8554ea6380940ec79", "test_labels": "bb300cfdad3c16e7a12a480ee83cd310"},
    ("https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",),
    (Path("/usr/share/datasets/fashion-mnist"),))


def read_idx(path: str | Path) -> np.ndarray:
    """An IDX file of unsigned bytes (gzipped or plain) as a writable uint8 array of its stored
    shape, e.g. images ``(N, 28, 28)`` or labels ``(N,)``.

    Checks the gzip stream, the magic number, the dimensions and that the payload size matches
    exactly; anything wrong, or more than ``MAX_IDX_BYTES`` (packed or unpacked), raises
    DataError naming the file.
    """
    path = Path(path)
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_IDX_BYTES + 1)
    except OSError as e:
        raise DataError(f"{path}: cannot read it ({e.strerror or e})") from None
    gzipped = raw[:2] == GZIP_MAGIC
    try:
        data = gzip.GzipFile(fileobj=io.BytesIO(raw)).read(MAX_IDX_BYTES + 1) if gzipped else raw
    except (OSError, EOFError, zlib.error) as e:
        raise DataError(f"{path}: bad gzip data ({e})") from None
    if len(data) > MAX_IDX_BYTES:
        raise DataError(f"{path}: larger than {MAX_IDX_BYTES / 1e6:.0f} MB{' unpacked' * gzipped} "
                        "(not an IDX file of this size)")
    ndim = data[3] if len(data) >= 4 else -1
    magic = int.from_bytes(data[:4], "big")
    if magic != MAGIC.get(ndim):
        if path.suffix == ".gz" and not gzipped:
            raise DataError(f"{path}: not a gzip file (nor a plain IDX file)")
        raise DataError(f"{path}: not an IDX file of images or labels: magic number {data[:4].hex()} "
                        f"(expected 00000803 for images or 00000801 for labels)")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated IDX header ({len(data)} bytes)")
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    need, have = int(np.prod(shape)), len(data) - header
    if have != need:
        problem = "truncated or wrong count" if have < need else "wrong count or trailing data"
        raise DataError(f"{path}: {problem}: the header says shape {shape} ({need} bytes) "
                        f"but {have} bytes follow it")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def locate(source: IdxSource, data_dir: str | Path | None = None, download: bool = True,
           mirrors: Sequence[str] | None = None) -> dict[str, Path]:
    """Paths (keys of FILES) of the files of every complete split (images + labels) found.

    With ``data_dir`` only that folder is searched. Otherwise the cache folder
    ``cache_dir(source.name)`` and then ``source.extra_dirs`` are searched, and when
    ``download`` is on the files missing there are fetched into the cache from ``mirrors``
    (default ``source.mirrors``). Raises DataError when no complete split is found.
    """
    cache = cache_dir(source.name) if data_dir is None else None
    if data_dir is not None:
        data_dir = Path(data_dir)
        if not data_dir.is_dir():
            raise DataError(f"data folder {data_dir} does not exist")
    found = _find([data_dir] if data_dir is not None else [cache, *source.extra_dirs])
    failures: list[str] = []
    if cache is not None and download and len(found) < len(FILES):
        fetched, failures = fetch(source, [k for k in FILES if k not in found],
                                  source.mirrors if mirrors is None else mirrors)
        found.update(fetched)
    complete = {k: found[k] for pair in SPLIT_FILES.values() if all(p in found for p in pair) for k in pair}
    if complete:
        return complete
    missing = ", ".join(name for key, name in FILES.items() if key not in found)
    need = "a split needs its images and labels file"
    if data_dir is not None:
        raise DataError(f"{source.name} files not found in {data_dir}: missing {missing} ({need})")
    why = f"download failed: {failures[0]}" if failures else "downloading is off"
    if len(failures) > 1:
        why += f" (and {len(failures) - 1} more failures)"
    raise DataError(f"{source.name} files not found: put {missing} in {cache} or pass --data-dir ({need}); {why}")


def _find(folders: Sequence[Path]) -> dict[str, Path]:
    """The first existing file of each key in ``folders``, gzipped or not."""
    found: dict[str, Path] = {}
    for folder in folders:
        for key, name in FILES.items():
            for candidate in (folder / name, folder / name.removesuffix(".gz")):
                if key not in found and candidate.is_file():
                    found[key] = candidate
    return found


def fetch(source: IdxSource, keys: Sequence[str], mirrors: Sequence[str],
          timeout: float = 30.0) -> tuple[dict[str, Path], list[str]]:
    """Download the files ``keys`` into ``cache_dir(source.name)``, each from the first mirror
    that serves it with the right MD5, written atomically (a bad download leaves no file).

    A mirror that cannot be reached (as opposed to one that lacks a file) is not tried again.
    Returns the files fetched and one line per file that could not be.
    """
    live = list(mirrors)
    fetched: dict[str, Path] = {}
    failures: list[str] = []
    for key in keys:
        errors = []
        for mirror in list(live):
            url = mirror.rstrip("/") + "/" + FILES[key]
            try:
                fetched[key] = _download(url, cache_dir(source.name) / FILES[key], source.md5[key], timeout)
                break
            except urllib.error.HTTPError as e:
                errors.append(f"{url}: HTTP {e.code} {e.reason}")
            except (urllib.error.URLError, http.client.HTTPException, OSError) as e:
                errors.append(f"{url}: {getattr(e, 'reason', None) or e}")
                live.remove(mirror)
            except DataError as e:
                errors.append(str(e))
        else:
            failures.append("; ".join(errors) or f"{FILES[key]}: no reachable mirror left")
    return fetched, failures


def _download(url: str, target: Path, md5: str | None, timeout: float) -> Path:
    """Stream ``url`` to ``target`` via a temporary file, kept only if its MD5 is ``md5``
    (None: no checksum is known; the file is kept); a download larger than
    ``MAX_DOWNLOAD_BYTES`` is abandoned."""
    too_large = DataError(f"{url}: larger than {MAX_DOWNLOAD_BYTES / 1e6:.0f} MB; the download was discarded")
    with atomic_path(target) as tmp:
        digest = hashlib.md5()
        with urllib.request.urlopen(url, timeout=timeout) as response, open(tmp, "wb") as out:
            if int(response.headers.get("Content-Length") or 0) > MAX_DOWNLOAD_BYTES:
                raise too_large
            size = 0
            while chunk := response.read(1 << 16):
                size += len(chunk)
                if size > MAX_DOWNLOAD_BYTES:
                    raise too_large
                digest.update(chunk)
                out.write(chunk)
        if md5 is not None and digest.hexdigest() != md5:
            raise DataError(f"{url}: checksum mismatch (MD5 {digest.hexdigest()}, expected {md5}); "
                            f"the download was discarded")
    return target


def load_split(files: dict[str, Path], split: str, seed: int, validation_fraction: float = 1 / 6,
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """``x_train, y_train, x_val, y_val, notices``: images uint8 ``(N, H, W)`` (28 x 28 for
    MNIST), labels int64 ``(N,)``, and one-line remarks for the user.

    ``official``: train on the training split, validate on the test split. ``all``: train on
    both (all 70,000 images, as the Keras example does), validate on the test split. When only
    one split is in ``files``, it is divided by ``seed`` (``validation_fraction`` of it for
    validation) whatever ``split`` says, and a notice says so.
    """
    if split not in SPLITS:
        raise ChordVAEError(f"unknown split {split!r}; choose from {', '.join(SPLITS)}")
    if not 0 < validation_fraction < 1:
        raise ChordVAEError(f"validation fraction must be between 0 and 1, got {validation_fraction}")
    splits = {name: _read_pair(files[i], files[j]) for name, (i, j) in SPLIT_FILES.items()
              if i in files and j in files}
    if not splits:
        raise DataError("no complete split (images and labels) among " + ", ".join(map(str, files.values())))
    if len(splits) == 1:
        (name, (x, y)), = splits.items()
        if len(x) < 2:
            raise DataError(f"the official {name} split holds {len(x)} image(s); too few to split")
        n_val = min(max(int(round(len(x) * validation_fraction)), 1), len(x) - 1)
        order = np.random.default_rng(seed).permutation(len(x))
        val, train = order[:n_val], order[n_val:]
        return x[train], y[train], x[val], y[val], [
            f"only the official {name} split is present: training on {len(train)} of its images and "
            f"validating on the other {len(val)} (split by seed {seed})"]
    (x_train, y_train), (x_test, y_test) = splits["train"], splits["test"]
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DataError(f"training images are {x_train.shape[1:]} but test images are {x_test.shape[1:]}")
    if split == "official":
        return x_train, y_train, x_test, y_test, []
    return (np.concatenate([x_train, x_test]), np.concatenate([y_train, y_test]), x_test, y_test,
            [f"training on all {len(x_train) + len(x_test)} images (train + test, as the Keras example "
             f"does); the {len(x_test)} validation images (the test split) are therefore not held out"])


def _read_pair(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 ``(N, H, W)`` and labels int64 ``(N,)`` of one split, checked to agree."""
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3:
        raise DataError(f"{images_path}: expected images (N, height, width), got shape {images.shape}")
    if labels.ndim != 1:
        raise DataError(f"{labels_path}: expected labels (N,), got shape {labels.shape}")
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images)} images but {labels_path} "
                        f"holds {len(labels)} labels")
    return images, labels.astype(np.int64)
