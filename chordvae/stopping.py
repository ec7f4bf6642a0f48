"""When to stop training: the best validation loss so far, its epoch and weights, and how long
it has not improved (early stopping with patience, Prechelt 1998)."""
from __future__ import annotations

import math
from typing import Any

import torch
from torch import nn


class EarlyStopping:
    """Watches the validation loss once per epoch.

    An epoch improves when its loss is below the best so far by more than ``min_delta``
    (nats). ``patience`` epochs in a row without improvement mean stop (0: never stop).
    With ``keep_weights`` a copy of the best epoch's weights is kept in ``best_weights``.
    """

    def __init__(self, patience: int = 0, min_delta: float = 0.0, keep_weights: bool = True):
        self.patience = patience
        self.min_delta = min_delta
        self.keep_weights = keep_weights
        self.best_loss = math.inf
        self.best_epoch = 0
        self.bad_epochs = 0
        self.best_weights: dict[str, torch.Tensor] | None = None

    def step(self, epoch: int, loss: float, model: nn.Module) -> bool:
        """Record epoch ``epoch``'s validation ``loss``; True when it is the new best."""
        if loss < self.best_loss - self.min_delta:
            self.best_loss, self.best_epoch, self.bad_epochs = loss, epoch, 0
            if self.keep_weights:
                self.best_weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
            return True
        self.bad_epochs += 1
        return False

    @property
    def should_stop(self) -> bool:
        return self.patience > 0 and self.bad_epochs >= self.patience

    def reason(self) -> str:
        """Why training stops now, in one phrase."""
        return (f"the validation loss has not improved for {self.bad_epochs} epochs "
                f"(best {self.best_loss:.4f} at epoch {self.best_epoch})")

    def state_dict(self) -> dict[str, Any]:
        """The counters, for a checkpoint (the best weights are the checkpoint's weights)."""
        return {"best_loss": self.best_loss, "best_epoch": self.best_epoch, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any], best_weights: dict[str, torch.Tensor] | None) -> None:
        self.best_loss = float(state["best_loss"])
        self.best_epoch = int(state["best_epoch"])
        self.bad_epochs = int(state["bad_epochs"])
        self.best_weights = best_weights if self.keep_weights else None
