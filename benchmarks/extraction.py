"""Chord extraction speed: chordvae's corpus engine against a naive music21 loop, in one run.

For each corpus (music21's Bach chorales as MusicXML, and the bundled MIDI chorales in data/midi/bach):
- baseline: a sequential loop of music21 ``converter.parse`` + ``chordify()`` per file;
- cold, 1 job / cold, all jobs: chordvae with an empty cache;
- warm: chordvae again, everything served from the cache.
Runs are interleaved and repeated; medians of files per second and the ratios are printed.

    python benchmarks/extraction.py [--limit N] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

from music21 import converter

from chordvae.chords.corpus import default_sources, find_files, read_corpus
from chordvae.chords.segment import Segmentation

DATA = Path(__file__).resolve().parents[1] / "data" / "midi" / "bach"


def baseline(files: list[Path]) -> float:
    start = time.perf_counter()
    for f in files:
        converter.parse(str(f), forceSource=True).chordify()
    return time.perf_counter() - start


def ours(files: list[Path], jobs: int, cache: str, warm: bool) -> float:
    os.environ["CHORDVAE_CACHE"] = cache
    if warm:
        read_corpus(files, Segmentation(), jobs=jobs, progress=False)   # make sure it is filled
    start = time.perf_counter()
    read_corpus(files, Segmentation(), jobs=jobs, progress=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=None, help="files per corpus (default: all)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    jobs = os.cpu_count() or 1
    corpora = {"Bach chorales (MusicXML, music21 corpus)": default_sources(),
               "data/midi/bach (MIDI)": find_files([DATA])}
    print(f"{jobs} cores; {args.repeats} repeats, medians\n")
    for name, files in corpora.items():
        files = files[:args.limit]
        times: dict[str, list[float]] = {k: [] for k in ("baseline", "cold, 1 job", f"cold, {jobs} jobs", "warm")}
        for r in range(args.repeats):
            with tempfile.TemporaryDirectory() as c1, tempfile.TemporaryDirectory() as c2, \
                    tempfile.TemporaryDirectory() as c3:
                runs = [("baseline", lambda: baseline(files)),
                        ("cold, 1 job", lambda: ours(files, 1, c1, warm=False)),
                        (f"cold, {jobs} jobs", lambda: ours(files, jobs, c2, warm=False)),
                        ("warm", lambda: ours(files, jobs, c3, warm=True))]
                for label, run in (runs if r % 2 == 0 else runs[::-1]):
                    times[label].append(run())
        base = statistics.median(times["baseline"])
        print(f"{name}: {len(files)} files")
        print(f"  {'':18s} {'seconds':>9s} {'files/s':>9s} {'vs baseline':>12s}")
        for label, values in times.items():
            t = statistics.median(values)
            print(f"  {label:18s} {t:9.3f} {len(files) / t:9.1f} {base / t:11.1f}x")
        print()


if __name__ == "__main__":
    main()
