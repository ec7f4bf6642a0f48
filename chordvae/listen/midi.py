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
    ``wav`` also renders audio there (with ``soundfont``). Progressions: ``beats_per_bar`` of
    their meter (default: guessed from the window). Images: ``columns`` per row."""

    min_prob: float = 0.5
    notes: int | None = None
    bpm: float = 90.0
    beats: float = 2.0
    program: int = 0
    velocity: int = 80
    wav: str | None = None
    soundfont: str | None = None
    columns: int | None = None
    beats_per_bar: int | None = None


#: when each chord sounds: ``(start, end)`` in beats (quarter notes) from the start
Times = Sequence[tuple[float, float]]


def _times(n: int, options: RenderOptions, times: Times | None) -> Times:
    """The chords' ``(start, end)`` in beats: as given, else one after another, ``options.beats`` each."""
    return times if times is not None else [(i * options.beats, (i + 1) * options.beats) for i in range(n)]


def to_midi(chords: Sequence[Sequence[int]], options: RenderOptions = RenderOptions(),
            basses: Sequence[int | None] | None = None, times: Times | None = None) -> pretty_midi.PrettyMIDI:
    """The chords voiced and played one after another, each ``options.beats`` long (or when
    ``times`` say, in beats)."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=options.bpm)
    instrument = pretty_midi.Instrument(program=options.program)
    beat = 60.0 / options.bpm
    for i, (pcs, (start, end)) in enumerate(zip(chords, _times(len(chords), options, times))):
        bass = basses[i] if basses is not None else None
        for pitch in voice(pcs, bass):
            instrument.notes.append(pretty_midi.Note(options.velocity, pitch, start * beat, end * beat))
    pm.instruments.append(instrument)
    return pm


def to_score(chords: Sequence[Sequence[int]], options: RenderOptions = RenderOptions(),
             basses: Sequence[int | None] | None = None, times: Times | None = None, meter: str = "4/4"):
    """A music21 score in ``meter``: each voiced chord (when ``times`` say, in beats; rests
    between) with its name above it (:func:`~chordvae.chords.names.name_chord`), as a chord
    symbol where one fits, else as text (the notes' names)."""
    from music21 import chord, expressions, harmony, stream, tempo
    from music21 import meter as m21meter

    part = stream.Part()
    part.insert(0, m21meter.TimeSignature(meter))
    part.insert(0, tempo.MetronomeMark(number=options.bpm))
    for i, (pcs, (start, end)) in enumerate(zip(chords, _times(len(chords), options, times))):
        bass = basses[i] if basses is not None else None
        notes = voice(pcs, bass)
        named = name_chord(pcs, notes[0] % 12)
        if named.music21 is not None:
            symbol = harmony.ChordSymbol(named.music21)
            symbol.writeAsChord = False
            part.insert(start, symbol)
        else:
            part.insert(start, expressions.TextExpression(named.symbol))
        part.insert(start, chord.Chord(notes, quarterLength=end - start))
    part.makeRests(fillGaps=True, inPlace=True)
    score = stream.Score()
    score.insert(0, part)
    return score


def write_chords(chords: Sequence[Sequence[int]], path: str | Path, options: RenderOptions = RenderOptions(),
                 basses: Sequence[int | None] | None = None, times: Times | None = None,
                 meter: str = "4/4") -> pretty_midi.PrettyMIDI:
    """Write MIDI (``.mid``) or MusicXML (``.musicxml``, in ``meter``) atomically, the chords
    one after another or when ``times`` say (see :func:`to_midi`); returns the MIDI for audio rendering."""
    path = Path(path)
    pm = to_midi(chords, options, basses, times)
    suffix = path.suffix.lower()
    if suffix in MIDI_SUFFIXES:
        with atomic_path(path) as tmp:
            pm.write(str(tmp))
    elif suffix in XML_SUFFIXES:
        with atomic_path(path) as tmp:
            to_score(chords, options, basses, times, meter).write("musicxml", fp=str(tmp))
    else:
        raise ChordVAEError(f"cannot write chords as {path.name}: use .mid or .musicxml (audio: --wav FILE.wav)")
    return pm
