"""Chord recognition: the notes of a piece -> the chords a musician would write over them.

1. **Beats from the file**: the beat grid of the file's own meter (``Notes.beats``: music21's
   measures for scores, time signatures and tempo for MIDI). When a MIDI file's notes sit off
   its nominal grid (POP909's beats are offset by a song-specific fraction of a beat), the
   phase is estimated from the onsets; when its bars are unreliable (a declared 1/4, or a grid
   that had to be moved), the bar line is placed where the harmony changes most.
2. **Evidence** per frame (a half beat; a third of a compound beat; at most a quarter note):
   duration- and velocity-weighted pitch-class profiles with the melody over an accompaniment
   weighted down (a chorale's soprano is harmony), and the bass (the lowest note that sounds for
   a good part of the frame, melody excluded).
3. **Emission**: every root and quality of :mod:`~chordvae.chords.vocabulary` plus "no
   chord", scored as a hidden Markov model's emission: chord tones share most of the note
   mass, the bass prefers the root, and qualities have a prior. The weights are learned
   (:mod:`~chordvae.chords.emission`, fitted inside this chain on labelled development data
   from the hand-set templates they replace, which remain an option).
   **Key**: a chain over the 24 keys (on blocks of four beats) gives each frame a local key;
   each chord's emission gains ``key_weight`` times the log of how much likelier the key makes it
   (:mod:`~chordvae.chords.keys`: V/V and vii° gain in their key, a chord foreign to it loses).
4. **Decoding** the whole piece at once (Viterbi) with a harmonic-rhythm prior: a change is
   likeliest on a downbeat, less so on the bar's other strong beat, then on a beat, and least
   between beats. So a broken chord accumulates into one chord over its beat or bar, and a
   passing tone or a suspension does not pay for two changes. The prior is adapted to each
   piece (its expected changes per metrical level, by forward-backward), so a chorale may move
   on every beat while a pop song moves by the bar; a short suspended chord joins the chord it
   resolves to (a suspension of up to two beats), and a diminished seventh takes the root a
   semitone below the chord it resolves to (vii°7 of it). Forward-backward posteriors give each
   chord a confidence.
5. **Bass**: a chord is cut where its bass moves to another chord tone and stays there (at
   least a beat; the fifth, two): an analyst writes I and I6 as two chords. Each chord's bass
   is the chord tone heard most in the bass, by metrical weight, the lowest one weighing more.

All parameters are fields of :class:`RecogniserOptions`, fitted on the development data
(``benchmarks/tune_recogniser.py``; the learned emission's weights: ``benchmarks/fit_emission.py``).
"""
from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from functools import cached_property, lru_cache

import numpy as np

from ..errors import ChordVAEError
from . import keys
from .emission import features, load_model
from .events import ChordEvent
from .readers import FileRejected, Notes
from .vocabulary import chord_set, templates

DECODERS = ("viterbi", "argmax")
EMISSIONS = ("learned", "templates")
#: Track or part names that announce a melody (voice, lead, ...).
MELODY_NAMES = re.compile(r"melod|vocal|voice|voix|vox|lead|sing|soprano|chant|gesang|canto|solo", re.I)
#: Track or part names of an accompanying instrument: harmony, even where a track of it is a single line.
ACCOMPANIMENT_NAMES = re.compile(r"piano|klavier|clavier|cembalo|harpsichord|organ|orgel|harp|guitar|gitarre|"
                                 r"lute|laute|accomp|begleit", re.I)
#: Most (note, frame) pairs one piece may make; a hostile file is refused before it fills memory.
MAX_PAIRS = 20_000_000
#: A melody track: fewer than this share of its notes overlap their next note by more than
#: ``OVERLAP_TOLERANCE`` of their own length (it is monophonic), and its mean pitch is at least
#: ``MELODY_ABOVE`` semitones above the rest of the music.
POLYPHONIC_SHARE = 0.1
OVERLAP_TOLERANCE = 0.1
MELODY_ABOVE = 5
#: Beat phases told apart when looking for the onsets' phase (a 24th of a beat each), and how many
#: times the onset weight at the beat's start another phase needs to move the grid there.
PHASE_BINS = 24
PHASE_DOMINANCE = 2
#: A note is heard in a frame's bass when it sounds through this share of the frame (or starts in it).
BASS_HEARD = 0.25
#: Above every MIDI pitch: the lowest note of a frame with no bass note.
ABOVE_ANY_PITCH = 1 << 10
#: An event's ``sounding`` pitch classes: those with at least this share of the loudest one's weight.
SOUNDING_SHARE = 0.02
#: The log prior of a quality that ``RecogniserOptions.quality_prior`` does not list.
UNLISTED_QUALITY_PRIOR = -3.0
#: A bass on the chord's fifth (perfect, diminished or augmented: semitones above the root) makes a
#: chord of its own (a six-four) only when held this many times longer than another chord tone.
FIFTHS = (6, 7, 8)
FIFTH_HELD = 2
FIFTH_MASK = np.isin(np.arange(12), FIFTHS)
#: An event's bass (:func:`_event_basses`): a frame's bass weighs this much by its metrical level
#: (downbeat, strong beat, beat, between beats), and the lowest chord tone's weight is multiplied
#: by ``LOWEST_BASS_BONUS`` (both chosen on the fit half of rn-dev and pop909-train songs,
#: ``benchmarks/fit_bass.py``).
BASS_LEVEL_WEIGHT = np.array([3.0, 2.0, 1.5, 1.0])
LOWEST_BASS_BONUS = 3.0
#: The longest analysis frame, in quarter notes.
MAX_FRAME = 1.0
#: A frame's place in its bar (:class:`Grid`) counts beats up to this one; later beats share its places.
MAX_PLACE_BEAT = 15
#: The key chain's blocks, in beats.
KEY_BLOCK_BEATS = 4
#: A piece's change probabilities per metrical level are kept within this range.
CHANGE_RATE_RANGE = (1e-4, 0.9)


