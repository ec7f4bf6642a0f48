"""Quick variants of the sequence VAE, scored on held-out data only (for choosing defaults; never
on test): JSB Chorales' valid split, or the held-out pieces of a progression corpus. Every 5
epochs the negative ELBO per frame and its KL; at the end reconstruction from z alone (and after
the context) and the IWAE bound (K = 100); ``--every N``: every N epochs instead of 5.

``--free-bits-epochs N``: free bits for the first N epochs only, then the plain ELBO.
``--refit-epochs N``: the last N epochs refit the encoder (and the prior) to the ELBO with the
decoder frozen; ``--prior-components K``: the prior is a mixture of K Gaussians, fitted to the
training codes when the refit starts.
``--context N``: frames before each window the decoder reads (progressions: at most the window).
``--latent-per frame``: a latent per frame (:mod:`chordvae.stepwise`; ``--latent`` per frame).

    python benchmarks/sequence_variants.py --data-dir ../shared/datasets/polyphonic --latent 16 \\
        --free-bits 1.0 --input-dropout 0.3 --epochs 50 --stride 4 --batch-size 32 --lr 2e-3
    python benchmarks/sequence_variants.py --dataset progressions ../shared/datasets/pop909-train \\
        --context 0 --latent 32 --feed none
"""
from __future__ import annotations

import argparse
import time

import torch

from chordvae.batch import Masked
from chordvae.datasets import get_adapter
from chordvae.sequence import SequenceConfig, build_sequence, reconstruction, sequence_nll
from chordvae.train import TrainConfig, TrainState, train_epoch


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("sources", nargs="*", help="progressions: the music to read")
    p.add_argument("--dataset", default="jsb-chorales", help="jsb-chorales (or another polyphonic set) or progressions")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--bars", type=int, default=4)
    for name, value in dict(window=16, context=-1, latent=16, output="made", epochs=60, free_bits=0.0,
                            input_dropout=0.0, context_dropout=0.0, dropout=0.0, lr=1e-3, batch_size=64, decoder_hidden=256,
                            encoder_hidden=128, made_hidden=256, warmup=0, weight_decay=0.0, stride=0,
                            free_bits_epochs=0, pooling="ends", feed="frames", threads=1, refit_epochs=0,
                            prior_components=0, latent_per="window", every=5).items():
        p.add_argument("--" + name.replace("_", "-"), type=type(value), default=value)
    a = p.parse_args()
    print(a)
    torch.set_num_threads(a.threads)
    if a.dataset == "progressions":
        data = get_adapter("progressions").load(a.sources, {"bars": a.bars}, seed=0)
        window, full = data.meta.extra["window"], data.meta.extra["context"]
        context = full if a.context < 0 else min(a.context, full)
        train, valid = (Masked(d.x[:, full - context:], d.mask[:, full - context:]) for d in (data.train, data.validation))
    else:
        window, context = a.window, (16 if a.context < 0 else a.context)
        data = get_adapter(a.dataset).load([], {"data_dir": a.data_dir, "window": window, "context": context,
                                                "stride": a.stride or window}, seed=0)
        train, valid = data.train, data.validation
    print(f"{len(train)} training windows, {len(valid)} held out; window {window}, context {context}", flush=True)
    torch.manual_seed(0)
    model = build_sequence(SequenceConfig(keys=train.x.shape[-1], window=window, context=context,
                                           latent_dim=a.latent, output=a.output,
                                           input_dropout=a.input_dropout, context_dropout=a.context_dropout, dropout=a.dropout,
                                           decoder_hidden=a.decoder_hidden, encoder_hidden=a.encoder_hidden,
                                           made_hidden=a.made_hidden, pooling=a.pooling, feed=a.feed,
                                           prior_components=a.prior_components, latent_per=a.latent_per))
    config = TrainConfig(epochs=a.epochs, batch_size=a.batch_size, learning_rate=a.lr, weight_decay=a.weight_decay,
                         warmup_epochs=a.warmup, free_bits=a.free_bits, free_bits_epochs=a.free_bits_epochs,
                         refit_epochs=a.refit_epochs, threads=a.threads)
    state = TrainState.start(model, config, torch.device("cpu"))
    best, start = (float("inf"), 0), time.time()
    for epoch in range(1, a.epochs + 1):
        train_epoch(state, train, config, progress=False)
        state.epoch = epoch
        if a.refit_epochs and epoch == a.epochs - a.refit_epochs and a.latent:
            model.eval()
            print("before the refit: from z alone", reconstruction(model, valid), "IWAE K=100",
                  sequence_nll(model, valid, 100, generator=torch.Generator().manual_seed(0)), flush=True)
        if epoch % a.every == 0 or epoch == a.epochs:
            model.eval()
            r = sequence_nll(model, valid, 1, generator=torch.Generator().manual_seed(0))
            if r["elbo"] < best[0]:
                best = (r["elbo"], epoch)
            exact = reconstruction(model, valid)["exact_frames"] if a.latent else 0.0
            print(epoch, round(time.time() - start), {k: round(v, 3) for k, v in r.items()}, "best", best,
                  f"exact from z {exact:.3f}", flush=True)
    model.eval()
    if a.latent:
        print("reconstruction from z alone", reconstruction(model, valid))
        if context:
            print("reconstruction from z after the context", reconstruction(model, valid, with_context=True))
        print("IWAE K=100", sequence_nll(model, valid, 100, generator=torch.Generator().manual_seed(0)))


if __name__ == "__main__":
    main()
