"""Pitch-class sets as 12-bit masks: bit ``pc`` is set when pitch class ``pc`` (C = 0) is in the set.

The one place where sets, masks and binary rows are converted into each other.
"""
from __future__ import annotations

from functools import lru_cache
from typing import Iterable

import numpy as np

from ..codes import binary_codes as rows_to_masks  # a set's mask is its binary row's code

BITS = 1 << np.arange(12, dtype=np.int64)


def to_mask(pitch_classes: Iterable[int]) -> int:
    """``{0, 4, 7}`` -> ``0b10010001`` (145)."""
    mask = 0
    for pc in pitch_classes:
        mask |= 1 << (int(pc) % 12)
    return mask


@lru_cache(maxsize=4096)
def from_mask(mask: int) -> tuple[int, ...]:
    """``145`` -> ``(0, 4, 7)``: the sorted pitch classes of a mask (memoised: there are 4,096)."""
    return tuple(pc for pc in range(12) if int(mask) >> pc & 1)


def masks_to_rows(masks: np.ndarray, dims: int = 12) -> np.ndarray:
    """int masks ``(N,)`` -> uint8 rows ``(N, dims)``."""
    masks = np.asarray(masks, dtype=np.int64)
    return ((masks[:, None] >> np.arange(dims)) & 1).astype(np.uint8)
