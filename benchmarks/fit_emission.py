"""Fit the recogniser's learned emission (chordvae/chords/emission.py) on labelled development data.

Training data: the first ``--pop-limit`` songs of pop909-train (POP909 songs with Harte labels;
pop909-dev is NOT used) and the ``fit`` half of rn-dev's pieces (whole pieces, half of each
group, ``benchmarks/chord_eval.py:rn_dev_part``); rn-dev's ``check`` half and pop909-dev stay
held out (``chord_recognition.py --rn-dev-part check``). Each analysis frame of the recogniser
is labelled with the truth chord at its middle (a chord outside the recogniser's vocabulary: the
vocabulary chord on its root sharing most pitch classes; ``N``: no chord).

The emission is trained inside the recogniser's chain, as a linear-chain CRF: the weighted
log-probability of each chunk's truth path given its frames is maximised by full-batch L-BFGS
for ``--iterations`` steps, with the chain's transitions (the default change probabilities per
metrical level) fixed. The weights start from the hand-set templates and an L2 penalty
(``--l2``) keeps them near them; rn-dev's frames are weighted so that the two sources weigh
``--rn-weight`` : 1. ``--hold biases`` keeps the emission's biases at those of a fitted model
(``--hold-from``, the current emission.json by default): each quality's bias, its note weights'
mean per block (a bias times the evidence strength ``s`` or ``1 - s``, as a frame's shares sum to
1 in each block), its bass weights' mean (a bias, as every frame has one bass class) and the
no-chord weights; only the note and bass weights' pattern around their means is fitted, so
weighting rn-dev up cannot move the balance between qualities or the no-chord score. ``--hold
bass`` also keeps the bass weights. (Weighting rn-dev up with nothing held won on its held-out
half but cost pop909-dev and the key prior's thin cases; held, a 2 : 1 fit on the 1 : 1 fit's
biases and bass is emission.json since issue 19 step 6: benchmarks/README.md.) The gradient is
summed over batches of ``--batch`` chunks, so that all 659 pop909-train songs fit in memory.
No randomness beyond the seeded rn-dev split: the same data give the same weights. ``--scales``
then scores the recogniser with the new weights (and the templates), both without the key prior
(``key_weight=0``; the emission is fitted without it), on fit pieces only: rn-dev's fit half and
the first ``--check-songs`` pop909-train songs.

    python benchmarks/fit_emission.py --scales 1     # the 1 : 1 fit (emission.json until step 6)
    python benchmarks/fit_emission.py --rn-weight 2 --hold biases,bass --scales 1   # then: emission.json
"""
from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.chord_eval import SHARED, Piece, add, load_pop909, load_rn_dev, rates, rn_dev_part, score_events  # noqa: E402
from chordvae.chords import emission, recognise as rec  # noqa: E402
from chordvae.chords.readers import Notes, read_notes  # noqa: E402
from chordvae.chords.recognise import RecogniserOptions, States, analysis_frames  # noqa: E402
from chordvae.chords.vocabulary import RECOGNISED, chord_set  # noqa: E402
from chordvae.errors import ChordVAEError  # noqa: E402


def state_of(span, states: States) -> int:
    """The decoder state that stands for a truth span: its chord if in the vocabulary, else the
    vocabulary chord on its root sharing most pitch classes; no chord for ``N``."""
    if span.root < 0 or not span.pitch_classes:
        return States.NO_CHORD
    best, best_score = -1, -1.0
    for quality in RECOGNISED:
        pcs = frozenset(chord_set(span.root, quality))
        jaccard = len(pcs & span.pitch_classes) / len(pcs | span.pitch_classes)
        if jaccard > best_score:
            best, best_score = states.names.index((span.root, quality)) + 1, jaccard
    return best


def examples(piece: Piece, notes: Notes, options: RecogniserOptions,
             states: States) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, bool]:
    """One piece's frames: features ``x`` (F, D), bass classes (F,), truth states (F,; -1 none),
    metrical levels (F,), and whether it is a pop song."""
    frames = analysis_frames(notes, options)
    if frames is None:
        empty = np.zeros(0, dtype=int)
        return np.zeros((0, emission.BLOCKS * 12)), empty, empty, empty, piece.group == "pop"
    x, bass_class = emission.features(frames.profile, frames.bass, np.diff(frames.grid.edges), options.evidence_notes)
    span = frame_spans(piece, notes, frames.grid.edges)
    span_state = np.array([state_of(s, states) for s in piece.spans])
    label = np.where(span >= 0, span_state[np.clip(span, 0, None)], -1)
    return x, bass_class, label, frames.grid.level, piece.group == "pop"