def _default_quality_prior() -> dict[str, float]:
    return {"maj": 0.0, "min": 0.0, "dim": -2.0, "aug": -2.0, "sus2": -2.0, "sus4": -2.5,
            "7": 0.0, "maj7": -1.5, "min7": -1.0, "hdim7": -1.5, "dim7": -1.0, "maj6": -2.0,
            "min6": -2.5, "sus4(b7)": -3.0}


@dataclass(frozen=True)
class RecogniserOptions:
    """The recogniser's parameters (fitted on the development data: pop909-dev and rn-dev by
    ``benchmarks/tune_recogniser.py``; the learned emission on pop909-train and half of rn-dev by
    ``benchmarks/fit_emission.py``).

    Evidence: ``melody_weight`` multiplies the notes of melody tracks; ``evidence_notes`` is
    how many notes sounding through a frame make full-strength evidence. Emission:
    ``concentration`` scales the pitch-class log-likelihood; ``non_chord_mass`` is the share of
    note time expected outside the chord; ``bass_weight`` scales the bass term, whose
    ``bass_root`` and ``bass_out`` are the probabilities of the bass being the root and of it
    being a non-chord tone. Priors: ``quality_prior`` (log, per quality), ``no_chord_prior``
    (log). Transitions: ``change_prob`` on a downbeat, the bar's other strong beat, another
    beat, and between beats. A suspended chord (sus2, sus4, sus4(b7)) of at most
    ``absorb_beats`` beats next to a chord on the same root is a suspension: it joins that chord.
    The change probabilities are a prior: each piece's own harmonic rhythm is estimated from
    its expected changes, per level with the prior worth ``rhythm_prior`` frames (``inf``:
    fixed), then per place in the bar (which beat, which part of it) with its level's rate as a
    prior worth ``place_prior`` frames (``inf``: per level only): a bar read from a MIDI file
    that lost its anacrusis still has its harmony change where the music's bar lines are.
    ``decoder``: ``viterbi`` (the whole piece) or ``argmax`` (every
    frame on its own, no smoothing: a baseline). ``emission``: ``learned`` (the fitted weights of
    :mod:`~chordvae.chords.emission`, times ``emission_scale``; ``concentration``,
    ``non_chord_mass``, the bass terms and the priors then serve only ``templates``) or
    ``templates`` (the hand-set templates above). A chord is cut where its bass moves to another
    chord tone for at least ``bass_split_beats`` beats (``FIFTH_HELD`` times that for the fifth;
    0: never). Key: each chord's log score gains ``key_weight`` (0: no key) times its log prior
    given the frame's local key (:mod:`~chordvae.chords.keys`), from a chain over the keys whose
    evidence is scaled by ``key_concentration`` and which changes key with probability
    ``key_change`` per frame (``benchmarks/fit_keys.py``); a chord change gains ``move_weight``
    times the key model's log ratio for that move in the frame's most likely key (V to I, IV to
    V, ...; 0: none; the default 0.3 gains on classical analyses and costs pop songs a little,
    benchmarks/README.md).
    """

    melody_weight: float = 0.2
    evidence_notes: float = 3.0
    concentration: float = 11.0
    non_chord_mass: float = 0.1
    bass_weight: float = 0.5
    bass_root: float = 0.75
    bass_out: float = 0.2
    quality_prior: dict[str, float] = field(default_factory=_default_quality_prior)
    no_chord_prior: float = -6.0
    change_prob: tuple[float, float, float, float] = (0.2, 0.05, 0.02, 0.002)
    absorb_beats: float = 2.0
    rhythm_prior: float = 10.0
    place_prior: float = 5.0
    decoder: str = "viterbi"
    emission: str = "learned"
    emission_scale: float = 1.0
    bass_split_beats: float = 1.0
    key_weight: float = 0.2
    key_concentration: float = 0.5
    key_change: float = 0.002
    move_weight: float = 0.3

    def __post_init__(self) -> None:
        if self.emission not in EMISSIONS:
            raise ChordVAEError(f"unknown emission {self.emission!r}; choose from {', '.join(EMISSIONS)}")
        if not self.emission_scale > 0 or not self.bass_split_beats >= 0:
            raise ChordVAEError("emission_scale must be positive and bass_split_beats at least 0")
        if not self.key_weight >= 0 or not self.move_weight >= 0 or not self.key_concentration > 0 \
                or not 0 < self.key_change < 1:
            raise ChordVAEError("key_weight and move_weight must be at least 0, key_concentration positive and "
                                "key_change between 0 and 1")
        if self.decoder not in DECODERS:
            raise ChordVAEError(f"unknown decoder {self.decoder!r}; choose from {', '.join(DECODERS)}")
        if not self.rhythm_prior > 0 or not self.place_prior > 0:
            raise ChordVAEError("rhythm_prior and place_prior must be positive")
        if not all(0 < p < 1 for p in self.change_prob) or len(self.change_prob) != 4:
            raise ChordVAEError("change_prob needs four probabilities between 0 and 1")

    def cache_key(self) -> str:
        """Names these options and, for the learned emission and the key prior, the fitted files."""
        model = f",model:{load_model().digest}" if self.emission == "learned" else ""
        model += f",keys:{keys.load_model().digest}" if self.key_weight > 0 or self.move_weight > 0 else ""
        return "rec:" + repr(sorted(asdict(self).items())) + model


