"""Atomic writes."""


def test_atomic_writes_get_the_usual_file_mode(tmp_path):
    import os

    from chordvae.fileio import write_text

    mask = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(mask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644


def test_atomic_writes_never_touch_the_process_umask(tmp_path, monkeypatch):
    """Setting the umask to read it is a race with other threads creating files."""
    import os

    from chordvae.fileio import write_text

    def no_umask(mask):
        raise AssertionError("os.umask called")

    mask = os.umask(0o027)
    try:
        monkeypatch.setattr(os, "umask", no_umask)
        write_text(tmp_path / "a.txt", "x")
    finally:
        monkeypatch.undo()
        os.umask(mask)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640


def test_a_failed_write_names_the_file_asked_for_and_leaves_no_temporary(tmp_path):
    import errno

    import pytest

    from chordvae.fileio import atomic_path

    (tmp_path / "a.txt").write_text("old")
    with pytest.raises(OSError) as failure, atomic_path(tmp_path / "a.txt") as tmp:
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")  # as a write to a full disk raises it
    assert failure.value.errno == errno.ENOSPC and failure.value.filename == str(tmp_path / "a.txt")
    with pytest.raises(FileNotFoundError) as other, atomic_path(tmp_path / "a.txt"):
        open(tmp_path / "elsewhere")  # an error about another file keeps its own name
    assert other.value.filename == str(tmp_path / "elsewhere")
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"] and (tmp_path / "a.txt").read_text() == "old"


def test_an_appended_line_is_taken_back_when_the_write_that_goes_with_it_fails(tmp_path):
    import pytest

    from chordvae.fileio import appending

    log = tmp_path / "metrics.jsonl"
    with appending(log, "1\n"):
        pass
    with pytest.raises(KeyboardInterrupt), appending(log, "2\n"):
        assert log.read_text() == "1\n2\n"
        raise KeyboardInterrupt
    assert log.read_text() == "1\n"


def test_a_metrics_line_cut_off_by_a_crash_is_not_read(tmp_path):
    from chordvae.runs import read_metrics

    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1}\n{"epoch": 2}\n{"epo')
    assert read_metrics(tmp_path) == [{"epoch": 1}, {"epoch": 2}]