def frame_spans(piece: Piece, notes: Notes, edges: np.ndarray) -> np.ndarray:
    """Int ``(F,)``: the truth span at the middle of each frame (``edges`` (F + 1,) in quarter
    notes) as an index into ``piece.spans``, -1 where none."""
    middle = 0.5 * (edges[:-1] + edges[1:])
    if piece.unit == "seconds":
        middle = notes.seconds(middle)
    starts = np.array([s.start for s in piece.spans])
    ends = np.array([s.end for s in piece.spans])
    k = np.searchsorted(starts, middle, side="right") - 1
    inside = (k >= 0) & (middle < ends[np.clip(k, 0, None)])
    return np.where(inside, k, -1)


def template_weights(options: RecogniserOptions) -> emission.EmissionModel:
    """The hand-set templates of ``options`` (recognise.py's ``_emission``) as emission weights:
    the fit starts from them."""
    notes = np.zeros((len(RECOGNISED), emission.BLOCKS, 12))
    bass = np.zeros((len(RECOGNISED), emission.BASS_CLASSES))
    for k, quality in enumerate(RECOGNISED):
        tones = np.isin(np.arange(12), chord_set(0, quality))
        size = tones.sum()
        eps = options.non_chord_mass
        notes[k, 0] = options.concentration * np.log(np.where(tones, (1 - eps) / size, eps / (12 - size)))
        tone = (1 - options.bass_root - options.bass_out) / max(size - 1, 1)
        bass[k, :12] = options.bass_weight * np.log(np.where(tones, tone, options.bass_out / (12 - size)))
        bass[k, 0] = options.bass_weight * np.log(options.bass_root)
    bias = np.array([options.quality_prior.get(q, rec.UNLISTED_QUALITY_PRIOR) for q in RECOGNISED])
    uniform = -np.log(12.0)
    no_chord = np.array([options.concentration * uniform, 0.0, -options.bass_weight * uniform,
                         options.no_chord_prior + options.bass_weight * uniform])
    return emission.EmissionModel(RECOGNISED, notes, bass, bias, no_chord)


#: What ``fit`` can hold at a fitted model's values: the biases, the bass weights.
HOLDABLE = ("biases", "bass")


def start_weights(options: RecogniserOptions, held: emission.EmissionModel | None,
                  hold: frozenset[str]) -> emission.EmissionModel:
    """Where the fit starts: the hand-set templates, with the parts named in ``hold`` (of
    ``HOLDABLE``) taken from ``held``: ``biases`` the per-quality biases, the note weights' mean
    per quality and block, the bass weights' mean per quality and the no-chord weights; ``bass``
    the bass weights."""
    start = template_weights(options)
    if not hold:
        return start
    if held is None or held.qualities != start.qualities:
        raise ValueError("holding weights needs a fitted model with the recogniser's qualities")
    notes, bass, bias, no_chord = start.notes, start.bass, start.bias, start.no_chord
    if "biases" in hold:
        notes = notes - notes.mean(-1, keepdims=True) + held.notes.mean(-1, keepdims=True)
        bass = bass - bass.mean(-1, keepdims=True) + held.bass.mean(-1, keepdims=True)
        bias, no_chord = held.bias, held.no_chord
    if "bass" in hold:
        bass = held.bass
    return emission.EmissionModel(start.qualities, notes, bass, bias, no_chord)


def chunks(parts: list[tuple[np.ndarray, ...]], length: int) -> tuple[np.ndarray, ...]:
    """Pieces cut into chunks of ``length`` frames, padded: features (P, L, D) with the bass one-hot,
    labels (P, L; -1 unknown), metrical levels (P, L), valid (P, L), and the chunk's source (P,)."""
    xs, ys, levels, valid, source = [], [], [], [], []
    for x, bass_class, label, level, is_pop in parts:
        full = np.concatenate([x, np.eye(emission.BASS_CLASSES)[bass_class]], 1)
        for a in range(0, len(label), length):
            n = min(length, len(label) - a)
            if (label[a:a + n] < 0).all():
                continue
            pad = length - n
            xs.append(np.pad(full[a:a + n], ((0, pad), (0, 0))))
            ys.append(np.pad(label[a:a + n], (0, pad), constant_values=-1))
            levels.append(np.pad(level[a:a + n], (0, pad)))
            valid.append(np.arange(length) < n)
            source.append(is_pop)
    return np.stack(xs), np.stack(ys), np.stack(levels), np.stack(valid), np.array(source)


