"""Decoded progressions as music: beat frames -> held chords -> MIDI, MusicXML with chord
symbols, and WAV (the chords' writers, :mod:`chordvae.listen.chords`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import ChordVAEError
from ..chords.pcset import from_mask
from ..progressions.frames import frame_chords, frame_symbols, progression_text
from .chords import write_and_play
from .midi import RenderOptions


def held_chords(frames: np.ndarray) -> list[tuple[int, int, tuple[int, ...], int | None]]:
    """The chords of one window of beat frames ``(T, D)``: ``(first beat, end beat, pitch
    classes, bass or None)`` for every run of beats written with the same symbol (a repeated
    chord is held, as :func:`~chordvae.progressions.frames.progression_text` writes it), none
    where no pitch class sounds (see :func:`~chordvae.progressions.frames.frame_chords`)."""
    codes, bass = frame_chords(frames)
    symbols = np.asarray(frame_symbols(frames), dtype=object)
    starts = np.flatnonzero(np.concatenate([[True], symbols[1:] != symbols[:-1]]))
    ends = np.append(starts[1:], len(codes))
    return [(s, e, from_mask(int(codes[s])), int(bass[s]) if bass[s] >= 0 else None)
            for s, e in zip(starts.tolist(), ends.tolist()) if codes[s]]


def render_progressions(frames: torch.Tensor, path: Path, options: RenderOptions) -> list[str]:
    """Decoded windows ``(N, T, D)`` (0/1, or probabilities sounding at >= ``options.min_prob``)
    one after another, a beat per quarter note at ``options.bpm``: MIDI (``.mid``) or MusicXML
    with chord symbols (``.musicxml``) in bars of ``options.beats_per_bar`` (default 4 when the
    window's length allows, else 3), plus a WAV when ``options.wav`` is set. Returns each window
    as a progression with beats, and the audio's fate."""
    windows = (frames >= options.min_prob).numpy()
    n, length, _ = windows.shape
    bpb = options.beats_per_bar or next((b for b in (4, 3) if length % b == 0), length)
    chords, basses, times, lines = [], [], [], []
    for w, window in enumerate(windows):
        for start, end, pcs, bass in held_chords(window):
            chords.append(pcs)
            basses.append(bass)
            times.append((float(w * length + start), float(w * length + end)))
        lines.append(f"{w + 1:3d}  {progression_text(window, bpb)}")
    if not chords:
        raise ChordVAEError("every decoded progression is silent: nothing to write")
    return lines + write_and_play(chords, Path(path), options, basses, times, meter=f"{bpb}/4")
