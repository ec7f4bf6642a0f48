"""The MNIST baseline on the real test digits in ../shared/datasets/mnist."""
from __future__ import annotations

import json
import math

from click.testing import CliRunner

from chordvae import runs
from chordvae.cli import main
from chordvae.datasets import get_adapter
from chordvae.train import TrainConfig, evaluate_losses
from chordvae.vae import ModelConfig, build_model


def test_one_epoch_of_the_keras_model_learns_real_digits(shared_mnist, tmp_path):
    data = get_adapter("mnist").load([], {"data_dir": str(shared_mnist)}, seed=0)
    assert data.event_shape == (1, 28, 28) and len(data.train) == 8333 and len(data.validation) == 1667
    assert 0.0 <= data.train.min() and data.train.max() <= 1.0
    untrained = build_model(ModelConfig("conv", (1, 28, 28)))
    before = evaluate_losses(untrained, data.validation)["loss"]
    run = runs.train("mnist", options={"data_dir": str(shared_mnist)}, out=tmp_path / "run",
                     config=TrainConfig(epochs=1, threads=2), progress=False, log=lambda s: None)
    after = run.metrics[-1]["validation"]["loss"]
    assert before > 500 * math.log(2) * 0.7   # untrained: about a coin flip per pixel
    assert after < 0.5 * before and after < 260, (before, after)
    for name in ("latent_space.png", "label_clusters.png", "loss.png", "model.pt", "config.json"):
        assert (run.dir / name).stat().st_size > 0


def test_cli_mnist_run_and_pictures_from_the_checkpoint(shared_mnist, tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(main, ["train", "--dataset", "mnist", "--data-dir", str(shared_mnist),
                                       "--arch", "mlp", "--hidden", "64", "--latent-dim", "3",
                                       "--epochs", "1", "--batch-size", "256", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "only the official test split is present" in result.output
    config = json.loads((out / "config.json").read_text())
    assert config["model"] == {"arch": "mlp", "event_shape": [1, 28, 28], "latent_dim": 3, "hidden": [64]}
    for name in ("latent_space.png", "label_clusters.png"):
        (out / name).unlink()
    result = CliRunner().invoke(main, ["plot", str(out), "--grid", "6", "--overwrite"])
    assert result.exit_code == 0, result.output
    assert (out / "latent_space.png").exists() and (out / "label_clusters.png").exists()
    result = CliRunner().invoke(main, ["sample", str(out), "-n", "4", "--out", str(tmp_path / "s.png")])
    assert result.exit_code == 0 and (tmp_path / "s.png").stat().st_size > 0, result.output
    result = CliRunner().invoke(main, ["sample", str(out), "-n", "4", "--out", str(tmp_path / "s.mid")])
    assert result.exit_code == 1 and "PNG" in result.output
