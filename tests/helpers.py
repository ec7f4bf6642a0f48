"""Helpers shared by the tests: music files built on the spot, and a toy dataset.

Test modules import these from here, never from each other; ``conftest.py`` registers ``Toy``.
"""
from __future__ import annotations

import pretty_midi
import torch
from matplotlib.figure import Figure
from music21 import chord, meter, note, stream, tempo, tie

from chordvae.datasets import Data, DatasetAdapter
from chordvae.meta import DatasetMeta
from chordvae.plane import posterior_means
from chordvae.plots import save_figure


def midi_file(path, chords, drums=(), tempo_changes=None, resolution=480):
    """chords: (start_s, end_s, pitches); drums: (start_s, end_s, pitch) on a drum track."""
    pm = pretty_midi.PrettyMIDI(resolution=resolution, initial_tempo=120)
    piano = pretty_midi.Instrument(0)
    for start, end, pitches in chords:
        piano.notes += [pretty_midi.Note(80, p, start, end) for p in pitches]
    pm.instruments.append(piano)
    if drums:
        kit = pretty_midi.Instrument(0, is_drum=True)
        kit.notes += [pretty_midi.Note(80, p, s, e) for s, e, p in drums]
        pm.instruments.append(kit)
    if tempo_changes:  # list of (tick, qpm): pretty_midi keeps them in _tick_scales
        pm._tick_scales = [(tick, 60.0 / (qpm * resolution)) for tick, qpm in tempo_changes]
        pm._update_tick_to_time(pm.time_to_tick(100))
        for inst in pm.instruments:  # notes were given in ticks/resolution = beats: convert
            for n in inst.notes:
                n.start, n.end = pm.tick_to_time(int(n.start * resolution)), pm.tick_to_time(int(n.end * resolution))
    pm.write(str(path))
    return path


def score_file(path, pickup=True):
    """Two parts in 3/4 at 60 bpm with a one-beat pickup; the soprano's first note is tied over."""
    score = stream.Score()
    for part_notes in (["G4", "G4", "A4"], ["B3", "D4", "C4"]):
        part = stream.Part()
        m0 = stream.Measure(number=0)
        m0.append([meter.TimeSignature("3/4"), tempo.MetronomeMark(number=60)] if part_notes[0] == "G4"
                  else [meter.TimeSignature("3/4")])
        m0.append(note.Note(part_notes[0], quarterLength=1))
        m0.paddingLeft = 2.0
        m1 = stream.Measure(number=1)
        m1.append(note.Note(part_notes[1], quarterLength=2))
        m1.append(note.Note(part_notes[2], quarterLength=1))
        part.append([m0, m1])
        score.insert(0, part)
    bass = stream.Part()
    b0 = stream.Measure(number=0)
    b0.append([meter.TimeSignature("3/4"), chord.Chord(["G2"], quarterLength=1)])
    b0.paddingLeft = 2.0
    b1 = stream.Measure(number=1)
    b1.append([note.Note("G2", quarterLength=2), note.Note("F2", quarterLength=1)])
    bass.append([b0, b1])
    score.insert(0, bass)
    soprano = score.parts[0].recurse().notes
    soprano[0].tie, soprano[1].tie = tie.Tie("start"), tie.Tie("stop")
    score.write("musicxml", fp=str(path))
    return path


class Toy(DatasetAdapter):
    """Noisy copies of four 12-bit prototypes; label = prototype."""

    name = "toy"
    default_hidden = (32,)

    def load(self, sources, options, seed, run_dir=None):
        g = torch.Generator().manual_seed(seed)
        protos = torch.tensor([[1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0], [0, 0, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0],
                               [0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 1], [1, 0, 0, 1, 0, 0, 1, 0, 0, 1, 0, 0]]).float()
        labels = torch.randint(0, 4, (600,), generator=g)
        flips = torch.rand(600, 12, generator=g) < 0.02
        x = (protos[labels] + flips.float()) % 2
        return Data(x[:500], x[500:], labels[:500], labels[500:], ["C", "D-", "E-", "dim"],
                    DatasetMeta(self.name, seed=seed))

    def plot_latent_space(self, model, data, meta, path, n=None, scale=None, plane=None):
        z, _ = plane.grid(n or 5, scale)
        fig = Figure()
        ax = fig.subplots()
        ax.imshow(model.decode_mean(z.reshape(-1, model.latent_dim)).detach().numpy())
        save_figure(fig, path)

    def plot_label_clusters(self, model, data, meta, path, plane=None):
        fig = Figure()
        ax = fig.subplots()
        ax.plot(*posterior_means(model, data.validation)[:, :2].T.numpy(), ".")
        save_figure(fig, path)