@dataclass(frozen=True, eq=False)
class States:
    """The decoder's states: :attr:`NO_CHORD` (0), then every (root, quality) of the vocabulary,
    state ``s`` being ``names[s - 1]``. Per-state arrays have one entry per state, no chord first."""

    NO_CHORD = 0
    names: tuple[tuple[int, str], ...]
    rows: np.ndarray   # (S - 1, 12) binary templates of the chords, in the order of ``names``

    @classmethod
    def vocabulary(cls) -> States:
        """Every chord of :mod:`~chordvae.chords.vocabulary`."""
        rows, names = templates()
        return cls(tuple(names), rows)

    def chord(self, state: int) -> tuple[int, str]:
        """``(root, quality)`` of a chord state (not :attr:`NO_CHORD`)."""
        return self.names[state - 1]

    @cached_property
    def roots(self) -> np.ndarray:
        """Int ``(S - 1,)``: each chord's root."""
        return np.array([r for r, _ in self.names])

    def with_no_chord(self, no_chord: float, chords: np.ndarray | list) -> np.ndarray:
        """A per-state array ``(S, ...)`` from the chords' ``(S - 1, ...)``: no chord's entry
        (filled with ``no_chord``) first."""
        chords = np.asarray(chords)
        first = np.full((1,) + chords.shape[1:], no_chord, dtype=np.result_type(no_chord, chords))
        return np.concatenate([first, chords])


@dataclass
class Grid:
    """Analysis frames: ``edges`` (F + 1,) in quarter notes; ``level`` (F,) metrical level of
    each frame's start: 0 downbeat, 1 the bar's other strong beat, 2 another beat, 3 between
    beats; ``place`` (F,) its place in the bar (which beat, which part of it, and its level),
    numbered from 0."""

    edges: np.ndarray
    level: np.ndarray
    place: np.ndarray


@dataclass
class Frames:
    """One piece's evidence per analysis frame: the ``grid``, ``sub`` frames per beat, ``beats``
    (B + 1,) the beat edges in quarter notes, ``profile`` (F, 12) and ``bass`` (F,) of :func:`evidence`."""

    grid: Grid
    sub: int
    beats: np.ndarray
    profile: np.ndarray
    bass: np.ndarray


def analysis_frames(notes: Notes, options: RecogniserOptions = RecogniserOptions()) -> Frames | None:
    """The frames :func:`recognise` decodes (None when no note sounds)."""
    sounding = notes.end > notes.start
    if not sounding.any():
        return None
    beats, moved = beat_grid(notes)
    edges, sub = _frames(beats)
    profile, bass = evidence(notes, sounding, melody_tracks(notes), edges, options)
    level, place = _levels(notes, beats, sub, profile, reliable_bars=not moved)
    return Frames(Grid(edges, level, place), sub, beats, profile, bass)


def recognise(notes: Notes, options: RecogniserOptions = RecogniserOptions(),
              frames: Frames | None = None) -> list[ChordEvent]:
    """The chords of ``notes`` in time order (no-chord stretches are left out); ``frames``: their
    :func:`analysis_frames` with ``options`` if already computed."""
    frames = frames if frames is not None else analysis_frames(notes, options)
    if frames is None:
        return []
    grid = frames.grid
    states = States.vocabulary()
    if options.emission == "learned":
        emission = _learned_emission(frames.profile, frames.bass, np.diff(grid.edges), states, options)
    else:
        emission = _emission(frames.profile, frames.bass, np.diff(grid.edges), states, options)
    moves = key = None
    if options.key_weight > 0 or options.move_weight > 0:
        posterior, block = _key_blocks(frames, options)
        if options.key_weight > 0:
            prior = keys.chord_prior(posterior, _key_ratios(states.names))
            emission = emission + options.key_weight * np.repeat(prior, block, axis=0)[:len(emission)]
        if options.move_weight > 0:
            moves = _move_ratios(states.names, options.move_weight)
            key = np.repeat(posterior.argmax(1), block)[:len(emission)]
    if options.decoder == "argmax":
        path = emission.argmax(1)
        confidence = np.exp(emission.max(1) - _logsumexp(emission, 1))
    else:
        log_change = np.log(_piece_rhythm(emission, grid, options))
        path = _viterbi(emission, log_change, moves, key)
        posterior, _ = _posterior(emission, log_change)
        path = _absorb(path, states, round(options.absorb_beats * frames.sub))
        path = _leading_sevenths(path, states)
        confidence = posterior[np.arange(len(path)), path]
    return _events(notes, grid, path, confidence, frames.profile, frames.bass, states,
                   round(options.bass_split_beats * frames.sub))


def melody_tracks(notes: Notes) -> np.ndarray:
    """Boolean ``(tracks,)``: the melody over an accompaniment (another track playing chords, or
    named as an accompanying instrument, :data:`ACCOMPANIMENT_NAMES`: an Alberti bass is a single
    line). Tracks named as a melody, and tracks behaving like one: single lines (:func:`_monophonic`,
    with every track of their name: a piano written as one track per voice is not) whose mean
    pitch is at least five semitones above the rest of the music. The voices of a chorale, a
    madrigal or a string quartet, all single lines, are harmony, not melody, whatever their names
    (a soprano, a canto); so is a single line of an accompanying instrument (a piano's right
    hand). A piece of one track has no melody."""
    names = notes.track_names
    n = len(names)
    used = np.bincount(notes.track, minlength=n) > 0
    instrument = np.array([names.index(name) for name in names], dtype=np.int64)
    accompanying = np.array([bool(ACCOMPANIMENT_NAMES.search(name)) for name in names])
    chords = used & (accompanying | ~_monophonic(notes.track, notes))
    accompanied = np.array([used[k] and (chords.sum() - chords[k]) > 0 for k in range(n)])
    melody = accompanied & np.array([bool(MELODY_NAMES.search(name)) for name in names])
    single = _monophonic(instrument[notes.track], notes)[instrument]
    for k in np.flatnonzero(accompanied & single & ~accompanying & ~melody):
        mine = notes.track == k
        melody[k] = notes.pitch[mine].mean() >= notes.pitch[~mine].mean() + MELODY_ABOVE
    return melody


