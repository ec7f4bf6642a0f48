"""`chordvae explore` on a progression run: the page is small and offline, and in a real (headless)
Chromium it decodes, names, plays, morphs and encodes progressions exactly as the CLI does."""
from __future__ import annotations

import re
import shutil
from dataclasses import asdict, dataclass, replace
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
from chordvae.datasets.progressions import Progressions
from chordvae.errors import ChordVAEError
from chordvae.progressions.frames import frame_symbols, progression_text
from chordvae.render.explorer import write_explorer
from chordvae.render.progressions import corpus_points, expected_weights, model_weights, name_table
from chordvae.chords.names import name_chord
from chordvae.sequence import SequenceConfig, build_sequence
from tests.helpers import chromium, page_data, wait_for_download

POP = Path(__file__).resolve().parents[1] / "data" / "midi" / "pop"


@pytest.fixture(scope="module", params=[("frame", 2, "random"), ("window", 4, "none")],
                ids=["latent-per-beat", "latent-per-window"])
def prog_run(request, tmp_path_factory) -> Path:
    """A small progression run (the bundled pop songs in two folders, 4-bar windows, 10 epochs: it
    decodes chords that change within a window) with its page: the default latent per beat (2
    dimensions each, trained in random keys, the default), or one latent of 4 dimensions per window
    (in the keys as they are: 10 epochs in random keys leave it one chord per window)."""
    latent_per, latent_dim, transpose = request.param
    root = tmp_path_factory.mktemp("progpage")
    corpora = [root / "first", root / "second"]
    for k, path in enumerate(sorted(POP.glob("*.mid"))):
        corpora[k % 2].mkdir(exist_ok=True)
        shutil.copy(path, corpora[k % 2])
    with pytest.MonkeyPatch.context() as mp:   # module fixtures run before the per-test cache
        mp.setenv("CHORDVAE_CACHE", str(root / "cache"))
        mp.setattr(Progressions, "default_model", replace(Progressions.default_model, latent_per=latent_per))
        runner = CliRunner()
        result = runner.invoke(main, ["train", "--dataset", "progressions", *map(str, corpora), "--bars", "4",
                                      "--transpose", transpose, "--latent-dim", str(latent_dim), "--hidden", "32,64", "--epochs", "10", "--lr", "3e-3",
                                      "--batch-size", "16", "--jobs", "1", "--threads", "1", "--out", str(root / "run"), "-q"])
        assert result.exit_code == 0, result.output
        result = runner.invoke(main, ["explore", str(root / "run"), "-q"])
        assert result.exit_code == 0, result.output
    assert result.output.strip() == f"open {(root / 'run' / 'explorer.html').resolve()}"
    return root / "run"


def test_the_page_is_one_small_offline_file_with_the_runs_model(prog_run):
    html = (prog_run / "explorer.html").read_text()
    assert len(html.encode()) < 3_000_000
    assert not re.search(r"https?://|<link|<script[^>]*\bsrc=|<img|@import|url\(", html)
    data = page_data(prog_run)
    run = runs.load_run(prog_run, progress=False)
    assert set(data["model"]["weights"]) == expected_weights(run.model.config) - {
        "decoder.frame.mask_in", "decoder.frame.mask_out", "decoder.frame.mask_direct"}
    config = data["model"]["config"]
    assert data["run"]["window"] == 16 and data["run"]["latentDim"] == run.model.latent_dim
    assert (config["latent_per"], config["latent_dim"]) in {("frame", 2), ("window", 4)}
    assert run.model.latent_dim == (32 if config["latent_per"] == "frame" else 4)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHORDVAE_CACHE", str(prog_run.parent / "cache"))
        points = corpus_points(run)
    assert data["points"]["n"] == data["points"]["total"] == len(points) > 400   # a window on every bar
    assert [c["name"] for c in data["colourings"]] == ["corpus", "mode", "cadence"]
    assert data["colourings"][0]["labels"] == ["first", "second"]


def test_the_extent_option(prog_run, tmp_path):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHORDVAE_CACHE", str(prog_run.parent / "cache"))
        result = CliRunner().invoke(main, ["explore", str(prog_run), "--extent", "5", "-o", str(tmp_path), "-q"])
    assert result.exit_code == 0, result.output
    assert page_data(tmp_path)["plane"]["extent"] == 5 != page_data(prog_run)["plane"]["extent"]


