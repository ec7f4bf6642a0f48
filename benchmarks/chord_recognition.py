"""How right are the chords? The recogniser next to its baselines, against chord truth.

Sets (``--sets``):
- ``pop909``: pop909-dev, 100 POP909 songs (MIDI) with Harte labels, scored in seconds; adds
  the standard ``mir_eval.chord`` scores (root, majmin, sevenths), duration-weighted over all
  songs. Development data.
- ``rn-dev``: 300 expert Roman-numeral analyses (MIDI exports), scored in beats, per group
  (textbooks, lieder) and over all; also over the ``supported`` spans only. Development data. ``--rn-dev-part check`` scores only the half of rn-dev's pieces the learned emission was
  not fitted on (``fit``: the other half; benchmarks/fit_emission.py).
- ``m21``: music21's own analyses of Bach chorales and Monteverdi madrigals
  (benchmarks/m21_analyses.py), on the scores and on their MIDI exports. FINAL-CHECK data:
  report, never tune on it. Pieces whose analysis does not fit their score are dropped and
  listed.
- ``pop909-train``: the first 60 songs of pop909-train, scored as ``pop909``: the fit songs the
  recogniser's choices were made on (with ``--rn-dev-part fit``, the fit pieces).
- ``pop909-unseen``: pop909-train's songs 151 to 659, in no fit (the learned emission and the
  keys were fitted on its first 150 songs), scored as ``pop909``: more held-out pop songs.

Systems (``--systems``, benchmarks/chord_systems.py): ``chords`` (the recogniser), ``no-moves``
(without the key's chord moves), ``no-key`` (without its key prior and moves), ``templates``
(the recogniser with its hand-set templates, not its learned emission, and no key),
``argmax`` (its per-beat
templates without smoothing), ``onset`` (the plain slicer, the old default) and
``chordify`` (music21; slow on pop909, so limited there to ``--chordify-limit`` songs).

Scores (benchmarks/chord_eval.py): duration-weighted over the truth spans: coverage, exact
set, triad contained, Jaccard, root, bass; where predictions overlap, the one that started
last counts.

    python benchmarks/chord_recognition.py --sets pop909,rn-dev,m21 --jobs 2 --json out.json
    python benchmarks/chord_recognition.py --speed --repeats 3 --jobs 2

``--speed``: cold extraction of pop909-dev through ``read_corpus`` (no cache) with the
``chords`` and ``onset`` segmentations, interleaved repeats, medians and their ratio; then warm
(cached) extraction in files per second.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

sys.path.append(str(Path(__file__).resolve().parents[1]))
from benchmarks import m21_analyses  # noqa: E402
from benchmarks.chord_eval import (METRICS, RN_DEV_PARTS, SHARED, Piece, add, load_pop909, load_rn_dev,  # noqa: E402
                                   rates, rn_dev_part, score)
from benchmarks.chord_systems import SYSTEMS, Prediction, predict  # noqa: E402
from chordvae.chords.readers import read_notes  # noqa: E402

SETS = ("pop909", "rn-dev", "m21", "pop909-train", "pop909-unseen")
#: The ``pop909-train`` set: its first songs, those the recogniser's choices were made on.
POP909_FIT_SONGS = 60
#: pop909-train's songs after these are in no fit (the learned emission and the keys: the first 150).
POP909_FITTED = 150
MIR_EVAL = ("root", "majmin", "sevenths")
CHORDIFY_LIMIT = {"pop909": 20}   # music21 reads a POP909 song in about 10 s


@dataclass
class Result:
    """One piece's weighted sums: ``totals[(set, group, system, spans)]`` with spans ``all`` or
    ``supported``; ``mir[(set, group, system)][metric] = (agreeing seconds, scored seconds)``."""

    name: str
    totals: dict = field(default_factory=dict)
    mir: dict = field(default_factory=dict)
    dropped: list = field(default_factory=list)
    failed: list = field(default_factory=list)


def evaluate(set_name: str, item: Piece | m21_analyses.Analysis, systems: tuple[str, ...]) -> Result:
    """Every system on one piece (run in a worker process)."""
    if isinstance(item, m21_analyses.Analysis):
        result = Result(item.name)
        piece = m21_analyses.load(item)
        for variant in ("m21", "m21-midi"):
            if variant == "m21-midi" and isinstance(piece, Piece):
                piece = m21_analyses.midi_version(piece)
            if isinstance(piece, m21_analyses.Dropped):
                result.dropped.append((variant, piece.name, piece.group, piece.reason))
                return result
            _score_piece(variant, piece, systems, result)
        return result
    result = Result(item.name)
    _score_piece(set_name, item, systems, result)
    return result


def _score_piece(set_name: str, piece: Piece, systems: tuple[str, ...], result: Result) -> None:
    notes = read_notes(piece.path)
    for system in systems:
        try:
            pred = predict(system, piece.path, piece.unit, notes)
        except Exception as e:  # a system that cannot read a file predicts nothing there
            result.failed.append((set_name, piece.name, system, f"{type(e).__name__}: {e}"[:200]))
            pred = Prediction(np.zeros(0), np.zeros(0), [], [], [], [])
        for spans in ("all", "supported"):
            result.totals[(set_name, piece.group, system, spans)] = score(
                pred.starts, pred.ends, pred.sets, pred.basses, pred.roots, piece.spans, spans == "supported")
        if set_name.startswith("pop909"):
            result.mir[(set_name, piece.group, system)] = mir_eval_sums(pred, piece)


def mir_eval_sums(pred: Prediction, piece: Piece) -> dict[str, tuple[float, float]]:
    """``mir_eval.chord`` root, majmin, sevenths of ``pred`` against the piece's Harte labels, as
    (agreeing time, scored time) so that songs add up; gaps between predictions count as ``N``."""
    import mir_eval

    ref_int = np.array([[s.start, s.end] for s in piece.spans])
    ref_lab = [s.label for s in piece.spans]
    est_int, est_lab = _fill_gaps(pred, float(ref_int.min()), float(ref_int.max()))
    est_int, est_lab = mir_eval.util.adjust_intervals(est_int, est_lab, ref_int.min(), ref_int.max(), "N", "N")
    intervals, ref, est = mir_eval.util.merge_labeled_intervals(ref_int, ref_lab, est_int, est_lab)
    durations = mir_eval.util.intervals_to_durations(intervals)
    sums = {}
    for metric in MIR_EVAL:
        agree = getattr(mir_eval.chord, metric)(ref, est)
        scored = agree >= 0
        sums[metric] = (float(np.sum(durations[scored] * agree[scored])), float(np.sum(durations[scored])))
    return sums


def _fill_gaps(pred: Prediction, t_min: float, t_max: float) -> tuple[np.ndarray, list[str]]:
    """Contiguous labelled intervals from ``t_min`` to at least ``t_max``: the predictions (each
    cut at the next one's start) with ``N`` wherever none sounds."""
    intervals, labels, now = [], [], t_min
    for k, (start, end) in enumerate(zip(pred.starts, pred.ends)):
        if k + 1 < len(pred.starts):
            end = min(end, pred.starts[k + 1])
        start = max(start, now)
        if end <= start:
            continue
        if start > now:
            intervals.append((now, start))
            labels.append("N")
        intervals.append((start, end))
        labels.append(pred.labels[k])
        now = end
    if now < t_max:
        intervals.append((now, t_max))
        labels.append("N")
    return np.array(intervals, dtype=float), labels


def _jobs(data: Path, sets: tuple[str, ...], limit: int | None, systems: tuple[str, ...],
          chordify_limit: int | None, rn_part: str = "all") -> list[tuple[str, object, tuple[str, ...]]]:
    """(set, piece or analysis, systems to run) for every piece (of rn-dev: those in ``rn_part``)."""
    jobs = []
    for set_name in sets:
        if set_name == "pop909":
            items: list = load_pop909(data / "pop909-dev", limit=limit)
        elif set_name == "pop909-train":
            items = load_pop909(data / "pop909-train", limit=min(limit or POP909_FIT_SONGS, POP909_FIT_SONGS))
        elif set_name == "pop909-unseen":
            items = load_pop909(data / "pop909-train")[POP909_FITTED:][:limit]
        elif set_name == "rn-dev":
            items = rn_dev_part(load_rn_dev(data / "rn-dev"), rn_part)[:limit]
        else:
            items = m21_analyses.analyses()[:limit]
        cap = chordify_limit if chordify_limit is not None else CHORDIFY_LIMIT.get(set_name)
        for k, item in enumerate(items):
            run = tuple(s for s in systems if s != "chordify" or cap is None or k < cap)
            jobs.append((set_name, item, run))
    return jobs


def run(data: Path, sets: tuple[str, ...], systems: tuple[str, ...], limit: int | None, jobs: int,
        chordify_limit: int | None, rn_part: str = "all") -> dict:
    """Evaluate and aggregate: {set: {group: {system: {"all"|"supported": rates, "pieces": n,
    "mir_eval": {...}}}}} plus the dropped pieces and failures."""
    todo = _jobs(data, sets, limit, systems, chordify_limit, rn_part)
    totals: dict = defaultdict(dict)
    mir: dict = defaultdict(lambda: defaultdict(lambda: (0.0, 0.0)))
    pieces: dict = defaultdict(int)
    dropped, failed = [], []
    context = multiprocessing.get_context("forkserver")
    with ProcessPoolExecutor(max(1, jobs), mp_context=context) as pool:
        futures = [pool.submit(evaluate, *job) for job in todo]
        for n, future in enumerate(futures, 1):
            result = future.result()
            print(f"\r{n}/{len(futures)} pieces", end="", file=sys.stderr, flush=True)
            dropped += result.dropped
            failed += result.failed
            for (set_name, group, system, spans), t in result.totals.items():
                for g in (group, "all"):
                    key = (set_name, g, system, spans)
                    totals[key] = add(totals[key], t)
                    pieces[key] += 1
            for (set_name, group, system), sums in result.mir.items():
                for g in (group, "all"):
                    for metric, (a, b) in sums.items():
                        x, y = mir[(set_name, g, system)][metric]
                        mir[(set_name, g, system)][metric] = (x + a, y + b)
    print(file=sys.stderr)
    out: dict = defaultdict(lambda: defaultdict(dict))
    for (set_name, group, system, spans), t in totals.items():
        entry = out[set_name][group].setdefault(system, {"pieces": pieces[(set_name, group, system, spans)]})
        entry[spans] = rates(t) | {"duration": t["duration"]}
    for (set_name, group, system), sums in mir.items():
        out[set_name][group][system]["mir_eval"] = {m: a / b if b else 0.0 for m, (a, b) in sums.items()}
    return {"results": json.loads(json.dumps(out)), "dropped": dropped, "failed": failed}


def print_tables(report: dict, systems: tuple[str, ...]) -> None:
    for set_name, groups in report["results"].items():
        shown = sorted(groups, key=lambda g: (g == "all", g))
        for group in shown if len(shown) > 2 else ["all"]:   # one group: "all" is the same table
            rows = groups[group]
            for spans in ("all", "supported"):
                if set_name.startswith("pop909") and spans == "supported":
                    continue   # every POP909 span counts as supported
                mir = set_name.startswith("pop909")
                title = f"{set_name} / {group}" + (" / supported spans only" if spans == "supported" else "")
                print(f"\n{title}")
                head = f"{'system':10s} {'pieces':>6s} " + " ".join(f"{m:>8s}" for m in METRICS)
                print(head + ("  " + " ".join(f"{'mir ' + m:>12s}" for m in MIR_EVAL) if mir else ""))
                for system in systems:
                    if system not in rows:
                        continue
                    r = rows[system]
                    line = f"{system:10s} {r['pieces']:6d} " + " ".join(f"{r[spans][m]:8.3f}" for m in METRICS)
                    if mir:
                        line += "  " + " ".join(f"{r['mir_eval'][m]:12.3f}" for m in MIR_EVAL)
                    print(line)
    if report["dropped"]:
        print(f"\nm21: {len({d[1] for d in report['dropped']})} pieces dropped "
              "(their analysis does not fit the score):")
        for variant, name, group, reason in report["dropped"]:
            print(f"  {name} ({group}{', MIDI export' if variant == 'm21-midi' else ''}): {reason}")
    if report["failed"]:
        print(f"\n{len(report['failed'])} system runs failed (counted as predicting nothing):")
        for set_name, name, system, why in report["failed"]:
            print(f"  {set_name} {name} {system}: {why}")


def speed(data: Path, repeats: int, jobs: int, limit: int | None) -> dict:
    """Cold extraction of pop909-dev with ``chords`` against ``onset`` (interleaved, medians),
    then warm extraction with ``chords``."""
    os.environ["CHORDVAE_CACHE"] = tempfile.mkdtemp(prefix="chordvae-speed-")
    from chordvae.chords.corpus import read_corpus
    from chordvae.chords.segment import Segmentation

    files = [p.path for p in load_pop909(data / "pop909-dev", limit=limit)]
    times: dict[str, list[float]] = {"chords": [], "onset": []}
    for mode in times:   # untimed warm-up: imports and first-call costs are not extraction
        read_corpus(files[:1], Segmentation(mode=mode), jobs=1, progress=False, use_cache=False)
    for _ in range(repeats):
        for mode in times:
            start = time.perf_counter()
            read_corpus(files, Segmentation(mode=mode), jobs=jobs, progress=False, use_cache=False)
            times[mode].append(time.perf_counter() - start)
    start = time.perf_counter()
    read_corpus(files, Segmentation(mode="chords"), jobs=jobs, progress=False)
    warm = time.perf_counter() - start
    cold = {mode: statistics.median(t) for mode, t in times.items()}
    report = {"files": len(files), "jobs": jobs, "repeats": repeats, "cold_seconds": cold,
              "ratio_chords_over_onset": cold["chords"] / cold["onset"],
              "warm_files_per_second": len(files) / warm}
    print(f"pop909-dev, {len(files)} files, {jobs} jobs, {repeats} interleaved repeats (medians)")
    print(f"cold: chords {cold['chords']:.2f} s, onset {cold['onset']:.2f} s, "
          f"ratio {report['ratio_chords_over_onset']:.2f} (target <= 1.5)")
    print(f"warm (cached), chords: {report['warm_files_per_second']:.0f} files/s (target > 1000)")
    return report


def _names(text: str, allowed: tuple[str, ...], what: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        raise SystemExit(f"error: unknown {what} {', '.join(unknown) or '(none)'}; choose from {', '.join(allowed)}")
    return names


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", default=",".join(SETS), help=f"comma-separated, from {', '.join(SETS)}")
    parser.add_argument("--systems", default=",".join(SYSTEMS), help=f"comma-separated, from {', '.join(SYSTEMS)}")
    parser.add_argument("--limit", type=int, help="at most N pieces per set")
    parser.add_argument("--chordify-limit", type=int,
                        help=f"run chordify on the first N pieces of each set (default: {CHORDIFY_LIMIT} songs, other sets all)")
    parser.add_argument("--data", type=Path, default=SHARED, help="folder with pop909-dev/ and rn-dev/")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1, help="worker processes (pieces in parallel)")
    parser.add_argument("--rn-dev-part", choices=RN_DEV_PARTS, default="all",
                        help="rn-dev's pieces to score: all, or the half the emission model is fitted on (fit) "
                             "or the held-out half (check); see benchmarks/fit_emission.py")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--speed", action="store_true", help="time extraction instead (see above)")
    parser.add_argument("--repeats", type=int, default=3, help="--speed: interleaved repeats")
    args = parser.parse_args(argv)
    systems, sets = _names(args.systems, SYSTEMS, "system"), _names(args.sets, SETS, "set")
    if (args.limit is not None and args.limit < 1) or args.jobs < 1 or args.repeats < 1:
        raise SystemExit("error: --limit, --jobs and --repeats must be at least 1")
    if not args.data.is_dir():
        raise SystemExit(f"error: the data sets are not at {args.data} (use --data)")
    if args.speed:
        report = speed(args.data, args.repeats, args.jobs, args.limit)
    else:
        report = run(args.data, sets, systems, args.limit, args.jobs, args.chordify_limit, args.rn_dev_part)
        print_tables(report, systems)
    report["command"] = "python benchmarks/chord_recognition.py " + " ".join(sys.argv[1:] if argv is None else argv)
    if args.json:
        from chordvae.fileio import write_json

        write_json(args.json, report)


if __name__ == "__main__":
    main()
