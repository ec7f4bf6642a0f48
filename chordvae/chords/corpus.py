"""The corpus engine: many files -> their chords, in parallel, cached, bad files skipped.

Each file is parsed once per content, segmentation and chordvae version: results (and
rejections) are cached as small JSON files, so a second run over a corpus parses nothing.
Files are always parsed in worker processes (one with ``jobs=1``) whose address space is
limited to ``MAX_WORKER_BYTES``, so that no file can exhaust the memory of the caller.
"""
from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import signal
import threading
import time
from collections import Counter
from contextlib import closing
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable, Sequence

from tqdm.auto import tqdm

from .. import __version__
from ..cache import cache_dir, store
from ..errors import DataError
from ..fileio import sha256_file, write_text
from .events import ChordEvent
from .extract import PieceChords, extract_file
from .pcset import from_mask, to_mask
from .segment import Segmentation
from .sources import SourceFile, resolve
from .workers import WorkerDied, run_tasks

#: Address space of a parsing worker: music21 peaks at 0.38 GB on the Grosse Fuge (9,700 notes),
#: so a file within MAX_NOTES fits; a hostile one ends with MemoryError, not the machine's memory.
MAX_WORKER_BYTES = 4 << 30


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


def read_corpus(sources: Sequence[str | Path], seg: Segmentation, jobs: int | None = None,
                strict: bool = False, progress: bool = True, use_cache: bool = True,
                time_limit: float = 60.0, report: Callable[[str], None] | None = None) -> Corpus:
    """Read every music file of ``sources`` (named sources, files or folders, see
    :mod:`~chordvae.chords.sources`; each piece knows its corpus) with ``jobs`` worker processes
    (default: all cores).

    Unreadable files are skipped with a reason, or with ``strict`` the first one found raises
    DataError (the other workers are stopped at once). ``report``, when given, receives one
    line per skipped file as it is found. Raises DataError when no chord remains.
    ``time_limit`` is per file, in seconds.
    """
    files = resolve(sources)
    settings = f"|{seg.cache_key()}|chordvae {__version__}|{_code_digest()}"
    keys = [hashlib.sha256((file_digest(f.path) + settings).encode()).hexdigest() for f in files]
    results: list[PieceChords | Skip | None] = [_cache_get(k, f) if use_cache else None
                                               for k, f in zip(keys, files)]
    todo = [i for i, r in enumerate(results) if r is None]
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(todo) or 1))
    bar = tqdm(total=len(files), initial=len(files) - len(todo), desc="reading corpus", unit="file",
               disable=None if progress else True, leave=False)  # None: off when not a terminal

    def skip(i: int, result: Skip) -> None:
        if strict:
            raise DataError(f"{files[i].path}: {result.reason}")
        if report is not None:
            with bar.external_write_mode():
                report(f"skipped {_one_line(str(files[i].path))}: {result.reason}")

    # forkserver: workers fork from a clean server that has imported the readers once
    # (plain fork could inherit torch's thread pools; spawn would import music21 per worker)
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload([__name__])
    tasks = [(str(files[i].path), files[i].corpus, seg, time_limit) for i in todo]
    with bar, closing(run_tasks(_extract, tasks, jobs, context, address_space=MAX_WORKER_BYTES)) as run:
        for i, result in enumerate(results):
            if isinstance(result, Skip):
                skip(i, result)
        for k, result in run:
            i = todo[k]
            if isinstance(result, WorkerDied):
                result = Skip(str(result), lasting=False)
            results[i] = result
            if isinstance(result, PieceChords) or result.lasting:
                _cache_put(keys[i], result)
            bar.update()
            if isinstance(result, Skip):
                skip(i, result)
    pieces = [r for r in results if isinstance(r, PieceChords)]
    skipped = [(str(f.path), r.reason) for f, r in zip(files, results) if isinstance(r, Skip)]
    corpus = Corpus(pieces, skipped)
    if corpus.n_events == 0:
        first = f" (first: {Path(skipped[0][0]).name}: {skipped[0][1]})" if skipped else ""
        raise DataError(f"no usable chords in {len(files)} files: {corpus.summary()}{first}")
    return corpus


class _Timeout(Exception):
    pass


def _extract(path: str, corpus: str, seg: Segmentation, time_limit: float) -> PieceChords | Skip:
    """Run in a worker: the file's chords (as a piece of ``corpus``), or why it cannot be used.

    Test hooks: with ``CHORDVAE_TEST_DIE_ON=<text>`` set, a worker given a path containing
    ``<text>`` dies at once (``os._exit(1)``), as on a segfault; with ``CHORDVAE_TEST_HANG_ON``,
    it sleeps instead of reading, as on a file that takes a parser hours."""
    if (die_on := os.environ.get("CHORDVAE_TEST_DIE_ON")) and die_on in path:
        os._exit(1)
    hang = (hang_on := os.environ.get("CHORDVAE_TEST_HANG_ON")) is not None and hang_on in path
    alarm = threading.current_thread() is threading.main_thread() and time_limit > 0
    if alarm:
        def on_alarm(signum, frame):
            raise _Timeout()
        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, time_limit)
    try:
        if hang:
            time.sleep(3600)
        return extract_file(path, seg, corpus)
    except _Timeout:
        return Skip(f"timed out after {time_limit:g}s", lasting=False)
    except DataError as e:
        return Skip(str(e))
    except MemoryError:
        return Skip(f"too large to read in {MAX_WORKER_BYTES / (1 << 30):g} GiB of memory")
    except Exception as e:  # a library bug on a strange file must not end the corpus
        return Skip(f"unexpected error: {type(e).__name__}: {str(e).strip()[:160]}".splitlines()[0])
    finally:
        if alarm:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


_digests: dict[tuple, str] = {}


def file_digest(path: str | os.PathLike) -> str:
    """Hex sha256 of the file's content, computed once per process for an unchanged file (same
    path, size, modification time and inode): the cache key and the run's fingerprint of a
    corpus share one reading of each file."""
    st = os.stat(path)
    key = (os.fspath(path), st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)
    if key not in _digests:
        _digests[key] = sha256_file(path)
    return _digests[key]


@lru_cache(maxsize=1)
def _code_digest() -> str:
    """A digest of the chord pipeline's own source (this folder's modules): a cached result is
    never reused by code that would compute it differently, even within one version."""
    digest = hashlib.sha256()
    for module in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(module.read_bytes())
    return digest.hexdigest()[:16]


def _cache_get(key: str, file: SourceFile) -> PieceChords | Skip | None:
    """The cached result for ``key`` (as ``file``'s piece), or None; corrupt entries count as missing."""
    try:
        d = json.loads((cache_dir("chords") / f"{key}.json").read_text())
        if "reason" in d:
            return Skip(str(d["reason"]))
        events = []
        for sb, eb, ss, es, code, bass, root, quality, sounding, confidence in d["events"]:
            events.append(ChordEvent(str(file.path), sb, eb, ss, es, from_mask(code), bass, root, quality,
                                     from_mask(sounding), confidence))
        piece = PieceChords(str(file.path), events, int(d["key_tonic"]), str(d["key_mode"]), file.corpus)
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
    store("chords", f"{key}.json", json.dumps(d, separators=(",", ":")))
