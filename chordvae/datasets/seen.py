"""Which pieces of a corpus a run has seen: in its training split, held out for its validation, or new.

A piece is known by an identity of its content (chords: the sha256 of its file), so the same
piece read through another path or source name is still recognised.
"""
from __future__ import annotations

from collections import Counter
from typing import Collection, Mapping, Sequence

import numpy as np
import torch

from .base import Pieces

#: what a piece can be to a run; "unknown" when the data gives its pieces no identity
PARTS = ("train", "validation", "new", "unknown")


def split_parts(ids: Sequence[str], piece: np.ndarray, train_mask: np.ndarray) -> dict[str, str]:
    """``{piece id: "train" or "validation"}`` for a split of events ``piece`` ``(N,)`` (indices
    into ``ids``) by ``train_mask`` ``(N,)``: a piece with any training event counts as trained on."""
    trained = np.bincount(piece[train_mask], minlength=len(ids)) > 0
    parts: dict[str, str] = {}
    for i, key in enumerate(ids):   # a piece whose content appears twice: trained on if either copy was
        if parts.get(key) != "train":
            parts[key] = "train" if trained[i] else "validation"
    return parts


def classify(pieces: Pieces, seen: Mapping[str, str]) -> list[str]:
    """Each piece's part for a run whose pieces are ``seen`` (``{id: "train" | "validation"}``):
    that part, ``"new"``, or ``"unknown"`` for every piece when ``pieces`` carry no ids."""
    if not pieces.ids:
        return ["unknown"] * pieces.n_pieces
    return [seen.get(key, "new") for key in pieces.ids]


def keep(pieces: Pieces, parts: Sequence[str], wanted: Collection[str]) -> Pieces:
    """The pieces whose part is in ``wanted``, renumbered from 0 (events stay in order)."""
    chosen = np.array([p in wanted for p in parts], dtype=bool)
    new_index = np.cumsum(chosen) - 1
    piece = pieces.piece.numpy()
    mask = chosen[piece] if len(piece) else np.zeros(0, dtype=bool)
    return Pieces(pieces.events[torch.from_numpy(mask)], torch.from_numpy(new_index[piece[mask]]),
                  int(chosen.sum()), list(pieces.notices), [k for k, c in zip(pieces.ids, chosen) if c])


def describe(parts: Sequence[str]) -> str:
    """E.g. ``"18 in the run's training split, 2 held out for its validation, 0 new"``."""
    n = Counter(parts)
    if n["unknown"]:
        return f"{n['unknown']} pieces the data cannot identify (the run may have seen them)"
    return (f"{n['train']} in the run's training split, {n['validation']} held out for its validation, "
            f"{n['new']} new")
