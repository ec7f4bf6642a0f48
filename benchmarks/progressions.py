"""Progression data (default: pop909-train): how much of it there is, how long it takes to read,
and what a root would add to the beat frames.

Reads the sources (as ``chords`` takes them: folders, ``NAME=PATH``, ``m21:COMPOSER``) through
the corpus engine (recognised chords, ``jobs`` processes): cold (an empty temporary cache) when
``--cold`` is given, then warm (the same files again, from that cache; without ``--cold`` the
user's cache, filled first if needed). Prints the pieces, beats, bars and their lengths, the
windows (``--bars`` bars, hop one bar) and held-out tiles of the default split (seed 0), their
padding and memory, and for the root: how often a beat's root is not the one most often found
with its (pitch classes, bass) in the corpus, and the conditional entropy
H(root | pitch classes, bass) in bits per chord beat. The default folder is found beside the
repository (``../shared/datasets``); from elsewhere, name it.

    python benchmarks/progressions.py [SOURCES...] [--limit N] [--cold] [--jobs 2] [--bars 4]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from chordvae.chords.pcset import rows_to_masks
from chordvae.chords.sources import resolve
from chordvae.errors import ChordVAEError
from chordvae.progressions.corpus import ProgressionCorpus, ProgressionOptions, read_progressions
from chordvae.progressions.windows import held_out, split, training_windows
from chord_eval import SHARED  # benchmarks/ is on the path of a script run from it


def timed_read(files: list[str], options: ProgressionOptions) -> tuple[ProgressionCorpus, float]:
    start = time.perf_counter()
    corpus = read_progressions(files, options, progress=False)
    return corpus, time.perf_counter() - start


def root_information(corpus: ProgressionCorpus) -> tuple[float, float, int]:
    """Over the chord beats: the share whose root is not the most frequent root of its (pitch
    classes, bass), H(root | pitch classes, bass) in bits, and how many beats."""
    frames = corpus.frames
    chord = frames[:, corpus.layout.no_chord] == 0
    key = rows_to_masks(frames[chord, :12]) * 12 + frames[chord, 12:24].argmax(1)
    root = frames[chord, 24:36].argmax(1)
    pairs, counts = np.unique(np.stack([key, root]), axis=1, return_counts=True)
    _, group = np.unique(pairs[0], return_inverse=True)
    totals = np.bincount(group, weights=counts)
    best = np.zeros(len(totals))
    np.maximum.at(best, group, counts)
    entropy = -(counts * np.log2(counts / totals[group])).sum() / counts.sum()
    return 1 - best.sum() / counts.sum(), float(entropy), int(counts.sum())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="*", default=[str(SHARED / "pop909-train")],
                        help="as chords takes them (default: pop909-train)")
    parser.add_argument("--limit", type=int, help="the first N files only")
    parser.add_argument("--cold", action="store_true", help="time a cold read first (empty temporary cache)")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--bars", type=int, default=4)
    args = parser.parse_args()
    try:
        files = [str(f.path) for f in resolve(args.sources)][:args.limit]
    except ChordVAEError as e:
        parser.exit(1, f"error: {e}\n")
    options = ProgressionOptions(bars=args.bars, jobs=args.jobs, root=True)
    print(f"{len(files)} files from {' '.join(args.sources)}, jobs {args.jobs}")
    with tempfile.TemporaryDirectory() as cache:
        if args.cold:
            os.environ["CHORDVAE_CACHE"] = cache
            corpus, seconds = timed_read(files, options)
            print(f"cold read: {seconds:.1f} s ({len(files) / seconds:.1f} files/s)")
        else:
            read_progressions(files, options, progress=False)     # fills the cache if it is empty
        corpus, seconds = timed_read(files, options)
        print(f"warm read: {seconds:.2f} s ({len(files) / seconds:.0f} files/s)")
    print(corpus.summary)
    starts = np.flatnonzero(corpus.downbeat)
    lengths = np.bincount(np.diff(starts)[np.diff(np.searchsorted(corpus.offsets, starts, "right")) == 0])
    print(f"pieces {corpus.n_pieces}, beats {corpus.n_beats} "
          f"({corpus.frames[:, -1].mean():.1%} without a chord), pickups {int((corpus.lead > 0).sum())}")
    print("bar lengths (beats: bars): " + ", ".join(f"{k}: {n}" for k, n in enumerate(lengths) if n))
    every = training_windows(corpus, bars=args.bars)
    print(f"windows of {args.bars} bars, T = {every.length}: {len(every)} over all pieces")
    start = time.perf_counter()
    train, test = split(corpus, options, seed=0)
    seconds = time.perf_counter() - start
    held = int(held_out(corpus.n_pieces, 0).sum())
    print(f"split (seed 0, {seconds:.2f} s): {len(train)} training windows ({train.mask.float().mean():.1%} of "
          f"positions real) from {corpus.n_pieces - held} pieces; {len(test)} tiles over {held} held-out pieces "
          f"({int(test.mask.sum())} beats)")
    size = train.frames.element_size() * train.frames[0].numel() / 2 ** 20
    print(f"training frames float32: {size * len(train):.0f} MB (transpose none), "
          f"{12 * size * len(train):.0f} MB (transpose all)")
    wrong, entropy, beats = root_information(corpus)
    print(f"root given pitch classes and bass: {wrong:.2%} of {beats} chord beats have another root than the "
          f"most frequent one for their (set, bass); H(root | set, bass) = {entropy:.4f} bits")


if __name__ == "__main__":
    main()
