"""`chordvae explore`: the page is written, self-contained and small, and in a real (headless)
Chromium it decodes, names, voices, sounds and writes MIDI exactly as the Python side does."""
from __future__ import annotations

import base64
import json
import re
import shutil
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pretty_midi
import pytest
import torch
from click.testing import CliRunner

from chordvae import runs
from chordvae.cli import main
from chordvae.datasets.mnist import MNIST
from chordvae.errors import ChordVAEError
from chordvae.listen.voicing import voice
from chordvae.render.explorer import explorer_data
from chordvae.vae import ModelConfig, build_model

DATA = Path(__file__).resolve().parents[1] / "data" / "midi"
CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="session")
def chord_run(tmp_path_factory) -> Path:
    """A tiny chord run (12 chorales, 2-D latent, 6 epochs) with its explorer page written."""
    root = tmp_path_factory.mktemp("explorer")
    corpus = root / "midi"
    corpus.mkdir()
    for path in sorted(DATA.glob("*.mid"))[:12]:
        shutil.copy(path, corpus)
    with pytest.MonkeyPatch.context() as mp:  # session fixtures run before the per-test cache
        mp.setenv("CHORDVAE_CACHE", str(root / "cache"))
        runner = CliRunner()
        result = runner.invoke(main, ["train", "--dataset", "chords", str(corpus), "--epochs", "6",
                                      "--jobs", "1", "--threads", "1", "--out", str(root / "run"), "-q"])
        assert result.exit_code == 0, result.output
        result = runner.invoke(main, ["explore", str(root / "run")])
        assert result.exit_code == 0, result.output
    assert result.output.strip() == f"open {(root / 'run' / 'explorer.html').resolve()}"
    return root / "run"


def page_data(run: Path) -> dict:
    html = (run / "explorer.html").read_text()
    return json.loads(re.search(r'<script type="application/json" id="chordvae-data">(.*?)</script>', html, re.S)
                      .group(1).replace("<\\/", "</"))


def test_the_page_is_one_small_file_that_needs_no_network(chord_run):
    html = (chord_run / "explorer.html").read_text()
    assert len(html.encode()) < 2_000_000
    assert not re.search(r"https?://|<link|<script[^>]*\bsrc=|<img|@import|url\(", html)
    data = page_data(chord_run)
    assert [layer["out"] for layer in data["decoder"]] == [128, 256, 12]  # the mlp decoder, 2 -> 128 -> 256 -> 12
    assert {c["name"] for c in data["colourings"]} == {"quality", "root"}
    assert len(data["points"]["u"]) == len(data["points"]["count"]) > 50
    cells = np.frombuffer(base64.b64decode(data["background"]["cells"]), dtype="<u2")
    assert len(cells) == data["background"]["n"] ** 2
    named = set(range(len(data["sets"]["masks"])))
    assert set(cells.tolist()) - {0xFFFF} <= named and set(data["points"]["set"]) <= named


def test_only_chord_runs_have_an_explorer(tmp_path):
    model = build_model(ModelConfig("mlp", (1, 28, 28), 2, (16,)))
    run = runs.Run(tmp_path, model, MNIST(), "mnist", {}, {}, 1)
    with pytest.raises(ChordVAEError, match="the explorer page is for chord runs"):
        explorer_data(run)


def test_a_missing_run_is_one_line(tmp_path):
    result = CliRunner().invoke(main, ["explore", str(tmp_path / "nothing")])
    assert result.exit_code == 1 and result.output.strip().startswith("error: ") and "Traceback" not in result.output


# ---------- in Chromium ----------

@pytest.fixture(scope="module")
def browser(chord_run, tmp_path_factory):
    """Headless Chromium on the page, downloads going to ``browser.downloads``."""
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path_factory.mktemp("downloads")
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
        driver.get((chord_run / "explorer.html").resolve().as_uri())
        driver.downloads = downloads
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def js(driver, expression: str, *args):
    return driver.execute_script(f"return {expression}", *args)


def frequent_points(run: Path, k: int) -> list[tuple[float, float]]:
    """The page's k most frequent corpus chords, as plane coordinates, well away from p = 0.5."""
    data = page_data(run)
    model = runs.load_run(run).model
    chosen = []
    for i in np.argsort(data["points"]["count"])[::-1]:
        u, v = data["points"]["u"][i], data["points"]["v"][i]
        with torch.no_grad():
            probs = torch.sigmoid(model.decode(torch.tensor([[u, v]])))[0]
        if (probs - 0.5).abs().min() > 1e-3 and (probs >= 0.5).any():
            chosen.append((u, v))
        if len(chosen) == k:
            return chosen
    raise AssertionError("too few corpus chords decode to a clear chord")


def test_page_loads_without_console_errors_and_looks_right(browser, tmp_path):
    assert js(browser, "typeof window.chordvaeTest") == "object"
    errors = [e for e in browser.get_log("browser") if e["level"] == "SEVERE"]
    assert errors == []
    shot = tmp_path / "explorer.png"
    browser.save_screenshot(str(shot))
    image = plt.imread(shot)
    assert image.shape[1] == 1280 and image[..., :3].std() > 0.05  # a picture, not a blank page


