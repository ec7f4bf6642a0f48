"""Progression data: typed progressions against music21, beat frames, bars and windows."""
from __future__ import annotations

import numpy as np
import pretty_midi
import pytest
import torch
from music21 import chord, harmony, key, meter, roman, stream

from chordvae.chords.events import ChordEvent
from chordvae.chords.extract import PieceChords
from chordvae.chords.pcset import from_mask
from chordvae.errors import ChordVAEError
from chordvae.progressions.corpus import ProgressionCorpus, ProgressionOptions, read_progressions
from chordvae.progressions.frames import FrameLayout, beat_chords, progression_text
from chordvae.progressions.typed import parse_progression
from chordvae.progressions.windows import held_out, split, tiling_windows, training_windows, transpose_windows

BEAT = 0.5  # seconds per beat at 120 bpm
ROOTED = FrameLayout(root=True)


def symbol(figure: str) -> harmony.ChordSymbol:
    """music21's reading of a chord symbol (it writes flats as '-')."""
    return harmony.ChordSymbol(figure.replace("b", "-", 1) if figure[1:2] == "b" else figure)


def expected(pcs, bass, root=None) -> np.ndarray:
    """The frame a chord should give, built by hand: pitch classes, bass one-hot, root one-hot, no-chord bit."""
    frame = np.zeros(37 if root is not None else 25, dtype=np.float32)
    frame[list(pcs)] = 1
    frame[12 + bass] = 1
    if root is not None:
        frame[24 + root] = 1
    return frame


def from_music21(c: chord.Chord, root: bool = False) -> np.ndarray:
    return expected({p.pitchClass for p in c.pitches}, c.bass().pitchClass, c.root().pitchClass if root else None)


