"""What a run says and leaves behind: quiet runs, Ctrl-C, pictures drawn elsewhere, the curve's
verdict, and torch's thread setting around a training."""
from __future__ import annotations

import torch
from click.testing import CliRunner

from chordvae import runs
from chordvae.checkpoint import load_checkpoint
from chordvae.cli import main
from chordvae.curve import within_message
from chordvae.threads import forward_macs, training_threads
from chordvae.train import torch_settings
from chordvae.train import TrainConfig
from chordvae.vae import ModelConfig, build_model

TOY = ["train", "--dataset", "toy", "--batch-size", "64", "--hidden", "16"]


def test_quiet_training_prints_only_how_it_ended(tmp_path):
    out = tmp_path / "run"
    result = CliRunner().invoke(main, TOY + ["--epochs", "3", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["reached the epoch cap (3); model.pt holds the weights of epoch 3",
                                          f"run directory: {out}"]
    loud = CliRunner().invoke(main, TOY + ["--epochs", "3", "--out", str(tmp_path / "loud")])
    lines = loud.output.splitlines()
    assert sum(line.startswith("epoch ") for line in lines) == 3
    assert ("training a VAE (mlp, latent 2) on 500 events of the toy dataset, validating on 100 (1 CPU thread)"
            in lines), lines


def _interrupt_in_epoch(monkeypatch, epoch: int) -> None:
    """Make training raise KeyboardInterrupt (as Ctrl-C does) while validating ``epoch``."""
    real = runs.fit

    def fit(*args, **kwargs):
        seen = []

        def metrics(model, x):
            seen.append(1)
            if len(seen) == epoch:
                raise KeyboardInterrupt
            return {}
        return real(*args, **{**kwargs, "extra_metrics": metrics})
    monkeypatch.setattr(runs, "fit", fit)


def test_ctrl_c_says_how_to_continue_the_run(tmp_path, monkeypatch):
    out = tmp_path / "run"
    _interrupt_in_epoch(monkeypatch, 3)
    result = CliRunner().invoke(main, TOY + ["--epochs", "5", "--out", str(out), "-q"])
    assert result.exit_code == 130
    assert result.output.strip() == f"interrupted; `chordvae train --resume {out}` continues the run"
    assert load_checkpoint(out).epoch == 2
    result = CliRunner().invoke(main, ["train", "--resume", str(out), "-q"])   # interrupted again, in epoch 5
    assert result.exit_code == 130 and f"--resume {out}` continues" in result.output
    monkeypatch.undo()
    result = CliRunner().invoke(main, ["train", "--resume", str(out), "-q"])
    assert result.exit_code == 0 and load_checkpoint(out).epoch == 5, result.output
    _interrupt_in_epoch(monkeypatch, 1)
    result = CliRunner().invoke(main, TOY + ["--epochs", "5", "--out", str(tmp_path / "early"), "-q"])
    assert result.exit_code == 130 and "before the first epoch ended" in result.output and "no checkpoint" in result.output


def test_plot_draws_elsewhere_and_keeps_the_run_pictures_unless_asked(tmp_path):
    out = tmp_path / "run"
    assert CliRunner().invoke(main, TOY + ["--epochs", "2", "--out", str(out), "-q"]).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.glob("*.png")}
    assert set(before) == {"loss.png", "latent_space.png", "label_clusters.png"}
    result = CliRunner().invoke(main, ["plot", str(out)])
    assert result.exit_code == 2 and result.output.startswith("error: ") and "--overwrite" in result.output
    result = CliRunner().invoke(main, ["plot", str(out), "-o", str(tmp_path / "elsewhere" / "pictures")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "elsewhere" / "pictures").iterdir()) == sorted(before)
    assert {p.name: p.read_bytes() for p in out.glob("*.png")} == before
    assert CliRunner().invoke(main, ["plot", str(out), "-o", str(out)]).exit_code == 2   # the run itself
    assert CliRunner().invoke(main, ["plot", str(out), "--overwrite"]).exit_code == 0


def _curve(nll_by_count: dict[int, float]) -> dict:
    return {"summary": [{"pieces": n, "nll": {"mean": v}} for n, v in nll_by_count.items()]}


def test_the_curve_verdict_is_true_when_only_the_largest_count_qualifies():
    assert within_message(_curve({5: 4.9, 20: 4.45, 50: 4.4})) == (
        "the VAE comes within 0.1 nats of its NLL on 50 pieces from 20 pieces on")
    assert within_message(_curve({5: 4.9, 20: 4.6, 54: 4.4})) == (
        "none of the smaller counts (5, 20 pieces) comes within 0.1 nats of the VAE's NLL on 54 pieces: "
        "more data still helps")
    assert within_message(_curve({54: 4.4})).startswith("only one count was run (54 pieces)")


def test_thread_count_follows_the_model_size_and_is_restored(tmp_path, monkeypatch):
    chord = ModelConfig("mlp", (12,), 4, (256, 128))
    # 12-256-128-(2x4) and 4-128-256-12 linear layers: 73,216 multiply-accumulates per chord
    assert forward_macs(build_model(chord), torch.zeros(1, 12)) == 12 * 256 + 256 * 128 + 128 * 8 + 4 * 128 + 128 * 256 + 256 * 12
    assert training_threads(build_model(chord), torch.zeros(1, 12), 128) == 1
    conv = build_model(ModelConfig("conv", (1, 28, 28), 2))
    monkeypatch.setattr("os.getloadavg", lambda: (0.0, 0.0, 0.0))
    with torch_settings(2):
        assert training_threads(conv, torch.zeros(1, 1, 28, 28), 128) == min(2, __import__("os").cpu_count())
        assert training_threads(conv, torch.zeros(1, 1, 28, 28), 128, requested=3) == 3
        monkeypatch.setattr("os.getloadavg", lambda: (40.0, 0.0, 0.0))   # every core busy elsewhere
        assert training_threads(conv, torch.zeros(1, 1, 28, 28), 128) == 1
    before = torch.get_num_threads()
    torch.manual_seed(5)
    state = torch.get_rng_state()
    forward_macs(conv, torch.zeros(1, 1, 28, 28))
    assert torch.equal(torch.get_rng_state(), state)   # counting draws no random numbers
    with torch_settings(2):
        run = runs.train("toy", config=TrainConfig(epochs=1, batch_size=64), out=tmp_path / "a", progress=False,
                         log=str)
        assert torch.get_num_threads() == 2 and run.training.threads == 1
        runs.train("toy", config=TrainConfig(epochs=1, threads=1), out=tmp_path / "b", progress=False, log=str)
        assert torch.get_num_threads() == 2
    assert torch.get_num_threads() == before
