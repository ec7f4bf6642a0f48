"""What a picture shows must be true: the stored latent plane puts each chord's dot where the
plane decodes to that chord, every picture and command uses that plane, old planes still load,
labels never overlap, axes cover the data and no more, and the README's listening examples run."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from chordvae import explore, runs
from chordvae.chords.analysis import circle_of_fifths
from chordvae.cli import main
from chordvae.datasets.chords import ChordData
from chordvae.pictures.chords import (Colouring, circle_of_fifths_figure, label_clusters_figure,
                                      latent_space_figure)
from chordvae.pictures.labels import label_overlap
from chordvae.meta import DatasetMeta
from chordvae.plane import LatentPlane, decodes_to, distinct_events, posterior_means
from chordvae.plots import loss_figure
from chordvae.train import TrainConfig, fit
from chordvae.vae import ModelConfig, build_model

REPO = Path(__file__).resolve().parents[1]
BACH = REPO / "data" / "midi" / "bach"


def _chords(n: int, seed: int = 0) -> torch.Tensor:
    """``n`` distinct random pitch-class sets of 3 or 4 notes, ``(n, 12)``."""
    g = torch.Generator().manual_seed(seed)
    seen: dict[tuple, None] = {}
    while len(seen) < n:
        pcs = tuple(sorted(torch.randperm(12, generator=g)[:3 + len(seen) % 2].tolist()))
        seen[pcs] = None
    x = torch.zeros(n, 12)
    for i, pcs in enumerate(seen):
        x[i, list(pcs)] = 1
    return x


@pytest.fixture(scope="module")
def model_4d(tmp_path_factory):
    """A 4-D chord VAE trained on 40 distinct chords with Zipf-like counts; returns (model, events)."""
    torch.manual_seed(0)
    distinct = _chords(40)
    events = torch.cat([distinct[i:i + 1].repeat(1 + 60 // (i + 1), 1) for i in range(40)])
    model = build_model(ModelConfig("mlp", (12,), latent_dim=4, hidden=(64, 32)))
    fit(model, events, distinct, TrainConfig(epochs=150, batch_size=64, learning_rate=3e-3, beta=0.5, threads=1),
        progress=False, log=lambda s: None)
    return model.eval(), events


def test_the_plane_puts_dots_where_they_decode_to_their_own_chord(model_4d):
    model, events = model_4d
    distinct, counts = distinct_events(events)
    flat = LatentPlane(4, posterior_means(model, events))        # other coordinates at their mean
    plane = LatentPlane.of(model, events)
    assert plane.agreement == pytest.approx(plane.agreement_of(model, distinct, counts))
    assert plane.agreement >= 0.95 and plane.agreement > flat.agreement_of(model, distinct, counts) + 0.1
    uv = torch.randn(50, 2)
    torch.testing.assert_close(plane.project(plane.to_latent(uv)), uv, atol=1e-4, rtol=0)  # hidden part is orthogonal
    again = LatentPlane.from_dict(plane.to_dict())
    torch.testing.assert_close(again.to_latent(uv), plane.to_latent(uv))
    assert again.extent == plane.extent >= plane.project(posterior_means(model, distinct)).abs().max()


def test_an_old_flat_plane_still_loads_and_is_flat():
    old = {"latent_dim": 3, "centre": [0.1, 0.2, 0.3], "basis": [[1.0, 0.0, 0.0], [0.0, 0.6, 0.8]]}
    plane = LatentPlane.from_dict(old)
    uv = torch.tensor([[0.5, -1.2]])
    torch.testing.assert_close(plane.to_latent(uv), torch.tensor([[0.6, 0.2 - 0.72, 0.3 - 0.96]]))
    assert plane.extent is None and plane.grid(3)[1].tolist() == [-1.0, 0.0, 1.0]   # the old grid's scale


def _chord_data(events: torch.Tensor) -> ChordData:
    n = len(events)
    corpus = torch.arange(n) % 2
    return ChordData(events[: n - 20], events[n - 20:], torch.zeros(n - 20, dtype=torch.long),
                     torch.zeros(20, dtype=torch.long), ["x"], {}, corpus_names=["first", "second"],
                     train_corpus=corpus[: n - 20], validation_corpus=corpus[n - 20:])


def test_label_clusters_labels_never_overlap_and_the_axes_fit_the_dots(model_4d):
    model, events = model_4d
    data = _chord_data(events)
    plane = LatentPlane.of(model, events)
    fig = label_clusters_figure(model, data, plane, Colouring("corpus", data), labelled=40)
    ax = fig.axes[0]
    assert label_overlap(ax.texts) <= 1.0 and len(ax.texts) >= 10
    points = plane.project(posterior_means(model, distinct_events(events)[0])).numpy()
    for (lo, hi), values in ((ax.get_xlim(), points[:, 0]), (ax.get_ylim(), points[:, 1])):
        spread = values.max() - values.min()
        assert lo <= values.min() and hi >= values.max()                     # every dot is shown ...
        assert values.min() - lo < 0.1 * spread and hi - values.max() < 0.1 * spread   # ... and no far margin


def test_latent_space_covers_the_dots_with_even_ticks_and_text_inside_its_cells(model_4d):
    model, events = model_4d
    plane = LatentPlane.of(model, events)
    fig = latent_space_figure(model, plane, Colouring("quality", None), n=12)
    ax = fig.axes[0]
    dots = plane.project(posterior_means(model, events)).abs().max().item()
    assert ax.get_xlim()[1] >= dots and ax.get_ylim()[1] >= dots
    ticks = [t for t in ax.get_xticks() if ax.get_xlim()[0] <= t <= ax.get_xlim()[1]]
    assert len(set(np.round(np.diff(ticks), 6))) == 1
    fig.canvas.draw()                                   # as saved: the equal aspect applied
    renderer = fig.canvas.get_renderer()
    cell = ax.transData.transform((2 * plane.extent / 11, 0))[0] - ax.transData.transform((0, 0))[0]
    widths = [t.get_window_extent(renderer).width for t in ax.texts]
    assert len(widths) == 144 and max(widths) <= cell


def test_circle_of_fifths_names_never_overlap(model_4d):
    model, events = model_4d
    fig = circle_of_fifths_figure(circle_of_fifths(model, 12, LatentPlane.of(model, events)))
    assert label_overlap(fig.axes[0].texts) <= 1.0 and len(fig.axes[0].texts) >= 30


def test_loss_picture_marks_the_kept_epoch():
    metrics = [{"epoch": e, "train": {"loss": 3 - e / 10, "reconstruction_loss": 1, "kl_loss": 1},
                "validation": {"loss": 3 - e / 20, "reconstruction_loss": 1, "kl_loss": 1}} for e in range(1, 6)]
    fig = loss_figure(metrics, kept_epoch=4)
    for ax in fig.axes:
        assert any(line.get_xdata()[0] == 4 and "kept" in line.get_label() for line in ax.get_lines())


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """The quick start's kind of run (chords, every model default: latent 4) on 8 chorales, few epochs."""
    root = tmp_path_factory.mktemp("quick")
    for path in sorted(BACH.glob("*.mid"))[:8]:
        (root / "bach").mkdir(exist_ok=True)
        (root / "bach" / path.name).write_bytes(path.read_bytes())
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CHORDVAE_CACHE", str(root / "cache"))
        result = CliRunner().invoke(main, ["train", "--dataset", "chords", str(root / "bach"), "--epochs", "30",
                                           "--jobs", "1", "--threads", "1", "--out", str(root / "run"), "-q"])
    assert result.exit_code == 0, result.output
    return root / "run"


