"""What a run's data was: the typed record a checkpoint stores so that the dataset's adapter can
rebuild the same data (and its pictures can name it)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

_FIELDS = ("sources", "options", "seed")


class Options(Protocol):
    """A dataset's typed options (e.g. a ChordOptions): stored as their ``to_dict()``."""

    def to_dict(self) -> dict[str, Any]: ...


@dataclass
class DatasetMeta:
    """``dataset``: the adapter's name; ``sources``: the paths it read (may be empty);
    ``options``: its typed options' ``to_dict()`` (e.g. a ChordOptions); ``seed``: the split's
    seed; ``extra``: whatever else the adapter records (JSON values, e.g. a corpus fingerprint).

    In a checkpoint (format 1) it is stored flat, as ``{"sources", "options", "seed", **extra}``
    beside the dataset's name, as it always was."""

    dataset: str
    sources: list[str] = field(default_factory=list)
    options: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The stored form (without the dataset's name, which the checkpoint keeps beside it)."""
        return {"sources": list(self.sources), "options": dict(self.options), "seed": self.seed, **self.extra}

    @classmethod
    def from_dict(cls, dataset: str, d: dict[str, Any]) -> DatasetMeta:
        return cls(dataset, list(d.get("sources") or []), dict(d.get("options") or {}), int(d.get("seed", 0)),
                   {k: v for k, v in d.items() if k not in _FIELDS})
