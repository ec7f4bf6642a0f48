"""Readers: one music file -> the notes that sound in it, as arrays.

MIDI is read by pretty_midi, scores (MusicXML, kern, ABC, ...) by music21. Times are in
quarter-note beats from the start of the piece; a tempo map turns beats into seconds.
Every problem with a file raises :class:`FileRejected` with a one-line reason.
"""
from __future__ import annotations

import os
import warnings
import xml.sax
import zipfile
from dataclasses import dataclass
from pathlib import Path

import defusedxml.sax
import numpy as np
from defusedxml import DefusedXmlException

from ..errors import DataError

MIDI_SUFFIXES = (".mid", ".midi")
SCORE_SUFFIXES = (".musicxml", ".xml", ".mxl", ".krn", ".abc")
#: Limits that keep a hostile or broken file from exhausting time or memory.
MAX_FILE_BYTES = 50_000_000
MAX_UNZIPPED_BYTES = 200_000_000
MAX_TRACKS = 1024
MAX_NOTES = 100_000
MAX_BEATS = 100_000.0          # about 14 hours at 120 beats per minute
#: The tempo of a score with no metronome mark that gives a number (quarter notes per minute).
DEFAULT_BPM = 120.0


class FileRejected(DataError):
    """A file that cannot be used; the message is a one-line reason."""


@dataclass
class Notes:
    """The sounding notes of one piece.

    ``pitch`` int (N,) MIDI numbers; ``start``/``end`` float (N,) beats; ``velocity`` int (N,)
    1-127; ``track`` int (N,) index into ``track_names`` (a MIDI instrument, a score part).
    ``beats`` (B,) beat starts in quarter notes from the file's meter (a 6/8 beat is a dotted
    quarter, a 2/2 beat a half note); ``downbeats`` (M,) bar starts. The tempo map is piecewise
    linear through (``map_beats``, ``map_seconds``) with ``seconds_per_beat`` from each point on.
    """

    source: str
    pitch: np.ndarray
    start: np.ndarray
    end: np.ndarray
    downbeats: np.ndarray
    map_beats: np.ndarray
    map_seconds: np.ndarray
    seconds_per_beat: np.ndarray
    velocity: np.ndarray
    track: np.ndarray
    track_names: list[str]
    beats: np.ndarray

    def seconds(self, beats: np.ndarray) -> np.ndarray:
        """Beats -> seconds through the tempo map (vectorised)."""
        k = np.searchsorted(self.map_beats, beats, side="right") - 1
        k = np.clip(k, 0, len(self.map_beats) - 1)
        return self.map_seconds[k] + (beats - self.map_beats[k]) * self.seconds_per_beat[k]


def read_notes(path: str | os.PathLike) -> Notes:
    """Read any supported file; the suffix (any letter case) chooses the reader."""
    path = Path(path)
    suffix = path.suffix.lower()
    try:
        size = path.stat().st_size
    except OSError as e:
        raise FileRejected(f"cannot read: {e.strerror}") from None
    if size == 0:
        raise FileRejected("empty file")
    if size > MAX_FILE_BYTES:
        raise FileRejected(f"file too large ({size / 1e6:.0f} MB > {MAX_FILE_BYTES / 1e6:.0f} MB)")
    if suffix in MIDI_SUFFIXES:
        notes = _read_midi(path)
    elif suffix in SCORE_SUFFIXES:
        notes = _read_score(path)
    else:
        raise FileRejected(f"unsupported file type: {suffix!r}")
    if len(notes.pitch) == 0:
        raise FileRejected("no notes")
    if notes.end.max() > MAX_BEATS:
        raise FileRejected(f"too long ({notes.end.max():.0f} beats > {MAX_BEATS:.0f})")
    return notes


