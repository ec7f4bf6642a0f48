"""Helpers shared by the tests: music files built on the spot, a toy dataset, headless Chromium.

Test modules import these from here, never from each other; ``conftest.py`` registers ``Toy``.
"""
from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pretty_midi
import pytest
import torch
from matplotlib.figure import Figure
from music21 import chord, meter, note, stream, tempo, tie

from chordvae.datasets import Data, DatasetAdapter
from chordvae.meta import DatasetMeta
from chordvae.plane import posterior_means
from chordvae.plots import save_figure


def random_pieces(lengths, d=5, seed=0) -> list[torch.Tensor]:
    """Pieces of binary frames ``(n, d)``, one per length, each key on with probability 0.4."""
    g = torch.Generator().manual_seed(seed)
    return [(torch.rand(n, d, generator=g) < 0.4).float() for n in lengths]


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


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@contextmanager
def chromium(downloads: Path) -> Iterator:
    """Headless Chromium through Selenium (skips without Debian's chromium and chromium-driver),
    downloads going to ``downloads`` (also ``driver.downloads``), the browser's log kept."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="chordvae-chromium-")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                f"--user-data-dir={profile}", "--window-size=1280,900"):
        options.add_argument(arg)
    options.add_experimental_option("prefs", {"download.default_directory": str(downloads),
                                              "download.prompt_for_download": False})
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    try:
        driver.execute_cdp_cmd("Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
        driver.downloads = downloads
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def wait_for_download(target: Path, seconds: float = 20) -> None:
    """Until Chromium has finished writing ``target``: it exists, is not empty, no partial
    download (``*.crdownload``) is beside it and its size held still over one poll."""
    deadline, last = time.monotonic() + seconds, -1
    while time.monotonic() < deadline:
        size = target.stat().st_size if target.exists() else -1
        if size > 0 and size == last and not any(target.parent.glob("*.crdownload")):
            return
        last = size
        time.sleep(0.1)
    raise AssertionError(f"the page's download {target.name} did not finish within {seconds:.0f} s")


def page_data(run: Path) -> dict:
    """The data block an explorer page (``RUN/explorer.html``) carries."""
    html = (run / "explorer.html").read_text()
    return json.loads(re.search(r'<script type="application/json" id="chordvae-data">(.*?)</script>', html, re.S).group(1))
