"""Export the bundled sample corpora: 40 Bach chorales (data/midi/bach) and 20 pop songs (data/midi/pop).

    python data/make_sample_corpus.py [--count 40] [--out data/midi/bach] [--pop DIR [--pop-count 20]]

Deterministic: the chorales are the first of music21's corpus paths in sorted order, written as
MIDI by music21's own writer, one file per chorale named after its BWV number. ``--pop`` copies
the ``.mid`` files of the lowest-numbered song folders of a POP909 folder (e.g. pop909-dev)
unchanged, with its LICENSE, into data/midi/pop.
"""
from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from music21 import converter

from chordvae.chords.sources import default_sources
from chordvae.fileio import atomic_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "midi" / "bach")
    parser.add_argument("--pop", type=Path, default=None, help="a POP909 folder (song folders NNN/NNN.mid)")
    parser.add_argument("--pop-count", type=int, default=20)
    args = parser.parse_args()
    if args.pop is not None:
        copy_pop(args.pop, args.pop_count, Path(__file__).resolve().parent / "midi" / "pop")
    args.out.mkdir(parents=True, exist_ok=True)
    for path in default_sources()[:args.count]:
        target = args.out / f"{path.stem}.mid"
        with atomic_path(target) as tmp:
            converter.parse(path).write("midi", fp=tmp)
        print(target)


def copy_pop(source: Path, count: int, out: Path) -> None:
    """Copy the first ``count`` songs' MIDI (sorted by song number) and the licence to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    songs = sorted(d for d in source.iterdir() if d.is_dir() and (d / f"{d.name}.mid").is_file())
    for song in songs[:count]:
        shutil.copyfile(song / f"{song.name}.mid", out / f"{song.name}.mid")
        print(out / f"{song.name}.mid")
    shutil.copyfile(source / "LICENSE", out / "LICENSE")


if __name__ == "__main__":
    main()
