"""The polyphonic-music sets: restricted unpickling, .mat files, finding and downloading them."""
from __future__ import annotations

import functools
import hashlib
import http.server
import pickle
import threading
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from chordvae.cache import cache_dir
from chordvae.checkpoint import load_checkpoint
from chordvae.datasets import get_adapter
from chordvae.datasets.polyphonic import SOURCES, locate, read_mat, read_pickle, read_set
from chordvae.errors import ChordVAEError, DataError

REPO = Path(__file__).resolve().parents[1]
#: JSB_Chorales.mat shipped beside the repository (or beside the folder of worktrees)
SHARED = next((p for p in (REPO.parent / "shared" / "datasets" / "polyphonic",
                           REPO.parent.parent / "shared" / "datasets" / "polyphonic") if p.is_dir()),
              REPO.parent / "shared" / "datasets" / "polyphonic")

#: a tiny set in the original format: split -> pieces -> frames -> MIDI notes
TINY = {"train": [[(60, 64, 67), (60, 65, 69), ()], [(21,), (108, 21)]],
        "valid": [[(62, 65), (62,)], [(50,)]], "test": [[(55, 59, 62, 67)]]}


def write_tiny_mat(path: Path) -> None:
    def rolls(split):
        out = np.empty((1, len(TINY[split])), dtype=object)
        for i, piece in enumerate(TINY[split]):
            r = np.zeros((len(piece), 88), dtype=np.uint8)
            for t, notes in enumerate(piece):
                r[t, [n - 21 for n in notes]] = 1
            out[0, i] = r
        return out
    scipy.io.savemat(str(path), {"traindata": rolls("train"), "validdata": rolls("valid"), "testdata": rolls("test")})


CALLS: list[str] = []


def record_call(what: str) -> int:
    """What a hostile pickle would call (os.system, say), harmless here."""
    CALLS.append(what)
    return 0


class Hostile:
    """Unpickling this calls record_call."""

    def __reduce__(self):
        return (record_call, ("rm -rf ~",))


def test_restricted_unpickler_refuses_a_pickle_that_calls_a_function(tmp_path):
    path = tmp_path / "JSB Chorales.pickle"
    path.write_bytes(pickle.dumps({"train": [[Hostile()]], "valid": [], "test": []}))
    CALLS.clear()
    pickle.loads(path.read_bytes())
    assert CALLS == ["rm -rf ~"]            # a plain pickle.load runs it
    CALLS.clear()
    with pytest.raises(DataError, match="refused to load .*record_call"):
        read_pickle(path)
    assert CALLS == []


def test_restricted_unpickler_reads_the_original_format(tmp_path):
    (tmp_path / "a.pickle").write_bytes(pickle.dumps(TINY, protocol=2))
    (tmp_path / "a.mat").write_bytes(b"")
    write_tiny_mat(tmp_path / "a.mat")
    from_pickle, from_mat = read_pickle(tmp_path / "a.pickle"), read_mat(tmp_path / "a.mat")
    for split in ("train", "valid", "test"):
        assert [r.tolist() for r in from_pickle[split]] == [r.tolist() for r in from_mat[split]]
    first = from_pickle["train"][0]
    assert first.shape == (3, 88) and np.flatnonzero(first[0]).tolist() == [39, 43, 46] and first[2].sum() == 0
    assert np.flatnonzero(from_pickle["train"][1][1]).tolist() == [0, 87]


def test_bad_files_are_data_errors(tmp_path):
    (tmp_path / "x.pickle").write_bytes(pickle.dumps({"train": [[(200,)]], "valid": [], "test": []}))
    with pytest.raises(DataError, match="MIDI notes 21-108"):
        read_pickle(tmp_path / "x.pickle")
    (tmp_path / "y.pickle").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="not a plain-data pickle"):
        read_pickle(tmp_path / "y.pickle")
    (tmp_path / "z.mat").write_bytes(b"not a mat file at all")
    with pytest.raises(DataError, match="not a MATLAB file"):
        read_set(tmp_path / "z.mat")