def test_every_picture_and_command_uses_the_stored_plane(quick_run, tmp_path):
    run = runs.load_run(quick_run)
    assert run.model.latent_dim == 4 and run.plane is not None and len(run.plane.anchors) > 0
    stored = run.plane.grid(5, on_data=True)[0].reshape(25, 4)
    torch.testing.assert_close(explore.grid(run, 5), stored)                   # decode --grid
    torch.testing.assert_close(explore.parse_point("xy:0.5,-1.2", 4, run.plane),
                               run.plane.to_latent(torch.tensor([[0.5, -1.2]]))[0])
    result = CliRunner().invoke(main, ["decode", str(quick_run), "--z", "z:0.5,-1.2", "-o", str(tmp_path / "x.mid")])
    assert result.exit_code == 1 and "has 2 coordinates" in result.output and "xy:0.5,-1.2" in result.output
    report = runs.evaluate_run(quick_run, k=10, progress=False)
    assert report["figures"]["plane_agreement"] == pytest.approx(
        run.plane.agreement_of(run.model, *distinct_events(run.data().validation)))


def test_the_readme_listening_examples_run_as_written(quick_run, tmp_path, monkeypatch):
    readme = (REPO / "README.md").read_text()
    block = re.search(r"## Listening\n.*?```bash\n(.*?)```", readme, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert len(commands) >= 5
    monkeypatch.chdir(tmp_path)
    for command in commands:
        words = shlex.split(command)
        assert words[0] == "chordvae"
        args = [str(quick_run) if w == "RUN" else w for w in words[1:]]
        result = CliRunner().invoke(main, args)
        assert result.exit_code == 0, (command, result.output)


def test_circle_of_fifths_is_drawn_for_runs_on_all_transpositions_only(model_4d, tmp_path):
    from chordvae.datasets.chords import Chords

    model, events = model_4d
    data = _chord_data(events)
    (tmp_path / "circle_of_fifths.png").write_bytes(b"an earlier plane's picture")
    assert tmp_path / "circle_of_fifths.png" not in Chords().plot_extra(model, data, DatasetMeta("chords", options={"transpose": "none"}),
                                                                      tmp_path)
    assert not (tmp_path / "circle_of_fifths.png").exists()
    paths = Chords().plot_extra(model, data, DatasetMeta("chords", options={"transpose": "all"}), tmp_path)
    assert (tmp_path / "circle_of_fifths.png") in paths
    assert (tmp_path / "circle_of_fifths.png").read_bytes()[:4] == b"\x89PNG"


def test_the_grid_names_each_frequent_chord_in_the_cell_of_its_dot(model_4d):
    """latent_space.png's cells: the cell holding a chord's dot (the most frequent dot there) is
    decoded at that dot, so it names the chord wherever the plane agrees at the dot."""
    model, events = model_4d
    plane = LatentPlane.of(model, events)
    n = 12
    z, ticks = plane.grid(n, on_data=True)
    centres, _ = plane.grid(n)
    assert not torch.equal(z, centres)                     # some cells hold dots
    distinct, counts = distinct_events(events)
    means = posterior_means(model, distinct)
    dots = plane.project(means)
    step = (ticks[1] - ticks[0]).item()
    col = torch.round((dots[:, 0] + plane.extent) / step).long()
    row = n - 1 - torch.round((dots[:, 1] + plane.extent) / step).long()
    agrees = decodes_to(model, plane.to_latent(dots), distinct)
    decoded = model.decode_mean(z.reshape(n * n, -1)) >= 0.5
    checked = 0
    for k in torch.argsort(counts, descending=True).tolist():
        same_cell = (row == row[k]) & (col == col[k])
        if agrees[k] and counts[k] == counts[same_cell].max():
            assert torch.equal(decoded[row[k] * n + col[k]], distinct[k] >= 0.5)
            checked += 1
    assert checked >= 10
