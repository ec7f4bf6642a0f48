"""Training settings, apart from the training loop: dataset adapters name their defaults with
them without importing the loop."""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from .errors import ChordVAEError

OBJECTIVES = ("elbo", "iwae")


@dataclass
class TrainConfig:
    """Optimisation settings (Adam; ``weight_decay`` > 0 multiplies the weights by
    ``1 - learning_rate * weight_decay`` every step, decoupled from the gradient: AdamW).
    ``beta`` weighs the KL term; ``warmup_epochs`` ramps it linearly from 0 to ``beta`` over
    that many epochs; ``free_bits`` is a per-dimension KL floor in nats (during the first
    ``free_bits_epochs`` epochs only, when that is not 0); ``mc_samples`` draws
    of z per example estimate the reconstruction term. The last ``refit_epochs`` of ``epochs``
    (at most all but the first) refit the model's ``refit_modules`` (the posterior q(z|x) and the
    prior; with a latent per frame the prior alone) to the ELBO (no free bits), the rest frozen: a
    decoder trained to read z keeps reading it while the bound tightens (a mixture prior is first
    fitted to the training codes).
    ``objective`` ``iwae`` trains on the importance-weighted bound with ``mc_samples`` draws
    instead of the ELBO (Burda et al. 2016).

    ``epochs`` is the cap; with ``min_steps`` it rises for a small training set until it makes
    at least that many optimiser updates (:meth:`scaled_to`). Early stopping watches the
    validation loss (the negative ELBO with
    ``validation_samples`` draws per example, the same draws every epoch; with ``iwae``, the
    validation bound with ``mc_samples`` draws): after ``patience`` epochs in a row that are not
    below the best by more than ``min_delta`` nats, training stops and the checkpoint keeps the
    best epoch's weights (``patience`` 0: run every epoch, keep the last). ``lr_patience`` such
    epochs multiply the learning rate by ``lr_factor`` (PyTorch's ReduceLROnPlateau; 0: a
    constant rate). Both start when the KL warm-up ends; with ``refit_epochs``, early stopping
    counts the refit epochs only, so that the weights kept are a refitted epoch's."""

    epochs: int = 30
    min_steps: int = 0
    batch_size: int = 128
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    beta: float = 1.0
    warmup_epochs: int = 0
    free_bits: float = 0.0
    free_bits_epochs: int = 0
    refit_epochs: int = 0
    mc_samples: int = 1
    objective: str = "elbo"
    validation_samples: int = 1
    patience: int = 0
    min_delta: float = 0.0
    lr_patience: int = 0
    lr_factor: float = 0.5
    seed: int = 0
    device: str = "auto"
    threads: int | None = None

    def validate(self) -> None:
        checks = [(self.epochs >= 1, "epochs must be at least 1"),
                  (self.min_steps >= 0, "the minimum number of updates must be non-negative"),
                  (self.batch_size >= 1, "batch size must be at least 1"),
                  (self.learning_rate > 0, "learning rate must be positive"),
                  (self.weight_decay >= 0, "weight decay must be non-negative"),
                  (self.beta >= 0, "beta must be non-negative"),
                  (self.warmup_epochs >= 0, "warm-up epochs must be non-negative"),
                  (self.free_bits >= 0, "free bits must be non-negative"),
                  (self.free_bits_epochs >= 0, "free-bits epochs must be non-negative"),
                  (self.refit_epochs >= 0, "refit epochs must be non-negative"),
                  (self.mc_samples >= 1, "Monte-Carlo samples must be at least 1"),
                  (self.objective in OBJECTIVES, f"objective must be one of {', '.join(OBJECTIVES)}"),
                  (self.objective == "elbo" or self.free_bits == 0, "free bits need the elbo objective"),
                  (self.validation_samples >= 1, "validation samples must be at least 1"),
                  (self.patience >= 0, "patience must be non-negative"),
                  (self.min_delta >= 0, "the minimum improvement must be non-negative"),
                  (self.lr_patience >= 0, "learning-rate patience must be non-negative"),
                  (0 < self.lr_factor < 1, "the learning-rate factor must be between 0 and 1"),
                  (self.threads is None or self.threads >= 1, "threads must be at least 1")]
        for ok, message in checks:
            if not ok:
                raise ChordVAEError(message)

    def scaled_to(self, examples: int) -> TrainConfig:
        """These settings for a training set of ``examples``: the epoch cap raised, where it makes
        fewer than ``min_steps`` updates, to the epochs that make them."""
        batches = max(1, math.ceil(examples / self.batch_size))
        return replace(self, epochs=max(self.epochs, math.ceil(self.min_steps / batches)))

    def refits(self, epoch: int) -> bool:
        """Whether 1-based ``epoch`` refits only the model's ``refit_modules`` (the rest frozen)."""
        return epoch > self.epochs - min(self.refit_epochs, self.epochs - 1)

    def beta_at(self, epoch: int) -> float:
        """KL weight during 1-based ``epoch``."""
        if self.warmup_epochs == 0:
            return self.beta
        return self.beta * min(1.0, epoch / self.warmup_epochs)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """The settings of ``to_dict``; fields a newer chordvae added keep their defaults."""
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})