def _read_midi(path: Path) -> Notes:
    from .._pretty_midi import pretty_midi

    with path.open("rb") as f:
        head = f.read(14)
    if head[:4] != b"MThd":
        raise FileRejected("not a MIDI file (no MThd header)")
    tracks = int.from_bytes(head[10:12], "big")
    if tracks > MAX_TRACKS:
        raise FileRejected(f"too many tracks ({tracks} > {MAX_TRACKS})")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pm = pretty_midi.PrettyMIDI(str(path))
    except Exception as e:  # mido and pretty_midi raise many kinds on broken files
        raise FileRejected(f"malformed MIDI: {_short(e)}") from None
    melodic = [inst for inst in pm.instruments if not inst.is_drum]
    n = sum(len(inst.notes) for inst in melodic)
    if n > MAX_NOTES:
        raise FileRejected(f"too many notes ({n} > {MAX_NOTES})")
    table = np.array([(note.pitch, note.start, note.end, note.velocity, k)
                      for k, inst in enumerate(melodic) for note in inst.notes], dtype=np.float64).reshape(-1, 5)
    change_s, qpm = pm.get_tempo_changes()
    if len(change_s) == 0:
        change_s, qpm = np.array([0.0]), np.array([120.0])
    seconds_per_beat = 60.0 / qpm
    map_beats = np.concatenate([[0.0], np.cumsum(np.diff(change_s) / seconds_per_beat[:-1])])
    to_beats = _inverse_map(change_s, map_beats, seconds_per_beat)
    downbeats = to_beats(np.asarray(pm.get_downbeats()))
    beats = to_beats(np.asarray(pm.get_beats()))
    return Notes(str(path), table[:, 0].astype(np.int16), to_beats(table[:, 1]), to_beats(table[:, 2]),
                 downbeats, map_beats, change_s.astype(np.float64), seconds_per_beat,
                 table[:, 3].astype(np.int16), table[:, 4].astype(np.int16),
                 [inst.name or f"track {k + 1}" for k, inst in enumerate(melodic)], beats)


def _inverse_map(change_s: np.ndarray, map_beats: np.ndarray, seconds_per_beat: np.ndarray):
    def to_beats(seconds: np.ndarray) -> np.ndarray:
        k = np.clip(np.searchsorted(change_s, seconds, side="right") - 1, 0, len(change_s) - 1)
        return map_beats[k] + (seconds - change_s[k]) / seconds_per_beat[k]
    return to_beats


