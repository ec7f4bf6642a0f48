"""IDX files: parsing, locating, downloading (from a server on 127.0.0.1) and splitting."""
from __future__ import annotations

import functools
import gzip
import hashlib
import http.client
import http.server
import socketserver
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from chordvae.cache import cache_dir
from chordvae.datasets import idx
from chordvae.datasets.idx import (FASHION_MNIST_SOURCE, FILES, MNIST_SOURCE, load_split, locate,
                                   read_idx)
from chordvae.errors import ChordVAEError, DataError


def idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 8, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_split(folder: Path, split: str, n: int, seed: int = 0) -> None:
    """Random 28 x 28 images and labels 0-9 in the official file names of ``split``."""
    rng = np.random.default_rng(seed)
    prefix = "train" if split == "train" else "t10k"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(
        gzip.compress(idx_bytes(rng.integers(0, 256, (n, 28, 28)))))
    (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(rng.integers(0, 10, n))))


def test_reads_the_real_mnist_test_digits(shared_mnist):
    images = read_idx(shared_mnist / "t10k-images-idx3-ubyte.gz")
    labels = read_idx(shared_mnist / "t10k-labels-idx1-ubyte.gz")
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8 and labels.shape == (10000,)
    assert sorted(np.unique(labels)) == list(range(10))
    assert 30 < images.mean() < 40  # real digits: mostly black background
    assert images.flags.writeable  # torch.from_numpy would warn about a read-only array


def test_md5_table_matches_the_real_mnist_test_files(shared_mnist):
    for key in ("test_images", "test_labels"):
        digest = hashlib.md5((shared_mnist / FILES[key]).read_bytes()).hexdigest()
        assert digest == MNIST_SOURCE.md5[key], key


