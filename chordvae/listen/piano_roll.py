"""Piano rolls (frames of sounding keys) as MIDI: one frame per quarter note, held keys joined into notes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from .._pretty_midi import pretty_midi
from ..errors import ChordVAEError
from ..fileio import atomic_path
from .midi import MIDI_SUFFIXES, RenderOptions


def roll_notes(roll: np.ndarray) -> list[tuple[int, int, int]]:
    """``(key, start, end)`` frame spans of a 0/1 roll ``(T, K)``: each run of consecutive
    frames in which a key sounds is one note (end exclusive)."""
    padded = np.pad(roll.astype(np.int8), ((1, 1), (0, 0)))
    change = np.diff(padded, axis=0)                      # +1: onset, -1: release, shape (T + 1, K)
    onsets, releases = np.nonzero(change.T == 1), np.nonzero(change.T == -1)
    return [(int(k), int(s), int(e)) for k, s, e in zip(onsets[0], onsets[1], releases[1])]


def write_piano_roll(frames: torch.Tensor, path: Path, options: RenderOptions, lowest: int) -> list[str]:
    """Write windows of frames ``(N, T, K)`` (a key sounds at value >= ``options.min_prob``)
    one after another to a MIDI file, a frame per quarter note at ``options.bpm``; key 0 is
    MIDI note ``lowest``. Returns one line per window."""
    path = Path(path)
    if path.suffix.lower() not in MIDI_SUFFIXES:
        raise ChordVAEError(f"sequence runs write MIDI (.mid); got {path.name}")
    rolls = (frames >= options.min_prob).cpu().numpy()
    roll = rolls.reshape(-1, rolls.shape[-1])
    quarter = 60.0 / options.bpm
    pm = pretty_midi.PrettyMIDI(initial_tempo=options.bpm)
    instrument = pretty_midi.Instrument(program=options.program)
    for key, start, end in roll_notes(roll):
        instrument.notes.append(pretty_midi.Note(options.velocity, lowest + key, start * quarter, end * quarter))
    pm.instruments.append(instrument)
    with atomic_path(path) as tmp:
        pm.write(str(tmp))
    lines = []
    for i, r in enumerate(rolls):
        sounding = r.sum(1)
        keys = np.flatnonzero(r.any(0))
        span = f"MIDI {lowest + keys.min()}-{lowest + keys.max()}" if len(keys) else "silent"
        lines.append(f"{i + 1:3d}  {len(r)} quarter notes, {sounding.mean():.1f} keys per frame, {span}")
    return lines
