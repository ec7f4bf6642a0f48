"""Progression search, paths and maps, and listening: a tiny run trained on all transpositions
of a corpus where "C G Am F" occurs in three keys among unrelated music."""
from __future__ import annotations

import wave

import numpy as np
import pretty_midi
import pytest
from click.testing import CliRunner
from music21 import converter, harmony

from chordvae.cli import main
from chordvae.errors import ChordVAEError
from chordvae.listen.chordspec import parse_chord
from chordvae.progressions.search import similar
from chordvae.runs import load_run

QUERY = "C G Am F"
#: one chord per 4/4 bar; the query's progression at bars 5-8 (in D), 7-10 (in Eb) and 1-4 (in C)
PIECES = {
    "in_d": ["Bb7", "Gbaug", "Ebsus4", "F7", "D", "A", "Bm", "G", "Edim", "C#7", "Fsus2", "Bb7", "Gaug", "A7sus4",
             "D7", "D7"],
    "in_eb": ["Adim", "E7", "Asus4", "Daug", "G7", "C7", "Eb", "Bb", "Cm", "Ab", "F#dim", "Db7", "Bbsus4", "Bb7",
              "E7", "E7"],
    "in_c": ["C", "G", "Am", "F", "Dsus4", "G7", "C7", "E7", "Aaug", "D7", "Gsus4", "Gdim", "Fm", "Bb7", "Eb7",
             "Ab7"],
    # near-identical at bars 5-8: the last chord a seventh; in A with a dominant seventh
    "near_1": ["Ab7", "Dbsus4", "Eb7", "Abaug", "C", "G", "Am", "Fmaj7", "Bbdim", "Eb7", "Gbsus2", "Db7", "Ab7",
               "Eb7", "Ab7", "Ab7"],
    "near_2": ["F#7", "C#7", "F#sus4", "Bdim", "A", "E7", "F#m", "D", "Bdim", "E7", "A7", "A7", "Bsus4", "E7",
               "Aaug", "A7"],
    # unrelated: other kinds of chords throughout
    "blues": ["C7", "F7", "C7", "C7", "F7", "F7", "C7", "C7", "G7", "F7", "C7", "G7", "C7", "F7", "C7", "G7"],
    "chromatic": ["Cm", "C#m", "Dm", "D#m", "Em", "Fm", "F#m", "Gm", "G#m", "Am", "A#m", "Bm", "Cm", "Bm", "A#m",
                  "Am"],
    "augmented": ["Caug", "Dbaug", "Daug", "Ebaug", "Caug", "Dbaug", "Daug", "Ebaug", "Caug", "Ebaug", "Daug",
                  "Dbaug", "Caug", "Caug", "Daug", "Daug"],
    "diminished": ["Cdim", "C#dim", "Ddim", "Cdim", "Ebdim", "Edim", "Fdim", "F#dim", "Cdim", "Gdim", "G#dim",
                   "Adim", "Cdim", "Bbdim", "Bdim", "Cdim"],
    "suspended": ["Csus4", "Dsus4", "Esus4", "Fsus2", "Gsus2", "Asus4", "Bbsus2", "Csus2", "Dsus4", "Ebsus2",
                  "Fsus4", "Gsus2", "Absus4", "Bbsus4", "Csus4", "Csus4"],
}
UNRELATED = ("blues", "chromatic", "augmented", "diminished", "suspended")


def m21_symbol(figure: str) -> harmony.ChordSymbol:
    return harmony.ChordSymbol(figure[0] + figure[1:].replace("b", "-", 1) if figure[1:2] == "b" else figure)


