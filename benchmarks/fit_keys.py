"""Count the recogniser's key model (chordvae/chords/keys.py) on labelled development data.

Training data as for the learned emission (benchmarks/fit_emission.py): the first ``--pop-limit``
songs of pop909-train (keys from ``key_audio.txt``) and the ``fit`` half of rn-dev (the
analyses' local keys); rn-dev's ``check`` half and pop909-dev stay held out. Each analysis frame
of the recogniser gets the truth chord and key at its middle. Per mode, relative to the tonic:

- the key profile: the share of the frames' note time on each pitch class (log);
- the chord table: ``log P(root, quality | key) / P(quality) / 12``, the frames' truth chords
  (as the decoder's states) counted with a Dirichlet prior of ``--smoothing`` times the mode's
  frames, centred on the quality's overall share (a chord never seen in a mode gets
  ``log(smoothing / (1 + smoothing))``).

The two sources weigh 1 : 1 (frames weighted by their length in quarter notes). Counting only: the
same data give the same tables. ``--grid`` then scores the recogniser on the fit pieces only
(rn-dev's fit half, the first ``--check-songs`` pop909-train songs) for key weights,
concentrations and change probabilities, and prints the key chain's frame accuracy.

    python benchmarks/fit_keys.py          # writes chordvae/chords/keys.json
"""
from __future__ import annotations

import argparse
import itertools
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.chord_eval import SHARED, Piece, add, load_pop909, load_rn_dev, rates, rn_dev_part, score_events  # noqa: E402
from benchmarks.chord_recognition import mir_eval_sums  # noqa: E402
from benchmarks.chord_systems import predicted  # noqa: E402
from benchmarks.fit_emission import frame_spans, line, state_of  # noqa: E402
from chordvae.chords import keys, recognise as rec  # noqa: E402
from chordvae.chords.readers import Notes, read_notes  # noqa: E402
from chordvae.chords.recognise import Frames, RecogniserOptions, States, analysis_frames  # noqa: E402
from chordvae.chords.vocabulary import RECOGNISED  # noqa: E402


@dataclass
class Labelled:
    """One fit piece: its notes, frames, and per frame the truth state and key (-1 unknown)."""

    piece: Piece
    notes: Notes
    frames: Frames
    state: np.ndarray
    key: np.ndarray


def labelled(piece: Piece, options: RecogniserOptions, states: States) -> Labelled | None:
    notes = read_notes(piece.path)
    frames = analysis_frames(notes, options)
    if frames is None:
        return None
    span = frame_spans(piece, notes, frames.grid.edges)
    span_state = np.array([state_of(s, states) for s in piece.spans])
    span_key = np.array([s.key for s in piece.spans])
    inside = span >= 0
    k = np.clip(span, 0, None)
    return Labelled(piece, notes, frames, np.where(inside, span_state[k], -1), np.where(inside, span_key[k], -1))


def count(data: list[Labelled], states: States, smoothing: float, by_family: bool,
          moves: np.ndarray) -> keys.KeyModel:
    """The key profiles and chord tables of ``data`` (see the module's docstring), with the
    chord ``moves`` of :func:`count_moves`."""
    modes = len(keys.MODES)
    profile = np.zeros((modes, 12))
    chords = np.zeros((modes, 12, len(RECOGNISED)))
    quality = np.array([RECOGNISED.index(q) for _, q in states.names])
    pop_frames = sum(float(np.diff(d.frames.grid.edges)[d.key >= 0].sum()) for d in data if d.piece.group == "pop")
    rn_frames = sum(float(np.diff(d.frames.grid.edges)[d.key >= 0].sum()) for d in data if d.piece.group != "pop")
    for d in data:
        source = 1.0 / max(pop_frames if d.piece.group == "pop" else rn_frames, 1e-9)
        length = np.diff(d.frames.grid.edges) * source
        known = d.key >= 0
        tonic, mode = d.key % 12, d.key // 12
        rel_pc = (np.arange(12)[None, :] + tonic[:, None]) % 12        # [frame, interval] -> pitch class
        share = d.frames.profile / np.maximum(d.frames.profile.sum(1, keepdims=True), 1e-12)
        rotated = np.take_along_axis(share, rel_pc, axis=1)
        np.add.at(profile, mode[known], rotated[known] * length[known, None])
        chord = known & (d.state > 0)
        s = d.state[chord] - 1
        np.add.at(chords, (mode[chord], (states.roots[s] - tonic[chord]) % 12, quality[s]), length[chord])
    profile = np.log(profile / profile.sum(1, keepdims=True))
    if by_family:   # pool the qualities of one triad: the key then says nothing of V against V7
        family = np.array([keys.FAMILIES[q] for q in RECOGNISED])
        pooled = np.stack([chords[:, :, family == f].sum(2) for f in range(max(family) + 1)], axis=2)
        return keys.KeyModel(RECOGNISED, profile, _log_ratios(pooled, smoothing)[:, :, family], moves)
    return keys.KeyModel(RECOGNISED, profile, _log_ratios(chords, smoothing), moves)


