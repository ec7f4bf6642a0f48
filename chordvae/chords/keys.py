"""The local key under the chords: a key per frame, and a prior over chords given the key.

24 keys: key ``k`` has tonic ``k % 12`` (C = 0) and is major for ``k < 12``, minor from 12.
A frame's key evidence is its pitch-class shares (times its evidence strength) scored against
each key's pitch-class profile; the recogniser decodes a sticky chain over the keys
(forward-backward) and adds ``log sum_k P(key k | frames) R(k, chord)`` to each chord's
emission, where ``R = P(chord | key) / P(chord)``: a chord the key makes likelier than usual
(V/V and vii° in their key, a diatonic triad) gains, a chord foreign to the key loses, and the
average chord stays as it was. The key also weighs the decoder's chord changes: a move from one
chord to another (V to I, IV to V, ...) gains ``log P(move | key, chord left) / P(new chord)``,
the moves counted by scale degree and triad family (:data:`FAMILIES`). Profiles, chord tables and
moves (relative to the tonic, one per mode) are counted on labelled development data by
``benchmarks/fit_keys.py`` and stored in ``keys.json`` beside this module.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import ChordVAEError
from .emission import read_model_file
from .spelling import note_name

MODEL_FILE = Path(__file__).with_name("keys.json")
MODES = ("major", "minor")
KEYS = 12 * len(MODES)
#: The triad each quality of the vocabulary is built on: major, minor, diminished, augmented,
#: suspended. The chord tables may pool the qualities of one triad; the moves always do.
FAMILIES = {"maj": 0, "7": 0, "maj7": 0, "maj6": 0, "min": 1, "min7": 1, "min6": 1, "dim": 2, "hdim7": 2,
            "dim7": 2, "aug": 3, "sus2": 4, "sus4": 4, "sus4(b7)": 4}
#: A move's classes: no chord (0), then each triad family (1 + its FAMILIES entry).
MOVE_CLASSES = 1 + max(FAMILIES.values()) + 1


def key_name(key: int) -> str:
    """``"C major"``, ``"A minor"``: key ``key`` (0..23) by its tonic's pitch-class name."""
    return f"{note_name(key % 12)} {MODES[key // 12]}"


@dataclass(frozen=True, eq=False)
class KeyModel:
    """Counted tables. ``profiles`` (2, 12): log share of note time per pitch class above the
    tonic, per mode; ``chords`` (2, 12, Q): log ``P(chord | key) / P(chord)`` of each quality of
    ``qualities`` on each root above the tonic, per mode; ``moves`` (2, 12, C, 12, C) with C =
    :data:`MOVE_CLASSES`: log ``P(move | key, chord left) / P(new chord)`` of a chord change,
    indexed by mode, the left chord's root above the tonic (0 for no chord), its class, the new
    root above the left one (above the tonic when leaving no chord; 0 into no chord) and the new
    class. ``digest``: of the file it was read from."""

    qualities: tuple[str, ...]
    profiles: np.ndarray
    chords: np.ndarray
    moves: np.ndarray
    digest: str = ""

    def key_scores(self) -> np.ndarray:
        """``(KEYS, 12)``: each key's log profile on absolute pitch classes."""
        rel = (np.arange(12)[None, :] - np.arange(12)[:, None]) % 12   # [tonic, pc] -> interval
        return np.concatenate([self.profiles[m][rel] for m in range(len(MODES))])

    def chord_ratios(self, names: Sequence[tuple[int, str]]) -> np.ndarray:
        """``(KEYS, S)``: ``P(chord | key) / P(chord)`` for no chord (1: the key says nothing
        about silence) then every ``(root, quality)`` of ``names``."""
        index = {q: k for k, q in enumerate(self.qualities)}
        missing = sorted({q for _, q in names} - set(index))
        if missing:
            raise ChordVAEError(f"the key model has no table for {', '.join(missing)}")
        q = np.array([index[quality] for _, quality in names])
        roots = np.array([root for root, _ in names])
        tonic = np.arange(KEYS) % 12
        mode = np.arange(KEYS) // 12
        log_r = self.chords[mode[:, None], (roots[None, :] - tonic[:, None]) % 12, q[None, :]]
        return np.concatenate([np.ones((KEYS, 1)), np.exp(log_r)], axis=1)

    def move_ratios(self, names: Sequence[tuple[int, str]]) -> np.ndarray:
        """Float32 ``(KEYS, S, S)``: the log ratio of :attr:`moves` for a change from state ``a``
        to state ``b`` in each key, the states being no chord then every ``(root, quality)`` of
        ``names``; 0 on the diagonal (staying is no move)."""
        missing = sorted({q for _, q in names} - set(FAMILIES))
        if missing:
            raise ChordVAEError(f"the key model has no move class for {', '.join(missing)}")
        cls = np.array([0] + [1 + FAMILIES[q] for _, q in names])
        roots = np.array([0] + [root for root, _ in names])
        chord = cls > 0
        ratios = np.empty((KEYS, len(cls), len(cls)), dtype=np.float32)
        for key in range(KEYS):
            tonic, mode = key % 12, key // 12
            origin = np.where(chord, roots, tonic)        # leaving no chord: the new root above the tonic
            degree = np.where(chord, (roots - tonic) % 12, 0)
            interval = np.where(chord[None, :], (roots[None, :] - origin[:, None]) % 12, 0)
            ratios[key] = self.moves[mode, degree[:, None], cls[:, None], interval, cls[None, :]]
            np.fill_diagonal(ratios[key], 0.0)
        return ratios

    def to_json(self) -> dict:
        return {"qualities": list(self.qualities), "profiles": np.round(self.profiles, 6).tolist(),
                "chords": np.round(self.chords, 6).tolist(), "moves": np.round(self.moves, 4).tolist()}


@lru_cache(maxsize=4)
def load_model(path: Path = MODEL_FILE) -> KeyModel:
    """The model stored at ``path`` (read once per process)."""
    model = read_model_file(path, "key model", lambda d, digest: KeyModel(
        tuple(d["qualities"]), np.array(d["profiles"], dtype=float), np.array(d["chords"], dtype=float),
        np.array(d["moves"], dtype=float), digest))
    if model.profiles.shape != (len(MODES), 12) or model.chords.shape != (len(MODES), 12, len(model.qualities)) \
            or model.moves.shape != (len(MODES), 12, MOVE_CLASSES, 12, MOVE_CLASSES):
        raise ChordVAEError(f"the key model {path} has the wrong shapes")
    return model


def key_evidence(x: np.ndarray, model: KeyModel, concentration: float) -> np.ndarray:
    """Log score ``(F, KEYS)`` of each frame under each key: ``concentration`` times the frame's
    pitch-class shares times its evidence strength (``x`` (F, 12), the first block of
    :func:`~chordvae.chords.emission.features`) against each key's log profile."""
    return concentration * np.einsum("fp,kp->fk", x, model.key_scores())


def chord_prior(key_posterior: np.ndarray, ratios: np.ndarray) -> np.ndarray:
    """Log prior ``(F, S)`` of each state given the key posteriors ``(F, KEYS)`` and the model's
    :meth:`KeyModel.chord_ratios` ``(KEYS, S)``: ``log sum_k P(k) R(k, s)`` for the chords; no
    chord (state 0) gets the frame's best chord's, so the key ranks chords but never makes a
    chord of a frame the emission hears as no chord."""
    prior = np.log(np.einsum("fk,ks->fs", key_posterior, ratios))
    prior[:, 0] = prior[:, 1:].max(1)
    return prior
