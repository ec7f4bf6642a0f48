"""Segmentation: the notes of a piece -> a sequence of chord events (vectorised with numpy).

``chords`` (the default) recognises the chords a musician would write over the music
(:mod:`~chordvae.chords.recognise`). The others are plain slicers of what sounds:
``onset``: a new chord whenever the set of sounding notes changes (as music21's chordify).
``beat``: one chord per quarter-note beat, keeping the pitch classes that sound for at least
``threshold`` of the beat (passing tones drop out). ``bar``: the same per bar.
Then consecutive events with the same pitch classes and bass merge, and events with fewer
than ``min_notes`` pitch classes or shorter than ``min_duration`` beats are dropped.
"""
from __future__ import annotations

from dataclasses import astuple, dataclass

import numpy as np

from ..errors import ChordVAEError
from .events import ChordEvent
from .pcset import from_mask, rows_to_masks
from .readers import Notes
from .recognise import RecogniserOptions, recognise

SEGMENT_MODES = ("chords", "onset", "beat", "bar")


@dataclass(frozen=True)
class Segmentation:
    """How notes become chords: ``mode`` one of :data:`SEGMENT_MODES`; for the slicers,
    ``threshold`` is a fraction of the beat/bar and ``min_duration`` is in beats."""

    mode: str = "chords"
    threshold: float = 0.5
    min_notes: int = 3
    min_duration: float = 0.25

    def __post_init__(self) -> None:
        if self.mode not in SEGMENT_MODES:
            raise ChordVAEError(f"unknown segmentation {self.mode!r}; choose from {', '.join(SEGMENT_MODES)}")
        if not 0 <= self.threshold <= 1 or not 1 <= self.min_notes <= 12 or self.min_duration < 0:
            raise ChordVAEError("segmentation needs 0 <= threshold <= 1, 1 <= min-notes <= 12, min-duration >= 0")

    def cache_key(self) -> str:
        if self.mode == "chords":
            return "seg:chords," + RecogniserOptions().cache_key()
        return "seg:" + ",".join(map(str, astuple(self)))


def segment(notes: Notes, seg: Segmentation) -> list[ChordEvent]:
    """Chord events of ``notes`` in time order."""
    if seg.mode == "chords":
        return recognise(notes)
    keep = notes.end > notes.start
    pitch, start, end = notes.pitch[keep].astype(np.int64), notes.start[keep], notes.end[keep]
    if len(pitch) == 0:
        return []
    last = float(end.max())
    if seg.mode == "onset":
        grid = np.array([0.0, last])
    elif seg.mode == "beat":
        grid = np.arange(0.0, np.ceil(last) + 1.0)
    else:
        grid = np.unique(np.concatenate([[0.0], notes.downbeats[notes.downbeats < last], [last]]))
    bounds = np.unique(np.concatenate([start, end, grid]))
    # sounding[i, p]: pitch p sounds in [bounds[i], bounds[i + 1])
    delta = np.zeros((len(bounds), 128), dtype=np.int32)
    np.add.at(delta, (np.searchsorted(bounds, start), pitch), 1)
    np.add.at(delta, (np.searchsorted(bounds, end), pitch), -1)
    sounding = np.cumsum(delta, axis=0)[:-1] > 0
    length = np.diff(bounds)
    if seg.mode == "onset":
        code, bass = _pc_codes(sounding), _lowest(sounding)
        edges = bounds
    else:
        unit = np.searchsorted(grid, bounds[:-1], side="right") - 1
        unit_len = np.diff(grid)
        per_pitch = np.zeros((len(unit_len), 128))
        np.add.at(per_pitch, unit, sounding * length[:, None])
        per_pc = _fold(per_pitch)
        counted = per_pc >= seg.threshold * unit_len[:, None] - 1e-9
        code = rows_to_masks(counted)
        strong = (per_pitch >= seg.threshold * unit_len[:, None] - 1e-9) & counted[:, np.arange(128) % 12]
        weak = (per_pitch > 0) & counted[:, np.arange(128) % 12]
        bass = np.where(strong.any(1), _lowest(strong), _lowest(weak))
        edges = grid
    return _events(notes, seg, code, bass, edges)


def _fold(per_pitch: np.ndarray) -> np.ndarray:
    """(K, 128) per MIDI pitch -> (K, 12) per pitch class (summed over octaves)."""
    padded = np.zeros((len(per_pitch), 132), dtype=per_pitch.dtype)
    padded[:, :128] = per_pitch
    return padded.reshape(len(per_pitch), 11, 12).sum(1)


def _pc_codes(sounding: np.ndarray) -> np.ndarray:
    return rows_to_masks(_fold(sounding.astype(np.int64)) > 0)


def _lowest(mask: np.ndarray) -> np.ndarray:
    """Pitch class of the lowest True pitch per row, -1 where none."""
    return np.where(mask.any(1), mask.argmax(1) % 12, -1)


def _events(notes: Notes, seg: Segmentation, code: np.ndarray, bass: np.ndarray,
            edges: np.ndarray) -> list[ChordEvent]:
    """Merge runs of equal (pitch classes, bass), filter, and build the events."""
    key = code * 16 + (bass + 1)
    first = np.flatnonzero(np.concatenate([[True], key[1:] != key[:-1]]))
    last = np.concatenate([first[1:], [len(key)]])
    start, end = edges[first], edges[last]
    size = np.array([bin(c).count("1") for c in code[first]])
    ok = (size >= seg.min_notes) & (end - start >= seg.min_duration - 1e-9) & (code[first] > 0)
    first, start, end = first[ok], start[ok], end[ok]
    start_s, end_s = notes.seconds(start), notes.seconds(end)
    events = []
    for i, f in enumerate(first):
        pcs = from_mask(code[f])
        events.append(ChordEvent(notes.source, round(float(start[i]), 6), round(float(end[i]), 6),
                                 round(float(start_s[i]), 6), round(float(end_s[i]), 6), pcs,
                                 int(bass[f])))
    return events