def _monophonic(group: np.ndarray, notes: Notes) -> np.ndarray:
    """Boolean ``(tracks,)``: whether the notes of each group (``group`` (N,), a track index per
    note) form a single line: fewer than ``POLYPHONIC_SHARE`` of them overlap the group's next
    note by more than ``OVERLAP_TOLERANCE`` of their own length (a group of one note is not)."""
    single = np.zeros(len(notes.track_names), dtype=bool)
    for k in np.unique(group):
        mine = group == k
        if mine.sum() < 2:
            continue
        order = np.argsort(notes.start[mine], kind="stable")
        start, end = notes.start[mine][order], notes.end[mine][order]
        overlapping = end[:-1] - start[1:] > OVERLAP_TOLERANCE * (end[:-1] - start[:-1])
        single[k] = overlapping.mean() < POLYPHONIC_SHARE
    return single


def beat_grid(notes: Notes) -> tuple[np.ndarray, bool]:
    """Beat starts (quarter notes) covering the piece, and whether they were moved.

    Starts from the file's beats; where the onsets cluster at another phase of the beat than
    its start (twice as much onset weight within a 24th of a beat there as at the beat, each
    onset weighing its note's length up to a beat: a held note marks the beat more than a run of
    short ones, as in a song whose MIDI file lost a sixteenth-note anacrusis), the grid moves to
    that phase.
    """
    beats = _distinct(notes.beats[np.isfinite(notes.beats)])
    last = float(notes.end.max())
    if len(beats) < 2:
        beats = np.arange(0.0, np.ceil(last) + 1.0)
    step = beats[-1] - beats[-2]
    if beats[-1] < last:
        beats = np.concatenate([beats, beats[-1] + step * np.arange(1, np.ceil((last - beats[-1]) / step) + 1)])
    k = np.clip(np.searchsorted(beats, notes.start, side="right") - 1, 0, len(beats) - 2)
    phase = (notes.start - beats[k]) / (beats[k + 1] - beats[k])
    held = np.minimum(notes.end - notes.start, beats[k + 1] - beats[k])
    counts = np.bincount(np.round(phase * PHASE_BINS).astype(int) % PHASE_BINS, weights=held, minlength=PHASE_BINS)
    best = int(counts.argmax())
    if best == 0 or counts[best] < PHASE_DOMINANCE * counts[0]:
        return beats, False
    shift = (best / PHASE_BINS) * np.diff(beats)
    moved = beats[:-1] + shift
    return _distinct(np.concatenate([[0.0], moved, [beats[-1] + shift[-1]]])), True


def _distinct(beats: np.ndarray) -> np.ndarray:
    """Sorted beats without repeats (a file can give a beat twice where its meter changes)."""
    beats = np.unique(beats)
    return beats[np.concatenate([[True], np.diff(beats) > 1e-6])] if len(beats) else beats


def _frames(beats: np.ndarray) -> tuple[np.ndarray, int]:
    """Frame edges: each beat cut in 2 (3 for a compound beat, a dotted value: 0.75, 1.5 or 3
    quarter notes), and those parts cut in 2 again while longer than ``MAX_FRAME`` (a 2/2 minim in
    4, a 6/4 dotted minim in 6: chords that move by the quarter note are told apart)."""
    length = np.diff(beats)
    beat = float(np.median(length)) if len(length) else 1.0
    dotted = np.log2(beat / 0.75)
    sub = 3 if np.isclose(dotted, round(dotted)) else 2
    while beat / sub > MAX_FRAME + 1e-9:
        sub *= 2
    inner = beats[:-1, None] + length[:, None] * (np.arange(sub) / sub)[None, :]
    return np.concatenate([inner.reshape(-1), beats[-1:]]), sub


def evidence(notes: Notes, sounding: np.ndarray, melody: np.ndarray, edges: np.ndarray,
             options: RecogniserOptions) -> tuple[np.ndarray, np.ndarray]:
    """Of the notes where ``sounding`` (N,) is true, per frame: ``profile`` (F, 12) weighted note
    time per pitch class (quarter notes x velocity relative to the piece's median, melody notes x
    ``melody_weight``: a score without dynamics and a MIDI file of the same notes weigh alike) and
    ``bass`` (F,) the MIDI pitch of the lowest non-melody note sounding through at least
    ``BASS_HEARD`` of the frame (or starting in it), -1 where none."""
    pitch, start, end = notes.pitch[sounding].astype(np.int64), notes.start[sounding], notes.end[sounding]
    is_melody = melody[notes.track[sounding]]
    velocity = notes.velocity[sounding].astype(np.float64)
    weight = velocity / np.median(velocity) * np.where(is_melody, options.melody_weight, 1.0)
    first = np.clip(np.searchsorted(edges, start, side="right") - 1, 0, len(edges) - 2)
    last = np.clip(np.searchsorted(edges, end, side="left") - 1, first, len(edges) - 2)
    count = last - first + 1
    if count.sum() > MAX_PAIRS:
        raise FileRejected(f"too dense to analyse ({count.sum()} note-frame pairs > {MAX_PAIRS})")
    note = np.repeat(np.arange(len(pitch)), count)
    frame = first[note] + (np.arange(len(note)) - np.repeat(np.cumsum(count) - count, count))
    overlap = np.minimum(end[note], edges[frame + 1]) - np.maximum(start[note], edges[frame])
    frames = len(edges) - 1
    profile = np.zeros((frames, 12))
    np.add.at(profile, (frame, pitch[note] % 12), np.maximum(overlap, 0) * weight[note])
    length = np.diff(edges)[frame]
    heard = (overlap >= BASS_HEARD * length) | (start[note] >= edges[frame])
    # the bass comes from the accompaniment; a texture of melody alone is its own bass
    accompaniment = ~is_melody[note] if (~is_melody).any() else np.ones(len(note), dtype=bool)
    lowest = np.full(frames, ABOVE_ANY_PITCH)
    chosen = heard & accompaniment
    np.minimum.at(lowest, frame[chosen], pitch[note[chosen]])
    bass = np.where(lowest < ABOVE_ANY_PITCH, lowest, -1)
    return profile, bass