def chord_midi(path, figures, beats_per_bar=4, meter_=(4, 4), start_bar=0):
    """One block chord per bar (tones around middle C, the bass two octaves down), from music21's
    chord symbols; ``start_bar`` bars of silence first."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(*meter_, 0))
    piano = pretty_midi.Instrument(0, name="Piano")
    for bar, figure in enumerate(figures, start_bar):
        s = symbol(figure)
        t0, t1 = bar * beats_per_bar * BEAT, (bar + 1) * beats_per_bar * BEAT
        for p in {p.pitchClass for p in s.pitches}:
            piano.notes.append(pretty_midi.Note(80, 60 + p, t0, t1))
        piano.notes.append(pretty_midi.Note(80, 36 + s.bass().pitchClass, t0, t1))
    pm.instruments.append(piano)
    pm.write(str(path))
    return path


def chord_score(path, figures, time_signature="4/4", pickup=None):
    """A MusicXML score of one chord per bar (held for the bar), after an optional one-beat
    ``pickup`` chord."""
    part = stream.Part()
    ts = meter.TimeSignature(time_signature)
    bar_length = ts.barDuration.quarterLength
    beat = ts.beatDuration.quarterLength
    bars = ([pickup] if pickup else []) + list(figures)
    for i, figure in enumerate(bars):
        m = stream.Measure(number=i if pickup else i + 1)
        if i == 0:
            m.timeSignature = ts
        s = symbol(figure)
        length = beat if pickup and i == 0 else bar_length
        if pickup and i == 0:
            m.paddingLeft = bar_length - beat
        pitches = [36 + s.bass().pitchClass] + [60 + p for p in sorted({p.pitchClass for p in s.pitches})]
        m.append(chord.Chord(pitches, quarterLength=length))
        part.append(m)
    stream.Score([part]).write("musicxml", fp=str(path))
    return path


# --- typed progressions against music21 ---------------------------------------------------------

def test_chord_symbols_one_per_bar_read_as_music21_reads_them():
    figures = ["C", "G7", "Am", "Fmaj7", "Bb", "F#m7b5", "C/E", "Ddim"]
    typed = parse_progression(" ".join(figures), layout=ROOTED)
    assert typed.frames.shape == (32, 37) and typed.beats_per_bar == 4 and typed.mask.all()
    for bar, figure in enumerate(figures):
        want = from_music21(symbol(figure), root=True)
        assert np.array_equal(typed.frames[4 * bar:4 * bar + 4], np.tile(want, (4, 1))), figure


def test_beats_with_bar_lines_and_holds():
    typed = parse_progression("| C . G7 . | Am . . F/A | N . E7 . |")
    beats = ["C", "C", "G7", "G7", "Am", "Am", "Am", "F/A", None, None, "E7", "E7"]
    assert typed.frames.shape == (12, 25)
    for frame, figure in zip(typed.frames, beats):
        if figure is None:
            assert frame[24] == 1 and frame[:24].sum() == 0
        else:
            assert np.array_equal(frame, from_music21(symbol(figure))), figure


@pytest.mark.parametrize("text, tonic", [("I V6 vi IV", "G"), ("i iv6 V7 i", "a"), ("ii65 V7/V bVII I64", "Eb")])
def test_roman_numerals_in_a_key_read_as_music21_reads_them(text, tonic):
    key_name = {"a": "Am", "Eb": "Eb major"}.get(tonic, tonic)
    typed = parse_progression(text, key=key_name, layout=ROOTED)
    k = key.Key(tonic.replace("b", "-"))
    for bar, figure in enumerate(text.split()):
        want = from_music21(roman.RomanNumeral(figure, k), root=True)
        assert np.array_equal(typed.frames[4 * bar:4 * bar + 4], np.tile(want, (4, 1))), figure


def test_roman_numerals_with_beats_in_three_four():
    typed = parse_progression("| I . V | vi IV . |", key="F", meter="3/4")
    k = key.Key("F")
    want = [roman.RomanNumeral(f, k) for f in ["I", "I", "V", "vi", "IV", "IV"]]
    assert np.array_equal(typed.frames, np.stack([from_music21(c) for c in want]))


@pytest.mark.parametrize("meter_, beats", [("4/4", 4), ("3/4", 3), ("6/8", 2), ("12/8", 4), ("2/2", 2)])
def test_a_chord_per_bar_fills_the_bar_s_beats(meter_, beats):
    typed = parse_progression("C G", meter=meter_)
    assert typed.beats_per_bar == beats and len(typed.frames) == 2 * beats
    assert np.array_equal(typed.frames[beats - 1], from_music21(symbol("C")))
    assert np.array_equal(typed.frames[beats], from_music21(symbol("G")))


@pytest.mark.parametrize("text, kwargs, says", [
    ("", {}, "empty"),
    ("| C . G |", {}, "bar 1"),
    ("| C . . . | G |", {}, "bar 2"),
    (". C", {}, "starts with '.'"),
    ("C Hm", {}, "Hm"),
    ("I X", {"key": "C"}, "'X' as a Roman numeral"),
    ("C G", {"key": "C"}, "'C' as a Roman numeral"),
    ("I V", {"key": "Q"}, "key"),
    ("C G", {"meter": "4/x"}, "meter"),
    ("z:0.5,1", {}, "latent point"),
    ("missing.mid:1-4", {}, "does not exist"),
])
def test_malformed_progressions_say_what_is_wrong_on_one_line(text, kwargs, says):
    with pytest.raises(ChordVAEError) as error:
        parse_progression(text, **kwargs)
    assert says in str(error.value) and "\n" not in str(error.value)


def test_a_file_span_gives_the_recognised_chords_of_those_bars(tmp_path):
    song = chord_midi(tmp_path / "song.mid", ["C", "G", "Am", "F", "Dm", "G7", "C", "C"])
    span = parse_progression(f"{song}:5-7")
    assert np.array_equal(span.frames, parse_progression("Dm G7 C").frames)
    assert np.array_equal(parse_progression(f"{song}:2").frames, parse_progression("G").frames)
    with pytest.raises(ChordVAEError, match="has bars 1-8; the span 7-9"):
        parse_progression(f"{song}:7-9")


def test_progression_text_writes_what_the_parser_reads():
    text = "| C . G7 . | Am . . F/A | N . E7 . |"
    frames = parse_progression(text).frames
    assert np.array_equal(parse_progression(progression_text(frames, 4)).frames, frames)


# --- beat frames, bars and windows from recognised music ----------------------------------------

def test_a_beat_takes_the_chord_that_covers_most_of_it():
    def event(start, end, pcs, bass):
        return ChordEvent("x.mid", start, end, start / 2, end / 2, pcs, bass)
    events = [event(0, 1.5, (0, 4, 7), 0), event(1.5, 3, (2, 7, 11), 11), event(3.5, 4, (0, 4, 9), 9),
              event(4, 4.25, (0, 4, 9), 9), event(5.4, 6, (0, 5, 9), 5)]
    piece = PieceChords("x.mid", events, 0, "major", "x", beats=tuple(range(7)), downbeats=(0, 4))
    codes, bass, _ = beat_chords(piece)
    # beat 1: C and G cover half each (the earlier wins); beat 3: half silence, half Am (the chord
    # wins); beat 4: Am a quarter, silence the rest; beat 5: F covers 0.6
    assert [from_mask(c) for c in codes] == [(0, 4, 7), (0, 4, 7), (2, 7, 11), (0, 4, 9), (), (0, 5, 9)]
    assert bass.tolist() == [0, 0, 11, 9, -1, 5]


def downbeat_times(corpus: ProgressionCorpus, windows) -> np.ndarray:
    """Where (quarter notes) each window's first real beat is, in its file."""
    return corpus.beat_time[corpus.offsets[windows.piece.numpy()] + windows.start_beat.numpy()]


