"""`chordvae explore`: the page is written, self-contained and small, and in a real (headless)
Chromium it decodes, names, voices, sounds and writes MIDI exactly as the Python side does."""
from __future__ import annotations

import base64
import json
import re
import shutil
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pretty_midi
import pytest
import torch
from click.testing import CliRunner
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from chordvae import runs
from chordvae.cli import main
from chordvae.datasets.mnist import MNIST
from chordvae.chords.pcset import from_mask
from chordvae.config import TrainConfig
from chordvae.errors import ChordVAEError
from chordvae.listen.voicing import voice
from chordvae.meta import DatasetMeta
from chordvae.plane import LatentPlane
from chordvae.render.explorer import explorer_data
from chordvae.vae import ModelConfig, build_model
from tests.helpers import chromium, page_data, wait_for_download

DATA = Path(__file__).resolve().parents[1] / "data" / "midi" / "bach"


@pytest.fixture(scope="session")
def chord_run(tmp_path_factory) -> Path:
    """A tiny chord run (12 chorales from two folders, 2-D latent, 8 epochs) with its explorer page."""
    root = tmp_path_factory.mktemp("explorer")
    corpora = [root / "first", root / "second"]
    for k, path in enumerate(sorted(DATA.glob("*.mid"))[:12]):
        corpora[k % 2].mkdir(exist_ok=True)
        shutil.copy(path, corpora[k % 2])
    with pytest.MonkeyPatch.context() as mp:  # session fixtures run before the per-test cache
        mp.setenv("CHORDVAE_CACHE", str(root / "cache"))
        runner = CliRunner()
        result = runner.invoke(main, ["train", "--dataset", "chords", *map(str, corpora), "--latent-dim", "2", "--epochs", "8", "--batch-size", "16", "--lr", "3e-3",
                                      "--jobs", "1", "--threads", "1", "--out", str(root / "run"), "-q"])
        assert result.exit_code == 0, result.output
        result = runner.invoke(main, ["explore", str(root / "run")])
        assert result.exit_code == 0, result.output
    assert result.output.strip() == f"open {(root / 'run' / 'explorer.html').resolve()}"
    return root / "run"


def test_the_page_is_one_small_file_that_needs_no_network(chord_run):
    html = (chord_run / "explorer.html").read_text()
    assert len(html.encode()) < 2_000_000
    assert not re.search(r"https?://|<link|<script[^>]*\bsrc=|<img|@import|url\(", html)
    data = page_data(chord_run)
    assert [layer["out"] for layer in data["decoder"]] == [128, 256, 12]  # the mlp decoder, 2 -> 128 -> 256 -> 12
    assert [c["name"] for c in data["colourings"]] == ["quality", "root", "corpus"]
    assert len(data["points"]["u"]) == len(data["points"]["count"]) > 50
    cells = np.frombuffer(base64.b64decode(data["background"]["cells"]), dtype="<u2")
    assert len(cells) == data["background"]["n"] ** 2
    named = set(range(len(data["sets"]["masks"])))
    assert set(cells.tolist()) - {0xFFFF} <= named and set(data["points"]["set"]) <= named


def test_points_are_coloured_by_the_corpus_whose_chords_include_them_most_often(chord_run):
    """As the pictures colour them: the corpus where the chord has the largest share of the chords."""
    data = page_data(chord_run)
    corpus = data["colourings"][2]
    assert corpus["labels"] == ["first", "second"]
    counts = {}  # a chord's events per folder, counted again from the folders' own extraction
    for k, folder in enumerate(["first", "second"]):
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("CHORDVAE_CACHE", str(chord_run.parent / "cache"))
            result = CliRunner().invoke(main, ["extract", str(chord_run.parent / folder), "--jobs", "1",
                                               "--out", str(chord_run.parent / f"{folder}.jsonl")])
        assert result.exit_code == 0, result.output
        for line in (chord_run.parent / f"{folder}.jsonl").read_text().splitlines():
            mask = sum(1 << pc for pc in json.loads(line)["pitch_classes"])
            counts.setdefault(mask, [0, 0])[k] += 1
    masks = data["sets"]["masks"]
    totals = np.array(list(counts.values())).sum(0)
    for s, of in zip(data["points"]["set"], corpus["of"]):
        shares = np.array(counts[masks[s]]) / totals
        assert shares[of] >= shares[1 - of], (masks[s], shares, of)
    assert set(corpus["of"]) == {0, 1}