@pytest.mark.skipif(not (SHARED / "JSB_Chorales.mat").exists(), reason="JSB_Chorales.mat not shipped here")
def test_jsb_chorales_has_the_canonical_split():
    data = get_adapter("jsb-chorales").load([], {"data_dir": str(SHARED)}, seed=0)
    assert (data.validation.frames, data.test.frames, data.train_tiled.frames) == (4602, 4725, 13807)
    frames = data.test.x[data.test.mask]
    assert frames.shape[1] == 88 and 3.5 < frames.sum(1).mean() < 4.2
    assert hashlib.md5((SHARED / "JSB_Chorales.mat").read_bytes()).hexdigest() == \
        SOURCES["jsb-chorales"].urls["JSB_Chorales.mat"][1]


def test_paths_and_a_missing_folder_are_refused(tmp_path):
    adapter = get_adapter("nottingham")
    with pytest.raises(ChordVAEError, match="takes no paths"):
        adapter.load(["x"], {}, 0)
    with pytest.raises(DataError, match="does not exist"):
        adapter.load([], {"data_dir": str(tmp_path / "nope")}, 0)
    with pytest.raises(DataError, match="Nottingham.mat or Nottingham.pickle"):
        adapter.load([], {"data_dir": str(tmp_path)}, 0)


@pytest.fixture
def server(tmp_path):
    folder = tmp_path / "served"
    folder.mkdir()
    write_tiny_mat(folder / "JSB_Chorales.mat")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/", folder
    httpd.shutdown()
    httpd.server_close()


def test_download_is_checksummed_and_lands_in_the_cache(server):
    url, folder = server
    md5 = hashlib.md5((folder / "JSB_Chorales.mat").read_bytes()).hexdigest()
    source = replace(SOURCES["jsb-chorales"], name="jsb-test")
    path, notices = locate(source, urls={"JSB_Chorales.mat": (url + "JSB_Chorales.mat", md5)})
    assert path == cache_dir("jsb-test") / "JSB_Chorales.mat" and notices == []
    assert path.read_bytes() == (folder / "JSB_Chorales.mat").read_bytes()
    assert [r.tolist() for r in read_set(path)["test"]] == [r.tolist() for r in read_mat(folder / "JSB_Chorales.mat")["test"]]
    (folder / "JSB_Chorales.mat").unlink()                 # now found in the cache, not downloaded
    assert locate(source, urls={})[0] == path


def test_a_bad_checksum_leaves_nothing_and_the_next_url_is_tried(server):
    url, folder = server
    (folder / "JSB Chorales.pickle").write_bytes(pickle.dumps(TINY))
    source = replace(SOURCES["jsb-chorales"], name="jsb-bad")
    pickled = hashlib.md5((folder / "JSB Chorales.pickle").read_bytes()).hexdigest()
    urls = {"JSB_Chorales.mat": (url + "JSB_Chorales.mat", "0" * 32),
            "JSB Chorales.pickle": (url + "JSB%20Chorales.pickle", pickled)}
    path, notices = locate(source, urls=urls)
    assert path.name == "JSB Chorales.pickle" and notices == []
    assert sorted(p.name for p in cache_dir("jsb-bad").iterdir()) == ["JSB Chorales.pickle"]
    assert len(read_set(path)["train"]) == 2


def test_a_failed_download_says_where_to_put_the_file(server):
    url, _ = server
    source = replace(SOURCES["piano-midi"], name="piano-test")
    with pytest.raises(DataError, match=r"Piano_midi.mat or Piano-midi.de.pickle in .*download failed: .*404"):
        locate(source, urls={"Piano_midi.mat": (url + "missing.mat", "0" * 32)})


def test_a_file_without_a_known_checksum_is_never_downloaded(server):
    url, folder = server
    source = replace(SOURCES["jsb-chorales"], name="jsb-unknown")
    with pytest.raises(DataError, match="no checksum is known"):
        locate(source, urls={"JSB_Chorales.mat": (url + "JSB_Chorales.mat", None)})
    assert not cache_dir("jsb-unknown").exists() or not any(cache_dir("jsb-unknown").iterdir())


