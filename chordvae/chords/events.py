"""Chord events: what a stretch of music sounds like as a pitch-class set, with its name
(:mod:`~chordvae.chords.names`) and Harte label."""
from __future__ import annotations

from dataclasses import dataclass

from .names import ChordName, name_chord
from .vocabulary import harte_label


@dataclass(frozen=True)
class ChordEvent:
    """One chord: where it is (beats are quarter notes from the start of the piece; seconds
    from the tempo map) and what it is (pitch classes, C = 0).

    ``pitch_classes`` is the chord's set: for a recognised chord the set of its label (a C major
    chord is (0, 4, 7) even where the fifth is missing), for a slice what sounds. ``bass`` is the
    chord's bass pitch class. Recognised chords also carry ``root``, ``quality`` (a
    :data:`~chordvae.chords.vocabulary.QUALITIES` key), the pitch classes that actually
    ``sounding`` and a ``confidence`` in [0, 1] (the decoder's posterior); slices leave them
    unset (root -1, quality "", sounding = pitch_classes, confidence 1).
    """

    source: str
    start_beats: float
    end_beats: float
    start_s: float
    end_s: float
    pitch_classes: tuple[int, ...]
    bass: int
    root: int = -1
    quality: str = ""
    sounding: tuple[int, ...] | None = None
    confidence: float = 1.0

    @property
    def named(self) -> ChordName:
        """The chord's name, symbol and root (:func:`~chordvae.chords.names.name_chord` of its set,
        bass and root)."""
        return name_chord(self.pitch_classes, self.bass, self.root)

    @property
    def name(self) -> str:
        """The chord in words, e.g. ``"A minor triad"``, ``"G major triad over B"``."""
        return self.named.name

    @property
    def label(self) -> str:
        """The Harte label ``mir_eval`` reads, e.g. ``"A:min"``, ``"G:7/3"``; a slice's root is its name's."""
        root = self.root if self.root >= 0 else self.named.root
        return harte_label(self.pitch_classes, root, self.bass, self.quality or None)

    def to_json(self) -> dict:
        d = dict(self.__dict__)  # shallow: dataclasses.asdict deep-copies every tuple
        d["pitch_classes"] = list(self.pitch_classes)
        d["sounding"] = list(self.sounding if self.sounding is not None else self.pitch_classes)
        named = self.named
        if self.root < 0:
            d["root"] = named.root
        d["label"] = self.label
        d["name"] = named.name
        d["symbol"] = named.symbol
        return d
