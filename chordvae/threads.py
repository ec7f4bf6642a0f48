"""How many CPU threads a training uses, set for that training only.

A small network's steps are too short to share between threads: the threads spend their time
waiting for each other, and far longer when another process holds a core (the README's chord
model trained in 104.6 s on torch's 2 threads against 62.6 s on 1 with one core busy;
``benchmarks/threads.py``). So the default count follows the work in one optimiser step and the cores left idle.
"""
from __future__ import annotations

import os
import torch
from torch import nn

from .batch import Events
from .vae import VAE

#: multiply-accumulates of one batch's forward pass below which one thread is used: the chord
#: MLP's 9.4 M per batch of 128 stay below, MNIST's mlp (83 M) and conv VAE (0.85 G) go above
#: and get the idle cores (benchmarks/threads.py measures both sides)
PARALLEL_WORK = 30_000_000


@torch.no_grad()
def forward_macs(model: VAE, example: Events) -> int:
    """Multiply-accumulates of one example's pass through ``model``'s linear and convolution
    layers: its loss on ``example`` (one event, e.g. ``train[:1]``), encoder and decoder."""
    total = 0

    def count(module: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(module, nn.Linear):
            total += module.in_features * module.out_features * (output.numel() // module.out_features)
        elif isinstance(module, nn.Conv2d):
            total += output.numel() * (module.in_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]
        elif isinstance(module, nn.ConvTranspose2d):
            total += inputs[0].numel() * (module.out_channels // module.groups) * module.kernel_size[0] * module.kernel_size[1]

    layers = (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)
    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, layers)]
    try:
        with torch.random.fork_rng(devices=[]):   # the pass draws z: leave torch's random state alone
            model.loss(example.to(next(model.parameters()).device))
    finally:
        for hook in hooks:
            hook.remove()
    return total


def training_threads(model: VAE, example: Events, batch_size: int, requested: int | None = None) -> int:
    """``requested`` if given. Else 1 for a step of less than :data:`PARALLEL_WORK`
    multiply-accumulates (forward, whole batch); else as many as torch's current count allows
    and the idle cores hold (cores minus the 1-minute load average, rounded): threads that wait
    for a core another process holds make every step wait for them."""
    if requested:
        return requested
    if forward_macs(model, example) * batch_size < PARALLEL_WORK:
        return 1
    return max(1, min(torch.get_num_threads(), idle_cores()))


def use_idle_cores() -> int:
    """For a process that runs trained models (the listening and evaluation commands): torch's
    thread count cut to the idle cores (at least 1), set and returned. One search for an exact
    latent point of a progression took 271 s on torch's 2 threads with the machine loaded, 2.4 s
    on 1."""
    threads = max(1, min(torch.get_num_threads(), idle_cores()))
    torch.set_num_threads(threads)
    return threads


def idle_cores() -> int:
    """The cores minus the 1-minute load average, rounded (all cores where the system has no load average)."""
    cores = os.cpu_count() or 1
    try:
        return round(cores - os.getloadavg()[0])
    except (AttributeError, OSError):
        return cores