@pytest.mark.parametrize("meter_, beats", [((4, 4), 4), ((3, 4), 3)])
def test_midi_windows_start_on_downbeats(tmp_path, meter_, beats):
    figures = ["C", "F", "G", "Am", "Dm", "G7", "C", "Em"]
    chord_midi(tmp_path / "a.mid", figures, beats, meter_)
    corpus = read_progressions([str(tmp_path)], progress=False)
    assert corpus.bar_length() == beats and corpus.n_beats == beats * len(figures)
    windows = training_windows(corpus, bars=2)
    assert windows.length == 2 * beats and len(windows) == len(figures)
    assert np.allclose(downbeat_times(corpus, windows), beats * np.arange(len(figures)))
    assert windows.start_bar.tolist() == list(range(1, len(figures) + 1))
    for w, first in enumerate(figures):   # each window starts with its bar's chord
        assert np.array_equal(windows.frames[w, 0].numpy(), from_music21(symbol(first)))


def test_six_eight_windows_have_two_beats_a_bar(tmp_path):
    figures = ["C", "G", "Am", "F", "C"]
    corpus = read_progressions([str(chord_score(tmp_path / "a.musicxml", figures, "6/8"))], progress=False)
    assert corpus.bar_length() == 2 and corpus.n_beats == 10
    assert np.allclose(corpus.beat_time, 1.5 * np.arange(10))
    windows = training_windows(corpus, bars=4)
    assert windows.length == 8
    assert np.allclose(downbeat_times(corpus, windows), 3.0 * np.arange(5))
    assert windows.mask.sum(1).tolist() == [8, 8, 6, 4, 2]


def test_after_a_pickup_windows_keep_the_bar_lines(tmp_path):
    figures = ["C", "F", "G", "C", "Am", "Dm", "G", "C"]
    path = chord_score(tmp_path / "up.musicxml", figures, "4/4", pickup="G")
    corpus = read_progressions([str(path)], progress=False)
    assert corpus.first_bar.tolist() == [0] and corpus.lead.tolist() == [3]
    windows = training_windows(corpus, bars=4)
    # the pickup's window: three padded beats, the pickup, then bar 1 on position 4
    assert windows.mask[0].tolist() == [False] * 3 + [True] * 13
    assert np.array_equal(windows.frames[0, 3].numpy(), from_music21(symbol("G")))
    assert np.array_equal(windows.frames[0, 4].numpy(), from_music21(symbol("C")))
    assert windows.start_bar.tolist() == list(range(9))
    assert np.allclose(downbeat_times(corpus, windows)[1:], 1 + 4 * np.arange(8))
    tiles = tiling_windows(corpus, bars=4)
    assert tiles.start_bar.tolist() == [0, 4, 8] and tiles.mask.sum().item() == corpus.n_beats == 33


