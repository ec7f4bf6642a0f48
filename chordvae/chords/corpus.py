"""The corpus engine: many files -> their chords, in parallel, cached, bad files skipped.

Each file is parsed once per content, segmentation and chordvae version: results (and
rejections) are cached as small JSON files, so a second run over a corpus parses nothing.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
import threading
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

from tqdm.auto import tqdm

from .. import __version__
from ..cache import cache_dir
from ..errors import DataError
from ..fileio import write_text
from .events import ChordEvent
from .extract import MIDI_SUFFIXES, SCORE_SUFFIXES, PieceChords, extract_file
from .pcset import from_mask, to_mask
from .segment import Segmentation
from .workers import WorkerDied, run_tasks

SUFFIXES = MIDI_SUFFIXES + SCORE_SUFFIXES


@dataclass(frozen=True)
class Skip:
    """Why a file cannot be used; ``lasting`` reasons (the file's content) are cached,
    passing ones (a time-out, a crashed worker) are not."""

    reason: str
    lasting: bool = True


@dataclass
class Corpus:
    """The pieces that were read (in file order) and the files skipped, with their reasons."""

    pieces: list[PieceChords]
    skipped: list[tuple[str, str]] = field(default_factory=list)

    @property
    def n_events(self) -> int:
        return sum(len(p.events) for p in self.pieces)

    def summary(self) -> str:
        """One line: files used, files skipped by reason, chords extracted."""
        line = f"{len(self.pieces)} files used, {len(self.skipped)} skipped, {self.n_events} chords"
        if self.skipped:
            reasons = Counter(reason_kind(reason) for _, reason in self.skipped)
            line += " (skipped: " + ", ".join(f"{n} {r}" for r, n in reasons.most_common()) + ")"
        return line

    def write_skipped(self, path: str | Path) -> None:
        """One ``path<TAB>reason`` line per skipped file (atomic); a tab, newline or carriage
        return inside a path is written as ``\\t``, ``\\n``, ``\\r``."""
        write_text(path, "".join(f"{_one_line(p)}\t{_one_line(r)}\n" for p, r in self.skipped))

    def write_jsonl(self, path: str | Path) -> None:
        """Every chord event as one JSON object per line, with its piece's corpus name (atomic)."""
        write_text(path, "".join(json.dumps({**e.to_json(), "corpus": p.corpus}) + "\n"
                                 for p in self.pieces for e in p.events))


def reason_kind(reason: str) -> str:
    """What a skip reason says without its details (the text before its first ``:`` or ``(``),
    e.g. ``"malformed MIDI"`` for ``"malformed MIDI: bad header"``: how the summary groups them."""
    return reason.split(":", 1)[0].split("(", 1)[0].strip()


def _one_line(text: str) -> str:
    return text.replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def find_files(sources: Sequence[str | Path]) -> list[Path]:
    """Music files among ``sources`` (files, or folders searched recursively), sorted per source."""
    files: list[Path] = []
    for source in map(Path, sources):
        if source.is_dir():
            found = sorted(p for p in source.rglob("*") if p.is_file() and p.suffix.lower() in SUFFIXES)
            if not found:
                raise DataError(f"no MIDI or score files in {source} (looked for {', '.join(SUFFIXES)})")
            files.extend(found)
        elif source.is_file():
            files.append(source)
        else:
            raise DataError(f"{source} does not exist")
    return files


def default_sources() -> list[Path]:
    """The Bach chorales in music21's corpus (MusicXML), about 400 files."""
    from music21 import corpus

    return sorted(p for p in corpus.getComposer("bach") if p.suffix == ".mxl" and "bwv" in p.name)


def read_corpus(sources: Sequence[str | Path], seg: Segmentation, jobs: int | None = None,
                strict: bool = False, progress: bool = True, use_cache: bool = True,
                time_limit: float = 60.0, report: Callable[[str], None] | None = None) -> Corpus:
    """Read every music file in ``sources`` with ``jobs`` processes (default: all cores).

    Unreadable files are skipped with a reason, or with ``strict`` the first one found raises
    DataError (the other workers are stopped at once). ``report``, when given, receives one
    line per skipped file as it is found. Raises DataError when no chord remains.
    ``time_limit`` is per file, in seconds.
    """
    files = find_files(sources)
    if not files:
        raise DataError("no music files given")
    settings = f"|{seg.cache_key()}|chordvae {__version__}|{_code_digest()}"
    keys = [_cache_key(f, settings) for f in files]
    results: list[PieceChords | Skip | None] = [_cache_get(k, f) if use_cache else None
                                               for k, f in zip(keys, files)]
    todo = [i for i, r in enumerate(results) if r is None]
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(todo) or 1))
    bar = tqdm(total=len(files), initial=len(files) - len(todo), desc="reading corpus", unit="file",
               disable=None if progress else True, leave=False)  # None: off when not a terminal

    def skip(i: int, result: Skip) -> None:
        if strict:
            raise DataError(f"{files[i]}: {result.reason}")
        if report is not None:
            with bar.external_write_mode():
                report(f"skipped {_one_line(str(files[i]))}: {result.reason}")

    with bar, closing(_run(files, todo, seg, jobs, time_limit)) as run:
        for i, result in enumerate(results):
            if isinstance(result, Skip):
                skip(i, result)
        for i, result in run:
            results[i] = result
            if isinstance(result, PieceChords) or result.lasting:
                _cache_put(keys[i], result)
            bar.update()
            if isinstance(result, Skip):
                skip(i, result)
    pieces = [r for r in results if isinstance(r, PieceChords)]
    skipped = [(str(f), r.reason) for f, r in zip(files, results) if isinstance(r, Skip)]
    corpus = Corpus(pieces, skipped)
    if corpus.n_events == 0:
        first = f" (first: {Path(skipped[0][0]).name}: {skipped[0][1]})" if skipped else ""
        raise DataError(f"no usable chords in {len(files)} files: {corpus.summary()}{first}")
    return corpus


