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
