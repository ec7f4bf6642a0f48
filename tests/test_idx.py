"""IDX files: parsing, locating, downloading (from a server on 127.0.0.1) and splitting."""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from chordvae.cache import cache_dir
from chordvae.datasets.idx import FILES, MNIST_SOURCE, load_split, locate, read_idx
from chordvae.errors import DataError


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_split(folder: Path, split: str, n: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    prefix = "train" if split == "train" else "t10k"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(rng.integers(0, 256, (n, 28, 28)))))
    (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(rng.integers(0, 10, n))))


def test_reads_the_real_mnist_test_digits(shared_mnist):
    images = read_idx(shared_mnist / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(shared_mnist / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert sorted(np.unique(labels)) == list(range(10))
    assert 30 < images.mean() < 40  # real digits: mostly black background


def test_reads_plain_and_gzipped_files(tmp_path):
    array = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx_bytes(array))
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(array)))
    assert np.array_equal(read_idx(tmp_path / "a"), array)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), array)


@pytest.mark.parametrize("content, message", [
    (idx_bytes(np.zeros((3, 28, 28)))[:-10], "header promises"),                       # truncated
    (b"\x00\x00\x09\x03" + idx_bytes(np.zeros((1, 2, 2)))[4:], "wrong magic"),      # wrong magic
    (idx_bytes(np.zeros((3, 2, 2)))[:4] + (5).to_bytes(4, "big") + idx_bytes(np.zeros((3, 2, 2)))[8:], "header promises"),
    (b"\x1f\x8b not really gzip", "cannot read"),
    (b"", "not an IDX file"),
])
def test_malformed_files_are_named_in_one_line(tmp_path, content, message):
    path = tmp_path / "bad-images-idx3-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_split_of_a_single_official_split_is_deterministic(tmp_path):
    write_split(tmp_path, "test", 60)
    files = locate(MNIST_SOURCE, tmp_path)
    a = load_split(files, "official", seed=1)
    b = load_split(files, "official", seed=1)
    c = load_split(files, "official", seed=2)
    assert len(a[0]) == 50 and len(a[2]) == 10
    assert np.array_equal(a[0], b[0]) and not np.array_equal(a[0], c[0])
    assert "only the official test split" in a[4][0]
    assert not set(map(bytes, a[0])) & set(map(bytes, a[2]))  # no image in both


def test_official_and_all_splits(tmp_path):
    write_split(tmp_path, "train", 30, seed=1)
    write_split(tmp_path, "test", 10, seed=2)
    files = locate(MNIST_SOURCE, tmp_path)
    x, y, xv, yv, notes = load_split(files, "official", 0)
    assert (len(x), len(xv), notes) == (30, 10, [])
    x, y, xv, yv, notes = load_split(files, "all", 0)
    assert (len(x), len(xv)) == (40 , 10) and "all 40 images" in notes[0]


def test_missing_data_dir_is_an_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        locate(MNIST_SOURCE, tmp_path / "nope")
    with pytest.raises(DataError, match="files not found"):
        locate(MNIST_SOURCE, tmp_path)


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving a folder of small IDX files; yields (url, folder)."""
    folder = tmp_path / "served"
    write_split(folder, "train", 20, seed=3)
    write_split(folder, "test", 8, seed=4)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", folder
    httpd.shutdown()
    httpd.server_close()


def _source_for(folder: Path, url: str):
    md5 = {k: hashlib.md5((folder / name).read_bytes()).hexdigest() for k, name in FILES.items()}
    return replace(MNIST_SOURCE, name="mnist-test", md5=md5, mirrors=(url,))


def test_download_lands_verified_files_in_the_cache(server):
    url, folder = server
    source = _source_for(folder, url)
    files = locate(source)
    assert set(files) == set(FILES)
    for key, path in files.items():
        assert path.parent == cache_dir("mnist-test")
        assert path.read_bytes() == (folder / FILES[key]).read_bytes()
    x, y, xv, yv, _ = load_split(files, "official", 0)
    assert (len(x), len(xv)) == (20, 8)


def test_checksum_mismatch_is_refused_and_leaves_nothing_behind(server):
    url, folder = server
    source = _source_for(folder, url)
    source = replace(source, md5={**source.md5, "train_images": "0" * 32})
    files = locate(source)  # the test split still arrives; the bad training images do not
    assert set(files) == {"test_images", "test_labels"}
    left = sorted(p.name for p in cache_dir("mnist-test").iterdir())
    assert "train-images-idx3-ubyte.gz" not in left and not [n for n in left if n.endswith(".tmp")]
    with pytest.raises(DataError, match="checksum mismatch"):
        locate(replace(source, md5={k: "0" * 32 for k in FILES}, name="mnist-test-2"))
    assert list(cache_dir("mnist-test-2").iterdir()) == []


def test_server_down_names_the_missing_files(server):
    url, folder = server
    source = replace(_source_for(folder, url), mirrors=("http://127.0.0.1:9/",))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz.*download failed"):
        locate(source)