def synthetic_corpus(seed: int) -> ProgressionCorpus:
    """Pieces of random bar lengths (some longer than a window), some with a pickup; every beat's
    frame names its own global index (in the pitch-class columns), so coverage can be read back."""
    rng = np.random.default_rng(seed)
    downbeats, leads, sizes = [], [], []
    for p in range(7):
        lengths = rng.choice([2, 3, 4, 4, 4, 6, 19], size=rng.integers(1, 12))
        pickup = int(rng.integers(1, lengths[0])) if p % 3 == 0 and lengths[0] > 1 else 0
        flags = np.zeros(pickup + lengths.sum(), dtype=bool)
        flags[pickup + np.concatenate([[0], np.cumsum(lengths)[:-1]])] = True
        downbeats.append(flags)
        leads.append(lengths[0] - pickup if pickup else 0)
        sizes.append(len(flags))
    n = sum(sizes)
    frames = np.zeros((n, 25), dtype=np.uint8)
    frames[:, :12] = (np.arange(n)[:, None] >> np.arange(12)) & 1
    return ProgressionCorpus(frames, np.concatenate(downbeats), np.arange(n, dtype=float),
                             np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64), [f"p{i}.mid" for i in range(7)],
                             ["x"] * 7, np.zeros(7, dtype=np.int64), np.ones(7, dtype=bool),
                             np.array([0 if lead else 1 for lead in leads]), np.array(leads))


@pytest.mark.parametrize("seed", range(5))
def test_tiles_cover_every_beat_of_the_held_out_pieces_exactly_once(seed):
    corpus = synthetic_corpus(seed)
    pieces = np.flatnonzero(held_out(corpus.n_pieces, seed, fraction=0.5))
    tiles = tiling_windows(corpus, pieces, bars=3, length=12)
    frames, mask = tiles.frames.numpy(), tiles.mask.numpy()
    assert (frames[~mask] == 0).all()
    covered = (frames[mask][:, :12].astype(np.int64) << np.arange(12)).sum(1)
    want = np.concatenate([np.arange(corpus.offsets[p], corpus.offsets[p + 1]) for p in pieces])
    assert np.array_equal(np.sort(covered), np.sort(want))        # every beat once, no other
    # a tile starts on a bar (or, after a stretch longer than the window, where it was cut)
    first = corpus.offsets[tiles.piece.numpy()] + tiles.start_beat.numpy()
    cut = ~corpus.downbeat[first] & (tiles.lead.numpy() == 0) & (tiles.start_beat.numpy() > 0)
    assert cut.any() and mask[np.flatnonzero(cut) - 1, -1].all()   # the tile before a cut is full


def test_context_holds_the_beats_before_a_window_unscored():
    corpus = synthetic_corpus(4)
    plain = training_windows(corpus, bars=2, length=10)
    seen = training_windows(corpus, bars=2, length=10, context=5)
    assert seen.length == 10 and seen.frames.shape[1] == 15
    assert torch.equal(seen.frames[:, 5:], plain.frames) and torch.equal(seen.mask[:, 5:], plain.mask)
    assert not seen.mask[:, :5].any()
    first = corpus.offsets[seen.piece.numpy()] + seen.start_beat.numpy()
    for w in range(len(seen)):
        before = corpus.frames[max(corpus.offsets[seen.piece[w]], first[w] - 5):first[w]]
        lead = seen.lead[w].item()
        got = seen.frames[w, 5 + lead - len(before):5 + lead].numpy()
        assert np.array_equal(got, before) and not seen.frames[w, :5 + lead - len(before)].any()