#: The log ratio of a move that cannot happen (a root interval into no chord).
IMPOSSIBLE = -10.0


def count_moves(data: list[Labelled], states: States, sources: set[str], smoothing: float,
                backoff: float) -> np.ndarray:
    """The key model's ``moves`` (see :class:`~chordvae.chords.keys.KeyModel`): every change of
    the truth state between two frames of a known key, in pieces of ``sources`` (``pop``,
    ``rn-dev``; each source's moves weigh alike in total, the total being the number of moves).
    A key-free table ``P(interval, new class | class left)`` pooled over modes and degrees, mixed
    with the new chords' overall shares (``smoothing``), is the prior of the keyed table, worth
    ``backoff`` moves in each (mode, degree, class) row; each entry is divided by the new chord's
    share (its class's share over 12 roots)."""
    c = keys.MOVE_CLASSES
    cls = np.array([0] + [1 + keys.FAMILIES[q] for _, q in states.names])
    roots = np.array([0] + list(states.roots))
    per_source: dict[str, np.ndarray] = {}
    for d in data:
        source = "pop" if d.piece.group == "pop" else "rn-dev"
        if source not in sources:
            continue
        table = per_source.setdefault(source, np.zeros((len(keys.MODES), 12, c, 12, c)))
        a, b, key = d.state[:-1], d.state[1:], d.key[1:]
        moved = (a >= 0) & (b >= 0) & (a != b) & (key >= 0)
        a, b, key = a[moved], b[moved], key[moved]
        tonic = key % 12
        degree = np.where(cls[a] > 0, (roots[a] - tonic) % 12, 0)
        origin = np.where(cls[a] > 0, roots[a], tonic)
        interval = np.where(cls[b] > 0, (roots[b] - origin) % 12, 0)
        np.add.at(table, (key // 12, degree, cls[a], interval, cls[b]), 1.0)
    total = sum(t.sum() for t in per_source.values())
    counts = sum(t * total / (len(per_source) * t.sum()) for t in per_source.values())
    new_class = counts.sum((0, 1, 2, 3)) / counts.sum()
    base = np.zeros((12, c))
    base[:, 1:] = new_class[None, 1:] / 12
    base[0, 0] = new_class[0]
    free = counts.sum((0, 1))                                            # (class left, interval, new class)
    free = free / np.maximum(free.sum((1, 2), keepdims=True), 1e-12)
    free = (1 - smoothing) * free + smoothing * base[None]
    rows = counts.sum((3, 4), keepdims=True)
    keyed = (counts + backoff * free[None, None]) / (rows + backoff)
    possible = base > 0
    return np.where(possible, np.log(np.where(possible, keyed, 1.0) / np.where(possible, base, 1.0)), IMPOSSIBLE)


def _log_ratios(chords: np.ndarray, smoothing: float) -> np.ndarray:
    """``log P(root, c | mode) / (P(c) / 12)`` from counts ``(modes, 12, C)`` (see the module's docstring)."""
    per_class = chords.sum((0, 1)) / chords.sum()                      # P(c), both modes
    total = chords.sum((1, 2), keepdims=True)
    expected = per_class[None, None, :] / 12
    p = (chords + smoothing * total * expected) / ((1 + smoothing) * total)
    return np.log(p / expected)


def key_accuracy(data: list[Labelled], options: RecogniserOptions) -> float:
    """Share of the frames (by length) whose truth key is the key chain's most likely key."""
    right = total = 0.0
    for d in data:
        known = d.key >= 0
        guess = rec.key_posterior(d.frames, options).argmax(1)
        length = np.diff(d.frames.grid.edges)
        right += float(length[known & (guess == d.key)].sum())
        total += float(length[known].sum())
    return right / max(total, 1e-9)


def evaluate(data: list[Labelled], options: RecogniserOptions) -> str:
    """The recogniser's scores per group (pop, textbooks, lieder), pop's with mir_eval's majmin."""
    totals: dict[str, dict] = {}
    majmin = np.zeros(2)
    for d in data:
        events = rec.recognise(d.notes, options, d.frames)
        totals[d.piece.group] = add(totals.get(d.piece.group, {}), score_events(events, d.piece))
        if d.piece.group == "pop":
            majmin += mir_eval_sums(predicted(events, d.piece.unit), d.piece)["majmin"]
    return line({g: rates(t) for g, t in totals.items()}) + f" | pop majmin {majmin[0] / max(majmin[1], 1e-9):.3f}"


def floats(text: str) -> list[float]:
    return [float(v) for v in text.split(",") if v.strip()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--pop-limit", type=int, default=150, help="the first N pop909-train songs")
    parser.add_argument("--smoothing", type=float, default=0.05,
                        help="Dirichlet prior of the chord tables, as a share of the mode's frames")
    parser.add_argument("--tables", choices=("families", "qualities"), default="families",
                        help="chord tables per triad (the qualities of one triad share their entry) or per quality")
    parser.add_argument("--grid", action="store_true", help="score key weights x concentrations x changes")
    parser.add_argument("--weights", default="0,0.5,1,2")
    parser.add_argument("--concentrations", default="1")
    parser.add_argument("--changes", default="0.01")
    parser.add_argument("--check-songs", type=int, default=60)
    parser.add_argument("--move-sources", default="rn-dev", help="whose chord moves are counted: pop, rn-dev or both")
    parser.add_argument("--move-smoothing", type=float, default=0.05,
                        help="share of the new chords' overall shares in the key-free move table")
    parser.add_argument("--move-backoff", type=float, default=50.0,
                        help="moves the key-free table is worth in each keyed row")
    parser.add_argument("--move-grid", action="store_true", help="score move weights (the other settings at default)")
    parser.add_argument("--move-weights", default="0,0.3,0.5,0.7,1")
    parser.add_argument("--unseen-songs", type=int, default=0,
                        help="also score the move weights on this many pop909-train songs after the first --pop-limit "
                             "(counted in no table, no emission weight)")
    args = parser.parse_args()
    start = time.perf_counter()
    options, states = RecogniserOptions(), States.vocabulary()
    pieces = load_pop909(args.data / "pop909-train", limit=args.pop_limit) \
        + rn_dev_part(load_rn_dev(args.data / "rn-dev"), "fit")
    data = [d for d in (labelled(p, options, states) for p in pieces) if d is not None]
    print(f"read {len(data)} pieces in {time.perf_counter() - start:.0f} s", flush=True)
    moves = count_moves(data, states, set(args.move_sources.split(",")), args.move_smoothing, args.move_backoff)
    model = count(data, states, args.smoothing, args.tables == "families", moves)
    from chordvae.fileio import write_text

    # one line per table: the moves' 10,368 numbers would take as many lines indented
    tables = model.to_json()
    write_text(keys.MODEL_FILE, "{\n" + ",\n".join(f"  {json.dumps(name)}: {json.dumps(table, separators=(',', ':'))}"
                                                   for name, table in tables.items()) + "\n}\n")
    keys.load_model.cache_clear()
    rec._key_ratios.cache_clear()
    rec._move_ratios.cache_clear()
    print(f"wrote {keys.MODEL_FILE} ({time.perf_counter() - start:.0f} s)", flush=True)
    check = [d for d in data if d.piece.group != "pop"] + [d for d in data if d.piece.group == "pop"][:args.check_songs]
    if args.move_grid:
        print(f"moves of {args.move_sources}, smoothing {args.move_smoothing}, backoff {args.move_backoff}:", flush=True)
        for weight in floats(args.move_weights):
            print(f"  move weight {weight}:", evaluate(check, replace(options, move_weight=weight)), flush=True)
        if args.unseen_songs:
            songs = load_pop909(args.data / "pop909-train")[args.pop_limit:args.pop_limit + args.unseen_songs]
            unseen = [d for d in (labelled(p, options, states) for p in songs) if d is not None]
            print(f"{len(unseen)} pop909-train songs after the first {args.pop_limit}:", flush=True)
            for weight in floats(args.move_weights):
                print(f"  move weight {weight}:", evaluate(unseen, replace(options, move_weight=weight)), flush=True)
    if not args.grid:
        return
    for concentration, change in itertools.product(floats(args.concentrations), floats(args.changes)):
        keyed = replace(options, key_concentration=concentration, key_change=change)
        print(f"concentration {concentration} change {change}: key accuracy {key_accuracy(check, keyed):.3f}",
              flush=True)
        for weight in floats(args.weights):
            print(f"  weight {weight}:", evaluate(check, replace(keyed, key_weight=weight)), flush=True)


if __name__ == "__main__":
    main()
