"""Typed progressions: what a user writes -> beat frames, as the corpus windows hold them.

The forms (see :func:`parse_progression`):

- chord symbols, one per bar: ``"C G Am F"``;
- with beats, bar lines and ``.`` to hold a chord: ``"| C . G . | Am . F . |"``;
- Roman numerals in a key (either form): ``"I V vi IV"`` with key ``C`` (music21's reading);
- a span of bars of a file, read by the recogniser: ``"song.mid:9-12"`` (or ``"song.mid:9"``).

``N`` (or ``NC``, ``N.C.``) is no chord.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..chords.sources import SUFFIXES
from ..chords.names import name_chord
from ..chords.pcset import to_mask
from ..errors import ChordVAEError
from ..listen.chordspec import parse_chord
from .corpus import ProgressionOptions, read_progressions
from .frames import FrameLayout, encode
from .windows import bars_of

HOLD = "."
NO_CHORD = ("N", "NC", "N.C.")
_SPAN = re.compile(r"^(?P<path>.+):(?P<first>\d+)(?:-(?P<last>\d+))?$")
_ROMAN = re.compile(r"^[#b-]*(?:[ivIV]+|N|It|Ger|Fr|Cad)")


@dataclass
class TypedProgression:
    """A parsed progression: ``frames`` float32 ``(T, D)`` one per beat, ``mask`` bool ``(T,)``
    (False only before a file span's pickup), ``beats_per_bar`` of its meter."""

    text: str
    frames: np.ndarray
    mask: np.ndarray
    beats_per_bar: int

    def as_window(self, length: int) -> tuple[np.ndarray, np.ndarray]:
        """Frames ``(length, D)`` and mask ``(length,)``, padded at the end as the corpus
        windows are; a progression longer than ``length`` beats raises ChordVAEError."""
        if len(self.frames) > length:
            raise ChordVAEError(f"{self.text!r} has {len(self.frames)} beats; the windows hold {length}")
        frames = np.zeros((length, self.frames.shape[1]), dtype=np.float32)
        frames[:len(self.frames)] = self.frames
        mask = np.zeros(length, dtype=bool)
        mask[:len(self.mask)] = self.mask
        return frames, mask


def parse_progression(text: str, key: str | None = None, meter: str = "4/4",
                      layout: FrameLayout = FrameLayout(),
                      options: ProgressionOptions = ProgressionOptions()) -> TypedProgression:
    """Parse any typed form (see the module docstring). ``key`` makes the chords Roman numerals;
    ``meter`` (e.g. ``"3/4"``, ``"6/8"``: music21's beats, a 6/8 bar has 2) sets the beats
    per bar of the typed forms; a file span has its file's bars, read as ``options`` say
    (cache, strictness). Malformed input raises ChordVAEError with a one-line message."""
    span = _SPAN.match(text.strip())
    if span and (Path(span["path"]).suffix.lower() in SUFFIXES or Path(span["path"]).is_file()):
        return _file_span(text, span["path"], int(span["first"]), int(span["last"] or span["first"]),
                          layout, options)
    bpb = beats_per_bar(meter)
    tonality = parse_key(key) if key is not None else None
    body = text.strip()
    if not body or not body.strip("|").strip():
        raise ChordVAEError("empty progression: write chords such as \"C G Am F\" or \"| C . G . |\"")
    if "|" in body:
        bars = [bar.split() for bar in body.strip("|").split("|")]
        for i, bar in enumerate(bars, 1):
            if len(bar) != bpb:
                raise ChordVAEError(f"bar {i} of {text!r} has {len(bar)} beat{'s' * (len(bar) != 1)}; "
                                    f"{meter} has {bpb} (write '{HOLD}' to hold a chord)")
        tokens = [token for bar in bars for token in bar]
    else:
        tokens = [token for token in body.split() for _ in range(bpb)]
    chords: list[tuple[int, int, int]] = []
    for i, token in enumerate(tokens):
        if token == HOLD:
            if not chords:
                raise ChordVAEError(f"{text!r} starts with '{HOLD}', which holds the chord before it")
            chords.append(chords[-1])
        else:
            chords.append(_chord(token, tonality))
    codes, bass, root = (np.array(column, dtype=np.int64) for column in zip(*chords))
    frames = encode(codes, bass, root, layout).astype(np.float32)
    return TypedProgression(text, frames, np.ones(len(frames), dtype=bool), bpb)


def looks_roman(text: str) -> bool:
    """Whether the first chord of a typed progression looks like a Roman numeral (``I``, ``bVII``, ``vi``)."""
    tokens = [t for t in text.replace("|", " ").split() if t != HOLD]
    return bool(tokens) and bool(_ROMAN.match(tokens[0])) and tokens[0].upper() not in NO_CHORD


def beats_per_bar(meter: str) -> int:
    """Beats in a bar of ``meter`` as music21 counts them (4/4: 4, 3/4: 3, 6/8: 2, 12/8: 4)."""
    from music21 import meter as m21meter

    try:
        return int(m21meter.TimeSignature(meter.strip()).beatCount)
    except Exception:  # music21 raises several kinds on what it cannot read
        raise ChordVAEError(f"cannot read the meter {meter!r}: write it as 4/4, 3/4, 6/8, ...") from None


def parse_key(text: str):
    """A key as musicians write it, ``"C"``, ``"Am"``, ``"a"`` (minor), ``"Bb major"``,
    ``"F# minor"``, as a music21 ``Key``."""
    from music21 import key

    t = text.strip()
    words = t.split()
    if len(words) == 2 and words[1].lower() in ("major", "minor"):
        t = words[0].capitalize() if words[1].lower() == "major" else words[0].lower()
    t = re.sub(r"^([A-Ga-g])b", r"\1-", t)
    try:
        return key.Key(t)
    except Exception:  # music21 raises several kinds on what it cannot read
        raise ChordVAEError(f"cannot read the key {text!r}: write e.g. C, Am, Bb major, F# minor") from None


def _chord(token: str, tonality) -> tuple[int, int, int]:
    """One chord token -> ``(pitch-class mask, bass, root)``; no chord -> ``(0, -1, -1)``."""
    if token.upper() in NO_CHORD:
        return 0, -1, -1
    if tonality is not None:
        from music21 import roman

        try:
            if not _ROMAN.match(token):
                raise ValueError(token)
            numeral = roman.RomanNumeral(token, tonality)
            return to_mask(numeral.pitchClasses), numeral.bass().pitchClass, numeral.root().pitchClass
        except Exception:  # music21 raises several kinds on what it cannot read
            raise ChordVAEError(f"cannot read {token!r} as a Roman numeral in {tonality}: "
                                "write e.g. I, V7, vi, IV6, V/V, bVII") from None
    spec = parse_chord(token)
    if spec.pitch_classes is None:
        raise ChordVAEError(f"{token!r} is a latent point, not a chord of a progression")
    bass = spec.bass if spec.bass is not None else spec.pitch_classes[0]
    root = spec.root if spec.root is not None else name_chord(spec.pitch_classes).root
    return to_mask(spec.pitch_classes), bass, root


def _file_span(text: str, path: str, first: int, last: int, layout: FrameLayout,
               options: ProgressionOptions) -> TypedProgression:
    """Bars ``first`` to ``last`` of the file at ``path``, as the recogniser hears them."""
    if not Path(path).is_file():
        raise ChordVAEError(f"{path} does not exist (in the span {text!r})")
    if last < first:
        raise ChordVAEError(f"the span {text!r} ends before it starts: write FILE:FIRST-LAST with FIRST <= LAST")
    reading = ProgressionOptions(root=layout.root, jobs=1, strict=True, no_cache=options.no_cache)
    corpus = read_progressions([path], reading, progress=False, trim=False)
    table = bars_of(corpus)
    lo, hi = int(table.number[0]), int(table.number[-1])
    if first < lo or last > hi:
        raise ChordVAEError(f"{path} has bars {lo}-{hi}; the span {first}-{last} is outside them")
    a, b = first - lo, last - lo
    lead = int(table.lead[a])
    frames = np.zeros((lead + table.end[b] - table.start[a], layout.dims), dtype=np.float32)
    frames[lead:] = corpus.frames[table.start[a]:table.end[b]]
    mask = np.arange(len(frames)) >= lead
    return TypedProgression(text, frames, mask, corpus.bar_length())
