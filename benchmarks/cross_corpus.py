"""Which genre? A train-corpus x test-corpus matrix of held-out likelihood.

One chord VAE per corpus, trained on that corpus with 10% of its pieces held out (whole pieces,
chosen by the seed); every model then scores every corpus's held-out pieces: the
importance-weighted NLL (nats per chord, lower = the test corpus looks more like what the model
learned) and the exact-set reconstruction rate. The empirical-set baseline fitted on the same
training corpus gives the matrix a model-free reference. Keys are moved to C major / A minor
(``--transpose c``) so that the matrix compares harmony, not the corpora's favourite keys.

With ``--dataset progressions`` the models are progression models (sequence VAEs over beat
frames, windows of ``--bars`` bars) and the figures are per beat: model A scores corpus B's
held-out pieces tiled in A's windows (so corpora of other meters compare), the IWAE bound in nats
per beat, the share of beats reconstructed exactly from z, and the n-gram over beat frames
fitted on A's training pieces (order and smoothing by cross-validation) as the model-free reference.

    python benchmarks/cross_corpus.py [--corpus bach=m21:bach monteverdi=m21:monteverdi
        pop=../shared/datasets/pop909-dev] [--epochs 60] [--latent 4] [--out runs/cross-corpus]
    python benchmarks/cross_corpus.py --dataset progressions [--bars 4] [--epochs N] [--latent 2] ...
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from chordvae import runs
from chordvae.baselines import EmpiricalSets, FrameNGram
from chordvae.chords.sources import split_name
from chordvae.datasets import get_adapter
from chordvae.datasets.seen import classify, keep
from chordvae.evaluate import iwae_nll
from chordvae.sequence import reconstruction, sequence_nll
from chordvae.train import TrainConfig

POP909 = next((p / "shared/datasets/pop909-dev" for p in Path(__file__).resolve().parents
               if (p / "shared/datasets/pop909-dev").is_dir()), Path("../shared/datasets/pop909-dev"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", nargs="+", default=["bach=m21:bach", "monteverdi=m21:monteverdi",
                                                        f"pop={POP909}"], help="NAME=SOURCE, one per corpus")
    parser.add_argument("--dataset", choices=["chords", "progressions"], default="chords")
    parser.add_argument("--bars", type=int, default=4, help="progressions: bars per window")
    parser.add_argument("--epochs", type=int, default=None,
                        help="default: chords 60, progressions the dataset's default training (19 epochs, "
                             "more on a small corpus: at least 2,000 updates)")
    parser.add_argument("--latent", type=int, default=None,
                        help="latent size (default: chords 4, progressions the dataset's, 2 per beat)")
    parser.add_argument("--transpose", default="c")
    parser.add_argument("--iw-samples", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("runs/cross-corpus"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    names = [split_name(spec)[0] for spec in args.corpus]
    if args.dataset == "progressions":
        return progression_matrix(args, names)
    args.latent = args.latent or 4
    args.epochs = args.epochs or 60
    trained = {}
    for name, spec in zip(names, args.corpus):
        out = args.out / name
        run = runs.load_run(out) if (out / "model.pt").exists() else runs.train(
            "chords", [spec], options={"transpose": args.transpose}, latent_dim=args.latent,
            config=TrainConfig(epochs=args.epochs, threads=args.threads), out=out, progress=False,
            log=lambda line: None)
        data = run.data()
        trained[name] = (run.model.eval(), data.train, data.validation, data.meta.extra["pieces"])
        print(f"{name}: {data.meta.extra['pieces']} pieces, {len(data.train)} training chords, "
              f"{len(data.validation)} held-out chords")
    matrix = {}
    for a in names:
        model, train, _, _ = trained[a]
        floor = EmpiricalSets().fit(train)
        for b in names:
            test = trained[b][2]
            generator = torch.Generator().manual_seed(0)
            matrix[a, b] = {"nll": iwae_nll(model, test, args.iw_samples, generator=generator).mean().item(),
                            "exact_set_rate": get_adapter("chords").metrics(model, test)["exact_set_rate"],
                            "empirical_sets": floor.nll(test).mean().item()}
    show(matrix, names, (("nll", f"VAE held-out NLL (IWAE, K={args.iw_samples}), nats per chord"),
                         ("empirical_sets", "empirical-set baseline NLL, nats per chord"),
                         ("exact_set_rate", "VAE exact-set reconstruction rate")))
    write(args, names, matrix, args.out / "cross_corpus.json")


def progression_matrix(args: argparse.Namespace, names: list[str]) -> None:
    """The matrix of progression models: per beat, each model on every corpus's held-out pieces."""
    adapter = get_adapter("progressions")
    adapter.progress = False
    given = {"epochs": args.epochs} if args.epochs else {}   # else the default: 19, more on a small corpus
    trained = {}
    for name, spec in zip(names, args.corpus):
        out = args.out / f"progressions-{name}"
        run = runs.load_run(out, progress=False) if (out / "model.pt").exists() else runs.train(
            "progressions", [spec], options={"transpose": args.transpose, "bars": args.bars},
            latent_dim=args.latent, config=runs.training_config("progressions", threads=args.threads, **given),
            out=out, progress=False, log=lambda line: None)
        data = run.data()
        trained[name] = (run, data)
        print(f"{name}: {data.meta.extra['pieces']} pieces, {data.train_tiled.frames} training beats, "
              f"{data.validation.frames} held-out beats, windows of {data.meta.extra['window']} beats, "
              f"{run.training.epochs} epochs")
    matrix = {}
    for a in names:
        run, data = trained[a]
        ngram = FrameNGram().fit(data.train_tiled, data.train_tiled_groups)
        for b, spec in zip(names, args.corpus):
            other = trained[b][1]
            read = adapter.load_pieces_for([spec], run.dataset_meta)      # b's pieces in a's windows
            test = keep(read, classify(read, other.piece_parts), {"validation"}).events
            generator = torch.Generator().manual_seed(0)
            matrix[a, b] = {"nll": sequence_nll(run.model, test, args.iw_samples, generator=generator)["iwae"],
                            "exact_beats": reconstruction(run.model, test)["exact_frames"],
                            "ngram": ngram.nll(test).mean().item(), "beats": test.frames}
        print(f"{a}: n-gram order {ngram.order}, discounts {ngram.discounts}")
    show(matrix, names, (("nll", f"progression VAE held-out NLL (IWAE, K={args.iw_samples}), nats per beat"),
                         ("ngram", "n-gram baseline NLL (fitted on the row's training pieces), nats per beat"),
                         ("exact_beats", "share of held-out beats reconstructed exactly from z")))
    write(args, names, matrix, args.out / "cross_corpus_progressions.json")


def show(matrix: dict, names: list[str], tables: tuple[tuple[str, str], ...]) -> None:
    for key, title in tables:
        print(f"\n{title}; rows: trained on, columns: scored on")
        print(f"{'':>12s}" + "".join(f"{b:>12s}" for b in names))
        for a in names:
            print(f"{a:>12s}" + "".join(f"{matrix[a, b][key]:12.3f}" for b in names))


def write(args: argparse.Namespace, names: list[str], matrix: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(
        {"corpora": dict(zip(names, args.corpus)), "dataset": args.dataset, "epochs": args.epochs,
         "latent": args.latent, "transpose": args.transpose,
         "matrix": [{"train": a, "test": b, **v} for (a, b), v in matrix.items()]}, indent=2))


if __name__ == "__main__":
    main()
