"""Early stopping on real training runs: it stops on a rising validation loss, keeps the best
weights, resumes exactly, and the dataset's defaults decide when the user does not."""
from __future__ import annotations

import json

import torch

from chordvae import runs
from chordvae.checkpoint import load_checkpoint
from chordvae.datasets import Data, DatasetAdapter, register
from chordvae.meta import DatasetMeta
from chordvae.train import TrainConfig, evaluate_losses


@register
class Memorise(DatasetAdapter):
    """40 random 12-bit vectors to train on and 200 others to validate on: a model that learns
    the training vectors by heart gets worse on the others, so the validation loss turns up."""

    name = "memorise"
    default_hidden = (64,)
    default_training = TrainConfig(epochs=7, patience=3)

    def load(self, sources, options, seed, run_dir=None):
        g = torch.Generator().manual_seed(seed)
        x = torch.bernoulli(torch.full((240, 12), 0.5), generator=g)
        return Data(x[:40], x[40:], torch.zeros(40, dtype=torch.long), torch.zeros(200, dtype=torch.long),
                    ["all"], DatasetMeta(self.name, seed=seed))

    def plot_latent_space(self, model, data, meta, path, n=None, scale=None, plane=None):
        path.write_bytes(b"")

    def plot_label_clusters(self, model, data, meta, path, plane=None):
        path.write_bytes(b"")


CAP = 300


def config(**kw) -> TrainConfig:
    return TrainConfig(**{"epochs": CAP, "batch_size": 8, "learning_rate": 1e-2, "patience": 5,
                          "validation_samples": 4, "seed": 2, "threads": 1, **kw})


def train(out, **kw):
    return runs.train("memorise", latent_dim=4, config=config(**kw), out=out, progress=False, log=lambda s: None)


def test_training_stops_on_a_rising_validation_loss_and_keeps_the_best_weights(tmp_path):
    run = train(tmp_path / "stopped")
    metrics = run.metrics
    losses = [m["validation"]["loss"] for m in metrics]
    best = 1 + min(range(len(losses)), key=losses.__getitem__)
    assert len(metrics) < CAP and len(metrics) == best + 5          # stopped 5 epochs after the best
    assert "has not improved for 5 epochs" in metrics[-1]["stopped"]
    summary = json.loads((run.dir / "summary.json").read_text())
    assert summary["stopped_early"] and summary["weights_epoch"] == best == run.epoch
    ckpt = load_checkpoint(run.dir)
    assert ckpt.epoch == len(metrics) and ckpt.weights_epoch == best
    # model.pt holds the best epoch's weights: a run of exactly `best` epochs ends with the same ones
    again = train(tmp_path / "to-best", epochs=best, patience=0)
    for name, value in again.model.state_dict().items():
        torch.testing.assert_close(ckpt.model.state_dict()[name], value, rtol=0, atol=0)
    assert any(not torch.equal(ckpt.last_state_dict[k], v) for k, v in ckpt.model.state_dict().items())
    # and those weights give the best epoch's validation loss, with the same draws
    data = run.data()
    with torch.no_grad():
        again_loss = evaluate_losses(ckpt.model, data.validation, samples=4,
                                     generator=torch.Generator().manual_seed(2))["loss"]
    assert abs(again_loss - losses[best - 1]) < 1e-5


def test_a_stopped_run_resumed_from_an_interruption_stops_at_the_same_epoch(tmp_path):
    whole = train(tmp_path / "whole", lr_patience=2)
    stopped_at = len(whole.metrics)
    part = train(tmp_path / "part", lr_patience=2, epochs=stopped_at - 3)   # interrupted after the best
    resumed = runs.resume(part.dir, epochs=CAP, progress=False, log=lambda s: None)
    assert len(resumed.metrics) == stopped_at and resumed.epoch == whole.epoch
    assert [m["learning_rate"] for m in resumed.metrics] == [m["learning_rate"] for m in whole.metrics]
    for name, value in load_checkpoint(whole.dir).model.state_dict().items():
        torch.testing.assert_close(load_checkpoint(part.dir).model.state_dict()[name], value, rtol=0, atol=0)


