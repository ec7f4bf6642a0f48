"""Export the bundled sample corpus: the first 40 Bach chorales of music21's corpus as MIDI.

    python data/make_sample_corpus.py [--count 40] [--out data/midi]

Deterministic: the chorales are taken in the sorted order of music21's corpus paths.
MIDI is written by music21's own writer, one file per chorale, named after its BWV number.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from music21 import converter

from chordvae.chords.corpus import default_sources
from chordvae.fileio import atomic_path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=40)
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "midi")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for path in default_sources()[:args.count]:
        target = args.out / f"{path.stem}.mid"
        with atomic_path(target) as tmp:
            converter.parse(path).write("midi", fp=tmp)
        print(target)


if __name__ == "__main__":
    main()