def test_reads_plain_and_gzipped_files(tmp_path):
    array = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    (tmp_path / "a").write_bytes(idx_bytes(array))
    (tmp_path / "a.gz").write_bytes(gzip.compress(idx_bytes(array)))
    assert np.array_equal(read_idx(tmp_path / "a"), array)
    assert np.array_equal(read_idx(tmp_path / "a.gz"), array)
    (tmp_path / "b.gz").write_bytes(idx_bytes(array))  # as a browser that unpacked it leaves it
    assert np.array_equal(read_idx(tmp_path / "b.gz"), array)
    labels = np.array([3, 1, 4])
    (tmp_path / "l.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    assert np.array_equal(read_idx(tmp_path / "l.gz"), labels)


GOOD = idx_bytes(np.zeros((3, 28, 28)))


@pytest.mark.parametrize("content, message", [
    (gzip.compress(GOOD[:-10]), "truncated"),
    (gzip.compress(b"\x00\x00\x09\x03" + GOOD[4:]), "magic number 00000903"),
    (gzip.compress(GOOD[:4] + (5).to_bytes(4, "big") + GOOD[8:]), "wrong count.*shape \\(5, 28, 28\\)"),
    (gzip.compress(GOOD + b"\x00"), "trailing data"),
    (b"<html>404 Not Found</html>", "not a gzip file"),
    (gzip.compress(GOOD)[:-30], "bad gzip data"),
    (b"\x1f\x8b not really gzip", "bad gzip data"),
    (gzip.compress(GOOD[:6]), "truncated IDX header"),
    (b"", "not a gzip file"),
])
def test_malformed_files_are_named_in_one_line(tmp_path, content, message):
    path = tmp_path / "bad-images-idx3-ubyte.gz"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_locate_with_data_dir_searches_only_there(tmp_path):
    write_split(cache_dir("mnist"), "train", 5)
    write_split(cache_dir("mnist"), "test", 5)
    with pytest.raises(DataError, match="does not exist"):
        locate(MNIST_SOURCE, tmp_path / "nope")
    write_split(tmp_path / "d", "test", 5)
    (tmp_path / "d" / FILES["test_labels"]).unlink()
    with pytest.raises(DataError) as info:
        locate(MNIST_SOURCE, tmp_path / "d")
    message = str(info.value)
    assert str(tmp_path / "d") in message and FILES["test_labels"] in message
    assert FILES["train_images"] in message and FILES["test_images"] not in message
    write_split(tmp_path / "d", "test", 5)
    assert locate(MNIST_SOURCE, str(tmp_path / "d")) == {
        k: tmp_path / "d" / FILES[k] for k in ("test_images", "test_labels")}


def test_locate_uses_cache_and_extra_dirs_without_downloading(tmp_path):
    write_split(cache_dir("mnist"), "test", 5)
    write_split(tmp_path / "extra", "train", 5)
    (tmp_path / "extra" / FILES["test_images"]).write_bytes(b"never read: the cache comes first")
    source = replace(MNIST_SOURCE, extra_dirs=(tmp_path / "extra",), mirrors=("http://127.0.0.1:9/",))
    files = locate(source, download=False)
    assert files["test_images"].parent == cache_dir("mnist")
    assert files["train_images"].parent == tmp_path / "extra"
    with pytest.raises(DataError, match="downloading is off"):
        locate(replace(MNIST_SOURCE, name="empty"), download=False)


def test_fashion_mnist_is_found_where_debian_puts_it():
    folder = FASHION_MNIST_SOURCE.extra_dirs[0]
    if not (folder / FILES["test_labels"]).exists():
        pytest.skip(f"dataset-fashion-mnist is not installed in {folder}")
    files = locate(FASHION_MNIST_SOURCE, download=False)
    assert set(files) == set(FILES) and all(p.parent == folder for p in files.values())
    labels = read_idx(files["test_labels"])
    assert labels.shape == (10000,) and np.bincount(labels).tolist() == [1000] * 10


def test_only_one_official_split_is_divided_by_seed(tmp_path):
    write_split(tmp_path, "test", 60)
    files = locate(MNIST_SOURCE, tmp_path)
    a = load_split(files, "official", seed=1)
    b = load_split(files, "official", seed=1)
    c = load_split(files, "official", seed=2)
    assert len(a[0]) == 50 and len(a[2]) == 10 and len(a[1]) == 50 and len(a[3]) == 10
    assert a[0].dtype == np.uint8 and a[1].dtype == np.int64
    assert all(np.array_equal(u, v) for u, v in zip(a[:4], b[:4]))
    assert not np.array_equal(a[0], c[0])
    assert len(a[4]) == 1 and "only the official test split" in a[4][0]
    assert not set(map(bytes, a[0])) & set(map(bytes, a[2]))  # no image in both
    # images keep their labels
    x, y = read_idx(files["test_images"]), read_idx(files["test_labels"])
    row = {bytes(img): label for img, label in zip(x, y)}
    assert [row[bytes(img)] for img in a[2]] == a[3].tolist()


def test_official_and_all_splits(tmp_path):
    write_split(tmp_path, "train", 30, seed=1)
    write_split(tmp_path, "test", 10, seed=2)
    files = locate(MNIST_SOURCE, tmp_path)
    test_x = read_idx(files["test_images"])
    x, y, xv, yv, notes = load_split(files, "official", 0)
    assert (len(x), len(y), len(xv), notes) == (30, 30, 10, [])
    assert np.array_equal(xv, test_x) and np.array_equal(x, read_idx(files["train_images"]))
    x, y, xv, yv, notes = load_split(files, "all", 0)
    assert (len(x), len(y), len(xv)) == (40, 40, 10) and np.array_equal(xv, test_x)
    assert len(notes) == 1 and "all 40 images" in notes[0] and "not held out" in notes[0]
    with pytest.raises(ChordVAEError, match="unknown split"):
        load_split(files, "everything", 0)


def test_mismatched_images_and_labels_are_refused(tmp_path):
    write_split(tmp_path, "test", 10)
    (tmp_path / FILES["test_labels"]).write_bytes(gzip.compress(idx_bytes(np.zeros(9))))
    with pytest.raises(DataError, match="10 images but .* 9 labels"):
        load_split(locate(MNIST_SOURCE, tmp_path), "official", 0)


def test_a_gzip_bomb_is_refused_before_it_is_unpacked(tmp_path, monkeypatch):
    monkeypatch.setattr(idx, "MAX_IDX_BYTES", 10_000)
    path = tmp_path / "bomb-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(GOOD + bytes(20_000)))   # 22 kB unpacked from a few hundred bytes
    assert path.stat().st_size < 1_000
    with pytest.raises(DataError, match="larger than 0 MB unpacked") as info:
        read_idx(path)
    assert str(path) in str(info.value)
    plain = tmp_path / "plain-images-idx3-ubyte"
    plain.write_bytes(GOOD + bytes(20_000))
    with pytest.raises(DataError, match="larger than"):
        read_idx(plain)
    (tmp_path / "ok.gz").write_bytes(gzip.compress(GOOD))   # under the limit: read as before
    assert read_idx(tmp_path / "ok.gz").shape == (3, 28, 28)


@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving a folder of small IDX files; yields (url, folder, httpd)."""
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
    assert sorted(p.name for p in cache_dir("mnist-test").iterdir()) == sorted(FILES.values())
    x, y, xv, yv, _ = load_split(files, "official", 0)
    assert (len(x), len(xv)) == (20, 8)
    for path in folder.iterdir():  # now served from the cache, not the network
        path.unlink()
    assert locate(source) == files


def test_download_falls_back_to_the_next_mirror(server, tmp_path):
    url, folder = server
    source = replace(_source_for(folder, url), mirrors=(url + "missing/", url))
    assert set(locate(source)) == set(FILES)


def test_an_unreachable_mirror_is_tried_only_once(server):
    """A mirror that hangs up (as a dead host would time out) is skipped for the other files."""
    url, folder = server
    calls = []

    class HangUp(socketserver.BaseRequestHandler):
        def handle(self):
            calls.append(1)

    dead = socketserver.ThreadingTCPServer(("127.0.0.1", 0), HangUp)
    threading.Thread(target=dead.serve_forever, daemon=True).start()
    try:
        source = replace(_source_for(folder, url), mirrors=(f"http://127.0.0.1:{dead.server_address[1]}/", url))
        assert set(locate(source)) == set(FILES)
    finally:
        dead.shutdown()
        dead.server_close()
    assert len(calls) == 1


def test_only_missing_files_are_downloaded(server):
    url, folder = server
    source = _source_for(folder, url)
    write_split(cache_dir("mnist-test"), "test", 3, seed=9)
    cached = (cache_dir("mnist-test") / FILES["test_images"]).read_bytes()
    files = locate(source)
    assert set(files) == set(FILES)
    assert files["test_images"].read_bytes() == cached  # kept, not replaced by the server's


def test_checksum_mismatch_is_refused_and_leaves_nothing_behind(server):
    url, folder = server
    source = _source_for(folder, url)
    source = replace(source, md5={**source.md5, "train_images": "0" * 32})
    files = locate(source)  # the test split still arrives; the bad training images do not
    assert set(files) == {"test_images", "test_labels"}
    assert FILES["train_images"] not in {p.name for p in cache_dir("mnist-test").iterdir()}
    bad = replace(source, md5={k: "0" * 32 for k in FILES}, name="mnist-test-2")
    with pytest.raises(DataError, match="checksum mismatch.*discarded") as info:
        locate(bad)
    assert FILES["test_images"] in str(info.value) and "\n" not in str(info.value)
    assert list(cache_dir("mnist-test-2").iterdir()) == []  # no file, no partial, no temp


def test_server_down_names_the_missing_files(server):
    url, folder = server
    down = http.server.HTTPServer(("127.0.0.1", 0), http.server.BaseHTTPRequestHandler)
    dead_url = f"http://127.0.0.1:{down.server_address[1]}/"
    down.server_close()  # nothing listens on that port any more
    source = replace(_source_for(folder, url), mirrors=(dead_url,))
    with pytest.raises(DataError) as info:
        locate(source)
    message = str(info.value)
    assert all(name in message for name in FILES.values())
    assert str(cache_dir("mnist-test")) in message and "download failed" in message
    assert "\n" not in message and list(cache_dir("mnist-test").iterdir()) == []


@pytest.mark.parametrize("announced", [True, False])
def test_an_oversized_download_is_abandoned_and_leaves_nothing(server, monkeypatch, announced):
    """Refused by its Content-Length when the server sends one, else once the bytes exceed the cap."""
    url, folder = server
    source = _source_for(folder, url)
    monkeypatch.setattr(idx, "MAX_DOWNLOAD_BYTES", 1_000)   # the served images are about 16 kB
    if not announced:
        real = http.client.HTTPMessage.get
        monkeypatch.setattr(http.client.HTTPMessage, "get",
                            lambda self, name, default=None: None if name == "Content-Length" else real(self, name, default))
    fetched, failures = idx.fetch(source, ["train_images", "train_labels"], [url])
    assert set(fetched) == {"train_labels"}     # 20 labels: small enough
    assert len(failures) == 1 and "larger than 0 MB; the download was discarded" in failures[0]
    assert FILES["train_images"] in failures[0]
    assert [p.name for p in cache_dir("mnist-test").iterdir()] == [FILES["train_labels"]]