def _run(files: list[Path], todo: list[int], seg: Segmentation, jobs: int, time_limit: float):
    """Yield ``(index, PieceChords | Skip)`` for the files in ``todo``, as they finish."""
    if jobs == 1:
        for i in todo:
            yield i, _extract(str(files[i]), seg, time_limit)
        return
    # forkserver: workers fork from a clean server that has imported the readers once
    # (plain fork could inherit torch's thread pools; spawn would import music21 per worker)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    tasks = [(str(files[i]), seg, time_limit) for i in todo]
    for k, result in run_tasks(_work, tasks, jobs, context):
        yield todo[k], Skip(str(result), lasting=False) if isinstance(result, WorkerDied) else result


def _work(path: str, seg: Segmentation, time_limit: float) -> PieceChords | Skip:
    """:func:`_extract` in a pool worker. Test hook: with ``CHORDVAE_TEST_DIE_ON=<text>`` set,
    a worker given a path containing ``<text>`` dies at once (``os._exit(1)``), as on a segfault."""
    die_on = os.environ.get("CHORDVAE_TEST_DIE_ON")
    if die_on and die_on in path:
        os._exit(1)
    return _extract(path, seg, time_limit)


class _Timeout(Exception):
    pass


def _extract(path: str, seg: Segmentation, time_limit: float) -> PieceChords | Skip:
    """Run in a worker: the file's chords, or why it cannot be used."""
    alarm = threading.current_thread() is threading.main_thread() and time_limit > 0
    if alarm:
        def on_alarm(signum, frame):
            raise _Timeout()
        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, time_limit)
    try:
        return extract_file(path, seg)
    except _Timeout:
        return Skip(f"timed out after {time_limit:g}s", lasting=False)
    except DataError as e:
        return Skip(str(e))
    except Exception as e:  # a library bug on a strange file must not end the corpus
        return Skip(f"unexpected error: {type(e).__name__}: {str(e).strip()[:160]}".splitlines()[0])
    finally:
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


def _cache_key(path: Path, settings: str) -> str:
    """sha256 of the file's content and ``settings`` (segmentation, version, code digest)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    digest.update(settings.encode())
    return digest.hexdigest()


@lru_cache(maxsize=1)
def _code_digest() -> str:
    """A digest of the chord pipeline's own source (this folder's modules): a cached result is
    never reused by code that would compute it differently, even within one version."""
    digest = hashlib.sha256()
    for module in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(module.read_bytes())
    return digest.hexdigest()[:16]


def _cache_get(key: str, path: Path) -> PieceChords | Skip | None:
    """The cached result for ``key`` (with ``path`` as its source), or None; corrupt entries count as missing."""
    entry = cache_dir("chords") / f"{key}.json"
    try:
        d = json.loads(entry.read_text())
        if "reason" in d:
            return Skip(str(d["reason"]))
        events = []
        for sb, eb, ss, es, code, bass, root, quality, sounding, confidence in d["events"]:
            events.append(ChordEvent(str(path), sb, eb, ss, es, from_mask(code), bass, root, quality,
                                     from_mask(sounding), confidence))
        piece = PieceChords(str(path), events, int(d["key_tonic"]), str(d["key_mode"]))
        if "beats" in d:
            piece.beats, piece.downbeats = tuple(map(float, d["beats"])), tuple(map(int, d["downbeats"]))
        return piece
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _cache_put(key: str, result: PieceChords | Skip) -> None:
    if isinstance(result, Skip):
        d: dict = {"reason": result.reason}
    else:
        d = {"key_tonic": result.key_tonic, "key_mode": result.key_mode,
             "events": [[e.start_beats, e.end_beats, e.start_s, e.end_s, to_mask(e.pitch_classes), e.bass,
                         e.root, e.quality, to_mask(e.sounding if e.sounding is not None else e.pitch_classes),
                         e.confidence] for e in result.events]}
        if result.beats is not None:
            d["beats"], d["downbeats"] = result.beats, result.downbeats
    write_text(cache_dir("chords") / f"{key}.json", json.dumps(d, separators=(",", ":")))
