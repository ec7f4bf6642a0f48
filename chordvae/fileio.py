"""Atomic file writes: a crash or a full disk never leaves a half-written file behind, and
every OSError names the file it is about."""
from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from .errors import ChordVAEError


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path``, on error it is
    removed and ``path`` is left as it was. An OSError about the temporary file (or about no
    file, as a failed ``write`` raises on a full disk) is raised naming ``path``."""
    path = Path(path)
    tmp = _temp_beside(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException as e:
        tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and e.errno is not None and e.filename in (None, str(tmp), tmp):
            raise _naming(e, path) from None
        raise


def _temp_beside(path: Path) -> Path:
    """A new empty temporary file in ``path``'s folder (made if needed); errors name ``path``."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # mkdir met a file where a folder of the path should be
        raise NotADirectoryError(errno.ENOTDIR, "a part of the path is a file, not a folder", str(path)) from None
    except OSError as e:
        raise _naming(e, path) from None
    try:
        return _new_file(path)
    except OSError as e:
        raise _naming(e, path) from None


def _new_file(path: Path) -> Path:
    """Create an empty file with a fresh random name beside ``path`` (``.NAME.<16 hex>.tmp``).
    Its mode is 0666 less the umask, which the kernel applies: no process-wide umask is touched."""
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    return tmp


def _naming(e: OSError, path: Path) -> OSError:
    """The same error (errno, reason, subclass) about ``path``."""
    return OSError(e.errno, e.strerror or str(e), str(path))


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: str | os.PathLike, data: bytes | memoryview) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2) + "\n")


@contextmanager
def appending(path: str | os.PathLike, line: str) -> Iterator[None]:
    """Append ``line`` to ``path`` whole or not at all, then run the block; when the append or
    the block fails, ``path`` is cut back to its old length. Keeps a log (``metrics.jsonl``) in
    step with a file the block replaces (``model.pt``): both are written, or neither."""
    path = Path(path)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        size = os.fstat(fd).st_size
        try:
            data = memoryview(line.encode("utf-8"))
            while data:
                data = data[os.write(fd, data):]
        except OSError as e:
            os.ftruncate(fd, size)
            raise _naming(e, path) from None
        try:
            yield
        except BaseException:
            os.ftruncate(fd, size)
            raise
    finally:
        os.close(fd)


@contextmanager
def locked(folder: str | os.PathLike, busy: str) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` (``flock`` on the folder itself, so nothing is written
    and a full disk cannot refuse it); if another process holds it, raise ChordVAEError ``busy``.
    The lock ends with the block, or with the process however it ends."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ChordVAEError(busy) from None
        except OSError:  # a file system without locks (some network mounts): go on unlocked
            pass
        yield
    finally:
        os.close(fd)


def check_writable(folder: str | os.PathLike) -> None:
    """Make ``folder`` if needed and check that a file can be created in it (an OSError names
    it otherwise): for commands that would work long before their first write."""
    folder = Path(folder)
    try:
        _temp_beside(folder / ".write-test").unlink()
    except OSError as e:
        raise _naming(e, folder) from None


def sha256_file(path: str | os.PathLike) -> str:
    """Hex sha256 of the file's content, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
