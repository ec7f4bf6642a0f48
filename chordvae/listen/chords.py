"""Decoded chord probabilities as music: which pitch classes sound, then MIDI / MusicXML / WAV."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from ..chords.names import name_chord
from ..errors import ChordVAEError
from .audio import render_wav
from .midi import RenderOptions, Times, write_chords


def render_chords(probs: torch.Tensor, path: Path, options: RenderOptions) -> list[str]:
    """Decoded chords ``probs`` ``(N, 12 or 24)``, voiced and played one after another: MIDI
    (``.mid``) or MusicXML (``.musicxml``), plus a WAV through FluidSynth when ``options.wav`` is set.

    A chord is the pitch classes with probability >= ``options.min_prob``, or the
    ``options.notes`` most probable ones; the bass is the bass dimension's most probable
    pitch class when the model has one, else the chord's root. Empty decodes are reported
    and left out. Returns one line per chord (and the audio's fate).
    """
    p = probs[:, :12].numpy()
    if options.notes:
        top = np.argsort(-p, axis=1)[:, :options.notes]
        chosen = np.zeros_like(p, dtype=bool)
        np.put_along_axis(chosen, top, True, axis=1)
    else:
        chosen = p >= options.min_prob
    basses = probs[:, 12:].argmax(1).tolist() if probs.shape[1] == 24 else [None] * len(p)
    chords, kept_basses, lines = [], [], []
    for i, row in enumerate(chosen):
        pcs = tuple(np.flatnonzero(row).tolist())
        if not pcs:
            lines.append(f"{i + 1:3d}  (empty: no pitch class reaches p >= {options.min_prob}; left out)")
            continue
        chords.append(pcs)
        kept_basses.append(basses[i] if basses[i] in pcs else None)
        named = name_chord(pcs, kept_basses[-1])
        lines.append(f"{i + 1:3d}  {named.name:40s} {named.symbol:10s} {list(pcs)}")
    if not chords:
        raise ChordVAEError("every decoded chord is empty; lower --min-prob or use --notes K")
    return lines + write_and_play(chords, path, options, basses=kept_basses)


def write_and_play(chords: Sequence[Sequence[int]], path: Path, options: RenderOptions,
                   basses: Sequence[int | None] | None = None, times: Times | None = None,
                   meter: str = "4/4") -> list[str]:
    """:func:`~chordvae.listen.midi.write_chords`, then a WAV through FluidSynth when
    ``options.wav`` is set; returns a line on the audio's fate (none without ``wav``)."""
    written = write_chords(chords, path, options, basses=basses, times=times, meter=meter)
    if not options.wav:
        return []
    try:
        render_wav(written, options.wav, soundfont=options.soundfont)
        return [f"audio: {options.wav}"]
    except ChordVAEError as e:
        return [f"no audio: {e} (the chords are still in {path})"]