def test_extent_and_grid_options_and_a_folder_as_out(chord_run, tmp_path, monkeypatch):
    monkeypatch.setenv("CHORDVAE_CACHE", str(chord_run.parent / "cache"))
    result = CliRunner().invoke(main, ["explore", str(chord_run), "--extent", "3", "--grid", "32", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"open {(tmp_path / 'explorer.html').resolve()}"
    data = page_data(tmp_path)
    assert data["plane"]["extent"] == 3 and data["background"]["n"] == 32
    assert page_data(chord_run)["plane"]["extent"] != 3


def test_only_chord_runs_have_an_explorer(tmp_path):
    model = build_model(ModelConfig("mlp", (1, 28, 28), 2, (16,)))
    run = runs.Run(tmp_path, model, MNIST(), DatasetMeta("mnist"), TrainConfig(), 1)
    with pytest.raises(ChordVAEError, match="the explorer page is for chord runs"):
        explorer_data(run)


def test_a_missing_run_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["explore", str(tmp_path / "nothing")])
    assert result.exit_code == 1 and result.output.strip().startswith("error: ") and "Traceback" not in result.output


# ---------- in Chromium ----------

@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Headless Chromium on the page, downloads going to ``browser.downloads``."""
    with chromium(tmp_path_factory.mktemp("downloads")) as driver:
        yield driver


def show(driver, run: Path, reload: bool = False):
    """The driver on ``run``'s explorer page (loaded from disk)."""
    uri = (run / "explorer.html").resolve().as_uri()
    if reload or driver.current_url != uri:
        driver.get(uri)
    return driver


@pytest.fixture
def page(browser, chord_run):
    """The chord run's page; whatever the test did must not have logged an error in the page."""
    yield show(browser, chord_run)
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def js(driver, expression: str, *args):
    return driver.execute_script(f"return {expression}", *args)


def latent(data: dict, u: float, v: float) -> torch.Tensor:
    """The latent point ``(D,)`` of plane coordinates (u, v), as the page computes it."""
    return LatentPlane.from_dict(data["plane"]).to_latent(torch.tensor([[u, v]]))[0]


def frequent_points(run: Path, k: int) -> list[tuple[float, float]]:
    """The page's k most frequent corpus chords, as plane coordinates, well away from p = 0.5."""
    data = page_data(run)
    model = runs.load_run(run).model
    chosen = []
    for i in np.argsort(data["points"]["count"])[::-1]:
        u, v = data["points"]["u"][i], data["points"]["v"][i]
        with torch.no_grad():
            probs = model.decode_mean(latent(data, u, v)[None])[0]
        if (probs - 0.5).abs().min() > 1e-3 and (probs[:12] >= 0.5).any():
            chosen.append((u, v))
        if len(chosen) == k:
            return chosen
    raise AssertionError("too few corpus chords decode to a clear chord")


def test_page_loads_without_console_errors_and_looks_right(browser, chord_run, tmp_path):
    show(browser, chord_run, reload=True)
    assert js(browser, "typeof window.chordvaeTest") == "object"
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    shot = tmp_path / "explorer.png"
    browser.save_screenshot(str(shot))
    image = plt.imread(shot)
    assert image.shape[1] == 1280 and image[..., :3].std() > 0.05  # a picture, not a blank page


def test_the_javascript_decoder_matches_torch(page, chord_run):
    model = runs.load_run(chord_run).model
    z = torch.randn(40, 2, generator=torch.Generator().manual_seed(3)) * 2
    in_page = js(page, "arguments[0].map(z => window.chordvaeTest.forward(z))", z.tolist())
    with torch.no_grad():
        expected = model.decode_mean(z).double()
    torch.testing.assert_close(torch.tensor(in_page, dtype=torch.float64), expected, atol=1e-5, rtol=0)


def test_the_page_names_chords_as_decode_does(page, chord_run, tmp_path):
    for u, v in frequent_points(chord_run, 3):
        result = CliRunner().invoke(main, ["decode", str(chord_run), "--z", f"z:{u},{v}", "--out", str(tmp_path / "d.mid")])
        assert result.exit_code == 0, result.output
        printed = result.output.splitlines()[0]
        chord = js(page, "window.chordvaeTest.decodeAt(arguments[0], arguments[1])", u, v)
        assert chord["named"], chord  # from the table Python filled, not the page's fallback
        assert printed.split() == ["1", *chord["name"].split(), *chord["symbol"].split(),
                                   *str(chord["pcs"]).split()], (printed, chord)


def test_javascript_voicing_is_pythons(page, chord_run):
    masks = page_data(chord_run)["sets"]["masks"]
    sets = [from_mask(m) for m in masks][::max(1, len(masks) // 12)]
    assert len(sets) >= 8
    for pcs in sets:
        assert js(page, "window.chordvaeTest.voice(arguments[0])", list(pcs)) == voice(pcs)
        assert js(page, "window.chordvaeTest.voice(arguments[0], arguments[1])", list(pcs), pcs[-1]) == voice(pcs, pcs[-1])


def test_a_click_plays_the_chord_under_it(page, chord_run):
    (u, v), = frequent_points(chord_run, 1)
    canvas = page.find_element(By.ID, "plane")
    x, y = js(page, "window.chordvaeTest.toCanvas(arguments[0], arguments[1])", u, v)
    before = len(js(page, "window.chordvaeTest.scheduled"))
    size = canvas.size
    ActionChains(page).move_to_element_with_offset(canvas, round(x - size["width"] / 2),
                                                   round(y - size["height"] / 2)).click().perform()
    scheduled = js(page, "window.chordvaeTest.scheduled")
    assert len(scheduled) == before + 1
    model = runs.load_run(chord_run).model
    with torch.no_grad():  # the click snaps to the corpus chord's point
        probs = model.decode_mean(torch.tensor([[u, v]]))[0]
    assert scheduled[-1]["pitches"] == voice(tuple(torch.nonzero(probs >= 0.5).flatten().tolist()))
    assert js(page, "window.chordvaeTest.audioState()") == "running"  # the click was the user gesture
    assert page.find_element(By.ID, "symbol").text == js(
        page, "window.chordvaeTest.decodeAt(arguments[0], arguments[1]).symbol", u, v)


def test_a_drawn_path_becomes_a_walk_that_plays(page):
    js(page, "window.chordvaeTest.setPath([])")
    canvas = page.find_element(By.ID, "plane")
    ActionChains(page).move_to_element_with_offset(canvas, -150, 120).click_and_hold() \
        .move_by_offset(60, -40).move_by_offset(90, -80).move_by_offset(120, 30).release().perform()
    walk = js(page, "window.chordvaeTest.walk()")
    assert 2 <= len(walk) <= 8
    assert [li.text for li in page.find_elements(By.CSS_SELECTOR, "#walk-list li")] == [c["symbol"] for c in walk]
    before = len(js(page, "window.chordvaeTest.scheduled"))
    page.find_element(By.ID, "play-walk").click()
    played = js(page, "window.chordvaeTest.scheduled")[before:]
    assert [p["pitches"] for p in played] == [c["notes"] for c in walk]
    assert np.allclose(np.diff([p["start"] for p in played]), 2 * 60 / 90)  # 2 beats at 90 bpm, as interpolate
    page.find_element(By.ID, "stop").click()


def test_keys_move_the_cursor_and_enter_plays_the_chord_under_it(page):
    canvas = page.find_element(By.ID, "plane")
    where = page.find_element(By.ID, "where").text
    u0, v0 = js(page, "window.chordvaeTest.cursor()")
    canvas.send_keys(Keys.ARROW_LEFT, Keys.ARROW_DOWN)   # away from the plane's right and top edges
    canvas.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT, Keys.ARROW_UP, Keys.ARROW_UP)
    assert page.find_element(By.ID, "where").text != where
    u1, v1 = js(page, "window.chordvaeTest.cursor()")
    assert u1 - u0 == pytest.approx(v1 - v0) and u1 > u0   # one step right and one up
    for _ in range(48):   # on to a point that decodes to a chord (the plane has silent cells too)
        u, v = js(page, "window.chordvaeTest.cursor()")
        chord = js(page, "window.chordvaeTest.decodeAt(arguments[0], arguments[1])", u, v)
        if chord["pcs"]:
            break
        canvas.send_keys(Keys.ARROW_RIGHT)
    assert chord["pcs"], "no chord within 48 steps to the right"
    before = len(js(page, "window.chordvaeTest.scheduled"))
    canvas.send_keys(Keys.ENTER)
    scheduled = js(page, "window.chordvaeTest.scheduled")
    assert len(scheduled) == before + 1
    assert scheduled[-1]["pitches"] == voice(tuple(chord["pcs"]), chord["bass"])
    assert js(page, "document.activeElement.id") == "plane"


def downloaded_walk(driver, a: tuple[float, float], b: tuple[float, float]) -> tuple[pretty_midi.PrettyMIDI, list]:
    """Walk the page from plane point a to b, press its MIDI button: the file it wrote, and its walk."""
    target = driver.downloads / "chordvae-walk.mid"
    target.unlink(missing_ok=True)
    assert js(driver, "window.chordvaeTest.setPath(arguments[0])", [list(a), list(b)]) >= 2
    driver.find_element(By.ID, "download").click()
    wait_for_download(target)
    return pretty_midi.PrettyMIDI(str(target)), js(driver, "window.chordvaeTest.walk()")


def interpolated(run: Path, a: torch.Tensor, b: torch.Tensor, out: Path, prefix: str = "z:") -> pretty_midi.PrettyMIDI:
    """What `chordvae interpolate RUN z:a z:b --steps 8` (or xy:a xy:b) writes."""
    points = [(prefix + ",".join(repr(x) for x in p.tolist())) for p in (a, b)]
    result = CliRunner().invoke(main, ["interpolate", str(run), *points, "--steps", "8", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return pretty_midi.PrettyMIDI(str(out))


def notes(pm: pretty_midi.PrettyMIDI) -> list[tuple]:
    return sorted((round(n.start, 3), round(n.end, 3), n.pitch, n.velocity) for n in pm.instruments[0].notes)


def test_the_downloaded_walk_is_what_interpolate_writes(page, chord_run, tmp_path):
    a, b = frequent_points(chord_run, 2)
    midi, walk = downloaded_walk(page, a, b)
    assert notes(midi) == notes(interpolated(chord_run, torch.tensor(a), torch.tensor(b), tmp_path / "w.mid"))
    assert len(notes(midi)) >= 2 * 3 and len(walk) >= 2
    assert walk[0]["notes"] == sorted(n.pitch for n in midi.instruments[0].notes if n.start == 0)


@pytest.fixture(scope="module")
def bass_run(chord_run, tmp_path_factory) -> Path:
    """A run with a 3-D latent space (so the page shows its principal plane) and the bass feature."""
    out = tmp_path_factory.mktemp("bass") / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHORDVAE_CACHE", str(chord_run.parent / "cache"))
        runner = CliRunner()
        result = runner.invoke(main, ["train", "--dataset", "chords", str(chord_run.parent / "first"),
                                      str(chord_run.parent / "second"), "--features", "pitch-class+bass",
                                      "--latent-dim", "3", "--epochs", "10", "--batch-size", "16", "--lr", "3e-3",
                                      "--jobs", "1", "--threads", "1", "--out", str(out), "-q"])
        assert result.exit_code == 0, result.output
        result = runner.invoke(main, ["explore", str(out)])
        assert result.exit_code == 0, result.output
    return out


def test_a_3d_run_with_a_bass_walks_its_plane_like_interpolate_between_xy_points(browser, bass_run, tmp_path):
    data = page_data(bass_run)
    assert data["run"]["axes"] == ["PC1", "PC2"] and data["outputs"] == 24
    show(browser, bass_run)
    a, b = frequent_points(bass_run, 2)
    midi, walk = downloaded_walk(browser, a, b)
    expected = interpolated(bass_run, torch.tensor(a), torch.tensor(b), tmp_path / "w.mid", prefix="xy:")
    assert notes(midi) == notes(expected)
    assert any(c["bass"] is not None for c in walk)  # the model's bass dimension chose the bass
    points = list(zip(data["points"]["u"], data["points"]["v"]))
    in_page = js(browser, "arguments[0].map(([u, v]) => window.chordvaeTest.decodeAt(u, v))", points)
    model = runs.load_run(bass_run).model
    with torch.no_grad():
        probs = model.decode_mean(torch.stack([latent(data, u, v) for u, v in points]))
    for chord, p in zip(in_page, probs):
        pcs = torch.nonzero(p[:12] >= 0.5).flatten().tolist()
        bass = p[12:].argmax().item()
        assert (chord["pcs"], chord["bass"]) == (pcs, bass if bass in pcs else None)
    assert sum(c["bass"] is not None and c["bass"] != min(c["pcs"]) for c in in_page) > 0  # not just the lowest