def song(path, figures):
    """One block chord per 4/4 bar at 120 bpm (tones from middle C, the bass two octaves down)."""
    pm = pretty_midi.PrettyMIDI(initial_tempo=120)
    pm.time_signature_changes.append(pretty_midi.TimeSignature(4, 4, 0))
    piano = pretty_midi.Instrument(0)
    for bar, figure in enumerate(figures):
        s = m21_symbol(figure)
        t = bar * 2.0
        piano.notes += [pretty_midi.Note(80, 60 + p, t, t + 2.0) for p in sorted({p.pitchClass for p in s.pitches})]
        piano.notes.append(pretty_midi.Note(80, 36 + s.bass().pitchClass, t, t + 2.0))
    pm.instruments.append(piano)
    pm.write(str(path))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The corpus and a tiny run on all 12 transpositions of it (windows of 4 bars, the default
    latent per beat with 4 dimensions, 30 epochs)."""
    folder = tmp_path_factory.mktemp("corpus")
    for name, figures in PIECES.items():
        song(folder / f"{name}.mid", figures)
    run = tmp_path_factory.mktemp("runs") / "run"
    out = CliRunner().invoke(main, ["train", "--dataset", "progressions", str(folder), "--transpose", "all",
                                    "--epochs", "30", "--hidden", "32,32", "--latent-dim", "4", "--batch-size", "64",
                                    "--lr", "5e-3", "--threads", "1", "--quiet",
                                    "--out", str(run)])
    assert out.exit_code == 0, out.output
    return folder, run


def test_search_finds_the_progression_in_every_key_first_then_near_identical_ones(trained):
    folder, run_dir = trained
    found = similar(load_run(run_dir, progress=False), QUERY, [str(folder)], n=200, progress=False)
    assert found.searched == 10 * 13          # every whole 4-bar window, one on every bar
    spans = [(m.info.path.rsplit("/", 1)[1], m.info.bars) for m in found.matches]
    # the three occurrences, transposed or not, first (the same frames: the same posterior mean)
    assert sorted(spans[:3]) == [("in_c.mid", "1-4"), ("in_d.mid", "5-8"), ("in_eb.mid", "7-10")]
    assert all(m.distance < 1e-5 for m in found.matches[:3]) and found.matches[3].distance > 1e-3
    assert {m.info.path.rsplit("/", 1)[1]: m.shift for m in found.matches[:3]} == \
        {"in_c.mid": 0, "in_d.mid": 2, "in_eb.mid": 3}
    first = {m.info.path.rsplit("/", 1)[1]: m.info.progression for m in found.matches[:3]}
    assert first["in_c.mid"] == "| C . . . | G . . . | Am . . . | F . . . |"
    assert first["in_d.mid"] == "| D . . . | A . . . | Bm . . . | G . . . |"
    # near-identical windows before every window of the unrelated pieces
    rank = {span: r for r, span in enumerate(spans)}
    first_unrelated = min(r for (name, _), r in rank.items() if name[:-4] in UNRELATED)
    assert rank[("near_1.mid", "5-8")] < first_unrelated and rank[("near_2.mid", "5-8")] < first_unrelated


def test_every_typed_form_of_the_query_finds_the_same(trained):
    folder, run_dir = trained
    cli = CliRunner()
    top = set()
    for args in ([QUERY], ["| C . . . | G . . . | Am . . . | F . . . |"], ["I V vi IV"],
                 ["I V vi IV", "--key", "D"], ["III VII i VI", "--key", "a"], [f"{folder / 'in_d.mid'}:5-8"]):
        out = cli.invoke(main, ["similar", str(run_dir), *args, "--in", str(folder), "-n", "3", "--quiet"])
        assert out.exit_code == 0, out.output
        lines = out.output.splitlines()
        assert lines[0].startswith("3 nearest of 130 windows") and len(lines) == 4
        top.add(frozenset(line.split()[0].rsplit("/", 1)[1] for line in lines[1:]))
        # file:bars reads back as a typed progression; distance 0 for the occurrences
        assert all(float(line.split()[1]) < 1e-3 for line in lines[1:])
    assert top == {frozenset({"in_c.mid:1-4", "in_d.mid:5-8", "in_eb.mid:7-10"})}


def test_similar_says_what_is_wrong_on_one_line(trained, tmp_path):
    folder, run_dir = trained
    for args, says in ((["C Xq", "--in", str(folder)], "cannot read the chord 'Xq'"),
                       (["I V Xq", "--key", "D", "--in", str(folder)], "Roman numeral in D major"),
                       (["C G", "--key", "H", "--in", str(folder)], None),
                       ([QUERY, "--in", str(tmp_path / "none")], None)):
        out = CliRunner().invoke(main, ["similar", str(run_dir), *args, "--quiet"])
        assert out.exit_code != 0 and out.output.startswith("error: ") and len(out.output.splitlines()) == 1, out.output
        assert says is None or says in out.output
    with pytest.raises(ChordVAEError, match="--in"):
        similar(load_run(run_dir, progress=False), QUERY, [])


def test_encode_prints_a_piece_s_path_and_draws_it(trained, tmp_path):
    folder, run_dir = trained
    piece = folder / "near_1.mid"
    out = CliRunner().invoke(main, ["encode", str(run_dir), str(piece), "--picture", str(tmp_path / "path.png"),
                                    "--colour-by", "cadence", "--quiet"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[-1] == f"wrote {tmp_path / 'path.png'}" and (tmp_path / "path.png").stat().st_size > 10_000
    path = lines[:-1]
    assert [line.split()[0] for line in path] == [f"{piece}:{b}-{b + 3}" for b in range(1, 14)]
    assert path[4].endswith("| C . . . | G . . . | Am . . . | Fmaj7 . . . |")
    # each point is where encode puts the same bars typed as a span
    span = CliRunner().invoke(main, ["encode", str(run_dir), f"{piece}:5-8"])
    assert span.exit_code == 0, span.output
    assert span.output.split("mean z:")[1].split()[0] == path[4].split("z:")[1].split()[0]
    assert span.output.split("xy:")[1].split()[0] == path[4].split("xy:")[1].split()[0]


def test_plot_draws_the_progression_maps(trained, tmp_path):
    _, run_dir = trained
    out = CliRunner().invoke(main, ["plot", str(run_dir), "-o", str(tmp_path), "--colour-by", "mode", "--quiet"])
    assert out.exit_code == 0, out.output
    for name in ("latent_space.png", "label_clusters.png", "progression_map_mode.png", "progression_map_cadence.png"):
        assert (tmp_path / name).stat().st_size > 10_000, name
    out = CliRunner().invoke(main, ["plot", str(run_dir), "-o", str(tmp_path / "q"), "--colour-by", "quality"])
    assert out.exit_code == 1 and out.output.startswith("error: ") and "corpus, mode, cadence" in out.output


def test_the_map_legend_counts_every_window_once(trained):
    from chordvae.datasets.progressions import map_points
    from chordvae.pictures.sequences import progression_map_figure

    _, run_dir = trained
    run = load_run(run_dir, progress=False)
    points = map_points(run.model, run.data())
    infos = points.infos()
    assert len(points) == 10 * 4                           # 16 bars tiled by 4-bar windows
    plane = run.latent_plane()
    for by in ("corpus", "mode", "cadence"):
        labels = [getattr(i, by) for i in infos]
        fig = progression_map_figure(plane.project(points.means).numpy(), labels, by, plane, "t")
        counts = [int(t.get_text().rsplit("(", 1)[1].rstrip(")")) for t in fig.axes[0].get_legend().get_texts()]
        assert sum(counts) == len(points), by
    assert {i.cadence for i in infos if i.path.endswith("in_c.mid") and i.first_bar == 1} == {"IV"}


def test_a_map_of_many_corpora_names_the_most_frequent_and_greys_the_rest(trained):
    """pop909-train read as a folder of song folders is 659 corpora: a legend of 659 entries made a
    picture 12,696 px tall. The most frequent corpora get colours; the rest, "other", still count."""
    from chordvae.chords.stats import CORPUS_COLOURS
    from chordvae.pictures.sequences import MAP_COLOURS, progression_map_figure

    _, run_dir = trained
    plane = load_run(run_dir, progress=False).latent_plane()
    labels = [f"song{i:03d}" for i in range(40) for _ in range(1 + (i < 5) * 10)]   # 5 large corpora, 35 small
    points = np.random.default_rng(0).normal(size=(len(labels), 2))
    fig = progression_map_figure(points, labels, "corpus", plane, "t", names=sorted(set(labels)))
    legend = fig.axes[0].get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    kept = min(MAP_COLOURS, len(CORPUS_COLOURS))
    assert len(texts) == kept + 1 and texts[-1] == f"other ({len(labels) - 5 * 11 - (kept - 5)})"
    colours = [tuple(h.get_facecolor()) for h in legend.legend_handles]
    assert len(set(colours)) == len(colours)                # no two corpora share a colour
    assert all(f"song{i:03d} (11)" in texts for i in range(5))
    assert sum(int(t.rsplit("(", 1)[1].rstrip(")")) for t in texts) == len(labels)


def test_sample_writes_musicxml_with_chord_symbols_on_their_beats_and_wav(trained, tmp_path):
    _, run_dir = trained
    out = CliRunner().invoke(main, ["sample", str(run_dir), "-n", "2", "-o", str(tmp_path / "s.musicxml"),
                                    "--wav", str(tmp_path / "s.wav")])
    assert out.exit_code == 0, out.output
    lines = [line for line in out.output.splitlines() if line.strip()[:1].isdigit()]
    assert len(lines) == 2
    # the chord symbols written are the ones printed, where the printed bars put them
    expected = []
    for w, line in enumerate(lines):
        beats = [token for token in line.split(None, 1)[1].split() if token != "|"]
        previous = None
        for b, token in enumerate(beats):
            if token != "." and token != previous and token != "N":
                expected.append((16.0 * w + b, token))
            previous = token if token != "." else previous
    from music21 import expressions

    score = converter.parse(str(tmp_path / "s.musicxml"))
    names = sorted(((float(e.getOffsetInHierarchy(score)), e) for e in score.recurse()
                    .getElementsByClass((harmony.ChordSymbol, expressions.TextExpression))), key=lambda p: p[0])
    assert [o for o, _ in names] == [o for o, _ in expected]
    for (_, e), (_, token) in zip(names, expected):
        if isinstance(e, harmony.ChordSymbol):   # a set without a symbol is written as text
            assert tuple(sorted({p.pitchClass for p in e.pitches})) == parse_chord(token).pitch_classes, token
    if "audio:" in out.output:
        with wave.open(str(tmp_path / "s.wav")) as w:
            assert w.getnframes() / w.getframerate() >= 2 * 16 * 60 / 90
    else:
        assert "no audio" in out.output


def test_midi_and_musicxml_hold_chords_on_their_beats_in_three_four(tmp_path):
    from chordvae.listen.midi import RenderOptions
    from chordvae.listen.progressions import render_progressions
    from chordvae.progressions.typed import parse_progression

    typed = parse_progression("| C . G | Am . . | N F/A . |", meter="3/4")
    frames = __import__("torch").from_numpy(typed.frames)[None]
    options = RenderOptions(bpm=60, beats_per_bar=3)
    lines = render_progressions(frames, tmp_path / "p.mid", options)
    assert lines == ["  1  | C . G | Am . . | N F/A . |"]
    notes = pretty_midi.PrettyMIDI(str(tmp_path / "p.mid")).instruments[0].notes
    by_span: dict = {}
    for n in notes:
        by_span.setdefault((round(n.start, 3), round(n.end, 3)), set()).add(n.pitch)
    assert sorted(by_span) == [(0.0, 2.0), (2.0, 3.0), (3.0, 6.0), (7.0, 9.0)]     # seconds = beats at 60 bpm
    assert {p % 12 for p in by_span[(7.0, 9.0)]} == {5, 9, 0} and min(by_span[(7.0, 9.0)]) % 12 == 9   # F over A
    render_progressions(frames, tmp_path / "p.musicxml", options)
    score = converter.parse(str(tmp_path / "p.musicxml"))
    assert [m.timeSignature.ratioString for m in score.recurse().getElementsByClass("Measure") if m.timeSignature] \
        == ["3/4"]
    symbols = [(float(s.getOffsetInHierarchy(score)), s.figure) for s in score.recurse().getElementsByClass(harmony.ChordSymbol)]
    assert symbols == [(0.0, "C"), (2.0, "G"), (3.0, "Am"), (7.0, "F/A")]


def test_roman_numerals_take_the_key_given(trained):
    """``--key``: numerals read by music21 in that key (a lower-case key is minor); chord symbols ignore it."""
    from music21 import key, roman

    _, run_dir = trained
    run = load_run(run_dir, progress=False)
    meta, c = run.dataset_meta, run.model.config.context
    for text, tonic in (("I V vi IV", "D"), ("i iv V7 i", "a"), ("ii7 V7 I I", "Bb")):
        frames = run.adapter.parse_event(text, meta, key=tonic).x[0, c:].numpy()
        for bar, figure in enumerate(text.split()):
            rn = roman.RomanNumeral(figure, key.Key(tonic.replace("b", "-")))
            want = np.zeros(25, dtype=np.float32)
            want[[p.pitchClass for p in rn.pitches]] = 1
            want[12 + rn.bass().pitchClass] = 1
            assert np.array_equal(frames[4 * bar], want) and np.array_equal(frames[4 * bar + 3], want), figure
    assert np.array_equal(run.adapter.parse_event("D A Bm G", meta, key="a").x, run.adapter.parse_event("D A Bm G", meta).x)


def test_a_known_progression_comes_back_from_encode_then_decode(trained):
    from chordvae.progressions.frames import progression_text

    folder, run_dir = trained
    run = load_run(run_dir, progress=False)
    c = run.model.config.context
    for span, want in ((f"{folder / 'in_c.mid'}:1-4", "| C . . . | G . . . | Am . . . | F . . . |"),
                       (f"{folder / 'in_d.mid'}:5-8", "| D . . . | A . . . | Bm . . . | G . . . |")):
        event = run.adapter.parse_event(span, run.dataset_meta)
        assert progression_text(event.x[0, c:].numpy(), 4) == want          # the corpus holds it
        mu, _ = run.model.encode(event)
        assert progression_text(run.model.decode_mean(mu)[0].numpy(), 4) == want


def test_interpolation_endpoints_are_the_typed_progressions(trained, tmp_path):
    _, run_dir = trained
    out = CliRunner().invoke(main, ["interpolate", str(run_dir), QUERY, "I V vi IV", "--key", "D", "--steps", "3",
                                    "-o", str(tmp_path / "i.mid")])
    assert out.exit_code == 0, out.output
    lines = [line.split(None, 1)[1] for line in out.output.splitlines() if line.strip()[:1].isdigit()]
    assert len(lines) == 3
    assert lines[0] == "| C . . . | G . . . | Am . . . | F . . . |"
    assert lines[-1] == "| D . . . | A . . . | Bm . . . | G . . . |"


def test_the_readme_progression_examples_run_as_written(trained, tmp_path, monkeypatch):
    """Every command of the README's progressions block but the training, on the toy run."""
    import re
    import shlex
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    readme = (repo / "README.md").read_text()
    block = re.search(r"## Progressions.*?```bash\n(.*?)```", readme, re.S).group(1)
    commands = [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]
    assert commands[0].startswith("chordvae train --dataset progressions") and len(commands) >= 8
    _, run_dir = trained
    monkeypatch.chdir(tmp_path)
    for command in commands[1:]:
        words = shlex.split(command)
        args = [str(run_dir) if w == "RUN" else str(repo / w) if w.startswith("data/") else w for w in words[1:]]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, (command, result.output)
    assert (tmp_path / "walk.musicxml").is_file() and (tmp_path / "path.png").is_file()
    assert (tmp_path / "pictures" / "progression_map_cadence.png").is_file()