def _read_score(path: Path) -> Notes:
    from music21 import converter, note, stream

    _check_xml(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            score = converter.parse(str(path), forceSource=True)
            score.stripTies(inPlace=True)
    except Exception as e:  # music21 raises many kinds on broken files
        raise FileRejected(f"malformed score: {_short(e)}") from None
    if isinstance(score, stream.Opus):   # an ABC file of several tunes: one work's voices, or a tune book
        titles = {s.metadata.title if s.metadata else None for s in score.scores}
        if len(titles) > 1 or None in titles:
            raise FileRejected(f"a collection of {len(score.scores)} pieces (one piece per file is read; "
                               "split it, e.g. one tune per .abc file)")
        score = score.mergeScores()   # one title: the tunes are the voices of one piece (a Josquin chanson)
    parts = list(score.parts) if isinstance(score, stream.Score) and score.parts else [score]
    rows = []
    for k, part in enumerate(parts):
        for el in part.flatten().notes:
            length = float(el.quarterLength)
            if length <= 0 or isinstance(el, note.Unpitched):
                continue
            start = float(el.offset)
            velocity = el.volume.velocity if el.volume.velocity is not None else 64
            rows.extend((p.midi, start, start + length, velocity, k) for p in el.pitches)
            if len(rows) > MAX_NOTES:
                raise FileRejected(f"too many notes (> {MAX_NOTES})")
    table = np.array(rows, dtype=np.float64).reshape(-1, 5)
    measures = list(parts[0].getElementsByClass(stream.Measure))
    downbeats = np.array(sorted({float(m.offset) for m in measures}))
    map_beats, seconds_per_beat = [], []
    for start, _, mark in score.metronomeMarkBoundaries():
        bpm = mark.getQuarterBPM()   # None for a mark without a number ("dotted half =")
        if bpm is None or not bpm > 0:
            if seconds_per_beat:
                continue   # the tempo before it holds
            bpm = DEFAULT_BPM
        map_beats.append(float(start))
        seconds_per_beat.append(60.0 / float(bpm))
    if not map_beats:
        map_beats, seconds_per_beat = [0.0], [60.0 / DEFAULT_BPM]
    mb, spb = np.array(map_beats), np.array(seconds_per_beat)
    map_seconds = np.concatenate([[0.0], np.cumsum(np.diff(mb) * spb[:-1])])
    names = [part.partName or f"part {k + 1}" for k, part in enumerate(parts)]
    return Notes(str(path), table[:, 0].astype(np.int16), table[:, 1], table[:, 2], downbeats, mb,
                 map_seconds, spb, table[:, 3].astype(np.int16), table[:, 4].astype(np.int16), names,
                 _score_beats(measures))


def _score_beats(measures: list) -> np.ndarray:
    """Beat starts (quarter notes) from each bar's time signature (music21's beat: a 6/8 beat is a
    dotted quarter). A short first bar (an anacrusis) counts its beats back from the next bar line."""
    beats: list[np.ndarray] = []
    for i, m in enumerate(measures):
        ts = m.timeSignature or m.getContextByClass("TimeSignature")
        beat = float(ts.beatDuration.quarterLength) if ts is not None else 1.0
        start, length = float(m.offset), float(m.duration.quarterLength)
        if length <= 0:
            continue
        if i == 0 and ts is not None and length < float(ts.barDuration.quarterLength):
            first = start + length - beat * np.floor(length / beat + 1e-9)
            beats.append(np.arange(first, start + length - 1e-9, beat))
            if first > start + 1e-9:
                beats[-1] = np.concatenate([[start], beats[-1]])
        else:
            beats.append(np.arange(start, start + length - 1e-9, beat))
    return np.concatenate(beats) if beats else np.zeros(0)


def _check_xml(path: Path) -> None:
    """Refuse XML that declares entities (entity-expansion bombs) or refers to external ones,
    and oversized zip members.

    Python's expat resolves no external entities but does expand internal ones; MusicXML
    has no use for entity declarations, so a file that declares any is refused unread:
    defusedxml's parser reads the prolog (in any encoding) up to the root element's start.
    """
    suffix = path.suffix.lower()
    if suffix == ".mxl":
        try:
            with zipfile.ZipFile(path) as z:
                total = sum(info.file_size for info in z.infolist())
                if total > MAX_UNZIPPED_BYTES:
                    raise FileRejected(f"compressed MusicXML too large (unpacks to {total / 1e6:.0f} MB "
                                       f"> {MAX_UNZIPPED_BYTES / 1e6:.0f} MB)")
                texts = [z.read(info) for info in z.infolist() if info.filename.lower().endswith((".xml", ".musicxml"))]
        except zipfile.BadZipFile:
            raise FileRejected("malformed MXL: not a zip archive") from None
    elif suffix in (".xml", ".musicxml"):
        texts = [path.read_bytes()]
    else:
        return
    for text in texts:
        try:
            # a DOCTYPE naming MusicXML's DTD is usual (expat does not fetch it); entities are not
            defusedxml.sax.parseString(text, _StopAtRoot(), forbid_external=False)
        except _RootReached:
            continue
        except DefusedXmlException:
            raise FileRejected("XML declares entities (refused: possible entity-expansion attack)") from None
        except xml.sax.SAXException as e:
            raise FileRejected(f"malformed score: {_short(e)}") from None


class _RootReached(Exception):
    """Raised at the root element's start: entities can only be declared before it."""


class _StopAtRoot(xml.sax.handler.ContentHandler):
    def startElement(self, name: str, attrs: object) -> None:
        raise _RootReached


def _short(e: Exception) -> str:
    text = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return text[:160]


