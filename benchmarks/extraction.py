"""Chord extraction speed: `chordvae extract` against a plain music21 loop, each run a fresh process.

Every timed run is a new process, as a user's command is: Python's start-up, the imports and
(for chordvae) the start of its worker pool are paid on every repeat. For each corpus (music21's
Bach chorales as MusicXML, and the bundled MIDI chorales in data/midi/bach):
- baseline: one process that, per file, runs music21's ``converter.parse``, ``chordify()`` (what
  ``--segment onset`` does) and ``analyze("key")``, and names each distinct pitch-class set
  once (``pitchedCommonName``). It leaves out what chordvae does beyond that: tie stripping,
  merging identical neighbours, the min-notes / min-duration filters, seconds from the tempo
  map, and writing the JSON Lines file;
- cold, 1 job / cold, N jobs: ``chordvae extract --segment onset`` with an empty cache;
- warm: the same command again, every file served from the cache.
Runs are interleaved and repeated; medians of files per second and the ratios are printed.
``--keys`` also counts the files on which chordvae's key analysis gives music21's answer.

    python benchmarks/extraction.py [--limit N] [--repeats 3] [--keys]
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / "data" / "midi" / "bach"
REPO = Path(__file__).resolve().parents[1]


def baseline_process(files: list[str]) -> None:
    """The baseline's work (run in its own process by :func:`baseline`)."""
    from music21 import converter

    names: dict[tuple[int, ...], str] = {}
    for f in files:
        score = converter.parse(f, forceSource=True)
        score.analyze("key")
        for c in score.chordify().recurse().getElementsByClass("Chord"):
            pcs = tuple(sorted({p.pitchClass for p in c.pitches}))
            if pcs not in names:
                names[pcs] = c.pitchedCommonName


def _timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def baseline(files: list[Path]) -> float:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return _timed([sys.executable, __file__, "--baseline-process", *map(str, files)], env)


def ours(files: list[Path], jobs: int, cache: str, segment: str, warm: bool) -> float:
    """Seconds of one ``chordvae extract`` call (after an untimed one that fills the cache if ``warm``)."""
    env = {**os.environ, "CHORDVAE_CACHE": cache,
           "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "chordvae", "extract", *map(str, files), "-o", f"{out}/chords.jsonl",
                   "--segment", segment, "--jobs", str(jobs), "-q"]
        if warm:
            _timed(command, env)
        return _timed(command, env)


def key_agreement(files: list[Path]) -> tuple[int, int]:
    """(files where chordvae's find_key equals music21's analyze("key"), files)."""
    from music21 import converter

    from chordvae.chords.extract import find_key
    from chordvae.chords.readers import read_notes

    agree = 0
    for f in files:
        expected = converter.parse(str(f)).analyze("key")
        agree += find_key(read_notes(f)) == (expected.tonic.pitchClass, expected.mode)
    return agree, len(files)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="files per corpus (default: all)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--segment", default="onset", help="chordvae's segmentation (onset is what chordify does)")
    parser.add_argument("--keys", action="store_true", help="also check the key analysis against music21's")
    parser.add_argument("--baseline-process", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.baseline_process:
        baseline_process(args.baseline_process)
        return
    from chordvae.chords.sources import default_sources, find_files

    jobs = os.cpu_count() or 1
    corpora = {"Bach chorales (MusicXML, music21 corpus)": default_sources(),
               "data/midi/bach (MIDI)": find_files([DATA])}
    print(f"{jobs} cores; {args.repeats} repeats, medians; every run a fresh process; "
          f"chordvae with --segment {args.segment}\n")
    for name, files in corpora.items():
        files = files[:args.limit]
        times: dict[str, list[float]] = {k: [] for k in ("baseline", "cold, 1 job", f"cold, {jobs} jobs", "warm")}
        for r in range(args.repeats):
            with tempfile.TemporaryDirectory() as c1, tempfile.TemporaryDirectory() as c2, \
                    tempfile.TemporaryDirectory() as c3:
                runs = [("baseline", lambda: baseline(files)),
                        ("cold, 1 job", lambda: ours(files, 1, c1, args.segment, warm=False)),
                        (f"cold, {jobs} jobs", lambda: ours(files, jobs, c2, args.segment, warm=False)),
                        ("warm", lambda: ours(files, jobs, c3, args.segment, warm=True))]
                for label, run in (runs if r % 2 == 0 else runs[::-1]):
                    times[label].append(run())
        base = statistics.median(times["baseline"])
        print(f"{name}: {len(files)} files")
        print(f"  {'':18s} {'seconds':>9s} {'files/s':>9s} {'vs baseline':>12s}")
        for label, values in times.items():
            t = statistics.median(values)
            print(f"  {label:18s} {t:9.3f} {len(files) / t:9.1f} {base / t:11.1f}x")
        if args.keys:
            agree, n = key_agreement(files)
            print(f"  key analysis: chordvae's find_key gives music21's analyze('key') answer on {agree} of {n} files")
        print()


if __name__ == "__main__":
    main()
