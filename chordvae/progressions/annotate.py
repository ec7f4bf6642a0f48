"""What each window of a progression corpus is: its file and bars, its corpus, the progression
the recogniser heard, its key's mode and its cadence (the last chord as a Roman numeral).

The key is the piece's (music21's key analysis of the whole file, which the corpus engine
stores, :class:`~chordvae.progressions.corpus.ProgressionCorpus`), moved with the window when it
was transposed. The chord symbols are :func:`~chordvae.progressions.frames.frame_symbols`' (the
one chord namer); the cadence is music21's Roman numeral of the window's last chord in that key
(``"V"`` for G7 in C, ``"vi"``, ``"bVII"``; in minor ``"i"``, ``"VI"``...), without its
inversion figures; ``"other"`` for a last chord no chord symbol names, ``"N"`` for a window
without a chord.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..chords.names import name_chord
from ..chords.pcset import from_mask
from ..chords.spelling import root_name
from .corpus import ProgressionCorpus
from .frames import frame_chords, frame_symbols, symbols_text
from .windows import Windows, bar_counts

MODES = ("major", "minor")
#: the cadence of a window whose last chord no chord symbol names / of a window without a chord
OTHER, NONE = "other", "N"


@dataclass(frozen=True)
class WindowInfo:
    """One window: ``path`` (its file), ``corpus`` (the source name it was read as), ``first_bar``
    and ``last_bar`` (bar numbers as the corpus numbers them: 1 at the file's first downbeat, 0 a
    pickup), ``shift`` (semitones it was transposed up), ``progression`` (its beats as a typed
    progression, ``"| C . G . | Am . F . |"``; a pickup's missing beats are ``N``), ``key``
    (``"Eb major"``, ``"c# minor"``), ``mode`` (one of :data:`MODES`) and ``cadence`` (its last
    chord's Roman numeral in the key, see the module docstring)."""

    path: str
    corpus: str
    first_bar: int
    last_bar: int
    shift: int
    progression: str
    key: str
    mode: str
    cadence: str

    @property
    def bars(self) -> str:
        """``"9-12"`` (``"9"`` for one bar), as a file span ``song.mid:9-12`` writes them."""
        return f"{self.first_bar}" if self.first_bar == self.last_bar else f"{self.first_bar}-{self.last_bar}"


def annotate(corpus: ProgressionCorpus, windows: Windows, index: np.ndarray | None = None) -> list[WindowInfo]:
    """A :class:`WindowInfo` per window of ``corpus`` (windows cut from it by
    :mod:`~chordvae.progressions.windows`, with or without context and transposition), or only
    for the windows ``index`` (int ``(K,)``), in that order."""
    index = np.arange(len(windows)) if index is None else np.asarray(index, dtype=np.int64)
    n, T = len(index), windows.length
    frames = windows.frames[index, windows.context:].numpy()                   # (N, T, D)
    mask = windows.mask[index, windows.context:].numpy()                       # (N, T)
    piece, shift, lead, start_bar = (a[index].numpy() for a in (windows.piece, windows.shift, windows.lead,
                                                                 windows.start_bar))
    beats = mask.sum(1)
    last_bar = start_bar + bar_counts(corpus, windows)[index] - 1
    symbols = _symbols(frames.reshape(n * T, -1)).reshape(n, T)
    tonic = (corpus.key_tonic[piece] + shift) % 12
    major = corpus.key_major[piece]
    chord = mask & (frames[..., -1] < 0.5) & (frames[..., :12].max(-1) >= 0.5)   # beats with a chord
    last = np.where(chord.any(1), T - 1 - chord[:, ::-1].argmax(1), -1)
    codes, bass = frame_chords(frames[np.arange(n), last])
    bpb = corpus.bar_length()
    infos = []
    for w in range(n):
        kept = symbols[w, :lead[w] + beats[w]].tolist()
        cadence = _cadence(int(codes[w]), int(bass[w]), int(tonic[w]), bool(major[w])) if last[w] >= 0 else NONE
        infos.append(WindowInfo(windows.sources[piece[w]], corpus.corpus[piece[w]], int(start_bar[w]),
                                int(last_bar[w]), int(shift[w]), symbols_text(kept, bpb),
                                key_name(int(tonic[w]), bool(major[w])), MODES[0] if major[w] else MODES[1],
                                cadence))
    return infos


def key_name(tonic: int, major: bool) -> str:
    """``"Eb major"``, ``"c# minor"``: the tonic spelled as :mod:`~chordvae.chords.spelling` spells keys."""
    name = root_name(tonic, not major)
    return f"{name} major" if major else f"{name.lower()} minor"


def _symbols(frames: np.ndarray) -> np.ndarray:
    """:func:`frame_symbols` of frames ``(M, D)``, naming each distinct chord once: str ``(M,)``."""
    codes, bass = frame_chords(frames)
    code = codes * 13 + bass + 1
    _, index, inverse = np.unique(code, return_index=True, return_inverse=True)
    return np.asarray(frame_symbols(frames[index]), dtype=object)[inverse.reshape(-1)]


def _cadence(code: int, bass: int, tonic: int, major: bool) -> str:
    """music21's Roman numeral (without figures) of the chord ``code`` (a pitch-class mask) over
    ``bass`` (-1: none) in the key on ``tonic``; :data:`OTHER` when no chord symbol names the chord."""
    pcs = from_mask(code)
    moved = name_chord([(p - tonic) % 12 for p in pcs], (bass - tonic) % 12 if bass >= 0 else None)
    return OTHER if moved.music21 is None else _numeral(moved.music21, major)


@lru_cache(maxsize=None)
def _numeral(figure: str, major: bool) -> str:
    """The Roman numeral of the chord symbol ``figure`` (music21's spelling) in C major or c minor."""
    from music21 import harmony, key, roman

    return roman.romanNumeralFromChord(harmony.ChordSymbol(figure), key.Key("C" if major else "c")).romanNumeral