def test_the_name_table_is_frame_symbols():
    table = name_table()
    rows = table["symbols"].split("\n")
    assert len(rows) == 4095 and len(table["roots"]) == 4096
    cases = [(0b10010001, 4), (0b10010001, None), (0b10010001 | 1 << 10, 10), (0b111, 1), (0b1, 0), (0b1000000101, 9)]
    for mask, bass in cases:
        pcs = [pc for pc in range(12) if mask >> pc & 1]
        frame = np.zeros((1, 25))
        frame[0, pcs] = 1
        if bass is not None:
            frame[0, 12 + bass] = 1
        row = rows[mask - 1].split("\t")
        assert (row[-1] if bass is None else (row[pcs.index(bass)] or row[-1])) == frame_symbols(frame)[0]
        assert table["roots"][mask] == name_chord(pcs).root
    assert rows[0b111 - 1].split("\t")[1] == "1,0,2"     # no symbol: pitch classes, the bass first


@dataclass
class _Conducted(SequenceConfig):
    conductor: int = 2


def test_a_model_the_page_does_not_implement_is_one_line():
    model = build_sequence(SequenceConfig(keys=25, window=4, context=4, latent_dim=2, encoder_hidden=4,
                                          decoder_hidden=4, made_hidden=4))
    assert set(model_weights(model)["weights"]) == expected_weights(model.config) - {
        "decoder.frame.mask_in", "decoder.frame.mask_out", "decoder.frame.mask_direct"}
    model.decoder.register_buffer("conductor", torch.zeros(3))
    with pytest.raises(ChordVAEError, match="unknown: decoder.conductor"):
        model_weights(model)
    model = build_sequence(SequenceConfig(keys=25, window=4, context=4, latent_dim=2, encoder_hidden=4,
                                          decoder_hidden=4, made_hidden=4))
    model.config = _Conducted(**asdict(model.config))
    with pytest.raises(ChordVAEError, match="conductor") as error:
        model_weights(model)
    assert "\n" not in str(error.value)
    stepwise = build_sequence(SequenceConfig(keys=25, window=4, latent_dim=2, encoder_hidden=4, decoder_hidden=4,
                                             made_hidden=4, latent_per="frame", prior_components=3))
    assert set(model_weights(stepwise)["weights"]) == expected_weights(stepwise.config) - {
        "decoder.frame.mask_in", "decoder.frame.mask_out", "decoder.frame.mask_direct"}
    assert not any("prior" in name for name in expected_weights(stepwise.config))   # the page never samples


# ---------- in Chromium ----------

@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("downloads")) as driver:
        yield driver


@pytest.fixture
def page(browser, prog_run):
    """The run's page; whatever the test did must not have logged an error in the page."""
    uri = (prog_run / "explorer.html").resolve().as_uri()
    if browser.current_url != uri:
        browser.get(uri)
    yield browser
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def js(driver, expression: str, *args):
    return driver.execute_script(f"return {expression}", *args)


def decoded(run: Path, point: str, out: Path) -> tuple[str, pretty_midi.PrettyMIDI]:
    """What `chordvae decode RUN --z POINT` prints (the progression) and writes."""
    result = CliRunner().invoke(main, ["decode", str(run), "--z", point, "--out", str(out)])
    assert result.exit_code == 0, result.output
    line = result.output.splitlines()[0]
    return line.split(None, 1)[1], pretty_midi.PrettyMIDI(str(out))


def window_points(driver, k: int) -> list[tuple[float, float]]:
    """k corpus windows' points, spread over the corpus (the page's own coordinates)."""
    n = page_data_n(driver)
    return [tuple(js(driver, "window.chordvaeTest.point(arguments[0])", i)) for i in np.linspace(0, n - 1, k).astype(int).tolist()]


def page_data_n(driver) -> int:
    return js(driver, "DATA.points.n")


def test_page_loads_without_console_errors_and_looks_right(page, tmp_path):
    page.refresh()
    assert js(page, "typeof window.chordvaeTest") == "object"
    assert [e for e in page.get_log("browser") if e["level"] == "SEVERE"] == []
    shot = tmp_path / "page.png"
    page.save_screenshot(str(shot))
    image = plt.imread(shot)
    assert image.shape[1] == 1280 and image[..., :3].std() > 0.05
    bars = page.find_elements(By.CSS_SELECTOR, "#progression .pbar")
    text = js(page, "window.chordvaeTest.decodeAt(...window.chordvaeTest.cursor()).text")
    assert page.find_element(By.ID, "text").text == text
    expected = [[t for t in bar.split() if t != "."] for bar in text.strip("| ").split(" | ")]
    assert [[c.text for c in bar.find_elements(By.CSS_SELECTOR, ".beat")] for bar in bars] == expected
    assert [sum(int(c.value_of_css_property("flex-grow")) for c in bar.find_elements(By.CSS_SELECTOR, ".beat"))
            for bar in bars] == [4] * 4


