"""The batch protocol: what the core (training, IWAE, evaluation, the latent plane) needs of a
set of events, so that it never asks what an event is.

A set of ``N`` events is either a plain tensor ``(N, *event_shape)`` (images, chord vectors) or
any object that behaves like one along its first axis:

- ``len(events)`` -> ``N``;
- ``events[index]`` -> the same kind of object holding the selected events, for ``index`` a
  ``slice`` (batches are slices) or an int64 tensor ``(M,)`` of positions (shuffling);
- ``events.to(device)`` -> the same events on ``device``.

The core passes such objects on, unopened, to the model's encoder (``encoder(events)`` ->
``(B, 2 * latent_dim)``) and to its decoder's likelihood (``decoder.log_prob(events, z)``;
see :class:`chordvae.vae.Likelihood`). :class:`Masked` is the one for sequences of any length.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol, TypeVar, Union

import torch

B = TypeVar("B", bound="Batch")


class Batch(Protocol):
    """A set of events that can be counted, indexed along its first axis and moved (see above)."""

    def __len__(self) -> int: ...

    def __getitem__(self: B, index: slice | torch.Tensor) -> B: ...

    def to(self: B, device: torch.device | str) -> B: ...


#: what the core accepts as events: a tensor ``(N, *event_shape)`` or a :class:`Batch`
Events = Union[torch.Tensor, Batch]

#: a random change of a training batch, drawn from the generator given (e.g. every event moved to
#: a random key: data augmentation); it returns new events of the same kind and shape
Augment = Callable[[Events, torch.Generator], Events]


@dataclass(frozen=True)
class Masked:
    """Padded sequences: ``x`` ``(N, T, D)`` frames and ``mask`` ``(N, T)`` bool, True where a
    frame is real (False: padding past a sequence's end)."""

    x: torch.Tensor
    mask: torch.Tensor

    def __post_init__(self) -> None:
        if self.mask.shape != self.x.shape[:2]:
            raise ValueError(f"a mask of shape {tuple(self.mask.shape)} does not fit frames "
                             f"of shape {tuple(self.x.shape)}")

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, index: slice | torch.Tensor) -> Masked:
        return Masked(self.x[index], self.mask[index])

    def to(self, device: torch.device | str) -> Masked:
        return Masked(self.x.to(device), self.mask.to(device))

    @property
    def shape(self) -> torch.Size:
        """``(N, T, D)``, the shape of the frames (so that shapes compare as a tensor's do)."""
        return self.x.shape

    @property
    def frames(self) -> int:
        """How many real frames the sequences hold in all."""
        return int(self.mask.sum())
