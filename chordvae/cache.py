"""Where chordvae keeps downloaded data and parsed corpora."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from tqdm.auto import tqdm

from .fileio import write_text

#: cache folders found unwritable in this process: warned about once, not tried again
_unwritable: set[Path] = set()


def cache_root() -> Path:
    """``$CHORDVAE_CACHE``, else ``$XDG_CACHE_HOME/chordvae`` (``~/.cache/chordvae``)."""
    root = os.environ.get("CHORDVAE_CACHE")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "chordvae"


def cache_dir(kind: str) -> Path:
    """``cache_root() / kind``, created on demand."""
    path = cache_root() / kind
    path.mkdir(parents=True, exist_ok=True)
    return path


def store(kind: str, name: str, text: str) -> None:
    """Write ``text`` as the entry ``name`` of ``cache_dir(kind)`` (atomically).

    The cache only saves time: when it cannot be written (a full disk, no permission), this
    warns once on stderr, saying where the cache is, and the work goes on without it.
    """
    root = cache_root()
    if root in _unwritable:
        return
    try:
        write_text(cache_dir(kind) / name, text)
    except OSError as e:
        _unwritable.add(root)
        tqdm.write(f"warning: cannot write to the cache in {root} ({e.strerror or e}); going on without it "
                   "(free space there or set CHORDVAE_CACHE to another folder)", file=sys.stderr)