def test_a_run_on_pieces_moved_to_c_encodes_windows_moved_and_names_them_as_written(trained):
    from dataclasses import replace

    import torch

    from chordvae.chords.vectors import key_shift, transpose_blocks
    from chordvae.progressions.corpus import read_progressions
    from chordvae.progressions.search import encode_windows, nearest, run_options, window_points

    folder, run_dir = trained
    run = load_run(run_dir, progress=False)
    options = replace(run_options(run), transpose="c")
    corpus = read_progressions([str(folder)], options, progress=False)
    points = window_points(run.model, corpus, options, whole=True)
    i = next(k for k, info in enumerate(points.infos()) if info.path.endswith("in_d.mid") and info.first_bar == 5)
    p = int(points.windows.piece[i])
    shift = key_shift(int(corpus.key_tonic[p]), "major" if corpus.key_major[p] else "minor")
    assert points.moved[i] == shift != 0
    # named in the file's key ...
    assert points.infos([i])[0].progression == "| D . . . | A . . . | Bm . . . | G . . . |"
    assert np.array_equal(points.windows.frames[i].numpy(), corpus.piece_frames(p)[16:32])
    # ... encoded moved to C, as the run was trained
    moved = torch.from_numpy(transpose_blocks(points.windows.frames[i:i + 1].numpy(), np.array([shift]), 2))
    torch.testing.assert_close(encode_windows(run.model, moved, points.windows.mask[i:i + 1]), points.means[i:i + 1])
    # the query typed in the moved key finds it; the shift is the query's against the file
    query = encode_windows(run.model, moved, points.windows.mask[i:i + 1])
    (match,) = nearest(points, query, [0], 1)
    assert match.distance < 1e-5 and match.info.bars == "5-8" and match.shift == (-shift) % 12


def test_a_query_is_tried_in_every_key_for_runs_trained_in_every_key():
    from chordvae.progressions.corpus import ProgressionOptions
    from chordvae.progressions.search import query_shifts

    assert query_shifts(ProgressionOptions()) == list(range(12))              # the default: random keys
    assert query_shifts(ProgressionOptions(transpose="all")) == list(range(12))
    assert query_shifts(ProgressionOptions(transpose="none")) == [0]
    assert query_shifts(ProgressionOptions(transpose="c")) == [0]