def test_the_page_decodes_what_decode_prints(page, prog_run, tmp_path):
    points = window_points(page, 4) + [(0.0, 0.0), (0.7, -0.4)]
    texts = set()
    for u, v in points:
        printed, _ = decoded(prog_run, f"xy:{u!r},{v!r}", tmp_path / "d.mid")
        assert js(page, "window.chordvaeTest.decodeAt(arguments[0], arguments[1]).text", u, v) == printed
        texts.add(printed)
    assert len(texts) >= 2                                  # not one progression everywhere
    assert any(len(set(t.split()) - {"|", "."}) > 1 for t in texts)   # chords change within a window somewhere
    z = torch.randn(3, js(page, "DATA.run.latentDim"), generator=torch.Generator().manual_seed(1)).tolist()
    for point in z:
        printed, _ = decoded(prog_run, "z:" + ",".join(map(repr, point)), tmp_path / "d.mid")
        assert js(page, "window.chordvaeTest.decodeZ(arguments[0])", point) == printed


def notes(pm: pretty_midi.PrettyMIDI) -> list[tuple]:
    return sorted((round(n.start, 3), round(n.end, 3), n.pitch, n.velocity) for n in pm.instruments[0].notes)


def test_a_click_plays_the_progression_in_time(page, prog_run, tmp_path):
    canvas = page.find_element(By.ID, "plane")
    size = canvas.size
    for bpm in (90, 120):
        tempo = page.find_element(By.ID, "bpm")
        tempo.clear()
        tempo.send_keys(str(bpm))
        before = len(js(page, "window.chordvaeTest.scheduled"))
        u, v = window_points(page, 3)[1]
        x, y = js(page, "window.chordvaeTest.toCanvas(arguments[0], arguments[1])", u, v)
        ActionChains(page).move_to_element_with_offset(canvas, round(x - size["width"] / 2),
                                                       round(y - size["height"] / 2)).click().perform()
        played = js(page, "window.chordvaeTest.scheduled")[before:]
        assert js(page, "window.chordvaeTest.audioState()") == "running"   # the click was the user gesture
        cu, cv = js(page, "window.chordvaeTest.cursor()")
        _, midi = decoded(prog_run, f"xy:{cu!r},{cv!r}", tmp_path / "c.mid")
        expected = {}
        for n in midi.instruments[0].notes:    # decode writes 90 bpm: rescale to the page's tempo
            expected.setdefault((round(n.start * 90 / bpm, 4), round((n.end - n.start) * 90 / bpm, 4)), []).append(n.pitch)
        assert expected, "the clicked point decodes to silence"
        t0 = js(page, "window.chordvaeTest.startedAt()")
        got = {(round(p["start"] - t0, 4), round(p["duration"], 4)): sorted(p["pitches"]) for p in played}
        assert got == {k: sorted(p) for k, p in expected.items()}
    page.find_element(By.ID, "stop").click()


def test_hovering_a_window_names_its_file_and_bars(page, prog_run):
    data = page_data(prog_run)
    canvas = page.find_element(By.ID, "plane")
    size = canvas.size
    i = data["points"]["n"] // 3
    u, v = js(page, "window.chordvaeTest.point(arguments[0])", i)
    x, y = js(page, "window.chordvaeTest.toCanvas(arguments[0], arguments[1])", u, v)
    ActionChains(page).move_to_element_with_offset(canvas, round(x - size["width"] / 2),
                                                   round(y - size["height"] / 2)).perform()
    hovered = js(page, "window.chordvaeTest.hovered()")
    assert hovered >= 0
    text = page.find_element(By.ID, "window-info").text
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHORDVAE_CACHE", str(prog_run.parent / "cache"))
        info = corpus_points(runs.load_run(prog_run, progress=False)).infos()[hovered]
    assert Path(info.path).name in text and f"bars {info.first_bar}–{info.last_bar}" in text
    assert info.key in text and f"last chord {info.cadence}" in text and info.corpus in text