def _levels(notes: Notes, beats: np.ndarray, sub: int, profile: np.ndarray,
            reliable_bars: bool) -> tuple[np.ndarray, np.ndarray]:
    """Metrical level of every frame (0 downbeat, 1 the bar's other strong beat, 2 beat, 3
    off-beat) and its place in the bar (:class:`Grid`; beats after the 16th share one).

    Bars come from the file's downbeats when they are reliable (at least two beats a bar);
    otherwise a four-beat bar starts where the harmony changes most (the largest summed change
    of the beat profiles at one of the four phases).
    """
    n_beats = len(beats) - 1
    downbeats = notes.downbeats
    index = np.searchsorted(downbeats, beats[:-1] + 1e-6, side="right") - 1
    if reliable_bars and len(downbeats) > 1 and n_beats > 0:
        bar_start = np.searchsorted(beats[:-1], downbeats[np.clip(index, 0, None)] - 1e-6)
        position = np.arange(n_beats) - bar_start
        per_bar = np.bincount(np.clip(index, 0, None), minlength=len(downbeats))
        size = per_bar[np.clip(index, 0, None)]
        reliable = np.median(per_bar[per_bar > 0]) >= 2
    else:
        reliable = False
    if not reliable:
        size = np.full(n_beats, 4)
        position = (np.arange(n_beats) - _bar_phase(profile, sub, n_beats)) % 4
    strong = (size % 2 == 0) & (size >= 4) & (position == size // 2)
    beat_level = np.where(position == 0, 0, np.where(strong, 1, 2))
    level = np.full(n_beats * sub, 3)
    level[::sub] = beat_level
    part = (np.minimum(position, MAX_PLACE_BEAT)[:, None] * sub + np.arange(sub)[None, :]).reshape(-1)
    _, place = np.unique(part * 4 + level, return_inverse=True)
    return level, place.reshape(-1)


def _bar_phase(profile: np.ndarray, sub: int, n_beats: int) -> int:
    """Which of four beats starts the bar: where the normalised beat profiles change most."""
    per_beat = profile[: n_beats * sub].reshape(n_beats, sub, 12).sum(1)
    norm = per_beat / np.maximum(np.linalg.norm(per_beat, axis=1, keepdims=True), 1e-9)
    change = np.concatenate([[0.0], 1.0 - (norm[1:] * norm[:-1]).sum(1)])
    return int(np.argmax([change[p::4].sum() for p in range(4)]))


def _emission(profile: np.ndarray, bass: np.ndarray, length: np.ndarray, states: States,
              options: RecogniserOptions) -> np.ndarray:
    """Log score ``(F, S)`` of each frame (``length`` (F,) in quarter notes) under each state.
    No chord expects every pitch class alike, in the notes and in the bass."""
    rows = states.rows
    uniform = -np.log(12.0)
    size = rows.sum(1, keepdims=True)
    eps = options.non_chord_mass
    log_q = states.with_no_chord(uniform, np.log(np.where(rows > 0, (1 - eps) / size, eps / (12 - size))))
    mass = profile.sum(1)
    share = np.where(mass[:, None] > 0, profile / np.maximum(mass, 1e-12)[:, None], 1.0 / 12)
    strength = options.concentration * np.minimum(1.0, mass / (options.evidence_notes * length))
    strength = np.where(mass > 0, strength, options.concentration)  # silence: evidence of no chord
    # einsum, not a BLAS product: BLAS threads in every corpus worker would oversubscribe the cores
    score = strength[:, None] * np.einsum("fp,sp->fs", share, log_q)
    # the bass: root, another chord tone, or a non-chord tone
    others = np.maximum(size[:, 0] - 1, 1)
    tone = (1 - options.bass_root - options.bass_out) / others
    log_r = np.where(rows > 0, np.log(tone)[:, None], np.log(options.bass_out / (12 - size)))
    log_r[np.arange(len(rows)), states.roots] = np.log(options.bass_root)
    log_r = states.with_no_chord(uniform, log_r)
    has_bass = bass >= 0
    score[has_bass] += options.bass_weight * log_r[:, bass[has_bass] % 12].T
    prior = states.with_no_chord(options.no_chord_prior, [options.quality_prior.get(q, UNLISTED_QUALITY_PRIOR)
                                                         for _, q in states.names])
    return score + prior[None, :]


def _learned_emission(profile: np.ndarray, bass: np.ndarray, length: np.ndarray, states: States,
                      options: RecogniserOptions) -> np.ndarray:
    """Log score ``(F, S)`` of each frame under each state from the fitted emission model
    (:mod:`~chordvae.chords.emission`), times ``emission_scale``."""
    notes_w, bass_w, bias = _state_matrices(states.names)
    x, bass_class = features(profile, bass, length, options.evidence_notes)
    score = np.einsum("fd,sd->fs", x, notes_w) + bass_w[:, bass_class].T + bias[None, :]
    return options.emission_scale * score


def key_posterior(frames: Frames, options: RecogniserOptions = RecogniserOptions()) -> np.ndarray:
    """``(F, KEYS)``: each frame's local key (:mod:`~chordvae.chords.keys`), by forward-backward
    over a chain of the 24 keys, on blocks of ``KEY_BLOCK_BEATS`` beats (a key lasts longer; the
    chain is that many times cheaper), that changes key with probability ``key_change`` per frame."""
    posterior, block = _key_blocks(frames, options)
    return np.repeat(posterior, block, axis=0)[:len(frames.profile)]


def _key_blocks(frames: Frames, options: RecogniserOptions) -> tuple[np.ndarray, int]:
    """The key posteriors ``(B, KEYS)`` of the blocks of :func:`key_posterior` and the frames per block."""
    x, _ = features(frames.profile, frames.bass, np.diff(frames.grid.edges), options.evidence_notes)
    block = frames.sub * KEY_BLOCK_BEATS
    n_blocks = -(-len(x) // block)
    summed = np.zeros((n_blocks * block, 12))
    summed[:len(x)] = x[:, :12]
    summed = summed.reshape(n_blocks, block, 12).sum(1)
    evidence = keys.key_evidence(summed, keys.load_model(), options.key_concentration)
    change = min(block * options.key_change, CHANGE_RATE_RANGE[1])
    posterior, _ = _posterior(evidence, np.full(n_blocks, np.log(change)))
    return posterior, block


@lru_cache(maxsize=4)
def _key_ratios(names: tuple[tuple[int, str], ...]) -> np.ndarray:
    """The key model's ``P(chord | key) / P(chord)`` ``(KEYS, S)`` (computed once per process)."""
    return keys.load_model().chord_ratios(names)


@lru_cache(maxsize=4)
def _move_ratios(names: tuple[tuple[int, str], ...], weight: float) -> np.ndarray:
    """``weight`` times the key model's chord moves ``(KEYS, S, S)`` (computed once per process)."""
    return weight * keys.load_model().move_ratios(names)


@lru_cache(maxsize=4)
def _state_matrices(names: tuple[tuple[int, str], ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The fitted model's weights for the states of ``names`` (computed once per process)."""
    return load_model().state_matrices(names)


def _viterbi(emission: np.ndarray, log_change: np.ndarray, moves: np.ndarray | None = None,
             key: np.ndarray | None = None) -> np.ndarray:
    """Most likely state path ``(F,)``: from frame t - 1 to t a state stays with probability
    1 - p_t or moves to any one other state with p_t / (S - 1), times the exponential of
    ``moves[key[t], from, to]`` if given (``moves`` (KEYS, S, S) log ratios, ``key`` (F,) each
    frame's key). With moves, a change is taken from the best state of frame t - 1 only (the
    uniform chain's exact rule; with moves an approximation that keeps one row per frame)."""
    frames, n_states = emission.shape
    move = log_change - np.log(n_states - 1)
    stay = np.log1p(-np.exp(log_change))
    delta = emission[0].copy()
    stayed = np.empty(n_states)
    best = np.zeros(frames, dtype=np.int64)            # the state a move into frame t comes from
    moved_in = np.zeros((frames, n_states), dtype=bool)  # whether state j at t was reached by a move
    for t in range(1, frames):
        best[t] = k = delta.argmax()
        arrival = delta[k] + move[t]
        if moves is not None:
            arrival = moves[key[t], k] + arrival
        np.add(delta, stay[t], out=stayed)
        np.less(stayed, arrival, out=moved_in[t])
        np.maximum(stayed, arrival, out=delta)
        delta += emission[t]
    path = np.empty(frames, dtype=np.int64)
    path[-1] = int(delta.argmax())
    for t in range(frames - 1, 0, -1):
        path[t - 1] = best[t] if moved_in[t, path[t]] else path[t]
    return path


def _piece_rhythm(emission: np.ndarray, grid: Grid, options: RecogniserOptions) -> np.ndarray:
    """This piece's change probability into each frame (F,): the expected number of changes
    under the default rhythm (forward-backward) per metrical level, with ``options.change_prob``
    as a prior worth ``rhythm_prior`` frames, then per place in the bar, with its level's rate as
    a prior worth ``place_prior`` frames. A chorale that moves on every beat gets a faster
    harmonic rhythm than a pop song that changes by the bar, and a song whose MIDI file lost its
    anacrusis (its bars a beat off) its changes on the beat that is the real downbeat."""
    prior = np.asarray(options.change_prob)
    if not np.isfinite(options.rhythm_prior):
        return prior[grid.level]
    _, changes = _posterior(emission, np.log(prior)[grid.level])
    level_rate = _rates(grid.level[1:], changes[1:], prior, options.rhythm_prior)
    if not np.isfinite(options.place_prior):
        return level_rate[grid.level]
    place_level = np.zeros(int(grid.place.max()) + 1, dtype=np.int64)
    place_level[grid.place] = grid.level
    return _rates(grid.place[1:], changes[1:], level_rate[place_level], options.place_prior)[grid.place]


def _rates(classes: np.ndarray, changes: np.ndarray, prior: np.ndarray, weight: float) -> np.ndarray:
    """Change probability per class (C,): the expected ``changes`` (T,) into frames of each class
    (``classes`` (T,) in 0..C-1), with ``prior`` (C,) worth ``weight`` frames, kept within
    ``CHANGE_RATE_RANGE``."""
    counts = np.bincount(classes, weights=changes, minlength=len(prior))
    frames = np.bincount(classes, minlength=len(prior))
    return np.clip((counts + weight * prior) / (frames + weight), *CHANGE_RATE_RANGE)


def _posterior(emission: np.ndarray, log_change: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """State posteriors ``(F, S)`` of the same chain and the probability of a change into each
    frame ``(F,)`` (scaled forward-backward: every step is normalised, so probabilities stay in
    range without logarithms)."""
    frames, n_states = emission.shape
    likelihood = np.exp(emission - emission.max(1, keepdims=True))
    change = np.exp(log_change)
    stay, move = 1.0 - change, change / (n_states - 1)
    extra = stay - move  # alpha sums to 1, so arriving mass is alpha * stay + (1 - alpha) * move
    # = move + alpha * extra; the loops work in place (out=) to make no array per frame
    alpha = np.empty_like(likelihood)
    alpha[0] = likelihood[0] / likelihood[0].sum()
    for t in range(1, frames):
        a = alpha[t]
        np.multiply(alpha[t - 1], extra[t], out=a)
        np.add(a, move[t], out=a)
        np.multiply(a, likelihood[t], out=a)
        np.multiply(a, 1.0 / np.add.reduce(a), out=a)
    beta = np.ones_like(likelihood)
    weighted = np.empty(n_states)   # beta[t] * likelihood[t]
    for t in range(frames - 1, 0, -1):
        b = beta[t - 1]
        np.multiply(beta[t], likelihood[t], out=weighted)
        np.multiply(weighted, extra[t], out=b)
        np.add(b, np.add.reduce(weighted) * move[t], out=b)
        np.multiply(b, 1.0 / np.add.reduce(b), out=b)
    joint = alpha * beta
    # from frame t - 1 to t: staying in j has weight alpha[t-1, j] stay[t] likelihood[t, j] beta[t, j]
    arriving = likelihood[1:] * beta[1:]
    stayed = (alpha[:-1] * arriving).sum(1) * stay[1:]
    total = stayed + ((1.0 - alpha[:-1]) * arriving).sum(1) * move[1:]
    changes = np.concatenate([[0.0], 1.0 - stayed / total])
    return joint / joint.sum(1, keepdims=True), changes


def _logsumexp(x: np.ndarray, axis: int) -> np.ndarray:
    top = x.max(axis=axis, keepdims=True)
    return (top + np.log(np.exp(x - top).sum(axis=axis, keepdims=True))).squeeze(axis)


def _absorb(path: np.ndarray, states: States, frames: int) -> np.ndarray:
    """Suspended chords of at most ``frames`` frames take the state of a neighbouring run on the
    same root (the next one first: a suspension resolves forwards)."""
    path = path.copy()
    if frames <= 0:
        return path
    change = np.flatnonzero(np.concatenate([[True], path[1:] != path[:-1]]))
    ends = np.concatenate([change[1:], [len(path)]])
    root = states.with_no_chord(-1, states.roots)
    suspended = states.with_no_chord(False, [q.startswith("sus") for _, q in states.names])
    for i, (a, b) in enumerate(zip(change, ends)):
        state = path[a]
        if not suspended[state] or b - a > frames:
            continue
        for j in (i + 1, i - 1):
            if 0 <= j < len(change) and path[change[j]] != States.NO_CHORD and root[path[change[j]]] == root[state]:
                path[a:b] = path[change[j]]
                break
    return path


def _leading_sevenths(path: np.ndarray, states: States) -> np.ndarray:
    """A diminished seventh has four roots a minor third apart (the same notes); each run of one
    takes the root a semitone below the next chord's root where one of them is (vii°7 of the
    chord it resolves to), and keeps its own otherwise."""
    names = {name: state for state, name in enumerate(states.names, start=1)}
    change = np.flatnonzero(np.concatenate([[True], path[1:] != path[:-1]]))
    path = path.copy()
    for i, a in enumerate(change[:-1]):
        state, following = path[a], path[change[i + 1]]
        if state == States.NO_CHORD or following == States.NO_CHORD or states.chord(state)[1] != "dim7":
            continue
        leading = (states.chord(following)[0] - 1) % 12
        if (leading - states.chord(state)[0]) % 3 == 0:
            path[a:change[i + 1]] = names[(leading, "dim7")]
    return path


def _events(notes: Notes, grid: Grid, path: np.ndarray, confidence: np.ndarray, profile: np.ndarray,
            bass: np.ndarray, states: States, split_frames: int) -> list[ChordEvent]:
    """Runs of one state -> chord events (no-chord runs left out), each cut where its bass moves
    to another chord tone for at least ``split_frames`` frames (:func:`_bass_parts`), with the
    bass of :func:`_event_basses`."""
    change = np.flatnonzero(np.concatenate([[True], path[1:] != path[:-1]]))
    ends = np.concatenate([change[1:], [len(path)]])
    parts = [(a + c, a + d, int(path[a])) for a, b in zip(change, ends) if path[a] != States.NO_CHORD
             for c, d in _bass_parts(bass[a:b], grid.level[a:b] < 3, chord_set(*states.chord(int(path[a]))),
                                     states.chord(int(path[a]))[0], split_frames)]
    first = np.array([a for a, _, _ in parts], dtype=np.int64)
    last = np.array([b for _, b, _ in parts], dtype=np.int64)
    starts_s, ends_s = notes.seconds(grid.edges[first]), notes.seconds(grid.edges[last])
    chord = np.array([state - 1 for _, _, state in parts], dtype=np.int64)
    basses = _event_basses(bass, grid.level, first, last, states.rows[chord] > 0, states.roots[chord])
    events = []
    for i, (a, b, state) in enumerate(parts):
        root, quality = states.chord(state)
        pcs = chord_set(root, quality)
        chord_bass = int(basses[i])
        sounding = profile[a:b].sum(0)
        events.append(ChordEvent(
            notes.source, round(float(grid.edges[a]), 6), round(float(grid.edges[b]), 6),
            round(float(starts_s[i]), 6), round(float(ends_s[i]), 6), pcs, chord_bass, root, quality,
            tuple(int(pc) for pc in np.flatnonzero(sounding > SOUNDING_SHARE * sounding.max())),
            round(float(confidence[a:b].mean()), 4)))
    return events


def _event_basses(bass: np.ndarray, level: np.ndarray, first: np.ndarray, last: np.ndarray, tones: np.ndarray,
                  roots: np.ndarray, level_weight: np.ndarray = BASS_LEVEL_WEIGHT,
                  bonus: float = LOWEST_BASS_BONUS) -> np.ndarray:
    """Int ``(E,)``: the bass pitch class of each event ``e``, frames ``[first[e], last[e])`` of
    ``bass`` (F,) (MIDI pitches, -1 none) and ``level`` (F,) (metrical levels), chord tones
    ``tones[e]`` (E, 12) bool, root ``roots[e]``: the chord tone heard most in the bass, each
    frame weighted by its level (``level_weight`` (4,)), the lowest chord tone's weight times
    ``bonus`` (``inf``: the lowest chord tone), so that a chord tone passing a little below the
    root does not become the bass while a low note that keeps returning does; the root where no
    chord tone sounds in the bass."""
    n = len(first)
    length = last - first
    event = np.repeat(np.arange(n), length)
    frame = np.arange(int(length.sum())) - np.repeat(np.cumsum(length) - length, length) + np.repeat(first, length)
    pitch = bass[frame]
    tone = (pitch >= 0) & tones[event, pitch % 12]
    event, frame, pitch = event[tone], frame[tone], pitch[tone]
    weight = np.bincount(event * 12 + pitch % 12, weights=level_weight[level[frame]], minlength=n * 12)
    weight = weight.astype(np.float64, copy=False).reshape(n, 12)   # (an empty bincount is int)
    lowest = np.full(n, ABOVE_ANY_PITCH)
    np.minimum.at(lowest, event, pitch)
    heard = np.flatnonzero(lowest < ABOVE_ANY_PITCH)
    weight[heard, lowest[heard] % 12] *= bonus
    return np.where(lowest < ABOVE_ANY_PITCH, weight.argmax(1), roots)


def _bass_parts(bass: np.ndarray, on_beat: np.ndarray, pcs: tuple[int, ...], root: int,
                frames: int) -> list[tuple[int, int]]:
    """Frame ranges ``[c, d)`` of one chord (``bass`` (F,) its frames' MIDI bass, -1 none) that
    keep one bass pitch class: I and I6 are two chords. A frame whose bass is not a chord tone keeps
    the bass before it; a bass heard in fewer than ``frames`` frames (an arpeggio's or a walking
    bass's other notes), or the fifth for fewer than ``FIFTH_HELD`` times that (an alternating
    bass, not a six-four chord), joins the part before it (the first part, the next). A bass that
    arrives between beats (``on_beat`` (F,) false) counts from the next beat on, so a broken
    chord's upper notes on the off-beats never hold long enough. ``frames`` <= 0: never cut."""
    if frames <= 0:
        return [(0, len(bass))]
    in_chord = np.zeros(12, dtype=bool)
    in_chord[list(pcs)] = True
    tone = np.where((bass >= 0) & in_chord[bass % 12], bass % 12, -1)
    known = np.flatnonzero(tone >= 0)
    if len(known) == 0 or (tone[known] == tone[known[0]]).all():   # one bass (or none): one part
        return [(0, len(bass))]
    filled = tone[known[np.clip(np.searchsorted(known, np.arange(len(bass)), side="right") - 1, 0, None)]]
    change = np.flatnonzero(np.concatenate([[True], filled[1:] != filled[:-1]]))
    needed = np.where(FIFTH_MASK[(filled - root) % 12], FIFTH_HELD * frames, frames)

    heard = (bass >= 0) & (bass % 12 == filled)   # frames that sound the part's bass (not filled in)

    def short(part: list[int]) -> bool:
        return heard[part[0]:part[1]].sum() < needed[part[0]]

    parts: list[list[int]] = []   # [start, end, pitch class]
    for c, d in zip(change, np.concatenate([change[1:], [len(bass)]])):
        if parts and not on_beat[c]:   # a bass arriving between beats takes over on the next beat
            beat = c + int(np.argmax(on_beat[c:d])) if on_beat[c:d].any() else d
            parts[-1][1], c = beat, beat
            if c == d:
                continue
        if parts and (short([c, d]) or filled[c] == parts[-1][2]):
            parts[-1][1] = d
        else:
            parts.append([c, d, filled[c]])
    if len(parts) > 1 and short(parts[0]):
        parts[1][0] = 0
        parts.pop(0)
    return [(int(c), int(d)) for c, d, _ in parts]


def beats_and_bars(notes: Notes, options: RecogniserOptions = RecogniserOptions(),
                   frames: Frames | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The beat grid :func:`recognise` decodes on: beat edges ``(B + 1,)`` in quarter notes (beat
    k is ``[edges[k], edges[k + 1])``) and ``downbeat`` bool ``(B,)``, the beats that start a bar
    (the file's bars, or those found from the harmony when the file's are unreliable); ``frames``:
    the notes' :func:`analysis_frames` if already computed."""
    frames = frames if frames is not None else analysis_frames(notes, options)
    if frames is None:
        return np.zeros(1), np.zeros(0, dtype=bool)
    return frames.beats, frames.grid.level[::frames.sub] == 0
