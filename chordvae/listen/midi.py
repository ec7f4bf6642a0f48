"""Writing chord sequences: MIDI through pretty_midi, notation through music21."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from .._pretty_midi import pretty_midi
from ..chords.names import name_chord
from ..chords.readers import MIDI_SUFFIXES
from ..errors import ChordVAEError
from ..fileio import atomic_path
from .voicing import voice

XML_SUFFIXES = (".musicxml", ".xml")


@dataclass(frozen=True)
class RenderOptions:
    """How decoded events become a file. Chords: a pitch class sounds when its probability is at
    least ``min_prob``, or the ``notes`` most probable ones sound; ``bpm`` quarter notes per
    minute; ``beats`` per chord; ``program`` General MIDI (0 = piano); ``velocity`` 1-127;
    ``wav`` also renders audio there (with ``soundfont``). Images: ``columns`` per row."""

    min_prob: float = 0.5
    notes: int | None = None
    bpm: float = 90.0
    beats: float = 2.0
    program: int = 0
    velocity: int = 80
    wav: str | None = None
    soundfont: str | None = None
    columns: int | None = None


def to_midi(chords: Sequence[Sequence[int]], options: RenderOptions = RenderOptions(),
            basses: Sequence[int | None] | None = None) -> pretty_midi.PrettyMIDI:
    """The chords voiced and played one after another, each ``options.beats`` long."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=options.bpm)
    instrument = pretty_midi.Instrument(program=options.program)
    length = options.beats * 60.0 / options.bpm
    for i, pcs in enumerate(chords):
        bass = basses[i] if basses is not None else None
        for pitch in voice(pcs, bass):
            instrument.notes.append(pretty_midi.Note(options.velocity, pitch, i * length, (i + 1) * length))
    pm.instruments.append(instrument)
    return pm


def to_score(chords: Sequence[Sequence[int]], options: RenderOptions = RenderOptions(),
             basses: Sequence[int | None] | None = None):
    """A music21 score: each voiced chord with its name above it (:func:`~chordvae.chords.names.name_chord`),
    as a chord symbol where one fits, else as text (the notes' names)."""
    from music21 import chord, expressions, harmony, meter, stream, tempo

    part = stream.Part()
    part.append([meter.TimeSignature("4/4"), tempo.MetronomeMark(number=options.bpm)])
    for i, pcs in enumerate(chords):
        bass = basses[i] if basses is not None else None
        notes = voice(pcs, bass)
        named = name_chord(pcs, notes[0] % 12)
        if named.music21 is not None:
            symbol = harmony.ChordSymbol(named.music21)
            symbol.writeAsChord = False
            part.append(symbol)
        else:
            part.append(expressions.TextExpression(named.symbol))
        part.append(chord.Chord(notes, quarterLength=options.beats))
    score = stream.Score()
    score.insert(0, part)
    return score


def write_chords(chords: Sequence[Sequence[int]], path: str | Path, options: RenderOptions = RenderOptions(),
                 basses: Sequence[int | None] | None = None) -> pretty_midi.PrettyMIDI:
    """Write MIDI (``.mid``) or MusicXML (``.musicxml``) atomically; returns the MIDI for audio rendering."""
    path = Path(path)
    pm = to_midi(chords, options, basses)
    suffix = path.suffix.lower()
    if suffix in MIDI_SUFFIXES:
        with atomic_path(path) as tmp:
            pm.write(str(tmp))
    elif suffix in XML_SUFFIXES:
        with atomic_path(path) as tmp:
            to_score(chords, options, basses).write("musicxml", fp=str(tmp))
    else:
        raise ChordVAEError(f"cannot write chords as {path.name}: use .mid or .musicxml")
    return pm
