"""Where chordvae keeps downloaded data and parsed corpora."""
from __future__ import annotations

import os
from pathlib import Path


def cache_dir(kind: str) -> Path:
    """``$CHORDVAE_CACHE/<kind>``, else ``$XDG_CACHE_HOME/chordvae/<kind>`` (``~/.cache``); created on demand."""
    root = os.environ.get("CHORDVAE_CACHE")
    if root:
        base = Path(root)
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "chordvae"
    path = base / kind
    path.mkdir(parents=True, exist_ok=True)
    return path
