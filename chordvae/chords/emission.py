"""The recogniser's learned emission: a frame's evidence -> a score for every chord state.

A multinomial logistic model over each frame's pitch-class profile and bass, with one set of
weights per quality shared by its twelve roots (weights are relative to the root, so the model is
the same in every key). Features of a frame: its pitch-class shares (each pitch class's part of
the frame's note time) in two blocks, scaled by the frame's evidence strength ``s`` (how full the
frame is, 0..1) and by ``1 - s``, and the bass pitch class (or "no bass"). No chord, having no
root, weighs each block's total, "no bass" and a bias. The same form as the hand-set templates
(a chord tone's log share, the bass as root or chord tone), with weights fitted on labelled
development data by ``benchmarks/fit_emission.py`` and stored in ``emission.json`` beside this module.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence, TypeVar

import numpy as np

from ..errors import ChordVAEError

#: a parameter model read from JSON
M = TypeVar("M")

MODEL_FILE = Path(__file__).with_name("emission.json")
#: Feature blocks of 12 pitch-class shares: scaled by the evidence strength, and by its complement.
BLOCKS = 2
#: The bass classes: the 12 pitch classes relative to the root, then "no bass".
BASS_CLASSES = 13


def features(profile: np.ndarray, bass: np.ndarray, length: np.ndarray,
             evidence_notes: float) -> tuple[np.ndarray, np.ndarray]:
    """Frame features: ``x`` (F, BLOCKS * 12), the pitch-class shares times the strength ``s`` and
    times ``1 - s`` (``s`` = note time / (``evidence_notes`` x the frame's ``length`` (F,) in
    quarter notes), at most 1; a silent frame has ``s`` = 0 and uniform shares), and ``bass_class``
    int (F,), the bass pitch class (``bass`` (F,) MIDI pitches, -1 none -> 12)."""
    mass = profile.sum(1)
    share = np.where(mass[:, None] > 0, profile / np.maximum(mass, 1e-12)[:, None], 1.0 / 12)
    strength = np.minimum(1.0, mass / (evidence_notes * length))[:, None]
    x = np.concatenate([share * strength, share * (1.0 - strength)], axis=1)
    return x, np.where(bass >= 0, bass % 12, 12)


def relative(roots: np.ndarray) -> np.ndarray:
    """Int ``(S, 12)``: each absolute pitch class's interval above each state's root."""
    return (np.arange(12)[None, :] - np.asarray(roots)[:, None]) % 12


@dataclass(frozen=True, eq=False)
class EmissionModel:
    """Fitted weights. Per quality of ``qualities`` (index q): ``notes`` (Q, BLOCKS, 12) on each
    feature block by interval above the root, ``bass`` (Q, 13) per bass interval above the root
    (12: no bass), ``bias`` (Q,). No chord: ``no_chord`` (BLOCKS + 2,), the weights of each
    block's total, of "no bass", and its bias. ``digest``: of the file it was read from."""

    qualities: tuple[str, ...]
    notes: np.ndarray
    bass: np.ndarray
    bias: np.ndarray
    no_chord: np.ndarray
    digest: str = ""

    def state_matrices(self, names: Sequence[tuple[int, str]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """For states no chord then ``names`` ((root, quality) each): note weights ``(S, BLOCKS * 12)``
        on absolute pitch classes, bass weights ``(S, 13)`` on absolute bass classes, biases ``(S,)``."""
        index = {q: k for k, q in enumerate(self.qualities)}
        missing = sorted({q for _, q in names} - set(index))
        if missing:
            raise ChordVAEError(f"the emission model has no weights for {', '.join(missing)}")
        q = np.array([index[quality] for _, quality in names])
        rel = relative([root for root, _ in names])
        notes = np.take_along_axis(self.notes[q], rel[:, None, :], axis=2).reshape(len(names), -1)
        bass = np.concatenate([np.take_along_axis(self.bass[q, :12], rel, axis=1), self.bass[q, 12:]], axis=1)
        none_notes = np.repeat(self.no_chord[:BLOCKS], 12)[None, :]
        none_bass = np.concatenate([np.zeros(12), self.no_chord[BLOCKS:BLOCKS + 1]])[None, :]
        return (np.concatenate([none_notes, notes]), np.concatenate([none_bass, bass]),
                np.concatenate([self.no_chord[BLOCKS + 1:], self.bias[q]]))

    def to_json(self) -> dict:
        return {"qualities": list(self.qualities), "notes": np.round(self.notes, 6).tolist(),
                "bass": np.round(self.bass, 6).tolist(), "bias": np.round(self.bias, 6).tolist(),
                "no_chord": np.round(self.no_chord, 6).tolist()}


def read_model_file(path: Path, what: str, build: Callable[[dict, str], M]) -> M:
    """``build(fields, digest)`` of the JSON parameter file at ``path`` (digest: the first 16 hex
    digits of its sha256, for cache keys); ChordVAEError naming ``what`` if it cannot be read."""
    try:
        data = path.read_bytes()
        return build(json.loads(data), hashlib.sha256(data).hexdigest()[:16])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ChordVAEError(f"cannot read the {what} {path}: {e}") from None


@lru_cache(maxsize=4)
def load_model(path: Path = MODEL_FILE) -> EmissionModel:
    """The model stored at ``path`` (read once per process)."""
    model = read_model_file(path, "emission model", lambda d, digest: EmissionModel(
        tuple(d["qualities"]), np.array(d["notes"], dtype=float), np.array(d["bass"], dtype=float),
        np.array(d["bias"], dtype=float), np.array(d["no_chord"], dtype=float), digest))
    q = len(model.qualities)
    if model.notes.shape != (q, BLOCKS, 12) or model.bass.shape != (q, BASS_CLASSES) \
            or model.bias.shape != (q,) or model.no_chord.shape != (BLOCKS + 2,):
        raise ChordVAEError(f"the emission model {path} has the wrong shapes")
    return model
