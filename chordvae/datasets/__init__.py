"""Dataset adapters, found by name.

Built-in adapters and those of other packages are registered under the Python
entry-point group ``chordvae.datasets`` (name -> ``module:AdapterClass``);
:func:`register` adds one at run time (handy in a notebook).
"""
from __future__ import annotations

from importlib.metadata import entry_points

from ..errors import ChordVAEError
from .base import Data, DatasetAdapter

_BUILTIN = {
    "mnist": "chordvae.datasets.mnist:MNIST",
    "fashion-mnist": "chordvae.datasets.mnist:FashionMNIST",
    "chords": "chordvae.datasets.chords:Chords",
    "jsb-chorales": "chordvae.datasets.polyphonic:JSBChorales",
    "nottingham": "chordvae.datasets.polyphonic:Nottingham",
    "musedata": "chordvae.datasets.polyphonic:MuseData",
    "piano-midi": "chordvae.datasets.polyphonic:PianoMidi",
    "progressions": "chordvae.datasets.progressions:Progressions",
}
_REGISTERED: dict[str, type[DatasetAdapter]] = {}


def register(adapter: type[DatasetAdapter]) -> type[DatasetAdapter]:
    """Register an adapter class under its ``name`` (usable as a class decorator)."""
    _REGISTERED[adapter.name] = adapter
    return adapter


def _targets() -> dict[str, str]:
    targets = dict(_BUILTIN)
    for ep in entry_points(group="chordvae.datasets"):
        targets.setdefault(ep.name, ep.value)
    return targets


def dataset_names() -> list[str]:
    return sorted(set(_targets()) | set(_REGISTERED))


def get_adapter(name: str) -> DatasetAdapter:
    """A fresh adapter instance for dataset ``name``; unknown names raise ChordVAEError."""
    if name in _REGISTERED:
        return _REGISTERED[name]()
    target = _targets().get(name)
    if target is None:
        raise ChordVAEError(f"unknown dataset {name!r}; choose from {', '.join(dataset_names())}")
    module_name, _, attr = target.partition(":")
    module = __import__(module_name, fromlist=[attr])
    return getattr(module, attr)()


__all__ = ["Data", "DatasetAdapter", "dataset_names", "get_adapter", "register"]