def test_the_learning_rate_halves_after_lr_patience_epochs_without_improvement(tmp_path):
    run = train(tmp_path / "lr", lr_patience=1, patience=6)
    rates = [m["learning_rate"] for m in run.metrics]
    assert rates[0] == 1e-2 and min(rates) <= 1e-2 / 4
    assert all(b in (a, a / 2) for a, b in zip(rates, rates[1:]))


def test_without_a_config_the_adapter_defaults_apply(tmp_path):
    run = runs.train("memorise", out=tmp_path / "defaults", progress=False, log=lambda s: None)
    assert run.training.epochs == 7 and run.training.patience == 3
    assert runs.training_config("memorise", patience=0).patience == 0
    assert runs.training_config("mnist").epochs == 30 and runs.training_config("mnist").patience == 0


def test_a_small_training_set_trains_for_the_minimum_updates_unless_epochs_are_given(tmp_path):
    """TrainConfig.min_steps: 40 examples in batches of 8 are 5 updates an epoch, so 60 updates
    take 12 epochs, more than the cap of 3; the run stores the epochs it trained for. A cap the
    caller gives (``training_config(..., epochs=)``) is kept."""
    assert TrainConfig(epochs=3, min_steps=60, batch_size=8).scaled_to(40).epochs == 12
    assert TrainConfig(epochs=3, min_steps=60, batch_size=8).scaled_to(400).epochs == 3
    assert TrainConfig(epochs=3, min_steps=61, batch_size=8).scaled_to(41).epochs == 11   # 6 batches an epoch
    run = runs.train("memorise", latent_dim=4, config=config(epochs=3, min_steps=60, patience=0), out=tmp_path / "r",
                     progress=False, log=lambda s: None)
    assert run.training.epochs == 12 and len(run.metrics) == 12
    assert json.loads((tmp_path / "r" / "config.json").read_text())["training"]["epochs"] == 12
    assert runs.training_config("progressions").min_steps == 8000
    assert runs.training_config("progressions", epochs=5).min_steps == 0
    assert runs.training_config("progressions", epochs=5, min_steps=10).min_steps == 10


def test_the_cli_stops_early_and_says_why(tmp_path):
    from click.testing import CliRunner

    from chordvae.cli import main

    out = tmp_path / "cli"
    result = CliRunner().invoke(main, ["train", "--dataset", "memorise", "--epochs", str(CAP), "--patience", "2",
                                       "--lr-patience", "1", "--lr", "1e-2", "--batch-size", "8",
                                       "--threads", "1", "--out", str(out), "-q"])
    assert result.exit_code == 0, result.output
    assert "stopped early after epoch" in result.output and "model.pt holds the weights of epoch" in result.output
    config = json.loads((out / "config.json").read_text())["training"]
    assert (config["patience"], config["lr_patience"], config["epochs"]) == (2, 1, CAP)
    assert json.loads((out / "summary.json").read_text())["epochs_trained"] < CAP


def test_with_refit_epochs_the_run_keeps_a_refitted_epoch():
    """Early stopping counts only the refit epochs (before them the prior is not fitted): an
    earlier epoch with a lower validation loss is neither kept nor a reason to stop."""
    from types import SimpleNamespace

    from chordvae.stopping import EarlyStopping
    from chordvae.train import EarlyStop

    config = TrainConfig(epochs=6, refit_epochs=2, patience=2)
    state = SimpleNamespace(epoch=0, stop=False, model=torch.nn.Linear(1, 1),
                            stopper=EarlyStopping(config.patience, keep_weights=True))
    for epoch, loss in enumerate([1.0, 5.0, 6.0, 7.0, 3.0, 2.0], 1):
        state.epoch = epoch
        EarlyStop(config).on_epoch_end(state, {"validation": {"loss": loss}})
        assert not state.stop
    assert state.stopper.best_epoch == 6 and state.stopper.best_loss == 2.0