def test_the_javascript_decoder_matches_torch(browser, chord_run):
    model = runs.load_run(chord_run).model
    z = torch.randn(40, 2, generator=torch.Generator().manual_seed(3)) * 2
    page = torch.tensor(js(browser, "arguments[0].map(z => window.chordvaeTest.forward(z))", z.tolist()), dtype=torch.float64)
    with torch.no_grad():
        expected = torch.sigmoid(model.decode(z)).double()
    torch.testing.assert_close(page, expected, atol=1e-5, rtol=0)


def test_the_page_names_chords_as_decode_does(browser, chord_run, tmp_path):
    for u, v in frequent_points(chord_run, 3):
        result = CliRunner().invoke(main, ["decode", str(chord_run), "--z", f"z:{u},{v}", "--out", str(tmp_path / "d.mid")])
        assert result.exit_code == 0, result.output
        printed = result.output.splitlines()[0]
        page = js(browser, "window.chordvaeTest.decodeAt(arguments[0], arguments[1])", u, v)
        assert page["named"], page
        assert printed.split() == ["1", *page["name"].split(), *page["symbol"].split(),
                                   *str(page["pcs"]).split()], (printed, page)


def test_javascript_voicing_is_pythons(browser, chord_run):
    data = page_data(chord_run)
    from chordvae.chords.pcset import from_mask
    sets = [from_mask(m) for m in data["sets"]["masks"]][::max(1, len(data["sets"]["masks"]) // 12)]
    assert len(sets) >= 8
    for pcs in sets:
        assert js(browser, "window.chordvaeTest.voice(arguments[0])", list(pcs)) == voice(pcs)
        assert js(browser, "window.chordvaeTest.voice(arguments[0], arguments[1])", list(pcs), pcs[-1]) == voice(pcs, pcs[-1])


def test_a_click_plays_the_chord_under_it(browser, chord_run):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    (u, v), = frequent_points(chord_run, 1)
    canvas = browser.find_element(By.ID, "plane")
    x, y = js(browser, "window.chordvaeTest.toCanvas(arguments[0], arguments[1])", u, v)
    before = len(js(browser, "window.chordvaeTest.scheduled"))
    size = canvas.size
    ActionChains(browser).move_to_element_with_offset(canvas, round(x - size["width"] / 2),
                                                      round(y - size["height"] / 2)).click().perform()
    scheduled = js(browser, "window.chordvaeTest.scheduled")
    assert len(scheduled) == before + 1
    model = runs.load_run(chord_run).model
    with torch.no_grad():  # the click snaps to the corpus chord's point
        probs = torch.sigmoid(model.decode(torch.tensor([[u, v]])))[0]
    assert scheduled[-1]["pitches"] == voice(tuple(torch.nonzero(probs >= 0.5).flatten().tolist()))
    assert js(browser, "window.chordvaeTest.audioState()") in ("running", "suspended")
    assert browser.find_element(By.ID, "symbol").text == js(
        browser, "window.chordvaeTest.decodeAt(arguments[0], arguments[1]).symbol", u, v)


def test_keys_move_the_cursor_and_play(browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    canvas = browser.find_element(By.ID, "plane")
    before = len(js(browser, "window.chordvaeTest.scheduled"))
    where = browser.find_element(By.ID, "where").text
    canvas.send_keys(Keys.ARROW_RIGHT, Keys.ARROW_UP, Keys.ENTER)
    assert browser.find_element(By.ID, "where").text != where
    assert len(js(browser, "window.chordvaeTest.scheduled")) in (before, before + 1)  # an empty decode is silent
    assert js(browser, "document.activeElement.id") == "plane"


def test_the_downloaded_walk_is_what_interpolate_writes(browser, chord_run, tmp_path):
    from selenium.webdriver.common.by import By

    a, b = frequent_points(chord_run, 2)
    steps = js(browser, "window.chordvaeTest.setPath(arguments[0])", [list(a), list(b)])
    assert steps >= 2
    browser.find_element(By.ID, "download").click()
    target = browser.downloads / "chordvae-walk.mid"
    deadline = time.monotonic() + 20
    while not target.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    page = pretty_midi.PrettyMIDI(str(target))
    reference = tmp_path / "walk.mid"
    result = CliRunner().invoke(main, ["interpolate", str(chord_run), f"z:{a[0]},{a[1]}", f"z:{b[0]},{b[1]}",
                                       "--steps", "8", "--out", str(reference)])
    assert result.exit_code == 0, result.output
    expected = pretty_midi.PrettyMIDI(str(reference))

    def notes(pm):
        return sorted((round(n.start, 3), round(n.end, 3), n.pitch, n.velocity) for n in pm.instruments[0].notes)

    assert notes(page) == notes(expected) and len(notes(page)) >= 2 * 3
    chords = [c["notes"] for c in js(browser, "window.chordvaeTest.walk()")]
    assert len(chords) == steps and chords[0] == sorted(n.pitch for n in page.instruments[0].notes if n.start == 0)