def test_data_windows_follow_the_options(tmp_path):
    write_tiny_mat(tmp_path / "MuseData.mat")
    data = get_adapter("musedata").load([], {"data_dir": str(tmp_path), "window": 2, "context": 1,
                                             "stride": 1}, 0)
    assert data.train.x.shape == (3, 3, 88) and data.train_tiled.frames == 5
    assert data.test.frames == 1 and data.validation.frames == 3
    assert isinstance(data.train.x, torch.Tensor)


def test_shifted_windows_move_every_frame_of_a_window_by_one_random_shift(tmp_path):
    """``shift``: each training window moves up or down by at most that many semitones, all its
    frames alike; notes moved off the keyboard are dropped; the mask stays; 0 means no change
    (the default: 2)."""
    from chordvae.batch import Masked
    from chordvae.datasets.polyphonic import shift_keys

    x = torch.zeros(400, 3, 88)
    x[:, 0, [0, 40]] = 1
    x[:, 2, [43, 87]] = 1
    batch = Masked(x, torch.tensor([True, True, False]).repeat(400, 1))
    moved = shift_keys(batch, torch.Generator().manual_seed(0), most=2)
    assert torch.equal(moved.mask, batch.mask)
    shift = moved.x[:, 0, 38:43].argmax(-1) - 2                                   # where key 40 went
    assert set(shift.tolist()) == {-2, -1, 0, 1, 2}
    for row, s in enumerate(shift.tolist()):
        keys0 = {k for k in (0 + s, 40 + s) if 0 <= k < 88}
        keys2 = {k for k in (43 + s, 87 + s) if 0 <= k < 88}
        assert set(moved.x[row, 0].nonzero().flatten().tolist()) == keys0
        assert set(moved.x[row, 2].nonzero().flatten().tolist()) == keys2
        assert moved.x[row, 1].sum() == 0
    adapter = get_adapter("jsb-chorales")
    assert adapter.augmentation({"shift": 0}) is None and adapter.augmentation({}) is None   # a run from before
    write_tiny_mat(tmp_path / "JSB_Chorales.mat")
    meta = adapter.load([], {"data_dir": str(tmp_path)}, 0).meta                           # the default, recorded
    assert meta.options["shift"] == 2 and adapter.augmentation(meta.options).keywords == {"most": 2}
    assert adapter.augmentation({"shift": 3}).keywords == {"most": 3}
    with pytest.raises(ChordVAEError, match="shift at least 0"):
        adapter.augmentation({"shift": -1})


def test_train_evaluate_and_sample_from_the_command_line(tmp_path):
    from click.testing import CliRunner

    from chordvae._pretty_midi import pretty_midi
    from chordvae.cli import main

    write_tiny_mat(tmp_path / "JSB_Chorales.mat")
    run = tmp_path / "run"
    cli = CliRunner()
    out = cli.invoke(main, ["train", "-d", "jsb-chorales", "--data-dir", str(tmp_path), "--epochs", "1",
                            "--hidden", "8,16", "--latent-dim", "3", "-o", str(run), "--quiet"])
    assert out.exit_code == 0, out.output
    out = cli.invoke(main, ["train", "--resume", str(run), "--epochs", "2", "--quiet"])
    assert out.exit_code == 0 and "reached the epoch cap (2)" in out.output, out.output
    out = cli.invoke(main, ["evaluate", str(run), "--part", "test", "--iw-samples", "3", "--quiet"])
    assert out.exit_code == 0, out.output
    assert "1 frames in 1 windows" in out.output and "IWAE bound, K=3" in out.output
    assert "independent Bernoulli" in out.output and "active latent units" in out.output
    out = cli.invoke(main, ["sample", str(run), "-n", "2", "-o", str(tmp_path / "s.mid")])
    assert out.exit_code == 0, out.output
    notes = pretty_midi.PrettyMIDI(str(tmp_path / "s.mid")).instruments[0].notes
    window = load_checkpoint(run / "model.pt").model.config.window
    assert all(21 <= n.pitch <= 108 and n.end <= 2 * window * 60 / 90 + 1e-6 for n in notes)
    out = cli.invoke(main, ["sample", str(run), "-o", str(tmp_path / "s.png")])
    assert out.exit_code != 0 and "error: sequence runs write MIDI" in out.output
