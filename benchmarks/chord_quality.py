"""Chord model quality with the default training (early stopping), and what helps (issue 10).

``main``: the README's main job, ``chordvae train --dataset chords data/midi`` with every
default: why and when it stopped, exact pitch-class-set reconstruction on the held-out pieces,
and whether interpolation endpoints decode to exactly the chords typed.

``sweep``: music21's ~400 Bach chorales (or ``--sources``; whole pieces held out), one run per latent size and
variant of the training (the defaults, beta 1, KL warm-up, importance-weighted training, wider
networks); each is scored by ``evaluate`` (IWAE bound with K = 1000 against the independent
Bernoulli and the empirical set distribution, whose smoothing is chosen by cross-validation
over the training pieces) and by the latent-neighbourhood overlap. One thread per run.

    python benchmarks/chord_quality.py main [--out runs/chord-quality]
    python benchmarks/chord_quality.py sweep [--latent 2 4 8] [--variants default beta1 ...] [--sources data/midi]
"""
from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

import torch

from chordvae import explore, runs

DATA = Path(__file__).resolve().parents[1] / "data" / "midi"
#: endpoints typed by a user and the pitch classes they must decode to
ENDPOINTS = [("C E G", "A C E"), ("C E G", "G B D F"), ("D F# A", "B D F#"), ("F A C", "E G# B D"),
             ("G B D", "E G B"), ("A C E", "D F A")]
#: name -> (TrainConfig overrides, hidden sizes or None for the adapter's)
VARIANTS = {
    "default": ({}, None),
    "beta1": ({"beta": 1.0}, None),
    "beta1-warmup": ({"beta": 1.0, "warmup_epochs": 50}, None),
    "iwae": ({"beta": 1.0, "objective": "iwae", "mc_samples": 8}, None),
    "iwae32": ({"beta": 1.0, "objective": "iwae", "mc_samples": 32}, None),
    "iwae-wd": ({"beta": 1.0, "objective": "iwae", "mc_samples": 8, "weight_decay": 0.01}, None),
    "iwae-wd0.1": ({"beta": 1.0, "objective": "iwae", "mc_samples": 8, "weight_decay": 0.1}, None),
    "wide": ({}, (512, 256)),
}


def fresh(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    return path


def endpoints(run: runs.Run) -> list[tuple[str, str, bool]]:
    """For each pair of ENDPOINTS: the two chords typed, interpolated in 5 steps, and whether the
    first and last decoded chords are exactly the typed ones."""
    rows = []
    for a, b in ENDPOINTS:
        xa, xb = (run.adapter.parse_event(t, run.dataset_meta) for t in (a, b))
        z = explore.interpolate(explore.encode(run.model, xa[None])[0][0],
                                explore.encode(run.model, xb[None])[0][0], 5)
        decoded = explore.decode(run.model, z)[:, :12] >= 0.5
        ok = torch.equal(decoded[0], xa[:12] >= 0.5) and torch.equal(decoded[-1], xb[:12] >= 0.5)
        rows.append((a, b, ok))
    return rows


def main_job(out: Path) -> dict:
    run = runs.train("chords", [str(DATA)], config=runs.training_config("chords", threads=1),
                     out=fresh(out / "main"), progress=False, log=lambda s: None)
    summary = json.loads((run.dir / "summary.json").read_text())
    report = runs.evaluate_run(run.dir, progress=False)
    pairs = endpoints(run)
    print(f"main job: {summary['reason']}; weights of epoch {summary['weights_epoch']}")
    print(f"  held-out chords {report['examples']}: exact set {report['figures']['exact_set_rate']:.1%}, "
          f"IWAE {report['iwae']['nll']:.3f}, empirical {report['baselines']['empirical sets']:.3f} "
          f"(alpha {report['empirical_alpha']:.3g}), neighbourhood ratio "
          f"{report['figures']['neighbourhood_ratio']:.2f}")
    for a, b, ok in pairs:
        print(f"  interpolate {a!r} -> {b!r}: endpoints {'exact' if ok else 'WRONG'}")
    return {"summary": summary, "evaluation": report, "endpoints": pairs}


def sweep(out: Path, sources: list[str], latents: list[int], variants: list[str]) -> dict:
    results = {}
    print(f"{' '.join(sources) or 'music21 Bach chorales'}, whole pieces held out; nats per chord on the held-out pieces")
    print(f"{'latent':>6s} {'variant':14s} {'epochs':>9s} {'-ELBO':>7s} {'IWAE':>7s} {'indep.':>7s} "
          f"{'empirical':>9s} {'alpha':>7s} {'exact':>7s} {'active':>6s} {'nbr J':>6s} {'rand J':>6s} {'ratio':>5s}")
    for latent in latents:
        for name in variants:
            overrides, hidden = VARIANTS[name]
            run = runs.train("chords", sources, latent_dim=latent, hidden=hidden,
                             config=runs.training_config("chords", threads=1, **overrides),
                             out=fresh(out / f"sweep-z{latent}-{name}"), progress=False, log=lambda s: None)
            summary = json.loads((run.dir / "summary.json").read_text())
            r = runs.evaluate_run(run.dir, progress=False)
            results[f"z{latent}-{name}"] = {"summary": summary, "evaluation": r}
            b, f = r["baselines"], r["figures"]
            print(f"{latent:6d} {name:14s} {summary['weights_epoch']:4d}/{summary['epochs_trained']:<4d} "
                  f"{r['elbo']['loss']:7.3f} {r['iwae']['nll']:7.3f} {b['independent Bernoulli']:7.3f} "
                  f"{b['empirical sets']:9.3f} {r['empirical_alpha']:7.3g} {f['exact_set_rate']:7.1%} "
                  f"{r['latent']['active_units']:3d}/{latent:<2d} {f['neighbour_jaccard']:6.3f} "
                  f"{f['random_pair_jaccard']:6.3f} {f['neighbourhood_ratio']:5.2f}", flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=["main", "sweep"])
    parser.add_argument("--sources", nargs="*", default=[], help="chord files or folders (default: music21's chorales)")
    parser.add_argument("--latent", type=int, nargs="*", default=[2, 4, 8])
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=Path("runs/chord-quality"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = main_job(args.out) if args.what == "main" else sweep(args.out, args.sources, args.latent, args.variants)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.what}{'-' + Path(args.sources[0]).name if args.sources else ''}.json").write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