def fit(parts: list[tuple[np.ndarray, ...]], rn_weight: float, options: RecogniserOptions, states: States,
        l2: float, iterations: int, length: int, batch: int, held: emission.EmissionModel | None = None,
        hold: frozenset[str] = frozenset()) -> emission.EmissionModel:
    """Fit the emission inside the recogniser's chain (a linear-chain CRF): maximise the weighted
    log-probability of each chunk's truth path given its frames, with the chain's transitions
    (stay 1 - p, move to each other state p / (S - 1), p = ``options.change_prob`` by metrical
    level) fixed; frames without truth may be in any state. The gradient is summed over batches
    of ``batch`` chunks (the same gradient in bounded memory). The parts named in ``hold``
    (``start_weights``) stay at ``held``'s values: their gradient is projected out."""
    import torch

    x, label, level, valid, is_pop = chunks(parts, length)
    frames = (valid & (label >= 0)).sum(1)
    weight = np.where(is_pop, 1.0, rn_weight * frames[is_pop].sum() / max(frames[~is_pop].sum(), 1))
    print(f"{len(x)} chunks of {length} frames: pop909-train {frames[is_pop].sum()} frames, "
          f"rn-dev fit half {frames[~is_pop].sum()}", flush=True)
    n_states = len(states.names) + 1
    quality = torch.tensor([RECOGNISED.index(name) for _, name in states.names])
    rel = torch.tensor(emission.relative([root for root, _ in states.names]))
    x_t = torch.tensor(x, dtype=torch.float32)
    allowed = torch.ones(label.shape + (n_states,), dtype=torch.bool)
    known = label >= 0
    allowed[torch.tensor(known)] = torch.nn.functional.one_hot(torch.tensor(label[known]), n_states).bool()
    log_p = np.log(np.asarray(options.change_prob))[level]
    stay = torch.tensor(np.log1p(-np.exp(log_p)), dtype=torch.float32)[:, :, None]
    move = torch.tensor(log_p - np.log(n_states - 1), dtype=torch.float32)[:, :, None]
    valid_t = torch.tensor(valid)[:, :, None]
    w_t = torch.tensor(weight / (weight * frames).sum(), dtype=torch.float32)
    start, template = start_weights(options, held, hold), template_weights(options)
    notes, bass, bias, no_chord = params = [torch.tensor(w, dtype=torch.float32, requires_grad=True)
                                            for w in (start.notes, start.bass, start.bias, start.no_chord)]
    origin = [torch.tensor(w, dtype=torch.float32) for w in (template.notes, template.bass, template.bias,
                                                             template.no_chord)]
    blocks = emission.BLOCKS

    def scores(part: slice) -> torch.Tensor:
        w = torch.gather(notes[quality], 2, rel[:, None, :].expand(-1, blocks, -1)).reshape(n_states - 1, -1)
        bw = torch.cat([torch.gather(bass[quality, :12], 1, rel), bass[quality, 12:]], 1)
        w = torch.cat([no_chord[:blocks].repeat_interleave(12)[None, :], w])
        bw = torch.cat([torch.cat([torch.zeros(12), no_chord[blocks:blocks + 1]])[None, :], bw])
        b = torch.cat([no_chord[blocks + 1:], bias[quality]])
        return x_t[part] @ torch.cat([w, bw], 1).T + b

    def log_z(e: torch.Tensor, part: slice) -> torch.Tensor:
        frames = e.unbind(1)   # slicing e per step would make each step's gradient a full-size tensor
        alpha = frames[0]
        for t in range(1, len(frames)):
            step = torch.logaddexp(alpha + stay[part, t], torch.logsumexp(alpha, 1, keepdim=True) + move[part, t]) \
                + frames[t]
            alpha = torch.where(valid_t[part, t], step, alpha)
        return torch.logsumexp(alpha, 1)

    optimiser = torch.optim.LBFGS(params, lr=1.0, max_iter=iterations, history_size=20,
                                  tolerance_grad=1e-7, tolerance_change=1e-9, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        nll = torch.zeros(())
        for a in range(0, len(x_t), batch):   # one graph per batch of chunks: memory stays bounded
            part = slice(a, a + batch)
            e = scores(part)
            term = ((log_z(e, part) - log_z(e.masked_fill(~allowed[part], -1e4), part)) * w_t[part]).sum()
            term.backward()
            nll = nll + term.detach()
        penalty = l2 * sum((p - p0).pow(2).sum() for p, p0 in zip(params, origin))
        penalty.backward()
        if "biases" in hold:   # the fit moves only the weights' pattern around each mean
            notes.grad -= notes.grad.mean(-1, keepdim=True)
            bass.grad -= bass.grad.mean(-1, keepdim=True)
            bias.grad.zero_()
            no_chord.grad.zero_()
        if "bass" in hold:
            bass.grad.zero_()
        return nll + penalty.detach()

    if iterations > 0:
        optimiser.step(closure)
    print(f"fitted: loss per frame {float(closure().detach()):.4f}", flush=True)
    detach = [p.detach().double().numpy() for p in params]
    return emission.EmissionModel(RECOGNISED, *detach)


def evaluate(pieces: list[tuple[Piece, Notes]], options: RecogniserOptions) -> dict[str, dict[str, float]]:
    """Rates per group (pop, textbooks, lieder) of the recogniser with ``options``."""
    totals: dict[str, dict] = {}
    for piece, notes in pieces:
        totals[piece.group] = add(totals.get(piece.group, {}), score_events(rec.recognise(notes, options), piece))
    return {g: rates(t) for g, t in totals.items()}


def line(r: dict[str, dict[str, float]]) -> str:
    return " | ".join(f"{g} exact {m['exact']:.3f} triad {m['triad']:.3f} root {m['root']:.3f} bass {m['bass']:.3f}"
                      for g, m in sorted(r.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=SHARED)
    parser.add_argument("--rn-weight", type=float, default=1.0, help="rn-dev frames' total weight / pop909-train's")
    parser.add_argument("--hold", default="", help=f"comma-separated, of {', '.join(HOLDABLE)}: weights kept at "
                                                   "--hold-from's values (the module docstring)")
    parser.add_argument("--hold-from", type=Path, default=emission.MODEL_FILE,
                        help="the fitted model whose held weights are kept (read before the fit is written)")
    parser.add_argument("--l2", type=float, default=1e-3,
                        help="L2 penalty on the weights' distance from the hand-set templates they start from")
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--chunk", type=int, default=256, help="frames per training chunk")
    parser.add_argument("--batch", type=int, default=640,
                        help="chunks per backward pass (memory only; 640 holds the default fit in one)")
    parser.add_argument("--pop-limit", type=int, default=150, help="the first N pop909-train songs")
    parser.add_argument("--scales", default="", help="comma-separated emission scales to try on the fit pieces")
    parser.add_argument("--check-songs", type=int, default=60)
    args = parser.parse_args()
    hold = frozenset(h for h in args.hold.split(",") if h)
    if not hold <= set(HOLDABLE):
        parser.error(f"--hold takes {', '.join(HOLDABLE)}, not {', '.join(sorted(hold - set(HOLDABLE)))}")
    try:
        held = emission.load_model(args.hold_from) if hold else None
    except ChordVAEError as e:
        parser.error(str(e))
    import torch

    torch.set_num_threads(1)
    start = time.perf_counter()
    options = replace(RecogniserOptions(), emission="learned", key_weight=0.0)   # fitted without the key prior
    states = States.vocabulary()
    pieces = [(p, read_notes(p.path)) for p in
              load_pop909(args.data / "pop909-train", limit=args.pop_limit)
              + rn_dev_part(load_rn_dev(args.data / "rn-dev"), "fit")]
    print(f"read {len(pieces)} pieces in {time.perf_counter() - start:.0f} s", flush=True)
    parts = [examples(p, notes, options, states) for p, notes in pieces]
    model = fit(parts, args.rn_weight, options, states, args.l2, args.iterations, args.chunk, args.batch, held, hold)
    from chordvae.fileio import write_json

    write_json(emission.MODEL_FILE, model.to_json())
    emission.load_model.cache_clear()   # the scores below read the new file
    print(f"wrote {emission.MODEL_FILE} ({time.perf_counter() - start:.0f} s)", flush=True)
    if args.scales:
        check = [(p, n) for p, n in pieces if p.group != "pop"] + [(p, n) for p, n in pieces if p.group == "pop"][:args.check_songs]
        print("templates:", line(evaluate(check, replace(options, emission="templates"))), flush=True)
        for scale in [float(s) for s in args.scales.split(",")]:
            print(f"learned, scale {scale}:", line(evaluate(check, replace(options, emission_scale=scale))), flush=True)


if __name__ == "__main__":
    main()
