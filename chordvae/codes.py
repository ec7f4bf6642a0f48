"""Binary vectors as integer codes (numpy only: the torch-free chord extraction uses it too)."""
from __future__ import annotations

import numpy as np


def binary_codes(rows: np.ndarray) -> np.ndarray:
    """Binary rows ``(N, D)`` (D <= 62; values >= 0.5 count as set) -> int64 codes ``(N,)``,
    bit ``d`` set when column ``d`` is."""
    rows = np.asarray(rows)
    if rows.shape[-1] > 62:
        raise ValueError("integer codes need at most 62 binary dimensions")
    bits = (rows >= 0.5).astype(np.int64)
    return bits @ (1 << np.arange(rows.shape[-1], dtype=np.int64))
