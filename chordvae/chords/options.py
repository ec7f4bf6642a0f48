"""The chord adapter's options and reading a corpus with them: no torch, so `chordvae extract`
and the corpus workers start quickly."""
from __future__ import annotations

import sys
from dataclasses import dataclass, field, fields
from typing import Any, Mapping

from ..errors import ChordVAEError
from .corpus import Corpus, read_corpus
from .segment import Segmentation
from .vectors import FEATURES, PITCH_SETS, TRANSPOSE

SEGMENT_NAMES = {"mode": "segment"}  # Segmentation field -> option name, where they differ


@dataclass(frozen=True)
class ChordOptions:
    """Everything the chord adapter can be told: how notes become chords (``segmentation``,
    whose fields are options by their own names, ``mode`` as ``segment``), how chords become
    vectors (``features``, ``transpose``, ``pitch_set``) and how the corpus is read (``jobs`` processes,
    ``strict``, ``no_cache``). Flat dictionaries with the option names (as the CLI and
    the run's ``dataset_meta["options"]`` have them) convert with :meth:`from_dict` / :meth:`to_dict`.
    """

    segmentation: Segmentation = field(default_factory=Segmentation)
    features: str = FEATURES[0]
    transpose: str = TRANSPOSE[0]
    pitch_set: str = PITCH_SETS[0]
    jobs: int | None = None
    strict: bool = False
    no_cache: bool = False

    @staticmethod
    def names() -> list[str]:
        """The flat option names: the Segmentation fields, then the others."""
        return [SEGMENT_NAMES.get(f.name, f.name) for f in fields(Segmentation)] + \
               [f.name for f in fields(ChordOptions) if f.name != "segmentation"]

    @classmethod
    def from_dict(cls, options: Mapping[str, Any]) -> ChordOptions:
        """From flat option names; ``None`` (or absent) keeps the default; unknown names are refused."""
        unknown = set(options) - set(cls.names())
        if unknown:
            raise ChordVAEError(f"unknown chord option(s) {', '.join(sorted(unknown))}; "
                                f"known: {', '.join(cls.names())}")
        seg = {f.name: options[SEGMENT_NAMES.get(f.name, f.name)] for f in fields(Segmentation)
               if options.get(SEGMENT_NAMES.get(f.name, f.name)) is not None}
        rest = {f.name: options[f.name] for f in fields(cls)
                if f.name != "segmentation" and options.get(f.name) is not None}
        return cls(Segmentation(**seg), **rest)

    @classmethod
    def coerce(cls, options: ChordOptions | Mapping[str, Any] | None) -> ChordOptions:
        """``options`` as ChordOptions (a flat dict is read with :meth:`from_dict`, None: the defaults)."""
        return options if isinstance(options, ChordOptions) else cls.from_dict(options or {})

    def to_dict(self) -> dict[str, Any]:
        """The flat option names and their values (JSON-serialisable)."""
        seg = {SEGMENT_NAMES.get(f.name, f.name): getattr(self.segmentation, f.name) for f in fields(Segmentation)}
        return {**seg, **{f.name: getattr(self, f.name) for f in fields(self) if f.name != "segmentation"}}


def read(sources: list[str], options: ChordOptions | Mapping[str, Any] | None = None,
         progress: bool = True) -> Corpus:
    """Read the chord corpus of ``sources`` (named sources, see :mod:`chordvae.chords.sources`;
    none: music21's Bach chorales) as the options say; with ``progress``, show a progress bar and
    name each skipped file on stderr."""
    opts = ChordOptions.coerce(options)
    return read_corpus(sources, opts.segmentation, jobs=opts.jobs, strict=opts.strict,
                       use_cache=not opts.no_cache, progress=progress,
                       report=_to_stderr if progress else None)


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)