def test_the_downloaded_morph_is_what_interpolate_writes(page, prog_run, tmp_path):
    a, b = window_points(page, 5)[0], window_points(page, 5)[-1]
    target = page.downloads / "chordvae-morph.mid"
    target.unlink(missing_ok=True)
    tempo = page.find_element(By.ID, "bpm")
    tempo.clear()
    tempo.send_keys("120")
    assert js(page, "window.chordvaeTest.setPath(arguments[0])", [list(a), list(b)]) == 8
    page.find_element(By.ID, "download").click()
    wait_for_download(target)
    result = CliRunner().invoke(main, ["interpolate", str(prog_run), f"xy:{a[0]!r},{a[1]!r}", f"xy:{b[0]!r},{b[1]!r}",
                                       "--steps", "8", "--bpm", "120", "--out", str(tmp_path / "i.mid")])
    assert result.exit_code == 0, result.output
    expected = notes(pretty_midi.PrettyMIDI(str(tmp_path / "i.mid")))
    assert notes(pretty_midi.PrettyMIDI(str(target))) == expected and len(expected) > 8
    printed = [line.split(None, 1)[1] for line in result.output.splitlines() if line.strip()[:1].isdigit()]
    assert js(page, "window.chordvaeTest.walk()") == printed
    assert [li.text for li in page.find_elements(By.CSS_SELECTOR, "#walk-list li")] == printed
    before = len(js(page, "window.chordvaeTest.scheduled"))
    page.find_element(By.ID, "play-walk").click()
    assert len(js(page, "window.chordvaeTest.scheduled")) > before
    page.find_element(By.ID, "stop").click()


def encoded(run: Path, text: str) -> tuple[list[float], list[float]]:
    """The posterior mean and plane point `chordvae encode` prints."""
    result = CliRunner().invoke(main, ["encode", str(run), text])
    assert result.exit_code == 0, result.output
    mean = re.search(r"mean z:(\S+)", result.output).group(1)
    xy = re.search(r"plane xy:(\S+)", result.output).group(1)
    return [float(x) for x in mean.split(",")], [float(x) for x in xy.split(",")]


def test_the_typed_box_places_a_progression_where_encode_puts_it(page, prog_run):
    box = page.find_element(By.ID, "search")
    box.clear()
    box.send_keys("C G Am F", Keys.ENTER)
    shown = page.find_element(By.ID, "search-result").text
    mean, xy = encoded(prog_run, "C G Am F")
    assert f"xy:{xy[0]:.3f},{xy[1]:.3f}" in shown.replace("-0.000", "0.000")
    assert f"z:{','.join(f'{m:.3f}' for m in mean)}" in shown
    listed = [li.text for li in page.find_elements(By.CSS_SELECTOR, "#nearest li")]
    assert len(listed) == 10
    near = js(page, "window.chordvaeTest.search('C G Am F').near.map(i => window.chordvaeTest.window(i))")
    assert [w["label"] for w in near] == listed
    with pytest.MonkeyPatch.context() as mp:     # the same windows as `similar` finds first
        mp.setenv("CHORDVAE_CACHE", str(prog_run.parent / "cache"))
        result = CliRunner().invoke(main, ["similar", str(prog_run), "C G Am F", "--in", str(prog_run.parent / "first"),
                                           "--in", str(prog_run.parent / "second"), "-n", "3", "--jobs", "1", "-q"])
    assert result.exit_code == 0, result.output
    found = [line.split()[0] for line in result.output.splitlines() if ".mid:" in line.split()[0]][:3]
    assert len(found) == 3
    first = near[0]
    assert f"{Path(first['file']).name}:{first['first']}-{first['last']}" in [Path(f).name for f in found]
    run = runs.load_run(prog_run, progress=False)
    for text in ("C G Am F", "| C . G . | Am . F . | Dm7 . G7/B . | C . N . |", "0,4,7 F/A Bbmaj7 Em"):
        found = js(page, "window.chordvaeTest.search(arguments[0])", text)
        mu, _ = run.model.encode(run.adapter.parse_event(text, run.dataset_meta))
        torch.testing.assert_close(torch.tensor(found["mu"]), mu[0].double().float(), atol=1e-5, rtol=0)
    box.clear()
    box.send_keys("I V vi IV", Keys.ENTER)
    shown = page.find_element(By.ID, "search-result").text
    assert shown.startswith("error: ") and "chordvae encode" in shown and "\n" not in shown


