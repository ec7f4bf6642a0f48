"""The baselines a progression model must beat, in nats per beat: the n-gram over beat frames
(orders 1-4, interpolated absolute discounting, order and discounts by 5-fold cross-validation
over the training pieces), the chord VAE applied beat by beat (chordvae.frame_vae) and
independent Bernoulli, all fitted on the training pieces and scored on the test pieces, tiled
as ``evaluate`` tiles them (windows of ``--bars`` bars after as many context beats; the n-gram
reads the beats before each window).

Train on ``--train`` and test on ``--test``; without ``--test``, the pieces of ``--train`` that the
default split holds out (seed ``--seed``, as ``chordvae train`` holds them out) are the test.

    python benchmarks/progression_baselines.py [--train ../shared/datasets/pop909-train]
        [--test ../shared/datasets/pop909-dev] [--bars 4] [--transpose none] [--seed 0]
    python benchmarks/progression_baselines.py --train m21:bach --test ""     # chorales, held out
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from chordvae.baselines import FrameNGram, IndependentBernoulli
from chordvae.batch import Masked
from chordvae.frame_vae import FrameVAEConfig, frame_vae_nll, train_frame_vae
from chordvae.progressions.corpus import ProgressionOptions, read_progressions
from chordvae.progressions.windows import held_out, tiling_windows
from chordvae.sequence import frames_of
from chord_eval import SHARED  # benchmarks/ is on the path of a script run from it


def tiles(corpus, pieces, options: ProgressionOptions, length: int) -> tuple[Masked, torch.Tensor]:
    w = tiling_windows(corpus, pieces, options.bars, length, options.transpose, context=length)
    return Masked(w.frames, w.mask), w.piece


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", nargs="+", default=[str(SHARED / "pop909-train")])
    parser.add_argument("--test", nargs="*", default=[str(SHARED / "pop909-dev")],
                        help="test sources (none: the held-out pieces of --train)")
    parser.add_argument("--bars", type=int, default=4)
    parser.add_argument("--transpose", default="none")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--steps", type=int, default=FrameVAEConfig.steps,
                        help="training steps of the chord VAE per beat (default: chordvae.frame_vae's)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    options = ProgressionOptions(bars=args.bars, transpose=args.transpose, jobs=args.jobs)
    started = time.perf_counter()
    corpus = read_progressions(args.train, options, progress=False)
    length = args.bars * corpus.bar_length()
    test_sources = [s for s in args.test if s]
    if test_sources:
        train, groups = tiles(corpus, None, options, length)
        test_corpus = read_progressions(test_sources, options, progress=False)
        test, _ = tiles(test_corpus, None, options, length)
        where = f"{' '.join(test_sources)} ({test_corpus.n_pieces} pieces)"
        n_train = corpus.n_pieces
    else:
        held = held_out(corpus.n_pieces, args.seed)
        train, groups = tiles(corpus, np.flatnonzero(~held), options, length)
        test, _ = tiles(corpus, np.flatnonzero(held), options, length)
        where = f"the {int(held.sum())} pieces of {' '.join(args.train)} held out with seed {args.seed}"
        n_train = int((~held).sum())
    print(f"read in {time.perf_counter() - started:.1f} s; train: {' '.join(args.train)} ({n_train} pieces, "
          f"{train.frames} beats); test: {where}, {test.frames} beats; windows of {length} beats after "
          f"{length} context beats; transpose {args.transpose}")

    started = time.perf_counter()
    ngram = FrameNGram().fit(train, groups)
    ngram_nll = ngram.nll(test).mean().item()
    ngram_seconds = time.perf_counter() - started
    print(f"\nn-gram cross-validation over the training pieces ({ngram.folds} folds), nats per beat "
          f"(the test NLL of each order, with its cross-validated discounts, is reported, not used):")
    chosen = [ngram.cv[k]["discount"] for k in sorted(ngram.cv)]
    for order, row in ngram.cv.items():
        test_nll = FrameNGram(order, tuple(chosen[:order])).fit(train).nll(test).mean().item()
        print(f"  order {order}: discount {row['discount']:.2f}, CV NLL {row['nll']:.4f}, test NLL {test_nll:.4f}")
    print(f"  chosen: order {ngram.order} ({ngram_seconds:.1f} s to choose, fit and score)")

    started = time.perf_counter()
    config = FrameVAEConfig(steps=args.steps)
    frame_model, _ = train_frame_vae(frames_of(train), args.seed, config)
    frame_nll = frame_vae_nll(frame_model, frames_of(test), config.k, seed=args.seed)
    frame_seconds = time.perf_counter() - started
    bernoulli = IndependentBernoulli().fit(frames_of(train)).nll(frames_of(test)).mean().item()
    print(f"\ntest NLL, nats per beat ({test.frames} beats):")
    print(f"  independent Bernoulli            {bernoulli:8.4f}")
    print(f"  chord VAE per beat (IWAE, K={config.k}) {frame_nll:8.4f}   ({config.steps} steps; "
          f"{frame_seconds:.1f} s to train and score)")
    print(f"  n-gram, order {ngram.order}                  {ngram_nll:8.4f}")


if __name__ == "__main__":
    main()
