"""Named sources: which music files make up which corpus.

A source is written as:

- ``NAME=SOURCE``: every file of SOURCE (any of the forms below) belongs to the corpus NAME;
- ``m21:COMPOSER``: music21's corpus files by that composer with a supported suffix, corpus COMPOSER;
- a folder: a file inside one of its immediate subfolders belongs to the corpus named after that
  subfolder (``data/midi/bach/x.mid`` -> ``bach``), a file directly in it to the folder's name;
- a file: the corpus named after the file's stem.

Sources that share a name form one corpus. No source at all: music21's Bach chorales, corpus
``bach``. A file named by two sources is read once, for the first. A spec is read as
``NAME=SOURCE`` when the text before its first ``=`` is a name (no ``/``, not ``m21:...``):
write a file called ``a=b.mid`` as ``./a=b.mid``.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from ..errors import DataError
from .readers import MIDI_SUFFIXES, SCORE_SUFFIXES

SUFFIXES = MIDI_SUFFIXES + SCORE_SUFFIXES
M21 = "m21:"
#: The sample corpora shipped with the repository (data/midi/<name>/).
BUNDLED = Path(__file__).resolve().parents[2] / "data" / "midi"


@dataclass(frozen=True)
class SourceFile:
    """One music file and the name of the corpus it belongs to."""

    path: Path
    corpus: str


def split_name(spec: str) -> tuple[str | None, str]:
    """``"bach=data/midi/bach"`` -> ``("bach", "data/midi/bach")``; an unnamed spec -> ``(None, spec)``
    (the text alone decides; see the module docstring)."""
    name, sep, rest = spec.partition("=")
    if not sep or "/" in name or name.startswith(M21):
        return None, spec
    if not name.strip() or not rest:
        raise DataError(f"source {spec!r}: write NAME=PATH with a non-empty name and path")
    return name.strip(), rest


def canonical(spec: str) -> str:
    """The spec with absolute paths, so that it names the same files from any directory."""
    name, rest = split_name(spec)
    target = rest if rest.startswith(M21) else str(Path(rest).resolve())
    return f"{name}={target}" if name else target


def resolve(specs: Sequence[str | Path]) -> list[SourceFile]:
    """The music files of ``specs`` with their corpus names (see the module docstring)."""
    if not specs:
        return [SourceFile(p, "bach") for p in default_sources()]
    files: list[SourceFile] = []
    seen: set[Path] = set()
    for spec in specs:
        name, rest = split_name(str(spec))
        for f in _unnamed(rest):
            key = f.path.resolve()
            if key not in seen:
                seen.add(key)
                files.append(SourceFile(f.path, name or f.corpus))
    return files


def _unnamed(spec: str) -> list[SourceFile]:
    if spec.startswith(M21):
        composer = spec[len(M21):]
        return [SourceFile(p, composer) for p in m21_files(composer)]
    path = Path(spec)
    if not path.is_dir():
        return [SourceFile(f, f.stem) for f in find_files([path])]
    own = path.resolve().name
    files = []
    for f in find_files([path]):
        parts = f.relative_to(path).parts
        files.append(SourceFile(f, parts[0] if len(parts) > 1 else own))
    return files


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


def m21_files(composer: str) -> list[Path]:
    """music21's corpus files by ``composer`` (a folder of its corpus) with a supported suffix, sorted."""
    from music21 import corpus

    files = sorted(p for p in corpus.getComposer(composer) if p.suffix.lower() in SUFFIXES)
    if not files:
        known = ", ".join(m21_composers())
        raise DataError(f"music21's corpus has no readable files by {composer!r} (composers: {known})")
    return files


def m21_composers() -> dict[str, int]:
    """Every composer folder of music21's corpus with its number of readable files."""
    from music21 import common, corpus

    root = Path(common.getCorpusFilePath())
    counts = {}
    for folder in sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith(("_", "."))):
        n = sum(1 for p in corpus.getComposer(folder) if p.suffix.lower() in SUFFIXES)
        if n:
            counts[folder] = n
    return counts


def bundled() -> dict[str, tuple[Path, int]]:
    """The sample corpora of the repository's data/midi: name -> (folder, number of music files)."""
    if not BUNDLED.is_dir():
        return {}
    return {d.name: (d, len(find_files([d]))) for d in sorted(BUNDLED.iterdir()) if d.is_dir()}


def corpus_sizes(specs: Sequence[str]) -> dict[str, int]:
    """How ``specs`` resolve: corpus name -> number of music files, in order of first appearance."""
    sizes: dict[str, int] = {}
    for f in resolve(specs):
        sizes[f.corpus] = sizes.get(f.corpus, 0) + 1
    return sizes