def test_training_windows_start_on_every_bar():
    corpus = synthetic_corpus(0)
    windows = training_windows(corpus, bars=2, length=10)
    first = corpus.offsets[windows.piece.numpy()] + windows.start_beat.numpy()
    starts = corpus.downbeat.copy()
    starts[corpus.offsets[:-1]] = True
    assert np.array_equal(first, np.flatnonzero(starts))


def test_a_known_progression_comes_back_from_the_corpus(tmp_path):
    (tmp_path / "pop").mkdir()
    chord_midi(tmp_path / "pop" / "a.mid", ["Dm", "E7", "C", "G", "Am", "F", "Bb", "C"], start_bar=2)
    chord_midi(tmp_path / "pop" / "b.mid", ["E", "A", "D", "A", "Bm", "G", "Em", "A7", "D"])
    (tmp_path / "pop" / "broken.mid").write_bytes(b"MThd not really")
    corpus = read_progressions([f"mine={tmp_path / 'pop'}"], progress=False)
    assert corpus.corpus == ["mine", "mine"] and len(corpus.skipped) == 1 and "1 skipped" in corpus.summary
    assert corpus.first_bar.tolist() == [3, 1]               # a's two silent bars are left out
    want = parse_progression("C G Am F").frames
    windows = training_windows(corpus, bars=4)
    found = [i for i in range(len(windows)) if np.array_equal(windows.frames[i].numpy(), want)]
    assert [(windows.path[i].endswith("a.mid"), windows.start_bar[i].item()) for i in found] == [(True, 5)]
    # b holds the same progression in D major (bars 3-6): transposed to C it is found there too
    shifted = training_windows(corpus, bars=4, transpose="c")
    found = [i for i in range(len(shifted)) if np.array_equal(shifted.frames[i].numpy(), want)]
    assert sorted((shifted.path[i][-5:], shifted.start_bar[i].item()) for i in found) == [("a.mid", 5), ("b.mid", 3)]
    every = training_windows(corpus, bars=4, transpose="all")
    assert len(every) == 12 * len(windows)
    found = [i for i in range(len(every)) if np.array_equal(every.frames[i].numpy(), want)]
    assert sorted((every.path[i][-5:], every.shift[i].item()) for i in found) == [("a.mid", 0), ("b.mid", 10)]
    # a batch moved on the fly is the same as the stored transpositions
    moved = transpose_windows(windows, np.full(len(windows), 7), corpus.layout.blocks)
    assert torch.equal(moved.frames, every.frames[7 * len(windows):8 * len(windows)])
    assert (moved.shift == 7).all() and torch.equal(moved.mask, windows.mask)


def test_a_warm_read_gives_the_cold_read_s_frames(tmp_path):
    chord_midi(tmp_path / "a.mid", ["C", "G", "Am", "F", "Dm", "G7", "C", "Em"])
    chord_score(tmp_path / "b.musicxml", ["C", "F", "G", "C"], "3/4", pickup="G")
    cold = read_progressions([str(tmp_path)], progress=False)
    warm = read_progressions([str(tmp_path)], progress=False)
    for name in ("frames", "downbeat", "beat_time", "offsets", "first_bar", "lead"):
        assert np.array_equal(getattr(cold, name), getattr(warm, name)), name


def test_split_holds_out_whole_pieces_and_tiles_them():
    corpus = synthetic_corpus(3)
    train, test = split(corpus, ProgressionOptions(bars=2), seed=1, length=8)
    assert not set(train.piece.tolist()) & set(test.piece.tolist())
    held = np.flatnonzero(held_out(corpus.n_pieces, 1))
    assert sorted(set(test.piece.tolist())) == held.tolist()
    assert test.mask.sum().item() == sum(corpus.offsets[p + 1] - corpus.offsets[p] for p in held)


def test_a_set_without_a_symbol_is_written_as_one_token_that_reads_back():
    frames = parse_progression("| C . 9,0 . | 4,7 . G . |").frames     # A+C over A; E+G over E
    text = progression_text(frames, 4)
    assert text == "| C . 9,0 . | 4,7 . G . |"
    assert np.array_equal(parse_progression(text).frames, frames)