def test_keys_move_play_and_make_a_morph(page):
    js(page, "window.chordvaeTest.setPath([])")
    canvas = page.find_element(By.ID, "plane")
    canvas.click()
    u0, v0 = js(page, "window.chordvaeTest.cursor()")
    canvas.send_keys(Keys.ARROW_LEFT, Keys.ARROW_LEFT, Keys.ARROW_DOWN)
    u1, v1 = js(page, "window.chordvaeTest.cursor()")
    assert u1 < u0 and v1 < v0
    canvas.send_keys("w", Keys.SHIFT + Keys.ARROW_RIGHT, Keys.SHIFT + Keys.ARROW_UP, "w")
    assert len(js(page, "window.chordvaeTest.walk()")) == 8
    before = len(js(page, "window.chordvaeTest.scheduled"))
    canvas.send_keys(Keys.ENTER)
    after = len(js(page, "window.chordvaeTest.scheduled"))
    canvas.send_keys("p")
    assert len(js(page, "window.chordvaeTest.scheduled")) > after >= before
    canvas.send_keys(Keys.ESCAPE)
    assert js(page, "window.chordvaeTest.walk()") == []
    assert js(page, "document.activeElement.id") == "plane"


def test_a_bernoulli_decoder_and_its_encoder_run_in_the_page_as_in_torch(browser, prog_run, tmp_path):
    """The page follows the checkpoint's config: frames of independent Bernoulli keys too."""
    run = runs.load_run(prog_run, progress=False)
    torch.manual_seed(0)
    model = build_sequence(replace(run.model.config, output="bernoulli")).eval()
    with torch.no_grad():
        model.decoder.frame.linear.weight.normal_(0, 1.5)    # random weights that vary with z
    other = runs.Run(tmp_path, model, run.adapter, run.dataset_meta, run.training, 1, run.latent_plane())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHORDVAE_CACHE", str(prog_run.parent / "cache"))
        write_explorer(other, tmp_path)
    browser.get((tmp_path / "explorer.html").resolve().as_uri())
    z = torch.randn(6, model.latent_dim, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        expected = [progression_text(frames, 4) for frames in model.decode_mean(z).numpy()]
    assert len(set(expected)) > 1 and any(set(t.split()) - {"|", ".", "N"} for t in expected)
    assert js(browser, "arguments[0].map(z => window.chordvaeTest.decodeZ(z))", z.tolist()) == expected
    found = js(browser, "window.chordvaeTest.search(arguments[0])", "Am F C G")
    mu, _ = model.encode(run.adapter.parse_event("Am F C G", run.dataset_meta))
    torch.testing.assert_close(torch.tensor(found["mu"]), mu[0].detach(), atol=1e-5, rtol=0)
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []


def test_a_corpus_too_large_for_its_means_is_ranked_along_their_first_principal_directions(
        browser, prog_run, tmp_path, monkeypatch):
    """Beyond MAX_MEANS numbers the page holds each window's coordinates along the means' first
    k = MAX_MEANS // windows principal directions (not its whole mean) and ranks a typed
    progression there, in every key the run was trained in: the windows torch ranks first there."""
    import base64

    from chordvae.progressions.search import encode_query
    from chordvae.render import progressions as page_module

    monkeypatch.setenv("CHORDVAE_CACHE", str(prog_run.parent / "cache"))
    run = runs.load_run(prog_run, progress=False)
    assert page_module.progression_data(run)["points"]["ranking"] is None      # small: the means themselves
    means = corpus_points(run).means
    monkeypatch.setattr(page_module, "MAX_MEANS", 3 * len(means) + 1)
    write_explorer(run, tmp_path)
    points = page_data(tmp_path)["points"]
    ranking, steps = points["ranking"], np.array(points["meanSteps"])
    basis, centre = torch.tensor(ranking["basis"]), torch.tensor(ranking["centre"])
    assert basis.shape == (3, run.model.latent_dim) and 0 < ranking["variance"] < 1
    torch.testing.assert_close(basis @ basis.T, torch.eye(3), atol=1e-5, rtol=0)
    coords = np.frombuffer(base64.b64decode(points["means"]), np.int8).reshape(len(means), 3) * steps
    assert np.abs(coords - ((means - centre) @ basis.T).numpy()).max() <= steps.max() / 2 + 1e-5
    browser.get((tmp_path / "explorer.html").resolve().as_uri())
    found = js(browser, "window.chordvaeTest.search('C G Am F')")
    query = encode_query(run, "C G Am F")
    assert len(query.shifts) == (12 if run.dataset_meta.options["transpose"] == "random" else 1)
    distance = torch.cdist(((query.means - centre) @ basis.T).double(), torch.from_numpy(coords)).min(0).values
    span = np.frombuffer(base64.b64decode(points["span"]), np.uint8)
    distance[torch.from_numpy(span + 1 != query.bars)] = float("inf")
    assert found["near"] == torch.argsort(distance, stable=True)[:10].tolist()
    assert "first 3 principal directions" in js(browser, "rankingNote()")
    assert [e for e in browser.get_log("browser") if e["level"] == "SEVERE"] == []
