"""Quick variants of the sequence VAE on JSB Chorales, scored on the valid split only (for choosing
defaults; never on test): every 5 epochs the negative ELBO per frame and its KL, at the end
reconstruction from z alone and the IWAE bound (K = 100).

``--free-bits-epochs N``: free bits for the first N epochs only, then the plain ELBO.

    python benchmarks/polyphonic_variants.py --data-dir ../shared/datasets/polyphonic --latent 16 \\
        --free-bits 1.0 --input-dropout 0.3 --epochs 50 --stride 4 --batch-size 32 --lr 2e-3
"""
from __future__ import annotations

import argparse
import time

import torch

from chordvae.datasets import get_adapter
from chordvae.sequence import SequenceConfig, build_sequence, reconstruction, sequence_nll


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=None)
    for name, value in dict(window=16, context=16, latent=16, output="made", epochs=60, free_bits=0.0,
                            input_dropout=0.0, dropout=0.0, lr=1e-3, batch_size=64, decoder_hidden=256,
                            encoder_hidden=128, made_hidden=256, warmup=0, weight_decay=0.0, stride=0,
                            free_bits_epochs=0).items():
        p.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    a = p.parse_args()
    print(a)
    torch.set_num_threads(1)
    data = get_adapter("jsb-chorales").load([], {"data_dir": a.data_dir, "window": a.window, "context": a.context,
                                                  "stride": a.stride or a.window}, seed=0)
    train, valid = data.train, data.validation
    torch.manual_seed(0)
    model = build_sequence(SequenceConfig(window=a.window, context=a.context, latent_dim=a.latent, output=a.output,
                                           input_dropout=a.input_dropout, dropout=a.dropout,
                                           decoder_hidden=a.decoder_hidden, encoder_hidden=a.encoder_hidden,
                                           made_hidden=a.made_hidden))
    optimizer = torch.optim.AdamW(model.parameters(), a.lr, weight_decay=a.weight_decay)
    best, start = (float("inf"), 0), time.time()
    for epoch in range(1, a.epochs + 1):
        model.train()
        beta = min(1.0, epoch / a.warmup) if a.warmup else 1.0
        order = torch.randperm(len(train))
        for i in range(0, len(train), a.batch_size):
            free_bits = a.free_bits if not a.free_bits_epochs or epoch <= a.free_bits_epochs else 0.0
            out = model.loss(train[order[i:i + a.batch_size]], beta=beta, free_bits=free_bits)
            optimizer.zero_grad()
            out.loss.mean().backward()
            optimizer.step()
        if epoch % 5 == 0 or epoch == a.epochs:
            model.eval()
            r = sequence_nll(model, valid, 1, generator=torch.Generator().manual_seed(0))
            if r["elbo"] < best[0]:
                best = (r["elbo"], epoch)
            print(epoch, round(time.time() - start), {k: round(v, 3) for k, v in r.items()}, "best", best, flush=True)
    model.eval()
    if a.latent:
        print("reconstruction from z alone", reconstruction(model, valid))
        print("IWAE K=100", sequence_nll(model, valid, 100, generator=torch.Generator().manual_seed(0)))


if __name__ == "__main__":
    main()
